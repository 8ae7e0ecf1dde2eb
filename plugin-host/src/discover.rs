//! Step 1: finding bundle files.
//!
//! Search order, first match of a bundle name wins (like `PATH`):
//! 1. explicit paths given to the builder / `--plugin-dir` (files or directories);
//! 2. the entries of `DF_PLUGIN_PATH` (separated like `PATH`);
//! 3. only when neither of the above names anything: `<exe dir>/plugins`, then the executable's
//!    own directory — where `cargo build` puts the bundles next to `df-plugin-host`. Because that
//!    directory holds unrelated build outputs too, only files named `libdf_plugin_*` are taken
//!    from it; in every other directory each shared library is a candidate.

use std::path::{Path, PathBuf};

use crate::error::{HostError, Result};

/// The environment variable with extra plugin directories.
pub const PLUGIN_PATH_ENV: &str = "DF_PLUGIN_PATH";

/// The file extension of shared libraries on this platform.
pub const LIBRARY_EXTENSION: &str = std::env::consts::DLL_EXTENSION;

/// Where a searched directory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Explicit,
    Environment,
    Default,
}

/// One place to search.
#[derive(Clone, Debug)]
pub struct SearchEntry {
    pub path: PathBuf,
    pub origin: Origin,
}

/// The ordered search path.
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    pub entries: Vec<SearchEntry>,
}

impl SearchPath {
    /// Builds the search path from explicit entries, the environment and the defaults.
    pub fn resolve(explicit: &[PathBuf], use_env: bool) -> Self {
        let mut entries: Vec<SearchEntry> = explicit
            .iter()
            .map(|p| SearchEntry {
                path: p.clone(),
                origin: Origin::Explicit,
            })
            .collect();
        if use_env && let Some(var) = std::env::var_os(PLUGIN_PATH_ENV) {
            entries.extend(
                std::env::split_paths(&var)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|path| SearchEntry {
                        path,
                        origin: Origin::Environment,
                    }),
            );
        }
        if entries.is_empty() {
            entries.extend(default_dirs().into_iter().map(|path| SearchEntry {
                path,
                origin: Origin::Default,
            }));
        }
        Self { entries }
    }

    /// Every candidate bundle file, in search order, without duplicates. An explicit or
    /// environment path that does not exist is an error that lists every path searched.
    pub fn candidates(&self) -> Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in &self.entries {
            let found = match entry.origin {
                Origin::Default if !entry.path.is_dir() => continue,
                Origin::Default if is_exe_dir(&entry.path) => list_dir(&entry.path, |name| {
                    name.starts_with("libdf_plugin_") || name.starts_with("df_plugin_")
                })?,
                _ => candidates_at(&entry.path).map_err(|e| match e {
                    HostError::NotFound { what, .. } => HostError::NotFound {
                        what,
                        searched: self.searched(),
                    },
                    other => other,
                })?,
            };
            for f in found {
                let key = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
                if seen.insert(key) {
                    out.push(f);
                }
            }
        }
        Ok(out)
    }

    /// The searched paths, for "not found" messages.
    pub fn searched(&self) -> Vec<PathBuf> {
        self.entries.iter().map(|e| e.path.clone()).collect()
    }
}

/// The candidates at one path: the file itself, or every shared library in a directory.
pub fn candidates_at(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|_| HostError::NotFound {
        what: format!("no such file or directory: {}", path.display()),
        searched: vec![path.to_path_buf()],
    })?;
    if meta.is_dir() {
        list_dir(path, |_| true)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

fn list_dir(dir: &Path, accept: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let io = |source| HostError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_library = path.extension().is_some_and(|e| e == LIBRARY_EXTENSION);
        if is_library && accept(name) && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn exe_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // Test and example binaries live one level down (`target/debug/deps`, `.../examples`).
    Some(match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps" | "examples") => dir.parent()?.to_path_buf(),
        _ => dir.to_path_buf(),
    })
}

fn is_exe_dir(path: &Path) -> bool {
    exe_dir().is_some_and(|d| d == path)
}

/// The default plugin directories: `<exe dir>/plugins`, then `<exe dir>`.
pub fn default_dirs() -> Vec<PathBuf> {
    exe_dir()
        .map(|d| vec![d.join("plugins"), d])
        .unwrap_or_default()
}
