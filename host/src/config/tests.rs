use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use kubeforge_api::net::{control_plane_endpoint_url, dns_service_ip};
use kubeforge_api::v1beta4::EncryptionAlgorithm;

use super::defaults::tests::FakeMachine;
use super::*;

fn machine() -> FakeMachine {
    FakeMachine {
        hostname: Ok("Worker-A".into()),
        address: Ok(Ipv4Addr::new(172, 16, 0, 4)),
    }
}

fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeadm.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn load(path: Option<&Path>, flags: &InitFlags) -> Result<LoadedConfig, ConfigError> {
    load_init_on(path, flags, &machine())
}

const FULL_CONFIG: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.0123456789abcdef
  description: first
  ttl: 1h30m
  usages: [signing, authentication]
  groups: [system:bootstrappers:kubeadm:default-node-token]
dryRun: true
nodeRegistration:
  name: cp-1
  criSocket: unix:///run/containerd/containerd.sock
  taints: []
  kubeletExtraArgs:
  - name: node-labels
    value: tier=gold
  ignorePreflightErrors: [Swap]
  imagePullPolicy: Never
  imagePullSerial: false
localAPIEndpoint:
  advertiseAddress: fd00::10
  bindPort: 8443
certificateKey: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
skipPhases: [addon/kube-proxy]
patches:
  directory: /srv/patches
timeouts:
  controlPlaneComponentHealthCheck: 10m
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 30s
  etcdAPICall: 2m0s
  tlsBootstrap: 5m0s
  discovery: 5m0s
  upgradeManifests: 5m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  local:
    imageRepository: mirror.example.com/etcd
    imageTag: 3.6.5-0
    dataDir: /data/etcd
    extraArgs:
    - name: quota-backend-bytes
      value: \"8589934592\"
    extraEnvs:
    - name: ETCD_X
      value: \"y\"
    serverCertSANs: [etcd.example.com]
    peerCertSANs: [10.0.0.7]
networking:
  serviceSubnet: fd00:10:96::/112,10.96.0.0/16
  podSubnet: fd00:10:244::/56,10.244.0.0/16
  dnsDomain: corp.local
kubernetesVersion: v1.34.3
controlPlaneEndpoint: \"[fd00::100]:443\"
apiServer:
  extraArgs:
  - name: audit-log-path
    value: /var/log/audit.log
  - name: audit-log-path
    value: /var/log/audit2.log
  extraEnvs:
  - name: GODEBUG
    value: x509sha1=1
  extraVolumes:
  - name: audit
    hostPath: /var/log/kubernetes
    mountPath: /var/log
    readOnly: false
    pathType: DirectoryOrCreate
  certSANs: [lb.example.com, \"*.corp.example.com\", 10.0.0.100]
controllerManager:
  extraArgs:
  - name: node-cidr-mask-size-ipv6
    value: \"64\"
scheduler:
  extraVolumes:
  - name: sched
    hostPath: /etc/sched
    mountPath: /etc/sched
    readOnly: true
dns:
  imageRepository: mirror.example.com/coredns
  imageTag: v1.12.1
  disabled: false
proxy:
  disabled: true
certificatesDir: /srv/pki
imageRepository: mirror.example.com
featureGates:
  NodeLocalCRISocket: true
clusterName: prod
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 720h
caCertificateValidityPeriod: 43800h
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
";

#[test]
fn no_file_and_no_flags_gives_kubeadms_defaults() {
    let loaded = load(None, &InitFlags::default()).unwrap();
    let config = &loaded.effective;
    assert_eq!(
        config.init.node_registration.name.as_deref(),
        Some("worker-a")
    );
    assert_eq!(
        config.init.local_api_endpoint.advertise_address.as_deref(),
        Some("172.16.0.4")
    );
    assert_eq!(
        control_plane_endpoint_url(config),
        "https://172.16.0.4:6443"
    );
    assert_eq!(
        config.cluster.kubernetes_version.as_deref(),
        Some(DEFAULT_KUBERNETES_VERSION)
    );
    assert!(loaded.effective.kubelet.is_none() && loaded.warnings.is_empty());

    // Phases read these without further defaulting.
    let json = serde_json::to_value(config).unwrap();
    for pointer in [
        "/init/nodeRegistration/name",
        "/init/nodeRegistration/criSocket",
        "/init/nodeRegistration/taints/0/key",
        "/init/localAPIEndpoint/advertiseAddress",
        "/init/localAPIEndpoint/bindPort",
        "/init/bootstrapTokens/0/token",
        "/init/timeouts/controlPlaneComponentHealthCheck",
        "/cluster/networking/serviceSubnet",
        "/cluster/networking/dnsDomain",
        "/cluster/certificatesDir",
        "/cluster/imageRepository",
        "/cluster/clusterName",
        "/cluster/encryptionAlgorithm",
        "/cluster/certificateValidityPeriod",
        "/cluster/caCertificateValidityPeriod",
        "/cluster/etcd/local/dataDir",
    ] {
        assert!(
            json.pointer(pointer).is_some(),
            "{pointer} missing in {json:#}"
        );
    }
}

#[test]
fn a_full_file_is_read_kept_and_validated() {
    let (_dir, path) = write_config(FULL_CONFIG);
    let loaded = load(Some(&path), &InitFlags::default()).unwrap();
    let (init, cluster) = (&loaded.effective.init, &loaded.effective.cluster);
    assert!(init.dry_run);
    assert_eq!(init.node_registration.taints, Some(vec![]));
    assert_eq!(init.node_registration.image_pull_serial, Some(false));
    assert_eq!(init.bootstrap_tokens[0].ttl.unwrap().to_string(), "1h30m0s");
    assert_eq!(
        init.timeouts
            .as_ref()
            .unwrap()
            .kubernetes_api_call
            .unwrap()
            .to_string(),
        "30s"
    );
    assert_eq!(
        cluster.encryption_algorithm,
        Some(EncryptionAlgorithm::EcdsaP256)
    );
    assert_eq!(
        cluster.api_server.extra_args.len(),
        2,
        "repeated args are kept"
    );
    assert!(cluster.proxy.disabled);
    assert_eq!(
        control_plane_endpoint_url(&loaded.effective),
        "https://[fd00::100]:443"
    );
    assert_eq!(
        dns_service_ip(cluster.networking.service_subnet.as_deref().unwrap())
            .unwrap()
            .to_string(),
        "fd00:10:96::a"
    );
    assert_eq!(loaded.effective.kubelet.unwrap()["cgroupDriver"], "systemd");
    assert_eq!(loaded.effective.kube_proxy.unwrap()["mode"], "nftables");
}

#[test]
fn yaml_round_trip_of_a_full_config_is_lossless() {
    let documents = load::parse_config_documents(Path::new("full.yaml"), FULL_CONFIG).unwrap();
    let (init, cluster) = (documents.init.unwrap(), documents.cluster.unwrap());
    let printed = format!(
        "{}---\n{}",
        print::to_sorted_yaml(&init),
        print::to_sorted_yaml(&cluster)
    );
    let reparsed = load::parse_config_documents(Path::new("printed.yaml"), &printed).unwrap();
    assert_eq!(reparsed.init.unwrap(), init);
    assert_eq!(reparsed.cluster.unwrap(), cluster);
}

#[test]
fn minimal_documents_stay_minimal() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";
    let documents = load::parse_config_documents(Path::new("min.yaml"), text).unwrap();
    let value = serde_json::to_value(documents.init.unwrap()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "InitConfiguration",
            "localAPIEndpoint": {},
            "nodeRegistration": {"taints": null},
        })
    );
}

