//! Running the real kubeadm (from the testenv bin dir) against a test root.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Runs `kubeadm init phase <phase> --config /kubeadm.yaml --rootfs ROOT` for
/// each phase, after writing `config_yaml` to `ROOT/kubeadm.yaml`.
///
/// `--rootfs` makes kubeadm chroot into ROOT, so everything it writes under
/// `/etc/kubernetes` (pki, kubeconfigs, manifests) lands in
/// `ROOT/etc/kubernetes` with the paths a real node would have. Chroot needs
/// root (CAP_SYS_CHROOT). kubeadm replaces a loopback or unspecified
/// `advertiseAddress` with the IP of the default-route interface (it reads
/// `/proc/net/route`, which does not exist inside ROOT, so that fails); give
/// it a non-loopback address.
///
/// Returns kubeadm's combined output.
pub fn kubeadm_init_phases(
    bin_dir: &Path,
    root: &Path,
    config_yaml: &str,
    phases: &[&str],
) -> Result<String> {
    let config = root.join("kubeadm.yaml");
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(&config, config_yaml)
        .with_context(|| format!("writing {}", config.display()))?;
    let mut output = String::new();
    for phase in phases {
        let mut cmd = Command::new(bin_dir.join("kubeadm"));
        cmd.args(["init", "phase"])
            .args(phase.split_whitespace())
            .args(["--config", "/kubeadm.yaml", "--rootfs"])
            .arg(root)
            .stdin(Stdio::null());
        let out = cmd
            .output()
            .with_context(|| format!("running kubeadm init phase {phase}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        output.push_str(&text);
        if !out.status.success() {
            bail!(
                "kubeadm init phase {phase} --rootfs {} failed ({}){}:\n{text}",
                root.display(),
                out.status,
                if rustix::process::geteuid().is_root() {
                    ""
                } else {
                    " (--rootfs chroots and needs root)"
                }
            );
        }
    }
    Ok(output)
}
