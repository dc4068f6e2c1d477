//! Helpers shared by the tests that run a node kubeforge wrote.
//!
//! **The kubeforge binary:** this package cannot name it with `cargo_bin`
//! (it belongs to the `kubeforge` package), so [`kubeforge_bin`] builds it
//! with `kubeforge_testenv::workspace_exe` (once per test process, a no-op
//! when current). `KUBEFORGE_BIN=/path/to/kubeforge` skips the build.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// `nodeRegistration.name` of [`config`].
pub const NODE_NAME: &str = "kf-node";

/// The config both tools get: advertise address, node name ([`NODE_NAME`]),
/// algorithm.
pub fn config(advertise: &str, algorithm: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {advertise}
  bindPort: 6443
nodeRegistration:
  name: kf-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.35.4
clusterName: kubeforge-test
encryptionAlgorithm: {algorithm}
apiServer:
  certSANs: [\"127.0.0.1\", \"localhost\"]
"
    )
}

/// The kubeforge binary of this checkout; see the module docs.
pub fn kubeforge_bin() -> Result<PathBuf> {
    kubeforge_testenv::workspace_exe("kubeforge", "KUBEFORGE_BIN")
}

/// Runs `kubeforge --root ROOT init phase <phase> --config FILE` for each
/// phase, with a compiled-component cache shared by this run and without
/// proxy variables (kubeadm copies `*_proxy` into the static pods).
pub fn kubeforge_phases(root: &Path, config_yaml: &str, phases: &[&str]) -> Result<Duration> {
    kubeforge_phases_with(root, config_yaml, phases, &[])
}

/// [`kubeforge_phases`] with global options before `init`, e.g.
/// `["--service-command", &stand_in.service_command_line()?]`.
pub fn kubeforge_phases_with(
    root: &Path,
    config_yaml: &str,
    phases: &[&str],
    global: &[&str],
) -> Result<Duration> {
    let kubeforge = kubeforge_bin()?;
    std::fs::create_dir_all(root)?;
    let config = root.with_extension("kubeforge.yaml");
    std::fs::write(&config, config_yaml)?;
    let begin = Instant::now();
    for phase in phases {
        let mut cmd = Command::new(&kubeforge);
        cmd.arg("--root")
            .arg(root)
            .args(global)
            .args(["init", "phase"])
            .args(phase.split_whitespace())
            .arg("--config")
            .arg(&config)
            .env(
                "KUBEFORGE_CACHE_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubeforge-testenv-cache"),
            )
            .env_remove("KUBEFORGE_LOG")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name
                .to_string_lossy()
                .to_ascii_lowercase()
                .ends_with("_proxy")
            {
                cmd.env_remove(name);
            }
        }
        let out = cmd
            .output()
            .with_context(|| format!("running kubeforge init phase {phase}"))?;
        ensure!(
            out.status.success(),
            "kubeforge --root {} init phase {phase} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(begin.elapsed())
}

pub const NODE_PHASES: [&str; 4] = [
    "certs all",
    "kubeconfig all",
    "etcd local",
    "control-plane all",
];

/// A kube-rs client with the credentials of `kubeconfig`.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading {}", kubeconfig.display()))?;
    Ok(kube::Client::try_from(config)?)
}
