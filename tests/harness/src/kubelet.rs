//! The kubelet *service* as kubeadm (and kubeforge) sees it from outside:
//! its health endpoint, its client certificate store and its Node object.
//! Static pods are run by the stand-in's supervisor, independently of this
//! emulation (a stopped kubelet leaves them running, as containers outlive a
//! stopped kubelet on a real node).
//!
//! On start (and restart) it does what a kubelet process does when systemd
//! starts it with kubeadm's drop-in (`--config=/var/lib/kubelet/config.yaml
//! --kubeconfig=/etc/kubernetes/kubelet.conf $KUBELET_KUBEADM_ARGS`):
//!
//! 1. reads `ROOT/var/lib/kubelet/config.yaml` (a `KubeletConfiguration`)
//!    for `healthzBindAddress`/`healthzPort` (default 127.0.0.1:10248; port 0
//!    disables it) and `ROOT/var/lib/kubelet/kubeadm-flags.env` for
//!    `--hostname-override` and `--register-with-taints`;
//! 2. reads `ROOT/etc/kubernetes/kubelet.conf` and runs the client
//!    certificate store like the kubelet's certificate manager: a valid,
//!    unexpired `pki/kubelet-client-current.pem` is used as it is; otherwise
//!    the client certificate and key embedded in kubelet.conf seed the store:
//!    `ROOT/var/lib/kubelet/pki/kubelet-client-<YYYY-MM-DD-HH-MM-SS>.pem`
//!    (certificate then key, mode 0600) and the symlink
//!    `kubelet-client-current.pem` pointing at it;
//! 3. serves `GET /healthz` → 200 `ok`;
//! 4. registers its Node with the store's certificate (identity
//!    `system:node:<name>`, so the Node authorizer and NodeRestriction judge
//!    it), retrying until it succeeds or the emulation stops;
//! 5. then keeps a **mirror pod** of every static pod the stand-in runs, and
//!    its status, in step with the manifests, with that identity (see the
//!    [`mirror`] module docs): created, replaced when the manifest changes,
//!    deleted when it is removed; stopping the kubelet leaves them.
//!
//! When config.yaml or kubelet.conf is missing or unusable, the real kubelet
//! exits and systemd restarts it (`Restart=always`); the emulation logs why,
//! keeps /healthz down and tries again every [`RESTART_INTERVAL`].
//!
//! Deliberate differences from the real kubelet:
//! * The symlink target is **relative** (`kubelet-client-<ts>.pem`, same
//!   directory), where the kubelet writes the absolute
//!   `/var/lib/kubelet/pki/kubelet-client-<ts>.pem`. An absolute node path
//!   would dangle on the host under a `--root` (nothing exists at
//!   `/var/lib/kubelet` there), and `ROOT/var/lib/...` would dangle for a
//!   chrooted reader (`kubeadm --rootfs ROOT`). The relative link resolves to
//!   the same file for a plain reader, a `--root`-relative reader and a
//!   chroot alike.
//! * The timestamp in the file name is UTC (the kubelet uses local time).
//! * It does not rotate the seeded certificate through a CSR (the kubelet
//!   does so right after seeding), does not post NodeStatus or heartbeats
//!   (the Node has no conditions and no addresses), and does not do TLS
//!   bootstrap with bootstrap-kubelet.conf.
//! * Registration retries back off from 100 ms to 2 s (the kubelet: 7 s).
//!
//! Everything it does goes to tracing (target `kubeforge_testenv::kubelet`)
//! and to `ROOT/var/log/kubeforge-testenv/kubelet.log`, so
//! `StandIn::log("kubelet")` shows it like a component's log.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::manifest::host_path_under;

pub mod mirror;

pub use mirror::{
    CONFIG_HASH, CONFIG_MIRROR, CONFIG_SEEN, CONFIG_SOURCE, SYNC_INTERVAL, config_hash,
    mirror_pod_name,
};
pub(crate) use mirror::{ContainerRun, StaticPod, StaticPods};

