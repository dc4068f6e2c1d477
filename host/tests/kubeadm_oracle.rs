//! The real kubeadm as the oracle, on real nodes.
//!
//! Two one-node clusters of the test env (tests/harness: each node its own namespaces,
//! containerd and the real kubelet of the release): `kubeadm init --upload-certs` on one,
//! `kubeforge init --upload-certs` on the other, both from the same configuration file (the
//! nodes' names and addresses are detected, as on a machine), run at the same time. Once both
//! clusters are ready (every Node Ready, every kube-system Pod Ready), what each tool made is
//! compared, and every difference is listed before the test fails:
//!
//! - the files: the layout and modes of `/etc/kubernetes` and of the kubelet files init writes;
//!   each certificate's version, subject and issuer (with their string encodings), serial shape,
//!   signature and key algorithm, extensions (criticality and parsed value: key usages,
//!   extended key usages, basic constraints, SANs, how the key identifiers are derived) and
//!   validity shape; each key's PEM type and algorithm and that it belongs to its certificate;
//!   every kubeconfig as a document (clusters, contexts, users, and the certificate embedded for
//!   each user, described as above); the four static Pod manifests,
//!   `/var/lib/kubelet/config.yaml`, `kubeadm-flags.env` and `instance-config.yaml` byte for
//!   byte;
//! - the API objects: the names of every ConfigMap, Secret, ServiceAccount, Role, RoleBinding,
//!   Deployment, DaemonSet and Service in every namespace and of every ClusterRole and
//!   ClusterRoleBinding, and then each object kubeadm's phases create (the list in [`OBJECTS`],
//!   with the kubeadm source file of each), plus the bootstrap-token Secrets and the Node's
//!   labels, annotations and spec, as `kubectl get -o json` shows them;
//! - what the cluster says about the files: who each kubeconfig authenticates as
//!   (`kubectl auth whoami` with it, on the node), which node holds the kube-controller-manager
//!   and kube-scheduler leases, and `kubeadm certs check-expiration`.
//!
//! Then, on kubeforge's node only: etcd serves a client with kubeforge's
//! apiserver-etcd-client certificate and refuses one without a certificate or with one from
//! another CA; and the real kubeadm's `init phase certs all` and `init phase kubeconfig all`
//! reuse every file of kubeforge's PKI and kubeconfigs unchanged, saying so.
//!
//! Normalised before comparing — what must differ between two clusters — and nothing else:
//!
//! - the node's name and address (each cluster has its own): replaced by `<node-name>` and
//!   `<address>` everywhere;
//! - bootstrap token ids and secrets (random): the ids by `<default token>` and
//!   `<kubeadm-certs token>` wherever they appear (Secret names, the `jws-kubeconfig-*` key, the
//!   kubeadm-certs owner reference); `token-id` and `token-secret` values by placeholders;
//!   `expiration` by `<created + TTL>` once checked to be the Secret's creation time plus the
//!   token's TTL (24 h, 2 h for the kubeadm-certs token) within 2 minutes;
//! - the kubeadm-certs Secret's values (encrypted with a random key): `<encrypted, > 28 bytes>`
//!   (longer than AES-GCM's nonce and tag);
//! - the `jws-kubeconfig-*` value of cluster-info (kube-controller-manager's signature of a
//!   CA-derived document): `<JWS>`, once checked to be a detached JWS;
//! - CA-derived values: embedded `certificate-authority-data` by `<the node's ca.crt>` once
//!   checked to be the node's ca.crt; embedded client certificates by their description;
//!   client keys by their PEM type; certificate serials by `<random in [1, 2^63)>` once checked
//!   to be in range; a subject key id by how it derives from the key (`<SHA-256/160 of the
//!   key>`, Go's since 1.25, or its length), an authority key id by `<the issuer's subject key
//!   id>` once checked to be;
//! - absolute times: a certificate's validity by its length and, for a signed certificate, by
//!   how its notBefore relates to its CA's (within 2 s); `kubeadm certs check-expiration` dates;
//! - object metadata the API server and controllers assign: `uid`, `resourceVersion`,
//!   `creationTimestamp`, `managedFields`, `generation`, owner references' `uid`, and the
//!   `status` of every object (the Node: only its metadata and spec are compared);
//! - lease holders' identities: `<node-name>_<uuid>` once checked to have that shape; the
//!   credential id `kubectl auth whoami` shows (`X509SHA256=…`) once checked to be the SHA-256
//!   of the kubeconfig's client certificate;
//! - the order of a certificate's extensions (DER order, read by no consumer): sorted by OID;
//! - kubeforge's own additions: its journal, `/etc/kubernetes/tmp/kubeforge-journal.jsonl`
//!   (and the `tmp` directory holding it).
//!
//! What the kubelet and kube-controller-manager make on each node (the kubelet's serving
//! certificate, its rotated client certificate) is not compared.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubeforge_testenv::{CLUSTER_SETTINGS, Cluster, ClusterSpec, Node};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

const KUBEADM_CLUSTER: &str = "oracle-kubeadm";
const KUBEFORGE_CLUSTER: &str = "oracle-kubeforge";
/// Where each node gets the configuration file (its own /etc).
const CONFIG_PATH: &str = "/etc/kubeforge-oracle/init.yaml";
const READY_TIMEOUT: Duration = Duration::from_secs(240);

/// The one configuration both tools get: kubeadm's defaults, a pod network, and what every
/// node of the test env needs. kubeadm's only objection to this machine is its cgroup v1
/// hierarchy (preflight `SystemVerification`); kubeforge has no preflight yet and reads the
/// field as kubeadm does.
fn config(version: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  ignorePreflightErrors: [SystemVerification]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
networking:
  podSubnet: 10.244.0.0/16
{CLUSTER_SETTINGS}"
    )
}

