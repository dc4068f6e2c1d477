//! Shared helpers for the CLI tests: running the `kubeforge` binary into a scratch root, or on a
//! real node of the test env ([`RealCluster`]: its own containerd and the real kubelet), and
//! reading what it wrote the way a user (and kubeadm) would: x509 for certificates, YAML for
//! kubeconfigs and manifests, kube-rs for what reached the API.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// The node phases of `init`, in order, as `init phase` arguments.
pub const NODE_PHASES: &[(&str, &str)] = &[
    ("certs", "all"),
    ("kubeconfig", "all"),
    ("etcd", "local"),
    ("control-plane", "all"),
];

/// The `init` phases after the node's files, which need a kubelet and a cluster.
pub const CLUSTER_PHASES: &str = "kubelet-start,wait-control-plane,upload-config,upload-certs,mark-control-plane,bootstrap-token,kubelet-finalize,addon,show-join-command";

/// The `kubeforge` binary, with the compiled-component cache shared by every test of this run.
pub fn kubeforge() -> Command {
    let mut command = Command::cargo_bin("kubeforge").expect("the kubeforge binary is built");
    command.env("KUBEFORGE_CACHE_DIR", cache_dir());
    for name in scrubbed_env() {
        command.env_remove(name);
    }
    command
}

/// The environment variables a test's kubeforge runs without: its log filter, the cache
/// location (the tests share [`cache_dir`]), and the *_proxy variables kubeadm copies into
/// the static Pods (the manifests stay predictable).
pub fn scrubbed_env() -> Vec<std::ffi::OsString> {
    let mut names: Vec<std::ffi::OsString> = vec!["KUBEFORGE_LOG".into(), "XDG_CACHE_HOME".into()];
    names.extend(std::env::vars_os().map(|(name, _)| name).filter(|name| {
        name.to_string_lossy()
            .to_ascii_lowercase()
            .ends_with("_proxy")
    }));
    names
}

/// The repository's root directory.
pub fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the repository")
}

/// Build the wasm32-wasip2 workspace at `manifest` (relative to the repository, e.g.
/// `tests/hostile/Cargo.toml`) into a target directory of this test run, and return the
/// directory holding its `.wasm` components.
pub fn build_components(manifest: &str) -> PathBuf {
    let workspace = Path::new(manifest)
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "components".into(), |n| n.to_string_lossy().into_owned());
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{workspace}-components"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(repository().join(manifest))
        .arg("--target-dir")
        .arg(&target_dir);
    // As host/build.rs: the outer build's settings must not leak into the guests.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS"
            || [
                "RUSTFLAGS",
                "RUSTC_WRAPPER",
                "RUSTC_WORKSPACE_WRAPPER",
                "RUSTC",
                "RUSTDOC",
            ]
            .contains(&key.as_ref())
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command.status().unwrap_or_else(|e| {
        panic!("running cargo to build {manifest} (rustup target add wasm32-wasip2?): {e}")
    });
    assert!(
        status.success(),
        "building {manifest} failed; `cargo build --release --target wasm32-wasip2 --manifest-path {manifest}` shows why"
    );
    target_dir.join("wasm32-wasip2/release")
}

pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubeforge-cli-tests-cache")
}

/// A config file under host/tests/configs.
pub fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The output of one command.
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(output: std::process::Output) -> Self {
        Output {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Output {
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.success,
            "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn assert_failure(&self, what: &str) -> &Self {
        assert!(
            !self.success,
            "{what} succeeded but must fail\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Run `kubeforge` with `args` (and `--root root` first when given).
pub fn run(root: Option<&Path>, args: &[&str]) -> Output {
    let mut command = kubeforge();
    if let Some(root) = root {
        command.arg("--root").arg(root);
    }
    command.args(args);
    command.output().expect("running kubeforge").into()
}

/// `kubeforge --root root init phase <phase> <sub> --config <config> [extra…]`.
pub fn phase(root: &Path, phase: &str, sub: &str, config: &Path, extra: &[&str]) -> Output {
    let config = config.to_str().unwrap();
    let mut args = vec!["init", "phase", phase, sub, "--config", config];
    args.extend_from_slice(extra);
    run(Some(root), &args)
}

/// A node root the four node phases ran into, with the time window they ran in.
pub struct Node {
    pub root: TempDir,
    pub started: i64,
    pub finished: i64,
    pub outputs: Vec<Output>,
}

impl Node {
    pub fn path(&self, node_path: &str) -> PathBuf {
        self.root.path().join(node_path.trim_start_matches('/'))
    }
}

/// Run `certs all`, `kubeconfig all`, `etcd local` and `control-plane all` with `config` into a
/// fresh root.
pub fn init_node(config_name: &str) -> Node {
    let root = tempfile::tempdir().unwrap();
    let config = config(config_name);
    let started = now();
    let mut outputs = Vec::new();
    for (name, sub) in NODE_PHASES {
        let output = phase(root.path(), name, sub, &config, &[]);
        output.assert_success(&format!("init phase {name} {sub} with {config_name}"));
        outputs.push(output);
    }
    let finished = now();
    Node {
        root,
        started,
        finished,
        outputs,
    }
}

/// Every file under `dir` (recursively), relative, with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(dir)
        .into_iter()
        .filter(|path| path.is_file() && !is_journal(path))
        .map(|path| {
            (
                path.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect()
}

/// The effect journal (/etc/kubernetes/tmp/kubeforge-journal.jsonl) grows with every run by
/// design; snapshots compare the node's files without it.
pub fn is_journal(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name == "kubeforge-journal.jsonl")
}

/// Every entry (files and directories) under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

// ----------------------------------------------------------------------------------------------
// PEM, certificates and keys

/// The PEM blocks of `text`: (label, DER).
pub fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .map(|block| {
            let block = block.expect("a well-formed PEM block");
            (block.label, block.contents)
        })
        .collect()
}

/// The single certificate DER of a `.crt` PEM text.
pub fn certificate_der(text: &str, what: &str) -> Vec<u8> {
    let blocks = pem_blocks(text);
    assert_eq!(
        blocks.len(),
        1,
        "{what}: one PEM block, got {}",
        blocks.len()
    );
    assert_eq!(blocks[0].0, "CERTIFICATE", "{what}: PEM label");
    blocks[0].1.clone()
}

pub fn parse_certificate<'a>(der: &'a [u8], what: &str) -> X509Certificate<'a> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        rest.is_empty(),
        "{what}: trailing bytes after the certificate"
    );
    cert
}

pub fn common_name(cert: &X509Certificate<'_>) -> String {
    let names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 1, "one CN in {}", cert.subject());
    names[0].clone()
}