/// KubeletConfiguration file, relative to the root.
pub const KUBELET_CONFIG: &str = "var/lib/kubelet/config.yaml";
/// kubeadm's flags file, relative to the root.
pub const KUBEADM_FLAGS_ENV: &str = "var/lib/kubelet/kubeadm-flags.env";
/// The kubelet's kubeconfig, relative to the root.
pub const KUBELET_KUBECONFIG: &str = "etc/kubernetes/kubelet.conf";
/// The kubelet's certificate directory (`--cert-dir`), relative to the root.
pub const KUBELET_PKI_DIR: &str = "var/lib/kubelet/pki";
/// The client certificate store's current pair, relative to the root.
pub const KUBELET_CLIENT_CURRENT: &str = "var/lib/kubelet/pki/kubelet-client-current.pem";

/// How long a "crashed" kubelet waits before the next start attempt (the
/// kubeadm packages' unit has `RestartSec=10`; shorter keeps tests quick).
pub const RESTART_INTERVAL: Duration = Duration::from_secs(2);
const REGISTER_FIRST_BACKOFF: Duration = Duration::from_millis(100);
const REGISTER_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The field manager (and so the `managedFields` manager) of its writes: the
/// apiserver derives "kubelet" from the real kubelet's user agent.
pub const FIELD_MANAGER: &str = "kubelet";

/// What the kubelet emulation is doing, see `StandIn::kubelet_status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletStatus {
    /// The service is started (it may be crash-looping: see `last_error`).
    pub active: bool,
    /// It came up: its files loaded and /healthz (if enabled) is served. False
    /// while stopped or crash-looping.
    pub running: bool,
    /// Where `/healthz` answers; `None` while stopped or crash-looping.
    pub healthz: Option<SocketAddr>,
    /// The name it registers its Node as, once its files loaded.
    pub node_name: Option<String>,
    /// The subject CN of the client certificate it uses.
    pub identity: Option<String>,
    /// The Node object exists (created by this run or found).
    pub registered: bool,
    /// Why the last start failed, or the last registration error.
    pub last_error: Option<String>,
    /// How many times it came up (its files loaded, /healthz bound).
    pub starts: u32,
    /// The mirror pods (`namespace/name`) this run keeps in step, as of its
    /// last sync; empty while stopped or before the Node is registered.
    pub mirror_pods: Vec<String>,
}

/// One line each to tracing and to the kubelet's log file.
#[derive(Clone)]
pub(crate) struct KubeletLog {
    path: PathBuf,
}

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

impl KubeletLog {
    fn write(&self, level: Level, msg: &str) {
        let tag = match level {
            Level::Info => {
                tracing::info!(target: "kubeforge_testenv::kubelet", "{msg}");
                "I"
            }
            Level::Warn => {
                tracing::warn!(target: "kubeforge_testenv::kubelet", "{msg}");
                "W"
            }
            Level::Error => {
                tracing::error!(target: "kubeforge_testenv::kubelet", "{msg}");
                "E"
            }
        };
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = writeln!(f, "{tag} {} kubelet: {msg}", rfc3339_now());
        }
    }
    fn info(&self, msg: &str) {
        self.write(Level::Info, msg)
    }
    fn warn(&self, msg: &str) {
        self.write(Level::Warn, msg)
    }
    fn error(&self, msg: &str) {
        self.write(Level::Error, msg)
    }
}

/// The kubelet service of one stand-in. Its methods run on the stand-in's
/// control runtime.
pub(crate) struct Kubelet {
    root: PathBuf,
    log: KubeletLog,
    status: Mutex<KubeletStatus>,
    run: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The static pods the stand-in runs (for the mirror pods).
    static_pods: StaticPods,
}

/// The result of a start: where /healthz answers, or why the kubelet is
/// crash-looping.
pub(crate) type StartOutcome = std::result::Result<Option<SocketAddr>, String>;

