//! kubeforge test environment: a kubelet stand-in that runs the static pod
//! manifests under a test root with the real control-plane binaries built by
//! `tests/testenv/build.sh`.
//!
//! ```no_run
//! use std::time::Duration;
//! use kubeforge_testenv::{ControlPlaneLock, StandIn, testenv_bin_dir};
//! # fn main() -> anyhow::Result<()> {
//! let _ports = ControlPlaneLock::acquire()?; // 6443, 2379, ... are fixed
//! let root = tempfile::tempdir()?;
//! // ... write root/etc/kubernetes/{pki,*.conf,manifests/*.yaml} ...
//! let stand_in = StandIn::start(root.path(), testenv_bin_dir()?)?;
//! stand_in.wait_ready("kube-apiserver", Duration::from_secs(120))?;
//! let readyz = stand_in.kubectl(&["get", "--raw", "/readyz"])?;
//! assert_eq!(readyz, "ok");
//! stand_in.stop()?;
//! # Ok(()) }
//! ```
//!
//! Each container of each manifest in `ROOT/etc/kubernetes/manifests` runs as
//! a host process (in its own process group) with `command[0]` resolved to the
//! testenv bin dir and every absolute path in its arguments that lies under a
//! hostPath volume mount mapped to `ROOT + hostPath` (longest mountPath
//! prefix wins; a hostPath already under ROOT is used as is). Output goes to
//! `ROOT/var/log/kubeforge-testenv/<component>.log`. New manifests are started,
//! changed ones restarted and removed ones stopped (the directory is polled).
//! Exited containers are recorded and, like the kubelet's `restartPolicy:
//! Always`, restarted with a back-off unless [`RestartPolicy::Never`].
//!
//! # The kubelet service
//!
//! Besides running static pods, the stand-in plays the kubelet *service* a
//! host's init system controls (see the `kubelet` module docs for exactly
//! what it emulates): started, it reads `ROOT/var/lib/kubelet/config.yaml`,
//! serves `/healthz` (127.0.0.1:10248 by default), seeds
//! `ROOT/var/lib/kubelet/pki/kubelet-client-current.pem` from
//! `ROOT/etc/kubernetes/kubelet.conf` and registers its Node with that
//! identity. Then, with the same identity, it keeps a mirror pod of every
//! static pod the stand-in runs (`<pod>-<node>`, the kubelet's annotations,
//! the Node owner reference) and its status in step with the manifests (see
//! [`kubelet::mirror`]): what kubeadm reads the API server's advertise
//! address from. It is stopped when the stand-in starts (unless
//! [`Options::start_kubelet`]); static pods run either way, and a stopped
//! kubelet leaves its mirror pods.
//!
//! A host under test drives it like `systemctl`: it runs
//! `<service command> <stop|start|restart> kubelet` with the service command
//! `kubeforge-testenv service --root ROOT`, which talks to the stand-in over
//! `ROOT/run/kubeforge-stand-in.sock` ([`SERVICE_SOCKET`]). From a test of
//! another package (which cannot name this package's binary with
//! `CARGO_BIN_EXE_*`):
//!
//! ```no_run
//! # use kubeforge_testenv::{StandIn, testenv_bin_dir};
//! # fn main() -> anyhow::Result<()> {
//! # let root = std::path::Path::new("/tmp/x");
//! let stand_in = StandIn::start(root, testenv_bin_dir()?)?;
//! // "/…/target/debug/kubeforge-testenv service --root /tmp/…/root"
//! let service_command = stand_in.service_command_line()?;
//! let status = std::process::Command::new("kubeforge")
//!     .arg("--root").arg(stand_in.root())
//!     .args(["--service-command", &service_command, "init"])
//!     .status()?;
//! # Ok(()) }
//! ```
//!
//! [`stand_in_exe`] finds the executable: `$KUBEFORGE_TESTENV_EXE`, else
//! `cargo build -p kubeforge-testenv` of this workspace (a no-op when
//! current). In-process, [`StandIn::kubelet_restart`] and friends do the
//! same as the socket.

mod bin_dir;
mod kubeadm;
pub mod kubelet;
mod lock;
pub mod manifest;
pub mod probe;
pub mod service;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail, ensure};