pub fn organizations(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter_organization()
        .map(|o| o.as_str().unwrap().to_string())
        .collect()
}

/// The SANs in certificate order: (DNS names, IP addresses).
pub fn sans(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Some(san) = cert
        .subject_alternative_name()
        .expect("a well-formed SAN extension")
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns.push(name.to_string()),
                GeneralName::IPAddress(bytes) => ips.push(ip_string(bytes)),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
    }
    (dns, ips)
}

fn ip_string(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap()).to_string(),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap()).to_string(),
        n => panic!("an IP SAN of {n} bytes"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rsa2048,
    EcdsaP256,
}

impl Algorithm {
    pub fn private_key_label(self) -> &'static str {
        match self {
            Algorithm::Rsa2048 => "RSA PRIVATE KEY",
            Algorithm::EcdsaP256 => "EC PRIVATE KEY",
        }
    }
}

/// The key algorithm of a certificate (RSA or ECDSA P-256, the two kubeadm makes).
pub fn key_algorithm(cert: &X509Certificate<'_>) -> Algorithm {
    if cert.public_key().algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        Algorithm::EcdsaP256
    } else {
        Algorithm::Rsa2048
    }
}

/// Check the certificate's public key algorithm and size.
pub fn assert_key_algorithm(cert: &X509Certificate<'_>, algorithm: Algorithm, what: &str) {
    let spki = cert.public_key();
    match algorithm {
        Algorithm::Rsa2048 => {
            assert_eq!(
                spki.algorithm.algorithm, OID_PKCS1_RSAENCRYPTION,
                "{what}: RSA key"
            );
            match spki.parsed().unwrap() {
                PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048, "{what}: RSA modulus size"),
                other => panic!("{what}: expected an RSA key, got {other:?}"),
            }
        }
        Algorithm::EcdsaP256 => {
            assert_eq!(
                spki.algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY,
                "{what}: EC key"
            );
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .unwrap_or_else(|| panic!("{what}: EC key without a named curve"));
            assert_eq!(curve, OID_EC_P256, "{what}: EC curve");
        }
    }
}

/// The public key (as in a SubjectPublicKeyInfo's bit string) of a private-key PEM, checking
/// its format: PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`.
pub fn private_key_public_bytes(text: &str, algorithm: Algorithm, what: &str) -> Vec<u8> {
    use aws_lc_rs::signature::KeyPair as _;
    let blocks = pem_blocks(text);
    assert_eq!(blocks.len(), 1, "{what}: one PEM block");
    let (label, der) = &blocks[0];
    assert_eq!(label, algorithm.private_key_label(), "{what}: PEM label");
    match algorithm {
        Algorithm::Rsa2048 => {
            let key = aws_lc_rs::rsa::KeyPair::from_der(der)
                .unwrap_or_else(|e| panic!("{what}: not a PKCS#1 RSA private key: {e}"));
            assert_eq!(key.public_modulus_len() * 8, 2048, "{what}: RSA key size");
            key.public_key().as_ref().to_vec()
        }
        Algorithm::EcdsaP256 => {
            let key = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                der,
            )
            .unwrap_or_else(|e| panic!("{what}: not a P-256 EC private key: {e}"));
            key.public_key().as_ref().to_vec()
        }
    }
}

/// Assert that the private key PEM `key_text` belongs to `cert`.
pub fn assert_key_matches(
    cert: &X509Certificate<'_>,
    key_text: &str,
    algorithm: Algorithm,
    what: &str,
) {
    let public = private_key_public_bytes(key_text, algorithm, what);
    assert!(
        public == cert.public_key().subject_public_key.data.as_ref(),
        "{what}: the private key does not belong to the certificate"
    );
}

/// What one certificate must say.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Path relative to the certificates dir, without extension (`etcd/server`).
    pub name: &'static str,
    pub cn: String,
    pub organizations: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<String>,
    pub server_auth: bool,
    pub client_auth: bool,
    pub is_ca: bool,
    /// The CA file base (`ca`, `etcd/ca`, `front-proxy-ca`); itself for CAs.
    pub issuer: &'static str,
}

/// What a node config leads to.
#[derive(Debug, Clone)]
pub struct Expect {
    pub node: &'static str,
    pub advertise: &'static str,
    pub bind_port: u16,
    pub cluster_name: &'static str,
    pub dns_domain: &'static str,
    pub service_subnet: &'static str,
    pub first_service_ip: &'static str,
    pub pod_subnet: Option<&'static str>,
    /// The node path of the certificates dir.
    pub cert_dir: &'static str,
    /// `host:port` as configured.
    pub control_plane_endpoint: Option<&'static str>,
    pub cert_sans: Vec<&'static str>,
    pub leaf_validity: i64,
    pub ca_validity: i64,
    pub algorithm: Algorithm,
    /// The names of `apiServer.extraArgs`, in the config's order.
    pub apiserver_extra_args: Vec<&'static str>,
}

