//! Filesystem roots as directory handles.
//!
//! A [`Root`] is one directory, opened once (cap-std's [`Dir`]); every path under it is walked
//! from that handle one component at a time, each opened with `O_NOFOLLOW` beneath the one
//! before. So whatever another process does to the tree meanwhile — a directory swapped for a
//! symbolic link between two calls, or during a commit — no read, write, rename, removal or
//! fsync resolves outside the root or through a link: a link anywhere inside a root is refused
//! ([`LinkRefused`]). The root's own path is resolved by the kernel once, when it is opened (the
//! operator decides where a root lives, e.g. /var/lib/etcd on another disk through a link);
//! from then on the handle is the root (DESIGN.md, "Filesystem roots").

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt as _, OpenOptions, OpenOptionsExt as _};

/// Mode of the directories a walk creates on the way to a file (kubeadm's `MkdirAll(…, 0755)`).
pub const PARENT_DIR_MODE: u32 = 0o755;

/// A symbolic link met inside a root: kubeforge follows none there.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is a symbolic link inside the {root} root, and kubeforge follows no link there; replace it with the file or directory itself",
    path.display()
)]
pub struct LinkRefused {
    pub root: String,
    pub path: PathBuf,
}

/// One logical root: its name, where it lives, and its handle once opened.
#[derive(Debug)]
pub struct Root {
    name: String,
    path: PathBuf,
    /// The root this one lies in, and where in it: a nested root is opened through that root's
    /// handle, so it cannot be a link either.
    outer: Option<(Arc<Root>, PathBuf)>,
    /// Roots that lie inside this one (name, path relative to this one): their files are
    /// theirs, not reachable through this root.
    nested: Vec<(String, PathBuf)>,
    handle: Mutex<Option<Arc<Dir>>>,
}

