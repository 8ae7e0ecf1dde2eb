//! The host settings every subcommand shares: config file, then flags.

use std::path::PathBuf;

use df_plugin_host::{HostConfig, HostError, PluginHost, PluginHostBuilder, TrustLevel};

pub struct Settings {
    pub config: Option<PathBuf>,
    pub trust: Option<String>,
    pub trusted_keys: Vec<PathBuf>,
}

impl Settings {
    /// A builder with the config file applied, then the flags. `--trust` may raise the
    /// config's level but not lower it: a machine configured `signed` stays `signed`.
    pub fn builder(&self) -> Result<PluginHostBuilder, HostError> {
        let config = HostConfig::locate(self.config.as_deref())?;
        // SAFETY: this binary declares no `#[global_allocator]`: its allocator is the system's.
        let mut builder = unsafe { PluginHost::builder().system_allocator() };
        let mut policy = df_plugin_host::TrustPolicy::default();
        if let Some(config) = &config {
            builder = builder.config(config)?;
            policy.level = config.trust.unwrap_or_default();
        }
        if let Some(level) = &self.trust {
            let level = TrustLevel::parse(level)?;
            policy.tighten(level).map_err(|e| {
                HostError::Usage(format!(
                    "--trust {level}: {e} (the config file {} sets it)",
                    config
                        .as_ref()
                        .and_then(|c| c.source.as_ref())
                        .map_or("-".into(), |p| p.display().to_string())
                ))
            })?;
            builder = builder.trust_level(level);
        }
        for key in &self.trusted_keys {
            builder = builder.trusted_key(df_plugin_host::trust::sign::PublicKey::read(key)?);
        }
        Ok(builder)
    }
}
