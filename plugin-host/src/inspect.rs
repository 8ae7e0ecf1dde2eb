//! What `df-plugin-host inspect` reports about a bundle file: steps 2–4 by default, which never
//! run any of the bundle's code, and steps 5–8 with `load`.

use std::path::{Path, PathBuf};

use df_plugin_api::manifest::{ObjectDecl, OptionDecl};
use df_plugin_api::record::{ABI_MAJOR, ABI_MINOR, Capabilities};
use df_plugin_api::toolkit::BUILD_FACTS;

use crate::error::Refusal;
use crate::host::PluginHost;
use crate::metadata;
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

/// Inspects one file. With `load`, also opens it and checks its exports against its manifest.
pub fn inspect(path: &Path, load: bool) -> InspectReport {
    let mut report = InspectReport {
        path: path.to_path_buf(),
        name: None,
        version: None,
        description: None,
        license: None,
        file_size: None,
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
    if let Err(r) = verify::check(&meta) {
        report.refusal = Some(r);
        return report;
    }
    if load {
        report.loaded = true;
        let host = PluginHost::builder().ignore_env(true).build();
        let result = host.map_err(|e| e.to_string()).map(|h| h.load_file(path));
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(r)) => {
                report.refusal = Some(r);
                return report;
            }
            Err(e) => {
                report.warnings.push(e);
                return report;
            }
        }
    }
    report.compatible = true;
    report
}
