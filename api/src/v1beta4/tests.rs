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

#[test]
fn taints_distinguish_absent_null_and_empty() {
    let decode = |json: serde_json::Value| -> NodeRegistrationOptions {
        serde_json::from_value(json).unwrap()
    };
    assert_eq!(decode(serde_json::json!({})).taints, None);
    assert_eq!(decode(serde_json::json!({"taints": null})).taints, None);
    assert_eq!(
        decode(serde_json::json!({"taints": []})).taints,
        Some(vec![])
    );
    let with_taint = decode(serde_json::json!({
        "taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]
    }));
    assert_eq!(
        with_taint.taints.unwrap()[0].value.as_deref(),
        Some("infra")
    );
    // kubeadm prints unset taints as `taints: null`.
    let printed = serde_json::to_value(NodeRegistrationOptions::default()).unwrap();
    assert_eq!(printed, serde_json::json!({"taints": null}));
}

#[test]
fn unknown_fields_are_errors_that_name_them() {
    let err = serde_json::from_value::<InitConfiguration>(serde_json::json!({
        "localAPIEndpoint": {"advertiseAdress": "10.0.0.1"}
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `advertiseAdress`"), "{err}");
    let err = serde_json::from_value::<ClusterConfiguration>(serde_json::json!({
        "apiServer": {"extraEnvs": [{"name": "A", "valueFrom": {}}]}
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("valueFrom"), "{err}");
}

#[test]
fn api_version_and_kind_are_checked_and_always_printed() {
    let err = serde_json::from_value::<InitConfiguration>(serde_json::json!({
        "apiVersion": "kubeadm.k8s.io/v1beta3"
    }))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("kubeadm.k8s.io/v1beta4") && err.contains("v1beta3"),
        "{err}"
    );
    let err = serde_json::from_value::<ClusterConfiguration>(serde_json::json!({
        "kind": "InitConfiguration"
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("expected \"ClusterConfiguration\""), "{err}");
    let printed = serde_json::to_value(ClusterConfiguration::default()).unwrap();
    assert_eq!(printed["apiVersion"], GROUP_VERSION);
    assert_eq!(printed["kind"], "ClusterConfiguration");
    // Value-typed sections print as `{}`, as kubeadm's do.
    assert_eq!(printed["apiServer"], serde_json::json!({}));
}

#[test]
fn encryption_algorithms_use_kubeadms_spelling() {
    for (text, algorithm) in [
        ("RSA-2048", EncryptionAlgorithm::Rsa2048),
        ("RSA-3072", EncryptionAlgorithm::Rsa3072),
        ("RSA-4096", EncryptionAlgorithm::Rsa4096),
        ("ECDSA-P256", EncryptionAlgorithm::EcdsaP256),
        ("ECDSA-P384", EncryptionAlgorithm::EcdsaP384),
    ] {
        assert_eq!(text.parse::<EncryptionAlgorithm>().unwrap(), algorithm);
        assert_eq!(serde_json::to_value(algorithm).unwrap(), text);
    }
    assert!(EncryptionAlgorithm::Rsa4096.is_rsa() && !EncryptionAlgorithm::EcdsaP384.is_rsa());
    let err = "rsa-2048"
        .parse::<EncryptionAlgorithm>()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "encryptionAlgorithm: Invalid value: \"rsa-2048\": must be one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384"
    );
}

#[test]
fn etcd_external_requires_endpoints() {
    let err = serde_json::from_value::<Etcd>(serde_json::json!({"external": {"caFile": "/ca"}}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("endpoints"), "{err}");
}

#[test]
fn join_reset_and_upgrade_print_what_kubeadm_prints() {
    let join: JoinConfiguration = serde_json::from_value(serde_json::json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "token": "abcdef.0123456789abcdef",
                "apiServerEndpoint": "10.0.0.1:6443",
                "unsafeSkipCAVerification": true
            }
        },
        "controlPlane": {"certificateKey": ""}
    }))
    .unwrap();
    // Value sections and fields without `omitempty` print even when empty; `""` never does.
    assert_eq!(
        serde_json::to_value(&join).unwrap(),
        serde_json::json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "JoinConfiguration",
            "nodeRegistration": {"taints": null},
            "discovery": {
                "bootstrapToken": {
                    "token": "abcdef.0123456789abcdef",
                    "apiServerEndpoint": "10.0.0.1:6443",
                    "unsafeSkipCAVerification": true
                }
            },
            "controlPlane": {"localAPIEndpoint": {}}
        })
    );
    let reset: ResetConfiguration = serde_json::from_value(serde_json::json!({
        "cleanupTmpDir": true,
        "unmountFlags": ["MNT_DETACH"]
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&reset).unwrap(),
        serde_json::json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ResetConfiguration",
            "cleanupTmpDir": true,
            "unmountFlags": ["MNT_DETACH"]
        })
    );
    let upgrade: UpgradeConfiguration = serde_json::from_value(serde_json::json!({
        "apply": {"allowRCUpgrades": false, "kubernetesVersion": "v1.37.2"},
        "diff": {"contextLines": 0}
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&upgrade).unwrap(),
        serde_json::json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "UpgradeConfiguration",
            "apply": {"allowRCUpgrades": false, "kubernetesVersion": "v1.37.2"},
            "diff": {},
            "node": {},
            "plan": {}
        })
    );
}

#[test]
fn external_etcd_keeps_http_endpoints() {
    let etcd: Etcd = serde_json::from_value(serde_json::json!({
        "external": {"endpoints": ["https://e:2379"], "httpEndpoints": ["http://e:2381"]}
    }))
    .unwrap();
    assert_eq!(
        etcd.external.unwrap().http_endpoints,
        ["http://e:2381".to_owned()]
    );
}
