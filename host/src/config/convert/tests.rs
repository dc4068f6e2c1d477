use kubeforge_api::v1beta4::Arg;

use super::*;

fn arg(name: &str, value: &str) -> Arg {
    Arg {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn v1beta3_maps_become_lists_sorted_as_go_sorts_them() {
    let cluster: v1beta3::ClusterConfiguration = serde_json::from_value(serde_json::json!({
        "apiServer": {"extraArgs": {"b": "2", "a-b": "1", "B": "0"}},
        "etcd": {"external": {"endpoints": ["https://e:2379"]}}
    }))
    .unwrap();
    let (cluster, timeout) = cluster_from_v1beta3(cluster);
    assert_eq!(
        cluster.api_server.extra_args,
        [arg("B", "0"), arg("a-b", "1"), arg("b", "2")]
    );
    assert_eq!(timeout, DEFAULT_V1BETA3_CONTROL_PLANE_TIMEOUT);
    let external = cluster.etcd.external.unwrap();
    assert_eq!(external.http_endpoints, external.endpoints);
    // What v1beta3 cannot say, kubeadm's conversion sets.
    assert_eq!(
        cluster.encryption_algorithm,
        Some(EncryptionAlgorithm::Rsa2048)
    );
    assert_eq!(
        cluster.ca_certificate_validity_period,
        Some(DEFAULT_CA_CERTIFICATE_VALIDITY)
    );
}

#[test]
fn v1beta3_timeouts_move_to_where_v1beta4_keeps_them() {
    let join: v1beta3::JoinConfiguration = serde_json::from_value(serde_json::json!({
        "discovery": {"timeout": "2m10s"},
        "nodeRegistration": {"kubeletExtraArgs": {"v": "4"}}
    }))
    .unwrap();
    let join = join_from_v1beta3(join);
    let timeouts = join.timeouts.unwrap();
    assert_eq!(timeouts.discovery, Some("2m10s".parse().unwrap()));
    assert_eq!(
        timeouts.control_plane_component_health_check,
        default_timeouts().control_plane_component_health_check
    );
    assert_eq!(join.node_registration.kubelet_extra_args, [arg("v", "4")]);
    assert_eq!(join.node_registration.image_pull_serial, Some(true));

    let init = init_from_v1beta3(v1beta3::InitConfiguration::default());
    assert_eq!(init.timeouts, Some(default_timeouts()));
    let cluster: v1beta3::ClusterConfiguration = serde_json::from_value(serde_json::json!({
        "apiServer": {"timeoutForControlPlane": "0s"}
    }))
    .unwrap();
    assert_eq!(cluster_from_v1beta3(cluster).1, Duration::ZERO);
}

#[test]
fn v1_drops_merge_methods_after_checking_them() {
    let cluster: v1::ClusterConfiguration = serde_json::from_value(serde_json::json!({
        "controllerManager": {"extraArgs": [{"name": "a", "value": "1", "mergeMethod": "append"}]},
        "etcd": {"local": {"extraArgs": [
            {"name": "b", "value": "2"},
            {"name": "c", "value": "3", "mergeMethod": "replace"}
        ]}}
    }))
    .unwrap();
    let mut from_v1 = FromV1::default();
    let cluster = from_v1.cluster(cluster);
    assert_eq!(cluster.controller_manager.extra_args, [arg("a", "1")]);
    assert_eq!(
        from_v1
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["etcd.local.extraArgs: Invalid value: \"index 1\": argument has an invalid merge method"]
    );
}
