//! kubeadm's v1beta4 configuration on the host: reading `--config` files, merging `init`
//! flags, defaulting, validation, and `config print init-defaults`.
//!
//! The result, [`LoadedConfig::effective`], is what phases receive as JSON.

pub mod defaults;
mod error;
mod flags;
mod load;
mod print;
pub mod profile;
mod validate;

use std::path::Path;

use kubeforge_api::EffectiveConfig;

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
    /// Things the user should know that do not stop `init` (ignored documents, rewritten values).
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
            let documents = load::read_config_file(path)?;
            if documents.init.is_none() && documents.cluster.is_none() {
                return Err(ConfigError::NoKubeadmDocument {
                    path: path.to_owned(),
                });
            }
            effective.init = documents.init.unwrap_or_default();
            effective.cluster = documents.cluster.unwrap_or_default();
            effective.kubelet = documents.kubelet;
            effective.kube_proxy = documents.kube_proxy;
            loaded.phase_configuration = documents.phase_configuration;
            loaded.warnings = documents.warnings;
            flags::apply_flags_allowed_with_config(flags, &mut effective);
        }
        None => flags::apply_all_flags(flags, &mut effective)?,
    }
    defaults::apply_static_defaults(&mut effective);
    defaults::apply_dynamic_defaults(&mut effective, machine, &mut loaded.warnings)?;
    let errors = validate::validate(&effective);
    if !errors.is_empty() {
        return Err(ConfigError::Invalid(errors));
    }
    loaded.effective = effective;
    Ok(loaded)
}

#[cfg(test)]
mod tests;
