//! The stand-in's service channel: how a host's "init system" reaches the
//! kubelet emulation of the stand-in running for a root.
//!
//! Every stand-in (the `kubeforge-testenv run --root ROOT` process or a
//! [`StandIn`](crate::StandIn) started in-process by a test) listens on the
//! unix socket `ROOT/run/kubeforge-stand-in.sock` ([`SERVICE_SOCKET`]). A
//! client sends one line, `<action> <service>\n`, and reads one line back,
//! `<exit code> <message>\n`. `kubeforge-testenv service --root ROOT
//! <action> <service>` is that client, so a host that runs services as
//! `<command...> <action> <service>` (like `systemctl restart kubelet`) can
//! be given `kubeforge-testenv service --root ROOT` as its command.
//!
//! The socket is removed when the stand-in stops. A socket file nobody
//! listens on (a stand-in that was killed) is replaced by the next stand-in;
//! one that answers makes a second stand-in for the same root refuse to
//! start.
//!
//! Exit codes follow systemctl's: 0 done, 1 failure (no stand-in, I/O), 2
//! bad usage, 3 `is-active` and the service is not running, 5 unknown unit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::kubelet::Kubelet;

/// The control socket, relative to the root.
pub const SERVICE_SOCKET: &str = "run/kubeforge-stand-in.sock";

/// Environment variable naming a ready `kubeforge-testenv` executable
/// (skips the `cargo build` of [`stand_in_exe`]).
pub const EXE_ENV: &str = "KUBEFORGE_TESTENV_EXE";

/// The only service the stand-in emulates.
pub const KUBELET_SERVICE: &str = "kubelet";

/// What the host's init system is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceAction {
    Stop,
    Start,
    Restart,
    /// Exit 0 when the service runs (and is healthy), else 3; prints the state.
    IsActive,
}

