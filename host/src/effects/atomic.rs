//! Atomic file writes: temporary files beside their targets, fsync, rename in order, fsync of
//! the directories. A run killed at any point leaves each file either old or new, never half
//! written, and files are replaced in the order they were written, so a certificate never lands
//! before its key.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt as _};

use crate::effects::rooted::{self, Root, RootedPath};

/// One file to replace.
pub struct FileWrite {
    pub target: RootedPath,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// Replace the file at the machine path `path` atomically, with permission bits `mode`: for
/// files the host keeps outside the roots (the lockfile beside its config, the component cache),
/// written through a handle on their directory all the same.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_files(&[FileWrite {
        target: Root::containing(path)?,
        contents: contents.to_vec(),
        mode,
    }])
}

/// A directory the batch writes into, opened once through its root's handle.
struct TargetDir {
    display: PathBuf,
    dir: Dir,
}

/// A written, not yet renamed, temporary file.
struct Staged {
    dir: usize,
    temporary: OsString,
    name: OsString,
    file: File,
}

/// Replace several files atomically each, paying for durability once: every temporary file is
/// written first, all are fsynced together (the filesystem commits them in one journal
/// transaction), then renamed in order, then each directory is fsynced. Every step is relative
/// to a directory handle walked from the file's root without following links, so a directory
/// swapped for a link meanwhile cannot redirect a write.
pub fn write_files(files: &[FileWrite]) -> Result<()> {
    let mut dirs: Vec<TargetDir> = Vec::new();
    let mut staged: Vec<Staged> = Vec::with_capacity(files.len());
    let result = stage_all(files, &mut dirs, &mut staged).and_then(|()| {
        sync_all(&staged, files)?;
        for (stage, file) in staged.iter().zip(files) {
            let dir = &dirs[stage.dir].dir;
            dir.rename(&stage.temporary, dir, &stage.name)
                .with_context(|| format!("writing {}", file.target.display_path().display()))?;
        }
        dirs.iter()
            .try_for_each(|dir| rooted::sync_dir(&dir.dir, &dir.display))
    });
    if result.is_err() {
        for stage in &staged {
            let _ = dirs[stage.dir].dir.remove_file(&stage.temporary);
        }
    }
    result
}

fn stage_all(
    files: &[FileWrite],
    dirs: &mut Vec<TargetDir>,
    staged: &mut Vec<Staged>,
) -> Result<()> {
    for file in files {
        let display = file.target.display_path();
        let context = || format!("writing {}", display.display());
        let parent = display.parent().unwrap_or(Path::new("/")).to_path_buf();
        let (index, name) = match dirs.iter().position(|d| d.display == parent) {
            Some(index) => (index, file.target.file_name().with_context(context)?),
            None => {
                let Some((dir, name)) = file.target.parent(true).with_context(context)? else {
                    return Err(anyhow!("its directory could not be created"))
                        .with_context(context);
                };
                remove_stale_temporaries(&dir);
                dirs.push(TargetDir {
                    display: parent,
                    dir,
                });
                (dirs.len() - 1, name)
            }
        };
        let temporary = OsString::from(temporary_name(&name.to_string_lossy()));
        let written =
            stage(&dirs[index].dir, &temporary, &file.contents, file.mode).with_context(context)?;
        staged.push(Staged {
            dir: index,
            temporary,
            name,
            file: written,
        });
    }
    Ok(())
}

/// The name of the temporary file for `name`, written by this process.
fn temporary_name(name: &str) -> String {
    format!(
        ".{name}.{TEMPORARY_MARK}{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    )
}

const TEMPORARY_MARK: &str = "kubeforge-";

/// Remove temporary files that a killed kubeforge left in `dir`: those whose writer process is
/// gone. A live writer's files are left alone.
fn remove_stale_temporaries(dir: &Dir) {
    let Ok(entries) = dir.entries() else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        let writer = text
            .strip_suffix(".tmp")
            .filter(|_| text.starts_with('.'))
            .and_then(|rest| rest.rsplit_once(TEMPORARY_MARK))
            .and_then(|(_, id)| id.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = writer
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = dir.remove_file(&name);
        }
    }
}

/// Write a new temporary file `temporary` in `dir` (never an existing file, never through a
/// link: `O_CREAT | O_EXCL`).
fn stage(dir: &Dir, temporary: &OsStr, contents: &[u8], mode: u32) -> std::io::Result<File> {
    let mut file = dir
        .open_with(
            temporary,
            OpenOptions::new().write(true).create_new(true).mode(mode),
        )?
        .into_std();
    file.write_all(contents)?;
    // The umask may have narrowed `mode`; kubeadm's modes are exact.
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// fsync every staged file, a few at a time in parallel so their flushes share journal commits.
fn sync_all(staged: &[Staged], files: &[FileWrite]) -> Result<()> {
    const PARALLEL: usize = 8;
    let chunk = staged.len().div_ceil(PARALLEL).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = staged
            .chunks(chunk)
            .zip(files.chunks(chunk))
            .map(|(stages, files)| {
                scope.spawn(move || -> Result<()> {
                    for (stage, file) in stages.iter().zip(files) {
                        stage.file.sync_all().with_context(|| {
                            format!("syncing {}", file.target.display_path().display())
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .map_err(|_| anyhow!("a sync thread panicked"))?
        })
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.key");
        write_file(&path, b"one", 0o600).unwrap();
        write_file(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files remain");
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // No process can have a pid above 2^22 (the largest pid_max); ours is alive.
        let stale = dir.path().join(".ca.crt.kubeforge-4194305-0000abcd.tmp");
        let live = dir.path().join(format!(
            ".ca.key.kubeforge-{}-0000abcd.tmp",
            std::process::id()
        ));
        fs::write(&stale, b"").unwrap();
        fs::write(&live, b"").unwrap();
        write_file(&dir.path().join("ca.crt"), b"x", 0o644).unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn a_failed_batch_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, b"").unwrap();
        let files = [
            FileWrite {
                target: Root::containing(&dir.path().join("ok.crt")).unwrap(),
                contents: b"x".to_vec(),
                mode: 0o644,
            },
            FileWrite {
                target: Root::containing(&blocker.join("x.crt")).unwrap(),
                contents: b"y".to_vec(),
                mode: 0o644,
            },
        ];
        assert!(write_files(&files).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("not-a-dir")]);
    }
}
