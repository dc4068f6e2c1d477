//! The machine-wide kernel settings a cluster changes, put back when the last cluster goes.
//!
//! The kubelet writes global sysctls when it starts (its `setupKernelTunables`:
//! vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.panic=10, kernel.panic_on_oops=1,
//! kernel.keys.root_maxkeys, kernel.keys.root_maxbytes), and a machine running several kubelets
//! needs more inotify instances than the default 128 (kind advises 512). Before the first
//! cluster starts, their values are saved in `<state root>/sysctls.json` and inotify is raised;
//! when no cluster is left, the saved values are written back and the file removed. Both run
//! under the state lock, so clusters made and removed side by side count correctly, and a
//! cluster that died with its owner is counted out by the next create or delete.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::state::{ClusterRecord, state_root};

/// Those the kubelet sets, and the inotify limits raised for the clusters' lifetime (with the
/// value they are raised to).
const KUBELET: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];
const RAISED: [(&str, u64); 2] = [
    ("fs/inotify/max_user_instances", 512),
    ("fs/inotify/max_user_watches", 524288),
];

fn saved_path() -> PathBuf {
    state_root().join("sysctls.json")
}

fn read(name: &str) -> Result<String> {
    let path = format!("/proc/sys/{name}");
    Ok(fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

fn write(name: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{name}");
    fs::write(&path, value).with_context(|| format!("writing {value} to {path}"))
}

/// Saves the settings (unless saved already) and raises inotify. Call under the state lock,
/// before the cluster's first kubelet starts.
pub fn acquire() -> Result<()> {
    let path = saved_path();
    if !path.exists() {
        let mut saved = BTreeMap::new();
        for name in KUBELET.iter().chain(RAISED.iter().map(|(n, _)| n)) {
            saved.insert(name.to_string(), read(name)?);
        }
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&saved)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    }
    for (name, value) in RAISED {
        if read(name)?.parse::<u64>().unwrap_or(0) < value {
            write(name, &value.to_string())?;
        }
    }
    Ok(())
}

/// When no cluster but `leaving` is alive, writes the saved settings back and forgets them.
/// Call under the state lock.
pub fn release_unless_in_use(leaving: &str) -> Result<()> {
    let path = saved_path();
    if !path.exists() {
        return Ok(());
    }
    for name in ClusterRecord::names()? {
        if name != leaving && ClusterRecord::load(&name)?.is_some_and(|c| c.alive()) {
            return Ok(());
        }
    }
    let saved: BTreeMap<String, String> = serde_json::from_slice(
        &fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    for (name, value) in &saved {
        if read(name)? != *value {
            write(name, value)?;
        }
    }
    fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))
}
