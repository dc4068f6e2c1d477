//! Atomic file writes: temporary files beside their targets, fsync, rename in order, fsync of
//! the directories. A run killed at any point leaves each file either old or new, never half
//! written, and files are replaced in the order they were written, so a certificate never lands
//! before its key.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

/// Create `dir` and its missing parents with `mode`.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))
}

/// One file to replace.
pub struct FileWrite {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// Replace `path` with `contents` atomically, with permission bits `mode`.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_files(&[FileWrite {
        path: path.to_path_buf(),
        contents: contents.to_vec(),
        mode,
    }])
}

/// Replace several files atomically each, paying for durability once: every temporary file is
/// written first, all are fsynced together (the filesystem commits them in one journal
/// transaction), then renamed in order, then each directory is fsynced.
pub fn write_files(files: &[FileWrite]) -> Result<()> {
    let mut temps = Vec::with_capacity(files.len());
    let result = stage_all(files, &mut temps).and_then(|()| {
        sync_all(&temps)?;
        for (temp, file) in temps.iter().zip(files) {
            fs::rename(temp, &file.path)
                .with_context(|| format!("writing {}", file.path.display()))?;
        }
        let dirs: BTreeSet<&Path> = files.iter().filter_map(|f| f.path.parent()).collect();
        for dir in dirs {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing directory {}", dir.display()))?;
        }
        Ok(())
    });
    if result.is_err() {
        for temp in &temps {
            let _ = fs::remove_file(temp);
        }
    }
    result
}

fn stage_all(files: &[FileWrite], temps: &mut Vec<PathBuf>) -> Result<()> {
    let dirs: BTreeSet<&Path> = files.iter().filter_map(|f| f.path.parent()).collect();
    for dir in dirs {
        remove_stale_temporaries(dir);
    }
    for file in files {
        let dir = file
            .path
            .parent()
            .with_context(|| format!("{} has no parent directory", file.path.display()))?;
        if !dir.exists() {
            create_dir_all(dir, 0o755)?;
        }
        let name = file
            .path
            .file_name()
            .with_context(|| format!("{} has no file name", file.path.display()))?;
        let temp = dir.join(temporary_name(&name.to_string_lossy()));
        stage(&temp, &file.contents, file.mode)
            .with_context(|| format!("writing {}", file.path.display()))?;
        temps.push(temp);
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
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let writer = name
            .strip_suffix(".tmp")
            .filter(|_| name.starts_with('.'))
            .and_then(|rest| rest.rsplit_once(TEMPORARY_MARK))
            .and_then(|(_, id)| id.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = writer
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn stage(temp: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)?;
    file.write_all(contents)?;
    // The umask may have narrowed `mode`; kubeadm's modes are exact.
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// fsync every file, a few at a time in parallel so their flushes share journal commits.
fn sync_all(paths: &[PathBuf]) -> Result<()> {
    const PARALLEL: usize = 8;
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(paths.len().div_ceil(PARALLEL).max(1))
            .map(|chunk| {
                scope.spawn(move || -> Result<()> {
                    for path in chunk {
                        File::open(path)
                            .and_then(|f| f.sync_all())
                            .with_context(|| format!("syncing {}", path.display()))?;
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
                path: dir.path().join("ok.crt"),
                contents: b"x".to_vec(),
                mode: 0o644,
            },
            FileWrite {
                path: blocker.join("x.crt"),
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
