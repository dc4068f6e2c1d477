use kubeforge_api::EffectiveConfig;
use serde_json::{Value, json};

use super::*;

/// The configuration the host passes for `testdata/default/kubeadm-config.yaml`: kubeadm's
/// defaults for a node `node1` advertising 192.168.0.10.
fn default_config() -> Value {
    json!({
        "init": {
            "nodeRegistration": {"name": "node1", "criSocket": "unix:///var/run/containerd/containerd.sock"},
            "localAPIEndpoint": {"advertiseAddress": "192.168.0.10", "bindPort": 6443},
            "timeouts": {"controlPlaneComponentHealthCheck": "4m0s"},
        },
        "cluster": {
            "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
            "networking": {"serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
            "kubernetesVersion": "v1.35.4",
            "certificatesDir": "/etc/kubernetes/pki",
            "imageRepository": "registry.k8s.io",
            "clusterName": "kubernetes",
        },
    })
}

/// `testdata/custom/kubeadm-config.yaml`, defaulted.
fn custom_config() -> Value {
    let mut config = default_config();
    config["init"]["nodeRegistration"]["name"] = json!("cp-1");
    config["init"]["localAPIEndpoint"] =
        json!({"advertiseAddress": "10.20.30.40", "bindPort": 8443});
    config["init"]["timeouts"]["controlPlaneComponentHealthCheck"] = json!("1m35s");
    config["cluster"]["certificatesDir"] = json!("/srv/kubernetes/pki/");
    config["cluster"]["imageRepository"] = json!("registry.example.com/k8s");
    config["cluster"]["etcd"]["local"] = json!({
        "dataDir": "/data/etcd",
        "imageRepository": "quay.io/coreos",
        "imageTag": "3.5.21-0",
        "extraArgs": [
            {"name": "listen-metrics-urls", "value": "http://0.0.0.0:2391,http://127.0.0.1:2392"},
            {"name": "snapshot-count", "value": "5000"},
            {"name": "advertise-client-urls", "value": "https://10.20.30.40:2379"},
        ],
        "extraEnvs": [{"name": "ETCD_X", "value": "1"}],
    });
    config
}

/// `testdata/ipv6/kubeadm-config.yaml`, defaulted.
fn ipv6_config() -> Value {
    let mut config = default_config();
    config["init"]["nodeRegistration"]["name"] = json!("node6");
    config["init"]["localAPIEndpoint"]["advertiseAddress"] = json!("fd00::10");
    config["cluster"]["networking"]["serviceSubnet"] = json!("fd00:10:96::/112");
    config["cluster"]["networking"]["podSubnet"] = json!("fd00:10:244::/56");
    config["cluster"]["etcd"]["local"]["extraArgs"] =
        json!([{"name": "listen-metrics-urls", "value": "https://[::1]:2399"}]);
    config
}

/// `testdata/edge/kubeadm-config.yaml`, defaulted: a data dir with a trailing slash, a
/// metrics URL without host, a repeated user flag replacing a default one.
fn edge_config() -> Value {
    let mut config = default_config();
    config["init"]["nodeRegistration"]["name"] = json!("edge-node.example");
    config["init"]["localAPIEndpoint"]["advertiseAddress"] = json!("172.16.0.5");
    config["cluster"]["networking"]["serviceSubnet"] = json!("10.96.0.0/12,fd00:10:96::/112");
    config["cluster"]["networking"]["podSubnet"] = json!("10.244.0.0/16,fd00:10:244::/56");
    config["cluster"]["etcd"]["local"] = json!({
        "dataDir": "/var/lib/etcd/",
        "extraArgs": [
            {"name": "listen-metrics-urls", "value": "http://:2390"},
            {"name": "initial-cluster", "value": "a=https://1.1.1.1:2380"},
            {"name": "initial-cluster", "value": "b=https://1.1.1.2:2380"},
        ],
        "extraEnvs": [{"name": "ETCD_QUOTA", "value": "8589934592"}],
    });
    config
}

fn parse(config: Value) -> EffectiveConfig {
    serde_json::from_value(config).unwrap()
}

fn pod(config: Value) -> Value {
    etcd_pod(&parse(config)).expect("local etcd")
}

fn command_of(pod: &Value) -> Vec<&str> {
    pod["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// The releases with goldens (testdata/<case>/v1.<minor>/etcd.yaml, written by
/// tests/golden/regenerate.sh with the real kubeadm of each): each case renders at each
/// release as that release's kubeadm rendered it.
const GOLDEN_RELEASES: [&str; 3] = ["v1.35.4", "v1.36.3", "v1.37.2"];

fn assert_matches_kubeadm(mut config: Value, goldens: [&str; 3]) {
    for (version, golden) in GOLDEN_RELEASES.into_iter().zip(goldens) {
        config["cluster"]["kubernetesVersion"] = json!(version);
        let ours = etcd_manifest(&parse(config.clone())).unwrap();
        assert!(
            ours == golden,
            "etcd.yaml at {version} differs from kubeadm's:\n--- kubeadm\n{golden}--- ours\n{ours}"
        );
    }
}

macro_rules! goldens {
    ($case:literal) => {
        [
            include_str!(concat!("testdata/", $case, "/v1.35/etcd.yaml")),
            include_str!(concat!("testdata/", $case, "/v1.36/etcd.yaml")),
            include_str!(concat!("testdata/", $case, "/v1.37/etcd.yaml")),
        ]
    };
}

#[test]
fn default_manifest_is_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(default_config(), goldens!("default"));
}

#[test]
fn custom_manifest_is_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(custom_config(), goldens!("custom"));
}

#[test]
fn ipv6_manifest_is_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(ipv6_config(), goldens!("ipv6"));
}