impl Kubelet {
    pub(crate) fn new(root: PathBuf, log_path: PathBuf, static_pods: StaticPods) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            root,
            log: KubeletLog { path: log_path },
            status: Mutex::new(KubeletStatus::default()),
            run: tokio::sync::Mutex::new(None),
            static_pods,
        })
    }

    fn lock(&self) -> MutexGuard<'_, KubeletStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn status(&self) -> KubeletStatus {
        self.lock().clone()
    }

    /// Starts the service unless it is active. Returns once the first start
    /// attempt is over: /healthz bound, or the reason it "crashed".
    pub(crate) async fn start(self: &Arc<Self>) -> StartOutcome {
        let mut run = self.run.lock().await;
        if run.as_ref().is_some_and(|h| !h.is_finished()) {
            let st = self.status();
            return match (st.running, st.last_error) {
                (true, _) => Ok(st.healthz),
                (false, Some(e)) => Err(e),
                (false, None) => Ok(None),
            };
        }
        {
            let mut st = self.lock();
            st.active = true;
            st.running = false;
            st.healthz = None;
            st.registered = false;
            st.last_error = None;
            st.mirror_pods.clear();
        }
        self.log.info("Starting kubelet (service start)");
        let (tx, rx) = oneshot::channel();
        let me = self.clone();
        *run = Some(tokio::spawn(async move { me.run(tx).await }));
        drop(run);
        rx.await
            .unwrap_or_else(|_| Err("the kubelet task ended before it reported".into()))
    }

    /// Stops the service; returns whether it was active. /healthz is closed
    /// when this returns.
    pub(crate) async fn stop(&self) -> bool {
        let mut run = self.run.lock().await;
        let was = match run.take() {
            Some(handle) => {
                let active = !handle.is_finished();
                handle.abort();
                let _ = handle.await;
                active
            }
            None => false,
        };
        {
            let mut st = self.lock();
            st.active = false;
            st.running = false;
            st.healthz = None;
            st.mirror_pods.clear();
        }
        if was {
            self.log
                .info("Stopped kubelet (service stop); static pods keep running");
        }
        was
    }

    async fn run(self: Arc<Self>, first: oneshot::Sender<StartOutcome>) {
        let mut first = Some(first);
        let mut last_error = String::new();
        loop {
            match self.boot().await {
                Ok((booted, listener)) => {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Ok(booted.healthz));
                    }
                    let serve = async {
                        if let Some(l) = listener {
                            serve_healthz(l).await;
                        } else {
                            std::future::pending::<()>().await;
                        }
                    };
                    let work = async {
                        if let Some(client) = self.register(&booted).await {
                            mirror::MirrorSync::new(
                                &self,
                                client,
                                booted.node_name.clone(),
                                booted.identity.clone(),
                            )
                            .run()
                            .await;
                        }
                    };
                    tokio::join!(serve, work);
                    return;
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    if msg != last_error {
                        self.log.error(&format!(
                            "kubelet exits: {msg} (the service restarts it every {}s, like systemd's Restart=always; further identical failures are not logged)",
                            RESTART_INTERVAL.as_secs()
                        ));
                        last_error = msg.clone();
                    }
                    {
                        let mut st = self.lock();
                        st.running = false;
                        st.healthz = None;
                        st.last_error = Some(msg.clone());
                    }
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Err(msg));
                    }
                    tokio::time::sleep(RESTART_INTERVAL).await;
                }
            }
        }
    }

    /// Loads the files and binds /healthz.
    async fn boot(&self) -> Result<(Loaded, Option<tokio::net::TcpListener>)> {
        let loaded = load(&self.root, &self.log)?;
        let listener = match loaded.healthz {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to listen for /healthz on {addr}"))?,
            ),
            None => None,
        };
        match loaded.healthz {
            Some(addr) => self
                .log
                .info(&format!("Serving healthz on http://{addr}/healthz")),
            None => self.log.warn(
                "healthzPort is 0: no /healthz (kubeadm's wait-control-plane will not see this kubelet)",
            ),
        }
        let mut st = self.lock();
        st.running = true;
        st.healthz = loaded.healthz;
        st.node_name = Some(loaded.node_name.clone());
        st.identity = Some(loaded.identity.clone());
        st.last_error = None;
        st.starts += 1;
        Ok((loaded, listener))
    }

    /// Registers the Node; retries until it exists. Returns the client it
    /// registered with (`None`: no client could be built).
    async fn register(&self, loaded: &Loaded) -> Option<kube::Client> {
        let name = &loaded.node_name;
        let client = match kube::Client::try_from(loaded.api.clone()) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("cannot build an API client from kubelet.conf: {e}");
                self.log.error(&msg);
                self.lock().last_error = Some(msg);
                return None;
            }
        };
        let nodes: Api<Node> = Api::all(client.clone());
        let node = initial_node(loaded);
        self.log.info(&format!(
            "Attempting to register node {name} with API server {} as {}",
            loaded.api.cluster_url, loaded.identity
        ));
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let mut delay = REGISTER_FIRST_BACKOFF;
        let mut last = String::new();
        loop {
            let outcome = match nodes.create(&pp, &node).await {
                Ok(_) => Ok(format!(
                    "Successfully registered node {name} (created as {})",
                    loaded.identity
                )),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    self.reconcile_existing(&nodes, &node).await
                }
                Err(e) => Err(describe_api_error(&e)),
            };
            match outcome {
                Ok(msg) => {
                    self.log.info(&msg);
                    let mut st = self.lock();
                    st.registered = true;
                    st.last_error = None;
                    return Some(client);
                }
                Err(msg) => {
                    if msg != last {
                        self.log.warn(&format!(
                            "Unable to register node {name} with API server: {msg} (retrying; identical errors are not logged again)"
                        ));
                        last = msg.clone();
                    }
                    self.lock().last_error = Some(format!("registering node {name}: {msg}"));
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(REGISTER_MAX_BACKOFF);
        }
    }

    /// Like the kubelet on AlreadyExists: the existing Node is this node;
    /// its default labels are brought up to date.
    async fn reconcile_existing(
        &self,
        nodes: &Api<Node>,
        node: &Node,
    ) -> std::result::Result<String, String> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let existing = nodes
            .get(&name)
            .await
            .map_err(|e| format!("node exists but cannot be read: {}", describe_api_error(&e)))?;
        let have = existing.metadata.labels.unwrap_or_default();
        let missing: BTreeMap<String, String> = node
            .metadata
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, v)| have.get(k) != Some(v))
            .collect();
        if missing.is_empty() {
            return Ok(format!("Node {name} was already registered"));
        }
        let patch = serde_json::json!({ "metadata": { "labels": missing } });
        nodes
            .patch(
                &name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| {
                format!(
                    "node exists; updating its default labels failed: {}",
                    describe_api_error(&e)
                )
            })?;
        Ok(format!(
            "Node {name} was already registered; updated default labels {:?}",
            missing.keys().collect::<Vec<_>>()
        ))
    }
}