/// The objects kubeadm's init phases create or update (`cmd/kubeadm/app/phases/…`), besides the
/// bootstrap-token Secrets and the Node: (resource, namespace, name, where kubeadm makes it).
#[rustfmt::skip]
const OBJECTS: &[(&str, Option<&str>, &str, &str)] = &[
    ("configmap", Some("kube-system"), "kubeadm-config", "uploadconfig/uploadconfig.go"),
    ("role", Some("kube-system"), "kubeadm:nodes-kubeadm-config", "uploadconfig/uploadconfig.go"),
    ("rolebinding", Some("kube-system"), "kubeadm:nodes-kubeadm-config", "uploadconfig/uploadconfig.go"),
    ("configmap", Some("kube-system"), "kubelet-config", "kubelet/config.go"),
    ("role", Some("kube-system"), "kubeadm:kubelet-config", "kubelet/config.go"),
    ("rolebinding", Some("kube-system"), "kubeadm:kubelet-config", "kubelet/config.go"),
    ("secret", Some("kube-system"), "kubeadm-certs", "copycerts/copycerts.go"),
    ("role", Some("kube-system"), "kubeadm:kubeadm-certs", "copycerts/copycerts.go"),
    ("rolebinding", Some("kube-system"), "kubeadm:kubeadm-certs", "copycerts/copycerts.go"),
    ("clusterrolebinding", None, "kubeadm:cluster-admins", "kubeconfig/kubeconfig.go"),
    ("clusterrolebinding", None, "kubeadm:kubelet-bootstrap", "bootstraptoken/node/tlsbootstrap.go"),
    ("clusterrole", None, "kubeadm:get-nodes", "bootstraptoken/node/tlsbootstrap.go"),
    ("clusterrolebinding", None, "kubeadm:get-nodes", "bootstraptoken/node/tlsbootstrap.go"),
    ("clusterrolebinding", None, "kubeadm:node-autoapprove-bootstrap", "bootstraptoken/node/tlsbootstrap.go"),
    ("clusterrolebinding", None, "kubeadm:node-autoapprove-certificate-rotation", "bootstraptoken/node/tlsbootstrap.go"),
    ("clusterrolebinding", None, "kubeadm:apiserver-kubelet-client", "bootstraptoken/node/tlsbootstrap.go"),
    ("configmap", Some("kube-public"), "cluster-info", "bootstraptoken/clusterinfo/clusterinfo.go"),
    ("role", Some("kube-public"), "kubeadm:bootstrap-signer-clusterinfo", "bootstraptoken/clusterinfo/clusterinfo.go"),
    ("rolebinding", Some("kube-public"), "kubeadm:bootstrap-signer-clusterinfo", "bootstraptoken/clusterinfo/clusterinfo.go"),
    ("configmap", Some("kube-system"), "coredns", "addons/dns/dns.go"),
    ("clusterrole", None, "system:coredns", "addons/dns/dns.go"),
    ("clusterrolebinding", None, "system:coredns", "addons/dns/dns.go"),
    ("serviceaccount", Some("kube-system"), "coredns", "addons/dns/dns.go"),
    ("deployment", Some("kube-system"), "coredns", "addons/dns/dns.go"),
    ("service", Some("kube-system"), "kube-dns", "addons/dns/dns.go"),
    ("serviceaccount", Some("kube-system"), "kube-proxy", "addons/proxy/proxy.go"),
    ("clusterrolebinding", None, "kubeadm:node-proxier", "addons/proxy/proxy.go"),
    ("role", Some("kube-system"), "kube-proxy", "addons/proxy/proxy.go"),
    ("rolebinding", Some("kube-system"), "kube-proxy", "addons/proxy/proxy.go"),
    ("configmap", Some("kube-system"), "kube-proxy", "addons/proxy/proxy.go"),
    ("daemonset", Some("kube-system"), "kube-proxy", "addons/proxy/proxy.go"),
];

/// The objects of [`OBJECTS`] kubeadm creates only from a release on: (name, first minor).
const NEWER_OBJECTS: [(&str, u64); 1] = [("kubeadm:apiserver-kubelet-client", 36)];

/// The objects kubeadm `version`'s init creates.
fn kubeadm_objects(
    version: &str,
) -> impl Iterator<
    Item = &'static (
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
    ),
> {
    let minor: u64 = version
        .split('.')
        .nth(1)
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(u64::MAX);
    OBJECTS.iter().filter(move |(_, _, name, _)| {
        NEWER_OBJECTS
            .iter()
            .all(|(newer, since)| newer != name || minor >= *since)
    })
}

/// The certificates init writes under the certificates dir (`.crt`; each with its `.key`).
const CERTIFICATES: &[(&str, &str)] = &[
    ("ca", "ca"),
    ("apiserver", "ca"),
    ("apiserver-kubelet-client", "ca"),
    ("front-proxy-ca", "front-proxy-ca"),
    ("front-proxy-client", "front-proxy-ca"),
    ("etcd/ca", "etcd/ca"),
    ("etcd/server", "etcd/ca"),
    ("etcd/peer", "etcd/ca"),
    ("etcd/healthcheck-client", "etcd/ca"),
    ("apiserver-etcd-client", "etcd/ca"),
];

const KUBECONFIGS: [&str; 5] = [
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// Files compared byte for byte (after the name and address).
const TEXT_FILES: [&str; 7] = [
    "/etc/kubernetes/manifests/etcd.yaml",
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    "/etc/kubernetes/manifests/kube-scheduler.yaml",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/var/lib/kubelet/instance-config.yaml",
];

// ---------------------------------------------------------------------------------------------
// The test

#[test]
fn kubeforge_init_makes_what_kubeadm_v1_37_init_makes_on_real_nodes() -> Result<()> {
    oracle("v1.37.2")
}

#[test]
fn kubeforge_init_makes_what_kubeadm_v1_36_init_makes_on_real_nodes() -> Result<()> {
    oracle("v1.36.3")
}

/// One release's comparison: nodes of that release (its kubelet, kubeadm and images), the
/// configuration at that release. One at a time: four control planes at once would crowd two
/// cores past the tests' timeouts.
fn oracle(version: &str) -> Result<()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let [kubeadm, kubeforge] = [KUBEADM_CLUSTER, KUBEFORGE_CLUSTER].map(|name| {
        Cluster::create(
            ClusterSpec::new(name, 1, 0)
                .owned_by_this_process()
                .with_kubeforge(env!("CARGO_BIN_EXE_kubeforge"))
                .with_kubernetes_version(version)?,
        )
        .with_context(|| format!("creating cluster {name} of {version}"))
    });
    let (kubeadm, kubeforge) = (kubeadm?, kubeforge?);
    eprintln!("two clusters created in {:.1?}", started.elapsed());
    let sides = [
        Side::new("kubeadm", &kubeadm)?,
        Side::new("kubeforge", &kubeforge)?,
    ];
    let report = match run(&sides, version, started) {
        Ok(report) => report,
        Err(e) => {
            let diagnostics: Vec<String> = sides.iter().map(|s| s.node.diagnostics()).collect();
            bail!("{e:#}\n\n{}", diagnostics.join("\n"));
        }
    };
    eprintln!(
        "compared {} things in {:.1?}",
        report.compared,
        started.elapsed()
    );
    ensure!(
        report.differences.is_empty(),
        "{} of {} comparisons differ between kubeadm's node {}-control-plane and kubeforge's \
         node {}-control-plane at {version} (normalised as the test's documentation lists):\n\n{}",
        report.differences.len(),
        report.compared,
        KUBEADM_CLUSTER,
        KUBEFORGE_CLUSTER,
        report.differences.join("\n\n")
    );
    Ok(())
}

