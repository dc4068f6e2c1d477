//! Where the test env keeps its clusters, and how it tells a live process from a dead one.
//!
//! Every cluster is a directory `<state root>/<cluster>/` holding `cluster.json` (its
//! [`ClusterRecord`]) and one directory per node. The state root is
//! `$KUBEFORGE_TESTENV_STATE`, default `/var/tmp/kubeforge-testenv`. Changes to the records
//! (allocating a cluster's subnet index, adding a node) happen under [`StateLock`], an flock on
//! `<state root>/.lock`, so test processes that create clusters side by side never collide.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Environment variable naming the state root.
pub const STATE_ENV: &str = "KUBEFORGE_TESTENV_STATE";

/// The state root: `$KUBEFORGE_TESTENV_STATE`, else `/var/tmp/kubeforge-testenv`.
pub fn state_root() -> PathBuf {
    std::env::var_os(STATE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/kubeforge-testenv"))
}

/// A process, named so that a recycled pid is not mistaken for it: its pid and its start time
/// (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> Option<ProcessId> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let start_time = after_name.split(' ').nth(19)?.parse().ok()?;
        Some(ProcessId { pid, start_time })
    }

    /// This process.
    pub fn current() -> ProcessId {
        ProcessId::of(std::process::id() as i32).expect("/proc/self/stat is readable")
    }

    /// Whether the process still runs (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let zombie = stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state == "Z");
        !zombie && ProcessId::of(self.pid).is_some_and(|now| now == *self)
    }

    /// `PID:START_TIME`, the form the node and lab processes take on their command line.
    pub fn to_arg(self) -> String {
        format!("{}:{}", self.pid, self.start_time)
    }

    pub fn parse_arg(arg: &str) -> Result<ProcessId> {
        let (pid, start) = arg
            .split_once(':')
            .with_context(|| format!("{arg:?} is not PID:START_TIME"))?;
        Ok(ProcessId {
            pid: pid.parse().with_context(|| format!("pid in {arg:?}"))?,
            start_time: start
                .parse()
                .with_context(|| format!("start time in {arg:?}"))?,
        })
    }
}

/// What the state root records about a cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    /// Picks the cluster's subnet, 10.77.<index>.0/24, and its interface names.
    pub index: u8,
    /// The process whose death ends the cluster (a test), or none (a cluster made by hand,
    /// which lives until `cluster delete`).
    pub owner: Option<ProcessId>,
    /// The process holding the cluster's network namespace (bridge, load balancer).
    pub lab: ProcessId,
    pub nodes: Vec<NodeRecord>,
    /// The test env's bin dir the cluster was made from (its release's kubelet, kubeadm,
    /// kubectl and images); none in a record of an older test env: the default release's.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
}

/// What the state root records about a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub role: crate::Role,
    /// Its place in the cluster: picks its address and pod subnet.
    pub ordinal: u8,
    /// The node's supervisor: PID 1 of its PID namespace, seen from the host.
    pub supervisor: ProcessId,
    /// The kubelet's cgroup root, the same path in every hierarchy.
    pub cgroup: String,
}

impl ClusterRecord {
    pub fn dir(name: &str) -> PathBuf {
        state_root().join(name)
    }

    fn path(name: &str) -> PathBuf {
        Self::dir(name).join("cluster.json")
    }

    pub fn load(name: &str) -> Result<Option<ClusterRecord>> {
        let path = Self::path(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Every cluster directory's name, recorded or not (a create killed before it wrote its
    /// record leaves a directory without one).
    pub fn names() -> Result<Vec<String>> {
        let root = state_root();
        let entries = match fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", root.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() && !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Writes the record atomically (temporary file, fsync, rename).
    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.name);
        let tmp = path.with_extension("json.tmp");
        let mut file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }

    /// Whether the cluster is in use: its lab runs and its owner (if any) does too.
    pub fn alive(&self) -> bool {
        self.lab.alive() && self.owner.is_none_or(|owner| owner.alive())
    }
}

/// An exclusive flock on `<state root>/.lock`, released when dropped.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    pub fn acquire() -> Result<StateLock> {
        Self::lock(libc::LOCK_EX).map(|lock| lock.expect("a blocking flock returns the lock"))
    }

    /// The lock if nobody holds it now.
    pub fn try_acquire() -> Result<Option<StateLock>> {
        Self::lock(libc::LOCK_EX | libc::LOCK_NB)
    }

    fn lock(operation: libc::c_int) -> Result<Option<StateLock>> {
        let root = state_root();
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let path = root.join(".lock");
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            bail!("locking {}: {error}", path.display());
        }
        Ok(Some(StateLock { _file: file }))
    }
}

/// A name the test env accepts for a cluster or node: it becomes a hostname, a directory and
/// part of a cgroup path.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "{what} name {name:?}: use 1-40 lowercase letters, digits and '-', not starting or ending with '-'"
        );
    }
    Ok(())
}

/// Removes `path` and everything under it; a path that does not exist is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}