fn describe_api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => {
            // The chain carries "connection refused" and TLS errors.
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
    }
}

async fn serve_healthz(listener: tokio::net::TcpListener) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    conns.spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), answer_healthz(stream)).await;
                    });
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn answer_healthz(mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/healthz" | "/healthz/ping" | "/healthz/syncloop") => ("200 OK", "ok"),
        ("GET" | "HEAD", _) => ("404 Not Found", "404 page not found\n"),
        _ => ("405 Method Not Allowed", "method not allowed\n"),
    };
    let body = if method == "HEAD" { "" } else { body };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

// ---------------------------------------------------------------------------
// loading the kubelet's files

/// Everything a start needs, read from the kubelet's files.
struct Loaded {
    healthz: Option<SocketAddr>,
    node_name: String,
    identity: String,
    taints: Vec<Taint>,
    api: kube::Config,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KubeletConfiguration {
    api_version: String,
    kind: String,
    healthz_bind_address: Option<String>,
    healthz_port: Option<i64>,
    static_pod_path: Option<String>,
}

fn load(root: &Path, log: &KubeletLog) -> Result<Loaded> {
    // 1. config.yaml
    let config_path = root.join(KUBELET_CONFIG);
    let text = fs::read_to_string(&config_path).with_context(|| {
        format!(
            "failed to load kubelet config file {} (written by kubeadm's kubelet-start phase)",
            config_path.display()
        )
    })?;
    let config: KubeletConfiguration = serde_saphyr::from_str(&text).with_context(|| {
        format!(
            "failed to parse kubelet config file {}",
            config_path.display()
        )
    })?;
    if config.kind != "KubeletConfiguration"
        || config.api_version != "kubelet.config.k8s.io/v1beta1"
    {
        bail!(
            "{}: expected apiVersion kubelet.config.k8s.io/v1beta1, kind KubeletConfiguration; got {:?} {:?}",
            config_path.display(),
            config.api_version,
            config.kind
        );
    }
    let address = config
        .healthz_bind_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("127.0.0.1");
    let ip: IpAddr = address.parse().with_context(|| {
        format!(
            "{}: healthzBindAddress {address:?} is not an IP address",
            config_path.display()
        )
    })?;
    let port = config.healthz_port.unwrap_or(10248);
    let port = u16::try_from(port).with_context(|| {
        format!(
            "{}: healthzPort {port} is out of range",
            config_path.display()
        )
    })?;
    let healthz = (port != 0).then_some(SocketAddr::new(ip, port));
    log.info(&format!(
        "Loaded {}: healthz {}",
        config_path.display(),
        healthz.map_or("disabled".into(), |a| a.to_string())
    ));
    if let Some(p) = config.static_pod_path.as_deref()
        && p.trim_end_matches('/') != "/etc/kubernetes/manifests"
    {
        log.warn(&format!(
            "staticPodPath is {p}; the stand-in runs ROOT/etc/kubernetes/manifests regardless"
        ));
    }

    // 2. kubeadm-flags.env
    let flags = read_flags(root, log)?;
    let hostname_override = flags
        .get("hostname-override")
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty());
    let taints = match flags.get("register-with-taints") {
        Some(spec) => parse_taints(spec)
            .with_context(|| format!("--register-with-taints={spec} in kubeadm-flags.env"))?,
        None => Vec::new(),
    };