fn run(sides: &[Side<'_>; 2], version: &str, started: Instant) -> Result<Report> {
    let config = config(version);
    for side in sides {
        side.node.write(CONFIG_PATH, &config)?;
    }
    // Both inits at once, then both waits: the clusters are independent.
    let [kubeadm_init, kubeforge_init] = std::thread::scope(|scope| {
        let runs = sides.each_ref().map(|side| {
            scope.spawn(move || {
                let began = Instant::now();
                side.run(&[side.tool, "init", "--config", CONFIG_PATH, "--upload-certs"])
                    .map(|output| (output, began.elapsed()))
            })
        });
        runs.map(|run| run.join().expect("an init thread panicked"))
    });
    let (kubeadm_init, kubeadm_took) = kubeadm_init?;
    let (kubeforge_init, kubeforge_took) = kubeforge_init?;
    for (side, output) in sides.iter().zip([&kubeadm_init, &kubeforge_init]) {
        ensure!(
            output.contains("Your Kubernetes control-plane has initialized successfully!"),
            "{} init on {} did not say it initialised the control plane:\n{output}",
            side.tool,
            side.node.name
        );
    }
    eprintln!(
        "kubeadm init {kubeadm_took:.1?}, kubeforge init {kubeforge_took:.1?} (concurrently)"
    );
    let waits = std::thread::scope(|scope| {
        sides
            .each_ref()
            .map(|side| scope.spawn(move || side.cluster.wait_ready(READY_TIMEOUT)))
            .map(|wait| wait.join().expect("a wait thread panicked"))
    });
    for (side, wait) in sides.iter().zip(waits) {
        let took = wait.with_context(|| format!("the {} cluster", side.tool))?;
        eprintln!("{} cluster ready {took:.1?} after init", side.tool);
    }
    eprintln!("both ready at {:.1?}", started.elapsed());

    let mut report = Report::default();
    let [kubeadm, kubeforge] = sides;
    let tokens = [kubeadm.tokens()?, kubeforge.tokens()?];
    compare_layout(&mut report, sides)?;
    compare_certificates(&mut report, sides)?;
    compare_kubeconfigs(&mut report, sides)?;
    for path in TEXT_FILES {
        let [a, b] = sides
            .each_ref()
            .map(|s| s.node.read(path).map(|t| s.normalise(&t)));
        report.compare(&format!("{path} (node file)"), &a?, &b?);
    }
    compare_object_names(&mut report, sides, &tokens)?;
    compare_objects(&mut report, sides, version, &tokens)?;
    compare_identities(&mut report, sides)?;
    compare_leases(&mut report, sides)?;
    compare_check_expiration(&mut report, sides)?;
    check_etcd_refuses_foreign_clients(&mut report, kubeforge)?;
    check_etcd_refuses_foreign_clients(&mut report, kubeadm)?;
    check_kubeadm_reuses_kubeforge_files(&mut report, kubeforge)?;
    Ok(report)
}

/// One tool's cluster and node.
struct Side<'a> {
    tool: &'static str,
    cluster: &'a Cluster,
    node: Node,
}

impl<'a> Side<'a> {
    fn new(tool: &'static str, cluster: &'a Cluster) -> Result<Side<'a>> {
        let node = cluster.node(&format!("{}-control-plane", cluster.name()))?;
        Ok(Side {
            tool,
            cluster,
            node,
        })
    }

    /// `argv` in the node, without proxy variables (kubeadm copies them into the static Pods)
    /// and with a compiled-component cache kept between runs of the tests.
    fn command(&self, argv: &[&str]) -> Command {
        let mut command = self.node.command(argv);
        for (name, _) in std::env::vars_os() {
            if name
                .to_string_lossy()
                .to_ascii_lowercase()
                .ends_with("_proxy")
            {
                command.env_remove(name);
            }
        }
        command
            .env(
                "KUBEFORGE_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubeforge-oracle-cache"),
            )
            .env_remove("KUBEFORGE_LOG");
        command
    }

    /// Runs `argv` in the node; fails with its output unless it exits 0. Returns stdout and
    /// stderr.
    fn run(&self, argv: &[&str]) -> Result<String> {
        let output = self
            .command(argv)
            .output()
            .with_context(|| format!("running {argv:?} on node {}", self.node.name))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ensure!(
            output.status.success(),
            "`{}` on node {} failed ({}):\n{text}",
            argv.join(" "),
            self.node.name,
            output.status
        );
        Ok(text)
    }

    /// The node's name and address replaced by placeholders.
    fn normalise(&self, text: &str) -> String {
        text.replace(&self.node.name, "<node-name>")
            .replace(&self.node.address.to_string(), "<address>")
    }

    fn kubectl_json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self
            .cluster
            .kubectl(&all)
            .with_context(|| format!("on the {} cluster", self.tool))?;
        serde_json::from_str(&text).with_context(|| format!("kubectl {}: not JSON", args.join(" ")))
    }

    /// The bootstrap tokens' ids: (id, placeholder).
    fn tokens(&self) -> Result<Vec<(String, &'static str)>> {
        let secrets = self.kubectl_json(&["get", "secrets", "-n", "kube-system"])?;
        let mut tokens = Vec::new();
        for secret in items(&secrets) {
            if secret["type"] != "bootstrap.kubernetes.io/token" {
                continue;
            }
            let name = secret["metadata"]["name"].as_str().unwrap_or_default();
            let id = name.strip_prefix("bootstrap-token-").unwrap_or(name);
            let placeholder = if secret["data"]
                .get("usage-bootstrap-authentication")
                .is_some()
            {
                "<default token>"
            } else {
                "<kubeadm-certs token>"
            };
            tokens.push((id.to_string(), placeholder));
        }
        ensure!(
            tokens.len() == 2,
            "the {} cluster has bootstrap tokens {tokens:?}; expected the default one and the kubeadm-certs one",
            self.tool
        );
        Ok(tokens)
    }

    fn ca_pem(&self) -> Result<String> {
        self.node.read("/etc/kubernetes/pki/ca.crt")
    }
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Differences

#[derive(Default)]
struct Report {
    compared: usize,
    differences: Vec<String>,
}

impl Report {
    fn compare(&mut self, what: &str, kubeadm: &str, kubeforge: &str) {
        self.compared += 1;
        if kubeadm != kubeforge {
            self.differences.push(format!(
                "{what} differs (- kubeadm, + kubeforge):\n{}",
                line_diff(kubeadm, kubeforge)
            ));
        }
    }

    fn compare_values(&mut self, what: &str, kubeadm: &Value, kubeforge: &Value) {
        self.compare(what, &pretty(kubeadm), &pretty(kubeforge));
    }

    fn fail(&mut self, what: String) {
        self.compared += 1;
        self.differences.push(what);
    }
}

/// JSON with sorted keys, two-space indented.
fn pretty(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(list) => Value::Array(list.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(value)).unwrap_or_default()
}

/// A line diff of `a` and `b` (longest common subsequence), with 2 lines of context.
fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near_change = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|(op, _)| *op != ' ')
    };
    let mut out = Vec::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push("  …".to_string());
                skipped = false;
            }
            out.push(format!("{op} {line}"));
        } else {
            skipped = true;
        }
    }
    out.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Files

/// Every file and directory under `dir` of the node: relative path → mode.
fn layout(node: &Node, dir: &str) -> Result<BTreeMap<String, u32>> {
    let root = node.path(dir);
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let rel = path.strip_prefix(&root)?.display().to_string();
            if meta.is_dir() {
                stack.push(path);
                out.insert(format!("{rel}/"), meta.permissions().mode() & 0o7777);
            } else {
                out.insert(rel, meta.permissions().mode() & 0o7777);
            }
        }
    }
    Ok(out)
}

