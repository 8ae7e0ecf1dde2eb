//! Reading the bundle's session options.
//!
//! A bundle declares options in its manifest (`[[option]]`) and reads them as an ordinary
//! DataFusion `ConfigExtension` whose `PREFIX` is the bundle's name:
//!
//! ```ignore
//! datafusion::common::extensions_options! {
//!     pub struct UdfsOptions {
//!         pub strip_www: bool, default = false
//!     }
//! }
//! impl ConfigExtension for UdfsOptions { const PREFIX: &'static str = "udfs"; }
//!
//! let opts: UdfsOptions = session_options(&args.config_options).unwrap_or_default();
//! ```
//!
//! Natively the extension is registered in the session; loaded from a bundle, the values arrive
//! through datafusion-ffi's extension map, under the `datafusion_ffi.` namespace the host uses.
//! [`session_options`] reads either; [`strip_ffi_namespace`] (applied by the toolkit's guards
//! before the bundle's code runs) makes the second look like the first.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::config::{
    ConfigExtension, ConfigOptions, DATAFUSION_FFI_CONFIG_NAMESPACE, ExtensionOptions,
};
use datafusion_ffi::config::ExtensionOptionsFFIProvider;
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;

/// The options of type `C`, registered natively or sent by the host.
pub fn session_options<C: ConfigExtension + Clone + Default>(config: &ConfigOptions) -> Option<C> {
    config.local_or_ffi_extension::<C>()
}

/// Rewrites `datafusion_ffi.<bundle>.<option>` keys of the FFI extension map to
/// `<bundle>.<option>`. Returns the same `Arc` when there is nothing to rewrite.
pub fn strip_ffi_namespace(config: &Arc<ConfigOptions>) -> Arc<ConfigOptions> {
    let Some(ffi) = config.extensions.get::<FFI_ExtensionOptions>() else {
        return Arc::clone(config);
    };
    let prefix = format!("{DATAFUSION_FFI_CONFIG_NAMESPACE}.");
    let entries = ffi.entries();
    if !entries.iter().any(|e| e.key.starts_with(&prefix)) {
        return Arc::clone(config);
    }
    let map: HashMap<String, String> = entries
        .into_iter()
        .filter_map(|e| {
            let key = e.key.strip_prefix(&prefix).unwrap_or(&e.key).to_owned();
            Some((key, e.value?))
        })
        .collect();
    let mut stripped = (**config).clone();
    stripped.extensions.insert(FFI_ExtensionOptions::from(map));
    Arc::new(stripped)
}