#[test]
fn a_cluster_document_alone_is_enough() {
    let (_dir, path) = write_config(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: solo\n",
    );
    let loaded = load(Some(&path), &InitFlags::default()).unwrap();
    assert_eq!(
        loaded.effective.cluster.cluster_name.as_deref(),
        Some("solo")
    );
    assert_eq!(
        loaded.effective.init.node_registration.name.as_deref(),
        Some("worker-a")
    );
}

#[test]
fn a_file_without_kubeadm_kinds_is_refused() {
    let (_dir, path) =
        write_config("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n");
    let message = load(Some(&path), &InitFlags::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("has no InitConfiguration or ClusterConfiguration"),
        "{message}"
    );
}

#[test]
fn flags_and_config_mix_only_as_kubeadm_allows() {
    let (_dir, path) =
        write_config("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n");
    let flags = InitFlags {
        pod_network_cidr: Some("10.244.0.0/16".into()),
        kubernetes_version: Some("v1.35.0".into()),
        ..Default::default()
    };
    let message = load(Some(&path), &flags).unwrap_err().to_string();
    assert_eq!(
        message,
        "can not mix '--config' with arguments [kubernetes-version pod-network-cidr]"
    );

    let flags = InitFlags {
        skip_phases: vec!["addon/coredns".into()],
        dry_run: true,
        ..Default::default()
    };
    let loaded = load(Some(&path), &flags).unwrap();
    assert!(loaded.effective.init.dry_run);
    assert!(loaded.effective.cluster.dns.disabled);
}

#[test]
fn flags_alone_configure_init() {
    let flags = InitFlags {
        apiserver_advertise_address: Some("10.1.2.3".into()),
        control_plane_endpoint: Some("lb.example.com".into()),
        pod_network_cidr: Some("10.244.0.0/16".into()),
        kubernetes_version: Some("stable".into()),
        ..Default::default()
    };
    let loaded = load(None, &flags).unwrap();
    assert_eq!(
        control_plane_endpoint_url(&loaded.effective),
        "https://lb.example.com:6443"
    );
    assert_eq!(
        loaded.effective.cluster.kubernetes_version.as_deref(),
        Some("v1.35.4")
    );
}

