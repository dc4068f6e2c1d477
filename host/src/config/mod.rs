//! kubeadm's configuration on the host: reading config files in every API version the target
//! release's kubeadm reads (v1beta4; v1beta3 for v1.35 and v1.36; the experimental v1 for
//! v1.37), merging `init` flags, defaulting, validation, and the `config` commands (`print
//! init-defaults`, `validate`, `migrate`).
//!
//! The result of `init`'s loading, [`LoadedConfig::effective`], is what phases receive as JSON.

mod api_versions;
mod commands;
mod convert;
pub mod defaults;
mod error;
mod field_hints;
mod flags;
mod load;
mod print;
pub mod profile;
mod validate;

use std::path::Path;

use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::{ClusterConfiguration, InitConfiguration};

pub use commands::{MigrateOptions, Migrated, ValidateOptions, migrate_config, validate_config};
pub use defaults::DEFAULT_KUBERNETES_VERSION;
pub use error::{ConfigError, FieldError};
pub use flags::InitFlags;
pub use print::init_defaults_yaml;

/// A configuration ready for `init`: defaulted and validated kubeadm kinds plus the component
/// configs and kubeforge's phase configuration, which stay opaque here.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The kubeadm kinds, defaulted, with the component configs as written.
    pub effective: EffectiveConfig,
    /// `kubeforge.dev/v1alpha1 PhaseConfiguration`: which component fills which slot.
    pub phase_configuration: Option<profile::PhaseConfiguration>,
    /// Things the user should know that do not stop `init` (kubeadm's warnings, ignored
    /// documents, rewritten values).
    pub warnings: Vec<String>,
}

/// Builds `init`'s configuration from an optional `--config` file and the command-line flags,
/// as kubeadm does: flags other than kubeadm's short allowed list cannot be combined with a
/// file; then defaults (including the node name and advertise address read from this machine)
/// and validation, which reports every problem at once.
pub fn load_init(
    config_path: Option<&Path>,
    flags: &InitFlags,
) -> Result<LoadedConfig, ConfigError> {
    load_init_on(config_path, flags, &defaults::LocalMachine)
}

fn load_init_on(
    config_path: Option<&Path>,
    flags: &InitFlags,
    machine: &dyn defaults::Machine,
) -> Result<LoadedConfig, ConfigError> {
    let mut effective = EffectiveConfig::default();
    let mut loaded = LoadedConfig {
        effective: EffectiveConfig::default(),
        phase_configuration: None,
        warnings: Vec::new(),
    };
    match config_path {
        Some(path) => {
            flags::check_mixed_arguments(flags)?;
            let mut documents = load::read_config_file(path, load::ReadOptions::INIT)?;
            if documents.init.is_none() && documents.cluster.is_none() {
                return Err(ConfigError::NoKubeadmDocument {
                    path: path.to_owned(),
                });
            }
            for (kind, present) in [
                ("JoinConfiguration", documents.join.is_some()),
                ("ResetConfiguration", documents.reset.is_some()),
                ("UpgradeConfiguration", documents.upgrade.is_some()),
            ] {
                if present {
                    documents.warnings.push(format!(
                        "config file {path:?}: ignoring its {kind}, which `init` does not use"
                    ));
                }
            }
            (effective.init, effective.cluster) = init_and_cluster(&mut documents);
            effective.kubelet = documents.kubelet;
            effective.kube_proxy = documents.kube_proxy;
            loaded.phase_configuration = documents.phase_configuration;
            loaded.warnings = documents.warnings;
            flags::apply_flags_allowed_with_config(flags, &mut effective);
        }
        None => flags::apply_all_flags(flags, &mut effective)?,
    }
    defaults::apply_static_defaults(&mut effective);
    defaults::align_disabled_addons_with_skipped_phases(&mut effective);
    defaults::apply_dynamic_defaults(&mut effective, machine, &mut loaded.warnings)?;
    let errors = validate::validate(&effective);
    if !errors.is_empty() {
        return Err(ConfigError::Invalid(errors));
    }
    loaded.effective = effective;
    Ok(loaded)
}

/// The file's InitConfiguration and ClusterConfiguration (either may be absent), with v1beta3's
/// control-plane wait carried over as kubeadm's `init` does: a v1beta3
/// `timeoutForControlPlane` other than 0 and the 4-minute default wins over the
/// InitConfiguration's `timeouts.controlPlaneComponentHealthCheck`.
fn init_and_cluster(
    documents: &mut load::ConfigDocuments,
) -> (InitConfiguration, ClusterConfiguration) {
    let mut init = documents.init.take().unwrap_or_default();
    if let Some(timeout) = documents.v1beta3_control_plane_timeout.filter(|timeout| {
        *timeout != kubeforge_api::Duration::ZERO
            && *timeout != convert::DEFAULT_V1BETA3_CONTROL_PLANE_TIMEOUT
    }) {
        init.timeouts
            .get_or_insert_with(Default::default)
            .control_plane_component_health_check = Some(timeout);
    }
    (init, documents.cluster.take().unwrap_or_default())
}

#[cfg(test)]
mod tests;
