//! Profiles (PhaseConfiguration) and the lockfile, through the CLI a distribution uses:
//! swapping CoreDNS for `builtin:kube-dns`, adding a `file:` addon (examples/components'
//! metrics-server, built here) under only the grant it needs, refusing it with less, refusing a
//! changed digest, and `kubeforge component lock`. The swaps are proven against the real control
//! plane, on a real node of the test env (tests/harness) that reads the component from the
//! test's scratch directory; the refusals need no cluster, because they happen before a
//! component runs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, ensure};
use common::{Output, RealCluster, build_components};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::Api;
use sha2::{Digest, Sha256};

const KUBEADM: &str = "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: 6443
nodeRegistration:
  name: kf-profile-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
clusterName: kubeforge-profiles
networking:
  serviceSubnet: 10.96.0.0/16
";

/// The metrics-server example's grant, as its docs say; `without` drops one resource.
fn metrics_server_grant(without: Option<&str>) -> String {
    let namespaced: Vec<&str> = [
        "serviceaccounts",
        "services",
        "apps/deployments",
        "rbac.authorization.k8s.io/rolebindings",
    ]
    .into_iter()
    .filter(|r| Some(*r) != without)
    .collect();
    let cluster: Vec<&str> = [
        "rbac.authorization.k8s.io/clusterroles",
        "rbac.authorization.k8s.io/clusterrolebindings",
    ]
    .into_iter()
    .filter(|r| Some(*r) != without)
    .collect();
    format!(
        "  grant:\n    kube:\n    - verbs: [apply]\n      resources: [{}]\n      namespaces: [kube-system]\n    - verbs: [apply]\n      resources: [{}]\n",
        namespaced.join(", "),
        cluster.join(", ")
    )
}

/// The example components, built once per test process.
fn examples() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_components("examples/components/Cargo.toml"))
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("the component is readable"),
    ))
}

/// A scratch directory with a copy of the metrics-server component and a config file whose
/// profile swaps in kube-dns and adds metrics-server with `grant` (pinned to `digest`, or the
/// copy's own digest).
struct Setup {
    dir: tempfile::TempDir,
    /// The kubeadm documents of the config file.
    kubeadm: String,
}

impl Setup {
    fn new() -> Self {
        Self::with(KUBEADM.to_string())
    }

    /// The setup for the control-plane node of `cp`: its name and address, the test env's
    /// cluster settings, and a scratch directory under /tmp, which the node reads.
    fn on(cp: &RealCluster) -> Self {
        let kubeadm = KUBEADM
            .replace("kf-profile-node", &cp.node.name)
            .replace("127.0.0.1", &cp.node.address.to_string())
            .replace(
                "  serviceSubnet: 10.96.0.0/16\n",
                "  serviceSubnet: 10.96.0.0/16\n  podSubnet: 10.244.0.0/16\n",
            );
        Self::with(format!("{kubeadm}{}", kubeforge_testenv::CLUSTER_SETTINGS))
    }

    fn with(kubeadm: String) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kubeforge-profiles-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::copy(
            examples().join("kubeforge_example_metrics_server.wasm"),
            dir.path().join("metrics-server.wasm"),
        )
        .unwrap();
        Self { dir, kubeadm }
    }

    fn component(&self) -> PathBuf {
        self.dir.path().join("metrics-server.wasm")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("kubeadm.yaml")
    }

    /// Write the config with `grant` for metrics-server, pinned to `digest` (default: the file's).
    fn write_config(&self, grant: &str, digest: Option<&str>) -> PathBuf {
        let digest = digest.map_or_else(|| sha256(&self.component()), str::to_string);
        std::fs::write(
            self.config(),
            format!(
                "{}---\napiVersion: kubeforge.dev/v1alpha1\nkind: PhaseConfiguration\nphases:\n\
                 - slot: addon/coredns\n  component: builtin:kube-dns\n\
                 - slot: addon/metrics-server\n  after: addon/kube-proxy\n  component: file:metrics-server.wasm\n  sha256: {digest}\n{grant}",
                self.kubeadm
            ),
        )
        .unwrap();
        self.config()
    }

    /// PKI and kubeconfigs, so a dry run of an API phase can plan against admin.conf.
    fn write_credentials(&self) {
        for phase in ["certs", "kubeconfig"] {
            self.kubeforge(&["init", "phase", phase, "all"])
                .assert_success("writing the node's credentials");
        }
    }

    /// `kubeforge --root ROOT ARGS --config CONFIG`.
    fn kubeforge(&self, args: &[&str]) -> Output {
        common::kubeforge()
            .arg("--root")
            .arg(self.root())
            .args(args)
            .arg("--config")
            .arg(self.config())
            .output()
            .expect("kubeforge runs")
            .into()
    }

    /// `kubeforge ARGS --config CONFIG` on the control-plane node of `cp`.
    fn on_node(&self, cp: &RealCluster, args: &[&str]) -> Output {
        let config = self.config();
        cp.kubeforge(&[args, &["--config", config.to_str().unwrap()]].concat())
    }
}

