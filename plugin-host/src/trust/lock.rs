//! Lock files: the `pinned` trust level's list of the bundles a directory may load.
//!
//! Like `Cargo.lock`, `df-plugins.lock` sits in the directory it describes and is written by a
//! command (`df-plugin-host lock DIR`), then reviewed and committed or deployed with the
//! bundles. Each entry pins a file name to the SHA-256 of its bytes; a bundle whose file name is
//! not listed, or whose bytes differ, is refused before its metadata is read.

use std::path::{Path, PathBuf};

use crate::error::{HostError, Result};

/// The lock file's name inside a plugin directory.
pub const LOCK_FILE: &str = "df-plugins.lock";

/// One pinned bundle.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockEntry {
    /// The file name inside the directory.
    pub file: String,
    /// The bundle's name and version, for the reader (the hash is what is checked).
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// A parsed `df-plugins.lock`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockFile {
    pub version: u32,
    #[serde(default, rename = "bundle")]
    pub bundles: Vec<LockEntry>,
}

impl LockFile {
    /// The lock file of `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(LOCK_FILE)
    }

    /// Reads a lock file; a missing one is `Ok(None)`.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(HostError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let lock: LockFile = toml::from_str(&text).map_err(|e| {
            HostError::Usage(format!(
                "{} is not a valid lock file: {e}; write it again with `df-plugin-host lock`",
                path.display()
            ))
        })?;
        if lock.version != 1 {
            return Err(HostError::Usage(format!(
                "{} has lock format version {}; this host reads version 1",
                path.display(),
                lock.version
            )));
        }
        Ok(Some(lock))
    }

    /// The entry for a file name.
    pub fn entry(&self, file: &str) -> Option<&LockEntry> {
        self.bundles.iter().find(|e| e.file == file)
    }

    /// The file's text, with a header saying what it is.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# df-plugins.lock: the bundles this directory may load under `trust = \"pinned\"`.\n\
             # Written by `df-plugin-host lock`; review it like Cargo.lock. A bundle that is not\n\
             # listed here, or whose bytes no longer match, is refused before it is read.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_round_trips_and_bad_ones_say_how_to_fix_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = LockFile::path_in(dir.path());
        assert_eq!(
            LockFile::read(&path).unwrap(),
            None,
            "missing is not an error"
        );
        let lock = LockFile {
            version: 1,
            bundles: vec![LockEntry {
                file: "libx.so".into(),
                name: "x".into(),
                version: "1.0.0".into(),
                sha256: "ab".repeat(32),
            }],
        };
        std::fs::write(&path, lock.to_text()).unwrap();
        let read = LockFile::read(&path).unwrap().unwrap();
        assert_eq!(read, lock);
        assert_eq!(read.entry("libx.so").unwrap().name, "x");
        assert!(read.entry("liby.so").is_none());

        std::fs::write(&path, "version = 1\n[[bundle]]\nfile = 3\n").unwrap();
        let e = LockFile::read(&path).unwrap_err().to_string();
        assert!(
            e.contains("not a valid lock file") && e.contains("df-plugin-host lock"),
            "{e}"
        );
        std::fs::write(&path, "version = 2\n").unwrap();
        let e = LockFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("lock format version 2"), "{e}");
    }
}
