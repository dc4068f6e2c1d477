//! kubeforge: a kubeadm-compatible cluster bootstrapper whose phases are sandboxed WebAssembly
//! components. See DESIGN.md for the architecture.

pub mod capabilities;
pub mod cli;
pub mod config;
pub mod effects;
#[cfg(test)]
pub(crate) mod fuzzing;
pub mod runtime;
pub mod workflow;
