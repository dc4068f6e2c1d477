//! Locating what tests/testenv/build.sh builds (the bin dir and the images beside it), and the
//! executables of this workspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};

/// Environment variable naming a ready bin dir (skips the build).
pub const BIN_ENV: &str = "KUBEFORGE_TESTENV_BIN";

/// What the bin dir provides.
pub const COMPONENTS: [&str; 15] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
    "kubeadm",
    "agnhost",
    "etcd",
    "etcdctl",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "coredns",
    "pause",
];

/// The binaries a node has in its /usr/local/bin (besides `systemctl` and `kubeforge`).
pub const NODE_BINARIES: [&str; 7] = [
    "kubelet",
    "kubeadm",
    "kubectl",
    "etcdctl",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
];

/// The OCI layout of the images (beside the bin dir), for `ctr images import`.
pub fn images_tar(bin_dir: &Path) -> PathBuf {
    bin_dir.join("../images.tar")
}

/// The names of the images in [`images_tar`], one a line, as kubeadm names them.
pub fn image_names(bin_dir: &Path) -> Result<Vec<String>> {
    let path = bin_dir.join("../images.txt");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}; {HOW_TO}", path.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}

/// `tests/testenv/build.sh` in this checkout.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testenv")
        .join("build.sh")
}

const HOW_TO: &str = "build the test env with `tests/testenv/build.sh` \
     (needs Go >= 1.26.6, the Go module proxy and, as root, apt-get for its Debian packages; \
     a cold build takes 10-25 minutes) and export KUBEFORGE_TESTENV_BIN=$(tests/testenv/build.sh)";

fn check_bin_dir(dir: &Path) -> Result<()> {
    for p in COMPONENTS
        .iter()
        .map(|c| dir.join(c))
        .chain([images_tar(dir)])
    {
        if !p.exists() {
            bail!("{} is missing; {HOW_TO}", p.display());
        }
    }
    Ok(())
}

/// The testenv bin dir of the default release (tests/testenv/kubernetes/go.mod, kubeforge's
/// default): `$KUBEFORGE_TESTENV_BIN`, else the output of `tests/testenv/build.sh` (which builds
/// once into a cache and returns at once when current; its progress goes to this process's
/// stderr). The result is memoised per process. Errors say how to build the binaries; tests
/// must fail, never skip silently.
pub fn testenv_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        check_bin_dir(&dir).with_context(|| format!("{BIN_ENV}={}", dir.display()))?;
        return Ok(dir);
    }
    bin_dir_of(None)
}

/// The testenv bin dir of the Kubernetes release `version` (e.g. `v1.36.3`): the output of
/// `tests/testenv/build.sh <version>`, memoised per process, as [`testenv_bin_dir`].
pub fn testenv_bin_dir_for(version: &str) -> Result<PathBuf> {
    bin_dir_of(Some(version))
}

fn bin_dir_of(version: Option<&str>) -> Result<PathBuf> {
    static CACHE: Mutex<BTreeMap<Option<String>, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut cached = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let key = version.map(str::to_owned);
    if let Some(p) = cached.get(&key) {
        return Ok(p.clone());
    }
    let dir = run_build_script(version)?;
    cached.insert(key, dir.clone());
    Ok(dir)
}

fn run_build_script(version: Option<&str>) -> Result<PathBuf> {
    let script = build_script();
    if !script.exists() {
        bail!("{} not found; {HOW_TO}", script.display());
    }
    tracing::info!(script = %script.display(), ?version, "building/locating testenv binaries");
    let out = Command::new("bash")
        .arg(&script)
        .args(version)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| anyhow!("running {}: {e}; {HOW_TO}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}); see its stderr above. {HOW_TO}",
            script.display(),
            version.unwrap_or_default(),
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

/// Environment variable naming a ready `kubeforge-testenv` executable (skips the `cargo build`
/// of [`testenv_exe`]).
pub const EXE_ENV: &str = "KUBEFORGE_TESTENV_EXE";

/// The `kubeforge-testenv` executable: this process when it is that executable, else the one of
/// this checkout ([`workspace_exe`]). Nodes run it as their supervisor and their `systemctl`.
pub fn testenv_exe() -> Result<PathBuf> {
    let current = std::env::current_exe().context("locating the current executable")?;
    if current
        .file_name()
        .is_some_and(|n| n == "kubeforge-testenv")
    {
        return Ok(current);
    }
    workspace_exe("kubeforge-testenv", EXE_ENV)
}

/// The executable `package` (bin of the same name) of this checkout, for tests of other
/// packages: `$env` when set, else `cargo build -p <package> --bin <package>` in this workspace
/// (once per process and executable; a no-op when current, honours `CARGO_TARGET_DIR`) and the
/// executable cargo reports. That way tests run this checkout's binary, never a stale one.
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