pub use bin_dir::{BIN_ENV, COMPONENTS, build_script, testenv_bin_dir};
pub use kubeadm::kubeadm_init_phases;
pub use kubelet::{
    KUBEADM_FLAGS_ENV, KUBELET_CLIENT_CURRENT, KUBELET_CONFIG, KUBELET_KUBECONFIG, KUBELET_PKI_DIR,
    KubeletStatus,
};
pub use lock::{CONTROL_PLANE_PORTS, ControlPlaneLock, busy_control_plane_ports};
use manifest::{ContainerPlan, HttpProbe, Pod};
pub use service::{
    EXE_ENV, SERVICE_SOCKET, ServiceAction, ServiceReply, service_command, service_command_line,
    stand_in_exe, workspace_exe,
};

/// Manifest directory relative to the root.
pub const MANIFESTS_DIR: &str = "etc/kubernetes/manifests";
/// Log directory relative to the root.
pub const LOG_DIR: &str = "var/log/kubeforge-testenv";
/// Admin kubeconfig relative to the root.
pub const ADMIN_CONF: &str = "etc/kubernetes/admin.conf";

/// What to do when a container exits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Record the exit and leave the component down.
    Never,
    /// Restart with exponential back-off (1 s doubling up to `max_backoff`),
    /// like the kubelet does for static pods.
    Always { max_backoff: Duration },
}

/// Tunables for [`StandIn::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the manifest directory and the children are checked.
    pub poll_interval: Duration,
    /// Time between SIGTERM and SIGKILL when stopping a component.
    pub grace_period: Duration,
    pub restart: RestartPolicy,
    /// Timeout of a single readiness probe request.
    pub probe_timeout: Duration,
    /// Start the kubelet service with the stand-in (like an enabled unit on
    /// a node that boots). Default: stopped until the host starts it.
    pub start_kubelet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll_interval: Duration::from_millis(200),
            grace_period: Duration::from_secs(10),
            restart: RestartPolicy::Always {
                max_backoff: Duration::from_secs(20),
            },
            probe_timeout: Duration::from_secs(3),
            start_kubelet: false,
        }
    }
}

/// Lifecycle state of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The process is running (it may not be ready yet).
    Running,
    /// It exited and is waiting to be restarted.
    BackOff,
    /// It exited and will not be restarted ([`RestartPolicy::Never`]).
    Exited,
    /// It could not be started (bad manifest, missing binary, spawn error).
    Failed(String),
}

/// A container exit that the stand-in did not ask for.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub component: String,
    pub pid: u32,
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Terminating signal, if it was killed.
    pub signal: Option<i32>,
    pub at: SystemTime,
    pub ran_for: Duration,
}

impl std::fmt::Display for ExitEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(
                f,
                "{} (pid {}) exited with code {c}",
                self.component, self.pid
            )?,
            (None, Some(s)) => write!(
                f,
                "{} (pid {}) killed by signal {s}",
                self.component, self.pid
            )?,
            _ => write!(f, "{} (pid {}) exited", self.component, self.pid)?,
        }
        write!(f, " after {:.1}s", self.ran_for.as_secs_f64())
    }
}

/// Snapshot of one component, see [`StandIn::status`].
#[derive(Debug, Clone)]
pub struct ComponentStatus {
    pub component: String,
    pub manifest: PathBuf,
    pub phase: Phase,
    pub pid: Option<u32>,
    /// How often it was (re)started, counting the first start.
    pub starts: u32,
    pub last_exit: Option<ExitEvent>,
    /// Executable and mapped arguments.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub probe: Option<String>,
    /// Absolute paths in the arguments not covered by a hostPath mount.
    pub unmapped_paths: Vec<String>,
}

struct Comp {
    plan: ContainerPlan,
    child: Option<Child>,
    started: Option<Instant>,
    starts: u32,
    backoff: Duration,
    next_start: Option<Instant>,
    phase: Phase,
    last_exit: Option<ExitEvent>,
}

struct ManifestEntry {
    content: Vec<u8>,
    /// Content has been seen unchanged in two consecutive scans and acted on.
    applied: bool,
    /// The content whose containers run (were planned): what the kubelet
    /// emulation mirrors. `None` before the first plan and after an error.
    running: Option<Vec<u8>>,
    components: Vec<String>,
    error: Option<String>,
}

#[derive(Default)]
struct State {
    stopping: bool,
    components: BTreeMap<String, Comp>,
    manifests: BTreeMap<PathBuf, ManifestEntry>,
    exits: Vec<ExitEvent>,
}