/// The component with a custom section appended: a new version that behaves the same.
fn new_version(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let name = b"kubeforge-test-version";
    let payload = b"2";
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn component_list_shows_the_profile_s_slots() {
    let setup = Setup::new();
    setup.write_config(&metrics_server_grant(None), None);
    let out = setup.kubeforge(&["component", "list"]);
    out.assert_success("component list --config");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let position = |slot: &str| {
        lines
            .iter()
            .position(|l| l.split_whitespace().next() == Some(slot))
            .unwrap_or_else(|| panic!("slot {slot} is listed:\n{}", out.stdout))
    };
    assert!(lines[position("addon/coredns")].contains("builtin:kube-dns"));
    assert_eq!(
        position("addon/metrics-server"),
        position("addon/kube-proxy") + 1
    );
    assert!(
        lines[position("addon/metrics-server")]
            .contains(&format!("sha256:{}", sha256(&setup.component()))),
        "{}",
        out.stdout
    );
}

#[test]
fn a_file_component_asking_for_more_than_its_grant_is_refused_with_the_grant_to_paste() {
    let setup = Setup::new();
    setup.write_config(
        &metrics_server_grant(Some("rbac.authorization.k8s.io/clusterroles")),
        None,
    );
    setup.write_credentials();
    let out = setup.kubeforge(&["init", "phase", "addon", "metrics-server", "--dry-run"]);
    out.assert_failure("metrics-server with less than it requests");
    let text = out.all();
    assert!(
        text.contains("refusing to run phase addon/metrics-server")
            && text.contains("requests more than its grant")
            && text.contains("kube: apply rbac.authorization.k8s.io/clusterroles (cluster-scoped)"),
        "{text}"
    );
    assert!(!text.contains("Would perform"), "nothing ran:\n{text}");
    // The printed grant, pasted into the profile, is enough.
    let grant: String = text
        .lines()
        .skip_while(|l| !l.starts_with("  grant:"))
        .take_while(|l| l.starts_with("  "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!grant.is_empty(), "a grant to paste is printed:\n{text}");
    setup.write_config(&grant, None);
    let out = setup.kubeforge(&["init", "phase", "addon", "metrics-server", "--dry-run"]);
    out.assert_success("metrics-server with the printed grant");
    assert!(
        out.stdout.contains(
            "[dryrun] [addon/metrics-server] Would perform action APPLY on ClusterRole system:metrics-server"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn a_file_component_with_another_digest_or_none_is_refused() {
    let setup = Setup::new();
    setup.write_config(&metrics_server_grant(None), Some(&"0".repeat(64)));
    let out = setup.kubeforge(&["init", "phase", "addon", "metrics-server", "--dry-run"]);
    out.assert_failure("a digest mismatch");
    assert!(
        out.all().contains(&format!(
            "its digest is sha256:{}, but the profile pins sha256:{}",
            sha256(&setup.component()),
            "0".repeat(64)
        )),
        "{}",
        out.all()
    );
    std::fs::write(
        setup.config(),
        format!(
            "{KUBEADM}---\napiVersion: kubeforge.dev/v1alpha1\nkind: PhaseConfiguration\nphases:\n- slot: addon/x\n  after: addon\n  component: file:metrics-server.wasm\n"
        ),
    )
    .unwrap();
    let out = setup.kubeforge(&["init", "phase", "addon", "--dry-run"]);
    out.assert_failure("no digest");
    assert!(
        out.all().contains("PhaseConfiguration phases[0].sha256"),
        "{}",
        out.all()
    );
}

#[test]
fn the_lockfile_refuses_changed_components_and_grants_until_locked_again() {
    let setup = Setup::new();
    setup.write_config(&metrics_server_grant(None), None);
    let run = || setup.kubeforge(&["init", "phase", "addon", "--dry-run"]);
    setup.write_credentials();
    setup
        .kubeforge(&["component", "lock"])
        .assert_success("component lock");
    let lock = std::fs::read_to_string(setup.dir.path().join("kubeforge.lock.yaml")).unwrap();
    assert!(
        lock.contains("slot: addon/metrics-server")
            && lock.contains(&format!("digest: sha256:{}", sha256(&setup.component())))
            && lock.contains("component: builtin:kube-dns"),
        "{lock}"
    );
    run().assert_success("the locked profile");

    // A new version of the component, even pinned in the profile, is refused until locked.
    new_version(&setup.component());
    setup.write_config(&metrics_server_grant(None), None);
    let out = run();
    out.assert_failure("a changed component");
    assert!(
        out.all().contains(
            "refusing to run phase addon/metrics-server: its component changed since it was locked"
        ),
        "{}",
        out.all()
    );
    setup
        .kubeforge(&["component", "lock"])
        .assert_success("locking again");
    run().assert_success("the new version, locked");

    // A wider grant is refused until locked.
    setup.write_config(
        &format!(
            "{}    - verbs: [delete]\n      resources: [secrets]\n      namespaces: [kube-system]\n",
            metrics_server_grant(None)
        ),
        None,
    );
    let out = run();
    out.assert_failure("a changed grant");
    assert!(
        out.all().contains("its grant changed since it was locked"),
        "{}",
        out.all()
    );
}

/// kube-dns in the DNS slot and metrics-server in a slot of its own, against the real control
/// plane of a real node; metrics-server with less than it needs is refused before it touches
/// the cluster.
#[tokio::test(flavor = "multi_thread")]
async fn swapped_and_added_addons_run_against_the_real_control_plane() -> Result<()> {
    let cp = RealCluster::create("profiles", 0)?;
    let setup = Setup::on(&cp);
    let config = setup.write_config(
        &metrics_server_grant(Some("rbac.authorization.k8s.io/clusterrolebindings")),
        None,
    );
    cp.boot(&config)?;
    cp.checked(check_swaps(&setup, &cp)).await
}

async fn check_swaps(setup: &Setup, cp: &RealCluster) -> Result<()> {
    // Less than it needs: refused, and nothing of it reaches the cluster; the addons before
    // it in the group ran.
    let out = setup.on_node(cp, &["init", "phase", "addon"]);
    ensure!(
        !out.success,
        "metrics-server with too small a grant ran:\n{}",
        out.all()
    );
    ensure!(
        out.all()
            .contains("kube: apply rbac.authorization.k8s.io/clusterrolebindings (cluster-scoped)"),
        "{}",
        out.all()
    );
    let client = cp.client("admin.conf").await?;
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "kube-system");
    ensure!(
        accounts.get_opt("metrics-server").await?.is_none(),
        "a refused component created objects"
    );

    // With its grant, the whole group runs: kube-dns instead of CoreDNS, kube-proxy, and
    // metrics-server after it.
    setup.write_config(&metrics_server_grant(None), None);
    let out = setup.on_node(cp, &["init", "phase", "addon"]);
    out.assert_success("the addons with kube-dns and metrics-server");
    ensure!(
        out.stdout.contains("kube-dns") && out.stdout.contains("metrics-server"),
        "{}",
        out.stdout
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), "kube-system");
    let kube_dns = deployments
        .get_opt("kube-dns")
        .await?
        .context("the kube-dns Deployment exists")?;
    let containers: Vec<String> = kube_dns
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    ensure!(
        containers == ["kubedns", "dnsmasq", "sidecar"],
        "kube-dns containers: {containers:?}"
    );
    ensure!(
        deployments.get_opt("coredns").await?.is_none(),
        "CoreDNS is not installed when kube-dns fills its slot"
    );
    let service = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await?;
    ensure!(
        service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("10.96.0.10"),
        "the DNS Service is on the tenth service address: {:?}",
        service.spec
    );
    ensure!(
        service
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/name"))
            .map(String::as_str)
            == Some("KubeDNS"),
        "kube-dns Service labels: {:?}",
        service.metadata.labels
    );
    ensure!(
        Api::<DaemonSet>::namespaced(client.clone(), "kube-system")
            .get_opt("kube-proxy")
            .await?
            .is_some(),
        "kube-proxy still runs in its own slot"
    );
    ensure!(
        deployments.get_opt("metrics-server").await?.is_some()
            && Api::<ClusterRole>::all(client.clone())
                .get_opt("system:metrics-server")
                .await?
                .is_some(),
        "metrics-server's objects exist"
    );
    Ok(())
}
