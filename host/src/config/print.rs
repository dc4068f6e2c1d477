//! `config print init-defaults`: kubeadm's example InitConfiguration + ClusterConfiguration.

use kubeforge_api::v1beta4::{
    ApiEndpoint, BootstrapToken, ClusterConfiguration, InitConfiguration, NodeRegistrationOptions,
};
use serde::Serialize;

use super::defaults::{
    DEFAULT_BIND_PORT, DEFAULT_CRI_SOCKET, DEFAULT_IMAGE_PULL_POLICY, DEFAULT_KUBERNETES_VERSION,
    KubernetesVersion, apply_static_defaults, default_timeouts,
};
use kubeforge_api::EffectiveConfig;

/// Placeholder values kubeadm prints where real ones come from the machine or are random.
const EXAMPLE_TOKEN: &str = "abcdef.0123456789abcdef";
const EXAMPLE_ADVERTISE_ADDRESS: &str = "1.2.3.4";
const EXAMPLE_NODE_NAME: &str = "node";

/// The two documents kubeadm v1.35 prints for `kubeadm config print init-defaults`, keys
/// sorted as kubeadm sorts them, separated by `---`.
pub fn init_defaults_yaml() -> String {
    let (init, cluster) = init_defaults();
    format!("{}---\n{}", to_sorted_yaml(&init), to_sorted_yaml(&cluster))
}

fn init_defaults() -> (InitConfiguration, ClusterConfiguration) {
    let mut config = EffectiveConfig {
        init: InitConfiguration {
            bootstrap_tokens: vec![BootstrapToken {
                token: Some(EXAMPLE_TOKEN.into()),
                ..Default::default()
            }],
            local_api_endpoint: ApiEndpoint {
                advertise_address: Some(EXAMPLE_ADVERTISE_ADDRESS.into()),
                bind_port: Some(DEFAULT_BIND_PORT),
            },
            node_registration: NodeRegistrationOptions {
                name: Some(EXAMPLE_NODE_NAME.into()),
                cri_socket: Some(DEFAULT_CRI_SOCKET.into()),
                image_pull_policy: Some(DEFAULT_IMAGE_PULL_POLICY.into()),
                image_pull_serial: Some(true),
                ..Default::default()
            },
            timeouts: Some(default_timeouts()),
            ..Default::default()
        },
        cluster: ClusterConfiguration::default(),
        ..Default::default()
    };
    apply_static_defaults(&mut config);
    let EffectiveConfig {
        mut init,
        mut cluster,
        ..
    } = config;
    // kubeadm prints the taints it has not defaulted yet (`taints: null`) and the version as
    // `<major>.<minor>.0` of its own release.
    init.node_registration.taints = None;
    let version = KubernetesVersion::parse(DEFAULT_KUBERNETES_VERSION)
        .map(|v| format!("{}.{}.0", v.major, v.minor));
    cluster.kubernetes_version = version;
    (init, cluster)
}

/// YAML with every mapping's keys in lexical order, as kubeadm's JSON-then-YAML output has.
pub(super) fn to_sorted_yaml(document: &impl Serialize) -> String {
    let mut value = serde_json::to_value(document).expect("config kinds serialize to JSON");
    value.sort_all_objects();
    kubeforge_api::yaml::to_string(&value)
}