const HOUR: i64 = 3600;

impl Expect {
    pub fn defaults(node: &'static str, advertise: &'static str) -> Self {
        Expect {
            node,
            advertise,
            bind_port: 6443,
            cluster_name: "kubernetes",
            dns_domain: "cluster.local",
            service_subnet: "10.96.0.0/12",
            first_service_ip: "10.96.0.1",
            pod_subnet: None,
            cert_dir: "/etc/kubernetes/pki",
            control_plane_endpoint: None,
            cert_sans: vec![],
            leaf_validity: 8760 * HOUR,
            ca_validity: 87600 * HOUR,
            algorithm: Algorithm::Rsa2048,
            apiserver_extra_args: vec![],
        }
    }

    /// host/tests/configs/defaults.yaml
    pub fn defaults_yaml() -> Self {
        Self::defaults("node-a", "127.0.0.1")
    }

    /// host/tests/configs/custom.yaml
    pub fn custom_yaml() -> Self {
        Expect {
            node: "cp-1",
            advertise: "192.168.10.5",
            bind_port: 7443,
            cluster_name: "forge",
            dns_domain: "forge.internal",
            service_subnet: "10.200.0.0/16",
            first_service_ip: "10.200.0.1",
            pod_subnet: Some("10.244.0.0/16"),
            cert_dir: "/etc/kf/pki",
            control_plane_endpoint: Some("api.forge.example:8443"),
            cert_sans: vec![
                "extra.forge.example",
                "*.apps.forge.example",
                "203.0.113.7",
                "api.forge.example",
            ],
            leaf_validity: 48 * HOUR,
            ca_validity: 720 * HOUR,
            algorithm: Algorithm::Rsa2048,
            apiserver_extra_args: vec!["authorization-mode", "audit-log-path"],
        }
    }

    /// host/tests/configs/ecdsa.yaml
    pub fn ecdsa_yaml() -> Self {
        Expect {
            algorithm: Algorithm::EcdsaP256,
            ..Self::defaults("node-ec", "10.0.0.20")
        }
    }

    /// host/tests/configs/ipv6.yaml
    pub fn ipv6_yaml() -> Self {
        Expect {
            service_subnet: "fd00:10:96::/112",
            first_service_ip: "fd00:10:96::1",
            pod_subnet: Some("fd00:10:244::/56"),
            ..Self::defaults("node-v6", "fd00::10")
        }
    }

    pub fn ipv6(&self) -> bool {
        self.advertise.contains(':')
    }

    /// `host:port` with IPv6 brackets.
    pub fn join_host_port(host: &str, port: u16) -> String {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// kubeadm's local API endpoint URL.
    pub fn local_endpoint(&self) -> String {
        format!(
            "https://{}",
            Self::join_host_port(self.advertise, self.bind_port)
        )
    }

    /// kubeadm's control-plane endpoint URL: controlPlaneEndpoint if set, else the local one.
    pub fn control_plane_url(&self) -> String {
        match self.control_plane_endpoint {
            Some(endpoint) => format!("https://{endpoint}"),
            None => self.local_endpoint(),
        }
    }

    fn control_plane_host(&self) -> Option<&'static str> {
        self.control_plane_endpoint
            .map(|endpoint| match endpoint.rsplit_once(':') {
                Some((host, port)) if port.parse::<u16>().is_ok() && !host.ends_with(':') => {
                    host.trim_start_matches('[').trim_end_matches(']')
                }
                _ => endpoint,
            })
    }

    /// The certificates of kubeadm-reference §2, with what each must say.
    pub fn certificates(&self) -> Vec<CertSpec> {
        let is_ip = |s: &str| s.parse::<std::net::IpAddr>().is_ok();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let dedup = |v: Vec<String>| {
            let mut out: Vec<String> = Vec::new();
            for item in v {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            out
        };
        let sorted_dns = |v: Vec<String>| {
            let mut v = dedup(v);
            v.sort();
            v
        };

        let mut apiserver_dns = vec![
            self.node.to_string(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            format!("kubernetes.default.svc.{}", self.dns_domain),
        ];
        let mut apiserver_ips = vec![
            self.first_service_ip.to_string(),
            self.advertise.to_string(),
        ];
        if let Some(host) = self.control_plane_host() {
            if is_ip(host) {
                apiserver_ips.push(host.to_string());
            } else {
                apiserver_dns.push(host.to_string());
            }
        }
        for san in &self.cert_sans {
            if is_ip(san) {
                apiserver_ips.push(san.to_string());
            } else {
                apiserver_dns.push(san.to_string());
            }
        }
        let etcd_dns = sorted_dns(vec![self.node.to_string(), "localhost".into()]);
        let etcd_ips = dedup(strings(&[self.advertise, "127.0.0.1", "::1"]));

        let ca = |name: &'static str, cn: &str| CertSpec {
            name,
            cn: cn.into(),
            organizations: vec![],
            dns: vec![cn.into()],
            ips: vec![],
            server_auth: false,
            client_auth: false,
            is_ca: true,
            issuer: name,
        };
        let leaf = |name: &'static str,
                    cn: &str,
                    o: &[&str],
                    server: bool,
                    client: bool,
                    issuer: &'static str| CertSpec {
            name,
            cn: cn.into(),
            organizations: strings(o),
            dns: vec![],
            ips: vec![],
            server_auth: server,
            client_auth: client,
            is_ca: false,
            issuer,
        };
        vec![
            ca("ca", "kubernetes"),
            CertSpec {
                dns: sorted_dns(apiserver_dns),
                ips: dedup(apiserver_ips),
                ..leaf("apiserver", "kube-apiserver", &[], true, false, "ca")
            },
            // No group from v1.36: kubeadm:apiserver-kubelet-client binds the user instead.
            leaf(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                &[],
                false,
                true,
                "ca",
            ),
            ca("front-proxy-ca", "front-proxy-ca"),
            leaf(
                "front-proxy-client",
                "front-proxy-client",
                &[],
                false,
                true,
                "front-proxy-ca",
            ),
            ca("etcd/ca", "etcd-ca"),
            CertSpec {
                dns: etcd_dns.clone(),
                ips: etcd_ips.clone(),
                ..leaf("etcd/server", self.node, &[], true, true, "etcd/ca")
            },
            CertSpec {
                dns: etcd_dns,
                ips: etcd_ips,
                ..leaf("etcd/peer", self.node, &[], true, true, "etcd/ca")
            },
            leaf(
                "etcd/healthcheck-client",
                "kube-etcd-healthcheck-client",
                &[],
                false,
                true,
                "etcd/ca",
            ),
            leaf(
                "apiserver-etcd-client",
                "kube-apiserver-etcd-client",
                &[],
                false,
                true,
                "etcd/ca",
            ),
        ]
    }

