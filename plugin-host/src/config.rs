//! The host config file, `df-plugin-host.toml`.
//!
//! ```toml
//! search_paths = ["plugins"]          # relative to this file; searched before DF_PLUGIN_PATH
//! trust = "signed"                     # any | pinned | signed (default any)
//! trusted_keys = ["keys/acme.pub"]     # public key files, for trust = "signed"
//! on_conflict = "error"                # error | skip | replace
//! skip = ["experimental"]              # bundle names never loaded
//! cache_dir = "/var/cache/df-plugin-host"   # digest cache; `cache = false` turns it off
//!
//! [options.delta]                      # handed to that bundle's init
//! aws_region = "eu-west-1"
//! ```
//!
//! Where the CLI finds it, first match wins: `--config FILE`; `$DF_PLUGIN_HOST_CONFIG` (set
//! but empty: no config); `$XDG_CONFIG_HOME/df-plugin-host/config.toml`, else
//! `~/.config/df-plugin-host/config.toml`; `/etc/df-plugin-host.toml`. The working directory
//! is never searched, so a checked-out repository cannot add plugin paths behind your back.
//! The embedding API reads a file only when asked ([`HostConfig::read`],
//! [`crate::PluginHostBuilder::config`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{HostError, Result};
use crate::register::ConflictPolicy;
use crate::trust::TrustLevel;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "DF_PLUGIN_HOST_CONFIG";

/// A parsed config file; relative paths are already resolved against the file's directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub search_paths: Vec<PathBuf>,
    pub trust: Option<TrustLevel>,
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    pub on_conflict: Option<ConflictPolicy>,
    #[serde(default)]
    pub skip: Vec<String>,
    pub cache_dir: Option<PathBuf>,
    pub cache: Option<bool>,
    /// Per-bundle options for `init`, by bundle name.
    #[serde(default)]
    pub options: BTreeMap<String, BTreeMap<String, String>>,
    /// The file this was read from.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl HostConfig {
    /// Parses a config file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| HostError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: HostConfig = toml::from_str(&text).map_err(|e| {
            HostError::Usage(format!(
                "{} is not a valid df-plugin-host config: {e}",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        config.search_paths.iter_mut().for_each(resolve);
        config.trusted_keys.iter_mut().for_each(resolve);
        if let Some(d) = config.cache_dir.as_mut() {
            resolve(d);
        }
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// The config the CLI uses: `explicit`, else the first file of the documented search that
    /// exists, else none.
    pub fn locate(explicit: Option<&Path>) -> Result<Option<Self>> {
        if let Some(p) = explicit {
            return Self::read(p).map(Some);
        }
        if let Some(v) = std::env::var_os(CONFIG_ENV) {
            if v.is_empty() {
                return Ok(None);
            }
            return Self::read(Path::new(&v)).map(Some);
        }
        for candidate in default_locations() {
            if candidate.is_file() {
                return Self::read(&candidate).map(Some);
            }
        }
        Ok(None)
    }
}

/// The files searched when neither `--config` nor `DF_PLUGIN_HOST_CONFIG` is given.
pub fn default_locations() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        out.push(PathBuf::from(d).join("df-plugin-host").join("config.toml"));
    } else if let Some(h) = std::env::var_os("HOME") {
        out.push(
            PathBuf::from(h)
                .join(".config")
                .join("df-plugin-host")
                .join("config.toml"),
        );
    }
    out.push(PathBuf::from("/etc/df-plugin-host.toml"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_resolved_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("df-plugin-host.toml");
        std::fs::write(
            &path,
            r#"
search_paths = ["plugins", "/abs"]
trust = "pinned"
trusted_keys = ["k.pub"]
on_conflict = "skip"
skip = ["x"]
[options.delta]
aws_region = "eu-west-1"
"#,
        )
        .unwrap();
        let c = HostConfig::read(&path).unwrap();
        assert_eq!(
            c.search_paths,
            vec![dir.path().join("plugins"), PathBuf::from("/abs")]
        );
        assert_eq!(c.trust, Some(TrustLevel::Pinned));
        assert_eq!(c.trusted_keys, vec![dir.path().join("k.pub")]);
        assert_eq!(c.on_conflict, Some(ConflictPolicy::Skip));
        assert_eq!(c.options["delta"]["aws_region"], "eu-west-1");
    }

    #[test]
    fn unknown_keys_and_levels_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "trust = \"sometimes\"\n").unwrap();
        let e = HostConfig::read(&path).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("sometimes"), "{e}");
        std::fs::write(&path, "trsut = \"any\"\n").unwrap();
        let e = HostConfig::read(&path).unwrap_err().to_string();
        assert!(e.contains("trsut"), "{e}");
    }
}
