//! The `kubeadm.k8s.io/v1` kinds, as kubeadm v1.37 reads them: an experimental API that only
//! `config validate` and `config migrate` accept, with `--allow-experimental-api`.
//!
//! v1 is v1beta4 field for field, except that every extra argument may carry a `mergeMethod`
//! (`append` or `prepend`: combine the value with kubeadm's own instead of replacing it). So
//! only the sections that hold extra arguments, and the kinds (whose `apiVersion` differs), are
//! declared here; everything else is v1beta4's type. These types are only read: the host
//! converts them to v1beta4 (which drops `mergeMethod`, as kubeadm does).

use serde::Deserialize;

use crate::Duration;
use crate::v1beta4::{
    ApiEndpoint, BootstrapToken, ClusterConfigurationKind, Discovery, Dns, EncryptionAlgorithm,
    EnvVar, ExternalEtcd, HostPathMount, InitConfigurationKind, JoinConfigurationKind,
    JoinControlPlane, Networking, Patches, Proxy, ResetConfigurationKind, Taint, Timeouts,
    UpgradeApplyConfiguration, UpgradeConfigurationKind, UpgradeDiffConfiguration,
    UpgradeNodeConfiguration, UpgradePlanConfiguration, api_version_marker,
};

/// `apiVersion` of every kind in this module.
pub const GROUP_VERSION: &str = "kubeadm.k8s.io/v1";

api_version_marker!(ApiVersion, GROUP_VERSION);

/// A command-line argument `--name=value` and how it combines with kubeadm's argument of the
/// same name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arg {
    pub name: String,
    pub value: String,
    /// `append` or `prepend`; absent means the argument replaces kubeadm's. Kept as written so
    /// that validation can report another value with kubeadm's message.
    #[serde(default)]
    pub merge_method: Option<String>,
}

/// `kind: InitConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: InitConfigurationKind,
    #[serde(default)]
    pub bootstrap_tokens: Vec<BootstrapToken>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    #[serde(default)]
    pub certificate_key: Option<String>,
    #[serde(default)]
    pub skip_phases: Vec<String>,
    #[serde(default)]
    pub patches: Option<Patches>,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
}

/// How this node registers with the cluster.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistrationOptions {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cri_socket: Option<String>,
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    #[serde(default)]
    pub kubelet_extra_args: Vec<Arg>,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    #[serde(default)]
    pub image_pull_serial: Option<bool>,
}

/// `kind: ClusterConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: ClusterConfigurationKind,
    #[serde(default)]
    pub etcd: Etcd,
    #[serde(default)]
    pub networking: Networking,
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    #[serde(default)]
    pub control_plane_endpoint: Option<String>,
    #[serde(default)]
    pub api_server: ApiServer,
    #[serde(default)]
    pub controller_manager: ControlPlaneComponent,
    #[serde(default)]
    pub scheduler: ControlPlaneComponent,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub proxy: Proxy,
    #[serde(default)]
    pub certificates_dir: Option<String>,
    #[serde(default)]
    pub image_repository: Option<String>,
    #[serde(default)]
    pub feature_gates: std::collections::BTreeMap<String, bool>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    #[serde(default)]
    pub certificate_validity_period: Option<Duration>,
    #[serde(default)]
    pub ca_certificate_validity_period: Option<Duration>,
}

/// Local (stacked) or external etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Etcd {
    #[serde(default)]
    pub local: Option<LocalEtcd>,
    #[serde(default)]
    pub external: Option<ExternalEtcd>,
}

/// The etcd static pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    #[serde(default)]
    pub image_repository: Option<String>,
    #[serde(default)]
    pub image_tag: Option<String>,
    #[serde(default)]
    pub data_dir: Option<String>,
    #[serde(default)]
    pub extra_args: Vec<Arg>,
    #[serde(default)]
    pub extra_envs: Vec<EnvVar>,
    #[serde(default, rename = "serverCertSANs")]
    pub server_cert_sans: Vec<String>,
    #[serde(default, rename = "peerCertSANs")]
    pub peer_cert_sans: Vec<String>,
}

/// Extra settings for a control-plane static pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneComponent {
    #[serde(default)]
    pub extra_args: Vec<Arg>,
    #[serde(default)]
    pub extra_volumes: Vec<HostPathMount>,
    #[serde(default)]
    pub extra_envs: Vec<EnvVar>,
}

/// The API server's component settings plus the extra SANs of its serving certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    #[serde(default)]
    pub extra_args: Vec<Arg>,
    #[serde(default)]
    pub extra_volumes: Vec<HostPathMount>,
    #[serde(default)]
    pub extra_envs: Vec<EnvVar>,
    #[serde(default, rename = "certSANs")]
    pub cert_sans: Vec<String>,
}

/// `kind: JoinConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: JoinConfigurationKind,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    #[serde(default)]
    pub ca_cert_path: Option<String>,
    #[serde(default)]
    pub discovery: Discovery,
    #[serde(default)]
    pub control_plane: Option<JoinControlPlane>,
    #[serde(default)]
    pub skip_phases: Vec<String>,
    #[serde(default)]
    pub patches: Option<Patches>,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
}

/// `kind: ResetConfiguration`: v1beta4's fields under v1's `apiVersion`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: ResetConfigurationKind,
    #[serde(default)]
    pub cleanup_tmp_dir: bool,
    #[serde(default)]
    pub certificates_dir: Option<String>,
    #[serde(default)]
    pub cri_socket: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default)]
    pub skip_phases: Vec<String>,
    #[serde(default)]
    pub unmount_flags: Vec<String>,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
}

/// `kind: UpgradeConfiguration`: v1beta4's fields under v1's `apiVersion`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: UpgradeConfigurationKind,
    #[serde(default)]
    pub apply: UpgradeApplyConfiguration,
    #[serde(default)]
    pub diff: UpgradeDiffConfiguration,
    #[serde(default)]
    pub node: UpgradeNodeConfiguration,
    #[serde(default)]
    pub plan: UpgradePlanConfiguration,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extra_argument_may_carry_a_merge_method() {
        let cluster: ClusterConfiguration = serde_json::from_value(serde_json::json!({
            "apiVersion": "kubeadm.k8s.io/v1",
            "kind": "ClusterConfiguration",
            "apiServer": {"extraArgs": [
                {"name": "authorization-mode", "value": ",Webhook", "mergeMethod": "append"}
            ]},
            "etcd": {"local": {"extraArgs": [{"name": "a", "value": "b"}]}}
        }))
        .unwrap();
        assert_eq!(
            cluster.api_server.extra_args[0].merge_method.as_deref(),
            Some("append")
        );
        assert_eq!(cluster.etcd.local.unwrap().extra_args[0].merge_method, None);
        let err = serde_json::from_value::<InitConfiguration>(serde_json::json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4"
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected \"kubeadm.k8s.io/v1\""), "{err}");
    }
}
