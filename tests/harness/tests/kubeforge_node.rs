//! kubeforge's node under the real control plane, with the real kubeadm as oracle.
//!
//! * `node_*`: kubeforge's `certs all`, `kubeconfig all`, `etcd local` and
//!   `control-plane all` write a node (advertise 127.0.0.1) into a temp root;
//!   the kubelet stand-in runs it with the real etcd / kube-apiserver /
//!   kube-controller-manager / kube-scheduler; then, through kube-rs with each
//!   kubeconfig, SelfSubjectReviews show who each kubeconfig is, KCM and the
//!   scheduler are healthy and hold their leases, and etcd refuses clients
//!   without a certificate from our etcd CA. RSA-2048 and ECDSA-P256.
//! * `kubeadm_oracle_*`: the real kubeadm, with the same config, reuses our
//!   PKI and kubeconfigs unchanged, reads them with `certs check-expiration`,
//!   and writes static pods whose commands equal ours flag for flag.
//!
//! Needs the testenv binaries (tests/testenv/build.sh, run automatically;
//! a missing toolchain fails the test with the build command) and root
//! (`kubeadm --rootfs` chroots).
//!
//! The kubeforge binary of this checkout comes from `common::kubeforge_bin`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{NODE_PHASES, client, config, kubeforge_phases};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kubeforge_testenv::{
    ControlPlaneLock, Options, RestartPolicy, StandIn, busy_control_plane_ports,
    kubeadm_init_phases, testenv_bin_dir,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// kubeadm never keeps a loopback advertise address (inside `--rootfs` it
/// fails: `unable to select an IP from lo network interface`). The oracle
/// therefore runs kubeforge *and* kubeadm with this TEST-NET-3 address.
const PLACEHOLDER: &str = "203.0.113.77";

/// What the oracle comparison normalises, and nothing else.
const NORMALISED: &[&str] = &[
    "same-config comparison (both with advertise 203.0.113.77): nothing",
    "loopback comparison (ours with advertise 127.0.0.1, the node the e2e test boots): \
     203.0.113.77 -> 127.0.0.1 in kubeadm's arguments (kubeadm refuses a loopback \
     advertise address inside --rootfs)",
];

const TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// The node under the stand-in

#[test]
fn node_rsa_2048_runs_under_the_stand_in() -> Result<()> {
    node_runs_under_the_stand_in("RSA-2048")
}

#[test]
fn node_ecdsa_p256_runs_under_the_stand_in() -> Result<()> {
    node_runs_under_the_stand_in("ECDSA-P256")
}

fn node_runs_under_the_stand_in(algorithm: &str) -> Result<()> {
    let bin = testenv_bin_dir()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let took = kubeforge_phases(&root, &config("127.0.0.1", algorithm), &NODE_PHASES)?;
    eprintln!("[{algorithm}] kubeforge wrote the node in {took:?}");
    let ca_key = std::fs::read_to_string(root.join("etc/kubernetes/pki/ca.key"))?;
    let want = if algorithm == "RSA-2048" {
        "RSA PRIVATE KEY"
    } else {
        "EC PRIVATE KEY"
    };
    ensure!(
        ca_key.contains(want),
        "ca.key is not {want}:\n{}",
        ca_key.lines().next().unwrap_or("")
    );

    let waited = Instant::now();
    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(900))?;
    eprintln!(
        "[{algorithm}] control-plane lock after {:?}",
        waited.elapsed()
    );
    let busy = busy_control_plane_ports();
    ensure!(
        busy.is_empty(),
        "control-plane ports {busy:?} are in use by something that does not hold the lock"
    );
    let options = Options {
        restart: RestartPolicy::Never,
        ..Options::default()
    };
    let stand_in = StandIn::start_with(&root, &bin, options)?;
    let begin = Instant::now();
    stand_in.wait_ready("etcd", TIMEOUT)?;
    stand_in.wait_ready("kube-apiserver", TIMEOUT)?;
    eprintln!(
        "[{algorithm}] kube-apiserver ready after {:?}",
        begin.elapsed()
    );
    let result = checks(&stand_in, algorithm);
    let result = result.map_err(|e| {
        let tails: String = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "etcd",
        ]
        .iter()
        .map(|c| format!("\n--- last lines of {c} ---\n{}", stand_in.log_tail(c, 25)))
        .collect();
        e.context(format!("[{algorithm}] component logs:{tails}"))
    });
    let stopped = Instant::now();
    stand_in.stop()?;
    eprintln!(
        "[{algorithm}] total {:?} (stop {:?})",
        begin.elapsed(),
        stopped.elapsed()
    );
    result
}

