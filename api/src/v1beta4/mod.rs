//! The `kubeadm.k8s.io/v1beta4` kinds, field for field, with kubeadm's JSON/YAML names.
//!
//! Decoding is strict (`deny_unknown_fields`), so a misspelt field is an error that names it.
//! Scalars kubeadm defaults are `Option`s: `None` means "not set" and is omitted on output, so a
//! decoded-then-encoded document stays as small as the user wrote it. Nested objects kubeadm
//! declares as values (not pointers) are plain structs that always print, as kubeadm's do.
//! Optional strings are omitted when empty too: Go's `omitempty` cannot tell `""` from unset,
//! so neither may we.

mod encryption;
mod type_meta;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Duration;

pub use encryption::{EncryptionAlgorithm, UnsupportedEncryptionAlgorithm};
pub(crate) use type_meta::api_version_marker;
pub use type_meta::{
    ApiVersion, ClusterConfigurationKind, InitConfigurationKind, JoinConfigurationKind,
    ResetConfigurationKind, UpgradeConfigurationKind,
};

/// `apiVersion` of every kind in this module.
pub const GROUP_VERSION: &str = "kubeadm.k8s.io/v1beta4";

/// Whether an optional string is left out of the output, as Go's `omitempty` leaves out `""`.
pub(crate) fn is_unset(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

/// `kind: InitConfiguration`: node-local settings for `kubeadm init`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: InitConfigurationKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_tokens: Vec<BootstrapToken>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub certificate_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// A bootstrap token (`<id>.<secret>`) created by init for joining nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapToken {
    /// `[a-z0-9]{6}.[a-z0-9]{16}`; generated during defaulting when absent.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// RFC 3339 time; takes precedence over `ttl`.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// How this node registers with the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistrationOptions {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub cri_socket: Option<String>,
    /// `None` (absent or `null`) means kubeadm's default control-plane taint;
    /// `Some(vec![])` (`taints: []`) means no taints at all. Printed as `null` when unset,
    /// as kubeadm does.
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubelet_extra_args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// A node taint as in the core/v1 API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub time_added: Option<String>,
}

/// A command-line argument `--name=value`; v1beta4 keeps them as an ordered list so a flag
/// may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    pub name: String,
    pub value: String,
}

/// An environment variable for a static pod container. Only literal values are supported;
/// core/v1's `valueFrom` is rejected when decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Where the API server on this node listens and what it advertises.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiEndpoint {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub advertise_address: Option<String>,
    /// Kept as Go's int32 so an out-of-range port is reported by validation, not the decoder;
    /// 0 means "use the default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_port: Option<i32>,
}

/// `--patches` / `patches.directory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patches {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub directory: Option<String>,
}

/// How long kubeadm waits for each kind of operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_component_health_check: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_health_check: Option<Duration>,
    #[serde(
        default,
        rename = "kubernetesAPICall",
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_api_call: Option<Duration>,
    #[serde(
        default,
        rename = "etcdAPICall",
        skip_serializing_if = "Option::is_none"
    )]
    pub etcd_api_call: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_bootstrap: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_manifests: Option<Duration>,
}

/// `kind: ClusterConfiguration`: settings shared by every node of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "is_unset")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
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
    #[serde(default, skip_serializing_if = "is_unset")]
    pub certificates_dir: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_repository: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub cluster_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_validity_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_validity_period: Option<Duration>,
}

/// Local (stacked) or external etcd; at most one of the two may be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Etcd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalEtcd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalEtcd>,
}

/// An etcd static pod run by kubeadm on each control-plane node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_repository: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
    #[serde(
        default,
        rename = "serverCertSANs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub server_cert_sans: Vec<String>,
    #[serde(
        default,
        rename = "peerCertSANs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub peer_cert_sans: Vec<String>,
}

/// An etcd cluster kubeadm does not manage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEtcd {
    pub endpoints: Vec<String>,
    /// The endpoints for etcd's HTTP-only health and metrics checks; kubeadm defaults them to
    /// `endpoints`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_endpoints: Vec<String>,
    #[serde(default)]
    pub ca_file: String,
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