impl Root {
    /// A root of its own at `path`, opened (following links, once) from the machine's paths.
    pub fn new(name: &str, path: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            path,
            outer: None,
            nested: Vec::new(),
            handle: Mutex::default(),
        }
    }

    /// A root at `relative` inside `outer`.
    pub fn nested_in(name: &str, outer: &Arc<Root>, relative: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            path: outer.path.join(&relative),
            outer: Some((outer.clone(), relative)),
            nested: Vec::new(),
            handle: Mutex::default(),
        }
    }

    /// The directory holding `path`, as a root of its own: how the host reaches a file an
    /// operator names (a lockfile beside its config, `--journal FILE`, the component cache).
    pub fn containing(path: &Path) -> Result<RootedPath> {
        let name = path
            .file_name()
            .with_context(|| format!("{} does not name a file", path.display()))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(RootedPath {
            root: Arc::new(Self::new(&dir.display().to_string(), dir)),
            relative: PathBuf::from(name),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn set_nested(&mut self, nested: Vec<(String, PathBuf)>) {
        self.nested = nested;
    }

    /// The root nested in this one that `relative` lies in, if any.
    pub fn nested_root_of(&self, relative: &Path) -> Option<&str> {
        self.nested
            .iter()
            .find(|(_, prefix)| relative.starts_with(prefix))
            .map(|(name, _)| name.as_str())
    }

    /// Open the root if it exists, so later changes to the path above it cannot move it.
    pub fn open_existing(&self) -> Result<()> {
        self.handle(None).map(drop)
    }

    /// The root's handle, opened once; `create` makes a missing root (its parents with
    /// [`PARENT_DIR_MODE`], itself with the given mode). `None` if it does not exist and
    /// `create` is `None`.
    fn handle(&self, create: Option<u32>) -> Result<Option<Arc<Dir>>> {
        let mut handle = self.handle.lock().expect("root handle lock");
        if let Some(dir) = handle.as_ref() {
            return Ok(Some(dir.clone()));
        }
        let opened = match &self.outer {
            Some((outer, relative)) => {
                let Some(parent) = outer.walk(
                    relative.parent().unwrap_or(Path::new("")),
                    create.map(|_| PARENT_DIR_MODE),
                )?
                else {
                    return Ok(None);
                };
                let name = relative
                    .file_name()
                    .with_context(|| format!("the {} root names no directory", self.name))?;
                match outer.open_child(&parent, name, &self.path, create)? {
                    Some(dir) => dir,
                    None => return Ok(None),
                }
            }
            None => match self.open_own(create)? {
                Some(dir) => dir,
                None => return Ok(None),
            },
        };
        let opened = Arc::new(opened);
        *handle = Some(opened.clone());
        Ok(Some(opened))
    }

    /// Open a root of its own from the machine's paths: the one place a link is followed, once.
    fn open_own(&self, create: Option<u32>) -> Result<Option<Dir>> {
        let opened = match Dir::open_ambient_dir(&self.path, ambient_authority()) {
            Ok(dir) => dir,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let Some(mode) = create else {
                    return Ok(None);
                };
                if let Some(parent) = self.path.parent() {
                    create_ambient_dir_all(parent, PARENT_DIR_MODE)?;
                }
                match std::fs::DirBuilder::new().mode(mode).create(&self.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("creating directory {}", self.path.display())
                        });
                    }
                }
                Dir::open_ambient_dir(&self.path, ambient_authority())
                    .with_context(|| format!("opening {}", self.path.display()))?
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("opening the {} root {}", self.name, self.path.display())
                });
            }
        };
        if let Ok(target) = std::fs::read_link(&self.path) {
            tracing::info!(
                root = %self.name,
                path = %self.path.display(),
                target = %target.display(),
                "the root is a symbolic link; followed once, to open it"
            );
        }
        Ok(Some(opened))
    }

    /// The directory `relative` under the root, walked without following links; missing
    /// directories are created with `create`'s mode, or the result is `None`.
    fn walk(&self, relative: &Path, create: Option<u32>) -> Result<Option<Dir>> {
        let Some(root) = self.handle(create.map(|_| PARENT_DIR_MODE))? else {
            return Ok(None);
        };
        let mut dir = root
            .try_clone()
            .with_context(|| format!("opening {}", self.path.display()))?;
        let mut at = self.path.clone();
        for name in names(relative)? {
            at.push(name);
            match self.open_child(&dir, name, &at, create)? {
                Some(next) => dir = next,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// The directory `name` in `dir` (at `at` on the machine), never through a link; made with
    /// `create`'s mode if missing, else `None`.
    fn open_child(
        &self,
        dir: &Dir,
        name: &OsStr,
        at: &Path,
        create: Option<u32>,
    ) -> Result<Option<Dir>> {
        match dir.open_dir_nofollow(name) {
            Ok(child) => Ok(Some(child)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let Some(mode) = create else {
                    return Ok(None);
                };
                match dir.create_dir_with(name, DirBuilder::new().mode(mode)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("creating directory {}", at.display()));
                    }
                }
                dir.open_dir_nofollow(name)
                    .map(Some)
                    .map_err(|e| self.refusal(dir, name, at, e))
            }
            Err(e) => Err(self.refusal(dir, name, at, e)),
        }
    }

    /// The error for a failed open of `name` in `dir`: [`LinkRefused`] if it is a link. A
    /// directory handle is opened `O_PATH | O_NOFOLLOW | O_DIRECTORY`, which answers a link with
    /// `ENOTDIR` (a file gets `ELOOP` from `O_NOFOLLOW`); `ENOTDIR` for what is a directory, or
    /// nothing, when looked at again means a link stood there a moment before.
    fn refusal(&self, dir: &Dir, name: &OsStr, at: &Path, error: std::io::Error) -> anyhow::Error {
        let now = dir.symlink_metadata(name).ok().map(|meta| meta.file_type());
        let is_link = match error
            .raw_os_error()
            .map(rustix::io::Errno::from_raw_os_error)
        {
            Some(rustix::io::Errno::LOOP) => true,
            Some(rustix::io::Errno::NOTDIR) => now.is_none_or(|t| t.is_symlink() || t.is_dir()),
            _ => now.is_some_and(|t| t.is_symlink()),
        };
        if is_link {
            anyhow::Error::new(LinkRefused {
                root: self.name.clone(),
                path: at.to_path_buf(),
            })
        } else {
            anyhow::Error::new(error).context(format!("opening {}", at.display()))
        }
    }

    /// A file or directory under this root.
    pub fn join(self: &Arc<Self>, relative: impl AsRef<Path>) -> RootedPath {
        RootedPath {
            root: self.clone(),
            relative: relative.as_ref().to_path_buf(),
        }
    }
}

