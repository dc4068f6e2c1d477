//! The one layer every mutating host call passes through.
//!
//! In apply mode a phase's file writes are staged and committed together when the phase ends
//! (atomically per file, durably as one batch, in write order; see [`atomic`]) and journaled
//! (see [`journal`]); reads see staged writes. In plan mode (`--dry-run`) effects are recorded
//! against an overlay, so later reads see earlier writes, and the whole plan is printed at the
//! end without touching the machine.

pub mod atomic;
pub mod journal;
mod plan;
pub mod rooted;

use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;

use atomic::FileWrite;
pub use journal::{Entry, Journal, Origin, Outcome};
pub use plan::{FileKind, Plan};
pub use rooted::{LinkRefused, Root, RootedPath};

/// Performs or records effects.
pub struct Effects {
    /// `Some` in plan mode.
    plan: Option<Mutex<Plan>>,
    /// Apply mode: writes not yet committed, in order.
    staged: Mutex<Vec<(Origin, FileWrite)>>,
    journal: Option<Journal>,
}

/// Bytes staged before a commit is forced, so a phase cannot hold unbounded memory in the host.
const MAX_STAGED: usize = 64 << 20;

impl Effects {
    /// Effects that change the machine, journaled to `journal` if given.
    pub fn apply(journal: Option<Journal>) -> Self {
        Self {
            plan: None,
            staged: Mutex::default(),
            journal,
        }
    }

