//! `config print init-defaults`: kubeadm's example InitConfiguration + ClusterConfiguration.

use kubeforge_api::v1beta4::{
    ApiEndpoint, BootstrapToken, ClusterConfiguration, InitConfiguration, NodeRegistrationOptions,
};
use serde::Serialize;

use super::defaults::{DEFAULT_CRI_SOCKET, apply_static_defaults};
use kubeforge_api::EffectiveConfig;
use kubeforge_api::release::Release;

/// Placeholder values kubeadm prints where real ones come from the machine or are random.
const EXAMPLE_TOKEN: &str = "abcdef.0123456789abcdef";
const EXAMPLE_ADVERTISE_ADDRESS: &str = "1.2.3.4";
const EXAMPLE_NODE_NAME: &str = "node";

/// The two documents the kubeadm of `release` prints for `kubeadm config print init-defaults`,
/// keys sorted as kubeadm sorts them, separated by `---`.
pub fn init_defaults_yaml(release: Release) -> String {
    let (init, cluster) = init_defaults(release);
    format!("{}---\n{}", to_sorted_yaml(&init), to_sorted_yaml(&cluster))
}

/// kubeadm's `DefaultedStaticInitConfiguration`: placeholders where the machine would be read
/// (or a token generated), and the fixed defaults only (so `taints: null`: only the dynamic
/// defaults fill it).
fn init_defaults(release: Release) -> (InitConfiguration, ClusterConfiguration) {
    let mut config = EffectiveConfig {
        init: InitConfiguration {
            bootstrap_tokens: vec![BootstrapToken {
                token: Some(EXAMPLE_TOKEN.into()),
                ..Default::default()
            }],
            local_api_endpoint: ApiEndpoint {
                advertise_address: Some(EXAMPLE_ADVERTISE_ADDRESS.into()),
                ..Default::default()
            },
            node_registration: NodeRegistrationOptions {
                name: Some(EXAMPLE_NODE_NAME.into()),
                cri_socket: Some(DEFAULT_CRI_SOCKET.into()),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    };
    apply_static_defaults(&mut config);
    let EffectiveConfig {
        init, mut cluster, ..
    } = config;
    // kubeadm's own version, `<major>.<minor>.0`, so that it never looks one up.
    cluster.kubernetes_version = Some(format!("1.{}.0", release.minor));
    (init, cluster)
}

/// YAML with every mapping's keys in lexical order, as kubeadm's JSON-then-YAML output has.
pub(super) fn to_sorted_yaml(document: &impl Serialize) -> String {
    let mut value = serde_json::to_value(document).expect("config kinds serialize to JSON");
    value.sort_all_objects();
    kubeforge_api::yaml::to_string(&value)
}