    // 3. kubelet.conf and the client certificate store
    let kubeconfig_path = root.join(KUBELET_KUBECONFIG);
    if !kubeconfig_path.exists() {
        let bootstrap = root.join("etc/kubernetes/bootstrap-kubelet.conf");
        bail!(
            "unable to load kubeconfig {}: no such file{}",
            kubeconfig_path.display(),
            if bootstrap.exists() {
                format!(
                    " ({} exists, but TLS bootstrap is not emulated)",
                    bootstrap.display()
                )
            } else {
                String::new()
            }
        );
    }
    let kubeconfig: KubeconfigFile = fs::read_to_string(&kubeconfig_path)
        .map_err(anyhow::Error::from)
        .and_then(|text| serde_saphyr::from_str(&text).map_err(anyhow::Error::from))
        .with_context(|| format!("unable to load kubeconfig {}", kubeconfig_path.display()))?;
    let (cluster, auth) = current_cluster_and_user(&kubeconfig)
        .with_context(|| format!("kubeconfig {}", kubeconfig_path.display()))?;
    let kubeconfig_dir = kubeconfig_path.parent().unwrap_or(root);
    let pair = client_certificate(root, kubeconfig_dir, &auth, log)
        .with_context(|| format!("client certificate of {}", kubeconfig_path.display()))?;

    // 4. who it is
    let cn_name = pair.cn.strip_prefix("system:node:").map(str::to_string);
    let node_name = match (&hostname_override, &cn_name) {
        (Some(h), _) => h.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => host_name(),
    };
    match &cn_name {
        Some(n) if *n == node_name => {}
        _ => log.warn(&format!(
            "node name {node_name} does not match the client certificate's CN {:?}: the Node authorizer and NodeRestriction will refuse to let it register",
            pair.cn
        )),
    }