fn checks(stand_in: &StandIn, algorithm: &str) -> Result<()> {
    let k8s = stand_in.root().join("etc/kubernetes");
    let readyz = stand_in.kubectl(&["get", "--raw", "/readyz"])?;
    ensure!(readyz == "ok", "/readyz with admin.conf: {readyz}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Who each kubeconfig is.
        for (file, user, group) in [
            ("admin.conf", "kubernetes-admin", "kubeadm:cluster-admins"),
            (
                "super-admin.conf",
                "kubernetes-super-admin",
                "system:masters",
            ),
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
        ] {
            let client = client(&k8s.join(file)).await?;
            let review = Api::<SelfSubjectReview>::all(client)
                .create(&PostParams::default(), &SelfSubjectReview::default())
                .await
                .with_context(|| format!("SelfSubjectReview with {file}"))?;
            let info = review
                .status
                .and_then(|s| s.user_info)
                .with_context(|| format!("SelfSubjectReview with {file} has no userInfo"))?;
            let groups = info.groups.unwrap_or_default();
            eprintln!("[{algorithm}] {file}: {:?} in {groups:?}", info.username);
            ensure!(
                info.username.as_deref() == Some(user) && groups.iter().any(|g| g == group),
                "{file}: expected {user} in {group}, got {:?} in {groups:?}",
                info.username
            );
        }
        anyhow::Ok(())
    })?;

    let took = stand_in.wait_all_ready(&["kube-controller-manager", "kube-scheduler"], TIMEOUT)?;
    eprintln!("[{algorithm}] kube-controller-manager and kube-scheduler healthy ({took:?} more)");
    for c in ["kube-controller-manager", "kube-scheduler"] {
        ensure!(stand_in.probe(c)?, "{c} /healthz probe failed");
    }

    runtime.block_on(async {
        let leases: Api<Lease> =
            Api::namespaced(client(&k8s.join("super-admin.conf")).await?, "kube-system");
        for name in ["kube-controller-manager", "kube-scheduler"] {
            let begin = Instant::now();
            let holder = loop {
                let lease = leases.get_opt(name).await?;
                let holder = lease
                    .as_ref()
                    .and_then(|l| l.spec.as_ref())
                    .and_then(|s| s.holder_identity.clone())
                    .filter(|h| !h.is_empty());
                if let Some(h) = holder {
                    break h;
                }
                ensure!(
                    begin.elapsed() < TIMEOUT,
                    "lease kube-system/{name} has no holder after {TIMEOUT:?}: {lease:?}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            eprintln!(
                "[{algorithm}] lease kube-system/{name} held by {holder} (waited {:?})",
                begin.elapsed()
            );
        }
        anyhow::Ok(())
    })?;

    etcd_checks(&k8s.join("pki"), algorithm)
}

// ---------------------------------------------------------------------------
// etcd's client port

