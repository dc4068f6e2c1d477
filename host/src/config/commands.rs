//! `config validate` and `config migrate`: a whole config file read, defaulted and validated as
//! the kubeadm of one release does, every kubeadm kind of it, then reported (`ok`) or written
//! out as v1beta4.

use std::path::Path;

use kubeforge_api::release::{
    DEFAULT_RELEASE, NEWEST_RELEASE, Release, resolve_kubernetes_version,
};
use kubeforge_api::v1beta4::{JoinConfiguration, ResetConfiguration, UpgradeConfiguration};
use kubeforge_api::{Duration, EffectiveConfig};

use super::api_versions::Reader;
use super::defaults::{self, Machine};
use super::error::ConfigError;
use super::load::{self, ConfigDocuments, ReadOptions};
use super::print::to_sorted_yaml;
use super::validate;

/// `config validate`'s options.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Which release's kubeadm to act as (kubeforge's flag); else the file's kubernetesVersion.
    pub kubernetes_version: Option<String>,
    pub allow_deprecated_api: bool,
    pub allow_experimental_api: bool,
}

/// `config migrate`'s options.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Which release's kubeadm to act as (kubeforge's flag); else the file's kubernetesVersion.
    pub kubernetes_version: Option<String>,
    pub allow_experimental_api: bool,
}

/// What `config migrate` writes, and what the user should know about what it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The kubeadm kinds as v1beta4, byte for byte what that release's kubeadm writes.
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// Checks a config file as `kubeadm config validate` does; `Ok` holds the warnings to print
/// before `ok`.
pub fn validate_config(path: &Path, options: &ValidateOptions) -> Result<Vec<String>, ConfigError> {
    validate_config_on(path, options, &defaults::LocalMachine)
}

fn validate_config_on(
    path: &Path,
    options: &ValidateOptions,
    machine: &dyn Machine,
) -> Result<Vec<String>, ConfigError> {
    let reader = Reader::Validate {
        allow_deprecated_api: options.allow_deprecated_api,
        allow_experimental_api: options.allow_experimental_api,
    };
    let checked = check_file(path, reader, options.kubernetes_version.as_deref(), machine)?;
    Ok(checked.warnings)
}

/// Converts a config file as `kubeadm config migrate` does: every kubeadm kind read,
/// defaulted (including what is read from this machine: node name, advertise address, a
/// random bootstrap token) and validated, then written as v1beta4.
pub fn migrate_config(path: &Path, options: &MigrateOptions) -> Result<Migrated, ConfigError> {
    migrate_config_on(path, options, &defaults::LocalMachine)
}

fn migrate_config_on(
    path: &Path,
    options: &MigrateOptions,
    machine: &dyn Machine,
) -> Result<Migrated, ConfigError> {
    let reader = Reader::Migrate {
        allow_experimental_api: options.allow_experimental_api,
    };
    let mut checked = check_file(path, reader, options.kubernetes_version.as_deref(), machine)?;
    if checked.release.minor <= LAST_MINOR_WITH_V1BETA3_TIMEOUT_MOVE {
        move_v1beta3_control_plane_timeout(&mut checked);
    }
    let mut parts = Vec::new();
    if let Some(config) = &checked.init_and_cluster {
        parts.push(to_sorted_yaml(&config.init));
        parts.push(to_sorted_yaml(&config.cluster));
    }
    if let Some(join) = &checked.join {
        parts.push(to_sorted_yaml(join));
    }
    if let Some(reset) = &checked.reset {
        parts.push(to_sorted_yaml(reset));
    }
    match &checked.upgrade {
        Some(_) if checked.release.minor < FIRST_MINOR_MIGRATING_UPGRADE => {
            checked.warnings.push(format!(
                "config file {path:?}: its UpgradeConfiguration is not written: kubeadm \
                 v1.{}'s config migrate leaves it out (a newer one writes it: pass \
                 --kubernetes-version {})",
                checked.release.minor,
                NEWEST_RELEASE.newest_version()
            ));
        }
        Some(upgrade) => parts.push(to_sorted_yaml(upgrade)),
        None => {}
    }
    for (kind, present) in checked.left_out {
        if present {
            checked.warnings.push(format!(
                "config file {path:?}: its {kind} is not written (config migrate writes only \
                 the kubeadm kinds, as kubeadm's does); copy it over from the old file"
            ));
        }
    }
    Ok(Migrated {
        yaml: parts.join("---\n"),
        warnings: checked.warnings,
    })
}

/// kubeadm v1.35's and v1.36's `config migrate` carry a v1beta3 ClusterConfiguration's
/// `timeoutForControlPlane` into the InitConfiguration and JoinConfiguration; v1.37's, which
/// cannot read v1beta3, does not.
const LAST_MINOR_WITH_V1BETA3_TIMEOUT_MOVE: u64 = 36;

/// kubeadm v1.35's `config migrate` ignores UpgradeConfiguration. v1.36's reads it and then
/// fails (`could not find a mutator for input: []interface {}{(*kubeadm.UpgradeConfiguration)
/// (0x…)}`: it registers no migration for the kind, fixed in v1.37), so it writes nothing at
/// all for such a file; kubeforge writes it as v1.37 does instead (v1beta4's
/// UpgradeConfiguration and its defaults are the same in both).
const FIRST_MINOR_MIGRATING_UPGRADE: u64 = 36;

