//! The external-etcd strategy against the real control plane.
//!
//! With `etcd.external` in the ClusterConfiguration, kubeadm writes no etcd static Pod, generates
//! no etcd certificates, and points the kube-apiserver at the user's endpoints and files (mounting
//! their directory). This test proves kubeforge does the same, for real:
//!
//! 1. an external etcd PKI of its own (a CA that is not kubeforge's etcd-ca, a server certificate
//!    for 127.0.0.1/localhost, a client certificate for the apiserver) under
//!    `ROOT/etc/etcd/pki`;
//! 2. kubeforge's `certs all`, `kubeconfig all`, `etcd local`, `control-plane all` with that config:
//!    no `etcd.yaml`, no `pki/etcd/`, no `apiserver-etcd-client.*`, the external files untouched,
//!    `--etcd-servers/cafile/certfile/keyfile` = the external endpoint and files, `/etc/etcd/pki`
//!    mounted read-only; and the real kubeadm (the oracle, same config, see [`PLACEHOLDER`])
//!    says the same "External etcd mode" lines, writes the same certificate files and the same
//!    kube-apiserver command (flag for flag) and etcd volume;
//! 3. the testenv's real etcd runs as the external cluster with that PKI (client certificate
//!    authentication on; a client without a certificate is refused), the kubelet stand-in runs
//!    the control plane, and the API server becomes ready on it;
//! 4. a ConfigMap created through the API is read back straight from the external etcd
//!    (`/registry/configmaps/<ns>/<name>` through etcd's JSON gateway, with the client
//!    certificate);
//! 5. the API server reports etcd unhealthy while the external etcd is down, and recovers with
//!    the ConfigMap intact once it is back.
//!
//! Needs the testenv binaries (a missing toolchain fails the test with the build command) and root
//! (`kubeadm --rootfs` chroots). Holds `ControlPlaneLock` throughout: 6443, 2379 … are fixed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Manifest, NODE_PHASES, phase, snapshot, walk};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubeforge_testenv::manifest::HttpProbe;
use kubeforge_testenv::{
    ControlPlaneLock, Options, RestartPolicy, StandIn, busy_control_plane_ports,
    kubeadm_init_phases, probe, testenv_bin_dir,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const NODE_NAME: &str = "kf-external-etcd";
/// The external etcd's client URL, as the config lists it.
const ETCD_ENDPOINT: &str = "https://127.0.0.1:2379";
/// The external etcd PKI, as a node path.
const EXTERNAL_PKI: &str = "/etc/etcd/pki";
/// kubeadm never keeps a loopback advertise address (inside `--rootfs` it fails), so the oracle
/// gets the same config with this TEST-NET-3 address; in kubeadm's manifest it is rewritten to
/// 127.0.0.1 before comparing — the only normalisation (as in the harness's kubeforge_node test).
const PLACEHOLDER: &str = "203.0.113.77";
const TIMEOUT: Duration = Duration::from_secs(120);

fn kubeadm_config(advertise: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {advertise}
  bindPort: 6443
nodeRegistration:
  name: {NODE_NAME}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.35.4
clusterName: kubeforge-external-etcd
networking:
  serviceSubnet: 10.96.0.0/16
etcd:
  external:
    endpoints: [\"{ETCD_ENDPOINT}\"]
    caFile: {EXTERNAL_PKI}/ca.crt
    certFile: {EXTERNAL_PKI}/apiserver-etcd-client.crt
    keyFile: {EXTERNAL_PKI}/apiserver-etcd-client.key
"
    )
}

// ---------------------------------------------------------------------------------------------
// The external etcd's PKI

/// Writes a CA (`external-etcd-ca`), etcd's server certificate (127.0.0.1, localhost) and the
/// apiserver's client certificate into `dir`.
fn write_external_pki(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "external-etcd-ca");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;

    let leaf = |name: &str, cn: &str, sans: &[&str], server: bool| -> Result<()> {
        let key = rcgen::KeyPair::generate()?;
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if server {
            params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        }
        let cert = params.signed_by(&key, &ca)?;
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem())?;
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&key_path, key.serialize_pem())?;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    };
    leaf("server", "external-etcd", &["127.0.0.1", "localhost"], true)?;
    leaf(
        "apiserver-etcd-client",
        "kube-apiserver-etcd-client",
        &[],
        false,
    )
}

