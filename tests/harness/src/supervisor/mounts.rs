//! The node's view of the machine's file system, set up by its supervisor in the node's own
//! mount namespace before anything runs there.
//!
//! Everything is the host's except:
//! - `/etc`: an overlay over the host's `/etc` (the node's changes — /etc/kubernetes,
//!   /etc/containerd, /etc/cni/net.d, /etc/default/kubelet — land in the node's `etc.upper`);
//! - `/var/lib` and `/var/log`: the node's own directories (kubelet, etcd, containerd, CNI state;
//!   pod and service logs);
//! - `/run`: a fresh tmpfs (containerd's sockets and shim state, /run/xtables.lock, netns);
//! - `/usr/local/bin`: the node's binaries (kubelet, kubeadm, containerd, `systemctl` …);
//! - `/proc` of the node's PID namespace, and `/sys` of its network namespace (with the host's
//!   cgroup hierarchies bound back under it).
//!
//! `/` is made private first, so nothing mounted in the node reaches the host, then shared
//! within the node, as kind's entrypoint does, so the kubelet's and containerd's mounts reach
//! the containers that need them.

use std::ffi::CString;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The node directory's subdirectories the mounts use.
pub const ETC_UPPER: &str = "etc.upper";
pub const ETC_WORK: &str = "etc.work";
pub const VAR_LIB: &str = "var-lib";
pub const VAR_LOG: &str = "var-log";
pub const BIN: &str = "bin";
const CGROUP_HOLD: &str = "cgroup-hold";

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).with_context(|| format!("{s:?} holds a NUL byte"))
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let source = source.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    // SAFETY: every pointer is a valid NUL-terminated string or null, alive for the call.
    let rc = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        bail!(
            "mount {} on {target} ({}): {}",
            source
                .as_ref()
                .map_or("-".into(), |s| s.to_string_lossy().into_owned()),
            fstype
                .as_ref()
                .map_or("bind/change".into(), |s| s.to_string_lossy().into_owned()),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn dir(node_dir: &Path, name: &str) -> Result<String> {
    let path = node_dir.join(name);
    fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Sets up the mounts described above, for the node whose directory is `node_dir`.
pub fn set_up(node_dir: &Path) -> Result<()> {
    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let nosuid_nodev_noexec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        nosuid_nodev_noexec,
        None,
    )?;

    // A sysfs of the node's network namespace hides the host's cgroup mounts under /sys; hold
    // them aside and move them back.
    let hold = dir(node_dir, CGROUP_HOLD)?;
    mount(
        Some("/sys/fs/cgroup"),
        &hold,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        nosuid_nodev_noexec,
        None,
    )?;
    mount(Some(&hold), "/sys/fs/cgroup", None, libc::MS_MOVE, None)?;

    let upper = dir(node_dir, ETC_UPPER)?;
    let work = dir(node_dir, ETC_WORK)?;
    mount(
        Some("overlay"),
        "/etc",
        Some("overlay"),
        0,
        Some(&format!("lowerdir=/etc,upperdir={upper},workdir={work}")),
    )?;
    for (name, target) in [
        (VAR_LIB, "/var/lib"),
        (VAR_LOG, "/var/log"),
        (BIN, "/usr/local/bin"),
    ] {
        let source = dir(node_dir, name)?;
        mount(Some(&source), target, None, libc::MS_BIND, None)?;
    }
    mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=755"),
    )?;
    mount(None, "/", None, libc::MS_REC | libc::MS_SHARED, None)
}
