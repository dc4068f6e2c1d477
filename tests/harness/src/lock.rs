//! A cross-process lock for tests that use the control plane's fixed ports
//! (6443, 2379, 2380, 2381, 10257, 10259, and the kubelet emulation's
//! healthz 10248): they run one at a time, across test binaries and
//! `cargo test` processes.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Ports a kubeadm-style control plane binds on loopback, and the kubelet
/// healthz port the stand-in's kubelet serves by default.
pub const CONTROL_PLANE_PORTS: [u16; 7] = [6443, 2379, 2380, 2381, 10257, 10259, 10248];

/// Held while a test owns the fixed control-plane ports. Released on drop
/// (the kernel also releases it if the process dies).
#[derive(Debug)]
pub struct ControlPlaneLock {
    _file: File,
    path: PathBuf,
}

impl ControlPlaneLock {
    /// The lock file: `$TMPDIR/kubeforge-testenv-control-plane.lock`.
    pub fn path() -> PathBuf {
        std::env::temp_dir().join("kubeforge-testenv-control-plane.lock")
    }

    fn open() -> Result<(File, PathBuf)> {
        let path = Self::path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        Ok((file, path))
    }

    /// Blocks until the lock is free (flock, exclusive).
    pub fn acquire() -> Result<ControlPlaneLock> {
        let (file, path) = Self::open()?;
        tracing::debug!(path = %path.display(), "waiting for the control-plane lock");
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        tracing::debug!(path = %path.display(), "control-plane lock acquired");
        Ok(ControlPlaneLock { _file: file, path })
    }

    /// Like [`acquire`](Self::acquire) but gives up after `timeout`.
    pub fn acquire_timeout(timeout: Duration) -> Result<ControlPlaneLock> {
        let (file, path) = Self::open()?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ControlPlaneLock { _file: file, path }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "timed out after {timeout:?} waiting for the control-plane lock {} \
                     (another test or `kubeforge-testenv run` holds the fixed ports)",
                    path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Non-blocking attempt; `None` when another process holds the lock.
    pub fn try_acquire() -> Result<Option<ControlPlaneLock>> {
        let (file, path) = Self::open()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ControlPlaneLock { _file: file, path })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    pub fn lock_path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Ports from [`CONTROL_PLANE_PORTS`] that something already listens on
/// (on 127.0.0.1). Useful for a clear error before starting a control plane.
pub fn busy_control_plane_ports() -> Vec<u16> {
    CONTROL_PLANE_PORTS
        .into_iter()
        .filter(|p| {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], *p)),
                Duration::from_millis(200),
            )
            .is_ok()
        })
        .collect()
}
