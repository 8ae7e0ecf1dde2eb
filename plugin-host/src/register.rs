//! Step 9: registering a bundle's objects into a session, all or nothing.
//!
//! Conflicts are found before anything is registered: against the session's own functions and
//! tables and against other bundles registered earlier. With [`ConflictPolicy::Error`] (the
//! default) a conflicting bundle is refused whole; `Skip` leaves the existing object and
//! registers the rest; `Replace` overrides it. Registering the same bundle file into the same
//! session again is a no-op.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::catalog::TableProviderFactory;
use datafusion::datasource::TableProvider;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use df_plugin_api::record::Capability;

use crate::error::{Refusal, Step};
use crate::metadata::BundleMetadata;
use crate::session::SessionSlot;
use crate::truth::BundleObjects;

/// What to do when an object's name is already taken in the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Refuse the whole bundle (default).
    #[default]
    Error,
    /// Keep the existing object, register the bundle's other objects.
    Skip,
    /// Replace the existing object with the bundle's.
    Replace,
}

/// A bundle registered in a session.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RegisteredBundle {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
    /// (kind, name) of every object registered.
    pub objects: Vec<(Capability, String)>,
    /// (kind, name) of objects left out under [`ConflictPolicy::Skip`].
    pub skipped: Vec<(Capability, String)>,
}

/// Per-session bookkeeping, stored as a config extension of the session it describes: which
/// bundles are registered, who owns each name, and the [`SessionSlot`]s the session must keep
/// alive for its plugin objects.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    state: Mutex<RegistryState>,
}

#[derive(Debug, Default)]
struct RegistryState {
    bundles: Vec<RegisteredBundle>,
    owners: HashMap<(Capability, String), String>,
    slots: Vec<Arc<SessionSlot>>,
}

impl PluginRegistry {
    /// The registry of `ctx`, created on first use.
    pub fn of(ctx: &SessionContext) -> Arc<PluginRegistry> {
        if let Some(r) = ctx.state().config().get_extension::<PluginRegistry>() {
            return r;
        }
        let state = ctx.state_ref();
        let mut state = state.write();
        if let Some(r) = state.config().get_extension::<PluginRegistry>() {
            return r;
        }
        let registry = Arc::new(PluginRegistry::default());
        state.config_mut().set_extension(Arc::clone(&registry));
        registry
    }

    /// The bundles registered in this session, in registration order.
    pub fn bundles(&self) -> Vec<RegisteredBundle> {
        self.lock().bundles.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn keep_alive(&self, slot: &Arc<SessionSlot>) {
        let mut state = self.lock();
        if !state.slots.iter().any(|s| Arc::ptr_eq(s, slot)) {
            state.slots.push(Arc::clone(slot));
        }
    }

    /// The registered bundle loaded from `path`, if any.
    pub fn by_path(&self, path: &std::path::Path) -> Option<RegisteredBundle> {
        self.lock().bundles.iter().find(|b| b.path == path).cloned()
    }

    /// The registered bundle named `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<RegisteredBundle> {
        self.lock().bundles.iter().find(|b| b.name == name).cloned()
    }
}

/// Who holds a name in the session: a bundle, the session itself, or nobody.
fn holder(
    ctx: &SessionContext,
    state: &SessionState,
    registry: &RegistryState,
    kind: Capability,
    name: &str,
) -> Option<String> {
    let taken = match kind {
        Capability::ScalarUdf => state.scalar_functions().contains_key(name),
        Capability::AggregateUdf => state.aggregate_functions().contains_key(name),
        Capability::WindowUdf => state.window_functions().contains_key(name),
        Capability::TableFunction => state.table_functions().contains_key(name),
        Capability::TableProvider => ctx.table_exist(name).unwrap_or(false),
        Capability::TableProviderFactory => {
            state.table_factories().contains_key(&name.to_uppercase())
        }
        _ => false,
    };
    if !taken {
        return None;
    }
    Some(match registry.owners.get(&(kind, name.to_owned())) {
        Some(bundle) => format!("bundle '{bundle}'"),
        None => "the session (a built-in or the application's)".to_owned(),
    })
}