// ---------------------------------------------------------------------------------------------
// The external etcd process

/// The testenv's real etcd, serving [`ETCD_ENDPOINT`] with the external PKI and client
/// certificate authentication. It runs under a small `sh` wrapper whose stdin is a pipe from this
/// process: closing it (stop, drop — also on panic — or this process dying in any way) makes the
/// wrapper SIGTERM etcd, so no etcd outlives the test. The wrapper exits with etcd's status, so an
/// etcd that dies on its own is noticed.
struct ExternalEtcd {
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    running: Option<(Child, ChildStdin)>,
}

const WRAPPER: &str = r#"exec 3<&0
"$@" </dev/null &
etcd=$!
( read -r _ <&3; kill -TERM "$etcd" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$etcd"
code=$?
kill "$watcher" 2>/dev/null
exit "$code""#;

impl ExternalEtcd {
    fn new(bin: &Path, pki: &Path, data_dir: &Path, log: &Path) -> Self {
        let file = |name: &str| pki.join(name).display().to_string();
        let args = [
            "--name=external-etcd".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={ETCD_ENDPOINT}"),
            format!("--advertise-client-urls={ETCD_ENDPOINT}"),
            "--listen-peer-urls=http://127.0.0.1:2380".into(),
            "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
            "--initial-cluster=external-etcd=http://127.0.0.1:2380".into(),
            "--listen-metrics-urls=http://127.0.0.1:2381".into(),
            "--client-cert-auth=true".into(),
            format!("--trusted-ca-file={}", file("ca.crt")),
            format!("--cert-file={}", file("server.crt")),
            format!("--key-file={}", file("server.key")),
        ];
        ExternalEtcd {
            program: bin.join("etcd"),
            args: args.to_vec(),
            log: log.to_path_buf(),
            running: None,
        }
    }

    fn start(&mut self) -> Result<()> {
        ensure!(self.running.is_none(), "the external etcd already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut child = Command::new("sh")
            .args(["-c", WRAPPER, "external-etcd"])
            .arg(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        let stdin = child.stdin.take().context("the wrapper's stdin")?;
        self.running = Some((child, stdin));
        Ok(())
    }

    /// Polls `/health` with the client certificate until etcd says it is healthy.
    fn wait_healthy(&mut self, pki: &Path, timeout: Duration) -> Result<Duration> {
        let begin = Instant::now();
        loop {
            let last = match etcd_request(pki, true, "GET", "/health", "") {
                Ok((200, body)) if body.contains("\"health\":\"true\"") => {
                    return Ok(begin.elapsed());
                }
                Ok((status, body)) => format!("{status}: {body}"),
                Err(e) => format!("{e:#}"),
            };
            if let Some((child, _)) = self.running.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.running = None;
                bail!(
                    "the external etcd exited ({status}):\n{}",
                    self.log_tail(30)
                );
            }
            ensure!(
                begin.elapsed() < timeout,
                "the external etcd is not healthy after {timeout:?}: {last}\n{}",
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Closes the wrapper's stdin (it SIGTERMs etcd) and waits for both to exit.
    fn stop(&mut self) -> Result<()> {
        let Some((mut child, stdin)) = self.running.take() else {
            return Ok(());
        };
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the external etcd did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

impl Drop for ExternalEtcd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the external etcd: {e:#}");
        }
    }
}

/// One HTTP/1.0 request to the external etcd (HTTP/1.0: Go answers without chunked encoding and
/// closes), trusting the external CA and presenting the apiserver's client certificate when
/// `client_cert`. Returns the status and the body.
fn etcd_request(
    pki: &Path,
    client_cert: bool,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.join("ca.crt"))?)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = if client_cert {
        let chain = CertificateDer::pem_file_iter(pki.join("apiserver-etcd-client.crt"))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(pki.join("apiserver-etcd-client.key"))?;
        builder.with_client_auth_cert(chain, key)?
    } else {
        builder.with_no_client_auth()
    };
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1")?)?;
    let mut sock = TcpStream::connect(("127.0.0.1", 2379))?;
    sock.set_read_timeout(Some(Duration::from_secs(15)))?;
    sock.set_write_timeout(Some(Duration::from_secs(15)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:2379\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())?;
    tls.flush()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // Go closes without close_notify; keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP header in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// The value of `key` in the external etcd (`POST /v3/kv/range` on the JSON gateway), if any.
fn etcd_get(pki: &Path, key: &str) -> Result<Option<Vec<u8>>> {
    let body = serde_json::json!({ "key": B64.encode(key) }).to_string();
    let (status, response) = etcd_request(pki, true, "POST", "/v3/kv/range", &body)?;
    ensure!(status == 200, "etcd range {key}: {status}: {response}");
    let response: serde_json::Value =
        serde_json::from_str(&response).with_context(|| format!("etcd range {key}: {response}"))?;
    let Some(kv) = response["kvs"].as_array().and_then(|kvs| kvs.first()) else {
        return Ok(None);
    };
    let got = B64.decode(kv["key"].as_str().unwrap_or_default())?;
    ensure!(got == key.as_bytes(), "etcd range {key} answered {kv}");
    Ok(Some(B64.decode(kv["value"].as_str().unwrap_or_default())?))
}

// ---------------------------------------------------------------------------------------------
// The kube-apiserver manifest

/// (name, hostPath, type) and (name, mountPath, readOnly) of the volumes that are not one of the
/// defaults every kube-apiserver has: for an external etcd, its certificate directories.
type EtcdVolumes = (Vec<(String, String, String)>, Vec<(String, String, bool)>);

fn etcd_volumes(manifest: &Manifest) -> EtcdVolumes {
    let etcd = |name: &str| name.starts_with("etcd");
    (
        manifest
            .volumes()
            .into_iter()
            .filter(|(n, _, _)| etcd(n))
            .collect(),
        manifest
            .mounts()
            .into_iter()
            .filter(|(n, _, _)| etcd(n))
            .collect(),
    )
}

/// The files the node phases wrote under ROOT/etc/kubernetes/pki, relative.
fn pki_files(root: &Path) -> Vec<String> {
    let pki = root.join("etc/kubernetes/pki");
    let mut files: Vec<String> = walk(&pki)
        .into_iter()
        .map(|p| p.strip_prefix(&pki).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

/// What kubeforge wrote for the external etcd, checked on the files, and against the real
/// kubeadm's for the same config.
fn check_node(root: &Path, bin: &Path, outputs: &str, scratch: &Path) -> Result<()> {
    let k8s = root.join("etc/kubernetes");
    let manifests = k8s.join("manifests");
    ensure!(
        !manifests.join("etcd.yaml").exists(),
        "kubeforge wrote an etcd static Pod for an external etcd"
    );
    let mut written: Vec<String> = std::fs::read_dir(&manifests)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    written.sort();
    ensure!(
        written
            == [
                "kube-apiserver.yaml",
                "kube-controller-manager.yaml",
                "kube-scheduler.yaml"
            ],
        "manifests: {written:?}"
    );
    let ours_pki = pki_files(root);
    let etcd_files: Vec<&String> = ours_pki
        .iter()
        .filter(|f| f.starts_with("etcd") || f.starts_with("apiserver-etcd-client"))
        .collect();
    ensure!(
        etcd_files.is_empty(),
        "kubeforge generated etcd certificates for an external etcd: {etcd_files:?}"
    );

    let apiserver = Manifest::load(&manifests, "kube-apiserver");
    let flags = apiserver.flags();
    let etcd_flags: Vec<(String, String)> = flags
        .iter()
        .filter(|(name, _)| name.starts_with("etcd"))
        .cloned()
        .collect();
    let expected: Vec<(String, String)> = [
        ("etcd-cafile", format!("{EXTERNAL_PKI}/ca.crt")),
        (
            "etcd-certfile",
            format!("{EXTERNAL_PKI}/apiserver-etcd-client.crt"),
        ),
        (
            "etcd-keyfile",
            format!("{EXTERNAL_PKI}/apiserver-etcd-client.key"),
        ),
        ("etcd-servers", ETCD_ENDPOINT.to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    ensure!(
        etcd_flags == expected,
        "kube-apiserver etcd flags: {etcd_flags:#?}\nexpected {expected:#?}"
    );
    let volumes = etcd_volumes(&apiserver);
    let want: EtcdVolumes = (
        vec![(
            "etcd-certs-0".into(),
            EXTERNAL_PKI.into(),
            "DirectoryOrCreate".into(),
        )],
        vec![("etcd-certs-0".into(), EXTERNAL_PKI.into(), true)],
    );
    ensure!(
        volumes == want,
        "kube-apiserver etcd volumes and mounts: {volumes:#?}\nexpected {want:#?}"
    );

    // The oracle: the real kubeadm with the same config (advertise PLACEHOLDER).
    let theirs = scratch.join("kubeadm");
    let oracle_config = kubeadm_config(PLACEHOLDER);
    let said = kubeadm_init_phases(
        bin,
        &theirs,
        &oracle_config,
        // kubeadm logs the etcd phase's "External etcd mode" line at -v=1 only; kubeforge
        // prints it by default.
        &["certs all", "etcd local -v=1", "control-plane apiserver"],
    )?;
    ensure!(
        !theirs.join("etc/kubernetes/manifests/etcd.yaml").exists(),
        "kubeadm wrote etcd.yaml?\n{said}"
    );
    // What both say they skip: each etcd certificate, and the etcd manifest (without klog's
    // prefix on kubeadm's line).
    let skipped = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("External etcd mode"))
            .filter_map(|l| {
                l.find("[certs]")
                    .or_else(|| l.find("[etcd]"))
                    .map(|i| &l[i..])
            })
            .map(|l| l.trim().to_string())
            .collect();
        lines.sort();
        lines
    };
    let (ours_said, theirs_said) = (skipped(outputs), skipped(&said));
    ensure!(
        !theirs_said.is_empty() && ours_said == theirs_said,
        "external etcd messages: kubeforge {ours_said:#?}\nkubeadm {theirs_said:#?}"
    );
    let theirs_pki = pki_files(&theirs);
    ensure!(
        ours_pki == theirs_pki,
        "certificates: kubeforge wrote {ours_pki:?}, kubeadm {theirs_pki:?}"
    );
    let kubeadm_apiserver =
        Manifest::load(&theirs.join("etc/kubernetes/manifests"), "kube-apiserver");
    let their_volumes = etcd_volumes(&kubeadm_apiserver);
    ensure!(
        volumes == their_volumes,
        "kube-apiserver etcd volumes: kubeforge {volumes:#?}\nkubeadm {their_volumes:#?}"
    );

    // The container commands, flag for flag: the same config (nothing normalised), and the
    // loopback node this test boots (PLACEHOLDER -> 127.0.0.1 in kubeadm's).
    let same_config = scratch.join("kubeforge-placeholder");
    let same_config_file = scratch.join("kubeforge-placeholder.yaml");
    std::fs::write(&same_config_file, &oracle_config)?;
    phase(
        &same_config,
        "control-plane",
        "apiserver",
        &same_config_file,
        &[],
    )
    .assert_success(&format!(
        "kubeforge init phase control-plane apiserver (advertise {PLACEHOLDER})"
    ));
    let ours_same = Manifest::load(
        &same_config.join("etc/kubernetes/manifests"),
        "kube-apiserver",
    );
    let their_command = kubeadm_apiserver.command();
    same_command(
        "advertise 203.0.113.77 for both, nothing normalised",
        &ours_same.command(),
        &their_command,
    )?;
    ensure!(
        etcd_volumes(&ours_same) == their_volumes,
        "kube-apiserver etcd volumes (advertise {PLACEHOLDER}): kubeforge {:#?}\nkubeadm {their_volumes:#?}",
        etcd_volumes(&ours_same)
    );
    let normalised: Vec<String> = their_command
        .iter()
        .map(|a| a.replace(PLACEHOLDER, "127.0.0.1"))
        .collect();
    same_command(
        "kubeforge's loopback node; 203.0.113.77 -> 127.0.0.1 in kubeadm's",
        &apiserver.command(),
        &normalised,
    )
}

/// Fails with both commands and what only one of them has unless they are equal.
fn same_command(what: &str, ours: &[String], theirs: &[String]) -> Result<()> {
    if ours == theirs {
        return Ok(());
    }
    let only_ours: Vec<_> = ours.iter().filter(|a| !theirs.contains(a)).collect();
    let only_theirs: Vec<_> = theirs.iter().filter(|a| !ours.contains(a)).collect();
    bail!(
        "kube-apiserver command differs from kubeadm's ({what})\n\
         only in kubeforge's: {only_ours:?}\nonly in kubeadm's: {only_theirs:?}\n\
         kubeforge: {ours:#?}\nkubeadm: {theirs:#?}"
    )
}

// ---------------------------------------------------------------------------------------------
// The test

async fn super_admin(root: &Path) -> Result<kube::Client> {
    let path = root.join("etc/kubernetes/super-admin.conf");
    let kubeconfig =
        Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// `GET /readyz?verbose` on the API server (anonymous, like the kubelet's probe).
fn readyz() -> Result<probe::ProbeResponse> {
    let readyz = HttpProbe {
        https: true,
        host: "127.0.0.1".into(),
        port: 6443,
        path: "/readyz?verbose".into(),
    };
    probe::http_get(&readyz, Duration::from_secs(5))
}

/// Polls `check` every 250 ms until it returns `Some`, failing after `timeout` with `what` and
/// the last state it saw.
fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<std::result::Result<T, String>>,
) -> Result<(T, Duration)> {
    let begin = Instant::now();
    loop {
        let last = match check()? {
            Ok(value) => return Ok((value, begin.elapsed())),
            Err(last) => last,
        };
        ensure!(
            begin.elapsed() < timeout,
            "{what}: not within {timeout:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn external_etcd_backs_the_control_plane() -> Result<()> {
    let begin = Instant::now();
    let bin = testenv_bin_dir()?;
    let waited = Instant::now();
    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(900))?;
    eprintln!("control-plane lock after {:?}", waited.elapsed());
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let pki = root.join(EXTERNAL_PKI.trim_start_matches('/'));
    write_external_pki(&pki)?;
    let external_before = snapshot(&pki);

    // 1. kubeforge writes the node.
    let config = dir.path().join("kubeadm.yaml");
    std::fs::write(&config, kubeadm_config("127.0.0.1"))?;
    let mut outputs = String::new();
    for (name, sub) in NODE_PHASES {
        let output = phase(&root, name, sub, &config, &[]);
        output.assert_success(&format!("kubeforge init phase {name} {sub}"));
        outputs.push_str(&output.all());
    }
    check_node(&root, &bin, &outputs, dir.path())?;
    ensure!(
        snapshot(&pki) == external_before,
        "kubeforge changed the external etcd's files under {}",
        pki.display()
    );
    eprintln!(
        "kubeforge wrote the node; kubeadm agrees ({:?})",
        begin.elapsed()
    );

    // 2. The external etcd.
    let busy = busy_control_plane_ports();
    ensure!(
        busy.is_empty(),
        "control-plane ports {busy:?} are in use by something that does not hold the lock"
    );
    let mut etcd = ExternalEtcd::new(
        &bin,
        &pki,
        &dir.path().join("external-etcd/data"),
        &dir.path().join("external-etcd.log"),
    );
    etcd.start()?;
    let took = etcd.wait_healthy(&pki, TIMEOUT)?;
    eprintln!("external etcd healthy after {took:?}");
    match etcd_request(&pki, false, "GET", "/health", "") {
        Ok(answer) => {
            bail!("the external etcd answered a client without a certificate: {answer:?}")
        }
        Err(e) => eprintln!("the external etcd refuses a client without a certificate: {e:#}"),
    }

    // 3. The control plane on it. Declared after `etcd`, so it is dropped (stopped) first.
    let options = Options {
        restart: RestartPolicy::Never,
        ..Options::default()
    };
    let stand_in = StandIn::start_with(&root, &bin, options)?;
    let result = cluster_checks(&stand_in, &mut etcd, &pki).map_err(|e| {
        let tails: String = ["kube-apiserver", "kube-controller-manager"]
            .iter()
            .map(|c| format!("\n--- last lines of {c} ---\n{}", stand_in.log_tail(c, 25)))
            .collect();
        e.context(format!("component logs:{tails}\n{}", etcd.log_tail(25)))
    });
    let stopping = Instant::now();
    stand_in.stop()?;
    etcd.stop()?;
    eprintln!(
        "stopped in {:?}; whole test {:?}",
        stopping.elapsed(),
        begin.elapsed()
    );
    result
}

fn cluster_checks(stand_in: &StandIn, etcd: &mut ExternalEtcd, pki: &Path) -> Result<()> {
    let took = stand_in.wait_ready("kube-apiserver", TIMEOUT)?;
    eprintln!("kube-apiserver ready on the external etcd after {took:?}");
    let components: Vec<String> = stand_in
        .components()
        .into_iter()
        .map(|c| c.component)
        .collect();
    ensure!(
        components
            == [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler"
            ],
        "the stand-in runs {components:?}"
    );
    // The stand-in maps a path in the arguments only through a hostPath mount: the etcd files
    // reach the API server through the /etc/etcd/pki volume.
    let status = stand_in
        .status("kube-apiserver")
        .context("the stand-in has no kube-apiserver")?;
    ensure!(
        status.unmapped_paths.is_empty(),
        "kube-apiserver arguments outside any hostPath mount: {:?}",
        status.unmapped_paths
    );
    for (flag, file) in [
        ("etcd-cafile", "ca.crt"),
        ("etcd-certfile", "apiserver-etcd-client.crt"),
        ("etcd-keyfile", "apiserver-etcd-client.key"),
    ] {
        let want = format!("--{flag}={}", pki.join(file).display());
        ensure!(
            status.args.contains(&want),
            "the kube-apiserver runs without {want}: {:?}",
            status.args
        );
    }
    let ready = readyz()?;
    ensure!(
        ready.success() && ready.body.contains("[+]etcd ok"),
        "/readyz?verbose: {} {}",
        ready.status,
        ready.body
    );

    // 4. A ConfigMap through the API lands in the external etcd.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let nonce = format!(
        "external-etcd-{}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
    );
    let name = "external-etcd-proof";
    let client = runtime.block_on(super_admin(stand_in.root()))?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"nonce": nonce},
    }))?;
    runtime
        .block_on(config_maps.create(&PostParams::default(), &config_map))
        .context("creating the ConfigMap")?;
    let key = format!("/registry/configmaps/default/{name}");
    let value =
        etcd_get(pki, &key)?.with_context(|| format!("{key} is not in the external etcd"))?;
    ensure!(
        value.starts_with(b"k8s\0"),
        "{key} is not a Kubernetes protobuf object: {:?}",
        String::from_utf8_lossy(&value)
    );
    ensure!(
        value.windows(nonce.len()).any(|w| w == nonce.as_bytes()),
        "{key} in the external etcd does not hold the ConfigMap's data {nonce:?}: {:?}",
        String::from_utf8_lossy(&value)
    );
    ensure!(
        etcd_get(pki, "/registry/namespaces/kube-system")?.is_some(),
        "the external etcd has no /registry/namespaces/kube-system"
    );
    eprintln!("{key} read from the external etcd with its client certificate");

    // 5. The API server depends on it: down while etcd is down, back with the data after.
    etcd.stop()?;
    let (_, took) = eventually(
        "/readyz to report etcd failing while the external etcd is stopped",
        TIMEOUT,
        || {
            Ok(match readyz() {
                Ok(r) if !r.success() && r.body.contains("[-]etcd") => Ok(()),
                Ok(r) => Err(format!("{} {}", r.status, r.body)),
                Err(e) => Err(format!("{e:#}")),
            })
        },
    )?;
    eprintln!("kube-apiserver reports etcd failing {took:?} after the external etcd stopped");
    etcd.start()?;
    etcd.wait_healthy(pki, TIMEOUT)?;
    let (_, took) = eventually(
        "/readyz to recover once the external etcd is back",
        TIMEOUT,
        || {
            Ok(match readyz() {
                Ok(r) if r.success() => Ok(()),
                Ok(r) => Err(format!("{} {}", r.status, r.body)),
                Err(e) => Err(format!("{e:#}")),
            })
        },
    )?;
    let back = runtime
        .block_on(config_maps.get(name))
        .context("reading the ConfigMap after the external etcd restarted")?;
    let data = back.data.unwrap_or_default();
    ensure!(
        data.get("nonce") == Some(&nonce),
        "the ConfigMap after the restart: {data:?}"
    );
    eprintln!("kube-apiserver ready again {took:?} after the external etcd restarted; data intact");
    Ok(())
}