    // 5. the API client: kubelet.conf's cluster, the store's identity
    let server = cluster.server.clone();
    if server.is_empty() {
        bail!("{}: the cluster has no server", kubeconfig_path.display());
    }
    let mut api = kube::Config::new(server.parse().with_context(|| {
        format!(
            "{}: server {server:?} is not a URL",
            kubeconfig_path.display()
        )
    })?);
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(BASE64.decode(data.trim()).with_context(|| {
            format!(
                "{}: certificate-authority-data is not base64",
                kubeconfig_path.display()
            )
        })?),
        (None, Some(file)) => {
            let path = node_file(root, kubeconfig_dir, file);
            Some(fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
        }
        (None, None) => None,
    };
    if let Some(pem) = ca_pem {
        let ders = CertificateDer::pem_slice_iter(&pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .with_context(|| format!("{}: cluster CA", kubeconfig_path.display()))?;
        api.root_cert = Some(ders);
    }
    api.accept_invalid_certs = cluster.insecure_skip_tls_verify;
    api.tls_server_name = cluster.tls_server_name.clone();
    api.auth_info.client_certificate_data = Some(BASE64.encode(&pair.cert_pem));
    api.auth_info.client_key_data = Some(BASE64.encode(&pair.key_pem).into());
    api.connect_timeout = Some(Duration::from_secs(5));
    api.read_timeout = Some(Duration::from_secs(30));
    api.write_timeout = Some(Duration::from_secs(30));

    Ok(Loaded {
        healthz,
        node_name,
        identity: pair.cn,
        taints,
        api,
    })
}

/// `--name=value` (or `--name value`) pairs of `KUBELET_KUBEADM_ARGS` in
/// kubeadm-flags.env; empty when the file does not exist.
fn read_flags(root: &Path, log: &KubeletLog) -> Result<BTreeMap<String, String>> {
    let path = root.join(KUBEADM_FLAGS_ENV);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let flags = parse_kubeadm_flags(&text);
    log.info(&format!("Loaded {}: {flags:?}", path.display()));
    Ok(flags)
}

pub(crate) fn parse_kubeadm_flags(text: &str) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    for line in text.lines() {
        let Some(value) = line.trim().strip_prefix("KUBELET_KUBEADM_ARGS=") else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let mut words = value.split_whitespace().peekable();
        while let Some(word) = words.next() {
            let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
                continue;
            };
            match flag.split_once('=') {
                Some((k, v)) => {
                    flags.insert(k.to_string(), v.to_string());
                }
                None => {
                    let v = match words.peek() {
                        Some(next) if !next.starts_with('-') => words.next().unwrap_or_default(),
                        _ => "true",
                    };
                    flags.insert(flag.to_string(), v.to_string());
                }
            }
        }
    }
    flags
}

/// `key=value:Effect,key:Effect`.
pub(crate) fn parse_taints(spec: &str) -> Result<Vec<Taint>> {
    spec.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let (kv, effect) = t
                .trim()
                .rsplit_once(':')
                .with_context(|| format!("taint {t:?} has no :Effect"))?;
            if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
                bail!("taint {t:?}: unknown effect {effect:?}");
            }
            let (key, value) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (kv, None),
            };
            Ok(Taint {
                key: key.to_string(),
                value,
                effect: effect.to_string(),
                time_added: None,
            })
        })
        .collect()
}

/// The parts of a kubeconfig the kubelet uses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct KubeconfigFile {
    current_context: String,
    clusters: Vec<Named<ClusterEntry>>,
    contexts: Vec<Named<ContextEntry>>,
    users: Vec<Named<UserEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    value: T,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct ClusterEntry {
    server: String,
    certificate_authority_data: Option<String>,
    certificate_authority: Option<String>,
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct UserEntry {
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
}

fn current_cluster_and_user(kc: &KubeconfigFile) -> Result<(ClusterEntry, UserEntry)> {
    let name = &kc.current_context;
    if name.is_empty() {
        bail!("no current-context");
    }
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == *name)
        .map(|c| c.value.clone())
        .with_context(|| format!("current-context {name:?} is not defined"))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .map(|c| c.value.clone())
        .with_context(|| format!("cluster {:?} is not defined", context.cluster))?;
    let user = kc
        .users
        .iter()
        .find(|u| u.name == context.user)
        .map(|u| u.value.clone())
        .with_context(|| format!("user {:?} is not defined", context.user))?;
    Ok((cluster, user))
}

/// A path in a kubeconfig, as the file on this host: node paths map under
/// the root (as hostPaths do), relative ones are relative to the kubeconfig.
fn node_file(root: &Path, kubeconfig_dir: &Path, path: &str) -> PathBuf {
    if Path::new(path).is_absolute() {
        host_path_under(root, path)
    } else {
        kubeconfig_dir.join(path)
    }
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

// ---------------------------------------------------------------------------
// the client certificate store

/// A client certificate and its key, checked to belong together.
pub(crate) struct Pair {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) cn: String,
    pub(crate) not_after: i64,
}

/// The PEM blocks of `text` whose label satisfies `want`, joined.
fn pem_blocks(text: &str, want: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            inside = want(label);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("-----END ") {
            inside = false;
        }
    }
    out
}

