//! SHA-256 of bundle files, computed once per version of a file.
//!
//! DuckDB hashes every extension in full on every `LOAD`. Here a digest is remembered under
//! the file's [`FileKey`] (device, inode, size, mtime, ctime): while none of those changed the
//! bytes cannot have changed without root, so a warm start costs one `stat`, not a read of a
//! 100 MB file. A changed file has a new key and is hashed again.
//!
//! The cache lives in memory for the process and, unless disabled, in a JSON file
//! (`digests.json` in the cache directory) so that the next process starts warm. The file is
//! only trusted when it passes the same checks as a bundle (a regular file owned by this user
//! or root, writable by nobody else); otherwise it is ignored and rebuilt.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::file::FileKey;

/// The environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "DF_PLUGIN_HOST_CACHE_DIR";
const CACHE_FILE: &str = "digests.json";

/// The default cache directory: `$DF_PLUGIN_HOST_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/df-plugin-host`, else `$HOME/.cache/df-plugin-host`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_DIR_ENV) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("df-plugin-host"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("df-plugin-host"))
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    path: PathBuf,
    key: FileKey,
    sha256: String,
}

/// How a digest was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Read from the cache: the file's key was unchanged.
    Cached,
    /// Computed by reading the whole file.
    Computed,
}

/// A digest cache; see the module docs.
#[derive(Debug, Default)]
pub struct DigestCache {
    dir: Option<PathBuf>,
    entries: Mutex<HashMap<PathBuf, Entry>>,
}

impl DigestCache {
    /// A cache that also persists to `dir` (`None`: memory only).
    pub fn new(dir: Option<PathBuf>) -> Self {
        let entries = dir
            .as_deref()
            .and_then(load_file)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect();
        Self {
            dir,
            entries: Mutex::new(entries),
        }
    }

    /// The directory the cache persists to, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The SHA-256 (lower-case hex) of the file at `resolved` whose current key is `key`.
    pub fn sha256(&self, resolved: &Path, key: FileKey) -> std::io::Result<(String, Source)> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get(resolved)
            && e.key == key
        {
            return Ok((e.sha256.clone(), Source::Cached));
        }
        drop(entries);
        let sha256 = hash_file(resolved)?;
        // The file must not have changed while it was read.
        let after = FileKey::of(&std::fs::metadata(resolved)?);
        if after != key {
            return Err(std::io::Error::other(
                "the file changed while it was being hashed",
            ));
        }
        entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(
            resolved.to_path_buf(),
            Entry {
                path: resolved.to_path_buf(),
                key,
                sha256: sha256.clone(),
            },
        );
        // Forget files that are gone, so the cache does not grow with every temporary copy.
        entries.retain(|path, _| path.exists());
        if let Some(dir) = &self.dir {
            // A cache that cannot be written only costs the next process a re-hash.
            if let Err(e) = store_file(dir, entries.values()) {
                tracing::debug!("cannot write the digest cache in {}: {e}", dir.display());
            }
        }
        Ok((sha256, Source::Computed))
    }
}

/// The SHA-256 of a whole file, lower-case hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The SHA-256 of some bytes, lower-case hex.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn load_file(dir: &Path) -> Option<Vec<Entry>> {
    let path = dir.join(CACHE_FILE);
    let meta = std::fs::metadata(&path).ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.mode() & 0o022 != 0 || (meta.uid() != me && meta.uid() != 0) {
        tracing::warn!(
            "ignoring the digest cache {}: it must be a file owned by you and writable by nobody else",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    serde_json::from_str(&text).ok()
}

fn store_file<'a>(dir: &Path, entries: impl Iterator<Item = &'a Entry>) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let list: Vec<&Entry> = entries.collect();
    let text = serde_json::to_string_pretty(&list).map_err(std::io::Error::other)?;
    // Write a private temporary file and rename it over the cache: readers never see half.
    let tmp = dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
    }
    std::fs::rename(&tmp, dir.join(CACHE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_hashed_again_and_an_unchanged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.so");
        std::fs::write(&file, b"one").unwrap();
        let cache = DigestCache::new(Some(dir.path().join("cache")));
        let key = FileKey::of(&std::fs::metadata(&file).unwrap());
        let (first, src) = cache.sha256(&file, key).unwrap();
        assert_eq!(src, Source::Computed);
        assert_eq!(first, hash_bytes(b"one"));
        assert_eq!(cache.sha256(&file, key).unwrap().1, Source::Cached);

        // A second cache (the next process) starts warm from the file.
        let warm = DigestCache::new(Some(dir.path().join("cache")));
        assert_eq!(warm.sha256(&file, key).unwrap(), (first, Source::Cached));

        // A different size: two writes within one timer tick can share an mtime.
        std::fs::write(&file, b"three").unwrap();
        let key2 = FileKey::of(&std::fs::metadata(&file).unwrap());
        assert_ne!(key, key2);
        assert_eq!(
            warm.sha256(&file, key2).unwrap(),
            (hash_bytes(b"three"), Source::Computed)
        );
    }

    #[test]
    fn a_cache_file_others_can_write_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.so");
        std::fs::write(&file, b"one").unwrap();
        let key = FileKey::of(&std::fs::metadata(&file).unwrap());
        let cache_dir = dir.path().join("cache");
        DigestCache::new(Some(cache_dir.clone()))
            .sha256(&file, key)
            .unwrap();
        let cache_file = cache_dir.join(CACHE_FILE);
        std::fs::set_permissions(&cache_file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let cache = DigestCache::new(Some(cache_dir));
        assert_eq!(cache.sha256(&file, key).unwrap().1, Source::Computed);
    }
}