struct Shared {
    root: PathBuf,
    bin_dir: PathBuf,
    options: Options,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn manifest_dir(&self) -> PathBuf {
        self.root.join(MANIFESTS_DIR)
    }
    fn log_path(&self, component: &str) -> PathBuf {
        self.root.join(LOG_DIR).join(format!("{component}.log"))
    }
}

/// The running kubelet stand-in. Dropping it stops every component.
pub struct StandIn {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    control: Option<Control>,
}

/// The thread that serves the service socket and runs the kubelet
/// emulation (a tokio runtime of its own).
struct Control {
    kubelet: Arc<kubelet::Kubelet>,
    handle: tokio::runtime::Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    socket: PathBuf,
}

impl Control {
    fn start(
        root: &Path,
        start_kubelet: bool,
        static_pods: kubelet::StaticPods,
    ) -> Result<Control> {
        let (listener, socket) = service::bind(root)?;
        let kubelet = kubelet::Kubelet::new(
            root.to_path_buf(),
            root.join(LOG_DIR).join("kubelet.log"),
            static_pods,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the stand-in's control runtime")?;
        let handle = runtime.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let k = kubelet.clone();
        let path = socket.clone();
        let thread = std::thread::Builder::new()
            .name("kubeforge-standin-control".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if start_kubelet {
                        let reply = service::perform(&k, ServiceAction::Start).await;
                        tracing::info!("{}", reply.message);
                    }
                    service::serve(k, listener, path, rx).await
                })
            })
            .context("spawning the control thread")?;
        tracing::info!(socket = %socket.display(), "service socket ready");
        Ok(Control {
            kubelet,
            handle,
            shutdown: Some(tx),
            thread: Some(thread),
            socket,
        })
    }

    fn perform(&self, action: ServiceAction) -> Result<ServiceReply> {
        let (tx, rx) = std::sync::mpsc::channel();
        let k = self.kubelet.clone();
        self.handle.spawn(async move {
            let _ = tx.send(service::perform(&k, action).await);
        });
        rx.recv()
            .map_err(|_| anyhow!("the stand-in's control thread is gone"))
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow!("the stand-in's control thread panicked")),
            None => Ok(()),
        }
    }
}

impl StandIn {
    /// Starts watching `root/etc/kubernetes/manifests` with default
    /// [`Options`]. `bin_dir` is the testenv bin dir, see [`testenv_bin_dir`].
    pub fn start(root: impl AsRef<Path>, bin_dir: impl AsRef<Path>) -> Result<StandIn> {
        Self::start_with(root, bin_dir, Options::default())
    }

