//! OS glue: memfd regions, futexes and process spawning. The only place, with the shared-region
//! views in `ipc::region` and the wasm glue in `runner`, where `unsafe` is allowed.

pub mod futex;
pub mod memfd;
pub mod process;
pub mod signals;