fn compare_layout(report: &mut Report, sides: &[Side<'_>; 2]) -> Result<()> {
    let listing = |side: &Side<'_>| -> Result<String> {
        let mut etc = layout(&side.node, "/etc/kubernetes")?;
        if side.tool == "kubeforge" {
            // kubeforge's own journal (see the normalisations).
            if etc
                .keys()
                .filter(|p| p.starts_with("tmp/"))
                .collect::<Vec<_>>()
                == ["tmp/", "tmp/kubeforge-journal.jsonl"]
            {
                etc.retain(|p, _| !p.starts_with("tmp/"));
            }
        }
        let mut lines: Vec<String> = etc
            .iter()
            .map(|(path, mode)| format!("{mode:04o} /etc/kubernetes/{path}"))
            .collect();
        for file in ["config.yaml", "kubeadm-flags.env", "instance-config.yaml"] {
            let path = format!("/var/lib/kubelet/{file}");
            let mode = std::fs::metadata(side.node.path(&path))
                .map(|m| format!("{:04o}", m.permissions().mode() & 0o7777))
                .unwrap_or_else(|_| "missing".into());
            lines.push(format!("{mode} {path}"));
        }
        Ok(lines.join("\n"))
    };
    let [a, b] = sides.each_ref().map(listing);
    report.compare("the files init wrote and their modes", &a?, &b?);
    Ok(())
}

fn compare_certificates(report: &mut Report, sides: &[Side<'_>; 2]) -> Result<()> {
    for (name, ca) in CERTIFICATES {
        let [a, b] = sides.each_ref().map(|side| -> Result<Value> {
            let pki = |file: String| side.node.read(format!("/etc/kubernetes/pki/{file}"));
            let cert = pki(format!("{name}.crt"))?;
            let ca_cert = pki(format!("{ca}.crt"))?;
            let mut description = describe_certificate_pem(&cert, &ca_cert)
                .with_context(|| format!("{name}.crt on node {}", side.node.name))?;
            description["key"] = describe_key(&pki(format!("{name}.key"))?, &cert)
                .with_context(|| format!("{name}.key on node {}", side.node.name))?;
            Ok(serde_json::from_str(
                &side.normalise(&description.to_string()),
            )?)
        });
        report.compare_values(&format!("certificate {name}.crt and its key"), &a?, &b?);
    }
    // The service-account key pair.
    let [a, b] = sides.each_ref().map(|side| -> Result<Value> {
        let key = side.node.read("/etc/kubernetes/pki/sa.key")?;
        let public = side.node.read("/etc/kubernetes/pki/sa.pub")?;
        describe_sa_pair(&key, &public)
            .with_context(|| format!("sa.key/sa.pub on node {}", side.node.name))
    });
    report.compare_values("sa.key and sa.pub", &a?, &b?);
    Ok(())
}

fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .map(|block| {
            let block = block.map_err(|e| anyhow!("bad PEM: {e}"))?;
            Ok((block.label, block.contents))
        })
        .collect()
}

fn one_certificate_der(pem: &str) -> Result<Vec<u8>> {
    let blocks = pem_blocks(pem)?;
    match blocks.as_slice() {
        [(label, der)] if label == "CERTIFICATE" => Ok(der.clone()),
        _ => bail!(
            "expected one CERTIFICATE PEM block, found {:?}",
            blocks.iter().map(|b| &b.0).collect::<Vec<_>>()
        ),
    }
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| anyhow!("not X.509: {e}"))?;
    ensure!(rest.is_empty(), "trailing bytes after the certificate");
    Ok(cert)
}

fn describe_name(name: &X509Name<'_>) -> Value {
    let attributes: Vec<Value> = name
        .iter_attributes()
        .map(|attribute| {
            let oid = attribute.attr_type().to_id_string();
            let kind = match oid.as_str() {
                "2.5.4.3" => "CN".to_string(),
                "2.5.4.10" => "O".to_string(),
                "2.5.4.11" => "OU".to_string(),
                _ => oid,
            };
            let encoding = match attribute.attr_value().tag().0 {
                12 => "UTF8String".to_string(),
                19 => "PrintableString".to_string(),
                22 => "IA5String".to_string(),
                other => format!("tag {other}"),
            };
            json!({
                "attribute": kind,
                "value": attribute.as_str().unwrap_or("<not a string>"),
                "encoding": encoding,
            })
        })
        .collect();
    Value::Array(attributes)
}

fn key_id_method(id: &[u8], spki_bits: &[u8]) -> String {
    let sha256 = Sha256::digest(spki_bits);
    if id == &sha256[..20] {
        "<SHA-256/160 of the key>".into()
    } else if id.len() == 20 {
        // Go before 1.25 (and RFC 5280's method 1) use SHA-1, which this test cannot compute
        // without another dependency; any other 20-byte id is described by its length only.
        "<20 bytes, not SHA-256/160 of the key>".into()
    } else {
        format!("<{} bytes>", id.len())
    }
}

/// A certificate as the comparison sees it; `ca_pem` is its issuer's certificate (itself for a
/// CA).
fn describe_certificate_pem(pem: &str, ca_pem: &str) -> Result<Value> {
    let der = one_certificate_der(pem)?;
    let ca_der = one_certificate_der(ca_pem)?;
    let cert = parse_certificate(&der)?;
    let ca = parse_certificate(&ca_der)?;
    describe_certificate(&cert, &ca)
}