#[test]
fn edge_case_manifest_is_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(edge_config(), goldens!("edge"));
}

#[test]
fn default_pod_has_every_kubeadm_flag_in_order() {
    let pod = pod(default_config());
    assert_eq!(
        command_of(&pod),
        [
            "etcd",
            "--advertise-client-urls=https://192.168.0.10:2379",
            "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
            "--client-cert-auth=true",
            "--data-dir=/var/lib/etcd",
            "--feature-gates=InitialCorruptCheck=true",
            "--initial-advertise-peer-urls=https://192.168.0.10:2380",
            "--initial-cluster=node1=https://192.168.0.10:2380",
            "--key-file=/etc/kubernetes/pki/etcd/server.key",
            "--listen-client-urls=https://127.0.0.1:2379,https://192.168.0.10:2379",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            "--listen-peer-urls=https://192.168.0.10:2380",
            "--name=node1",
            "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
            "--peer-client-cert-auth=true",
            "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
            "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
            "--snapshot-count=10000",
            "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
            "--watch-progress-notify-interval=5s",
        ]
    );
}

#[test]
fn default_pod_metadata_resources_probes_and_volumes() {
    let pod = pod(default_config());
    assert_eq!(pod["metadata"]["name"], "etcd");
    assert_eq!(pod["metadata"]["namespace"], "kube-system");
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"component": "etcd", "tier": "control-plane"})
    );
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({"kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://192.168.0.10:2379"})
    );
    let spec = &pod["spec"];
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["priority"], 2000001000);
    assert_eq!(spec["priorityClassName"], "system-node-critical");
    assert_eq!(
        spec["securityContext"],
        json!({"seccompProfile": {"type": "RuntimeDefault"}})
    );
    let container = &spec["containers"][0];
    assert_eq!(container["image"], "registry.k8s.io/etcd:3.6.6-0");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "100m", "memory": "100Mi"}})
    );
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 2381, "name": "probe-port", "protocol": "TCP"}])
    );
    assert!(container.get("env").is_none());
    let http_get =
        |path| json!({"host": "127.0.0.1", "path": path, "port": "probe-port", "scheme": "HTTP"});
    assert_eq!(
        container["livenessProbe"],
        json!({"httpGet": http_get("/livez"), "initialDelaySeconds": 10, "timeoutSeconds": 15, "periodSeconds": 10, "failureThreshold": 8})
    );
    assert_eq!(
        container["readinessProbe"],
        json!({"httpGet": http_get("/readyz"), "timeoutSeconds": 15, "periodSeconds": 1, "failureThreshold": 3})
    );
    assert_eq!(
        container["startupProbe"],
        json!({"httpGet": http_get("/readyz"), "initialDelaySeconds": 10, "timeoutSeconds": 15, "periodSeconds": 10, "failureThreshold": 24})
    );
    assert_eq!(
        container["volumeMounts"],
        json!([{"mountPath": "/var/lib/etcd", "name": "etcd-data"}, {"mountPath": "/etc/kubernetes/pki/etcd", "name": "etcd-certs"}])
    );
    assert_eq!(
        spec["volumes"],
        json!([
            {"hostPath": {"path": "/etc/kubernetes/pki/etcd", "type": "DirectoryOrCreate"}, "name": "etcd-certs"},
            {"hostPath": {"path": "/var/lib/etcd", "type": "DirectoryOrCreate"}, "name": "etcd-data"},
        ])
    );
}

