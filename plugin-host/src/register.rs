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

use datafusion::catalog::{TableFunctionImpl, TableProviderFactory};
use datafusion::datasource::TableProvider;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;
use df_plugin_api::record::Capability;

use crate::catalog::{BundleRecord, BundleState, ObjectRecord};
use crate::error::{HostError, Refusal, Step};
use crate::host::PluginHost;
use crate::metadata::BundleMetadata;
use crate::session::SessionSlot;
use crate::trust::TrustLevel;
use crate::trust::file::FileKey;
use crate::truth::BundleObjects;

/// What to do when an object's name is already taken in the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Refuse the whole bundle (default).
    #[default]
    Error,
    /// Keep the existing object, register the bundle's other objects.
    Skip,
    /// Replace the existing object with the bundle's; deregistering the bundle puts the old
    /// object back.
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

/// An object a bundle replaced under [`ConflictPolicy::Replace`], kept to put it back.
#[derive(Clone)]
enum Previous {
    Scalar(Arc<ScalarUDF>),
    Aggregate(Arc<AggregateUDF>),
    Window(Arc<WindowUDF>),
    TableFunction(Arc<dyn TableFunctionImpl>),
    Table(Arc<dyn TableProvider>),
    Factory(Arc<dyn TableProviderFactory>),
}

/// A registered bundle with what it takes to deregister it or register it again.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) entry: RegisteredBundle,
    pub(crate) meta: BundleMetadata,
    pub(crate) objects: BundleObjects,
    pub(crate) slot: Arc<SessionSlot>,
    /// The bundle file's key when it was loaded: a reload of an unchanged file is a no-op.
    pub(crate) loaded_key: Option<FileKey>,
    /// Objects it replaced, with their previous owner bundle (None: the session's own).
    replaced: Vec<(Capability, String, Previous, Option<String>)>,
}

/// Per-session bookkeeping, stored as a config extension of the session it describes: which
/// bundles are registered, who owns each name, the [`SessionSlot`]s the session must keep
/// alive for its plugin objects, every bundle the session considered (the catalogue) and the
/// host that loads more (`LOAD PLUGIN`).
#[derive(Default)]
pub struct PluginRegistry {
    state: Mutex<RegistryState>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("bundles", &self.bundles())
            .finish()
    }
}

