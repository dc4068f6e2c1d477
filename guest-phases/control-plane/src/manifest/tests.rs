use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::{EnvVar, ExternalEtcd};
use serde_json::{Value, json};

use super::*;

/// The configuration the host passes for `testdata/default/kubeadm-config.yaml`.
fn default_config() -> Value {
    json!({
        "init": {
            "nodeRegistration": {"name": "node1"},
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

fn arg(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// `testdata/custom/kubeadm-config.yaml`, defaulted.
fn custom_config() -> Value {
    let mut config = default_config();
    config["init"]["nodeRegistration"]["name"] = json!("cp-1");
    config["init"]["localAPIEndpoint"] =
        json!({"advertiseAddress": "10.20.30.40", "bindPort": 8443});
    config["init"]["timeouts"]["controlPlaneComponentHealthCheck"] = json!("1m35s");
    let cluster = &mut config["cluster"];
    cluster["clusterName"] = json!("prod");
    cluster["certificatesDir"] = json!("/srv/kubernetes/pki/");
    cluster["imageRepository"] = json!("registry.example.com/k8s");
    cluster["controlPlaneEndpoint"] = json!("api.example.com:443");
    cluster["networking"] = json!({"dnsDomain": "corp.local", "serviceSubnet": "10.100.0.0/16", "podSubnet": "10.244.0.0/16"});
    cluster["apiServer"] = json!({
        "certSANs": ["api.example.com", "10.0.0.1"],
        "extraArgs": [
            arg("authorization-mode", "Node,RBAC,Webhook"),
            arg("audit-log-path", "/var/log/kubernetes/audit.log"),
            arg("secure-port", "9443"),
            arg("enable-admission-plugins", "NodeRestriction,PodSecurity"),
            arg("enable-admission-plugins", "AlwaysPullImages"),
            arg("feature-gates", "SomeGate=true"),
            arg("api-audiences", ""),
        ],
        "extraEnvs": [{"name": "GOGC", "value": "50"}, {"name": "HTTPS_PROXY", "value": "http://override:3128"}],
        "extraVolumes": [
            {"name": "audit", "hostPath": "/var/log/kubernetes", "mountPath": "/var/log/kubernetes", "pathType": "DirectoryOrCreate"},
            {"name": "policies", "hostPath": "/etc/kubernetes/policies", "mountPath": "/etc/kubernetes/policies", "readOnly": true},
            {"name": "ca-certs", "hostPath": "/etc/my-certs", "mountPath": "/etc/ssl/certs", "readOnly": true, "pathType": "Directory"},
        ],
    });
    cluster["controllerManager"] = json!({
        "extraArgs": [arg("bind-address", "0.0.0.0"), arg("flex-volume-plugin-dir", "/opt/flex"), arg("node-cidr-mask-size", "24")],
        "extraEnvs": [{"name": "TZ", "value": "UTC"}],
    });
    cluster["scheduler"] = json!({
        "extraArgs": [arg("bind-address", "10.20.30.40"), arg("v", "2")],
        "extraVolumes": [
            {"name": "sched-config", "hostPath": "/etc/kubernetes/sched.yaml", "mountPath": "/etc/kubernetes/sched.yaml", "readOnly": true, "pathType": "File"},
        ],
    });
    cluster["etcd"]["local"] = json!({
        "dataDir": "/data/etcd",
        "imageRepository": "quay.io/coreos",
        "imageTag": "3.5.21-0",
        "extraArgs": [
            arg("listen-metrics-urls", "http://0.0.0.0:2391,http://127.0.0.1:2392"),
            arg("snapshot-count", "5000"),
            arg("advertise-client-urls", "https://10.20.30.40:2379"),
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
        json!([arg("listen-metrics-urls", "https://[::1]:2399")]);
    config
}

/// `testdata/external/kubeadm-config.yaml`, defaulted.
fn external_config() -> Value {
    let mut config = default_config();
    config["cluster"]["etcd"] = json!({"external": {
        "endpoints": ["https://10.0.0.5:2379", "https://10.0.0.6:2379"],
        "caFile": "/etc/etcd/pki/ca.crt",
        "certFile": "/etc/etcd/pki/client/apiserver-etcd-client.crt",
        "keyFile": "/opt/keys/apiserver-etcd-client.key",
    }});
    config
}

/// `testdata/edge/kubeadm-config.yaml`, defaulted: dual-stack subnets, structured
/// authorization, unspecified bind addresses, values YAML must quote or fold, a user volume
/// replacing a default one.
fn edge_config() -> Value {
    let mut config = default_config();
    config["init"]["nodeRegistration"]["name"] = json!("edge-node.example");
    config["init"]["localAPIEndpoint"]["advertiseAddress"] = json!("172.16.0.5");
    let cluster = &mut config["cluster"];
    cluster["networking"]["serviceSubnet"] = json!("10.96.0.0/12,fd00:10:96::/112");
    cluster["networking"]["podSubnet"] = json!("10.244.0.0/16,fd00:10:244::/56");
    cluster["apiServer"] = json!({
        "extraArgs": [
            arg("authorization-config", "/etc/kubernetes/authz.yaml"),
            arg("authorization-mode", "Node,Magic"),
            arg("admission-control-config-file", "a very long value with many spaces that should be folded by the yaml emitter at column eighty or so, yes"),
            arg("bind-address", "::"),
        ],
        "extraEnvs": [
            {"name": "FLAG", "value": "true"},
            {"name": "COLON", "value": "a: b"},
            {"name": "STAR", "value": "*star"},
            {"name": "EMPTY", "value": ""},
            {"name": "NUM", "value": "0755"},
        ],
        "extraVolumes": [
            {"name": "long", "hostPath": "/var/lib/a very long path with spaces/that goes on and on and on beyond eighty columns/x", "mountPath": "/x"},
        ],
    });
    cluster["controllerManager"] =
        json!({"extraArgs": [arg("bind-address", "::"), arg("controllers", "*,-nodeipam")]});
    cluster["scheduler"] = json!({
        "extraArgs": [arg("bind-address", "0.0.0.0")],
        "extraVolumes": [
            {"name": "kubeconfig", "hostPath": "/etc/kubernetes/other-scheduler.conf", "mountPath": "/etc/kubernetes/scheduler.conf", "readOnly": true, "pathType": "File"},
        ],
    });
    cluster["etcd"]["local"] = json!({
        "dataDir": "/var/lib/etcd/",
        "extraArgs": [
            arg("listen-metrics-urls", "http://:2390"),
            arg("initial-cluster", "a=https://1.1.1.1:2380"),
            arg("initial-cluster", "b=https://1.1.1.2:2380"),
        ],
        "extraEnvs": [{"name": "ETCD_QUOTA", "value": "8589934592"}],
    });
    config
}

/// The node the golden files were generated on.
fn golden_node() -> NodeFacts {
    NodeFacts {
        existing_ca_cert_dirs: [
            "/etc/ca-certificates",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
        ]
        .map(String::from)
        .to_vec(),
        proxy_env: vec![],
        external_ca: false,
    }
}

fn proxied_golden_node() -> NodeFacts {
    let environment = [
        ("HTTPS_PROXY", "http://proxy:3128"),
        ("no_proxy", "10.0.0.0/8,.example.com"),
        ("http_proxy", ""),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    NodeFacts {
        proxy_env: kubeforge_sdk::staticpod::proxy_env_vars(environment),
        ..golden_node()
    }
}

fn parse(config: Value) -> EffectiveConfig {
    serde_json::from_value(config).unwrap()
}

/// The releases with goldens (testdata/<case>/v1.<minor>/, by tests/golden/regenerate.sh): the
/// case's config is rendered at each, as the release's kubeadm rendered it.
const GOLDEN_RELEASES: [&str; 3] = ["v1.35.4", "v1.36.3", "v1.37.2"];

fn assert_matches_kubeadm(mut config: Value, facts: &NodeFacts, goldens: [[&str; 3]; 3]) {
    for (version, goldens) in GOLDEN_RELEASES.into_iter().zip(goldens) {
        config["cluster"]["kubernetesVersion"] = json!(version);
        let config = parse(config.clone());
        for (component, golden) in Component::ALL.into_iter().zip(goldens) {
            let ours = manifest(&config, facts, component);
            assert!(
                ours == golden,
                "{} at {version} differs from kubeadm's:\n--- kubeadm\n{golden}--- ours\n{ours}",
                component.name()
            );
        }
    }
}

macro_rules! goldens_at {
    ($case:literal, $minor:literal) => {
        [
            include_str!(concat!(
                "testdata/",
                $case,
                "/",
                $minor,
                "/kube-apiserver.yaml"
            )),
            include_str!(concat!(
                "testdata/",
                $case,
                "/",
                $minor,
                "/kube-controller-manager.yaml"
            )),
            include_str!(concat!(
                "testdata/",
                $case,
                "/",
                $minor,
                "/kube-scheduler.yaml"
            )),
        ]
    };
}

macro_rules! goldens {
    ($case:literal) => {
        [
            goldens_at!($case, "v1.35"),
            goldens_at!($case, "v1.36"),
            goldens_at!($case, "v1.37"),
        ]
    };
}

#[test]
fn default_manifests_are_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(default_config(), &golden_node(), goldens!("default"));
}

#[test]
fn custom_manifests_are_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(custom_config(), &proxied_golden_node(), goldens!("custom"));
}

#[test]
fn ipv6_manifests_are_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(ipv6_config(), &golden_node(), goldens!("ipv6"));
}

#[test]
fn external_etcd_manifests_are_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(external_config(), &golden_node(), goldens!("external"));
}

#[test]
fn edge_case_manifests_are_kubeadms_byte_for_byte() {
    assert_matches_kubeadm(edge_config(), &golden_node(), goldens!("edge"));
    // Structured authorization: kubeadm neither sets the mode nor warns about the user's.
    assert!(apiserver_warnings(&parse(edge_config())).is_empty());
}

fn pod_of(config: Value, facts: &NodeFacts, component: Component) -> Value {
    pod(&parse(config), facts, component)
}

fn command_of(pod: &Value) -> Vec<String> {
    serde_json::from_value(pod["spec"]["containers"][0]["command"].clone()).unwrap()
}

fn volume_names(pod: &Value) -> Vec<&str> {
    pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect()
}

fn https_get(host: &str, path: &str) -> Value {
    json!({"host": host, "path": path, "port": "probe-port", "scheme": "HTTPS"})
}

#[test]
fn default_apiserver_has_every_kubeadm_flag_probe_and_volume() {
    let pod = pod_of(
        default_config(),
        &NodeFacts::default(),
        Component::ApiServer,
    );
    assert_eq!(
        command_of(&pod),
        [
            "kube-apiserver",
            "--advertise-address=192.168.0.10",
            "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            "--client-ca-file=/etc/kubernetes/pki/ca.crt",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-bootstrap-token-auth=true",
            "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
            "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
            "--etcd-servers=https://127.0.0.1:2379",
            "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
            "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
            "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            "--secure-port=6443",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
            "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
            "--service-cluster-ip-range=10.96.0.0/12",
            "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
            "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
        ]
    );
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"component": "kube-apiserver", "tier": "control-plane"})
    );
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": "192.168.0.10:6443"})
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
    assert_eq!(container["image"], "registry.k8s.io/kube-apiserver:v1.35.4");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["resources"], json!({"requests": {"cpu": "250m"}}));
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 6443, "name": "probe-port", "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"],
        json!({"httpGet": https_get("192.168.0.10", "/livez"), "initialDelaySeconds": 10, "timeoutSeconds": 15, "periodSeconds": 10, "failureThreshold": 8})
    );
    assert_eq!(
        container["readinessProbe"],
        json!({"httpGet": https_get("192.168.0.10", "/readyz"), "timeoutSeconds": 15, "periodSeconds": 1, "failureThreshold": 3})
    );
    assert_eq!(
        container["startupProbe"],
        json!({"httpGet": https_get("192.168.0.10", "/livez"), "initialDelaySeconds": 10, "timeoutSeconds": 15, "periodSeconds": 10, "failureThreshold": 24})
    );
    assert_eq!(
        spec["volumes"],
        json!([
            {"hostPath": {"path": "/etc/ssl/certs", "type": "DirectoryOrCreate"}, "name": "ca-certs"},
            {"hostPath": {"path": "/etc/kubernetes/pki", "type": "DirectoryOrCreate"}, "name": "k8s-certs"},
        ])
    );
    assert_eq!(
        container["volumeMounts"],
        json!([
            {"mountPath": "/etc/ssl/certs", "name": "ca-certs", "readOnly": true},
            {"mountPath": "/etc/kubernetes/pki", "name": "k8s-certs", "readOnly": true},
        ])
    );
}

