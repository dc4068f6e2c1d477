//! The kubeforge phase SDK: the `kubeforge:phase` bindings, typed access to the configuration a
//! phase runs with, and small helpers every phase needs.
//!
//! A phase crate implements [`Guest`] and exports it with
//! `kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);`, behind
//! `#[cfg(target_arch = "wasm32")]` so the rest of the crate can be unit-tested natively.

pub mod bindings {
    wit_bindgen::generate!({
        world: "phase-component",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "kubeforge_sdk::bindings",
    });
}

pub mod bootstrap_token;
pub mod certificates;
pub mod component_config;
pub mod dns;
pub mod kubelet;
pub mod objects;
pub mod requests;

pub mod staticpod;
#[cfg(feature = "testing")]
pub mod testing;
pub use kubeforge_api::yaml;

pub use bindings::export;
pub use bindings::exports::kubeforge::phase::phase::{
    CapabilityRequest, FsRequest, Guest, KubeRule, PhaseContext, PhaseInfo, PhaseReport, SubPhase,
};
pub use bindings::kubeforge::phase::types::{Denial, FieldError, PhaseError};
pub use bindings::kubeforge::phase::{fs, kube, log, node, pki};
pub use kubeforge_api as api;

use kubeforge_api::EffectiveConfig;

/// kubeadm's default `imageRepository`.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";

/// The result type of host calls and phase runs.
pub type Result<T, E = PhaseError> = std::result::Result<T, E>;

/// A `failed` error with a message.
pub fn failed(message: impl Into<String>) -> PhaseError {
    PhaseError::Failed(message.into())
}

/// The effective configuration the host passed to this run.
pub fn config(context: &PhaseContext) -> Result<EffectiveConfig> {
    serde_json::from_str(&context.config).map_err(|e| {
        failed(format!(
            "the host passed a configuration this phase cannot read: {e}"
        ))
    })
}

/// Whether `sub_phase` selects the sub-phase `name` (none and `all` select every sub-phase).
pub fn selects(sub_phase: Option<&str>, name: &str) -> bool {
    matches!(sub_phase, None | Some("all")) || sub_phase == Some(name)
}

/// Refuse a sub-phase the phase does not have (none and `all` run every sub-phase).
pub fn check_sub_phase(phase: &str, sub_phase: Option<&str>, sub_phases: &[&str]) -> Result<()> {
    match sub_phase {
        None | Some("all") => Ok(()),
        Some(name) if sub_phases.contains(&name) => Ok(()),
        Some(name) => Err(failed(format!(
            "the {phase} phase has no sub-phase {name:?}; its sub-phases are: {}",
            std::iter::once("all")
                .chain(sub_phases.iter().copied())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// An operator-facing line at info level.
pub fn info(message: impl AsRef<str>) {
    log::emit(log::Level::Info, message.as_ref());
}

/// An operator-facing warning.
pub fn warn(message: impl AsRef<str>) {
    log::emit(log::Level::Warn, message.as_ref());
}

/// Write a text file under a logical root.
pub fn write_text(root: &str, path: &str, contents: &str, mode: u32) -> Result<()> {
    fs::write(root, path, contents.as_bytes(), mode)
}

/// Read a text file under a logical root, or none if it does not exist.
pub fn read_text(root: &str, path: &str) -> Result<Option<String>> {
    fs::read(root, path)?
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|_| failed(format!("{root}:{path} is not UTF-8 text")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_phases_are_checked_against_the_phase_s_list() {
        assert!(check_sub_phase("etcd", None, &["local"]).is_ok());
        assert!(check_sub_phase("etcd", Some("all"), &["local"]).is_ok());
        assert!(check_sub_phase("etcd", Some("local"), &["local"]).is_ok());
        let Err(PhaseError::Failed(message)) = check_sub_phase("etcd", Some("remote"), &["local"])
        else {
            panic!("an unknown sub-phase is refused");
        };
        assert_eq!(
            message,
            "the etcd phase has no sub-phase \"remote\"; its sub-phases are: all, local"
        );
    }
}
