//! The journal: one JSON line per effect or denial, appended as it happens, so an operator (or
//! an auditor) can see what each phase did and what it was refused. Never holds secrets: a
//! record names files and objects, not their contents.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::OpenOptions;

use crate::effects::RootedPath;

/// Which phase and component an effect comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub phase: String,
    /// `sha256:<hex>` of the component.
    pub component: String,
}

/// How an effect ended.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Error,
    Denied,
}

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    phase: &'a str,
    component: &'a str,
    capability: &'a str,
    operation: &'a str,
    target: &'a str,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    duration_us: u128,
}

/// An append-only JSON-lines file.
pub struct Journal {
    target: RootedPath,
    file: Mutex<Option<File>>,
}

/// One journal entry, as the capabilities describe it.
pub struct Entry<'a> {
    pub capability: &'a str,
    pub operation: &'a str,
    pub target: &'a str,
    pub outcome: Outcome,
    pub detail: Option<&'a str>,
    pub duration: Duration,
}

impl Journal {
    /// A journal at `target`, created on the first entry, so a command refused before it does
    /// anything leaves nothing behind.
    pub fn new(target: RootedPath) -> Self {
        Self {
            target,
            file: Mutex::new(None),
        }
    }

    fn open(&self) -> Result<File> {
        let context = || format!("opening the journal {}", self.path().display());
        // The journal's directory (kubeadm's /etc/kubernetes/tmp) is private; its parents are not.
        self.target
            .root()
            .join("")
            .create_dir_all(0o700)
            .with_context(context)?;
        let (dir, name) = self
            .target
            .parent(true)
            .with_context(context)?
            .with_context(context)?;
        Ok(dir
            .open_with(
                &name,
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .follow(FollowSymlinks::No),
            )
            .with_context(context)?
            .into_std())
    }

    pub fn path(&self) -> PathBuf {
        self.target.display_path()
    }

    /// Append one entry. A journal that cannot be written is reported, not fatal: the effect
    /// itself has already happened.
    pub fn append(&self, origin: &Origin, entry: Entry<'_>) {
        let record = Record {
            time: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            phase: &origin.phase,
            component: &origin.component,
            capability: entry.capability,
            operation: entry.operation,
            target: entry.target,
            outcome: entry.outcome,
            detail: entry.detail,
            duration_us: entry.duration.as_micros(),
        };
        let mut line = serde_json::to_string(&record).expect("journal records serialise");
        line.push('\n');
        let mut file = self.file.lock().expect("journal lock");
        if file.is_none() {
            match self.open() {
                Ok(opened) => *file = Some(opened),
                Err(e) => {
                    tracing::warn!("could not open the journal: {e:#}");
                    return;
                }
            }
        }
        let Some(file) = file.as_mut() else {
            return;
        };
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(journal = %self.path().display(), "could not append to the journal: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_line_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tmp/journal.jsonl");
        let journal = Journal::new(crate::effects::Root::containing(&path).unwrap());
        let origin = Origin {
            phase: "certs".into(),
            component: "sha256:ab".into(),
        };
        for outcome in [Outcome::Ok, Outcome::Denied] {
            journal.append(
                &origin,
                Entry {
                    capability: "fs",
                    operation: "write",
                    target: "/etc/kubernetes/pki/ca.crt",
                    outcome,
                    detail: None,
                    duration: Duration::from_micros(7),
                },
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["phase"], "certs");
        assert_eq!(lines[0]["component"], "sha256:ab");
        assert_eq!(lines[0]["outcome"], "ok");
        assert_eq!(lines[1]["outcome"], "denied");
        assert_eq!(lines[1]["duration_us"], 7);
    }
}