#[test]
fn default_controller_manager_and_scheduler() {
    let facts = NodeFacts::default();
    let kcm = pod_of(default_config(), &facts, Component::ControllerManager);
    assert_eq!(
        command_of(&kcm),
        [
            "kube-controller-manager",
            "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
            "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
            "--bind-address=127.0.0.1",
            "--client-ca-file=/etc/kubernetes/pki/ca.crt",
            "--cluster-name=kubernetes",
            "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
            "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
            "--controllers=*,bootstrapsigner,tokencleaner",
            "--kubeconfig=/etc/kubernetes/controller-manager.conf",
            "--leader-elect=true",
            "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
            "--root-ca-file=/etc/kubernetes/pki/ca.crt",
            "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
            "--use-service-account-credentials=true",
        ]
    );
    let container = &kcm["spec"]["containers"][0];
    assert_eq!(container["resources"], json!({"requests": {"cpu": "200m"}}));
    assert_eq!(container["ports"][0]["containerPort"], 10257);
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        https_get("127.0.0.1", "/healthz")
    );
    assert_eq!(
        container["startupProbe"]["httpGet"],
        https_get("127.0.0.1", "/healthz")
    );
    assert!(container.get("readinessProbe").is_none());
    assert!(kcm["metadata"].get("annotations").is_none());
    assert_eq!(
        volume_names(&kcm),
        ["ca-certs", "flexvolume-dir", "k8s-certs", "kubeconfig"]
    );
    assert_eq!(
        kcm["spec"]["volumes"][3],
        json!({"hostPath": {"path": "/etc/kubernetes/controller-manager.conf", "type": "FileOrCreate"}, "name": "kubeconfig"})
    );
    // The FlexVolume directory is the one writable mount.
    assert_eq!(
        container["volumeMounts"][1],
        json!({"mountPath": "/usr/libexec/kubernetes/kubelet-plugins/volume/exec", "name": "flexvolume-dir"})
    );

    let scheduler = pod_of(default_config(), &facts, Component::Scheduler);
    assert_eq!(
        command_of(&scheduler),
        [
            "kube-scheduler",
            "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
            "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
            "--bind-address=127.0.0.1",
            "--kubeconfig=/etc/kubernetes/scheduler.conf",
            "--leader-elect=true",
        ]
    );
    let container = &scheduler["spec"]["containers"][0];
    assert_eq!(container["resources"], json!({"requests": {"cpu": "100m"}}));
    assert_eq!(container["ports"][0]["containerPort"], 10259);
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        https_get("127.0.0.1", "/livez")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        https_get("127.0.0.1", "/readyz")
    );
    assert_eq!(
        container["startupProbe"]["httpGet"],
        https_get("127.0.0.1", "/livez")
    );
    assert_eq!(volume_names(&scheduler), ["kubeconfig"]);
}