/// `relative` as a path under a root: plain names only (`.` dropped, no NUL); `None` for
/// anything that could climb out of a root (`..`, an absolute path).
pub fn within_root(relative: &Path) -> Option<PathBuf> {
    if relative.as_os_str().as_encoded_bytes().contains(&0) {
        return None;
    }
    relative
        .components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// The components of `relative` (see [`within_root`]), or an error naming it.
fn names(relative: &Path) -> Result<Vec<&OsStr>> {
    if within_root(relative).is_none() {
        bail!(
            "{} leaves its root; paths under a root name files inside it",
            relative.display()
        );
    }
    Ok(relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect())
}

/// Create `dir` and its missing parents with `mode`, resolving the path as the kernel does:
/// for the machine paths above the roots.
pub fn create_ambient_dir_all(dir: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))
}

/// A path under a root.
#[derive(Debug, Clone)]
pub struct RootedPath {
    root: Arc<Root>,
    relative: PathBuf,
}

impl PartialEq for RootedPath {
    fn eq(&self, other: &Self) -> bool {
        self.root.path == other.root.path && self.relative == other.relative
    }
}

impl RootedPath {
    pub fn root(&self) -> &Arc<Root> {
        &self.root
    }

    pub fn relative(&self) -> &Path {
        &self.relative
    }

    /// The machine path, for the journal and the plan.
    pub fn display_path(&self) -> PathBuf {
        self.root.path.join(&self.relative)
    }

    /// The machine path, for messages.
    pub fn display(&self) -> String {
        self.display_path().display().to_string()
    }

    /// The same file with another extension (`ca.key` beside `ca.crt`).
    pub fn with_extension(&self, extension: &str) -> Self {
        Self {
            root: self.root.clone(),
            relative: self.relative.with_extension(extension),
        }
    }

    /// The file's name in its directory.
    pub fn file_name(&self) -> Result<OsString> {
        names(&self.relative)?
            .last()
            .map(|name| name.to_os_string())
            .with_context(|| format!("{} names a root, not a file in it", self.display()))
    }

    pub fn extension(&self) -> Option<&OsStr> {
        self.relative.extension()
    }

    /// The directory holding this file (walked, created with [`PARENT_DIR_MODE`] when `create`)
    /// and the file's name in it.
    pub(crate) fn parent(&self, create: bool) -> Result<Option<(Dir, OsString)>> {
        let names = names(&self.relative)?;
        let Some((name, parents)) = names.split_last() else {
            bail!(
                "{} names a root, not a file in it",
                self.display_path().display()
            );
        };
        let parent: PathBuf = parents.iter().collect();
        Ok(self
            .root
            .walk(&parent, create.then_some(PARENT_DIR_MODE))?
            .map(|dir| (dir, name.to_os_string())))
    }

