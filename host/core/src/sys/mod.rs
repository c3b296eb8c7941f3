//! OS glue: memfd regions, futexes, process spawning and the plugin processes' sandbox. The only place, with the shared-region
//! views in `ipc::region` and the wasm glue in `runner`, where `unsafe` is allowed.

pub mod futex;
pub mod memfd;
pub mod process;
pub mod sandbox;
pub mod signals;