impl ServiceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceAction::Stop => "stop",
            ServiceAction::Start => "start",
            ServiceAction::Restart => "restart",
            ServiceAction::IsActive => "is-active",
        }
    }

    fn parse(s: &str) -> Option<ServiceAction> {
        [
            ServiceAction::Stop,
            ServiceAction::Start,
            ServiceAction::Restart,
            ServiceAction::IsActive,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The answer of the stand-in: the exit code for the client and a message
/// for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceReply {
    pub code: i32,
    pub message: String,
}

impl ServiceReply {
    fn ok(message: impl Into<String>) -> ServiceReply {
        ServiceReply {
            code: 0,
            message: message.into(),
        }
    }
    fn fail(code: i32, message: impl Into<String>) -> ServiceReply {
        ServiceReply {
            code,
            message: message.into(),
        }
    }
}

/// `kubelet` and `kubelet.service` name the kubelet.
pub fn is_kubelet(service: &str) -> bool {
    service == KUBELET_SERVICE || service == "kubelet.service"
}

fn unknown_unit(service: &str) -> ServiceReply {
    ServiceReply::fail(
        5,
        format!(
            "Unit {service} not found: the kubelet stand-in runs only the {KUBELET_SERVICE:?} service"
        ),
    )
}

/// Performs `action` on the stand-in's service; what the socket and
/// `StandIn::kubelet_*` both call.
pub(crate) async fn perform(kubelet: &Arc<Kubelet>, action: ServiceAction) -> ServiceReply {
    let started = |outcome: crate::kubelet::StartOutcome, verb: &str| match outcome {
        Ok(Some(addr)) => ServiceReply::ok(format!("kubelet {verb}; /healthz on http://{addr}")),
        Ok(None) => ServiceReply::ok(format!("kubelet {verb}")),
        // systemctl succeeds when the unit starts, even if the process exits
        // at once; the reason is printed for the person running it.
        Err(why) => ServiceReply::ok(format!(
            "kubelet {verb}, but it exits at once and is being restarted: {why}"
        )),
    };
    match action {
        ServiceAction::Stop => {
            if kubelet.stop().await {
                ServiceReply::ok("kubelet stopped")
            } else {
                ServiceReply::ok("kubelet was not running")
            }
        }
        ServiceAction::Start => started(kubelet.start().await, "started"),
        ServiceAction::Restart => {
            kubelet.stop().await;
            started(kubelet.start().await, "restarted")
        }
        ServiceAction::IsActive => {
            let st = kubelet.status();
            match (st.active, st.running) {
                (true, true) => ServiceReply::ok("active"),
                (true, false) => ServiceReply::fail(3, "activating (auto-restart)"),
                (false, _) => ServiceReply::fail(3, "inactive"),
            }
        }
    }
}

async fn handle(kubelet: Arc<Kubelet>, stream: tokio::net::UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read);
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = match words.as_slice() {
        [action, service] => match ServiceAction::parse(action) {
            None => ServiceReply::fail(
                2,
                format!("unknown action {action:?}: use stop, start, restart or is-active"),
            ),
            Some(_) if !is_kubelet(service) => unknown_unit(service),
            Some(action) => perform(&kubelet, action).await,
        },
        _ => ServiceReply::fail(
            2,
            format!(
                "bad request {:?}: expected \"<action> <service>\"",
                line.trim()
            ),
        ),
    };
    let text = format!("{} {}\n", reply.code, reply.message.replace('\n', " "));
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Binds `ROOT/run/kubeforge-stand-in.sock`, replacing a stale socket.
/// Fails when another stand-in answers on it.
pub(crate) fn bind(root: &Path) -> Result<(std::os::unix::net::UnixListener, PathBuf)> {
    let path = root.join(SERVICE_SOCKET);
    check_socket_path(&path)?;
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::symlink_metadata(&path).is_ok() {
        match UnixStream::connect(&path) {
            Ok(_) => bail!(
                "another kubelet stand-in already serves {} (its control socket {} answers); stop it first",
                root.display(),
                path.display()
            ),
            Err(e) => {
                tracing::info!(socket = %path.display(), "removing a stale control socket ({e})");
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing stale socket {}", path.display()))?;
            }
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    listener
        .set_nonblocking(true)
        .context("non-blocking control socket")?;
    Ok((listener, path))
}

fn check_socket_path(path: &Path) -> Result<()> {
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
    let len = path.as_os_str().len();
    ensure!(
        len < 108,
        "the control socket path {} is {len} bytes long; unix sockets allow at most 107: use a shorter root",
        path.display()
    );
    Ok(())
}

/// Serves the socket until `shutdown` fires; then stops the kubelet and
/// removes the socket.
pub(crate) async fn serve(
    kubelet: Arc<Kubelet>,
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(socket = %path.display(), "cannot serve the control socket: {e}");
            None
        }
    };
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = async {
                match &listener {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            } => match accepted {
                Ok((stream, _)) => {
                    let k = kubelet.clone();
                    conns.spawn(async move {
                        if let Err(e) = handle(k, stream).await {
                            tracing::warn!("service request: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accepting on the control socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Refuse new requests first, then stop the kubelet.
    drop(listener);
    let _ = std::fs::remove_file(&path);
    conns.shutdown().await;
    kubelet.stop().await;
}

// ---------------------------------------------------------------------------
// the client

/// Asks the stand-in running for `root` to perform `action` on `service`;
/// the reply carries the exit code for a command line. An error means no
/// stand-in could be asked (none runs for `root`, or I/O failed).
pub fn request(root: &Path, action: ServiceAction, service: &str) -> Result<ServiceReply> {
    if !is_kubelet(service) {
        return Ok(unknown_unit(service));
    }
    let path = root.join(SERVICE_SOCKET);
    check_socket_path(&path)?;
    let how = format!(
        "start one with `kubeforge-testenv run --root {}` (or StandIn::start in a test)",
        root.display()
    );
    if std::fs::symlink_metadata(&path).is_err() {
        bail!(
            "no kubelet stand-in runs for {}: {} does not exist; {how}",
            root.display(),
            path.display()
        );
    }
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        anyhow!(
            "no kubelet stand-in runs for {}: connecting to {} failed ({e}; a stale socket of a stand-in that died); {how}",
            root.display(),
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    writeln!(stream, "{} {service}", action.as_str())
        .with_context(|| format!("writing to {}", path.display()))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .with_context(|| format!("reading the reply from {}", path.display()))?;
    let (code, message) = line
        .trim_end()
        .split_once(' ')
        .map(|(c, m)| (c, m.to_string()))
        .unwrap_or((line.trim_end(), String::new()));
    let code = code.parse().map_err(|_| {
        anyhow!(
            "the stand-in on {} answered {:?}, not \"<code> <message>\"",
            path.display(),
            line
        )
    })?;
    Ok(ServiceReply { code, message })
}

// ---------------------------------------------------------------------------
// the executable, for hosts under test

/// The `kubeforge-testenv` executable of this checkout, for tests of other
/// packages (which cannot name it with `CARGO_BIN_EXE_*`); see [`workspace_exe`].
pub fn stand_in_exe() -> Result<PathBuf> {
    workspace_exe("kubeforge-testenv", EXE_ENV)
}

/// The executable `package` (bin of the same name) of this checkout, for tests
/// of other packages: `$env` when set, else `cargo build -p <package> --bin
/// <package>` in this workspace (once per process and executable; a no-op when
/// current, honours `CARGO_TARGET_DIR`) and the executable cargo reports. That
/// way tests run this checkout's binary, never a stale one.
pub fn workspace_exe(package: &str, env: &str) -> Result<PathBuf> {
    static CACHE: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut cached = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = cached.get(package) {
        return Ok(p.clone());
    }
    let path = match std::env::var_os(env).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => cargo_build_exe(package, env)?,
    };
    ensure!(
        path.is_file(),
        "{} does not exist ({env} or cargo build)",
        path.display()
    );
    cached.insert(package.to_string(), path.clone());
    Ok(path)
}

fn cargo_build_exe(package: &str, env: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let begin = Instant::now();
    let out = Command::new(&cargo)
        .args([
            "build",
            "-p",
            package,
            "--bin",
            package,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `cargo build -p {package}`"))?;
    ensure!(
        out.status.success(),
        "`cargo build -p {package} --bin {package}` failed ({}); see its stderr above, or set {env}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == package)
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("`cargo build -p {package}` reported no {package} executable"))?;
    tracing::info!(exe = %exe.display(), took = ?begin.elapsed(), "{package} built");
    Ok(exe)
}

/// The argv prefix a host runs services with, for the stand-in of `root`:
/// `[<kubeforge-testenv>, "service", "--root", <root>]`; the host appends
/// `<action> <service>`.
pub fn service_command(root: &Path) -> Result<Vec<String>> {
    let exe = stand_in_exe()?;
    let words = [
        exe.to_str()
            .with_context(|| format!("{} is not UTF-8", exe.display()))?,
        "service",
        "--root",
        root.to_str()
            .with_context(|| format!("{} is not UTF-8", root.display()))?,
    ];
    Ok(words.iter().map(|w| w.to_string()).collect())
}

/// [`service_command`] as one string, the words joined by single spaces,
/// for `kubeforge --service-command "…"` (kubeforge splits it on whitespace;
/// no shell quoting is involved). Fails when a word contains whitespace,
/// which that split would cut apart: use a root and target dir without.
pub fn service_command_line(root: &Path) -> Result<String> {
    let words = service_command(root)?;
    for w in &words {
        ensure!(
            !w.chars().any(char::is_whitespace),
            "{w:?} contains whitespace, which a whitespace-split --service-command cuts apart; use a root (and target dir) without spaces"
        );
    }
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in [
            ServiceAction::Stop,
            ServiceAction::Start,
            ServiceAction::Restart,
            ServiceAction::IsActive,
        ] {
            assert_eq!(ServiceAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(ServiceAction::parse("reload"), None);
    }

    #[test]
    fn no_stand_in_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = request(dir.path(), ServiceAction::Restart, "kubelet").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("no kubelet stand-in runs for"), "{msg}");
        assert!(msg.contains("kubeforge-testenv run --root"), "{msg}");
        // A stale socket (nobody listens) says so as well.
        let path = dir.path().join(SERVICE_SOCKET);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = request(dir.path(), ServiceAction::Restart, "kubelet").unwrap_err();
        assert!(format!("{e:#}").contains("stale socket"), "{e:#}");
        // And a stand-in can bind over it.
        let (_listener, bound) = bind(dir.path()).unwrap();
        assert_eq!(bound, path);
        // A second one cannot while the first listens.
        let e = bind(dir.path()).unwrap_err();
        assert!(e.to_string().contains("already serves"), "{e:#}");
    }

    #[test]
    fn other_units_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let r = request(dir.path(), ServiceAction::Restart, "containerd").unwrap();
        assert_eq!(r.code, 5);
        assert!(r.message.contains("only the \"kubelet\" service"), "{r:?}");
    }
}
