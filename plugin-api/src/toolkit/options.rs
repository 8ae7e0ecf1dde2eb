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
//! [`session_options`] reads either. It does the work only when a function asks, so functions
//! that read no options pay nothing per batch.

use datafusion::common::config::{
    ConfigExtension, ConfigOptions, DATAFUSION_FFI_CONFIG_NAMESPACE, ExtensionOptions,
};
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;

/// The options of type `C`: the session's own extension when registered natively, else the
/// values the host sent (`datafusion_ffi.<prefix>.<key>` or `<prefix>.<key>`). `None` when
/// neither has any.
pub fn session_options<C: ConfigExtension + Clone + Default>(config: &ConfigOptions) -> Option<C> {
    if let Some(local) = config.extensions.get::<C>() {
        return Some(local.clone());
    }
    let sent = config.extensions.get::<FFI_ExtensionOptions>()?;
    let namespaced = format!("{DATAFUSION_FFI_CONFIG_NAMESPACE}.{}.", C::PREFIX);
    let plain = format!("{}.", C::PREFIX);
    let mut options = C::default();
    let mut found = false;
    for entry in sent.entries() {
        let Some(value) = entry.value else {
            continue;
        };
        let key = entry
            .key
            .strip_prefix(&namespaced)
            .or_else(|| entry.key.strip_prefix(&plain));
        if let Some(key) = key {
            options.set(key, &value).ok()?;
            found = true;
        }
    }
    found.then_some(options)
}