    /// (file, user, organizations, server URL) of the five kubeconfigs of `init`.
    pub fn kubeconfigs(&self) -> Vec<(&'static str, String, Vec<String>, String)> {
        vec![
            (
                "admin.conf",
                "kubernetes-admin".into(),
                vec!["kubeadm:cluster-admins".into()],
                self.control_plane_url(),
            ),
            (
                "super-admin.conf",
                "kubernetes-super-admin".into(),
                vec!["system:masters".into()],
                self.control_plane_url(),
            ),
            (
                // The kubelet of a control-plane node talks to its own API server (kubeadm's
                // ControlPlaneKubeletLocalMode, GA in 1.35, the only way since 1.36).
                "kubelet.conf",
                format!("system:node:{}", self.node),
                vec!["system:nodes".into()],
                self.local_endpoint(),
            ),
            (
                "controller-manager.conf",
                "system:kube-controller-manager".into(),
                vec![],
                self.local_endpoint(),
            ),
            (
                "scheduler.conf",
                "system:kube-scheduler".into(),
                vec![],
                self.local_endpoint(),
            ),
        ]
    }
}

/// Assert the validity window: NotBefore = start − 5 min, NotAfter = start + `validity`, where
/// start lies within [`started`, `finished`] (± 60 s).
pub fn assert_validity(
    cert: &X509Certificate<'_>,
    started: i64,
    finished: i64,
    validity: i64,
    what: &str,
) {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let slack = 60;
    assert!(
        not_before >= started - 300 - slack && not_before <= finished - 300 + slack,
        "{what}: NotBefore {not_before} is not start − 5m (start in [{started}, {finished}])"
    );
    assert!(
        not_after >= started + validity - slack && not_after <= finished + validity + slack,
        "{what}: NotAfter {not_after} is not start + {validity}s (start in [{started}, {finished}])"
    );
}

/// Assert what a certificate says against `spec` and that `issuer` signed it.
pub fn assert_certificate(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    spec: &CertSpec,
    algorithm: Algorithm,
    what: &str,
) {
    assert_eq!(common_name(cert), spec.cn, "{what}: CN");
    assert_eq!(organizations(cert), spec.organizations, "{what}: O");
    let (dns, ips) = sans(cert);
    assert_eq!(dns, spec.dns, "{what}: DNS SANs (kubeadm order: sorted)");
    assert_eq!(ips, spec.ips, "{what}: IP SANs (kubeadm order)");

    let key_usage = cert
        .key_usage()
        .expect("a well-formed key usage")
        .unwrap_or_else(|| panic!("{what}: no key usage extension"));
    assert!(key_usage.critical, "{what}: key usage is critical");
    let expected_flags: u16 = 0b1 | 0b100 | if spec.is_ca { 0b10_0000 } else { 0 };
    assert_eq!(
        key_usage.value.flags,
        expected_flags,
        "{what}: key usage must be DigitalSignature|KeyEncipherment{} (got {})",
        if spec.is_ca { "|CertSign" } else { "" },
        key_usage.value
    );

    let eku = cert
        .extended_key_usage()
        .expect("a well-formed extended key usage");
    if spec.is_ca {
        assert!(eku.is_none(), "{what}: a CA has no extended key usage");
    } else {
        let eku = eku.unwrap_or_else(|| panic!("{what}: no extended key usage"));
        assert_eq!(
            eku.value.server_auth, spec.server_auth,
            "{what}: serverAuth"
        );
        assert_eq!(
            eku.value.client_auth, spec.client_auth,
            "{what}: clientAuth"
        );
        assert!(
            !eku.value.any
                && !eku.value.code_signing
                && !eku.value.email_protection
                && !eku.value.time_stamping
                && !eku.value.ocsp_signing
                && eku.value.other.is_empty(),
            "{what}: only serverAuth/clientAuth: {:?}",
            eku.value
        );
    }

    let constraints = cert
        .basic_constraints()
        .expect("well-formed basic constraints");
    if spec.is_ca {
        let constraints =
            constraints.unwrap_or_else(|| panic!("{what}: a CA has basic constraints"));
        assert!(constraints.value.ca, "{what}: CA flag");
        assert!(
            constraints.critical,
            "{what}: basic constraints are critical"
        );
    } else if let Some(constraints) = constraints {
        assert!(!constraints.value.ca, "{what}: a leaf is not a CA");
    }
    assert_eq!(cert.is_ca(), spec.is_ca, "{what}: is CA");

    let serial = cert.tbs_certificate.raw_serial();
    assert!(
        !serial.is_empty()
            && serial.len() <= 9
            && cert.serial.bits() <= 63
            && cert.serial.bits() > 0,
        "{what}: serial {} is not in [1, 2^63)",
        cert.serial
    );

    assert_eq!(
        cert.issuer().as_raw(),
        issuer.subject().as_raw(),
        "{what}: issuer is {} and not {}",
        cert.issuer(),
        issuer.subject()
    );
    cert.verify_signature(Some(issuer.public_key()))
        .unwrap_or_else(|e| {
            panic!(
                "{what}: signature does not verify with {}: {e}",
                issuer.subject()
            )
        });
    assert_key_algorithm(cert, algorithm, what);
}

