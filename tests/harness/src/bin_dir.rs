//! Locating the testenv binaries (tests/testenv/build.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};

/// Environment variable naming a ready bin dir (skips the build).
pub const BIN_ENV: &str = "KUBEFORGE_TESTENV_BIN";

/// Component names the bin dir provides (symlinks to one multi-call binary).
pub const COMPONENTS: [&str; 6] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubeadm",
    "etcd",
];

/// `tests/testenv/build.sh` in this checkout.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testenv")
        .join("build.sh")
}

const HOW_TO: &str = "build the real control-plane binaries with `tests/testenv/build.sh` \
     (needs Go >= 1.25 and the Go module proxy; a cold build takes 10-25 minutes) \
     and export KUBEFORGE_TESTENV_BIN=$(tests/testenv/build.sh)";

fn check_bin_dir(dir: &Path) -> Result<()> {
    for c in COMPONENTS {
        let p = dir.join(c);
        if !p.exists() {
            bail!("{} is missing; {HOW_TO}", p.display());
        }
    }
    Ok(())
}

/// The testenv bin dir: `$KUBEFORGE_TESTENV_BIN`, else the output of
/// `tests/testenv/build.sh` (which builds once into a cache and returns at
/// once when current; its progress goes to this process's stderr). The
/// result is memoised per process. Errors say how to build the binaries;
/// tests must fail, never skip silently.
pub fn testenv_bin_dir() -> Result<PathBuf> {
    static CACHE: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut cached = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = cached.as_ref() {
        return Ok(p.clone());
    }
    let dir = if let Some(dir) = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        check_bin_dir(&dir).with_context(|| format!("{BIN_ENV}={}", dir.display()))?;
        dir
    } else {
        run_build_script()?
    };
    *cached = Some(dir.clone());
    Ok(dir)
}

fn run_build_script() -> Result<PathBuf> {
    let script = build_script();
    if !script.exists() {
        bail!("{} not found; {HOW_TO}", script.display());
    }
    tracing::info!(script = %script.display(), "building/locating testenv binaries");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| anyhow!("running {}: {e}; {HOW_TO}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}); see its stderr above. {HOW_TO}",
            script.display(),
            out.status
        );
    }
    let stdout = String::from_utf8(out.stdout).context("build.sh output is not UTF-8")?;
    let line = stdout.lines().last().unwrap_or_default().trim();
    if line.is_empty() {
        bail!("{} printed no bin dir; {HOW_TO}", script.display());
    }
    let dir = PathBuf::from(line);
    check_bin_dir(&dir)?;
    Ok(dir)
}
