use kubeforge_api::EffectiveConfig;
use kubeforge_sdk::objects::{HASH_ANNOTATION, config_map_checksum};
use serde_json::json;

use super::*;

fn config(service_subnet: &str) -> EffectiveConfig {
    serde_json::from_value(json!({
        "init": {"nodeRegistration": {"name": "node1"}},
        "cluster": {
            "networking": {"serviceSubnet": service_subnet, "dnsDomain": "cluster.local"},
            "certificatesDir": "/etc/kubernetes/pki",
            "kubernetesVersion": "v1.37.2",
        },
    }))
    .unwrap()
}

#[test]
fn kubelet_config_map_holds_the_cluster_kubelet_configuration() {
    let objects = kubelet_config_objects(&config("10.96.0.0/12"), None).unwrap();
    let text = objects[0]["data"]["kubelet"].as_str().unwrap();
    assert!(
        text.starts_with("apiVersion: kubelet.config.k8s.io/v1beta1\n"),
        "{text}"
    );
    assert!(text.contains("clusterDNS:\n- 10.96.0.10\n"), "{text}");
    assert!(text.contains("rotateCertificates: true\n"), "{text}");
    // Per-node settings stay out of the shared document.
    assert!(text.contains("containerRuntimeEndpoint: \"\"\n"), "{text}");
    assert!(!text.contains("resolvConf"), "{text}");
}

#[test]
fn kubelet_config_map_is_signed_as_kubeadm_signs_it() {
    let objects = kubelet_config_objects(&config("10.96.0.0/12"), None).unwrap();
    let map = &objects[0];
    assert_eq!(
        map["metadata"]["annotations"][HASH_ANNOTATION],
        config_map_checksum(map["data"].as_object().unwrap())
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
fn a_user_supplied_kubelet_configuration_is_uploaded_unsigned_with_the_user_s_values() {
    let mut config = config("10.96.0.0/12");
    config.kubelet = Some(json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "maxPods": 42,
        "cgroupDriver": "cgroupfs",
    }));
    let objects = kubelet_config_objects(&config, None).unwrap();
    let text = objects[0]["data"]["kubelet"].as_str().unwrap();
    assert!(text.contains("maxPods: 42\n"), "{text}");
    assert!(text.contains("cgroupDriver: cgroupfs\n"), "{text}");
    assert!(
        text.contains("staticPodPath: /etc/kubernetes/manifests\n"),
        "{text}"
    );
    assert!(objects[0]["metadata"].get("annotations").is_none());
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

#[test]
fn up_to_v1_36_the_resolver_kubelet_start_set_is_uploaded_too() {
    let resolv_conf = Some("/run/systemd/resolve/resolv.conf");
    for (version, uploaded) in [("v1.35.4", true), ("v1.36.3", true), ("v1.37.2", false)] {
        let mut config = config("10.96.0.0/12");
        config.cluster.kubernetes_version = Some(version.into());
        let objects = kubelet_config_objects(&config, resolv_conf).unwrap();
        let text = objects[0]["data"]["kubelet"].as_str().unwrap();
        assert_eq!(
            text.contains("resolvConf: /run/systemd/resolve/resolv.conf\n"),
            uploaded,
            "{version}: {text}"
        );
        assert_eq!(
            objects[0]["metadata"]["annotations"][HASH_ANNOTATION],
            config_map_checksum(objects[0]["data"].as_object().unwrap()),
            "{version}: signed over what is uploaded"
        );
    }
}

#[test]
fn only_v1_35_without_node_local_cri_socket_annotates_the_node() {
    let mut config = config("10.96.0.0/12");
    config.init.node_registration.cri_socket = Some("unix:///run/crio/crio.sock".into());
    for version in ["v1.35.4", "v1.36.3", "v1.37.2"] {
        config.cluster.kubernetes_version = Some(version.into());
        assert_eq!(cri_socket_annotation(&config), None, "{version}");
    }
    config
        .cluster
        .feature_gates
        .insert("NodeLocalCRISocket".into(), false);
    config.cluster.kubernetes_version = Some("v1.36.3".into());
    assert_eq!(cri_socket_annotation(&config), None);
    config.cluster.kubernetes_version = Some("v1.35.4".into());
    assert_eq!(
        cri_socket_annotation(&config),
        Some(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "node1",
                "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/crio/crio.sock"},
            },
        }))
    );
}
