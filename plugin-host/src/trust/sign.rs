//! Signatures: the `signed` trust level.
//!
//! A publisher signs a bundle with an ed25519 key; the signature covers the SHA-256 of the
//! whole file and the SHA-256 of its embedded manifest, with the bundle's name and version, in
//! a domain-separated message (so a signature cannot be replayed as anything else). It is kept
//! next to the bundle as `<file>.sig`, a small TOML file, so the bundle itself stays untouched
//! and its hash stable. Hosts trust a set of public keys (`trusted_keys` in the config).
//!
//! Key files are one line of text, like minisign's and ssh's:
//! `df-plugin-public-key ed25519 <hex>` and `df-plugin-secret-key ed25519 <hex>` (0600).

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::error::{HostError, Result};

const PUBLIC_TAG: &str = "df-plugin-public-key ed25519";
const SECRET_TAG: &str = "df-plugin-secret-key ed25519";
/// The signature file format this host writes and reads.
pub const SIGNATURE_FORMAT: &str = "df-plugin-signature-v1";

/// A trusted public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Where it came from, for messages.
    pub origin: String,
}

impl PublicKey {
    /// The key as hex, as written in key and signature files.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    /// The first 16 hex digits, a short name for messages.
    pub fn id(&self) -> String {
        self.to_hex()[..16].to_owned()
    }

    /// Parses `df-plugin-public-key ed25519 <hex>` (or the bare hex).
    pub fn parse(text: &str, origin: impl Into<String>) -> Result<Self> {
        let origin = origin.into();
        let hex_part = text.trim().strip_prefix(PUBLIC_TAG).unwrap_or(text).trim();
        let bytes: [u8; 32] = hex::decode(hex_part)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                HostError::Usage(format!(
                    "{origin}: not a public key: expected '{PUBLIC_TAG} <64 hex digits>' as written by `df-plugin-host keygen`"
                ))
            })?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| {
            HostError::Usage(format!("{origin}: not a valid ed25519 public key: {e}"))
        })?;
        Ok(Self { key, origin })
    }

    /// Reads a `.pub` file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| HostError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path.display().to_string())
    }
}

/// A signing key, for `df-plugin-host sign`.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            HostError::Usage(format!("the system's random number generator failed: {e}"))
        })?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.0.verifying_key(),
            origin: "generated".into(),
        }
    }

    /// Reads a secret key file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| HostError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bytes: [u8; 32] = text
            .trim()
            .strip_prefix(SECRET_TAG)
            .and_then(|h| hex::decode(h.trim()).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                HostError::Usage(format!(
                    "{}: not a secret key written by `df-plugin-host keygen`",
                    path.display()
                ))
            })?;
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }

    /// Writes `<path>` (the secret key, mode 0600, never overwritten) and `<path>.pub`.
    pub fn write(&self, path: &Path) -> Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| HostError::Io { path, source }
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io(path))?;
        writeln!(f, "{SECRET_TAG} {}", hex::encode(self.0.to_bytes())).map_err(io(path))?;
        let public = public_path(path);
        std::fs::write(
            &public,
            format!("{PUBLIC_TAG} {}\n", self.public().to_hex()),
        )
        .map_err(io(&public))?;
        Ok(public)
    }

    /// Signs a bundle's facts.
    pub fn sign(&self, facts: SignedFacts) -> SignatureFile {
        let signature = self.0.sign(facts.message().as_bytes());
        SignatureFile {
            format: SIGNATURE_FORMAT.into(),
            key: self.public().to_hex(),
            signature: hex::encode(signature.to_bytes()),
            facts,
        }
    }
}

/// `<secret key path>.pub`.
pub fn public_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// What a signature vouches for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedFacts {
    pub bundle: String,
    pub version: String,
    pub sha256: String,
    pub manifest_sha256: String,
}

impl SignedFacts {
    /// The exact bytes signed: a format tag and one `key value` line per fact.
    fn message(&self) -> String {
        format!(
            "{SIGNATURE_FORMAT}\nbundle {}\nversion {}\nsha256 {}\nmanifest-sha256 {}\n",
            self.bundle, self.version, self.sha256, self.manifest_sha256
        )
    }
}

