//! Step 2: trust. Whether this host may read a file as a bundle at all.
//!
//! Every level first makes the [`file`] checks (regular file, symlinks resolved, nobody else
//! can rewrite it or its directory, owner root or you). Then:
//!
//! | level    | also requires                                                             |
//! |----------|---------------------------------------------------------------------------|
//! | `any`    | nothing: for development (the default of the CLI and the embedding API)   |
//! | `pinned` | the file's SHA-256 listed under its name in the directory's [`lock`] file |
//! | `signed` | a `<file>.sig` by one of the trusted keys over its SHA-256 and manifest   |
//!
//! `pinned` and `signed` also refuse a symlink that leads out of the plugin directory: what a
//! lock file or a reviewer approved is the directory's content, not whatever a link points at.
//!
//! All of this happens before the metadata step reads a byte of the file as a bundle. Hashes
//! come from the [`digest`] cache, so a warm start costs a `stat` per bundle.
//!
//! The level can be raised at run time ([`TrustPolicy::tighten`]) but never lowered: a
//! session that started `signed` cannot be talked into loading unsigned code.

pub mod digest;
pub mod file;
pub mod lock;
pub mod sign;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{HostError, Refusal, Step};
use digest::{DigestCache, Source};
use file::FileFacts;
use lock::LockFile;
use sign::{PublicKey, SignatureFile};

/// How much a bundle must prove before it is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// File checks only.
    #[default]
    Any,
    /// Listed with its SHA-256 in the directory's `df-plugins.lock`.
    Pinned,
    /// Signed by a trusted key.
    Signed,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Any => "any",
            TrustLevel::Pinned => "pinned",
            TrustLevel::Signed => "signed",
        }
    }

    pub fn parse(text: &str) -> Result<Self, HostError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "any" => Ok(TrustLevel::Any),
            "pinned" => Ok(TrustLevel::Pinned),
            "signed" => Ok(TrustLevel::Signed),
            other => Err(HostError::Usage(format!(
                "unknown trust level '{other}': use any, pinned or signed"
            ))),
        }
    }
}

impl std::fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The trust settings of a host.
#[derive(Clone, Debug)]
pub struct TrustPolicy {
    pub level: TrustLevel,
    /// Keys whose signatures are accepted at [`TrustLevel::Signed`].
    pub trusted_keys: Vec<PublicKey>,
    /// Remembered hashes; shared by every load of this host.
    pub cache: Arc<DigestCache>,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        Self {
            level: TrustLevel::Any,
            trusted_keys: Vec::new(),
            cache: Arc::new(DigestCache::new(None)),
        }
    }
}

impl TrustPolicy {
    /// Raises the level. `any` can become `pinned` or `signed`; nothing can be lowered, and
    /// `pinned` and `signed` do not replace each other (each accepts bundles the other refuses).
    pub fn tighten(&mut self, level: TrustLevel) -> Result<(), HostError> {
        if level == self.level || self.level == TrustLevel::Any {
            self.level = level;
            return Ok(());
        }
        Err(HostError::Usage(format!(
            "the trust level is '{}' and can only be tightened; '{}' would accept bundles it refuses. Restart the host with the level you want",
            self.level, level
        )))
    }
}

/// What the trust step established about one file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrustStatus {
    pub level: TrustLevel,
    /// The file the bundle resolves to.
    pub resolved: PathBuf,
    /// Set when the path is or goes through a symlink.
    pub via_symlink: bool,
    /// The SHA-256 of the file, when the level computed it.
    pub sha256: Option<String>,
    /// Whether the hash came from the cache.
    pub cached: bool,
    /// How the bundle was trusted, in words ("signed by key …", "pinned in …").
    pub detail: String,
    /// The signature's claims, checked against the embedded manifest in the metadata step.
    #[serde(skip)]
    pub signed: Option<sign::SignedFacts>,
    #[serde(skip)]
    pub key: Option<file::FileKey>,
}

impl TrustStatus {
    /// One line for `df_plugins()` and `inspect`.
    pub fn summary(&self) -> String {
        let mut s = format!("{}: {}", self.level, self.detail);
        if self.via_symlink {
            s.push_str(&format!(" (symlink to {})", self.resolved.display()));
        }
        s
    }
}

