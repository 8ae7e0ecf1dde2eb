//! Session options declared by bundles: `SET udfs.strip_www = true`.
//!
//! A bundle declares its options in its manifest (`[[option]]`, key `<bundle>.<name>`). DataFusion
//! routes a `SET` whose namespace nobody registered to the extension registered under the
//! reserved `datafusion_ffi` namespace; the host registers [`PluginOptions`] there, which knows
//! every loaded bundle's options, refuses unknown keys and ill-typed values, and hands all of them
//! (with defaults) to the bundles with each call. On the other side,
//! `df_plugin_api::toolkit::options::session_options` reads them as an ordinary
//! `ConfigExtension`.
//!
//! The namespace holds one extension per session: an application that registers datafusion-ffi's
//! own `FFI_ExtensionOptions` there as well would replace (or be replaced by) this one.

use std::any::Any;
use std::collections::BTreeMap;

use datafusion::common::config::{
    ConfigEntry, ConfigExtension, DATAFUSION_FFI_CONFIG_NAMESPACE, ExtensionOptions,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use df_plugin_api::manifest::{Manifest, OptionKind};

#[derive(Debug, Clone)]
struct Declared {
    kind: OptionKind,
    default: String,
    /// Leaked once per declaration: `ConfigEntry` wants a `&'static str`.
    doc: &'static str,
}

/// The options of every bundle registered in a session, and the values `SET` gave them.
#[derive(Debug, Clone, Default)]
pub struct PluginOptions {
    declared: BTreeMap<String, Declared>,
    values: BTreeMap<String, String>,
}

impl PluginOptions {
    fn declare(&mut self, manifest: &Manifest) {
        for o in &manifest.options {
            self.declared.insert(
                manifest.option_key(o),
                Declared {
                    kind: o.kind,
                    default: o.default.clone(),
                    doc: Box::leak(o.doc.clone().into_boxed_str()),
                },
            );
        }
    }
}

impl PluginOptions {
    fn undeclare(&mut self, manifest: &Manifest) {
        for o in &manifest.options {
            let key = manifest.option_key(o);
            self.declared.remove(&key);
            self.values.remove(&key);
        }
    }
}

impl ConfigExtension for PluginOptions {
    const PREFIX: &'static str = DATAFUSION_FFI_CONFIG_NAMESPACE;
}

impl ExtensionOptions for PluginOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let Some(declared) = self.declared.get(key) else {
            let known: Vec<&str> = self.declared.keys().map(String::as_str).collect();
            return Err(DataFusionError::Configuration(format!(
                "unknown option '{key}': no built-in setting and no loaded plugin bundle declares it{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (plugin options: {})", known.join(", "))
                }
            )));
        };
        // Worded like DataFusion's own "Error parsing 'x' as bool", plus the key.
        declared.kind.check(value).map_err(|_| {
            DataFusionError::Configuration(format!(
                "Error parsing '{value}' as {} for {key}",
                declared.kind.as_str()
            ))
        })?;
        self.values.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        self.declared
            .iter()
            .map(|(key, d)| ConfigEntry {
                key: key.clone(),
                value: Some(self.values.get(key).unwrap_or(&d.default).clone()),
                description: d.doc,
            })
            .collect()
    }
}

/// Makes `manifest`'s options settable in `ctx`.
pub(crate) fn declare(ctx: &SessionContext, manifest: &Manifest) {
    if manifest.options.is_empty() {
        return;
    }
    let state = ctx.state_ref();
    let mut state = state.write();
    let extensions = &mut state.config_mut().options_mut().extensions;
    match extensions.get_mut::<PluginOptions>() {
        Some(options) => options.declare(manifest),
        None => {
            let mut options = PluginOptions::default();
            options.declare(manifest);
            extensions.insert(options);
        }
    }
}

/// Forgets `manifest`'s options (and the values `SET` gave them) in `ctx`.
pub(crate) fn undeclare(ctx: &SessionContext, manifest: &Manifest) {
    if manifest.options.is_empty() {
        return;
    }
    let state = ctx.state_ref();
    let mut state = state.write();
    if let Some(options) = state
        .config_mut()
        .options_mut()
        .extensions
        .get_mut::<PluginOptions>()
    {
        options.undeclare(manifest);
    }
}