/// Parses a certificate (chain) PEM and a key PEM; checks that the key is
/// the certificate's.
pub(crate) fn parse_pair(cert_text: &str, key_text: &str) -> Result<Pair> {
    let cert_pem = pem_blocks(cert_text, |l| l == "CERTIFICATE");
    let key_pem = pem_blocks(key_text, |l| l.ends_with("PRIVATE KEY"));
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .context("parsing the certificate PEM")?;
    if chain.is_empty() {
        bail!("no CERTIFICATE block");
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("parsing the private key PEM")?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .context("loading the private key")?;
    let (_, cert) = x509_parser::parse_x509_certificate(chain[0].as_ref())
        .map_err(|e| anyhow::anyhow!("parsing the certificate: {e}"))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let not_after = cert.validity().not_after.timestamp();
    match rustls::sign::CertifiedKey::new(chain, signing).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => bail!("the private key does not belong to the certificate ({e})"),
    }
    Ok(Pair {
        cert_pem,
        key_pem,
        cn,
        not_after,
    })
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The store's current pair, a seeded one, or kubelet.conf's files.
fn client_certificate(
    root: &Path,
    kubeconfig_dir: &Path,
    auth: &UserEntry,
    log: &KubeletLog,
) -> Result<Pair> {
    let pki = root.join(KUBELET_PKI_DIR);
    let current = root.join(KUBELET_CLIENT_CURRENT);
    match fs::read_to_string(&current) {
        Ok(text) => match parse_pair(&text, &text) {
            Ok(pair) if pair.not_after > now_unix() => {
                log.info(&format!(
                    "Client certificate store: using {} (CN={})",
                    current.display(),
                    pair.cn
                ));
                return Ok(pair);
            }
            Ok(_) => log.warn(&format!(
                "{} has expired; falling back to kubelet.conf's certificate",
                current.display()
            )),
            Err(e) => log.warn(&format!(
                "{} is unusable ({e:#}); falling back to kubelet.conf's certificate",
                current.display()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", current.display())),
    }

    if let (Some(cert), Some(key)) = (&auth.client_certificate_data, &auth.client_key_data) {
        let decode = |what: &str, b64: &str| -> Result<String> {
            let bytes = BASE64
                .decode(b64.trim())
                .with_context(|| format!("{what} is not base64"))?;
            String::from_utf8(bytes).with_context(|| format!("{what} is not PEM text"))
        };
        let cert = decode("client-certificate-data", cert)?;
        let key = decode("client-key-data", key)?;
        let pair = parse_pair(&cert, &key)
            .context("client-certificate-data and client-key-data are not a usable pair")?;
        let written = store_update(&pki, &pair)?;
        log.info(&format!(
            "Client certificate store seeded from kubelet.conf: {} -> {} (CN={})",
            current.display(),
            written.display(),
            pair.cn
        ));
        return Ok(pair);
    }

    if let (Some(cert), Some(key)) = (&auth.client_certificate, &auth.client_key) {
        let (cert_path, key_path) = (
            node_file(root, kubeconfig_dir, cert),
            node_file(root, kubeconfig_dir, key),
        );
        let cert_text = fs::read_to_string(&cert_path)
            .with_context(|| format!("reading client-certificate {}", cert_path.display()))?;
        let key_text = fs::read_to_string(&key_path)
            .with_context(|| format!("reading client-key {}", key_path.display()))?;
        let pair = parse_pair(&cert_text, &key_text)
            .with_context(|| format!("{} and {}", cert_path.display(), key_path.display()))?;
        log.info(&format!(
            "Client certificate from kubelet.conf's files {} and {} (CN={})",
            cert_path.display(),
            key_path.display(),
            pair.cn
        ));
        return Ok(pair);
    }
    bail!(
        "the user has no client certificate (client-certificate-data/client-key-data or client-certificate/client-key); other credentials are not emulated"
    )
}

/// Writes `kubelet-client-<ts>.pem` (certificate, then key; 0600) and points
/// `kubelet-client-current.pem` at it, atomically (a new symlink renamed over
/// the old one), as client-go's certificate file store does. Returns the
/// written file.
pub(crate) fn store_update(pki: &Path, pair: &Pair) -> Result<PathBuf> {
    fs::create_dir_all(pki).with_context(|| format!("creating {}", pki.display()))?;
    let current = pki.join("kubelet-client-current.pem");
    if let Ok(meta) = fs::symlink_metadata(&current)
        && !meta.file_type().is_symlink()
    {
        bail!(
            "{} exists and is not a symlink; the certificate store refuses to replace it",
            current.display()
        );
    }
    let name = format!("kubelet-client-{}.pem", store_timestamp());
    let path = pki.join(&name);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    file.write_all(pair.cert_pem.as_bytes())
        .and_then(|()| file.write_all(pair.key_pem.as_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    let updated = pki.join("kubelet-client-updated.pem");
    if fs::symlink_metadata(&updated).is_ok() {
        fs::remove_file(&updated).with_context(|| format!("removing {}", updated.display()))?;
    }
    std::os::unix::fs::symlink(&name, &updated)
        .with_context(|| format!("symlink {} -> {name}", updated.display()))?;
    fs::rename(&updated, &current)
        .with_context(|| format!("renaming {} to {}", updated.display(), current.display()))?;
    Ok(path)
}

/// `YYYY-MM-DD-HH-MM-SS` (client-go's `2006-01-02-15-04-05`), in UTC.
fn store_timestamp() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn rfc3339_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `GOARCH` of this machine, as the `kubernetes.io/arch` label spells it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The Node a kubelet registers: default labels, the controller-managed
/// attach/detach annotation, `--register-with-taints`.
fn initial_node(loaded: &Loaded) -> Node {
    let name = loaded.node_name.clone();
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", go_arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", go_arch()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!loaded.taints.is_empty()).then(|| loaded.taints.clone()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_flags() {
        let f = parse_kubeadm_flags(
            "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --hostname-override=kf-node --node-ip 10.0.0.1 --v=2\"\n",
        );
        assert_eq!(f["hostname-override"], "kf-node");
        assert_eq!(f["node-ip"], "10.0.0.1");
        assert_eq!(
            f["container-runtime-endpoint"],
            "unix:///run/containerd/containerd.sock"
        );
        assert!(parse_kubeadm_flags("OTHER=1\n").is_empty());
    }

    #[test]
    fn taints() {
        let t =
            parse_taints("node-role.kubernetes.io/control-plane:NoSchedule,a=b:NoExecute").unwrap();
        assert_eq!(t[0].key, "node-role.kubernetes.io/control-plane");
        assert_eq!(t[0].value, None);
        assert_eq!(t[1].value.as_deref(), Some("b"));
        assert_eq!(t[1].effect, "NoExecute");
        assert!(parse_taints("a=b").is_err());
        assert!(parse_taints("a:Sometimes").is_err());
    }

    fn pair(cn: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn store_seeds_a_timestamped_file_and_a_relative_current_link() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let (cert, key) = pair("system:node:n1");
        let p = parse_pair(&cert, &key).unwrap();
        assert_eq!(p.cn, "system:node:n1");
        let written = store_update(&pki, &p).unwrap();
        let current = pki.join("kubelet-client-current.pem");
        let target = fs::read_link(&current).unwrap();
        assert!(target.is_relative(), "{}", target.display());
        assert_eq!(pki.join(&target), written);
        let name = written.file_name().unwrap().to_string_lossy().into_owned();
        let ts = name
            .strip_prefix("kubelet-client-")
            .and_then(|n| n.strip_suffix(".pem"))
            .unwrap();
        assert_eq!(ts.len(), "2006-01-02-15-04-05".len(), "{name}");
        assert!(ts.chars().all(|c| c.is_ascii_digit() || c == '-'), "{name}");
        assert_eq!(
            fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = fs::read_to_string(&current).unwrap();
        let again = parse_pair(&text, &text).unwrap();
        assert_eq!(again.cert_pem, p.cert_pem);
        assert_eq!(again.key_pem, p.key_pem);
        // A second update replaces the link.
        let (cert2, key2) = pair("system:node:n1");
        store_update(&pki, &parse_pair(&cert2, &key2).unwrap()).unwrap();
        let text = fs::read_to_string(&current).unwrap();
        assert!(text.contains(cert2.trim()));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = pair("system:node:n1");
        let (_, other_key) = pair("system:node:n1");
        let e = parse_pair(&cert, &other_key).err().unwrap();
        assert!(format!("{e:#}").contains("does not belong"), "{e:#}");
    }

    #[test]
    fn store_refuses_a_regular_current_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("kubelet-client-current.pem"), "x").unwrap();
        let (cert, key) = pair("system:node:n1");
        let e = store_update(dir.path(), &parse_pair(&cert, &key).unwrap())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a symlink"), "{e:#}");
    }
}