/// Check every certificate, key and the sa key pair under `pki` (a host path) against
/// `expect`, for a run in [`started`, `finished`].
pub fn assert_pki(pki: &Path, expect: &Expect, started: i64, finished: i64) {
    let specs = expect.certificates();
    let texts: BTreeMap<&str, String> = specs
        .iter()
        .map(|spec| (spec.name, read(&pki.join(format!("{}.crt", spec.name)))))
        .collect();
    let ders: BTreeMap<&str, Vec<u8>> = texts
        .iter()
        .map(|(name, text)| (*name, certificate_der(text, name)))
        .collect();
    for spec in &specs {
        let crt = pki.join(format!("{}.crt", spec.name));
        let key = pki.join(format!("{}.key", spec.name));
        assert_eq!(mode(&crt), 0o644, "{}: certificate mode", crt.display());
        assert_eq!(mode(&key), 0o600, "{}: key mode", key.display());
        let cert = parse_certificate(&ders[spec.name], spec.name);
        let issuer = parse_certificate(&ders[spec.issuer], spec.issuer);
        assert_certificate(&cert, &issuer, spec, expect.algorithm, spec.name);
        let validity = if spec.is_ca {
            expect.ca_validity
        } else {
            expect.leaf_validity
        };
        assert_validity(&cert, started, finished, validity, spec.name);
        assert_key_matches(
            &cert,
            &read(&key),
            expect.algorithm,
            &format!("{}.key", spec.name),
        );
    }
    assert_sa_pair(pki, expect.algorithm);
}

/// sa.key (0600, private key of the cluster's algorithm) and sa.pub (0600 too: kubeadm writes
/// it with client-go's keyutil.WriteKey; PKIX `PUBLIC KEY`) form one key pair.
pub fn assert_sa_pair(pki: &Path, algorithm: Algorithm) {
    let key = pki.join("sa.key");
    let public = pki.join("sa.pub");
    assert_eq!(mode(&key), 0o600, "sa.key mode");
    assert_eq!(mode(&public), 0o600, "sa.pub mode");
    let from_key = private_key_public_bytes(&read(&key), algorithm, "sa.key");
    let blocks = pem_blocks(&read(&public));
    assert_eq!(blocks.len(), 1, "sa.pub: one PEM block");
    assert_eq!(blocks[0].0, "PUBLIC KEY", "sa.pub: PEM label");
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&blocks[0].1)
        .expect("sa.pub is a SubjectPublicKeyInfo");
    assert!(
        spki.subject_public_key.data.as_ref() == from_key.as_slice(),
        "sa.pub is not the public key of sa.key"
    );
}

/// Check a leaf against its CA file for consistency only: issuer, signature, key match.
/// (leaf, its CA) for every certificate kubeadm issues from a CA.
pub const ISSUED_CERTIFICATES: &[(&str, &str)] = &[
    ("apiserver", "ca"),
    ("apiserver-kubelet-client", "ca"),
    ("front-proxy-client", "front-proxy-ca"),
    ("etcd/server", "etcd/ca"),
    ("etcd/peer", "etcd/ca"),
    ("etcd/healthcheck-client", "etcd/ca"),
    ("apiserver-etcd-client", "etcd/ca"),
];

/// kubeadm's three CAs.
pub const CAS: &[&str] = &["ca", "front-proxy-ca", "etcd/ca"];

/// The whole PKI under `pki` is consistent: each CA self-signed, each certificate signed by its
/// CA with the key beside it, the service-account pair matching.
pub fn assert_consistent_pki(pki: &Path, algorithm: Algorithm) {
    for ca in CAS {
        assert_consistent_pair(pki, ca, ca, algorithm);
    }
    for (leaf, ca) in ISSUED_CERTIFICATES {
        assert_consistent_pair(pki, leaf, ca, algorithm);
    }
    assert_sa_pair(pki, algorithm);
}

pub fn assert_consistent_pair(pki: &Path, name: &str, issuer: &str, algorithm: Algorithm) {
    let cert_text = read(&pki.join(format!("{name}.crt")));
    let issuer_text = read(&pki.join(format!("{issuer}.crt")));
    let der = certificate_der(&cert_text, name);
    let issuer_der = certificate_der(&issuer_text, issuer);
    let cert = parse_certificate(&der, name);
    let ca = parse_certificate(&issuer_der, issuer);
    assert_eq!(
        cert.issuer().as_raw(),
        ca.subject().as_raw(),
        "{name}: issued by {issuer}"
    );
    cert.verify_signature(Some(ca.public_key()))
        .unwrap_or_else(|e| panic!("{name}: signature does not verify with {issuer}: {e}"));
    assert_key_matches(
        &cert,
        &read(&pki.join(format!("{name}.key"))),
        algorithm,
        &format!("{name}.key"),
    );
}

// ----------------------------------------------------------------------------------------------
// kubeconfigs

pub fn b64(value: &Value, what: &str) -> Vec<u8> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap_or_else(|e| panic!("{what} is not base64: {e}"))
}