    /// The file's bytes, `None` if it does not exist. A link, or anything but a regular file
    /// (a FIFO would block the run), is refused.
    pub fn read(&self) -> Result<Option<Vec<u8>>> {
        let Some((dir, name)) = self.parent(false)? else {
            return Ok(None);
        };
        let file = match dir.open_with(
            &name,
            OpenOptions::new()
                .read(true)
                .follow(FollowSymlinks::No)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32),
        ) {
            Ok(file) => file.into_std(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.root.refusal(&dir, &name, &self.display_path(), e)),
        };
        read_regular(file, &self.display_path()).map(Some)
    }

    /// Whether the path exists; a link is refused rather than followed.
    pub fn exists(&self) -> Result<bool> {
        if names(&self.relative)?.is_empty() {
            return Ok(self.root.handle(None)?.is_some());
        }
        let Some((dir, name)) = self.parent(false)? else {
            return Ok(false);
        };
        match dir.symlink_metadata(&name) {
            Ok(meta) if meta.file_type().is_symlink() => Err(anyhow::Error::new(LinkRefused {
                root: self.root.name.clone(),
                path: self.display_path(),
            })),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => {
                Err(e).with_context(|| format!("inspecting {}", self.display_path().display()))
            }
        }
    }

    /// Whether the path is an existing directory (walked without links).
    pub fn is_dir(&self) -> Result<bool> {
        Ok(self.root.walk(&self.relative, None)?.is_some())
    }

    /// Refuse the path if an existing component of it is a link: checked when a phase names
    /// the path, so it learns at once; the walk of the actual effect checks again.
    pub fn check_links(&self) -> Result<()> {
        self.exists().map(drop)
    }

    /// Create this directory and its missing parents with `mode`.
    pub fn create_dir_all(&self, mode: u32) -> Result<()> {
        if names(&self.relative)?.is_empty() {
            return self.root.handle(Some(mode)).map(drop);
        }
        self.root.walk(&self.relative, Some(mode)).map(drop)
    }

    /// Remove the file (a link is removed as a link, never followed).
    pub fn remove_file(&self) -> Result<()> {
        let context = || format!("removing {}", self.display_path().display());
        let Some((dir, name)) = self.parent(false)? else {
            return Err(anyhow!("it does not exist")).with_context(context);
        };
        dir.remove_file(&name).with_context(context)
    }
}

/// All of `file`, which must be a regular file.
fn read_regular(mut file: File, display: &Path) -> Result<Vec<u8>> {
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", display.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file; kubeforge reads only regular files there",
            display.display()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", display.display()))?;
    Ok(bytes)
}

/// `fsync` of a directory handle (cap-std opens directories `O_PATH`, which cannot be synced:
/// `.` is reopened for reading first).
pub(crate) fn sync_dir(dir: &Dir, display: &Path) -> Result<()> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .and_then(|fd| rustix::fs::fsync(&fd))
    .map_err(std::io::Error::from);
    fd.with_context(|| format!("syncing directory {}", display.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(dir: &Path) -> Arc<Root> {
        Arc::new(Root::new("test", dir.to_path_buf()))
    }

    #[test]
    fn a_link_anywhere_inside_a_root_is_refused() {
        let scene = tempfile::tempdir().unwrap();
        let inside = scene.path().join("root");
        let outside = scene.path().join("outside");
        std::fs::create_dir_all(inside.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        symlink(&outside, inside.join("link")).unwrap();
        symlink(inside.join("real"), inside.join("inner-link")).unwrap();
        symlink(outside.join("secret"), inside.join("file-link")).unwrap();
        let root = root(&inside);
        for path in ["link/secret", "inner-link/x", "file-link"] {
            let error = root.join(path).read().unwrap_err();
            assert!(
                error.downcast_ref::<LinkRefused>().is_some(),
                "{path}: {error:#}"
            );
        }
        let error = root.join("link/new").create_dir_all(0o700).unwrap_err();
        assert!(error.downcast_ref::<LinkRefused>().is_some(), "{error:#}");
        assert!(!outside.join("new").exists());
        assert!(root.join("link").exists().is_err());
    }

    #[test]
    fn paths_that_climb_out_are_errors() {
        let scene = tempfile::tempdir().unwrap();
        let root = root(scene.path());
        for path in ["../x", "/etc/passwd", "a/../../x"] {
            assert!(root.join(path).read().is_err(), "{path}");
        }
    }

    #[test]
    fn a_fifo_is_not_read() {
        let scene = tempfile::tempdir().unwrap();
        let fifo = scene.path().join("ca.crt");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let error = root(scene.path()).join("ca.crt").read().unwrap_err();
        assert!(
            format!("{error:#}").contains("not a regular file"),
            "{error:#}"
        );
    }

    #[test]
    fn the_handle_stays_on_the_directory_opened_first() {
        let scene = tempfile::tempdir().unwrap();
        let first = scene.path().join("first");
        let second = scene.path().join("second");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let link = scene.path().join("root");
        symlink(&first, &link).unwrap();
        let root = root(&link);
        root.open_existing().unwrap();
        std::fs::remove_file(&link).unwrap();
        symlink(&second, &link).unwrap();
        root.join("sub").create_dir_all(0o755).unwrap();
        assert!(first.join("sub").is_dir());
        assert!(!second.join("sub").exists());
    }
}