    /// Effects that are only recorded (`--dry-run`); nothing is journaled, since nothing happens.
    pub fn plan() -> Self {
        Self {
            plan: Some(Mutex::new(Plan::default())),
            staged: Mutex::default(),
            journal: None,
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.plan.is_some()
    }

    /// Record an API mutation (`apply` with the object's YAML, or `delete`) in the plan; in apply
    /// mode the kube capability performs it instead.
    pub fn plan_api_object(&self, phase: &str, action: &str, target: &str, yaml: Option<String>) {
        if let Some(plan) = &self.plan {
            plan.lock()
                .expect("plan lock")
                .record_api_object(phase, action, target, yaml);
        }
    }

    /// Record an action on the node (a service restart) in the plan.
    pub fn plan_node_action(&self, phase: &str, what: &str) {
        if let Some(plan) = &self.plan {
            plan.lock()
                .expect("plan lock")
                .record_node_action(phase, what);
        }
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// The file's contents as this run sees them, or `None` if it does not exist.
    pub fn read(&self, path: &RootedPath) -> Result<Option<Vec<u8>>> {
        if let Some(plan) = &self.plan
            && let Some(planned) = plan.lock().expect("plan lock").lookup(&path.display_path())
        {
            return Ok(planned.map(|file| file.contents.clone()));
        }
        if let Some(staged) = self.staged_contents(path) {
            return Ok(Some(staged));
        }
        path.read()
    }

    /// Whether `path` exists as this run sees it.
    pub fn exists(&self, path: &RootedPath) -> Result<bool> {
        if let Some(plan) = &self.plan
            && let Some(planned) = plan.lock().expect("plan lock").lookup(&path.display_path())
        {
            return Ok(planned.is_some());
        }
        Ok(self.staged_contents(path).is_some() || path.exists()?)
    }

    /// Write `contents` to `path` with permission bits `mode`.
    pub fn write(
        &self,
        origin: &Origin,
        path: &RootedPath,
        contents: Vec<u8>,
        mode: u32,
        kind: FileKind,
    ) -> Result<()> {
        match &self.plan {
            Some(plan) => {
                plan.lock().expect("plan lock").record_write(
                    &origin.phase,
                    path.display_path(),
                    contents,
                    mode,
                    kind,
                );
                Ok(())
            }
            None => {
                let mut staged = self.staged.lock().expect("staged lock");
                staged.push((
                    origin.clone(),
                    FileWrite {
                        target: path.clone(),
                        contents,
                        mode,
                    },
                ));
                let bytes: usize = staged.iter().map(|(_, write)| write.contents.len()).sum();
                drop(staged);
                if bytes > MAX_STAGED {
                    self.commit()?;
                }
                Ok(())
            }
        }
    }

    /// Commit the staged writes: every file atomically, all durably, in the order written.
    pub fn commit(&self) -> Result<()> {
        let staged = std::mem::take(&mut *self.staged.lock().expect("staged lock"));
        if staged.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let (origins, writes): (Vec<Origin>, Vec<FileWrite>) = staged.into_iter().unzip();
        let result = atomic::write_files(&writes);
        if let Some(journal) = &self.journal {
            let detail = result.as_ref().err().map(|e| format!("{e:#}"));
            for (origin, write) in origins.iter().zip(&writes) {
                journal.append(
                    origin,
                    Entry {
                        capability: "fs",
                        operation: "write",
                        target: &write.target.display_path().display().to_string(),
                        outcome: if result.is_ok() {
                            Outcome::Ok
                        } else {
                            Outcome::Error
                        },
                        detail: detail.as_deref(),
                        duration: started.elapsed(),
                    },
                );
            }
        }
        result
    }

    fn staged_contents(&self, path: &RootedPath) -> Option<Vec<u8>> {
        let staged = self.staged.lock().expect("staged lock");
        staged
            .iter()
            .rev()
            .find(|(_, write)| write.target == *path)
            .map(|(_, write)| write.contents.clone())
    }

    /// Create a directory and its parents.
    pub fn create_dir(&self, origin: &Origin, path: &RootedPath, mode: u32) -> Result<()> {
        match &self.plan {
            Some(plan) => {
                if !path.is_dir()? {
                    plan.lock().expect("plan lock").record_dir(
                        &origin.phase,
                        path.display_path(),
                        mode,
                    );
                }
                Ok(())
            }
            None => self.journaled(origin, "create-dir", path, || path.create_dir_all(mode)),
        }
    }

    /// Remove a file; `false` if it did not exist.
    pub fn remove(&self, origin: &Origin, path: &RootedPath) -> Result<bool> {
        let existed = self.read(path)?.is_some();
        match &self.plan {
            Some(plan) if existed => {
                plan.lock()
                    .expect("plan lock")
                    .record_removal(&origin.phase, path.display_path());
            }
            Some(_) => {}
            None if existed => self.journaled(origin, "remove", path, || {
                // What was written before must land before this removal.
                self.commit()?;
                path.remove_file()
            })?,
            None => {}
        }
        Ok(existed)
    }

    /// Journal a capability's denial of a call.
    pub fn record_denial(&self, origin: &Origin, capability: &str, target: &str) {
        if let Some(journal) = &self.journal {
            journal.append(
                origin,
                Entry {
                    capability,
                    operation: "denied",
                    target,
                    outcome: Outcome::Denied,
                    detail: None,
                    duration: std::time::Duration::ZERO,
                },
            );
        }
    }

    fn journaled(
        &self,
        origin: &Origin,
        operation: &str,
        path: &RootedPath,
        effect: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let started = Instant::now();
        let result = effect();
        if let Some(journal) = &self.journal {
            let detail = result.as_ref().err().map(|e| format!("{e:#}"));
            journal.append(
                origin,
                Entry {
                    capability: "fs",
                    operation,
                    target: &path.display_path().display().to_string(),
                    outcome: if result.is_ok() {
                        Outcome::Ok
                    } else {
                        Outcome::Error
                    },
                    detail: detail.as_deref(),
                    duration: started.elapsed(),
                },
            );
        }
        result
    }

    /// The recorded plan, in plan mode.
    pub fn take_plan(&self) -> Option<Plan> {
        self.plan
            .as_ref()
            .map(|plan| std::mem::take(&mut *plan.lock().expect("plan lock")))
    }
}