#[test]
fn custom_config_changes_flags_volumes_env_and_probes() {
    let facts = proxied_golden_node();
    let apiserver = pod_of(custom_config(), &facts, Component::ApiServer);
    let command = command_of(&apiserver);
    for flag in [
        "--service-account-issuer=https://kubernetes.default.svc.corp.local",
        "--service-cluster-ip-range=10.100.0.0/16",
        "--client-ca-file=/srv/kubernetes/pki/ca.crt",
        // The local etcd's advertised client URL replaces the loopback one.
        "--etcd-servers=https://10.20.30.40:2379",
    ] {
        assert!(
            command.contains(&flag.to_owned()),
            "{flag} missing from {command:?}"
        );
    }
    // User flags replace kubeadm's of the same name and follow the defaults in the user's order.
    assert_eq!(
        command[command.len() - 7..],
        [
            "--authorization-mode=Node,RBAC,Webhook",
            "--audit-log-path=/var/log/kubernetes/audit.log",
            "--secure-port=9443",
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            "--enable-admission-plugins=AlwaysPullImages",
            "--feature-gates=SomeGate=true",
            "--api-audiences=",
        ]
    );
    let container = &apiserver["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.com/k8s/kube-apiserver:v1.35.4"
    );
    // The probe port stays the bind port even when the flag moves the server.
    assert_eq!(container["ports"][0]["containerPort"], 8443);
    assert_eq!(container["startupProbe"]["failureThreshold"], 10);
    assert_eq!(
        container["env"],
        json!([
            {"name": "GOGC", "value": "50"},
            {"name": "HTTPS_PROXY", "value": "http://override:3128"},
            {"name": "no_proxy", "value": "10.0.0.0/8,.example.com"},
        ])
    );
    assert_eq!(
        volume_names(&apiserver),
        [
            "audit",
            "ca-certs",
            "etc-ca-certificates",
            "k8s-certs",
            "policies",
            "usr-local-share-ca-certificates",
            "usr-share-ca-certificates",
        ]
    );
    // A user volume named like a default one replaces it; no pathType is written as "".
    assert_eq!(
        apiserver["spec"]["volumes"][1]["hostPath"],
        json!({"path": "/etc/my-certs", "type": "Directory"})
    );
    assert_eq!(
        apiserver["spec"]["volumes"][4]["hostPath"],
        json!({"path": "/etc/kubernetes/policies", "type": ""})
    );

    let kcm = pod_of(custom_config(), &facts, Component::ControllerManager);
    let command = command_of(&kcm);
    for flag in [
        "--allocate-node-cidrs=true",
        "--cluster-cidr=10.244.0.0/16",
        "--service-cluster-ip-range=10.100.0.0/16",
        "--cluster-name=prod",
        "--bind-address=0.0.0.0",
    ] {
        assert!(
            command.contains(&flag.to_owned()),
            "{flag} missing from {command:?}"
        );
    }
    assert!(!command.contains(&"--bind-address=127.0.0.1".to_owned()));
    let container = &kcm["spec"]["containers"][0];
    // Bound to every address: the kubelet probes the Pod IP.
    assert!(container["livenessProbe"]["httpGet"].get("host").is_none());
    assert_eq!(
        container["volumeMounts"][2],
        json!({"mountPath": "/opt/flex", "name": "flexvolume-dir"})
    );

    let scheduler = pod_of(custom_config(), &facts, Component::Scheduler);
    let container = &scheduler["spec"]["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["host"], "10.20.30.40");
    assert_eq!(volume_names(&scheduler), ["kubeconfig", "sched-config"]);
}

#[test]
fn ipv6_apiserver_uses_the_ipv6_loopback_for_etcd() {
    let apiserver = pod_of(ipv6_config(), &NodeFacts::default(), Component::ApiServer);
    let command = command_of(&apiserver);
    assert!(command.contains(&"--etcd-servers=https://[::1]:2379".to_owned()));
    assert!(command.contains(&"--advertise-address=fd00::10".to_owned()));
    assert_eq!(
        apiserver["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
        "[fd00::10]:6443"
    );
    assert_eq!(
        apiserver["spec"]["containers"][0]["livenessProbe"]["httpGet"]["host"],
        "fd00::10"
    );
}

#[test]
fn external_etcd_uses_the_users_endpoints_and_files() {
    let apiserver = pod_of(
        external_config(),
        &NodeFacts::default(),
        Component::ApiServer,
    );
    let command = command_of(&apiserver);
    for flag in [
        "--etcd-servers=https://10.0.0.5:2379,https://10.0.0.6:2379",
        "--etcd-cafile=/etc/etcd/pki/ca.crt",
        "--etcd-certfile=/etc/etcd/pki/client/apiserver-etcd-client.crt",
        "--etcd-keyfile=/opt/keys/apiserver-etcd-client.key",
    ] {
        assert!(
            command.contains(&flag.to_owned()),
            "{flag} missing from {command:?}"
        );
    }
    assert_eq!(
        volume_names(&apiserver),
        ["ca-certs", "etcd-certs-0", "etcd-certs-1", "k8s-certs"]
    );
    assert_eq!(
        apiserver["spec"]["containers"][0]["volumeMounts"][1],
        json!({"mountPath": "/etc/etcd/pki", "name": "etcd-certs-0", "readOnly": true})
    );
}

#[test]
fn external_etcd_without_client_certificates_sets_only_servers() {
    let mut config = external_config();
    config["cluster"]["etcd"]["external"] = json!({"endpoints": ["http://10.0.0.5:2379"]});
    let command = command_of(&pod_of(config, &NodeFacts::default(), Component::ApiServer));
    let etcd_flags: Vec<&String> = command
        .iter()
        .filter(|flag| flag.starts_with("--etcd"))
        .collect();
    assert_eq!(etcd_flags, ["--etcd-servers=http://10.0.0.5:2379"]);
}

#[test]
fn external_etcd_cert_dirs_skip_mounted_and_nested_directories() {
    let external = |files: [&str; 3]| ExternalEtcd {
        ca_file: files[0].into(),
        cert_file: files[1].into(),
        key_file: files[2].into(),
        ..ExternalEtcd::default()
    };
    let pki = "/etc/kubernetes/pki";
    assert_eq!(
        external_etcd_cert_dirs(
            &external(["/etc/etcd/ca.crt", "/etc/etcd/sub/c.crt", "/opt/k.key"]),
            pki
        ),
        ["/etc/etcd", "/opt"]
    );
    // A parent replaces a child seen earlier.
    assert_eq!(
        external_etcd_cert_dirs(
            &external(["/etc/etcd/sub/ca.crt", "/etc/etcd/c.crt", ""]),
            pki
        ),
        ["/etc/etcd"]
    );
    assert!(
        external_etcd_cert_dirs(
            &external([
                "/etc/ssl/certs/ca.crt",
                "/etc/kubernetes/pki/etcd/c.crt",
                "/etc/pki/tls/certs/k.key"
            ]),
            pki
        )
        .is_empty()
    );
    assert!(external_etcd_cert_dirs(&external(["ca.crt", "", ""]), pki).is_empty());
}

#[test]
fn external_ca_leaves_the_signing_files_empty() {
    let facts = NodeFacts {
        external_ca: true,
        ..NodeFacts::default()
    };
    let command = command_of(&pod_of(
        default_config(),
        &facts,
        Component::ControllerManager,
    ));
    assert!(command.contains(&"--cluster-signing-cert-file=".to_owned()));
    assert!(command.contains(&"--cluster-signing-key-file=".to_owned()));
}

#[test]
fn structured_authorization_drops_the_mode_flag() {
    let mut config = default_config();
    config["cluster"]["apiServer"]["extraArgs"] =
        json!([arg("authorization-config", "/etc/kubernetes/authz.yaml")]);
    let command = command_of(&pod_of(config, &NodeFacts::default(), Component::ApiServer));
    assert!(
        !command
            .iter()
            .any(|flag| flag.starts_with("--authorization-mode"))
    );
    assert_eq!(
        command.last().unwrap(),
        "--authorization-config=/etc/kubernetes/authz.yaml"
    );
}

#[test]
fn unusual_authorization_modes_are_warned_about() {
    let with_modes = |modes: &str| {
        let mut config = default_config();
        config["cluster"]["apiServer"]["extraArgs"] = json!([arg("authorization-mode", modes)]);
        apiserver_warnings(&parse(config))
    };
    assert!(with_modes("Node,RBAC").is_empty());
    assert_eq!(
        with_modes("RBAC,Magic"),
        [
            "ignoring unknown kube-apiserver authorization-mode \"Magic\"",
            "the default kube-apiserver authorization-mode is \"Node,RBAC\"; using \"RBAC\"",
        ]
    );
    assert!(apiserver_warnings(&parse(default_config())).is_empty());
}

#[test]
fn controller_manager_without_a_pod_subnet_allocates_no_cidrs() {
    let command = command_of(&pod_of(
        default_config(),
        &NodeFacts::default(),
        Component::ControllerManager,
    ));
    assert!(!command.iter().any(
        |flag| flag.starts_with("--allocate-node-cidrs") || flag.starts_with("--cluster-cidr")
    ));
}

#[test]
fn existing_ca_dirs_are_mounted_into_apiserver_and_controller_manager_only() {
    let facts = NodeFacts {
        existing_ca_cert_dirs: vec!["/etc/pki/ca-trust".into()],
        ..NodeFacts::default()
    };
    for component in [Component::ApiServer, Component::ControllerManager] {
        assert!(
            volume_names(&pod_of(default_config(), &facts, component))
                .contains(&"etc-pki-ca-trust")
        );
    }
    assert_eq!(
        volume_names(&pod_of(default_config(), &facts, Component::Scheduler)),
        ["kubeconfig"]
    );
}

#[test]
fn images_use_the_repository_and_a_tag_safe_version() {
    let mut config = default_config();
    config["cluster"]["kubernetesVersion"] = json!("v1.35.4+build.1");
    config["cluster"]["imageRepository"] = json!("mirror.local:5000/k8s");
    assert_eq!(
        image(&parse(config), Component::Scheduler),
        "mirror.local:5000/k8s/kube-scheduler:v1.35.4_build.1"
    );
}

#[test]
fn proxy_variables_reach_every_component() {
    let facts = NodeFacts {
        proxy_env: vec![EnvVar {
            name: "https_proxy".into(),
            value: "http://p:3128".into(),
        }],
        ..NodeFacts::default()
    };
    for component in Component::ALL {
        let pod = pod_of(default_config(), &facts, component);
        assert_eq!(
            pod["spec"]["containers"][0]["env"],
            json!([{"name": "https_proxy", "value": "http://p:3128"}])
        );
    }
}
