//! The file checks every trust level makes before a byte of the bundle is read: what the path
//! really is (symlinks resolved), that it is a regular file nobody else can rewrite, in a
//! directory nobody else can add files to, owned by root or by the user running the host —
//! the checks `ssh` makes of `authorized_keys`, applied to code about to be mapped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies one version of a file without reading it: if any of these changed, the
/// file may have changed. `ctime` cannot be set by an unprivileged user, so a rewritten file
/// cannot pretend to be the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileKey {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// The facts the file checks establish.
#[derive(Clone, Debug)]
pub struct FileFacts {
    /// The path the bundle was found at.
    pub path: PathBuf,
    /// The file it resolves to (equal to `path` when no symlink is involved).
    pub resolved: PathBuf,
    /// Whether `path` is or goes through a symlink.
    pub via_symlink: bool,
    /// Whether the resolved file lies outside the directory the bundle was found in.
    pub escapes: bool,
    pub key: FileKey,
}

/// Why a file failed the checks, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProblem {
    pub reason: String,
    pub fix: String,
}

fn problem(reason: impl Into<String>, fix: impl Into<String>) -> FileProblem {
    FileProblem {
        reason: reason.into(),
        fix: fix.into(),
    }
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks `path`, a bundle found in `dir`.
pub fn check(path: &Path, dir: &Path) -> Result<FileFacts, FileProblem> {
    let link = std::fs::symlink_metadata(path).map_err(|e| {
        problem(
            format!("cannot read the file: {e}"),
            "check the path and its permissions",
        )
    })?;
    let resolved = std::fs::canonicalize(path).map_err(|e| {
        problem(
            format!("cannot resolve the path: {e} (a dangling symlink?)"),
            "point the symlink at an existing bundle, or remove it",
        )
    })?;
    let meta = std::fs::metadata(&resolved).map_err(|e| {
        problem(
            format!("cannot read {}: {e}", resolved.display()),
            "check the file's permissions",
        )
    })?;
    if !meta.is_file() {
        return Err(problem(
            "not a regular file",
            "point the host at a bundle file (.so / .dylib) or a directory of them",
        ));
    }
    let mode = meta.mode();
    let shown = resolved.display();
    for (bit, who, fix) in [
        (0o002, "world-writable (mode {:o}): anyone", "o-w,g-w"),
        (0o020, "group-writable (mode {:o}): other users", "g-w"),
    ] {
        if mode & bit != 0 {
            let who = who.replace("{:o}", &format!("{:o}", mode & 0o7777));
            return Err(problem(
                format!("{shown} is {who} could replace its code"),
                format!("chmod {fix} '{shown}'"),
            ));
        }
    }
    let me = current_uid();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(problem(
            format!(
                "{shown} is owned by uid {}, neither root nor the user running the host (uid {me})",
                meta.uid()
            ),
            format!("chown {me} '{shown}', or install the bundle as root"),
        ));
    }
    let dir_abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut dirs = vec![dir_abs.clone()];
    if let Some(parent) = resolved.parent()
        && parent != dir_abs
    {
        dirs.push(parent.to_path_buf());
    }
    for d in dirs {
        if let Ok(m) = std::fs::metadata(&d)
            && m.mode() & 0o002 != 0
        {
            return Err(problem(
                format!(
                    "the directory {} is world-writable: anyone could add or swap bundles there",
                    d.display()
                ),
                format!(
                    "chmod o-w '{}', or move the bundles to a directory only you can write",
                    d.display()
                ),
            ));
        }
    }
    Ok(FileFacts {
        path: path.to_path_buf(),
        escapes: !resolved.starts_with(&dir_abs),
        via_symlink: link.file_type().is_symlink() || resolved != dir_abs.join(file_name(path)),
        resolved,
        key: FileKey::of(&meta),
    })
}

fn file_name(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}
