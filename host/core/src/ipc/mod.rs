//! What host and runner must agree on: the control protocol (message passing over pipes), the
//! shared frame region's layout, and the hand-off algorithm on its state words.

pub mod handoff;
pub mod protocol;
#[allow(unsafe_code, reason = "views of the shared mapping")]
pub mod region;
