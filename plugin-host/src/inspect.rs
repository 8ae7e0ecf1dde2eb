//! What `df-plugin-host inspect` reports about a bundle file: steps 2–4 by default, which never
//! run any of the bundle's code, and steps 5–8 with `load`. It reports the same facts as a
//! `df_plugins()` row: identity (SHA-256), trust status, versions, capabilities.

use std::path::{Path, PathBuf};

use df_plugin_api::manifest::{ObjectDecl, OptionDecl};
use df_plugin_api::record::{ABI_MAJOR, ABI_MINOR, Capabilities};
use df_plugin_api::toolkit::BUILD_FACTS;

use crate::error::Refusal;
use crate::host::PluginHost;
use crate::metadata;
use crate::trust::{self, file::FileKey};
use crate::verify;

/// The facts about one file, serialisable as the `--json` output.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InspectReport {
    pub path: PathBuf,
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub license: Option<String>,
    pub file_size: Option<u64>,
    /// The SHA-256 of the file (through the digest cache).
    pub sha256: Option<String>,
    /// How the host's trust policy judged the file (None: refused, see `refusal`).
    pub trust: Option<String>,
    pub format: Option<String>,
    pub architecture: Option<String>,
    pub plugin_abi: Option<String>,
    pub requires: Option<String>,
    pub datafusion_version: Option<String>,
    pub datafusion_ffi_major: Option<u32>,
    pub arrow_major: Option<u32>,
    pub sqlparser_version: Option<String>,
    pub target: Option<String>,
    pub rustc_version: Option<String>,
    pub capabilities: Option<Capabilities>,
    pub objects: Vec<ObjectDecl>,
    /// Session options the bundle declares (`SET <bundle>.<name> = ...`).
    pub options: Vec<OptionDecl>,
    /// Whether this host can load the bundle (steps 2–4, and 5–8 when loaded).
    pub compatible: bool,
    /// Whether the bundle was opened (`--load`); false means none of its code ran.
    pub loaded: bool,
    pub refusal: Option<Refusal>,
    pub warnings: Vec<String>,
}

/// What this host requires, for the header of the human-readable output.
pub fn host_requirements() -> String {
    format!(
        "plugin ABI {ABI_MAJOR}.{ABI_MINOR}, datafusion {}, datafusion-ffi {}, arrow {}, sqlparser {}, {}",
        BUILD_FACTS.datafusion_version,
        BUILD_FACTS.datafusion_ffi_major,
        BUILD_FACTS.arrow_major,
        BUILD_FACTS.sqlparser_version,
        BUILD_FACTS.target
    )
}

/// Inspects one file with the default host (trust level `any`). With `load`, also opens it
/// and checks its exports against its manifest.
pub fn inspect(path: &Path, load: bool) -> InspectReport {
    inspect_with(&PluginHost::default(), path, load)
}

/// Inspects one file under `host`'s trust policy. The metadata is read and shown even when
/// the trust step refuses the file (reading it runs none of its code); loading is not tried.
pub fn inspect_with(host: &PluginHost, path: &Path, load: bool) -> InspectReport {
    let mut report = InspectReport {
        path: path.to_path_buf(),
        name: None,
        version: None,
        description: None,
        license: None,
        file_size: None,
        sha256: None,
        trust: None,
        format: None,
        architecture: None,
        plugin_abi: None,
        requires: None,
        datafusion_version: None,
        datafusion_ffi_major: None,
        arrow_major: None,
        sqlparser_version: None,
        target: None,
        rustc_version: None,
        capabilities: None,
        objects: Vec::new(),
        options: Vec::new(),
        compatible: false,
        loaded: false,
        refusal: None,
        warnings: Vec::new(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let trusted = trust::check(path, dir, host.trust_policy());
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(m) = std::fs::metadata(&resolved) {
        report.sha256 = host
            .trust_policy()
            .cache
            .sha256(&resolved, FileKey::of(&m))
            .ok()
            .map(|(sha, _)| sha);
    }
    let trusted = match trusted {
        Ok(status) => {
            report.trust = Some(status.summary());
            Some(status)
        }
        Err(r) => {
            report.refusal = Some(r);
            None
        }
    };
    let meta = match metadata::read(path) {
        Ok(m) => m,
        Err(r) => {
            report.refusal = Some(r);
            return report;
        }
    };
    let info = &meta.info;
    report.name = Some(info.bundle_name.clone());
    report.version = Some(info.bundle_version.clone());
    report.description = Some(meta.manifest.bundle.description.clone());
    report.license = meta.manifest.bundle.license.clone();
    report.file_size = Some(meta.file_size);
    report.format = Some(meta.format.clone());
    report.architecture = Some(meta.architecture.clone());
    report.plugin_abi = Some(format!("{}.{}", info.abi_major, info.abi_minor));
    report.requires = Some(meta.manifest.bundle.requires.to_string());
    report.datafusion_version = Some(info.datafusion_version.clone());
    report.datafusion_ffi_major = Some(info.datafusion_ffi_major);
    report.arrow_major = Some(info.arrow_major);
    report.sqlparser_version = Some(info.sqlparser_version.clone());
    report.target = Some(info.target.clone());
    report.rustc_version = Some(info.rustc_version.clone());
    report.capabilities = Some(info.capabilities);
    report.objects = meta.manifest.objects.clone();
    report.options = meta.manifest.options.clone();
    report.warnings = verify::warnings(&meta);
    let Some(trusted) = trusted else {
        return report;
    };
    if let Err(r) =
        trust::check_signed_metadata(&trusted, &meta).and_then(|()| verify::check(&meta))
    {
        report.refusal = Some(r);
        return report;
    }
    if load {
        report.loaded = true;
        if let Err(r) = host.load_file(path) {
            report.refusal = Some(r);
            return report;
        }
    }
    report.compatible = true;
    report
}
