//! The `kubeadm.k8s.io/v1beta3` kinds, field for field, as kubeadm v1.35 and v1.36 still read
//! them (deprecated; kubeadm v1.37 removed them). Only InitConfiguration, ClusterConfiguration
//! and JoinConfiguration exist in this version.
//!
//! These types are only ever read: the host converts them to [`crate::v1beta4`] with kubeadm's
//! rules and everything downstream sees v1beta4. Decoding is strict, like v1beta4's; the
//! sections v1beta3 shares with v1beta4 field for field are v1beta4's own types.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Duration;
use crate::v1beta4::{
    ApiEndpoint, BootstrapToken, BootstrapTokenDiscovery, ClusterConfigurationKind, FileDiscovery,
    HostPathMount, InitConfigurationKind, JoinConfigurationKind, JoinControlPlane, Networking,
    Patches, Taint, api_version_marker,
};

/// `apiVersion` of every kind in this module.
pub const GROUP_VERSION: &str = "kubeadm.k8s.io/v1beta3";

api_version_marker!(ApiVersion, GROUP_VERSION);

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
    pub node_registration: NodeRegistrationOptions,
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    #[serde(default)]
    pub certificate_key: Option<String>,
    #[serde(default)]
    pub skip_phases: Vec<String>,
    #[serde(default)]
    pub patches: Option<Patches>,
}

/// How this node registers with the cluster. Unlike v1beta4, the kubelet's extra arguments are
/// a map (one value per flag) and there is no `imagePullSerial`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistrationOptions {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cri_socket: Option<String>,
    /// `None` (absent or `null`) means kubeadm's default control-plane taint; `Some(vec![])`
    /// means none.
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    #[serde(default)]
    pub kubelet_extra_args: BTreeMap<String, String>,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
}

/// `kind: ClusterConfiguration`. Unlike v1beta4 it has no `proxy`, `encryptionAlgorithm` or
/// certificate validity periods.
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
    pub certificates_dir: Option<String>,
    #[serde(default)]
    pub image_repository: Option<String>,
    #[serde(default)]
    pub feature_gates: BTreeMap<String, bool>,
    #[serde(default)]
    pub cluster_name: Option<String>,
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

/// The etcd static pod; no `extraEnvs`, and the extra arguments are a map.
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
    pub extra_args: BTreeMap<String, String>,
    #[serde(default, rename = "serverCertSANs")]
    pub server_cert_sans: Vec<String>,
    #[serde(default, rename = "peerCertSANs")]
    pub peer_cert_sans: Vec<String>,
}

/// An etcd cluster kubeadm does not manage; no `httpEndpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEtcd {
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub ca_file: String,
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

/// A control-plane static pod's extra arguments (a map) and volumes; no `extraEnvs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneComponent {
    #[serde(default)]
    pub extra_args: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_volumes: Vec<HostPathMount>,
}

/// The API server's settings, with v1beta3's `timeoutForControlPlane` (v1beta4 moved it to
/// `InitConfiguration.timeouts.controlPlaneComponentHealthCheck`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    #[serde(default)]
    pub extra_args: BTreeMap<String, String>,
    #[serde(default)]
    pub extra_volumes: Vec<HostPathMount>,
    #[serde(default, rename = "certSANs")]
    pub cert_sans: Vec<String>,
    #[serde(default)]
    pub timeout_for_control_plane: Option<Duration>,
}

/// The DNS add-on's image; v1beta3 cannot disable it (skip the `addon/coredns` phase instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    #[serde(default)]
    pub image_repository: Option<String>,
    #[serde(default)]
    pub image_tag: Option<String>,
}

/// `kind: JoinConfiguration`. Unlike v1beta4 it has no `dryRun` or `timeouts`; the discovery
/// timeout is `discovery.timeout`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinConfiguration {
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub kind: JoinConfigurationKind,
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
}

/// How a joining node finds the cluster, with v1beta3's own `timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    #[serde(default)]
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    #[serde(default)]
    pub file: Option<FileDiscovery>,
    #[serde(default)]
    pub tls_bootstrap_token: Option<String>,
    #[serde(default)]
    pub timeout: Option<Duration>,
}

#[cfg(test)]
mod tests;
