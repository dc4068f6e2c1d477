//! The one layer every mutating host call passes through.
//!
//! In apply mode an effect is performed (files atomically, see [`atomic`]); in plan mode
//! (`--dry-run`) it is recorded against an overlay, so later reads see earlier writes, and the
//! whole plan is printed at the end without touching the machine.

pub mod atomic;
mod plan;

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};

pub use plan::{FileKind, Plan};

/// Performs or records effects.
pub struct Effects {
    /// `Some` in plan mode.
    plan: Option<Mutex<Plan>>,
}

impl Effects {
    /// Effects that change the machine.
    pub fn apply() -> Self {
        Self { plan: None }
    }

    /// Effects that are only recorded (`--dry-run`).
    pub fn plan() -> Self {
        Self {
            plan: Some(Mutex::new(Plan::default())),
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.plan.is_some()
    }

    /// The file's contents as this run sees them, or `None` if it does not exist.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        if let Some(plan) = &self.plan
            && let Some(planned) = plan.lock().expect("plan lock").lookup(path)
        {
            return Ok(planned.map(|file| file.contents.clone()));
        }
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Whether `path` exists as this run sees it.
    pub fn exists(&self, path: &Path) -> Result<bool> {
        if let Some(plan) = &self.plan
            && let Some(planned) = plan.lock().expect("plan lock").lookup(path)
        {
            return Ok(planned.is_some());
        }
        Ok(path.exists())
    }

    /// Write `contents` to `path` with permission bits `mode`.
    pub fn write(
        &self,
        phase: &str,
        path: &Path,
        contents: Vec<u8>,
        mode: u32,
        kind: FileKind,
    ) -> Result<()> {
        match &self.plan {
            Some(plan) => {
                plan.lock().expect("plan lock").record_write(
                    phase,
                    path.to_path_buf(),
                    contents,
                    mode,
                    kind,
                );
                Ok(())
            }
            None => atomic::write_file(path, &contents, mode),
        }
    }

    /// Create a directory and its parents.
    pub fn create_dir(&self, phase: &str, path: &Path, mode: u32) -> Result<()> {
        match &self.plan {
            Some(plan) => {
                if !path.is_dir() {
                    plan.lock()
                        .expect("plan lock")
                        .record_dir(phase, path.to_path_buf(), mode);
                }
                Ok(())
            }
            None => atomic::create_dir_all(path, mode),
        }
    }

    /// Remove a file; `false` if it did not exist.
    pub fn remove(&self, phase: &str, path: &Path) -> Result<bool> {
        let existed = self.read(path)?.is_some();
        match &self.plan {
            Some(plan) => {
                if existed {
                    plan.lock()
                        .expect("plan lock")
                        .record_removal(phase, path.to_path_buf());
                }
            }
            None if existed => std::fs::remove_file(path)
                .with_context(|| format!("removing {}", path.display()))?,
            None => {}
        }
        Ok(existed)
    }

    /// The recorded plan, in plan mode.
    pub fn take_plan(&self) -> Option<Plan> {
        self.plan
            .as_ref()
            .map(|plan| std::mem::take(&mut *plan.lock().expect("plan lock")))
    }
}
