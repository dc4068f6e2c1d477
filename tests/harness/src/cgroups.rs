//! A node's cgroup root: the kubelet's `--cgroup-root`, a path of its own in every hierarchy so
//! two kubelets on one machine never manage each other's pods (two kubelets on one cgroup root
//! kill each other's containers).
//!
//! The kubelet needs the root to exist in the hierarchies it manages (cpu, cpuacct, cpuset,
//! memory, pids, systemd …); it is made in every mounted one, as kind's entrypoint does, with
//! cpuset's `cpus` and `mems` copied from the parent (an empty cpuset takes no tasks). Removal
//! goes depth first through every hierarchy, cgroup v2 included (runc places containers there
//! too on a hybrid host).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Every mounted cgroup hierarchy: (mount point, is cgroup v2).
fn hierarchies() -> Result<Vec<(PathBuf, bool)>> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(fstype), Some(mount_point)) = (fields.get(dash + 1), fields.get(4)) else {
            continue;
        };
        match *fstype {
            "cgroup" => found.push((PathBuf::from(mount_point), false)),
            "cgroup2" => found.push((PathBuf::from(mount_point), true)),
            _ => {}
        }
    }
    if found.is_empty() {
        bail!("no cgroup hierarchy is mounted (/proc/self/mountinfo)");
    }
    Ok(found)
}

/// Creates `/<name>` in every hierarchy.
pub fn create(name: &str) -> Result<()> {
    for (hierarchy, v2) in hierarchies()? {
        let dir = hierarchy.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        if !v2 && hierarchy.join("cpuset.cpus").exists() {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = fs::read_to_string(hierarchy.join(file))
                    .with_context(|| format!("reading {}", hierarchy.join(file).display()))?;
                fs::write(dir.join(file), value.trim())
                    .with_context(|| format!("writing {}", dir.join(file).display()))?;
            }
        }
    }
    Ok(())
}

/// Whether `/<name>` exists in any hierarchy.
pub fn exists(name: &str) -> Result<bool> {
    Ok(hierarchies()?
        .iter()
        .any(|(hierarchy, _)| hierarchy.join(name).exists()))
}

/// Removes `/<name>` and everything below it from every hierarchy, waiting up to `timeout` for
/// the processes in them to finish exiting.
pub fn remove(name: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for (hierarchy, _) in hierarchies()? {
        let root = hierarchy.join(name);
        loop {
            match remove_depth_first(&root) {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(cgroup = %root.display(), error = %e, "cgroup still busy");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "removing cgroup {} (processes still in it: {})",
                            root.display(),
                            members(&root).join(", ")
                        )
                    });
                }
            }
        }
    }
    Ok(())
}

fn remove_depth_first(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_depth_first(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("rmdir {}", dir.display())),
    }
}

/// The pids in `dir` and below, for an error message.
fn members(dir: &Path) -> Vec<String> {
    let mut pids = Vec::new();
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().map(str::to_string));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(members(&entry.path()));
            }
        }
    }
    pids
}
