//! Helpers for the phase crates' native unit tests (feature `testing`).

use kubeforge_api::EffectiveConfig;
use serde_json::{Value, json};

/// The effective configuration of a node `node1` advertising 192.168.0.10 with kubeadm's
/// defaults (service subnet 10.96.0.0/12, `cluster.local`, `registry.k8s.io`, v1.37.2, the default release); each
/// field of `cluster` replaces that top-level ClusterConfiguration field.
pub fn config(cluster: Value) -> EffectiveConfig {
    let mut value = json!({
        "init": {
            "nodeRegistration": {"name": "node1"},
            "localAPIEndpoint": {"advertiseAddress": "192.168.0.10", "bindPort": 6443},
        },
        "cluster": {
            "networking": {"serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
            "certificatesDir": "/etc/kubernetes/pki",
            "kubernetesVersion": kubeforge_api::release::DEFAULT_KUBERNETES_VERSION,
            "imageRepository": "registry.k8s.io",
        },
    });
    if let Some(fields) = cluster.as_object() {
        for (key, field) in fields {
            value["cluster"][key] = field.clone();
        }
    }
    serde_json::from_value(value).expect("a valid effective configuration")
}