fn label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Step 2 for `path`, a bundle found in `dir`.
pub fn check(path: &Path, dir: &Path, policy: &TrustPolicy) -> Result<TrustStatus, Refusal> {
    let refuse =
        |reason: String, fix: String| Refusal::new(label(path), path, Step::Trust, reason, fix);
    let facts: FileFacts = file::check(path, dir).map_err(|p| refuse(p.reason, p.fix))?;
    let mut status = TrustStatus {
        level: policy.level,
        resolved: facts.resolved.clone(),
        via_symlink: facts.via_symlink,
        sha256: None,
        cached: false,
        detail: String::new(),
        signed: None,
        key: Some(facts.key),
    };
    if policy.level != TrustLevel::Any && facts.escapes {
        return Err(refuse(
            format!(
                "a symlink leading out of the plugin directory {} (to {}); at trust level '{}' only files inside it are trusted",
                dir.display(),
                facts.resolved.display(),
                policy.level
            ),
            "copy the bundle into the plugin directory instead of linking to it".into(),
        ));
    }
    // The hash is computed only by the levels that need it, through the cache.
    let mut hashed: Option<(String, Source)> = None;
    let outcome = {
        let mut hash = || -> Result<String, Why> {
            let (sha, source) = policy
                .cache
                .sha256(&facts.resolved, facts.key)
                .map_err(|e| (format!("cannot hash the file: {e}"), "try again".to_owned()))?;
            hashed = Some((sha.clone(), source));
            Ok(sha)
        };
        match policy.level {
            TrustLevel::Any => Ok(("not verified (development setting)".to_owned(), None)),
            TrustLevel::Pinned => pinned(path, dir, &mut hash).map(|detail| (detail, None)),
            TrustLevel::Signed => signed(path, &policy.trusted_keys, &mut hash)
                .map(|(detail, facts)| (detail, Some(facts))),
        }
    };
    let (detail, signed) = outcome.map_err(|(reason, fix)| refuse(reason, fix))?;
    if let Some((sha, source)) = hashed {
        status.sha256 = Some(sha);
        status.cached = source == Source::Cached;
    }
    status.detail = detail;
    status.signed = signed;
    Ok(status)
}

/// Why a level refused a file: the reason and the fix.
type Why = (String, String);

/// `pinned`: the file's name and SHA-256 must be listed in `dir`'s lock file.
fn pinned(
    path: &Path,
    dir: &Path,
    hash: &mut dyn FnMut() -> Result<String, Why>,
) -> Result<String, Why> {
    let lock_path = LockFile::path_in(dir);
    // The lock file decides what runs: it gets the same checks as a bundle.
    if lock_path.exists() {
        file::check(&lock_path, dir)
            .map_err(|p| (format!("the lock file: {}", p.reason), p.fix))?;
    }
    let relock = format!("df-plugin-host lock {}", dir.display());
    let lock = LockFile::read(&lock_path)
        .map_err(|e| (e.to_string(), format!("write it with `{relock}`")))?
        .ok_or_else(|| {
            (
                format!(
                    "trust level 'pinned' needs {}, which does not exist",
                    lock_path.display()
                ),
                format!("review the bundles, then run `{relock}`"),
            )
        })?;
    let name = label(path);
    let entry = lock.entry(&name).ok_or_else(|| {
        (
            format!("{name} is not listed in {}", lock_path.display()),
            format!("if you trust it, run `{relock}` again to pin the directory's current bundles"),
        )
    })?;
    let sha = hash()?;
    if sha != entry.sha256 {
        return Err((
            format!(
                "the file's SHA-256 is {sha}, but {} pins {} (bundle {} {}): the file changed since it was pinned",
                lock_path.display(),
                entry.sha256,
                entry.name,
                entry.version
            ),
            "restore the pinned file; if the new one is trusted, run `df-plugin-host lock` again"
                .into(),
        ));
    }
    Ok(format!("pinned in {}", lock_path.display()))
}

