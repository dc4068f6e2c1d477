use kubeforge_api::EffectiveConfig;
use serde_json::json;

use super::*;

fn config(service_subnet: &str) -> EffectiveConfig {
    serde_json::from_value(json!({
        "init": {"nodeRegistration": {"name": "node1"}},
        "cluster": {
            "networking": {"serviceSubnet": service_subnet, "dnsDomain": "cluster.local"},
            "certificatesDir": "/etc/kubernetes/pki",
            "kubernetesVersion": "v1.35.4",
        },
    }))
    .unwrap()
}

#[test]
fn kubelet_configuration_matches_kubeadm_byte_for_byte() {
    assert_eq!(
        kubelet_configuration(&config("10.96.0.0/12")).unwrap(),
        include_str!("testdata/kubelet-config.yaml")
    );
}

#[test]
fn cluster_dns_is_the_tenth_service_address() {
    let yaml = kubelet_configuration(&config("fd00:10:96::/112,10.96.0.0/16")).unwrap();
    assert!(yaml.contains("clusterDNS:\n- fd00:10:96::a\n"), "{yaml}");
}

#[test]
fn kubelet_config_map_is_signed_as_kubeadm_signs_it() {
    let objects = kubelet_config_objects(&config("10.96.0.0/12")).unwrap();
    let map = &objects[0];
    // sha256 over the only data value, as kubeadm's ChecksumForConfigMap.
    let digest = Sha256::digest(map["data"]["kubelet"].as_str().unwrap().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        map["metadata"]["annotations"][HASH_ANNOTATION],
        format!("sha256:{hex}")
    );
    assert_eq!(
        objects[1]["rules"][0]["resourceNames"],
        json!([KUBELET_CONFIG])
    );
    assert_eq!(objects[2]["roleRef"]["name"], "kubeadm:kubelet-config");
    assert_eq!(
        objects[2]["subjects"],
        json!([
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:bootstrappers:kubeadm:default-node-token"},
        ])
    );
}

#[test]
fn kubeadm_config_holds_the_cluster_configuration() {
    let objects = kubeadm_config_objects(&config("10.96.0.0/12")).unwrap();
    let text = objects[0]["data"]["ClusterConfiguration"].as_str().unwrap();
    assert!(text.contains("kind: ClusterConfiguration\n"), "{text}");
    assert!(text.contains("serviceSubnet: 10.96.0.0/12\n"), "{text}");
    assert_eq!(
        objects[1]["metadata"]["name"],
        "kubeadm:nodes-kubeadm-config"
    );
    assert_eq!(objects[2]["subjects"][1]["name"], "system:nodes");
}