/// Registers `objects` of one bundle into `ctx`, all or nothing.
pub(crate) fn register(
    ctx: &SessionContext,
    registry: &PluginRegistry,
    meta: &BundleMetadata,
    objects: &BundleObjects,
    policy: ConflictPolicy,
) -> Result<RegisteredBundle, Refusal> {
    let mut state = registry.lock();
    let bundle = meta.info.bundle_name.clone();
    let refuse = |reason: String, fix: &str| {
        Refusal::new(bundle.clone(), &meta.path, Step::Register, reason, fix)
    };
    if let Some(other) = state.bundles.iter().find(|b| b.name == bundle) {
        return Err(refuse(
            format!(
                "a bundle named '{bundle}' (version {}) is already registered from {}",
                other.version,
                other.path.display()
            ),
            "remove one of the two files from the plugin path",
        ));
    }

    // Decide every object's fate before touching the session.
    let mut conflicts = Vec::new();
    let mut skipped = Vec::new();
    let names = objects.names();
    // One snapshot of the session for every name (`ctx.state()` clones it).
    let session = ctx.state();
    for (kind, name) in &names {
        if let Some(owner) = holder(ctx, &session, &state, *kind, name) {
            match policy {
                ConflictPolicy::Error => {
                    conflicts.push(format!("{kind} '{name}' is already registered by {owner}"))
                }
                ConflictPolicy::Skip => skipped.push((*kind, name.clone())),
                ConflictPolicy::Replace => {}
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(refuse(
            format!("name conflict: {}", conflicts.join("; ")),
            "remove one of the conflicting bundles, or choose a conflict policy (skip / replace)",
        ));
    }
    let keep = |kind: Capability, name: &str| !skipped.iter().any(|(k, n)| *k == kind && n == name);

    // Tables are the only fallible registrations: do them first and undo them on failure.
    let mut added_tables: Vec<(String, Option<Arc<dyn TableProvider>>)> = Vec::new();
    for (name, provider) in &objects.table_providers {
        if !keep(Capability::TableProvider, name) {
            continue;
        }
        let previous = ctx.deregister_table(name.as_str()).ok().flatten();
        if let Err(e) = ctx.register_table(name.as_str(), Arc::clone(provider)) {
            for (added, previous) in added_tables.into_iter().rev() {
                let _ = ctx.deregister_table(added.as_str());
                if let Some(p) = previous {
                    let _ = ctx.register_table(added.as_str(), p);
                }
            }
            return Err(refuse(
                format!("cannot register table '{name}': {e}"),
                "see the error",
            ));
        }
        added_tables.push((name.clone(), previous));
    }
    for udf in &objects.scalar_udfs {
        if keep(Capability::ScalarUdf, udf.name()) {
            ctx.register_udf(udf.clone());
        }
    }
    for udaf in &objects.aggregate_udfs {
        if keep(Capability::AggregateUdf, udaf.name()) {
            ctx.register_udaf(udaf.clone());
        }
    }
    for udwf in &objects.window_udfs {
        if keep(Capability::WindowUdf, udwf.name()) {
            ctx.register_udwf(udwf.clone());
        }
    }
    for (name, f) in &objects.table_functions {
        if keep(Capability::TableFunction, name) {
            ctx.register_udtf(name, Arc::clone(f));
        }
    }
    if objects
        .table_provider_factories
        .iter()
        .any(|(n, _)| keep(Capability::TableProviderFactory, n))
    {
        let state_ref = ctx.state_ref();
        let mut session = state_ref.write();
        for (name, factory) in &objects.table_provider_factories {
            if keep(Capability::TableProviderFactory, name) {
                // DataFusion looks factories up by the upper-cased `STORED AS` word.
                session.table_factories_mut().insert(
                    name.to_uppercase(),
                    Arc::clone(factory) as Arc<dyn TableProviderFactory>,
                );
            }
        }
    }

    crate::options::declare(ctx, &meta.manifest);

    let registered: Vec<(Capability, String)> =
        names.into_iter().filter(|(k, n)| keep(*k, n)).collect();
    for (kind, name) in &registered {
        state.owners.insert((*kind, name.clone()), bundle.clone());
    }
    let entry = RegisteredBundle {
        name: bundle.clone(),
        version: meta.info.bundle_version.clone(),
        path: meta.path.clone(),
        objects: registered,
        skipped,
    };
    state.bundles.push(entry.clone());
    Ok(entry)
}