#[test]
fn user_arguments_replace_defaults_and_follow_them_in_the_users_order() {
    let pod = pod(custom_config());
    let command = command_of(&pod);
    assert_eq!(
        command[command.len() - 3..],
        [
            "--listen-metrics-urls=http://0.0.0.0:2391,http://127.0.0.1:2392",
            "--snapshot-count=5000",
            "--advertise-client-urls=https://10.20.30.40:2379",
        ]
    );
    assert!(!command.contains(&"--snapshot-count=10000"));
    // kubeadm v1.35 gives etcd 3.5 the experimental flags.
    assert!(command.contains(&"--experimental-initial-corrupt-check=true"));
    assert!(command.contains(&"--experimental-watch-progress-notify-interval=5s"));
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "quay.io/coreos/etcd:3.5.21-0");
    assert_eq!(container["env"], json!([{"name": "ETCD_X", "value": "1"}]));
    // Probes follow the first listen-metrics-url; 95s of health-check timeout is 10 periods.
    assert_eq!(container["livenessProbe"]["httpGet"]["host"], "0.0.0.0");
    assert_eq!(container["ports"][0]["containerPort"], 2391);
    assert_eq!(container["startupProbe"]["failureThreshold"], 10);
    assert_eq!(
        container["volumeMounts"][1]["mountPath"],
        "/srv/kubernetes/pki//etcd"
    );
}

#[test]
fn ipv6_urls_are_bracketed_and_use_the_ipv6_loopback() {
    let pod = pod(ipv6_config());
    let command = command_of(&pod);
    assert!(command.contains(&"--listen-client-urls=https://[::1]:2379,https://[fd00::10]:2379"));
    assert!(command.contains(&"--initial-cluster=node6=https://[fd00::10]:2380"));
    let probe = &pod["spec"]["containers"][0]["livenessProbe"]["httpGet"];
    assert_eq!(probe["host"], "::1");
    assert_eq!(probe["scheme"], "HTTPS");
    assert_eq!(
        pod["spec"]["containers"][0]["ports"][0]["containerPort"],
        2399
    );
}

#[test]
fn external_etcd_has_no_manifest() {
    let mut config = default_config();
    config["cluster"]["etcd"] = json!({"external": {"endpoints": ["https://10.0.0.5:2379"]}});
    assert!(etcd_manifest(&parse(config)).is_none());
}

#[test]
fn etcd_image_follows_the_kubernetes_minor() {
    let tag_for = |version: &str| {
        let mut config = default_config();
        config["cluster"]["kubernetesVersion"] = json!(version);
        let config = parse(config);
        image_tag(&config, &local_etcd(&config).unwrap())
    };
    assert_eq!(tag_for("v1.35.4"), "3.6.6-0");
    assert_eq!(tag_for("v1.36.0"), "3.6.8-0");
    assert_eq!(tag_for("v1.37.2"), "3.7.0-0");
    assert_eq!(tag_for("v1.30.0"), "3.6.6-0");
    assert_eq!(tag_for("v1.40.0"), "3.7.0-0");
}

#[test]
fn from_v1_36_the_graduated_flags_whatever_the_image_tag() {
    for (version, graduated) in [("v1.35.4", false), ("v1.36.3", true), ("v1.37.2", true)] {
        let mut config = custom_config();
        config["cluster"]["kubernetesVersion"] = json!(version);
        let pod = pod(config);
        let command = command_of(&pod);
        assert_eq!(
            command.contains(&"--feature-gates=InitialCorruptCheck=true"),
            graduated,
            "{version}"
        );
        assert_eq!(
            command.contains(&"--experimental-initial-corrupt-check=true"),
            !graduated,
            "{version}"
        );
    }
}

#[test]
fn semantic_versions_parse_as_kubernetes_does() {
    let at_least_3_6 = |text: &str| parse_semver(text).is_some_and(|v| v.at_least(3, 6, 0));
    assert!(at_least_3_6("3.6.6-0"));
    assert!(at_least_3_6("v3.6.0"));
    assert!(!at_least_3_6("3.6.0-rc.1"));
    assert!(!at_least_3_6("3.5.21-0"));
    assert!(parse_semver("3.6").is_none());
    assert!(parse_semver("03.6.0").is_none());
    assert!(parse_semver("3.6.0_x").is_none());
}