/// Cluster networking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    /// Comma-separated for dual-stack; the first family is primary.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub service_subnet: Option<String>,
    /// Comma-separated for dual-stack.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub pod_subnet: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub dns_domain: Option<String>,
}

/// Extra settings for a control-plane static pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneComponent {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
}

/// The API server's component settings plus the extra SANs of its serving certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
    #[serde(default, rename = "certSANs", skip_serializing_if = "Vec::is_empty")]
    pub cert_sans: Vec<String>,
}

/// A hostPath volume mounted into a control-plane static pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathMount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub host_path: String,
    #[serde(default)]
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// core/v1 HostPathType (`DirectoryOrCreate`, `File`, …); empty means no check.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub path_type: Option<String>,
}

/// The cluster DNS add-on (CoreDNS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_repository: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// The kube-proxy add-on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proxy {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// `kind: JoinConfiguration`: settings for `kubeadm join`, on a worker or another control-plane
/// node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: JoinConfigurationKind,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    /// The cluster CA the node trusts once discovery is done; kubeadm's default is
    /// `/etc/kubernetes/pki/ca.crt`.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub ca_cert_path: Option<String>,
    #[serde(default)]
    pub discovery: Discovery,
    /// Set when the node joins as another control-plane node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<JoinControlPlane>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// The API server a joining control-plane node runs, and the key that decrypts the shared
/// certificates `init --upload-certs` stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinControlPlane {
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub certificate_key: Option<String>,
}

/// How a joining node finds and trusts the cluster: a bootstrap token or a kubeconfig file
/// (exactly one of the two).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileDiscovery>,
    /// The token for the TLS bootstrap; kubeadm's default is the discovery token.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub tls_bootstrap_token: Option<String>,
}

/// Discovery through the API server's `cluster-info`, signed with a bootstrap token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapTokenDiscovery {
    /// Always printed, as kubeadm's (its field has no `omitempty`).
    #[serde(default)]
    pub token: String,
    /// `host:port` of an API server.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub api_server_endpoint: Option<String>,
    /// `sha256:<hex>` pins of the cluster CA's public key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_cert_hashes: Vec<String>,
    #[serde(
        default,
        rename = "unsafeSkipCAVerification",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub unsafe_skip_ca_verification: bool,
}

/// Discovery through a kubeconfig file (a path or an `https://` URL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDiscovery {
    /// Always printed, as kubeadm's (its field has no `omitempty`).
    #[serde(default)]
    pub kube_config_path: String,
}

/// `kind: ResetConfiguration`: settings for `kubeadm reset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: ResetConfigurationKind,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleanup_tmp_dir: bool,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub certificates_dir: Option<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub cri_socket: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// `MNT_FORCE`, `MNT_DETACH`, `MNT_EXPIRE` or `UMOUNT_NOFOLLOW`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmount_flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// `kind: UpgradeConfiguration`: settings for the `kubeadm upgrade` subcommands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// `kubeadm upgrade apply`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeApplyConfiguration {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_experimental_upgrades: Option<bool>,
    #[serde(
        default,
        rename = "allowRCUpgrades",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_rc_upgrades: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_renewal: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_config: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// `kubeadm upgrade diff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeDiffConfiguration {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub kubernetes_version: Option<String>,
    /// Go's `int`; 0 (unset) is omitted, as kubeadm omits it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_lines: i64,
}

/// `kubeadm upgrade node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeNodeConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_renewal: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    #[serde(default, skip_serializing_if = "is_unset")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// `kubeadm upgrade plan`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradePlanConfiguration {
    #[serde(default, skip_serializing_if = "is_unset")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_experimental_upgrades: Option<bool>,
    #[serde(
        default,
        rename = "allowRCUpgrades",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_rc_upgrades: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_upgrade: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_config: Option<bool>,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests;