/// kubeadm v1.35's and v1.36's migration of v1beta3's `apiServer.timeoutForControlPlane`: it
/// becomes the InitConfiguration's and the JoinConfiguration's
/// `timeouts.controlPlaneComponentHealthCheck`, over what they say (even the 4-minute
/// default). Where kubeadm writes a zero wait instead (for an explicit `0s`, and for every file
/// whose ClusterConfiguration is v1beta4: its migrate mutator copies the v1beta3 field, which
/// is then 0), kubeforge keeps the InitConfiguration's value: a zero wait fails every
/// `init` at once, and kubeforge's validation refuses it.
fn move_v1beta3_control_plane_timeout(checked: &mut CheckedFile) {
    let Some(timeout) = checked
        .v1beta3_control_plane_timeout
        .filter(|timeout| *timeout != Duration::ZERO)
    else {
        return;
    };
    let init_timeouts = checked
        .init_and_cluster
        .as_mut()
        .and_then(|config| config.init.timeouts.as_mut());
    let join_timeouts = checked
        .join
        .as_mut()
        .and_then(|join| join.timeouts.as_mut());
    for timeouts in init_timeouts.into_iter().chain(join_timeouts) {
        timeouts.control_plane_component_health_check = Some(timeout);
    }
}

/// Every kubeadm kind of a file, defaulted and validated.
struct CheckedFile {
    /// The release whose kubeadm the file was read as.
    release: Release,
    /// The InitConfiguration and ClusterConfiguration, when the file has either (kubeadm
    /// writes both then).
    init_and_cluster: Option<EffectiveConfig>,
    join: Option<JoinConfiguration>,
    reset: Option<ResetConfiguration>,
    upgrade: Option<UpgradeConfiguration>,
    v1beta3_control_plane_timeout: Option<Duration>,
    /// The documents that are not kubeadm kinds, by kind, and whether the file has each.
    left_out: [(&'static str, bool); 3],
    warnings: Vec<String>,
}

/// Reads a file as the kubeadm of the requested release (or of the file's kubernetesVersion)
/// reads it for `reader`, defaults and validates every kubeadm kind in it, in kubeadm's order
/// (Init and Cluster, Join, Reset, Upgrade), stopping at the first kind that is invalid.
fn check_file(
    path: &Path,
    reader: Reader,
    requested_version: Option<&str>,
    machine: &dyn Machine,
) -> Result<CheckedFile, ConfigError> {
    let requested = requested_version.map(requested_release).transpose()?;
    let options = ReadOptions {
        reader,
        release: requested.as_ref().map(|(_, release)| *release),
    };
    let mut documents = load::read_config_file(path, options)?;
    // A kubernetesVersion outside the window names no release; validation reports it.
    let release = documents.release.unwrap_or(DEFAULT_RELEASE);
    let mut warnings = std::mem::take(&mut documents.warnings);
    let init_and_cluster = if documents.init.is_some() || documents.cluster.is_some() {
        let mut config = EffectiveConfig::default();
        (config.init, config.cluster) = super::init_and_cluster(&mut documents);
        // kubeadm's default version is `stable-1`, which offline is its own version.
        if config
            .cluster
            .kubernetes_version
            .as_deref()
            .is_none_or(str::is_empty)
            && let Some((version, _)) = &requested
        {
            config.cluster.kubernetes_version = Some(version.clone());
        }
        defaults::apply_static_defaults(&mut config);
        defaults::apply_dynamic_defaults(&mut config, machine, &mut warnings)?;
        let errors = validate::validate_for(&config, release);
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        Some(config)
    } else {
        None
    };
    let invalid = |kind: &'static str, errors: Vec<_>| {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::InvalidKind {
                path: path.to_owned(),
                kind,
                errors,
            })
        }
    };
    let mut join = documents.join.take();
    if let Some(join) = &mut join {
        defaults::apply_join_defaults(join, machine, &mut warnings)?;
        invalid("JoinConfiguration", validate::validate_join(join))?;
    }
    let mut reset = documents.reset.take();
    if let Some(reset) = &mut reset {
        defaults::apply_reset_defaults(reset, &mut warnings);
        invalid("ResetConfiguration", validate::validate_reset(reset))?;
    }
    let mut upgrade = documents.upgrade.take();
    if let Some(upgrade) = &mut upgrade {
        defaults::apply_upgrade_defaults(upgrade);
        invalid("UpgradeConfiguration", validate::validate_upgrade(upgrade))?;
    }
    Ok(CheckedFile {
        release,
        init_and_cluster,
        join,
        reset,
        upgrade,
        v1beta3_control_plane_timeout: documents.v1beta3_control_plane_timeout,
        left_out: left_out_kinds(&documents),
        warnings,
    })
}

fn left_out_kinds(documents: &ConfigDocuments) -> [(&'static str, bool); 3] {
    [
        ("KubeletConfiguration", documents.kubelet.is_some()),
        ("KubeProxyConfiguration", documents.kube_proxy.is_some()),
        (
            "PhaseConfiguration",
            documents.phase_configuration.is_some(),
        ),
    ]
}

/// `--kubernetes-version` as a version (labels resolved offline) and its release.
fn requested_release(requested: &str) -> Result<(String, Release), ConfigError> {
    let flag_error = |reason: String| ConfigError::Flag {
        flag: "kubernetes-version",
        value: requested.to_owned(),
        reason,
    };
    let release = Release::of_request(requested).map_err(flag_error)?;
    let version = resolve_kubernetes_version(requested).expect("a version with a release resolves");
    Ok((version, release))
}

#[cfg(test)]
mod tests;