/// Check the five kubeconfigs of `init` under `kubernetes_dir` (host path of /etc/kubernetes).
pub fn assert_kubeconfigs(kubernetes_dir: &Path, pki: &Path, expect: &Expect) {
    let ca_pem = std::fs::read(pki.join("ca.crt")).unwrap();
    let ca_der = certificate_der(std::str::from_utf8(&ca_pem).unwrap(), "ca.crt");
    let ca = parse_certificate(&ca_der, "ca.crt");
    for (file, user, organizations, server) in expect.kubeconfigs() {
        let path = kubernetes_dir.join(file);
        assert_eq!(mode(&path), 0o600, "{file}: mode");
        let config = yaml(&path);
        assert_eq!(config["apiVersion"], "v1", "{file}: apiVersion");
        assert_eq!(config["kind"], "Config", "{file}: kind");
        let clusters = config["clusters"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: clusters"));
        assert_eq!(clusters.len(), 1, "{file}: one cluster");
        assert_eq!(
            clusters[0]["name"], expect.cluster_name,
            "{file}: cluster name"
        );
        assert_eq!(
            clusters[0]["cluster"]["server"],
            server.as_str(),
            "{file}: server"
        );
        assert_eq!(
            b64(
                &clusters[0]["cluster"]["certificate-authority-data"],
                "certificate-authority-data"
            ),
            ca_pem,
            "{file}: the embedded CA is ca.crt"
        );
        let context_name = format!("{user}@{}", expect.cluster_name);
        let contexts = config["contexts"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: contexts"));
        assert_eq!(contexts.len(), 1, "{file}: one context");
        assert_eq!(
            contexts[0]["name"],
            context_name.as_str(),
            "{file}: context name"
        );
        assert_eq!(
            contexts[0]["context"]["cluster"], expect.cluster_name,
            "{file}: context cluster"
        );
        assert_eq!(
            contexts[0]["context"]["user"],
            user.as_str(),
            "{file}: context user"
        );
        assert_eq!(
            config["current-context"],
            context_name.as_str(),
            "{file}: current-context"
        );
        let users = config["users"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: users"));
        assert_eq!(users.len(), 1, "{file}: one user");
        assert_eq!(users[0]["name"], user.as_str(), "{file}: user name");
        let cert_pem = b64(
            &users[0]["user"]["client-certificate-data"],
            "client-certificate-data",
        );
        let key_pem = b64(&users[0]["user"]["client-key-data"], "client-key-data");
        let der = certificate_der(std::str::from_utf8(&cert_pem).unwrap(), file);
        let cert = parse_certificate(&der, file);
        let spec = CertSpec {
            name: "client",
            cn: user.clone(),
            organizations: organizations.clone(),
            dns: vec![],
            ips: vec![],
            server_auth: false,
            client_auth: true,
            is_ca: false,
            issuer: "ca",
        };
        assert_certificate(
            &cert,
            &ca,
            &spec,
            expect.algorithm,
            &format!("{file} client certificate"),
        );
        assert_key_matches(
            &cert,
            std::str::from_utf8(&key_pem).unwrap(),
            expect.algorithm,
            &format!("{file} client key"),
        );
    }
}

// ----------------------------------------------------------------------------------------------
// static Pod manifests

/// The `--name=value` flags of a container command, in order.
pub fn flags(command: &[String]) -> Vec<(String, String)> {
    command[1..]
        .iter()
        .map(|arg| {
            let flag = arg
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("{arg:?} is not --name=value"));
            let (name, value) = flag
                .split_once('=')
                .unwrap_or_else(|| panic!("{arg:?} has no value"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// The single value of flag `name`.
pub fn flag<'a>(flags: &'a [(String, String)], name: &str, what: &str) -> &'a str {
    let values: Vec<&str> = flags
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "{what}: --{name} once, got {values:?}");
    values[0]
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_string()
        })
        .collect()
}

/// A parsed manifest and its first container.
pub struct Manifest {
    pub pod: Value,
    pub name: String,
}

impl Manifest {
    pub fn load(manifests: &Path, component: &str) -> Self {
        let path = manifests.join(format!("{component}.yaml"));
        assert_eq!(mode(&path), 0o600, "{component}.yaml mode");
        Manifest {
            pod: yaml(&path),
            name: component.to_string(),
        }
    }

    pub fn container(&self) -> &Value {
        let containers = self.pod["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 1, "{}: one container", self.name);
        &containers[0]
    }

    pub fn command(&self) -> Vec<String> {
        strings(&self.container()["command"])
    }

    pub fn flags(&self) -> Vec<(String, String)> {
        flags(&self.command())
    }

    /// (name, hostPath path, type) of each volume, in order.
    pub fn volumes(&self) -> Vec<(String, String, String)> {
        self.pod["spec"]["volumes"]
            .as_array()
            .map(|volumes| {
                volumes
                    .iter()
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap().to_string(),
                            v["hostPath"]["path"].as_str().unwrap().to_string(),
                            v["hostPath"]["type"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// (name, mountPath, readOnly) of each mount, in order.
    pub fn mounts(&self) -> Vec<(String, String, bool)> {
        self.container()["volumeMounts"]
            .as_array()
            .map(|mounts| {
                mounts
                    .iter()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap().to_string(),
                            m["mountPath"].as_str().unwrap().to_string(),
                            m["readOnly"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The probe `kind` (livenessProbe …) as (host, port, path, scheme), with the named port
    /// resolved through the container's ports.
    pub fn probe(&self, kind: &str) -> Option<(String, u64, String, String)> {
        let probe = &self.container()[kind];
        if probe.is_null() {
            return None;
        }
        let get = &probe["httpGet"];
        let port = match &get["port"] {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(name) => self.container()["ports"]
                .as_array()
                .and_then(|ports| ports.iter().find(|p| p["name"] == name.as_str()))
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: {kind} names port {name:?} the container does not declare",
                        self.name
                    )
                }),
            other => panic!("{}: {kind} port {other}", self.name),
        };
        Some((
            get["host"].as_str().unwrap_or_default().to_string(),
            port,
            get["path"].as_str().unwrap().to_string(),
            get["scheme"].as_str().unwrap().to_string(),
        ))
    }

    /// What every kubeadm control-plane static Pod has.
    pub fn assert_common(&self, image: &str) {
        let pod = &self.pod;
        let name = &self.name;
        assert_eq!(pod["apiVersion"], "v1", "{name}: apiVersion");
        assert_eq!(pod["kind"], "Pod", "{name}: kind");
        assert_eq!(
            pod["metadata"]["name"],
            name.as_str(),
            "{name}: metadata.name"
        );
        assert_eq!(
            pod["metadata"]["namespace"], "kube-system",
            "{name}: namespace"
        );
        assert_eq!(
            pod["metadata"]["labels"]["component"],
            name.as_str(),
            "{name}: component label"
        );
        assert_eq!(
            pod["metadata"]["labels"]["tier"], "control-plane",
            "{name}: tier label"
        );
        assert_eq!(pod["spec"]["hostNetwork"], true, "{name}: hostNetwork");
        assert_eq!(
            pod["spec"]["priorityClassName"], "system-node-critical",
            "{name}: priorityClassName"
        );
        assert_eq!(pod["spec"]["priority"], 2000001000, "{name}: priority");
        assert_eq!(
            pod["spec"]["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}: seccomp profile"
        );
        let container = self.container();
        assert_eq!(container["name"], name.as_str(), "{name}: container name");
        assert_eq!(container["image"], image, "{name}: image");
        assert_eq!(
            container["imagePullPolicy"], "IfNotPresent",
            "{name}: imagePullPolicy"
        );
        let command = self.command();
        assert_eq!(
            command[0], *name,
            "{name}: the command starts with the binary"
        );
        // Volumes and mounts are sorted by name, and each mount has its volume.
        let volumes = self.volumes();
        let names: Vec<&String> = volumes.iter().map(|v| &v.0).collect();
        let mut sorted_names = names.clone();
        sorted_names.sort();
        assert_eq!(names, sorted_names, "{name}: volumes sorted by name");
        // Mounts are sorted by name too, except etcd's, which kubeadm lists as data, then certs.
        let mounts = self.mounts();
        let mut mount_names: Vec<&String> = mounts.iter().map(|m| &m.0).collect();
        if name != "etcd" {
            let mut sorted_mounts = mount_names.clone();
            sorted_mounts.sort();
            assert_eq!(mount_names, sorted_mounts, "{name}: mounts sorted by name");
        }
        mount_names.sort();
        assert_eq!(mount_names, names, "{name}: one mount per volume");
    }

    /// kubeadm's `ArgumentsToCommand` (v1.35 to v1.37) sorts its own flags by name, drops those the
    /// user overrides, and appends the user's extraArgs in the user's order.
    pub fn assert_flag_order(&self, extra_args: &[&str]) {
        let name = &self.name;
        let flags = self.flags();
        let (defaults, extras) = flags.split_at(flags.len() - extra_args.len());
        let mut sorted = defaults.to_vec();
        sorted.sort();
        assert_eq!(
            defaults,
            sorted.as_slice(),
            "{name}: kubeadm's own flags sorted by name then value"
        );
        let extra_names: Vec<&str> = extras.iter().map(|(flag, _)| flag.as_str()).collect();
        assert_eq!(
            extra_names, extra_args,
            "{name}: the user's extraArgs last, in the config's order"
        );
    }
}

/// A kube-rs client with the credentials of the kubeconfig `file` that kubeforge wrote into
/// `root`/etc/kubernetes (`admin.conf`, `super-admin.conf`, …), for checking what a phase did
/// through the real API.
pub async fn kube_client(root: &Path, file: &str) -> anyhow::Result<kube::Client> {
    let path = root.join("etc/kubernetes").join(file);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Ask `probe` every 200 ms until it answers `Some` (what the API shows settles: an informer
/// catches up, a controller acts); fails once `timeout` has passed.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: std::time::Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    anyhow::bail!("{what}: not within {timeout:?}")
}

// ----------------------------------------------------------------------------------------------
// Real nodes (tests/harness): kubeforge on a node with its own containerd and the real kubelet

/// The phases after the node's files that bring the control plane up on a real node: the
/// kubelet gets its configuration and runs the static Pods, and kubeforge waits until the API
/// server is ready.
pub const KUBELET_PHASES: &[&str] = &["kubelet-start", "wait-control-plane"];

/// A cluster of real nodes ([`kubeforge_testenv::Cluster`]) with this build's kubeforge in every
/// node's PATH, one control-plane node, and a scratch directory under /tmp (which every node
/// shares with the host, so a config file written there is read by the same path inside a
/// node). The cluster is deleted when this is dropped (a panicking test included), and its
/// nodes shut themselves down if the test process dies.
pub struct RealCluster {
    pub cluster: kubeforge_testenv::Cluster,
    /// The control-plane node kubeforge runs on (`<name>-control-plane`).
    pub node: kubeforge_testenv::Node,
    pub dir: TempDir,
}

impl RealCluster {
    /// Creates cluster `name` (use the test file's name: names are unique among live
    /// clusters) with one control-plane node and `workers` workers, none initialised.
    pub fn create(name: &str, workers: usize) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let spec = kubeforge_testenv::ClusterSpec::new(name, 1, workers)
            .owned_by_this_process()
            .with_kubeforge(env!("CARGO_BIN_EXE_kubeforge"));
        let cluster = kubeforge_testenv::Cluster::create(spec).with_context(|| {
            format!(
                "creating the test cluster {name} (as root; the node binaries come from \
                 `export {}=$(tests/testenv/build.sh)`)",
                kubeforge_testenv::BIN_ENV
            )
        })?;
        let node = cluster.node(&format!("{name}-control-plane"))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("kubeforge-{name}-"))
            .tempdir_in("/tmp")
            .context("creating a scratch directory under /tmp")?;
        Ok(RealCluster { cluster, node, dir })
    }

    /// The host path of the control-plane node's `/` (a root to join `etc/kubernetes/…` onto).
    pub fn root(&self) -> PathBuf {
        self.node.path("/")
    }

    /// `https://<advertise address>:6443`, the API server as the host and the nodes reach it.
    pub fn server(&self) -> String {
        format!("https://{}:6443", self.node.address)
    }

    /// Writes `kubeadm` with [`kubeforge_testenv::CLUSTER_SETTINGS`] appended (what every
    /// configuration of a cluster on this machine needs) to `file` in the scratch directory.
    pub fn write_config(&self, file: &str, kubeadm: &str) -> anyhow::Result<PathBuf> {
        use anyhow::Context as _;
        let path = self.dir.path().join(file);
        std::fs::write(
            &path,
            format!("{kubeadm}{}", kubeforge_testenv::CLUSTER_SETTINGS),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Runs `kubeforge ARGS` inside the control-plane node, on its real paths (no `--root`),
    /// with the compiled-component cache of this test run.
    pub fn kubeforge(&self, args: &[&str]) -> Output {
        let mut command = self.node.command(&[&["kubeforge"], args].concat());
        command.env("KUBEFORGE_CACHE_DIR", cache_dir());
        for name in scrubbed_env() {
            command.env_remove(name);
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("running kubeforge in node {}: {e}", self.node.name))
            .into()
    }

    /// [`RealCluster::kubeforge`], which must succeed: else an error with its output and the
    /// nodes' diagnostics.
    pub fn kubeforge_ok(&self, args: &[&str]) -> anyhow::Result<Output> {
        let output = self.kubeforge(args);
        anyhow::ensure!(
            output.success,
            "`kubeforge {}` on node {} failed ({:?})\nstdout:\n{}\nstderr:\n{}\n{}",
            args.join(" "),
            self.node.name,
            output.code,
            output.stdout,
            output.stderr,
            self.diagnostics()
        );
        Ok(output)
    }

    /// `kubeforge init phase ARGS` in the node, which must succeed.
    pub fn init_phase(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.kubeforge_ok(&[&["init", "phase"], args].concat())
    }

    /// `kubeforge init phase PHASE… --config CONFIG` in the node, which must succeed.
    pub fn phase(&self, config: &Path, phase: &[&str]) -> anyhow::Result<Output> {
        let config = config.to_str().expect("a UTF-8 config path");
        self.init_phase(&[phase, &["--config", config]].concat())
    }

    /// The node's files ([`NODE_PHASES`]) with `config`; returns each phase's output.
    pub fn node_phases(&self, config: &Path) -> anyhow::Result<Vec<Output>> {
        NODE_PHASES
            .iter()
            .map(|(phase, sub)| self.phase(config, &[phase, sub]))
            .collect()
    }

    /// [`KUBELET_PHASES`] with `config`: the real kubelet runs the control plane's static Pods
    /// and the API server is ready when this returns.
    pub fn kubelet_phases(&self, config: &Path) -> anyhow::Result<Vec<Output>> {
        KUBELET_PHASES
            .iter()
            .map(|phase| self.phase(config, &[phase]))
            .collect()
    }

    /// The node phases, then the kubelet phases: a control plane ready for the API phases.
    pub fn boot(&self, config: &Path) -> anyhow::Result<Vec<Output>> {
        let mut outputs = self.node_phases(config)?;
        outputs.extend(self.kubelet_phases(config)?);
        Ok(outputs)
    }

    /// A kube-rs client with the credentials of the node's `/etc/kubernetes/FILE`.
    pub async fn client(&self, file: &str) -> anyhow::Result<kube::Client> {
        kube_client(&self.root(), file).await
    }

    /// Runs `kubeadm ARGS` inside the control-plane node (as on a machine), which must exit 0:
    /// else an error with its output and the nodes' diagnostics.
    pub fn kubeadm(&self, args: &[&str]) -> anyhow::Result<Output> {
        let output: Output = self.node.output(&[&["kubeadm"], args].concat())?.into();
        anyhow::ensure!(
            output.success,
            "`kubeadm {}` on node {} failed ({:?}):\n{}\n{}",
            args.join(" "),
            self.node.name,
            output.code,
            output.all(),
            self.diagnostics()
        );
        Ok(output)
    }

    /// What a failing test shows: every node's kubelet and containerd log tails, and on the
    /// control plane the ends of kube-apiserver's and kube-controller-manager's container logs.
    pub fn diagnostics(&self) -> String {
        let mut text = String::new();
        for node in self.cluster.nodes() {
            text.push_str(&node.diagnostics());
            text.push('\n');
            if node.role != kubeforge_testenv::Role::ControlPlane {
                continue;
            }
            for component in ["kube-apiserver", "kube-controller-manager"] {
                if let Ok(log) = node.container_log("kube-system", component, component) {
                    let lines: Vec<&str> = log.lines().collect();
                    text.push_str(&format!(
                        "--- node {} {component} (last 20 lines) ---\n{}\n",
                        node.name,
                        lines[lines.len().saturating_sub(20)..].join("\n")
                    ));
                }
            }
        }
        text
    }

    /// Awaits `check`; a failure carries [`RealCluster::diagnostics`] (a panic prints them
    /// before it unwinds on).
    pub async fn checked<T>(
        &self,
        check: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        use futures::FutureExt as _;
        match std::panic::AssertUnwindSafe(check).catch_unwind().await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.context(self.diagnostics())),
            Err(panic) => {
                eprintln!("{}", self.diagnostics());
                std::panic::resume_unwind(panic)
            }
        }
    }
}
