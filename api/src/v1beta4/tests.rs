use super::*;

#[test]
fn json_round_trip_of_a_full_config() {
    let json = serde_json::json!({
        "init": {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "InitConfiguration",
            "localAPIEndpoint": {"advertiseAddress": "10.0.0.1", "bindPort": 6443},
            "nodeRegistration": {"name": "cp-1", "taints": []},
            "timeouts": {"kubernetesAPICall": "1m0s", "etcdAPICall": "2m0s", "tlsBootstrap": "5m0s"}
        },
        "cluster": {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ClusterConfiguration",
            "apiServer": {"certSANs": ["lb.example.com"]},
            "controllerManager": {},
            "dns": {},
            "etcd": {"local": {"dataDir": "/var/lib/etcd", "serverCertSANs": ["etcd"]}},
            "networking": {"serviceSubnet": "10.96.0.0/12"},
            "proxy": {},
            "scheduler": {},
            "encryptionAlgorithm": "ECDSA-P384",
            "caCertificateValidityPeriod": "87600h0m0s"
        }
    });
    let config: crate::EffectiveConfig = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(config.init.node_registration.taints, Some(vec![]));
    assert_eq!(
        config.cluster.encryption_algorithm,
        Some(EncryptionAlgorithm::EcdsaP384)
    );
    assert_eq!(serde_json::to_value(&config).unwrap(), json);
}