/// `signed`: `<file>.sig` must verify with a trusted key and be for this file's SHA-256.
fn signed(
    path: &Path,
    trusted: &[PublicKey],
    hash: &mut dyn FnMut() -> Result<String, Why>,
) -> Result<(String, sign::SignedFacts), Why> {
    let sig_path = SignatureFile::path_for(path);
    let sig = SignatureFile::read(&sig_path)
        .map_err(|e| (e, "sign the bundle again with `df-plugin-host sign`".into()))?
        .ok_or_else(|| {
            (
                format!("unsigned: trust level 'signed' needs {}", sig_path.display()),
                "sign it with `df-plugin-host sign --key KEY FILE`, or use a signed release of the bundle".into(),
            )
        })?;
    if trusted.is_empty() {
        return Err((
            "trust level 'signed' but no trusted keys are configured".into(),
            "add the publisher's public key to `trusted_keys` in df-plugin-host.toml (or --trusted-key)".into(),
        ));
    }
    let key = sig.verify(trusted).map_err(|e| {
        (
            e,
            "get the bundle and its .sig from a publisher you trust, or add their key to trusted_keys".into(),
        )
    })?;
    let sha = hash()?;
    if sha != sig.facts.sha256 {
        return Err((
            format!(
                "the file's SHA-256 is {sha}, but its signature (key {}) is for {}: the file was modified after signing",
                key.id(),
                sig.facts.sha256
            ),
            "replace the file with the signed original".into(),
        ));
    }
    Ok((
        format!("signed by key {} ({})", key.id(), key.origin),
        sig.facts,
    ))
}

/// For signed bundles, after the metadata step: the embedded manifest and the name and version
/// must be the ones the signature vouches for (the file hash already covers them; this makes a
/// signer's mistake, signing facts of another bundle, visible).
pub fn check_signed_metadata(
    status: &TrustStatus,
    meta: &crate::metadata::BundleMetadata,
) -> Result<(), Refusal> {
    let Some(facts) = &status.signed else {
        return Ok(());
    };
    let manifest_sha = digest::hash_bytes(meta.manifest_text.as_bytes());
    let info = &meta.info;
    let mut mismatches = Vec::new();
    if facts.bundle != info.bundle_name {
        mismatches.push(crate::Mismatch::new(
            "bundle",
            &facts.bundle,
            &info.bundle_name,
        ));
    }
    if facts.version != info.bundle_version {
        mismatches.push(crate::Mismatch::new(
            "version",
            &facts.version,
            &info.bundle_version,
        ));
    }
    if facts.manifest_sha256 != manifest_sha {
        mismatches.push(crate::Mismatch::new(
            "manifest sha256",
            &facts.manifest_sha256,
            manifest_sha,
        ));
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        info.bundle_name.clone(),
        &meta.path,
        Step::Trust,
        "the signature vouches for other bundle facts than the file holds",
        "sign the bundle again with `df-plugin-host sign`",
    )
    .with_mismatches(mismatches))
}

/// The facts to sign for a bundle file: its hash, and its manifest's, name and version.
pub fn facts_to_sign(path: &Path) -> Result<sign::SignedFacts, HostError> {
    let meta = crate::metadata::read(path).map_err(|r| HostError::Refused(vec![r]))?;
    Ok(sign::SignedFacts {
        bundle: meta.info.bundle_name.clone(),
        version: meta.info.bundle_version.clone(),
        sha256: digest::hash_file(path).map_err(|source| HostError::Io {
            path: path.to_path_buf(),
            source,
        })?,
        manifest_sha256: digest::hash_bytes(meta.manifest_text.as_bytes()),
    })
}

/// Writes `dir/df-plugins.lock` pinning every bundle in `dir` (files that are not bundles are
/// left out and returned, with why).
pub fn write_lock(dir: &Path) -> Result<(PathBuf, LockFile, Vec<Refusal>), HostError> {
    let mut lock = LockFile {
        version: 1,
        bundles: Vec::new(),
    };
    let mut skipped = Vec::new();
    for path in crate::discover::candidates_at(dir)? {
        match crate::metadata::read(&path) {
            Ok(meta) => lock.bundles.push(lock::LockEntry {
                file: label(&path),
                name: meta.info.bundle_name.clone(),
                version: meta.info.bundle_version.clone(),
                sha256: digest::hash_file(&path).map_err(|source| HostError::Io {
                    path: path.clone(),
                    source,
                })?,
            }),
            Err(r) => skipped.push(r),
        }
    }
    let path = LockFile::path_in(dir);
    std::fs::write(&path, lock.to_text()).map_err(|source| HostError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((path, lock, skipped))
}
