//! A node seen from the host: run commands in it, read and write its files, control its
//! services and read their logs.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::state::{ClusterRecord, NodeRecord, ProcessId};
use crate::supervisor::{LOG_DIR, PATH, VAR_LOG};
use crate::{network, systemctl};

/// What a node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        }
    }
}

/// One node of a cluster.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub ordinal: u8,
    /// Its address on the cluster's bridge (the API server's advertise address on a control
    /// plane); the host reaches it.
    pub address: Ipv4Addr,
    /// Its pods' subnet.
    pub pod_subnet: String,
    pub cluster: String,
    supervisor: ProcessId,
    dir: PathBuf,
}

impl Node {
    pub(crate) fn from_record(cluster: &ClusterRecord, node: &NodeRecord) -> Node {
        Node {
            name: node.name.clone(),
            role: node.role,
            ordinal: node.ordinal,
            address: network::node_address(cluster.index, node.ordinal),
            pod_subnet: network::pod_subnet(node.ordinal),
            cluster: cluster.name.clone(),
            supervisor: node.supervisor,
            dir: ClusterRecord::dir(&cluster.name).join(&node.name),
        }
    }

    /// The node's supervisor as the host sees it (PID 1 of the node).
    pub fn supervisor(&self) -> ProcessId {
        self.supervisor
    }

    pub fn running(&self) -> bool {
        self.supervisor.alive()
    }

    /// The host path of the node's path `path` (absolute, as the node sees it): through the
    /// supervisor's root, so every mount of the node is seen as the node sees it. An absolute
    /// symbolic link on the way resolves against the host's root, not the node's (the kernel's
    /// rule for /proc/<pid>/root): read such a file with [`Node::run`] (`cat`).
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        PathBuf::from(format!("/proc/{}/root", self.supervisor.pid))
            .join(path.strip_prefix("/").unwrap_or(path))
    }

    pub fn read(&self, path: impl AsRef<Path>) -> Result<String> {
        let host = self.path(&path);
        std::fs::read_to_string(&host)
            .with_context(|| format!("reading {} on node {}", path.as_ref().display(), self.name))
    }

    /// Writes `contents` to the node's `path`, creating its directories.
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<()> {
        let host = self.path(&path);
        let what = || format!("writing {} on node {}", path.as_ref().display(), self.name);
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent).with_context(what)?;
        }
        std::fs::write(&host, contents).with_context(what)
    }

    /// A command that runs `argv` inside the node (its mount, UTS, network and PID namespaces,
    /// with the node's PATH, working directory `/`), like `docker exec`. The caller's other
    /// environment variables pass through.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, argv: &[S]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.supervisor.pid))
            .args(["--mount", "--uts", "--net", "--pid", "--wd=/", "--"])
            .args(argv)
            .env("PATH", PATH)
            .stdin(Stdio::null());
        command
    }

    /// Runs `argv` in the node and returns its output, whatever its exit status.
    pub fn output<S: AsRef<std::ffi::OsStr>>(&self, argv: &[S]) -> Result<Output> {
        self.command(argv)
            .output()
            .with_context(|| format!("running nsenter for node {}", self.name))
    }

    /// Runs `argv` in the node; fails with its output unless it exits 0. Returns its stdout.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, argv: &[S]) -> Result<String> {
        let output = self.output(argv)?;
        let shown = argv
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        if !output.status.success() {
            bail!(
                "`{shown}` on node {} failed ({}):\n{}{}",
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `systemctl ARGS` against the node's supervisor, from the host: (exit code, output).
    pub fn systemctl(&self, args: &[&str]) -> Result<(i32, String)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let line = systemctl::parse_args(&args)?;
        self.supervisor_request(&line)
    }

    pub(crate) fn supervisor_request(&self, line: &str) -> Result<(i32, String)> {
        systemctl::request(&self.path(systemctl::SOCKET), line)
            .with_context(|| format!("node {}", self.name))
    }

    /// Waits until the node's supervisor answers (its mounts are set up).
    pub(crate) fn wait_supervisor(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.supervisor_request("ping") {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e).context(format!(
                        "the supervisor of node {} did not answer within {timeout:?}; its log:\n{}",
                        self.name,
                        self.supervisor_log()
                    ));
                }
                Err(_) if !self.running() => bail!(
                    "the supervisor of node {} exited; its log:\n{}",
                    self.name,
                    self.supervisor_log()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The unit's main process as `systemctl status` shows it, while it runs.
    pub fn main_pid(&self, unit: &str) -> Result<Option<u32>> {
        let (_, status) = self.systemctl(&["status", unit])?;
        Ok(status
            .lines()
            .find_map(|l| l.trim().strip_prefix("Main PID: "))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|pid| pid.parse().ok()))
    }

    /// Whether the unit (`kubelet`, `containerd`) runs.
    pub fn service_active(&self, unit: &str) -> Result<bool> {
        Ok(self.systemctl(&["is-active", unit])?.0 == 0)
    }

    /// The log of a unit (`kubelet`, `containerd`): its output and the supervisor's lines about
    /// it (starts, exits), like `journalctl -u UNIT`. Readable after the node is gone.
    pub fn log(&self, unit: &str) -> String {
        let path = self
            .dir
            .join(VAR_LOG)
            .join(LOG_DIR.trim_start_matches("/var/log/"))
            .join(format!("{unit}.log"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The last `lines` lines of [`Node::log`].
    pub fn log_tail(&self, unit: &str, lines: usize) -> String {
        tail(&self.log(unit), lines)
    }

    /// The supervisor's own log (its mounts, boot, shutdown).
    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("supervisor.log")).unwrap_or_default()
    }

    /// The log of a container: the newest `/var/log/pods/<namespace>_<pod>_*/<container>/*.log`
    /// of a pod whose name starts with `pod`.
    pub fn container_log(&self, namespace: &str, pod: &str, container: &str) -> Result<String> {
        let pods = self.dir.join(VAR_LOG).join("pods");
        let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
        for entry in std::fs::read_dir(&pods)
            .with_context(|| format!("listing {}", pods.display()))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&format!("{namespace}_{pod}")) {
                continue;
            }
            let Ok(logs) = std::fs::read_dir(entry.path().join(container)) else {
                continue;
            };
            for log in logs.flatten() {
                let modified = log.metadata().and_then(|m| m.modified())?;
                if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
                    newest = Some((modified, log.path()));
                }
            }
        }
        let (_, path) = newest.with_context(|| {
            format!(
                "no log of container {container} of a pod {namespace}/{pod}* on node {} (under {})",
                self.name,
                pods.display()
            )
        })?;
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// A short report for a failing test: the ends of the kubelet's and containerd's logs.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- node {} kubelet (last 40 lines) ---\n{}\n--- node {} containerd (last 15 lines) ---\n{}",
            self.name,
            self.log_tail("kubelet", 40),
            self.name,
            self.log_tail("containerd", 15)
        )
    }
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