type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// `GET /version` over TLS to etcd at 127.0.0.1:2379, trusting our etcd CA,
/// presenting `client` (or no certificate). Returns the HTTP response.
fn etcd_get_version(etcd_ca: &Path, client: Option<ClientCert>) -> Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(etcd_ca)?)?;
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
        ServerName::try_from("127.0.0.1")?.to_owned(),
    )?;
    let mut sock = TcpStream::connect(("127.0.0.1", 2379))?;
    sock.set_read_timeout(Some(Duration::from_secs(15)))?;
    sock.set_write_timeout(Some(Duration::from_secs(15)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1:2379\r\nConnection: close\r\n\r\n")?;
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

fn pem_client(cert: &Path, key: &Path) -> Result<ClientCert> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    Ok((chain, key))
}

/// A client certificate for `kube-apiserver-etcd-client` from a CA that is
/// not ours.
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

fn etcd_checks(pki: &Path, algorithm: &str) -> Result<()> {
    let etcd_ca = pki.join("etcd/ca.crt");
    // Positive control: our apiserver-etcd-client certificate is accepted.
    let ok = etcd_get_version(
        &etcd_ca,
        Some(pem_client(
            &pki.join("apiserver-etcd-client.crt"),
            &pki.join("apiserver-etcd-client.key"),
        )?),
    )
    .context("etcd with apiserver-etcd-client.crt")?;
    ensure!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("etcdserver"),
        "etcd /version with our client certificate:\n{ok}"
    );
    for (what, client) in [
        ("no client certificate", None),
        ("a certificate from another CA", Some(foreign_client()?)),
    ] {
        match etcd_get_version(&etcd_ca, client) {
            Ok(response) => {
                bail!("etcd accepted a client with {what}; it answered:\n{response}")
            }
            Err(e) => eprintln!("[{algorithm}] etcd refuses a client with {what}: {e:#}"),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The real kubeadm as oracle

#[test]
fn kubeadm_oracle_rsa_2048() -> Result<()> {
    kubeadm_oracle("RSA-2048")
}

#[test]
fn kubeadm_oracle_ecdsa_p256() -> Result<()> {
    kubeadm_oracle("ECDSA-P256")
}

/// Every file under `dir`, relative path → content.
fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir)?.to_path_buf(), std::fs::read(&path)?);
            }
        }
    }
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for (rel, content) in snapshot(from)? {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::write(&dest, content)?;
        let mode = std::fs::metadata(from.join(dest.strip_prefix(to)?))?.permissions();
        std::fs::set_permissions(&dest, mode)?;
    }
    Ok(())
}

fn kubeadm_oracle(algorithm: &str) -> Result<()> {
    let bin = testenv_bin_dir()?;
    let dir = tempfile::tempdir()?;
    let oracle_config = config(PLACEHOLDER, algorithm);
    let begin = Instant::now();

    // Our node, with the config kubeadm accepts inside --rootfs.
    let ours = dir.path().join("ours");
    kubeforge_phases(&ours, &oracle_config, &NODE_PHASES)?;

    // 1. kubeadm certs all + kubeconfig all over a copy of our files.
    let reused = dir.path().join("kubeadm-over-ours");
    copy_tree(&ours.join("etc/kubernetes"), &reused.join("etc/kubernetes"))?;
    let before = snapshot(&reused.join("etc/kubernetes"))?;
    let output = kubeadm_init_phases(
        &bin,
        &reused,
        &oracle_config,
        &["certs all", "kubeconfig all"],
    )?;
    let after = snapshot(&reused.join("etc/kubernetes"))?;
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
    ensure!(
        changes.is_empty(),
        "[{algorithm}] kubeadm did not reuse our files: {changes:#?}\nkubeadm said:\n{output}"
    );
    let mut expected: Vec<String> = ["ca", "front-proxy-ca", "etcd/ca"]
        .iter()
        .map(|c| format!("Using existing {c} certificate authority"))
        .collect();
    expected.extend(
        [
            "apiserver",
            "apiserver-kubelet-client",
            "front-proxy-client",
            "etcd/server",
            "etcd/peer",
            "etcd/healthcheck-client",
            "apiserver-etcd-client",
        ]
        .iter()
        .map(|c| format!("Using existing {c} certificate and key on disk")),
    );
    expected.push("Using the existing \"sa\" key".into());
    expected.extend(
        [
            "admin.conf",
            "super-admin.conf",
            "kubelet.conf",
            "controller-manager.conf",
            "scheduler.conf",
        ]
        .iter()
        .map(|f| format!("Using existing kubeconfig file: \"/etc/kubernetes/{f}\"")),
    );
    let missing: Vec<_> = expected.iter().filter(|l| !output.contains(*l)).collect();
    ensure!(
        missing.is_empty(),
        "[{algorithm}] kubeadm did not say it reused: {missing:#?}\nkubeadm said:\n{output}"
    );
    eprintln!("[{algorithm}] kubeadm reused all {} files", before.len());

    // 2. kubeadm certs check-expiration reads our PKI.
    let out = Command::new(bin.join("kubeadm"))
        .args(["certs", "check-expiration", "--config", "/kubeadm.yaml"])
        .arg("--rootfs")
        .arg(&reused)
        .stdin(Stdio::null())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "[{algorithm}] kubeadm certs check-expiration failed ({}):\n{text}",
        out.status
    );
    let listed = |name: &str| {
        text.lines().any(|l| {
            l.split_whitespace().next() == Some(name) && !l.contains("MISSING") && l.contains("UTC")
        })
    };
    let unlisted: Vec<_> = [
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
    ]
    .into_iter()
    .filter(|n| !listed(n))
    .collect();
    ensure!(
        unlisted.is_empty() && !text.contains("MISSING"),
        "[{algorithm}] kubeadm certs check-expiration does not list {unlisted:?}:\n{text}"
    );

    // 3. kubeadm etcd local + control-plane all into a second root.
    let theirs = dir.path().join("kubeadm");
    kubeadm_init_phases(
        &bin,
        &theirs,
        &oracle_config,
        &["etcd local", "control-plane all"],
    )?;
    let mut diffs = compare_commands(&ours, &theirs, |a| a.to_string())?;

    // 4. The loopback node the e2e test boots, against kubeadm's manifests
    //    with the placeholder rewritten (see NORMALISED).
    let loopback = dir.path().join("ours-loopback");
    kubeforge_phases(
        &loopback,
        &config("127.0.0.1", algorithm),
        &["etcd local", "control-plane all"],
    )?;
    diffs.extend(
        compare_commands(&loopback, &theirs, |a| a.replace(PLACEHOLDER, "127.0.0.1"))?
            .into_iter()
            .map(|d| format!("(advertise 127.0.0.1) {d}")),
    );
    ensure!(
        diffs.is_empty(),
        "[{algorithm}] container commands differ from kubeadm's (normalised: {NORMALISED:#?}):\n{}",
        diffs.join("\n")
    );
    eprintln!(
        "[{algorithm}] kubeadm oracle agrees (normalised: {NORMALISED:?}) in {:?}",
        begin.elapsed()
    );
    Ok(())
}