fn describe_certificate(cert: &X509Certificate<'_>, ca: &X509Certificate<'_>) -> Result<Value> {
    let spki_bits = cert.public_key().subject_public_key.data.as_ref();
    let ca_ski = ca
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
    let mut extensions: Vec<(String, Value)> = Vec::new();
    for extension in cert.extensions() {
        let oid = extension.oid.to_id_string();
        let value = match extension.parsed_extension() {
            ParsedExtension::KeyUsage(usage) => {
                let names = [
                    (usage.digital_signature(), "digitalSignature"),
                    (usage.non_repudiation(), "contentCommitment"),
                    (usage.key_encipherment(), "keyEncipherment"),
                    (usage.data_encipherment(), "dataEncipherment"),
                    (usage.key_agreement(), "keyAgreement"),
                    (usage.key_cert_sign(), "keyCertSign"),
                    (usage.crl_sign(), "cRLSign"),
                    (usage.encipher_only(), "encipherOnly"),
                    (usage.decipher_only(), "decipherOnly"),
                ];
                json!({"keyUsage": names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>()})
            }
            ParsedExtension::ExtendedKeyUsage(usage) => {
                let mut names: Vec<String> = [
                    (usage.any, "any"),
                    (usage.server_auth, "serverAuth"),
                    (usage.client_auth, "clientAuth"),
                    (usage.code_signing, "codeSigning"),
                    (usage.email_protection, "emailProtection"),
                    (usage.time_stamping, "timeStamping"),
                    (usage.ocsp_signing, "OCSPSigning"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| n.to_string())
                .collect();
                names.extend(usage.other.iter().map(|o| o.to_id_string()));
                json!({"extKeyUsage": names})
            }
            ParsedExtension::BasicConstraints(constraints) => json!({
                "basicConstraints": {"ca": constraints.ca, "pathLen": constraints.path_len_constraint}
            }),
            ParsedExtension::SubjectAlternativeName(san) => {
                let names: Vec<String> = san
                    .general_names
                    .iter()
                    .map(|name| match name {
                        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
                        GeneralName::IPAddress(bytes) => match bytes.len() {
                            4 => format!(
                                "IP:{}",
                                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap())
                            ),
                            16 => format!(
                                "IP:{}",
                                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap())
                            ),
                            n => format!("IP:<{n} bytes>"),
                        },
                        other => format!("{other:?}"),
                    })
                    .collect();
                json!({"subjectAltName": names})
            }
            ParsedExtension::SubjectKeyIdentifier(id) => {
                json!({"subjectKeyId": key_id_method(id.0, spki_bits)})
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                let id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                let shown = match (&id, &ca_ski) {
                    (Some(id), Some(ca)) if id == ca => "<the issuer's subject key id>".to_string(),
                    (Some(id), _) => {
                        format!("<{} bytes, not the issuer's subject key id>", id.len())
                    }
                    (None, _) => "<no key id>".to_string(),
                };
                json!({"authorityKeyId": shown, "issuer": aki.authority_cert_issuer.is_some(), "serial": aki.authority_cert_serial.is_some()})
            }
            other => json!({"unparsed": format!("{other:?}")}),
        };
        extensions.push((
            oid.clone(),
            json!({"oid": oid, "critical": extension.critical, "value": value}),
        ));
    }
    extensions.sort_by(|a, b| a.0.cmp(&b.0));
    let serial = cert.raw_serial();
    let serial_shape = if !serial.is_empty()
        && serial.len() <= 8
        && serial[0] & 0x80 == 0
        && serial.iter().any(|b| *b != 0)
    {
        "<random in [1, 2^63)>".to_string()
    } else {
        format!("<{} bytes: {}>", serial.len(), hex::encode(serial))
    };
    let public_key = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA-{}", rsa.key_size()),
        Ok(PublicKey::EC(ec)) => format!("EC-{}", ec.key_size()),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("<unparsable: {e}>"),
    };
    let validity = cert.validity();
    let length = validity.not_after.timestamp() - validity.not_before.timestamp();
    let self_signed = cert.subject() == ca.subject() && cert.raw_serial() == ca.raw_serial();
    let not_before = if self_signed {
        "self-signed".to_string()
    } else {
        let offset = validity.not_before.timestamp() - ca.validity().not_before.timestamp();
        if offset.abs() <= 2 {
            "the CA's notBefore (within 2 s)".to_string()
        } else {
            format!("the CA's notBefore {offset:+} s")
        }
    };
    Ok(json!({
        "version": cert.version().0 + 1,
        "serial": serial_shape,
        "signatureAlgorithm": cert.signature_algorithm.algorithm.to_id_string(),
        "subject": describe_name(cert.subject()),
        "issuer": describe_name(cert.issuer()),
        "issuerIsTheCA": cert.issuer() == ca.subject(),
        "verifiesWithTheCA": cert.verify_signature(Some(ca.public_key())).is_ok(),
        "publicKey": public_key,
        "validity": {"seconds": length, "notBefore": not_before},
        "extensions": extensions.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
    }))
}

/// A private key's PEM type and algorithm, and whether it belongs to `cert_pem`.
fn describe_key(key_pem: &str, cert_pem: &str) -> Result<Value> {
    use aws_lc_rs::signature::KeyPair as _;
    let blocks = pem_blocks(key_pem)?;
    let [(label, der)] = blocks.as_slice() else {
        bail!("expected one PEM block, found {}", blocks.len());
    };
    let (algorithm, public) = match label.as_str() {
        "RSA PRIVATE KEY" => {
            let key = aws_lc_rs::rsa::KeyPair::from_der(der)
                .map_err(|e| anyhow!("not a PKCS#1 RSA key: {e}"))?;
            (
                format!("RSA-{}", key.public_modulus_len() * 8),
                key.public_key().as_ref().to_vec(),
            )
        }
        "EC PRIVATE KEY" => {
            let key = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                der,
            )
            .map_err(|e| anyhow!("not a P-256 SEC1 key: {e}"))?;
            ("EC-256".to_string(), key.public_key().as_ref().to_vec())
        }
        other => (format!("<{other}>"), Vec::new()),
    };
    let cert_der = one_certificate_der(cert_pem)?;
    let cert = parse_certificate(&cert_der)?;
    Ok(json!({
        "pem": label,
        "algorithm": algorithm,
        "belongsToTheCertificate": public == cert.public_key().subject_public_key.data.as_ref(),
    }))
}

fn describe_sa_pair(key_pem: &str, public_pem: &str) -> Result<Value> {
    use aws_lc_rs::signature::KeyPair as _;
    let key_blocks = pem_blocks(key_pem)?;
    let public_blocks = pem_blocks(public_pem)?;
    let ([(key_label, key_der)], [(public_label, public_der)]) =
        (key_blocks.as_slice(), public_blocks.as_slice())
    else {
        bail!("expected one PEM block in each of sa.key and sa.pub");
    };
    let key = aws_lc_rs::rsa::KeyPair::from_der(key_der)
        .map_err(|e| anyhow!("sa.key is not a PKCS#1 RSA key: {e}"))?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(public_der)
        .map_err(|e| anyhow!("sa.pub is not a SubjectPublicKeyInfo: {e}"))?;
    Ok(json!({
        "sa.key": {"pem": key_label, "algorithm": format!("RSA-{}", key.public_modulus_len() * 8)},
        "sa.pub": {"pem": public_label, "isTheKeysPublicKey": spki.subject_public_key.data.as_ref() == key.public_key().as_ref()},
    }))
}

