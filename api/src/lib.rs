//! kubeadm's v1beta4 configuration kinds, shared by the kubeforge host and its guest phases.
//!
//! Everything here is plain data and pure functions so that it compiles for `wasm32-wasip2`.

mod duration;
mod effective;
pub mod net;
pub mod release;
pub mod v1;
pub mod v1beta3;
pub mod v1beta4;
pub mod yaml;

pub use duration::{Duration, DurationParseError};
pub use effective::{DEFAULT_CERTIFICATES_DIR, EffectiveConfig};
