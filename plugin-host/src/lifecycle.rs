//! Lifecycle: loading a bundle into a running session, deregistering it, upgrading it and
//! reloading it.
//!
//! Libraries are never unloaded (as in PostgreSQL, DuckDB and every other host: FFI objects
//! and runtime threads point into them), so "deregister" removes a bundle's objects from the
//! session and "upgrade" registers a newer version from *another file* in their place. Every
//! change is all or nothing: a bundle that fails any step leaves the session as it was, and an
//! upgrade whose new version cannot be registered puts the old one back.
//!
//! Later loads go through the same pipeline, with the trust policy of the host that loaded the
//! session (which can be tightened, never loosened: [`PluginRegistry::tighten_trust`]).

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::catalog::BundleState;
use crate::error::{HostError, Refusal, Result, Step};
use crate::host::{Outcome, PluginHost};
use crate::metadata;
use crate::register::{self, PluginRegistry, RegisteredBundle};
use crate::trust::file::FileKey;

/// What a lifecycle operation did.
#[derive(Clone, Debug)]
pub enum Change {
    /// A bundle that was not registered now is.
    Loaded(RegisteredBundle),
    /// Nothing to do: the same file is registered and unchanged.
    Unchanged(RegisteredBundle),
    /// Another version of the bundle replaced the registered one.
    Upgraded {
        from: RegisteredBundle,
        to: RegisteredBundle,
    },
    /// The bundle's objects were removed from the session.
    Deregistered(RegisteredBundle),
}

impl Change {
    /// `loaded`, `unchanged`, `upgraded`, `downgraded`, `deregistered`.
    pub fn action(&self) -> &'static str {
        match self {
            Change::Loaded(_) => "loaded",
            Change::Unchanged(_) => "unchanged",
            Change::Upgraded { from, to } => {
                match (
                    semver::Version::parse(&from.version),
                    semver::Version::parse(&to.version),
                ) {
                    (Ok(a), Ok(b)) if b < a => "downgraded",
                    (Ok(a), Ok(b)) if b == a => "replaced",
                    _ => "upgraded",
                }
            }
            Change::Deregistered(_) => "deregistered",
        }
    }

    /// The bundle as it is now (for deregistration: as it was).
    pub fn bundle(&self) -> &RegisteredBundle {
        match self {
            Change::Loaded(b) | Change::Unchanged(b) | Change::Deregistered(b) => b,
            Change::Upgraded { to, .. } => to,
        }
    }
}

fn host_of(registry: &PluginRegistry) -> PluginHost {
    registry.host().unwrap_or_default()
}

/// Loads the bundle at `path` into `ctx`: `LOAD PLUGIN '<path>' [FORCE]`.
///
/// - the same file, unchanged, already registered: [`Change::Unchanged`] (idempotent);
/// - no bundle of that name registered: loaded;
/// - an older version registered from another file: upgraded in place;
/// - the same version, or a newer one, already registered: refused unless `force`, before any
///   code of the new file runs.
pub fn load(ctx: &Arc<SessionContext>, path: &Path, force: bool) -> Result<Change> {
    let registry = PluginRegistry::of(ctx);
    let host = host_of(&registry);
    crate::catalog::install(ctx, &registry);
    if !path.exists() {
        return Err(HostError::NotFound {
            what: format!("no such bundle file: {}", path.display()),
            searched: vec![path.to_path_buf()],
        });
    }
    if let Some(live) = registry.live_by_path(path) {
        let now = std::fs::metadata(path).ok().map(|m| FileKey::of(&m));
        let then = live.loaded_key;
        if now.is_some() && now == then {
            return Ok(Change::Unchanged(live.entry));
        }
    }
    // A downgrade is refused on the verified metadata, before any of the file's code runs.
    let gate = |meta: &metadata::BundleMetadata| match registry.live_by_name(&meta.info.bundle_name)
    {
        Some(old) if !force => {
            not_newer(&old.entry, path, &meta.info.bundle_version).map_or(Ok(()), Err)
        }
        _ => Ok(()),
    };
    let (record, outcome) = host.consider_gated(path, &gate);
    let bundle = match outcome {
        Outcome::Loaded(b) => b,
        Outcome::Refused(r) => {
            registry.record(record);
            return Err(HostError::Refused(vec![r]));
        }
        Outcome::Skipped => {
            registry.record(record);
            return Err(HostError::Usage(format!(
                "{} is listed under `skip` in the host config",
                path.display()
            )));
        }
    };
    if registry.live_by_name(bundle.name()).is_none() {
        return host
            .register_bundle(&bundle, ctx, &registry)
            .map(Change::Loaded)
            .map_err(|r| HostError::Refused(vec![r]));
    }
    // Another file of the same bundle is registered and this one may replace it.
    let reason = format!(
        "replaced by version {} from {}",
        bundle.metadata.info.bundle_version,
        path.display()
    );
    let from = register::deregister(ctx, &registry, bundle.name(), BundleState::Upgraded, reason)?;
    match host.register_bundle(&bundle, ctx, &registry) {
        Ok(to) => Ok(Change::Upgraded {
            from: from.entry,
            to,
        }),
        Err(refusal) => {
            // Put the old version back exactly as it was.
            let policy = host.conflict_policy();
            let restored = register::register(
                ctx,
                &registry,
                &from.meta,
                &from.objects,
                &from.slot,
                from.loaded_key,
                policy,
            );
            registry.set_loaded(&from.entry.path);
            if let Err(e) = restored {
                tracing::error!(
                    "could not restore bundle '{}' after a failed upgrade: {e}",
                    from.entry.name
                );
            }
            Err(HostError::Refused(vec![refusal]))
        }
    }
}

/// The refusal of loading `version` from `path` over `old`, unless it is newer.
fn not_newer(old: &RegisteredBundle, path: &Path, version: &str) -> Option<Refusal> {
    let newer = match (
        semver::Version::parse(&old.version),
        semver::Version::parse(version),
    ) {
        (Ok(a), Ok(b)) => b > a,
        _ => false,
    };
    (!newer).then(|| {
        Refusal::new(
            &old.name,
            path,
            Step::Register,
            format!(
                "bundle '{}' version {} is registered from {}; {} is version {version}, not newer",
                old.name,
                old.version,
                old.path.display(),
                path.display(),
            ),
            "load a newer version, or add FORCE to replace it anyway (LOAD PLUGIN '<path>' FORCE)",
        )
    })
}

/// Removes a bundle's objects from `ctx`: `UNLOAD PLUGIN <name>`.
pub fn deregister(ctx: &Arc<SessionContext>, name: &str) -> Result<Change> {
    let registry = PluginRegistry::of(ctx);
    let live = register::deregister(
        ctx,
        &registry,
        name,
        BundleState::Deregistered,
        "deregistered by request".into(),
    )?;
    Ok(Change::Deregistered(live.entry))
}

/// Loads a registered bundle's file again: `RELOAD PLUGIN <name>`. Unchanged files are a
/// no-op; a file replaced in place is refused (see [`crate::open`]), as is a refused reload,
/// which leaves the registered bundle untouched.
pub fn reload(ctx: &Arc<SessionContext>, name: &str) -> Result<Change> {
    let registry = PluginRegistry::of(ctx);
    let Some(live) = registry.live_by_name(name) else {
        return Err(HostError::Usage(format!(
            "no bundle named '{name}' is registered in this session; LOAD PLUGIN '<path>' loads one"
        )));
    };
    load(ctx, &live.entry.path, true)
}