/// A `<bundle>.sig` file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureFile {
    pub format: String,
    /// The signer's public key, hex.
    pub key: String,
    /// The ed25519 signature, hex.
    pub signature: String,
    #[serde(flatten)]
    pub facts: SignedFacts,
}

impl SignatureFile {
    /// `<bundle file>.sig`.
    pub fn path_for(bundle: &Path) -> PathBuf {
        let mut name = bundle.as_os_str().to_owned();
        name.push(".sig");
        PathBuf::from(name)
    }

    pub fn read(path: &Path) -> std::result::Result<Option<Self>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let sig: SignatureFile = toml::from_str(&text)
            .map_err(|e| format!("{} is not a signature file: {e}", path.display()))?;
        if sig.format != SIGNATURE_FORMAT {
            return Err(format!(
                "{} has format '{}'; this host reads '{SIGNATURE_FORMAT}'",
                path.display(),
                sig.format
            ));
        }
        Ok(Some(sig))
    }

    pub fn to_text(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Verifies the signature against the trusted keys. Returns the key that signed.
    pub fn verify<'k>(
        &self,
        trusted: &'k [PublicKey],
    ) -> std::result::Result<&'k PublicKey, String> {
        let Some(key) = trusted.iter().find(|k| k.to_hex() == self.key) else {
            let short = self.key.get(..16).unwrap_or(&self.key);
            return Err(format!(
                "signed by key {short}…, which is not one of the {} trusted key(s)",
                trusted.len()
            ));
        };
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the signature is not 64 bytes of hex")?;
        key.key
            .verify(self.facts.message().as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| {
                format!(
                    "the signature does not verify with key {} ({}): the signature file was altered or made for other facts",
                    key.id(),
                    key.origin
                )
            })?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> SignedFacts {
        SignedFacts {
            bundle: "udfs".into(),
            version: "0.1.0".into(),
            sha256: "aa".repeat(32),
            manifest_sha256: "bb".repeat(32),
        }
    }

    #[test]
    fn a_signature_verifies_only_with_its_key_and_its_facts() {
        let key = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();
        let sig = key.sign(facts());
        let parsed: SignatureFile = toml::from_str(&sig.to_text()).unwrap();
        assert_eq!(parsed, sig);
        assert!(parsed.verify(&[key.public()]).is_ok());
        let err = parsed.verify(&[other.public()]).unwrap_err();
        assert!(err.contains("not one of the 1 trusted key(s)"), "{err}");

        let mut altered = parsed.clone();
        altered.facts.sha256 = "cc".repeat(32);
        let err = altered.verify(&[key.public()]).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
    }

    #[test]
    fn unreadable_signature_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.so.sig");
        assert_eq!(
            SignatureFile::read(&path).unwrap(),
            None,
            "missing: unsigned"
        );
        std::fs::write(&path, "not toml at all [").unwrap();
        let e = SignatureFile::read(&path).unwrap_err();
        assert!(e.contains("b.so.sig is not a signature file"), "{e}");
        let key = SecretKey::generate().unwrap();
        let mut sig = key.sign(facts());
        sig.format = "df-plugin-signature-v9".into();
        std::fs::write(&path, sig.to_text()).unwrap();
        let e = SignatureFile::read(&path).unwrap_err();
        assert!(
            e.contains("this host reads 'df-plugin-signature-v1'"),
            "{e}"
        );
        sig.format = SIGNATURE_FORMAT.into();
        sig.signature = "zz".into();
        let e = sig.verify(&[key.public()]).unwrap_err();
        assert!(e.contains("not 64 bytes of hex"), "{e}");
    }

    #[test]
    fn keys_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.key");
        let key = SecretKey::generate().unwrap();
        let public = key.write(&path).unwrap();
        assert_eq!(SecretKey::read(&path).unwrap().public(), key.public());
        assert_eq!(
            PublicKey::read(&public).unwrap().to_hex(),
            key.public().to_hex()
        );
        // Never overwrites a secret key.
        assert!(key.write(&path).is_err());
        assert!(PublicKey::parse("nonsense", "x").is_err());
    }
}