    pub fn start_with(
        root: impl AsRef<Path>,
        bin_dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<StandIn> {
        let root = root.as_ref();
        fs::create_dir_all(root).with_context(|| format!("creating root {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving root {}", root.display()))?;
        let bin_dir = bin_dir.as_ref();
        let bin_dir = bin_dir
            .canonicalize()
            .with_context(|| format!("resolving testenv bin dir {}", bin_dir.display()))?;
        for dir in [root.join(MANIFESTS_DIR), root.join(LOG_DIR)] {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let start_kubelet = options.start_kubelet;
        let shared = Arc::new(Shared {
            root,
            bin_dir,
            options,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let control = Control::start(
            &shared.root,
            start_kubelet,
            Arc::new(move || static_pods(&s)),
        )?;
        tracing::info!(
            root = %shared.root.display(),
            manifests = %shared.manifest_dir().display(),
            logs = %shared.root.join(LOG_DIR).display(),
            "kubelet stand-in started"
        );
        let s = shared.clone();
        // Children are spawned from this thread only: PR_SET_PDEATHSIG fires
        // when the spawning thread exits, and this thread outlives them.
        let thread = std::thread::Builder::new()
            .name("kubeforge-standin".into())
            .spawn(move || supervise(&s))
            .context("spawning the supervisor thread")?;
        Ok(StandIn {
            shared,
            thread: Some(thread),
            control: Some(control),
        })
    }

    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    pub fn bin_dir(&self) -> &Path {
        &self.shared.bin_dir
    }

    pub fn manifest_dir(&self) -> PathBuf {
        self.shared.manifest_dir()
    }

    /// `ROOT/etc/kubernetes/admin.conf`.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.shared.root.join(ADMIN_CONF)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.shared.root.join(LOG_DIR)
    }

    /// `ROOT/var/log/kubeforge-testenv/<component>.log`.
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.shared.log_path(component)
    }

    /// The whole log of a component (all runs), empty if there is none yet.
    pub fn log(&self, component: &str) -> String {
        fs::read(self.log_path(component))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of a component's log.
    pub fn log_tail(&self, component: &str, lines: usize) -> String {
        tail(&self.log(component), lines)
    }

    /// Status of every known component, by name.
    pub fn components(&self) -> Vec<ComponentStatus> {
        let st = self.shared.lock();
        st.components
            .iter()
            .map(|(name, c)| snapshot(name, c))
            .collect()
    }

    pub fn status(&self, component: &str) -> Option<ComponentStatus> {
        let st = self.shared.lock();
        st.components.get(component).map(|c| snapshot(component, c))
    }

    /// Every unrequested exit so far, oldest first.
    pub fn exits(&self) -> Vec<ExitEvent> {
        self.shared.lock().exits.clone()
    }

    /// Manifests that could not be run, with the reason.
    pub fn manifest_errors(&self) -> Vec<(PathBuf, String)> {
        let st = self.shared.lock();
        st.manifests
            .iter()
            .filter_map(|(p, m)| m.error.clone().map(|e| (p.clone(), e)))
            .collect()
    }

    /// Probes a component once: `Ok(true)` when it runs and its readiness
    /// probe (readiness, else startup, else liveness) succeeds. A container
    /// without an HTTP probe counts as ready once it has run for a second.
    pub fn probe(&self, component: &str) -> Result<bool> {
        let (probe, started) = {
            let st = self.shared.lock();
            let c = st
                .components
                .get(component)
                .with_context(|| format!("no manifest defines component {component:?}"))?;
            if c.phase != Phase::Running {
                return Ok(false);
            }
            (c.plan.probe.clone(), c.started)
        };
        match probe {
            Some(p) => Ok(probe::http_get(&p, self.shared.options.probe_timeout)?.success()),
            None => Ok(started.is_some_and(|s| s.elapsed() >= Duration::from_secs(1))),
        }
    }

    /// Waits until `component` (a container name, e.g. `kube-apiserver`,
    /// `etcd`) is ready; see [`probe`](Self::probe). Waits for its manifest
    /// to appear as well. Fails early when the component has exited for good,
    /// and on timeout with the last probe result and the tail of its log.
    pub fn wait_ready(&self, component: &str, timeout: Duration) -> Result<Duration> {
        let begin = Instant::now();
        let deadline = begin + timeout;
        let mut last;
        loop {
            let info = {
                let st = self.shared.lock();
                st.components
                    .get(component)
                    .map(|c| (c.phase.clone(), c.plan.probe.clone(), c.started))
            };
            match info {
                None => {
                    last = format!(
                        "no manifest in {} defines component {component:?} yet (manifest errors: {:?})",
                        self.manifest_dir().display(),
                        self.manifest_errors()
                    );
                }
                Some((Phase::Failed(e), _, _)) => {
                    bail!("{component} could not be started: {e}");
                }
                Some((Phase::Exited, _, _)) => {
                    let exit = self.status(component).and_then(|s| s.last_exit);
                    bail!(
                        "{component} is not running: {}\n--- last lines of {} ---\n{}",
                        exit.map(|e| e.to_string()).unwrap_or_default(),
                        self.log_path(component).display(),
                        self.log_tail(component, 40)
                    );
                }
                Some((Phase::BackOff, _, _)) => {
                    last = format!("{component} exited and is waiting to be restarted");
                }
                Some((Phase::Running, Some(p), _)) => {
                    match probe::http_get(&p, self.shared.options.probe_timeout) {
                        Ok(r) if r.success() => return Ok(begin.elapsed()),
                        Ok(r) => last = format!("{} returned {}: {}", p.url(), r.status, r.body),
                        Err(e) => last = format!("{:#}", e),
                    }
                }
                Some((Phase::Running, None, started)) => {
                    if started.is_some_and(|s| s.elapsed() >= Duration::from_secs(1)) {
                        return Ok(begin.elapsed());
                    }
                    last = format!("{component} has no HTTP probe; waiting 1s after start");
                }
            }
            if Instant::now() >= deadline {
                let exits: Vec<String> = self
                    .exits()
                    .iter()
                    .filter(|e| e.component == component)
                    .map(|e| e.to_string())
                    .collect();
                bail!(
                    "{component} not ready after {timeout:?}: {last}\nexits: {exits:?}\n--- last lines of {} ---\n{}",
                    self.log_path(component).display(),
                    self.log_tail(component, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits for every component defined so far (or those in `components`
    /// if not empty) to be ready, within one overall timeout.
    pub fn wait_all_ready(&self, components: &[&str], timeout: Duration) -> Result<Duration> {
        let begin = Instant::now();
        let names: Vec<String> = if components.is_empty() {
            self.components().into_iter().map(|c| c.component).collect()
        } else {
            components.iter().map(|s| s.to_string()).collect()
        };
        if names.is_empty() {
            bail!("no components defined in {}", self.manifest_dir().display());
        }
        for n in names {
            let left = timeout.saturating_sub(begin.elapsed());
            self.wait_ready(&n, left)?;
        }
        Ok(begin.elapsed())
    }

    /// Runs the testenv `kubectl --kubeconfig ROOT/etc/kubernetes/admin.conf
    /// ARGS...` and returns its trimmed stdout; non-zero exit is an error
    /// carrying stderr.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_with(&self.admin_kubeconfig(), args)
    }

    /// Like [`kubectl`](Self::kubectl) with another kubeconfig, e.g.
    /// `ROOT/etc/kubernetes/super-admin.conf` (`system:masters`; admin.conf's
    /// `kubeadm:cluster-admins` group has no rights until kubeadm's
    /// ClusterRoleBinding exists).
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str]) -> Result<String> {
        let out = Command::new(self.shared.bin_dir.join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl --kubeconfig {} {} failed ({}): {}",
                kubeconfig.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    // -----------------------------------------------------------------------
    // the kubelet service

    fn control(&self) -> Result<&Control> {
        self.control
            .as_ref()
            .context("the stand-in has been stopped")
    }

    fn kubelet_action(&self, action: ServiceAction) -> Result<ServiceReply> {
        let reply = self.control()?.perform(action)?;
        ensure!(
            reply.code == 0,
            "kubelet {}: {}",
            action.as_str(),
            reply.message
        );
        Ok(reply)
    }

    /// `systemctl start kubelet`, in-process. Returns once /healthz is bound
    /// or the first start attempt failed (see [`kubelet_status`](Self::kubelet_status)).
    pub fn kubelet_start(&self) -> Result<()> {
        self.kubelet_action(ServiceAction::Start).map(drop)
    }

    /// `systemctl stop kubelet`, in-process; /healthz is closed when it returns.
    pub fn kubelet_stop(&self) -> Result<()> {
        self.kubelet_action(ServiceAction::Stop).map(drop)
    }

    /// `systemctl restart kubelet`, in-process.
    pub fn kubelet_restart(&self) -> Result<()> {
        self.kubelet_action(ServiceAction::Restart).map(drop)
    }

    /// The kubelet service is up: started, its files loaded, /healthz served
    /// (false while stopped or crash-looping).
    pub fn kubelet_running(&self) -> bool {
        self.control
            .as_ref()
            .is_some_and(|c| c.kubelet.status().running)
    }

    pub fn kubelet_status(&self) -> KubeletStatus {
        self.control
            .as_ref()
            .map(|c| c.kubelet.status())
            .unwrap_or_default()
    }

    /// Waits until the kubelet has registered its Node (or found it). Fails
    /// on timeout with its status and the tail of its log.
    pub fn wait_kubelet_registered(&self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.kubelet_status();
            if st.registered
                && let Some(name) = st.node_name
            {
                return Ok(name);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the kubelet did not register its Node within {timeout:?}: {st:?}\n--- last lines of {} ---\n{}",
                    self.log_path("kubelet").display(),
                    self.log_tail("kubelet", 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ROOT/run/kubeforge-stand-in.sock`, the service socket.
    pub fn service_socket(&self) -> PathBuf {
        self.shared.root.join(SERVICE_SOCKET)
    }

    /// The argv prefix a host runs services with: `[<kubeforge-testenv>,
    /// "service", "--root", ROOT]` (see [`stand_in_exe`]).
    pub fn service_command(&self) -> Result<Vec<String>> {
        service::service_command(&self.shared.root)
    }

    /// [`service_command`](Self::service_command) as one string for
    /// `kubeforge --service-command "…"` (see [`service_command_line`]).
    pub fn service_command_line(&self) -> Result<String> {
        service::service_command_line(&self.shared.root)
    }

    /// Stops the kubelet service, every component (SIGTERM to its process
    /// group, SIGKILL after the grace period) and the supervisor; removes the
    /// service socket. Also done on drop.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let control = match self.control.take() {
            Some(mut c) => {
                let r = c.stop();
                tracing::debug!(socket = %c.socket.display(), "service socket closed");
                r
            }
            None => Ok(()),
        };
        let Some(thread) = self.thread.take() else {
            return control;
        };
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        let supervisor = thread
            .join()
            .map_err(|_| anyhow!("the stand-in supervisor thread panicked"));
        control.and(supervisor)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("stopping the kubelet stand-in: {e:#}");
        }
    }
}

/// The static pods the supervisor runs, for the kubelet emulation's mirror
/// pods: each manifest whose content was planned, with its containers.
fn static_pods(shared: &Shared) -> Vec<kubelet::StaticPod> {
    let st = shared.lock();
    let now = Instant::now();
    st.manifests
        .iter()
        .filter_map(|(path, m)| {
            let content = m.running.clone()?;
            let file = path.file_name()?.to_string_lossy().into_owned();
            let containers = m
                .components
                .iter()
                .filter_map(|name| {
                    let c = st.components.get(name)?;
                    (c.plan.manifest == *path).then(|| {
                        let up_for = c
                            .child
                            .as_ref()
                            .and(c.started)
                            .map(|s| now.saturating_duration_since(s));
                        kubelet::ContainerRun {
                            name: name.clone(),
                            phase: c.phase.clone(),
                            pid: c.child.as_ref().map(Child::id),
                            started_at: up_for.and_then(|u| SystemTime::now().checked_sub(u)),
                            up_for,
                            starts: c.starts,
                            probe: c.plan.probe.clone(),
                            last_exit: c.last_exit.clone(),
                        }
                    })
                })
                .collect();
            Some(kubelet::StaticPod {
                source: format!("/{MANIFESTS_DIR}/{file}"),
                content,
                containers,
            })
        })
        .collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn snapshot(name: &str, c: &Comp) -> ComponentStatus {
    ComponentStatus {
        component: name.to_string(),
        manifest: c.plan.manifest.clone(),
        phase: c.phase.clone(),
        pid: c.child.as_ref().map(|ch| ch.id()),
        starts: c.starts,
        last_exit: c.last_exit.clone(),
        program: c.plan.program.clone(),
        args: c.plan.args.clone(),
        probe: c.plan.probe.as_ref().map(HttpProbe::url),
        unmapped_paths: c.plan.unmapped.clone(),
    }
}

// ---------------------------------------------------------------------------
// supervisor

fn supervise(shared: &Shared) {
    loop {
        if shared.lock().stopping {
            break;
        }
        let to_stop = sync_manifests(shared);
        terminate(shared, to_stop);
        reap(shared);
        start_due(shared);
        let st = shared.lock();
        if st.stopping {
            break;
        }
        let _unused = shared
            .wake
            .wait_timeout(st, shared.options.poll_interval)
            .unwrap_or_else(|e| e.into_inner());
    }
    let children: Vec<(String, Child)> = {
        let mut st = shared.lock();
        st.components
            .iter_mut()
            .filter_map(|(n, c)| c.child.take().map(|ch| (n.clone(), ch)))
            .collect()
    };
    // Stop clients before servers: the apiserver drains slowly once etcd is
    // gone, and etcd waits for the apiserver's watch streams. (The kubelet
    // stops static pods in no particular order; this only saves time.)
    let (mut rest, mut tiers) = (children, Vec::new());
    for tier in [&[][..], &["kube-apiserver"][..], &["etcd"][..]] {
        let (this, other): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(n, _)| {
            if tier.is_empty() {
                n != "kube-apiserver" && n != "etcd"
            } else {
                tier.contains(&n.as_str())
            }
        });
        tiers.push(this);
        rest = other;
    }
    tiers.push(rest);
    for tier in tiers {
        terminate(shared, tier);
    }
    tracing::info!(root = %shared.root.display(), "kubelet stand-in stopped");
}

/// Reads the manifest directory; updates the component table. Returns the
/// children to stop (changed or removed manifests).
fn sync_manifests(shared: &Shared) -> Vec<(String, Child)> {
    let dir = shared.manifest_dir();
    let mut seen: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                // The kubelet ignores dot files; editors' backups are skipped too.
                if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
                    continue;
                }
                let path = e.path();
                if !path.is_file() {
                    continue;
                }
                if let Ok(bytes) = fs::read(&path) {
                    seen.insert(path, bytes);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), "reading manifests: {e}"),
    }

    let mut guard = shared.lock();
    let st = &mut *guard;
    let mut to_stop = Vec::new();
    let mut remove_components: Vec<String> = Vec::new();
    let mut pending: Vec<ContainerPlan> = Vec::new();

    // Removed manifests.
    let gone: Vec<PathBuf> = st
        .manifests
        .keys()
        .filter(|p| !seen.contains_key(*p))
        .cloned()
        .collect();
    for path in gone {
        if let Some(m) = st.manifests.remove(&path) {
            tracing::info!(manifest = %path.display(), "manifest removed");
            remove_components.extend(m.components);
        }
    }

    for (path, bytes) in seen {
        match st.manifests.get_mut(&path) {
            None => {
                // First sighting: act once the content is stable (next scan),
                // so a manifest that is still being written is not started.
                st.manifests.insert(
                    path,
                    ManifestEntry {
                        content: bytes,
                        applied: false,
                        running: None,
                        components: Vec::new(),
                        error: None,
                    },
                );
            }
            Some(m) if m.content != bytes => {
                m.content = bytes;
                m.applied = false;
            }
            Some(m) if m.applied => {}
            Some(m) => {
                m.applied = true;
                let old = std::mem::take(&mut m.components);
                if !old.is_empty() {
                    tracing::info!(manifest = %path.display(), "manifest changed; restarting");
                }
                remove_components.extend(old);
                let text = String::from_utf8_lossy(&m.content).into_owned();
                let planned = Pod::parse(&text)
                    .and_then(|pod| manifest::plan_pod(&pod, &path, &shared.root, &shared.bin_dir));
                match planned {
                    Ok(plans) => {
                        m.error = None;
                        m.running = Some(m.content.clone());
                        m.components = plans.iter().map(|p| p.component.clone()).collect();
                        for plan in plans {
                            for p in &plan.unmapped {
                                tracing::warn!(
                                    component = %plan.component,
                                    path = %p,
                                    "absolute path in the arguments is not under a hostPath mount; passed through unchanged"
                                );
                            }
                            if st.components.contains_key(&plan.component)
                                && !remove_components.contains(&plan.component)
                            {
                                tracing::warn!(
                                    component = %plan.component,
                                    manifest = %plan.manifest.display(),
                                    "component defined by more than one manifest; the newest wins"
                                );
                                remove_components.push(plan.component.clone());
                            }
                            pending.push(plan);
                        }
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        tracing::error!(manifest = %path.display(), "cannot run manifest: {msg}");
                        m.error = Some(msg);
                        m.running = None;
                    }
                }
            }
        }
    }

    for name in remove_components {
        if let Some(mut c) = st.components.remove(&name)
            && let Some(child) = c.child.take()
        {
            to_stop.push((name, child));
        }
    }
    // Start the newly planned ones (after the old processes are gone).
    for plan in pending {
        let name = plan.component.clone();
        st.components.insert(
            name,
            Comp {
                plan,
                child: None,
                started: None,
                starts: 0,
                backoff: Duration::ZERO,
                next_start: Some(Instant::now()),
                phase: Phase::BackOff,
                last_exit: None,
            },
        );
    }
    to_stop
}

/// Records exits of children that ended on their own.
fn reap(shared: &Shared) {
    let mut st = shared.lock();
    let State {
        components,
        exits,
        stopping,
        ..
    } = &mut *st;
    for (name, c) in components.iter_mut() {
        let Some(child) = c.child.as_mut() else {
            continue;
        };
        let status = match child.try_wait() {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(component = %name, "waiting for child: {e}");
                continue;
            }
        };
        let pid = child.id();
        // Kill whatever is left of its process group.
        kill_group(pid, rustix::process::Signal::KILL);
        c.child = None;
        let ran_for = c.started.map(|s| s.elapsed()).unwrap_or_default();
        let event = ExitEvent {
            component: name.clone(),
            pid,
            code: status.code(),
            signal: status.signal(),
            at: SystemTime::now(),
            ran_for,
        };
        tracing::warn!(log = %shared.log_path(name).display(), "{event}");
        append_log(
            &shared.log_path(name),
            &format!("=== kubeforge-testenv: {event} ===\n"),
        );
        c.last_exit = Some(event.clone());
        exits.push(event);
        match shared.options.restart {
            RestartPolicy::Always { max_backoff } if !*stopping => {
                c.backoff = if ran_for > Duration::from_secs(60) || c.backoff.is_zero() {
                    Duration::from_secs(1)
                } else {
                    (c.backoff * 2).min(max_backoff)
                };
                c.next_start = Some(Instant::now() + c.backoff);
                c.phase = Phase::BackOff;
                tracing::info!(component = %name, backoff = ?c.backoff, "will restart");
            }
            _ => {
                c.next_start = None;
                c.phase = Phase::Exited;
            }
        }
    }
}

fn start_due(shared: &Shared) {
    let mut st = shared.lock();
    if st.stopping {
        return;
    }
    let now = Instant::now();
    for (name, c) in st.components.iter_mut() {
        if c.child.is_some() || c.next_start.is_none_or(|t| t > now) {
            continue;
        }
        c.next_start = None;
        match spawn(shared, &c.plan) {
            Ok(child) => {
                tracing::info!(
                    component = %name,
                    pid = child.id(),
                    log = %shared.log_path(name).display(),
                    "started"
                );
                c.child = Some(child);
                c.started = Some(Instant::now());
                c.starts += 1;
                c.phase = Phase::Running;
            }
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::error!(component = %name, "cannot start: {msg}");
                c.phase = Phase::Failed(msg);
            }
        }
    }
}

fn append_log(path: &Path, text: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}

fn spawn(shared: &Shared, plan: &ContainerPlan) -> Result<Child> {
    for d in &plan.create_dirs {
        fs::create_dir_all(d).with_context(|| format!("creating hostPath dir {}", d.display()))?;
    }
    for f in &plan.create_files {
        if let Some(parent) = f.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("creating hostPath dir {}", parent.display()))?;
        }
        if !f.exists() {
            File::create(f).with_context(|| format!("creating hostPath file {}", f.display()))?;
        }
    }
    let log_path = shared.log_path(&plan.component);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening log {}", log_path.display()))?;
    writeln!(
        log,
        "=== kubeforge-testenv: starting {} at {:?}\n=== {} {}",
        plan.component,
        SystemTime::now(),
        plan.program.display(),
        plan.args.join(" ")
    )
    .with_context(|| format!("writing log {}", log_path.display()))?;
    let stderr = log
        .try_clone()
        .with_context(|| format!("duplicating log {}", log_path.display()))?;
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&plan.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    // SAFETY: the closure only makes a raw prctl syscall, which is
    // async-signal-safe; no allocation or locking happens after fork.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn().with_context(|| {
        format!(
            "spawning {} (cwd {})",
            plan.program.display(),
            plan.working_dir.display()
        )
    })
}

fn kill_group(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// SIGTERM to each child's process group, then SIGKILL after the grace
/// period; reaps them all.
fn terminate(shared: &Shared, mut children: Vec<(String, Child)>) {
    if children.is_empty() {
        return;
    }
    for (name, child) in &children {
        tracing::info!(component = %name, pid = child.id(), "stopping (SIGTERM)");
        kill_group(child.id(), rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + shared.options.grace_period;
    while !children.is_empty() {
        children.retain_mut(|(name, child)| match child.try_wait() {
            Ok(Some(status)) => {
                kill_group(child.id(), rustix::process::Signal::KILL);
                append_log(
                    &shared.log_path(name),
                    &format!("=== kubeforge-testenv: stopped {name} ({status}) ===\n"),
                );
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
        if children.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for (name, child) in &mut children {
                tracing::warn!(component = %name, pid = child.id(), "grace period over; SIGKILL");
                kill_group(child.id(), rustix::process::Signal::KILL);
                let _ = child.wait();
                append_log(
                    &shared.log_path(name),
                    &format!("=== kubeforge-testenv: killed {name} after the grace period ===\n"),
                );
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