/// The containers' `command` + `args` of a static pod manifest.
fn commands(manifest: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let pod: serde_json::Value =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let containers = pod["spec"]["containers"]
        .as_array()
        .with_context(|| format!("{} has no containers", manifest.display()))?;
    Ok(containers
        .iter()
        .map(|c| {
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| s.as_str().unwrap_or("?").to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut cmd = strings(&c["command"]);
            cmd.extend(strings(&c["args"]));
            (c["name"].as_str().unwrap_or("?").to_string(), cmd)
        })
        .collect())
}

/// Compares each of the four manifests' commands; returns readable diffs
/// (both sides in full, then what is only on one side).
fn compare_commands(
    ours: &Path,
    theirs: &Path,
    normalise: impl Fn(&str) -> String,
) -> Result<Vec<String>> {
    let mut diffs = Vec::new();
    for name in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let rel = format!("etc/kubernetes/manifests/{name}.yaml");
        let a = commands(&ours.join(&rel))?;
        let b: Vec<(String, Vec<String>)> = commands(&theirs.join(&rel))?
            .into_iter()
            .map(|(n, c)| (n, c.iter().map(|s| normalise(s)).collect()))
            .collect();
        if a == b {
            continue;
        }
        let show = |cs: &[(String, Vec<String>)]| -> String {
            cs.iter()
                .map(|(n, c)| format!("  container {n}:\n    {}", c.join("\n    ")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let flat = |cs: &[(String, Vec<String>)]| -> Vec<String> {
            cs.iter().flat_map(|(_, c)| c.clone()).collect()
        };
        let (fa, fb) = (flat(&a), flat(&b));
        let only_ours: Vec<_> = fa.iter().filter(|x| !fb.contains(x)).collect();
        let only_theirs: Vec<_> = fb.iter().filter(|x| !fa.contains(x)).collect();
        diffs.push(format!(
            "{name}.yaml differs\n only in kubeforge's: {only_ours:?}\n only in kubeadm's:   {only_theirs:?}{}\n kubeforge:\n{}\n kubeadm:\n{}",
            if only_ours.is_empty() && only_theirs.is_empty() {
                "\n (same flags, different order or container names)"
            } else {
                ""
            },
            show(&a),
            show(&b)
        ));
    }
    Ok(diffs)
}
