use super::*;

#[test]
fn extra_arguments_are_maps_and_timeouts_live_where_v1beta3_keeps_them() {
    let cluster: ClusterConfiguration = serde_json::from_value(serde_json::json!({
        "apiVersion": "kubeadm.k8s.io/v1beta3",
        "kind": "ClusterConfiguration",
        "apiServer": {
            "extraArgs": {"audit-log-path": "/var/log/audit.log"},
            "timeoutForControlPlane": "2m32s"
        },
        "etcd": {"local": {"extraArgs": {"quota-backend-bytes": "8589934592"}}}
    }))
    .unwrap();
    assert_eq!(
        cluster.api_server.extra_args["audit-log-path"],
        "/var/log/audit.log"
    );
    assert_eq!(
        cluster.api_server.timeout_for_control_plane,
        Some("2m32s".parse().unwrap())
    );
    let join: JoinConfiguration = serde_json::from_value(serde_json::json!({
        "nodeRegistration": {"kubeletExtraArgs": {"node-labels": "a=b"}},
        "discovery": {"timeout": "2m10s", "file": {"kubeConfigPath": "/etc/kubernetes/discovery.conf"}}
    }))
    .unwrap();
    assert_eq!(join.discovery.timeout, Some("2m10s".parse().unwrap()));
    assert_eq!(
        join.node_registration.kubelet_extra_args["node-labels"],
        "a=b"
    );
}

#[test]
fn v1beta4_only_fields_and_other_versions_are_refused() {
    for (field, document) in [
        ("timeouts", serde_json::json!({"timeouts": {}})),
        ("dryRun", serde_json::json!({"dryRun": true})),
        (
            "imagePullSerial",
            serde_json::json!({"nodeRegistration": {"imagePullSerial": false}}),
        ),
    ] {
        let err = serde_json::from_value::<InitConfiguration>(document)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("unknown field `{field}`")), "{err}");
    }
    let err = serde_json::from_value::<ClusterConfiguration>(serde_json::json!({
        "etcd": {"external": {"endpoints": ["https://e:2379"], "httpEndpoints": []}}
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("httpEndpoints"), "{err}");
    let err = serde_json::from_value::<InitConfiguration>(serde_json::json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4"
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("expected \"kubeadm.k8s.io/v1beta3\""), "{err}");
}