#[derive(Default)]
struct RegistryState {
    live: Vec<Live>,
    owners: HashMap<(Capability, String), String>,
    slots: Vec<Arc<SessionSlot>>,
    records: Vec<BundleRecord>,
    host: Option<PluginHost>,
    planners: crate::planners::SessionPlanners,
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
        // Before the first bundle: its scans are optimized where linked ones would be.
        if let Some(with_rule) = crate::restore::optimize::OptimizeBundleScans::install(&state) {
            *state = with_rule;
        }
        let registry = Arc::new(PluginRegistry::default());
        state.config_mut().set_extension(Arc::clone(&registry));
        registry
    }

    /// The bundles registered in this session, in registration order.
    pub fn bundles(&self) -> Vec<RegisteredBundle> {
        self.lock().live.iter().map(|l| l.entry.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The registered bundle loaded from `path`, if any.
    pub fn by_path(&self, path: &std::path::Path) -> Option<RegisteredBundle> {
        self.live_by_path(path).map(|l| l.entry)
    }

    pub(crate) fn live_by_path(&self, path: &std::path::Path) -> Option<Live> {
        let canonical =
            |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let wanted = canonical(path);
        self.lock()
            .live
            .iter()
            .find(|l| l.entry.path == path || canonical(&l.entry.path) == wanted)
            .cloned()
    }

    /// The registered bundle named `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<RegisteredBundle> {
        self.live_by_name(name).map(|l| l.entry)
    }

    pub(crate) fn live_by_name(&self, name: &str) -> Option<Live> {
        self.lock()
            .live
            .iter()
            .find(|l| l.entry.name == name)
            .cloned()
    }

    /// The bundle that registered the object `kind`/`name` in this session, with its version.
    pub fn owner(&self, kind: Capability, name: &str) -> Option<(String, String)> {
        let state = self.lock();
        let bundle = state.owners.get(&(kind, name.to_owned()))?;
        let live = state.live.iter().find(|l| &l.entry.name == bundle)?;
        Some((bundle.clone(), live.entry.version.clone()))
    }

    /// The host that loaded this session's bundles; `LOAD PLUGIN` uses its trust policy.
    pub fn host(&self) -> Option<PluginHost> {
        self.lock().host.clone()
    }

    /// Sets the host later loads use. Refused when its trust level is looser than the
    /// session's: bundles it loaded were not held to the session's policy.
    pub(crate) fn set_host(&self, host: &PluginHost) -> crate::Result<()> {
        let mut state = self.lock();
        if let Some(old) = &state.host {
            old.trust_policy()
                .clone()
                .tighten(host.trust_policy().level)?;
        }
        state.host = Some(host.clone());
        Ok(())
    }

    /// Raises the trust level for every later load into this session; it can never be lowered.
    pub fn tighten_trust(&self, level: TrustLevel) -> crate::Result<()> {
        let mut state = self.lock();
        let host = state.host.get_or_insert_with(PluginHost::default);
        let mut policy = host.trust_policy().clone();
        policy.tighten(level)?;
        host.set_trust_policy(policy);
        Ok(())
    }

    /// Adds or replaces (by path) the catalogue record of a bundle.
    pub(crate) fn record(&self, record: BundleRecord) {
        let mut state = self.lock();
        match state.records.iter_mut().find(|r| r.path == record.path) {
            Some(r) => *r = record,
            None => state.records.push(record),
        }
    }

    /// Marks a bundle's record loaded again (after a failed upgrade put it back).
    pub(crate) fn set_loaded(&self, path: &std::path::Path) {
        let mut state = self.lock();
        if let Some(r) = state.records.iter_mut().find(|r| r.path == path) {
            r.state = BundleState::Loaded;
            r.reason = None;
        }
    }

    fn set_state(state: &mut RegistryState, path: &std::path::Path, to: BundleState, why: String) {
        if let Some(r) = state.records.iter_mut().find(|r| r.path == path) {
            r.state = to;
            r.reason = Some(why);
        }
    }

    /// Every bundle this session considered, in the order it considered them.
    pub fn records(&self) -> Vec<BundleRecord> {
        self.lock().records.clone()
    }

    /// [`Self::records`], with the SHA-256 filled in for bundles loaded at trust level `any`
    /// (through the digest cache; left empty if the file changed since it was considered).
    pub fn records_with_hashes(&self) -> Vec<BundleRecord> {
        let Some(cache) = self.host().map(|h| Arc::clone(&h.trust_policy().cache)) else {
            return self.records();
        };
        // Hash outside the lock: a cold hash of a large bundle takes a while.
        let missing: Vec<(PathBuf, FileKey)> = self
            .lock()
            .records
            .iter()
            .filter(|r| r.sha256.is_none())
            .filter_map(|r| Some((r.resolved.clone()?, r.file_key?)))
            .collect();
        let mut found = HashMap::new();
        for (resolved, key) in missing {
            let now = std::fs::metadata(&resolved).map(|m| FileKey::of(&m));
            if now.is_ok_and(|k| k == key)
                && let Ok((sha, _)) = cache.sha256(&resolved, key)
            {
                found.insert((resolved, key), sha);
            }
        }
        let mut state = self.lock();
        for r in state.records.iter_mut().filter(|r| r.sha256.is_none()) {
            if let (Some(resolved), Some(key)) = (&r.resolved, r.file_key) {
                r.sha256 = found.get(&(resolved.clone(), key)).cloned();
            }
        }
        state.records.clone()
    }

    /// Every registered object, for `df_plugin_objects()`.
    pub fn objects(&self) -> Vec<ObjectRecord> {
        let state = self.lock();
        let mut out = Vec::new();
        for live in &state.live {
            for (kind, name) in &live.entry.objects {
                let decl = live.meta.manifest.object(*kind, name);
                let signature = decl.and_then(|d| d.signature.clone()).or_else(|| {
                    live.objects
                        .signatures
                        .get(&(*kind, name.clone()))
                        .map(|(_, sig)| sig.to_string_repr().join(" | "))
                });
                out.push(ObjectRecord {
                    bundle: live.entry.name.clone(),
                    kind: kind.as_str().to_owned(),
                    name: name.clone(),
                    signature,
                    doc: decl.map(|d| d.doc.clone()).filter(|d| !d.is_empty()),
                });
            }
        }
        out
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

/// The object a name refers to in the session now, to put back if a bundle replaces it.
fn previous(state: &SessionState, kind: Capability, name: &str) -> Option<Previous> {
    match kind {
        Capability::ScalarUdf => state
            .scalar_functions()
            .get(name)
            .cloned()
            .map(Previous::Scalar),
        Capability::AggregateUdf => state
            .aggregate_functions()
            .get(name)
            .cloned()
            .map(Previous::Aggregate),
        Capability::WindowUdf => state
            .window_functions()
            .get(name)
            .cloned()
            .map(Previous::Window),
        Capability::TableFunction => state
            .table_functions()
            .get(name)
            .map(|f| Previous::TableFunction(Arc::clone(f.function()))),
        // Tables: the registration loop gets the previous provider from `deregister_table`.
        Capability::TableProviderFactory => state
            .table_factories()
            .get(&name.to_uppercase())
            .cloned()
            .map(Previous::Factory),
        _ => None,
    }
}

/// Registers `objects` of one bundle into `ctx`, all or nothing.
pub(crate) fn register(
    ctx: &SessionContext,
    registry: &PluginRegistry,
    meta: &BundleMetadata,
    objects: &BundleObjects,
    slot: &Arc<SessionSlot>,
    loaded_key: Option<FileKey>,
    policy: ConflictPolicy,
) -> Result<RegisteredBundle, Refusal> {
    let mut state = registry.lock();
    let bundle = meta.info.bundle_name.clone();
    let refuse = |reason: String, fix: &str| {
        Refusal::new(bundle.clone(), &meta.path, Step::Register, reason, fix)
    };
    if let Some(other) = state.live.iter().find(|b| b.entry.name == bundle) {
        return Err(refuse(
            format!(
                "a bundle named '{bundle}' (version {}) is already registered from {}",
                other.entry.version,
                other.entry.path.display()
            ),
            "remove one of the two files from the plugin path, or upgrade with LOAD PLUGIN",
        ));
    }

    // Decide every object's fate before touching the session.
    let mut conflicts = Vec::new();
    let mut skipped = Vec::new();
    let mut replaced = Vec::new();
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
                ConflictPolicy::Replace => {
                    if let Some(p) = previous(&session, *kind, name) {
                        let owner = state.owners.get(&(*kind, name.clone())).cloned();
                        replaced.push((*kind, name.clone(), p, owner));
                    }
                }
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
        if let Some(p) = &previous {
            let owner = state
                .owners
                .get(&(Capability::TableProvider, name.clone()))
                .cloned();
            replaced.push((
                Capability::TableProvider,
                name.clone(),
                Previous::Table(Arc::clone(p)),
                owner,
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
    state.planners.install(ctx, &bundle, objects, slot);

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
    state.live.push(Live {
        entry: entry.clone(),
        meta: meta.clone(),
        objects: objects.clone(),
        slot: Arc::clone(slot),
        loaded_key,
        replaced,
    });
    if !state.slots.iter().any(|s| Arc::ptr_eq(s, slot)) {
        state.slots.push(Arc::clone(slot));
    }
    Ok(entry)
}

/// Removes every object of the bundle `name` from `ctx` and puts back what it replaced. The
/// library stays mapped (plans already made may still call into it); the catalogue keeps the
/// bundle with state `to`.
pub(crate) fn deregister(
    ctx: &SessionContext,
    registry: &PluginRegistry,
    name: &str,
    to: BundleState,
    why: String,
) -> Result<Live, HostError> {
    let mut state = registry.lock();
    let Some(index) = state.live.iter().position(|l| l.entry.name == name) else {
        let loaded: Vec<String> = state.live.iter().map(|l| l.entry.name.clone()).collect();
        return Err(HostError::Usage(format!(
            "no bundle named '{name}' is registered in this session (registered: {}); SELECT name, state FROM df_plugins() lists every bundle considered",
            if loaded.is_empty() {
                "none".to_owned()
            } else {
                loaded.join(", ")
            }
        )));
    };
    let live = state.live.remove(index);
    for (kind, object) in &live.entry.objects {
        match kind {
            Capability::ScalarUdf => ctx.deregister_udf(object),
            Capability::AggregateUdf => ctx.deregister_udaf(object),
            Capability::WindowUdf => ctx.deregister_udwf(object),
            Capability::TableFunction => ctx.deregister_udtf(object),
            Capability::TableProvider => drop(ctx.deregister_table(object.as_str())),
            Capability::TableProviderFactory => {
                let state_ref = ctx.state_ref();
                let mut session = state_ref.write();
                session.table_factories_mut().remove(&object.to_uppercase());
            }
            _ => {}
        }
        state.owners.remove(&(*kind, object.clone()));
    }
    for (kind, object, previous, owner) in live.replaced.iter().cloned() {
        match previous {
            Previous::Scalar(f) => ctx.register_udf(f.as_ref().clone()),
            Previous::Aggregate(f) => ctx.register_udaf(f.as_ref().clone()),
            Previous::Window(f) => ctx.register_udwf(f.as_ref().clone()),
            Previous::TableFunction(f) => ctx.register_udtf(&object, f),
            Previous::Table(t) => drop(ctx.register_table(object.as_str(), t)),
            Previous::Factory(f) => {
                let state_ref = ctx.state_ref();
                state_ref
                    .write()
                    .table_factories_mut()
                    .insert(object.to_uppercase(), f);
            }
        }
        if let Some(owner) = owner {
            state.owners.insert((kind, object), owner);
        }
    }
    crate::options::undeclare(ctx, &live.meta.manifest);
    state.planners.remove(ctx, name);
    PluginRegistry::set_state(&mut state, &live.entry.path, to, why);
    Ok(live)
}