fn compare_kubeconfigs(report: &mut Report, sides: &[Side<'_>; 2]) -> Result<()> {
    for file in KUBECONFIGS {
        let [a, b] = sides.each_ref().map(|side| -> Result<Value> {
            let path = format!("/etc/kubernetes/{file}");
            let text = side.node.read(&path)?;
            let ca = side.ca_pem()?;
            let described = describe_kubeconfig(&text, &ca)
                .with_context(|| format!("{path} on node {}", side.node.name))?;
            Ok(serde_json::from_str(
                &side.normalise(&described.to_string()),
            )?)
        });
        report.compare_values(&format!("kubeconfig /etc/kubernetes/{file}"), &a?, &b?);
    }
    Ok(())
}

/// A kubeconfig with its embedded CA checked against the node's and replaced, each embedded
/// client certificate replaced by its description and each embedded key by its PEM type.
fn describe_kubeconfig(text: &str, ca_pem: &str) -> Result<Value> {
    let mut doc: Value = serde_saphyr::from_str(text).context("not YAML")?;
    // Key order as written, which a byte comparison would see: kept as a list.
    let keys: Vec<Value> = match serde_saphyr::from_str::<serde_json::Map<String, Value>>(text) {
        Ok(map) => map.keys().map(|k| Value::String(k.clone())).collect(),
        Err(_) => Vec::new(),
    };
    for cluster in doc["clusters"].as_array_mut().into_iter().flatten() {
        let data = &mut cluster["cluster"]["certificate-authority-data"];
        if let Some(b64) = data.as_str() {
            let decoded = STANDARD.decode(b64).context("certificate-authority-data")?;
            *data = if decoded == ca_pem.as_bytes() {
                "<the node's ca.crt>".into()
            } else {
                "<not the node's ca.crt>".into()
            };
        }
    }
    for user in doc["users"].as_array_mut().into_iter().flatten() {
        let user = &mut user["user"];
        if let Some(b64) = user["client-certificate-data"].as_str() {
            let pem = String::from_utf8(STANDARD.decode(b64)?)?;
            let described = describe_certificate_pem(&pem, ca_pem)?;
            if let Some(key) = user["client-key-data"].as_str() {
                let key = String::from_utf8(STANDARD.decode(key)?)?;
                user["client-key-data"] = describe_key(&key, &pem)?;
            }
            user["client-certificate-data"] = described;
        }
    }
    doc["<top-level keys in order>"] = Value::Array(keys);
    Ok(doc)
}

// ---------------------------------------------------------------------------------------------
// API objects

/// Token ids replaced by their placeholders.
fn replace_tokens(text: &str, tokens: &[(String, &str)]) -> String {
    tokens
        .iter()
        .fold(text.to_string(), |text, (id, placeholder)| {
            text.replace(id, placeholder)
        })
}

fn compare_object_names(
    report: &mut Report,
    sides: &[Side<'_>; 2],
    tokens: &[Vec<(String, &'static str)>; 2],
) -> Result<()> {
    let [a, b] = [0, 1].map(|i| -> Result<String> {
        let side = &sides[i];
        let mut names = BTreeSet::new();
        for (args, namespaced) in [
            (
                &[
                    "get",
                    "configmaps,secrets,serviceaccounts,roles,rolebindings,deployments,daemonsets,services",
                    "--all-namespaces",
                ][..],
                true,
            ),
            (&["get", "clusterroles,clusterrolebindings"][..], false),
        ] {
            for item in items(&side.kubectl_json(args)?) {
                let kind = item["kind"].as_str().unwrap_or("?");
                let name = item["metadata"]["name"].as_str().unwrap_or("?");
                names.insert(if namespaced {
                    format!(
                        "{kind} {}/{name}",
                        item["metadata"]["namespace"].as_str().unwrap_or("?")
                    )
                } else {
                    format!("{kind} {name}")
                });
            }
        }
        let names: BTreeSet<String> = names
            .iter()
            .map(|n| replace_tokens(&side.normalise(n), &tokens[i]))
            .collect();
        Ok(names.into_iter().collect::<Vec<_>>().join("\n"))
    });
    report.compare("the names of the cluster's objects", &a?, &b?);
    Ok(())
}

/// `object` without what the API server and controllers assign (see the normalisations).
fn strip_assigned(object: &mut Value) {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for key in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            metadata.remove(key);
        }
        if let Some(owners) = metadata
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            for owner in owners {
                if let Some(owner) = owner.as_object_mut() {
                    owner.remove("uid");
                }
            }
        }
    }
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
}

/// A bootstrap-token or kubeadm-certs Secret with its values decoded and the random ones
/// checked and replaced.
fn normalise_secret(secret: &mut Value) -> Result<()> {
    let name = secret["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let created = secret["metadata"]["creationTimestamp"]
        .as_str()
        .map(|t| OffsetDateTime::parse(t, &Rfc3339))
        .transpose()
        .with_context(|| format!("Secret {name}: creationTimestamp"))?;
    let Some(data) = secret["data"].as_object_mut() else {
        return Ok(());
    };
    // kubeadm's DefaultTokenDuration and DefaultCertTokenDuration.
    let ttl = if data.contains_key("usage-bootstrap-authentication") {
        Duration::from_secs(24 * 3600)
    } else {
        Duration::from_secs(2 * 3600)
    };
    for (key, value) in data.iter_mut() {
        let decoded = STANDARD
            .decode(value.as_str().unwrap_or_default())
            .with_context(|| format!("Secret {name}: {key} is not base64"))?;
        if name == "kubeadm-certs" {
            *value = format!(
                "<encrypted, {} bytes>",
                if decoded.len() > 28 { "> 28" } else { "<= 28" }
            )
            .into();
            continue;
        }
        let text = String::from_utf8_lossy(&decoded).into_owned();
        *value = match key.as_str() {
            "token-id" if text.len() == 6 => "<token id>".into(),
            "token-secret" if text.len() == 16 => "<token secret>".into(),
            "expiration" => match (OffsetDateTime::parse(&text, &Rfc3339), created) {
                (Ok(expires), Some(created)) => {
                    let off = (expires - created).whole_seconds() - ttl.as_secs() as i64;
                    if off.abs() <= 120 {
                        format!("<created + {} h>", ttl.as_secs() / 3600).into()
                    } else {
                        format!("{text} (created + TTL {off:+} s)").into()
                    }
                }
                _ => text.into(),
            },
            _ => text.into(),
        };
    }
    Ok(())
}

/// cluster-info with its embedded CA checked and its JWS replaced.
fn normalise_cluster_info(config_map: &mut Value, ca_pem: &str) -> Result<()> {
    let Some(data) = config_map["data"].as_object_mut() else {
        return Ok(());
    };
    for (key, value) in data.iter_mut() {
        let text = value.as_str().unwrap_or_default().to_string();
        if key.starts_with("jws-kubeconfig-") {
            let parts: Vec<&str> = text.split('.').collect();
            *value = if parts.len() == 3 && parts[1].is_empty() {
                "<JWS>".into()
            } else {
                format!("<not a detached JWS: {text}>").into()
            };
        } else if key == "kubeconfig" {
            let ca_b64 = STANDARD.encode(ca_pem);
            *value = text.replace(&ca_b64, "<the node's ca.crt>").into();
        }
    }
    Ok(())
}

fn compare_objects(
    report: &mut Report,
    sides: &[Side<'_>; 2],
    version: &str,
    tokens: &[Vec<(String, &'static str)>; 2],
) -> Result<()> {
    let [a, b] = [0, 1].map(|i| -> Result<BTreeMap<String, Value>> {
        let side = &sides[i];
        let mut objects = BTreeMap::new();
        let mut groups: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for (resource, namespace, name, _) in kubeadm_objects(version) {
            groups
                .entry(*namespace)
                .or_default()
                .push(format!("{resource}/{name}"));
        }
        for (id, _) in &tokens[i] {
            groups
                .entry(Some("kube-system"))
                .or_default()
                .push(format!("secret/bootstrap-token-{id}"));
        }
        groups
            .entry(None)
            .or_default()
            .push(format!("node/{}", side.node.name));
        let ca = side.ca_pem()?;
        for (namespace, names) in groups {
            let mut args = vec!["get"];
            if let Some(namespace) = namespace {
                args.extend(["-n", namespace]);
            }
            args.extend(names.iter().map(String::as_str));
            let list = side.kubectl_json(&args)?;
            let found = items(&list);
            ensure!(
                found.len() == names.len(),
                "the {} cluster returned {} of {names:?}",
                side.tool,
                found.len()
            );
            for (name, mut object) in names.into_iter().zip(found) {
                let kind = object["kind"].as_str().unwrap_or_default().to_string();
                if kind == "Secret" {
                    normalise_secret(&mut object)?;
                }
                if kind == "ConfigMap" && object["metadata"]["name"] == "cluster-info" {
                    normalise_cluster_info(&mut object, &ca)?;
                }
                if kind == "Node" {
                    object = json!({
                        "metadata": {
                            "name": object["metadata"]["name"],
                            "labels": object["metadata"]["labels"],
                            "annotations": object["metadata"]["annotations"],
                        },
                        "spec": object["spec"],
                    });
                }
                strip_assigned(&mut object);
                let text = replace_tokens(&side.normalise(&object.to_string()), &tokens[i]);
                let key = format!(
                    "{}{}",
                    namespace.map(|n| format!("{n}/")).unwrap_or_default(),
                    replace_tokens(&side.normalise(&name), &tokens[i])
                );
                objects.insert(key, serde_json::from_str(&text)?);
            }
        }
        Ok(objects)
    });
    let (a, b) = (a?, b?);
    for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        let source = kubeadm_objects(version)
            .find(|(resource, namespace, name, _)| {
                key == &format!(
                    "{}{resource}/{name}",
                    namespace.map(|n| format!("{n}/")).unwrap_or_default()
                )
            })
            .map(|(.., source)| format!(" (kubeadm: phases/{source})"))
            .unwrap_or_default();
        let none = Value::String("<missing>".into());
        report.compare_values(
            &format!("API object {key}{source}"),
            a.get(key).unwrap_or(&none),
            b.get(key).unwrap_or(&none),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What the cluster says about the files

/// (kubeconfig, user, a group it must be in) — kubeadm's identities.
const IDENTITIES: [(&str, &str, &str); 5] = [
    ("admin.conf", "kubernetes-admin", "kubeadm:cluster-admins"),
    (
        "super-admin.conf",
        "kubernetes-super-admin",
        "system:masters",
    ),
    ("kubelet.conf", "system:node:<node-name>", "system:nodes"),
    (
        "controller-manager.conf",
        "system:kube-controller-manager",
        "system:authenticated",
    ),
    (
        "scheduler.conf",
        "system:kube-scheduler",
        "system:authenticated",
    ),
];

fn compare_identities(report: &mut Report, sides: &[Side<'_>; 2]) -> Result<()> {
    for (file, user, group) in IDENTITIES {
        let [a, b] = sides.each_ref().map(|side| -> Result<Value> {
            let path = format!("/etc/kubernetes/{file}");
            let out = side.run(&[
                "kubectl",
                "--kubeconfig",
                &path,
                "auth",
                "whoami",
                "-o",
                "json",
            ])?;
            let review: Value = serde_json::from_str(out.trim())
                .with_context(|| format!("kubectl auth whoami with {path}: {out}"))?;
            let mut info = review["status"]["userInfo"].clone();
            let certificate = client_certificate_der(side, &path)?;
            let expected = format!("X509SHA256={}", hex::encode(Sha256::digest(&certificate)));
            if let Some(ids) =
                info["extra"]["authentication.kubernetes.io/credential-id"].as_array_mut()
            {
                for id in ids {
                    if *id == expected {
                        *id = "X509SHA256=<SHA-256 of the kubeconfig's client certificate>".into();
                    }
                }
            }
            Ok(serde_json::from_str(&side.normalise(&info.to_string()))?)
        });
        let (a, b) = (a?, b?);
        report.compare_values(
            &format!("who {file} authenticates as (kubectl auth whoami)"),
            &a,
            &b,
        );
        let groups: Vec<&str> = b["groups"]
            .as_array()
            .map(|g| g.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if b["username"] != user || !groups.contains(&group) {
            report.fail(format!(
                "kubeforge's {file} authenticates as {} in {groups:?}; kubeadm's identity is {user} in {group}",
                b["username"]
            ));
        }
    }
    Ok(())
}

/// The DER of the client certificate a kubeconfig on the node presents (embedded, or the file
/// it names).
fn client_certificate_der(side: &Side<'_>, kubeconfig: &str) -> Result<Vec<u8>> {
    let doc: Value = serde_saphyr::from_str(&side.node.read(kubeconfig)?)?;
    let user = &doc["users"][0]["user"];
    let pem = match (
        user["client-certificate-data"].as_str(),
        user["client-certificate"].as_str(),
    ) {
        (Some(b64), _) => String::from_utf8(STANDARD.decode(b64)?)?,
        // Read inside the node: the kubelet's `…-current.pem` is an absolute symlink.
        (None, Some(file)) => side.run(&["cat", file])?,
        _ => bail!(
            "{kubeconfig} on node {} has no client certificate",
            side.node.name
        ),
    };
    pem_blocks(&pem)?
        .into_iter()
        .find(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .with_context(|| format!("no certificate in the client certificate of {kubeconfig}"))
}

fn compare_leases(report: &mut Report, sides: &[Side<'_>; 2]) -> Result<()> {
    let [a, b] = sides.each_ref().map(|side| -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = side.kubectl_json(&[
                "get",
                "leases",
                "-n",
                "kube-system",
                "kube-controller-manager",
                "kube-scheduler",
            ])?;
            let mut holders = Map::new();
            for lease in items(&list) {
                let name = lease["metadata"]["name"].as_str().unwrap_or("?").to_string();
                let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
                let shape = match holder.strip_prefix(&format!("{}_", side.node.name)) {
                    Some(uuid) if uuid.len() == 36 && uuid.matches('-').count() == 4 => {
                        "<node-name>_<uuid>".to_string()
                    }
                    _ => holder.to_string(),
                };
                holders.insert(
                    name,
                    json!({"holder": shape, "leaseDurationSeconds": lease["spec"]["leaseDurationSeconds"]}),
                );
            }
            let held = holders.len() == 2
                && holders.values().all(|h| h["holder"] == "<node-name>_<uuid>");
            if held || Instant::now() > deadline {
                return Ok(Value::Object(holders));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let (a, b) = (a?, b?);
    report.compare_values(
        "the kube-controller-manager and kube-scheduler leases",
        &a,
        &b,
    );
    let expected = json!({"holder": "<node-name>_<uuid>", "leaseDurationSeconds": 15});
    for name in ["kube-controller-manager", "kube-scheduler"] {
        if b[name] != expected {
            report.fail(format!(
                "kubeforge's cluster: lease kube-system/{name} is {}; expected it held by its node ({expected})",
                b[name]
            ));
        }
    }
    Ok(())
}

fn compare_check_expiration(report: &mut Report, sides: &[Side<'_>; 2]) -> Result<()> {
    let [a, b] = sides.each_ref().map(|side| -> Result<String> {
        let out = side.run(&[
            "kubeadm",
            "certs",
            "check-expiration",
            "--config",
            CONFIG_PATH,
        ])?;
        // Dates like "Dec 02, 2027 12:55 UTC" differ by the seconds between the two inits.
        let lines: Vec<String> = out
            .lines()
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.iter().position(|w| *w == "UTC") {
                    Some(utc) if utc >= 4 => {
                        let mut kept: Vec<&str> = words[..utc - 4].to_vec();
                        kept.push("<date>");
                        kept.extend(&words[utc + 1..]);
                        kept.join(" ")
                    }
                    _ => words.join(" "),
                }
            })
            .collect();
        Ok(side.normalise(&lines.join("\n")))
    });
    let (a, b) = (a?, b?);
    report.compare("kubeadm certs check-expiration", &a, &b);
    for name in [
        "admin.conf",
        "apiserver",
        "apiserver-etcd-client",
        "apiserver-kubelet-client",
        "controller-manager.conf",
        "etcd-healthcheck-client",
        "etcd-peer",
        "etcd-server",
        "front-proxy-client",
        "scheduler.conf",
        "super-admin.conf",
        "ca",
        "etcd-ca",
        "front-proxy-ca",
    ] {
        let listed = b.lines().any(|l| {
            l.split_whitespace().next() == Some(name)
                && l.contains("<date>")
                && !l.contains("MISSING")
        });
        if !listed {
            report.fail(format!(
                "kubeadm certs check-expiration on kubeforge's node does not list {name} with a date:\n{b}"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// etcd's client port

type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// `GET /version` over TLS to etcd at `address`:2379, trusting `etcd_ca`, presenting `client`
/// (or no certificate). Returns the HTTP response.
fn etcd_get_version(address: &str, etcd_ca: &[u8], client: Option<ClientCert>) -> Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(etcd_ca)?)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    let mut conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(address.to_string())?,
    )?;
    let mut sock = TcpStream::connect((address, 2379))?;
    sock.set_read_timeout(Some(Duration::from_secs(15)))?;
    sock.set_write_timeout(Some(Duration::from_secs(15)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(
        format!("GET /version HTTP/1.1\r\nHost: {address}:2379\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )?;
    tls.flush()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // Go closes without waiting; keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// A client certificate for `kube-apiserver-etcd-client` from a CA that is not the node's.
fn foreign_client() -> Result<ClientCert> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "etcd-ca");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver-etcd-client");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca)?;
    Ok((
        vec![cert.der().clone(), ca.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?,
    ))
}

fn check_etcd_refuses_foreign_clients(report: &mut Report, side: &Side<'_>) -> Result<()> {
    let pki = |file: &str| std::fs::read(side.node.path(format!("/etc/kubernetes/pki/{file}")));
    let address = side.node.address.to_string();
    let etcd_ca = pki("etcd/ca.crt")?;
    // The positive control: the API server's own client certificate is served.
    let chain = CertificateDer::pem_slice_iter(&pki("apiserver-etcd-client.crt")?)
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(&pki("apiserver-etcd-client.key")?)?;
    report.compared += 1;
    match etcd_get_version(&address, &etcd_ca, Some((chain, key))) {
        Ok(ok) if ok.starts_with("HTTP/1.1 200") && ok.contains("etcdserver") => {}
        Ok(other) => report.fail(format!(
            "{}'s etcd at {address}:2379 answered apiserver-etcd-client.crt with:\n{other}",
            side.tool
        )),
        Err(e) => report.fail(format!(
            "{}'s etcd at {address}:2379 refused apiserver-etcd-client.crt: {e:#}",
            side.tool
        )),
    }
    for (what, client) in [
        ("no client certificate", None),
        ("a certificate from another CA", Some(foreign_client()?)),
    ] {
        report.compared += 1;
        if let Ok(response) = etcd_get_version(&address, &etcd_ca, client) {
            report.fail(format!(
                "{}'s etcd at {address}:2379 served a client with {what}:\n{response}",
                side.tool
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kubeadm over kubeforge's files

/// The PKI and kubeconfigs of the node: path → content.
fn pki_and_kubeconfigs(node: &Node) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for (path, _) in layout(node, "/etc/kubernetes/pki")? {
        if !path.ends_with('/') {
            let node_path = PathBuf::from("/etc/kubernetes/pki").join(path);
            files.insert(node_path.clone(), std::fs::read(node.path(&node_path))?);
        }
    }
    for file in KUBECONFIGS {
        let node_path = PathBuf::from("/etc/kubernetes").join(file);
        files.insert(node_path.clone(), std::fs::read(node.path(&node_path))?);
    }
    Ok(files)
}

fn check_kubeadm_reuses_kubeforge_files(report: &mut Report, side: &Side<'_>) -> Result<()> {
    let before = pki_and_kubeconfigs(&side.node)?;
    let mut output = String::new();
    for phase in ["certs", "kubeconfig"] {
        output += &side.run(&[
            "kubeadm",
            "init",
            "phase",
            phase,
            "all",
            "--config",
            CONFIG_PATH,
        ])?;
    }
    let after = pki_and_kubeconfigs(&side.node)?;
    let mut changes = Vec::new();
    for (path, content) in &before {
        match after.get(path) {
            None => changes.push(format!("removed {}", path.display())),
            Some(c) if c != content => changes.push(format!("rewrote {}", path.display())),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        changes.push(format!("created {}", path.display()));
    }
    report.compared += 1;
    if !changes.is_empty() {
        report.fail(format!(
            "kubeadm init phase certs all / kubeconfig all did not reuse kubeforge's files on {}: {changes:?}\nkubeadm said:\n{output}",
            side.node.name
        ));
    }
    let mut expected: Vec<String> = ["ca", "front-proxy-ca", "etcd/ca"]
        .iter()
        .map(|c| format!("Using existing {c} certificate authority"))
        .collect();
    expected.extend(
        CERTIFICATES
            .iter()
            .filter(|(name, ca)| name != ca)
            .map(|(name, _)| format!("Using existing {name} certificate and key on disk")),
    );
    expected.push("Using the existing \"sa\" key".into());
    expected.extend(
        KUBECONFIGS
            .iter()
            .map(|f| format!("Using existing kubeconfig file: \"/etc/kubernetes/{f}\"")),
    );
    let missing: Vec<&String> = expected.iter().filter(|l| !output.contains(*l)).collect();
    report.compared += 1;
    if !missing.is_empty() {
        report.fail(format!(
            "kubeadm on kubeforge's node {} did not say {missing:?}; it said:\n{output}",
            side.node.name
        ));
    }
    eprintln!(
        "kubeadm reused the {} files of kubeforge's PKI and kubeconfigs",
        before.len()
    );
    Ok(())
}