#[test]
fn every_validation_problem_is_reported_at_once() {
    let (_dir, path) = write_config(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: not-an-ip
  bindPort: 99999
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking:
  serviceSubnet: 10.96.0.0/30
",
    );
    let error = load(Some(&path), &InitFlags::default()).unwrap_err();
    let ConfigError::Invalid(problems) = &error else {
        panic!("expected validation errors, got {error}");
    };
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let message = error.to_string();
    assert!(
        message.starts_with("invalid configuration (3 problems):"),
        "{message}"
    );
    assert!(message.contains("\n  - localAPIEndpoint.advertiseAddress: Invalid value: \"not-an-ip\": ip address is not valid"));
    assert!(message.contains(
        "\n  - localAPIEndpoint.bindPort: Invalid value: 99999: port number is not valid"
    ));
    assert!(message.contains("\n  - networking.serviceSubnet: Invalid value: \"10.96.0.0/30\": subnet with 4 address(es) is too small, the minimum is 10"));
}

#[test]
fn unreadable_files_name_the_path() {
    let message = load(
        Some(Path::new("/nonexistent/kubeadm.yaml")),
        &InitFlags::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.starts_with("unable to read config file \"/nonexistent/kubeadm.yaml\""),
        "{message}"
    );
}

#[test]
fn typos_are_errors_naming_the_field() {
    let (_dir, path) = write_config(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnett: 10.244.0.0/16\n",
    );
    let message = load(Some(&path), &InitFlags::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("podSubnett"), "{message}");
    assert!(
        message.contains("document 1 (ClusterConfiguration)"),
        "{message}"
    );
}

#[test]
fn bad_enum_and_duration_values_are_explained() {
    let (_dir, path) = write_config(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: RSA-1024\n",
    );
    let message = load(Some(&path), &InitFlags::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("encryptionAlgorithm: Invalid value: \"RSA-1024\""),
        "{message}"
    );

    let (_dir, path) = write_config(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: 1y\n",
    );
    let message = load(Some(&path), &InitFlags::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("invalid duration \"1y\""), "{message}");
}

const KUBEADM_INIT_DEFAULTS: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
bootstrapTokens:
- groups:
  - system:bootstrappers:kubeadm:default-node-token
  token: abcdef.0123456789abcdef
  ttl: 24h0m0s
  usages:
  - signing
  - authentication
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 1.2.3.4
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  imagePullPolicy: IfNotPresent
  imagePullSerial: true
  name: node
  taints: null
timeouts:
  controlPlaneComponentHealthCheck: 4m0s
  discovery: 5m0s
  etcdAPICall: 2m0s
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 1m0s
  tlsBootstrap: 5m0s
  upgradeManifests: 5m0s
---
apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: 1.35.0
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
proxy: {}
scheduler: {}
";

/// Both documents as data, so formatting differences (quoting, indentation) do not matter.
fn documents_as_json(text: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple(text).unwrap()
}

#[test]
fn init_defaults_match_kubeadm() {
    let printed = init_defaults_yaml();
    assert_eq!(
        documents_as_json(&printed),
        documents_as_json(KUBEADM_INIT_DEFAULTS),
        "{printed}"
    );
}

#[test]
fn init_defaults_round_trip_and_load() {
    let printed = init_defaults_yaml();
    let documents = load::parse_config_documents(Path::new("defaults.yaml"), &printed).unwrap();
    let reprinted = format!(
        "{}---\n{}",
        print::to_sorted_yaml(&documents.init.unwrap()),
        print::to_sorted_yaml(&documents.cluster.unwrap())
    );
    assert_eq!(reprinted, printed);

    let (_dir, path) = write_config(&printed);
    let loaded = load(Some(&path), &InitFlags::default()).unwrap();
    assert_eq!(
        loaded.effective.cluster.kubernetes_version.as_deref(),
        Some("v1.35.0")
    );
    assert_eq!(
        loaded.effective.init.node_registration.name.as_deref(),
        Some("node")
    );
}

/// The real kubeadm built by `tests/testenv`, when present on this machine.
fn real_kubeadm() -> Option<PathBuf> {
    let cache = Path::new(&std::env::var_os("HOME")?).join(".cache/kubeforge-testenv");
    std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin/kubeadm"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn real_kubeadm_agrees_with_our_init_defaults() {
    let Some(kubeadm) = real_kubeadm() else {
        eprintln!("skipped: no kubeadm under ~/.cache/kubeforge-testenv (build tests/testenv)");
        return;
    };
    let output = std::process::Command::new(&kubeadm)
        .args(["config", "print", "init-defaults"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // Same documents; the text differs only where we quote strings such as "1.2.3.4" that a
    // YAML 1.1 reader could take for a number.
    assert_eq!(
        documents_as_json(&String::from_utf8(output.stdout).unwrap()),
        documents_as_json(&init_defaults_yaml())
    );

    let (_dir, path) = write_config(&init_defaults_yaml());
    let output = std::process::Command::new(&kubeadm)
        .args(["config", "validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubeadm rejected our defaults: {output:?}"
    );
}
