//! The services a node runs, as their systemd units define them.
//!
//! kubelet: kubeadm's packaged `kubelet.service` with its `10-kubeadm.conf` drop-in —
//! `kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS
//! $KUBELET_EXTRA_ARGS`, the last two read (when present) from /var/lib/kubelet/kubeadm-flags.env
//! and /etc/default/kubelet at every start, `Restart=always`. RestartSec is kind's 1 s (the
//! package's is 10 s), so a test sees a killed kubelet back quickly.
//!
//! containerd: containerd's `containerd.service` — `containerd`, `Restart=always`,
//! `RestartSec=5`, `KillMode=process` (stopping it leaves the shims and containers running).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

/// How a unit is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    /// The main process only (its children, e.g. containerd's shims, are left).
    Process,
    /// The main process and the processes it started.
    ControlGroup,
}

#[derive(Debug)]
pub struct UnitDef {
    pub name: &'static str,
    pub description: &'static str,
    pub unit_file: &'static str,
    pub restart_sec: Duration,
    pub stop_timeout: Duration,
    pub kill_mode: KillMode,
    /// The socket whose appearance means the service is up (`boot` waits for it).
    pub ready_socket: Option<&'static str>,
    command: fn() -> Result<Vec<String>>,
}

impl UnitDef {
    /// The command line of the next start (environment files read now, as systemd does).
    pub fn command(&self) -> Result<Vec<String>> {
        (self.command)()
    }
}

pub const KUBELET: UnitDef = UnitDef {
    name: "kubelet",
    description: "kubelet: The Kubernetes Node Agent",
    unit_file: "/usr/lib/systemd/system/kubelet.service",
    restart_sec: Duration::from_secs(1),
    stop_timeout: Duration::from_secs(10),
    kill_mode: KillMode::ControlGroup,
    ready_socket: None,
    command: kubelet_command,
};

pub const CONTAINERD: UnitDef = UnitDef {
    name: "containerd",
    description: "containerd container runtime",
    unit_file: "/usr/lib/systemd/system/containerd.service",
    restart_sec: Duration::from_secs(5),
    stop_timeout: Duration::from_secs(10),
    kill_mode: KillMode::Process,
    ready_socket: Some("/run/containerd/containerd.sock"),
    command: containerd_command,
};

/// In start order.
pub const UNITS: [&UnitDef; 2] = [&CONTAINERD, &KUBELET];

fn kubelet_command() -> Result<Vec<String>> {
    let mut env = BTreeMap::new();
    for file in ["/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet"] {
        env.extend(environment_file(Path::new(file))?);
    }
    let mut command = vec![
        "/usr/local/bin/kubelet".to_string(),
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf".to_string(),
        "--kubeconfig=/etc/kubernetes/kubelet.conf".to_string(),
        "--config=/var/lib/kubelet/config.yaml".to_string(),
    ];
    for var in ["KUBELET_KUBEADM_ARGS", "KUBELET_EXTRA_ARGS"] {
        // `$VAR` unquoted in ExecStart: split on whitespace, empty words dropped.
        if let Some(value) = env.get(var) {
            command.extend(value.split_whitespace().map(str::to_string));
        }
    }
    Ok(command)
}

fn containerd_command() -> Result<Vec<String>> {
    Ok(vec![
        "/usr/local/bin/containerd".to_string(),
        "--config".to_string(),
        "/etc/containerd/config.toml".to_string(),
    ])
}

/// systemd's `EnvironmentFile=-PATH`: a missing file is no error; `KEY=VALUE` lines, `#` and
/// `;` comments, one pair of surrounding quotes removed.
pub fn environment_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(parse_environment(&text))
}

fn parse_environment(text: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        env.insert(key.trim().to_string(), unquoted.to_string());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_files_read_as_systemd_reads_them() {
        let env = parse_environment(
            "# kubeadm writes this\nKUBELET_KUBEADM_ARGS=\"--node-ip=10.77.1.11 --hostname-override=a\"\n\
             ; comment\nKUBELET_EXTRA_ARGS='--cgroup-root=/x'\nPLAIN=v w\nnot a pair\n",
        );
        assert_eq!(
            env["KUBELET_KUBEADM_ARGS"],
            "--node-ip=10.77.1.11 --hostname-override=a"
        );
        assert_eq!(env["KUBELET_EXTRA_ARGS"], "--cgroup-root=/x");
        assert_eq!(env["PLAIN"], "v w");
        assert_eq!(env.len(), 3);
    }
}
