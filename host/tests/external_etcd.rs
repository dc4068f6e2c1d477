//! The external-etcd strategy against the real control plane, with the external etcd on a
//! machine of its own.
//!
//! With `etcd.external` in the ClusterConfiguration, kubeadm writes no etcd static Pod, generates
//! no etcd certificates, and points the kube-apiserver at the user's endpoints and files (mounting
//! their directory). This test proves kubeforge does the same, for real, on a cluster of two
//! real nodes of the test env (tests/harness): the control plane, and a worker that is never
//! initialised and serves as the etcd machine.
//!
//! 1. an external etcd PKI of its own (a CA that is not kubeforge's etcd-ca, a server certificate
//!    for the etcd machine's address, a client certificate for the apiserver), installed as an
//!    operator would: the CA and the client pair under the control plane's `/etc/etcd/pki`,
//!    the CA and the server pair under the etcd machine's;
//! 2. kubeforge's `certs all`, `kubeconfig all`, `etcd local`, `control-plane all` on the
//!    control plane with that config: no `etcd.yaml`, no `pki/etcd/`, no
//!    `apiserver-etcd-client.*`, the external files untouched, `--etcd-servers/cafile/certfile/
//!    keyfile` = the external endpoint and files, `/etc/etcd/pki` mounted read-only; and the
//!    real kubeadm (the oracle, the same config file) says the same "External etcd mode"
//!    lines, writes the same certificate files and the same kube-apiserver command (flag for
//!    flag, nothing normalised) and etcd volume;
//! 3. the testenv's real etcd runs on the etcd machine with that PKI (client certificate
//!    authentication on; a client without a certificate is refused), kubelet-start and
//!    wait-control-plane bring the control plane up under the real kubelet, and the API server
//!    becomes ready on it;
//! 4. a ConfigMap created through the API is read back straight from the external etcd
//!    (`/registry/configmaps/<ns>/<name>` through etcd's JSON gateway, with the client
//!    certificate);
//! 5. the API server reports etcd unhealthy while the external etcd is down, and recovers with
//!    the ConfigMap intact once it is back.
//!
//! Needs root and the testenv binaries (a missing one fails the test with the build command).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Manifest, RealCluster, poll_until, snapshot, walk};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams};
use kubeforge_testenv::{Node, kubeadm_init_phases, testenv_bin_dir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The cluster: its control plane, and its worker as the etcd machine.
const CLUSTER: &str = "external-etcd";
/// The external etcd PKI, as a node path on both machines.
const EXTERNAL_PKI: &str = "/etc/etcd/pki";
const TIMEOUT: Duration = Duration::from_secs(120);

fn kubeadm_config(node: &Node, endpoint: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {}
  bindPort: 6443
nodeRegistration:
  name: {}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
clusterName: kubeforge-external-etcd
networking:
  serviceSubnet: 10.96.0.0/16
  podSubnet: 10.244.0.0/16
etcd:
  external:
    endpoints: [\"{endpoint}\"]
    caFile: {EXTERNAL_PKI}/ca.crt
    certFile: {EXTERNAL_PKI}/apiserver-etcd-client.crt
    keyFile: {EXTERNAL_PKI}/apiserver-etcd-client.key
",
        node.address, node.name
    )
}

// ---------------------------------------------------------------------------------------------
// The external etcd's PKI

/// Writes a CA (`external-etcd-ca`), the etcd machine's server certificate (its address and
/// name, loopback, localhost) and the apiserver's client certificate into `dir`.
fn write_external_pki(dir: &Path, etcd_host: &Node) -> Result<()> {
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
    let address = etcd_host.address.to_string();
    leaf(
        "server",
        "external-etcd",
        &[&address, &etcd_host.name, "127.0.0.1", "localhost"],
        true,
    )?;
    leaf(
        "apiserver-etcd-client",
        "kube-apiserver-etcd-client",
        &[],
        false,
    )
}

/// Copies `files` of the PKI in `dir` to `node`'s [`EXTERNAL_PKI`], keeping their modes.
fn install(dir: &Path, node: &Node, files: &[&str]) -> Result<()> {
    for file in files {
        let from = dir.join(file);
        let to = Path::new(EXTERNAL_PKI).join(file);
        node.write(&to, std::fs::read(&from)?)?;
        let mode = std::fs::metadata(&from)?.permissions().mode();
        std::fs::set_permissions(node.path(&to), std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The external etcd process

/// The testenv's real etcd on the etcd machine, serving `https://<its address>:2379` with the
/// external PKI and client certificate authentication. It runs inside the node under a small
/// `sh` wrapper whose stdin is a pipe from this process: closing it (stop, drop — also on
/// panic — or this process dying in any way) makes the wrapper SIGTERM etcd, so no etcd
/// outlives the test (and deleting the cluster ends everything in the node anyway). The
/// wrapper exits with etcd's status, so an etcd that dies on its own is noticed.
struct ExternalEtcd {
    node: Node,
    program: PathBuf,
    args: Vec<String>,
    /// The PKI on the host, to talk to etcd with.
    pki: PathBuf,
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
    fn new(node: &Node, bin: &Path, pki: &Path, log: &Path) -> Self {
        let file = |name: &str| format!("{EXTERNAL_PKI}/{name}");
        let client = format!("https://{}:2379", node.address);
        let args = [
            "--name=external-etcd".to_string(),
            // The etcd machine's own /var/lib.
            "--data-dir=/var/lib/etcd".into(),
            format!("--listen-client-urls={client},https://127.0.0.1:2379"),
            format!("--advertise-client-urls={client}"),
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
            node: node.clone(),
            program: bin.join("etcd"),
            args: args.to_vec(),
            pki: pki.to_path_buf(),
            log: log.to_path_buf(),
            running: None,
        }
    }

    fn start(&mut self) -> Result<()> {
        ensure!(self.running.is_none(), "the external etcd already runs");
        ensure!(
            self.program.is_file(),
            "{} is missing; `tests/testenv/build.sh` builds it",
            self.program.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let program = self.program.display().to_string();
        let argv: Vec<&str> = ["sh", "-c", WRAPPER, "external-etcd", &program]
            .into_iter()
            .chain(self.args.iter().map(String::as_str))
            .collect();
        let mut child = self
            .node
            .command(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {program} on node {}", self.node.name))?;
        let stdin = child.stdin.take().context("the wrapper's stdin")?;
        self.running = Some((child, stdin));
        Ok(())
    }

    /// Polls `/health` with the client certificate until etcd says it is healthy.
    fn wait_healthy(&mut self, timeout: Duration) -> Result<Duration> {
        let begin = Instant::now();
        loop {
            let last = match self.request(true, "GET", "/health", "") {
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

    /// One request to the external etcd from the host, trusting the external CA, with the
    /// apiserver's client certificate when `client_cert`.
    fn request(
        &self,
        client_cert: bool,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String)> {
        let client = client_cert.then(|| {
            (
                self.pki.join("apiserver-etcd-client.crt"),
                self.pki.join("apiserver-etcd-client.key"),
            )
        });
        https_request(
            IpAddr::V4(self.node.address),
            2379,
            &self.pki.join("ca.crt"),
            client.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            method,
            path,
            body,
        )
    }

    /// The value of `key` in the external etcd (`POST /v3/kv/range` on the JSON gateway), if
    /// any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let body = serde_json::json!({ "key": B64.encode(key) }).to_string();
        let (status, response) = self.request(true, "POST", "/v3/kv/range", &body)?;
        ensure!(status == 200, "etcd range {key}: {status}: {response}");
        let response: serde_json::Value = serde_json::from_str(&response)
            .with_context(|| format!("etcd range {key}: {response}"))?;
        let Some(kv) = response["kvs"].as_array().and_then(|kvs| kvs.first()) else {
            return Ok(None);
        };
        let got = B64.decode(kv["key"].as_str().unwrap_or_default())?;
        ensure!(got == key.as_bytes(), "etcd range {key} answered {kv}");
        Ok(Some(B64.decode(kv["value"].as_str().unwrap_or_default())?))
    }
}

impl Drop for ExternalEtcd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the external etcd: {e:#}");
        }
    }
}

/// One HTTP/1.0 request over TLS to `address:port` (HTTP/1.0: Go answers without chunked
/// encoding and closes), trusting the CA in `ca` and presenting the client certificate and key
/// `client` when given. Returns the status and the body.
fn https_request(
    address: IpAddr,
    port: u16,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca)?)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    let mut conn = rustls::ClientConnection::new(Arc::new(config), ServerName::from(address))?;
    let mut sock = TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(15)))?;
    sock.set_write_timeout(Some(Duration::from_secs(15)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {address}:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
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

/// The files under ROOT/etc/kubernetes/pki, relative.
fn pki_files(root: &Path) -> Vec<String> {
    let pki = root.join("etc/kubernetes/pki");
    let mut files: Vec<String> = walk(&pki)
        .into_iter()
        .map(|p| p.strip_prefix(&pki).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

/// What kubeforge wrote for the external etcd on the control plane, checked on the files, and
/// against the real kubeadm's for the same config file.
fn check_node(
    cp: &RealCluster,
    bin: &Path,
    config: &Path,
    endpoint: &str,
    outputs: &str,
) -> Result<()> {
    let root = cp.root();
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
    let ours_pki = pki_files(&root);
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
        ("etcd-servers", endpoint.to_string()),
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

    // The oracle: the real kubeadm with the same config file, into a root of its own (the
    // control plane's address is not loopback, so kubeadm takes it as it is).
    let theirs = cp.dir.path().join("kubeadm");
    let said = kubeadm_init_phases(
        bin,
        &theirs,
        &std::fs::read_to_string(config)?,
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
    // The container commands, flag for flag: the same config, nothing normalised.
    same_command(
        "the same config file",
        &apiserver.command(),
        &kubeadm_apiserver.command(),
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

/// `GET /readyz?verbose` on the control plane's API server (anonymous, like the kubelet's
/// probe), trusting the cluster CA: the status and the body.
fn readyz(cp: &RealCluster) -> Result<(u16, String)> {
    https_request(
        IpAddr::V4(cp.node.address),
        6443,
        &cp.node.path("/etc/kubernetes/pki/ca.crt"),
        None,
        "GET",
        "/readyz?verbose",
        "",
    )
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

#[tokio::test(flavor = "multi_thread")]
async fn external_etcd_backs_the_control_plane() -> Result<()> {
    let begin = Instant::now();
    let bin = testenv_bin_dir()?;
    let cp = RealCluster::create(CLUSTER, 1)?;
    let etcd_host = cp.cluster.node(&format!("{CLUSTER}-worker"))?;
    let endpoint = format!("https://{}:2379", etcd_host.address);
    eprintln!("cluster {CLUSTER} up after {:?}", begin.elapsed());

    // The external PKI, installed on both machines as an operator would.
    let pki = cp.dir.path().join("external-pki");
    write_external_pki(&pki, &etcd_host)?;
    install(
        &pki,
        &cp.node,
        &[
            "ca.crt",
            "apiserver-etcd-client.crt",
            "apiserver-etcd-client.key",
        ],
    )?;
    install(&pki, &etcd_host, &["ca.crt", "server.crt", "server.key"])?;
    let external = cp.node.path(EXTERNAL_PKI);
    let external_before = snapshot(&external);

    // 1. kubeforge writes the control plane's files.
    let config = cp.write_config("kubeadm.yaml", &kubeadm_config(&cp.node, &endpoint))?;
    let outputs: String = cp
        .node_phases(&config)?
        .iter()
        .map(common::Output::all)
        .collect();
    check_node(&cp, &bin, &config, &endpoint, &outputs)?;
    ensure!(
        snapshot(&external) == external_before,
        "kubeforge changed the external etcd's files under {EXTERNAL_PKI}"
    );
    eprintln!(
        "kubeforge wrote the node; kubeadm agrees ({:?})",
        begin.elapsed()
    );

    // 2. The external etcd on its own machine.
    let mut etcd = ExternalEtcd::new(
        &etcd_host,
        &bin,
        &pki,
        &cp.dir.path().join("external-etcd.log"),
    );
    etcd.start()?;
    let took = etcd.wait_healthy(TIMEOUT)?;
    eprintln!("external etcd healthy on {} after {took:?}", etcd_host.name);
    match etcd.request(false, "GET", "/health", "") {
        Ok(answer) => {
            bail!("the external etcd answered a client without a certificate: {answer:?}")
        }
        Err(e) => eprintln!("the external etcd refuses a client without a certificate: {e:#}"),
    }

    // 3. The control plane on it, under the real kubelet.
    let result = cp
        .checked(cluster_checks(&cp, &mut etcd, &config, &endpoint))
        .await
        .map_err(|e| e.context(etcd.log_tail(25)));
    let stopping = Instant::now();
    etcd.stop()?;
    eprintln!(
        "etcd stopped in {:?}; whole test {:?}",
        stopping.elapsed(),
        begin.elapsed()
    );
    result
}

async fn cluster_checks(
    cp: &RealCluster,
    etcd: &mut ExternalEtcd,
    config: &Path,
    endpoint: &str,
) -> Result<()> {
    let started = Instant::now();
    cp.kubelet_phases(config)?;
    eprintln!(
        "kube-apiserver ready on the external etcd after {:?}",
        started.elapsed()
    );
    let (status, body) = readyz(cp)?;
    ensure!(
        status == 200 && body.contains("[+]etcd ok"),
        "/readyz?verbose: {status} {body}"
    );
    let client = cp.client("super-admin.conf").await?;

    // The kubelet runs the three control-plane static Pods and no etcd; the API server's is
    // the external etcd's client, with the files mounted from /etc/etcd/pki.
    let pods = Api::<Pod>::namespaced(client.clone(), "kube-system");
    let node = cp.node.name.clone();
    let running = poll_until("the mirror Pods of the control plane", TIMEOUT, || async {
        let list = pods
            .list(&ListParams::default().labels("tier=control-plane"))
            .await?;
        let mut running: Vec<(String, Pod)> = list
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect();
        running.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((running.len() >= 3).then_some(running))
    })
    .await?;
    let names: Vec<&str> = running.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .map(|c| format!("{c}-{node}"))
    .collect();
    ensure!(
        names == want,
        "the kubelet runs {names:?}, not kubeadm's three control-plane Pods"
    );
    let apiserver = &running[0].1;
    let command = apiserver
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.command.clone())
        .unwrap_or_default();
    for want in [
        format!("--etcd-servers={endpoint}"),
        format!("--etcd-cafile={EXTERNAL_PKI}/ca.crt"),
        format!("--etcd-certfile={EXTERNAL_PKI}/apiserver-etcd-client.crt"),
        format!("--etcd-keyfile={EXTERNAL_PKI}/apiserver-etcd-client.key"),
    ] {
        ensure!(
            command.contains(&want),
            "the kube-apiserver runs without {want}: {command:?}"
        );
    }

    // 4. A ConfigMap through the API lands in the external etcd.
    let nonce = format!(
        "external-etcd-{}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
    );
    let name = "external-etcd-proof";
    let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"nonce": nonce},
    }))?;
    config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .context("creating the ConfigMap")?;
    let key = format!("/registry/configmaps/default/{name}");
    let value = etcd
        .get(&key)?
        .with_context(|| format!("{key} is not in the external etcd"))?;
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
        etcd.get("/registry/namespaces/kube-system")?.is_some(),
        "the external etcd has no /registry/namespaces/kube-system"
    );
    eprintln!("{key} read from the external etcd with its client certificate");

    // 5. The API server depends on it: not ready while etcd is down, back with the data after.
    etcd.stop()?;
    let (_, took) = eventually(
        "/readyz to report etcd failing while the external etcd is stopped",
        TIMEOUT,
        || {
            Ok(match readyz(cp) {
                Ok((status, body)) if status != 200 && body.contains("[-]etcd") => Ok(()),
                Ok((status, body)) => Err(format!("{status} {body}")),
                Err(e) => Err(format!("{e:#}")),
            })
        },
    )?;
    eprintln!("kube-apiserver reports etcd failing {took:?} after the external etcd stopped");
    etcd.start()?;
    etcd.wait_healthy(TIMEOUT)?;
    let (_, took) = eventually(
        "/readyz to recover once the external etcd is back",
        TIMEOUT,
        || {
            Ok(match readyz(cp) {
                Ok((200, _)) => Ok(()),
                Ok((status, body)) => Err(format!("{status} {body}")),
                Err(e) => Err(format!("{e:#}")),
            })
        },
    )?;
    let back = config_maps
        .get(name)
        .await
        .context("reading the ConfigMap after the external etcd restarted")?;
    let data = back.data.unwrap_or_default();
    ensure!(
        data.get("nonce") == Some(&nonce),
        "the ConfigMap after the restart: {data:?}"
    );
    eprintln!("kube-apiserver ready again {took:?} after the external etcd restarted; data intact");
    Ok(())
}
