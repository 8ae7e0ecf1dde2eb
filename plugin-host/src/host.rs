//! The embedding API: [`PluginHost`] runs the load pipeline (steps 1–8) and returns
//! [`Plugins`], which registers into any number of sessions (step 9).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use datafusion::prelude::SessionContext;
//! # use df_plugin_host::PluginHost;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ctx = Arc::new(SessionContext::new());
//! let plugins = PluginHost::builder().search_path("plugins").build()?.load()?;
//! plugins.register_into(&ctx)?;
//! # Ok(()) }
//! ```
//!
//! Every step runs in a `tracing` span named after it (target `df_plugin_host`), so
//! `RUST_LOG=df_plugin_host=debug` with span-close events shows each step's duration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use df_plugin_api::ffi::BundleModuleRef;
use tracing::debug_span;

use crate::catalog::{self, BundleRecord, BundleState};
use crate::config::HostConfig;
use crate::discover::SearchPath;
use crate::error::{HostError, Refusal, Result, Step};
use crate::metadata::{self, BundleMetadata};
use crate::register::{self, ConflictPolicy, PluginRegistry, RegisteredBundle};
use crate::session::SessionSlot;
use crate::trust::digest::{self, DigestCache};
use crate::trust::sign::PublicKey;
use crate::trust::{self, TrustLevel, TrustPolicy, TrustStatus};
use crate::truth::{self, BundleObjects};
use crate::{handshake, open, restore, root_module, verify};

/// Configures a [`PluginHost`].
///
/// Defaults: trust level `any` (file checks only), conflicts refuse the bundle, refusals are
/// reported next to the bundles that loaded, `DF_PLUGIN_PATH` is read, and hashes are cached
/// in [`digest::default_cache_dir`].
#[derive(Clone, Debug)]
pub struct PluginHostBuilder {
    search_paths: Vec<PathBuf>,
    ignore_env: bool,
    policy: ConflictPolicy,
    strict: bool,
    options: BTreeMap<String, Vec<(String, String)>>,
    trust: TrustLevel,
    trusted_keys: Vec<PublicKey>,
    skip: Vec<String>,
    cache_dir: Option<PathBuf>,
    system_allocator: bool,
}

impl Default for PluginHostBuilder {
    fn default() -> Self {
        Self {
            search_paths: Vec::new(),
            ignore_env: false,
            policy: ConflictPolicy::default(),
            strict: false,
            options: BTreeMap::new(),
            trust: TrustLevel::default(),
            trusted_keys: Vec::new(),
            skip: Vec::new(),
            cache_dir: digest::default_cache_dir(),
            system_allocator: false,
        }
    }
}

impl PluginHostBuilder {
    /// Adds a plugin directory (or a single bundle file), searched before `DF_PLUGIN_PATH`.
    pub fn search_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.search_paths.push(path.into());
        self
    }

    /// Ignores `DF_PLUGIN_PATH` (it is read by default).
    pub fn ignore_env(mut self, ignore: bool) -> Self {
        self.ignore_env = ignore;
        self
    }

    /// What to do when a bundle's object name is already taken (default: refuse the bundle).
    pub fn conflict_policy(mut self, policy: ConflictPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Makes `load` and `register_into` fail when any bundle is refused, instead of reporting
    /// the refusals next to the bundles that loaded.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// An option handed to the named bundle's `init` (e.g. storage credentials).
    pub fn bundle_option(
        mut self,
        bundle: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.options
            .entry(bundle.into())
            .or_default()
            .push((key.into(), value.into()));
        self
    }

    /// The trust level (default `any`; see [`crate::trust`]).
    pub fn trust_level(mut self, level: TrustLevel) -> Self {
        self.trust = level;
        self
    }

    /// A public key whose signatures are accepted at trust level `signed`.
    pub fn trusted_key(mut self, key: PublicKey) -> Self {
        self.trusted_keys.push(key);
        self
    }

    /// A bundle name never to load (it is listed as skipped in `df_plugins()`).
    pub fn skip(mut self, bundle: impl Into<String>) -> Self {
        self.skip.push(bundle.into());
        self
    }

    /// Where verified hashes are remembered across processes (`None`: in memory only).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Says that the application's global allocator is the system's (no `#[global_allocator]`,
    /// a Rust binary's default). The host lends a bundle its allocator either way, so that the
    /// bundle's columns are handed over instead of held for the host (plugin ABI 1.9); lent
    /// the system's, a bundle keeps allocating from the system directly, about twenty
    /// instructions an allocation cheaper than through the host's table, and shares it even if
    /// its constructors allocated.
    ///
    /// # Safety
    /// The application's global allocator is `std::alloc::System`: the host frees the memory
    /// bundles hand over with its own allocator.
    pub unsafe fn system_allocator(mut self) -> Self {
        self.system_allocator = true;
        self
    }

    /// Applies a config file: its search paths come before any added later, its settings
    /// replace the builder's, and its trusted key files are read now.
    pub fn config(mut self, config: &HostConfig) -> Result<Self> {
        let mut paths = config.search_paths.clone();
        paths.append(&mut self.search_paths);
        self.search_paths = paths;
        if let Some(level) = config.trust {
            self.trust = level;
        }
        for path in &config.trusted_keys {
            self.trusted_keys.push(PublicKey::read(path)?);
        }
        if let Some(policy) = config.on_conflict {
            self.policy = policy;
        }
        self.skip.extend(config.skip.iter().cloned());
        if config.cache == Some(false) {
            self.cache_dir = None;
        } else if let Some(dir) = &config.cache_dir {
            self.cache_dir = Some(dir.clone());
        }
        for (bundle, options) in &config.options {
            for (k, v) in options {
                self = self.bundle_option(bundle, k, v);
            }
        }
        Ok(self)
    }

    pub fn build(self) -> Result<PluginHost> {
        Ok(PluginHost {
            search_path: SearchPath::resolve(&self.search_paths, !self.ignore_env),
            policy: self.policy,
            strict: self.strict,
            options: Arc::new(self.options),
            trust: TrustPolicy {
                level: self.trust,
                trusted_keys: self.trusted_keys,
                cache: Arc::new(DigestCache::new(self.cache_dir)),
            },
            skip: Arc::new(self.skip),
            system_allocator: self.system_allocator,
        })
    }
}

/// Finds, verifies and loads bundles.
#[derive(Clone, Debug)]
pub struct PluginHost {
    search_path: SearchPath,
    policy: ConflictPolicy,
    strict: bool,
    options: Arc<BTreeMap<String, Vec<(String, String)>>>,
    trust: TrustPolicy,
    skip: Arc<Vec<String>>,
    /// The application's global allocator is the system's (see
    /// [`PluginHostBuilder::system_allocator`]).
    system_allocator: bool,
}

impl Default for PluginHost {
    /// A host with the default settings that searches nothing by itself (for `LOAD PLUGIN`).
    fn default() -> Self {
        PluginHost {
            search_path: SearchPath::default(),
            policy: ConflictPolicy::default(),
            strict: false,
            options: Arc::default(),
            trust: TrustPolicy {
                cache: Arc::new(DigestCache::new(digest::default_cache_dir())),
                ..TrustPolicy::default()
            },
            skip: Arc::default(),
            system_allocator: false,
        }
    }
}

/// How long each pipeline step took for one bundle.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StepTimings(pub Vec<(Step, Duration)>);

impl StepTimings {
    fn time<T>(&mut self, step: Step, bundle: &str, f: impl FnOnce() -> T) -> T {
        let span = debug_span!("step", step = step.as_str(), bundle);
        let _entered = span.enter();
        let start = Instant::now();
        let out = f();
        self.0.push((step, start.elapsed()));
        out
    }

    pub fn total(&self) -> Duration {
        self.0.iter().map(|(_, d)| *d).sum()
    }
}

/// A bundle that passed steps 1–8: opened, handshaken, initialised and truthful.
#[derive(Clone)]
pub struct LoadedBundle {
    pub metadata: BundleMetadata,
    pub warnings: Vec<String>,
    pub timings: StepTimings,
    /// What the trust step established.
    pub trust: TrustStatus,
    module: BundleModuleRef,
    /// The `init` its minor has: 1.0's, 1.1's with planners or 1.15's with table sources.
    init_entry: root_module::InitEntry,
    /// The ABI 1.2 / 1.3 entry points past datafusion-ffi's per-call conversions.
    lean: root_module::LeanPaths,
    pub(crate) slot: Arc<SessionSlot>,
    pub(crate) objects: BundleObjects,
    pub(crate) record: BundleRecord,
}

/// An extra check on a bundle's verified metadata, before its code runs.
pub(crate) type Gate<'a> = &'a dyn Fn(&BundleMetadata) -> Result<(), Refusal>;

/// What became of one candidate file.
pub(crate) enum Outcome {
    Loaded(Box<LoadedBundle>),
    Refused(Refusal),
    Skipped,
}

impl std::fmt::Debug for LoadedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedBundle")
            .field("name", &self.metadata.info.bundle_name)
            .field("path", &self.metadata.path)
            .field("objects", &self.objects.names())
            .finish()
    }
}

impl LoadedBundle {
    pub fn name(&self) -> &str {
        &self.metadata.info.bundle_name
    }

    /// The exported objects as host-side DataFusion objects.
    pub fn objects(&self) -> &BundleObjects {
        &self.objects
    }
}

/// The outcome of [`PluginHost::load`].
#[derive(Clone, Debug)]
pub struct Plugins {
    host: PluginHost,
    bundles: Vec<LoadedBundle>,
    refused: Vec<Refusal>,
    /// A catalogue record for every candidate, in search order.
    records: Vec<BundleRecord>,
    searched: Vec<PathBuf>,
}

/// The outcome of [`Plugins::register_into`].
#[derive(Clone, Debug, Default)]
pub struct Registration {
    /// Bundles registered by this call.
    pub registered: Vec<RegisteredBundle>,
    /// Bundles that were already registered in the session from the same file (no-op).
    pub unchanged: Vec<String>,
    /// Bundles refused at the register step (nothing of them was registered).
    pub refused: Vec<Refusal>,
}

impl PluginHost {
    pub fn builder() -> PluginHostBuilder {
        PluginHostBuilder::default()
    }

    /// The resolved search path.
    pub fn search_path(&self) -> &SearchPath {
        &self.search_path
    }

    /// Step 1: every candidate file.
    pub fn discover(&self) -> Result<Vec<PathBuf>> {
        let span = debug_span!("step", step = "discover");
        let _entered = span.enter();
        self.search_path.candidates()
    }

    /// The trust settings.
    pub fn trust_policy(&self) -> &TrustPolicy {
        &self.trust
    }

    pub(crate) fn set_trust_policy(&mut self, policy: TrustPolicy) {
        self.trust = policy;
    }

    /// Makes this host the one `ctx` loads later bundles with (`LOAD PLUGIN`), and registers
    /// the catalogue functions. If the session already had a host, the stricter trust level of
    /// the two stays in force. [`Plugins::register_into`] does this itself.
    pub fn attach(&self, ctx: &Arc<SessionContext>) -> Result<()> {
        let registry = PluginRegistry::of(ctx);
        registry.set_host(self)?;
        catalog::install(ctx, &registry);
        Ok(())
    }

    /// What to do when names conflict.
    pub fn conflict_policy(&self) -> ConflictPolicy {
        self.policy
    }

    /// Steps 1–8 for every bundle found. Refused bundles are reported in
    /// [`Plugins::refused`] (or fail the call in strict mode); finding no bundle at all is an
    /// error that lists every path searched.
    pub fn load(&self) -> Result<Plugins> {
        let candidates = self.discover()?;
        let searched = self.search_path.searched();
        if candidates.is_empty() {
            return Err(HostError::NotFound {
                what: "no plugin bundles found".into(),
                searched,
            });
        }
        let mut bundles: Vec<LoadedBundle> = Vec::new();
        let mut refused = Vec::new();
        let mut records = Vec::new();
        for path in candidates {
            let (mut record, outcome) = self.consider(&path);
            match outcome {
                Outcome::Loaded(b) => {
                    if let Some(first) = bundles.iter().find(|x| x.name() == b.name()) {
                        let r = Refusal::new(
                            b.name(),
                            &path,
                            Step::Discover,
                            format!(
                                "shadowed by the bundle of the same name found first at {}",
                                first.metadata.path.display()
                            ),
                            "remove one of the two files, or reorder the plugin path",
                        );
                        record.refuse(&r);
                        refused.push(r);
                    } else {
                        bundles.push(*b);
                    }
                }
                Outcome::Refused(r) => refused.push(r),
                Outcome::Skipped => {}
            }
            records.push(record);
        }
        if self.strict && !refused.is_empty() {
            return Err(HostError::Refused(refused));
        }
        Ok(Plugins {
            host: self.clone(),
            bundles,
            refused,
            records,
            searched,
        })
    }

    /// Steps 2–8 for one file (the config's `skip` list does not apply: the file was named).
    pub fn load_file(&self, path: &Path) -> Result<LoadedBundle, Refusal> {
        match self.run_pipeline(path, false, &|_| Ok(())) {
            (_, Outcome::Loaded(b)) => Ok(*b),
            (_, Outcome::Refused(r)) => Err(r),
            (record, Outcome::Skipped) => Err(Refusal::new(
                record.name,
                path,
                Step::Discover,
                "skipped by the host config",
                "remove the bundle from `skip`",
            )),
        }
    }

    /// Steps 2–8 for one discovered file, with its catalogue record.
    pub(crate) fn consider(&self, path: &Path) -> (BundleRecord, Outcome) {
        self.run_pipeline(path, true, &|_| Ok(()))
    }

    /// [`Self::consider`] with one more check, made on the verified metadata before any of the
    /// file's code runs (`LOAD PLUGIN` refuses downgrades with it).
    pub(crate) fn consider_gated(&self, path: &Path, gate: Gate<'_>) -> (BundleRecord, Outcome) {
        self.run_pipeline(path, true, gate)
    }

    fn run_pipeline(
        &self,
        path: &Path,
        honour_skip: bool,
        gate: Gate<'_>,
    ) -> (BundleRecord, Outcome) {
        let mut record = BundleRecord::new(path);
        let mut t = StepTimings::default();
        let result = self.steps(path, &mut record, &mut t, honour_skip, gate);
        record.load_time_us = t.total().as_micros() as u64;
        let outcome = match result {
            Ok(Some(mut bundle)) => {
                record.state = BundleState::Loaded;
                bundle.timings = t;
                bundle.record = record.clone();
                Outcome::Loaded(bundle)
            }
            Ok(None) => {
                record.state = BundleState::Skipped;
                record.reason = Some("listed under `skip` in the host config".into());
                Outcome::Skipped
            }
            Err(r) => {
                record.refuse(&r);
                Outcome::Refused(r)
            }
        };
        (record, outcome)
    }

    fn steps(
        &self,
        path: &Path,
        record: &mut BundleRecord,
        t: &mut StepTimings,
        honour_skip: bool,
        gate: Gate<'_>,
    ) -> Result<Option<Box<LoadedBundle>>, Refusal> {
        let label = record.name.clone();
        let dir = path.parent().unwrap_or(Path::new("."));
        let status = t.time(Step::Trust, &label, || trust::check(path, dir, &self.trust))?;
        record.set_trust(&status);
        let meta = t.time(Step::Metadata, &label, || metadata::read(path))?;
        record.set_metadata(&meta);
        let name = meta.info.bundle_name.clone();
        trust::check_signed_metadata(&status, &meta)?;
        if honour_skip && self.skip.contains(&name) {
            return Ok(None);
        }
        t.time(Step::Compatibility, &name, || verify::check(&meta))?;
        gate(&meta)?;
        let lend = open::lent_allocator(self.system_allocator);
        let open = t.time(Step::Open, &name, || open::open(&meta, status.key, lend))?;
        record.shares_allocator = Some(open.shares_allocator);
        let lib = open.lib;
        t.time(Step::Handshake, &name, || handshake::check(lib, &meta))?;
        let module = t.time(Step::RootModule, &name, || root_module::load(lib, &meta))?;
        let init_entry = root_module::init_entry(lib, &meta)?;
        let lean = root_module::lean_paths(lib, &meta)?;
        let slot = SessionSlot::new();
        let options = self.options.get(&name).cloned().unwrap_or_default();
        let init = t.time(Step::RootModule, &name, || {
            root_module::init(module, init_entry, &meta, &slot, &options)
        })?;
        let objects = t.time(Step::Truthfulness, &name, || {
            let objects = BundleObjects::from_ffi(&init, lean);
            truth::check(&meta, &objects)?;
            restore::apply(&meta, objects)
        })?;
        let warnings = verify::warnings(&meta);
        for w in &warnings {
            tracing::warn!(bundle = %name, "{w}");
        }
        Ok(Some(Box::new(LoadedBundle {
            metadata: meta,
            warnings,
            timings: StepTimings::default(),
            trust: status,
            module,
            init_entry,
            lean,
            slot,
            objects,
            record: record.clone(),
        })))
    }

    /// A fresh `init` of a loaded bundle for another session.
    pub(crate) fn reinit(
        &self,
        bundle: &LoadedBundle,
        ctx: &Arc<SessionContext>,
    ) -> Result<(Arc<SessionSlot>, BundleObjects), Refusal> {
        let slot = SessionSlot::new();
        slot.bind(ctx);
        let options = self.options.get(bundle.name()).cloned().unwrap_or_default();
        let init = root_module::init(
            bundle.module,
            bundle.init_entry,
            &bundle.metadata,
            &slot,
            &options,
        )?;
        let objects = BundleObjects::from_ffi(&init, bundle.lean);
        truth::check(&bundle.metadata, &objects)?;
        Ok((slot, restore::apply(&bundle.metadata, objects)?))
    }

    /// Step 9 for one loaded bundle: binds it to `ctx` (or initialises it again for a second
    /// session) and registers it whole or not at all.
    pub(crate) fn register_bundle(
        &self,
        bundle: &LoadedBundle,
        ctx: &Arc<SessionContext>,
        registry: &PluginRegistry,
    ) -> Result<RegisteredBundle, Refusal> {
        let start = Instant::now();
        // Objects are bound to one session. A second session gets its own, from a fresh
        // `init` against a slot bound to it.
        let (slot, objects) = if bundle.slot.bind(ctx) {
            (Arc::clone(&bundle.slot), bundle.objects.clone())
        } else {
            self.reinit(bundle, ctx)?
        };
        let result = register::register(
            ctx,
            registry,
            &bundle.metadata,
            &objects,
            &slot,
            bundle.trust.key,
            self.policy,
        );
        let mut record = bundle.record.clone();
        record.load_time_us += start.elapsed().as_micros() as u64;
        match &result {
            Ok(_) => record.state = BundleState::Loaded,
            Err(r) => record.refuse(r),
        }
        registry.record(record);
        result
    }
}

impl Plugins {
    pub fn bundles(&self) -> &[LoadedBundle] {
        &self.bundles
    }

    /// Bundles refused during loading, each with the step and reason.
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// The paths that were searched.
    pub fn searched(&self) -> &[PathBuf] {
        &self.searched
    }

    /// A catalogue record for every file considered, in search order.
    pub fn records(&self) -> &[BundleRecord] {
        &self.records
    }

    /// The host that loaded these bundles.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Step 9: registers every loaded bundle into `ctx`, each one whole or not at all, and
    /// the catalogue functions `df_plugins()` and `df_plugin_objects()`. The session keeps what
    /// the bundles' objects need alive; it must stay in this `Arc` (do not replace it with a
    /// copy of its state) for as long as it is used.
    ///
    /// The session remembers this host for later `LOAD PLUGIN`s; if it already had one, the
    /// stricter trust level of the two stays in force.
    pub fn register_into(&self, ctx: &Arc<SessionContext>) -> Result<Registration> {
        self.host.attach(ctx)?;
        let registry = PluginRegistry::of(ctx);
        for record in &self.records {
            if record.state != BundleState::Loaded {
                registry.record(record.clone());
            }
        }
        let mut out = Registration::default();
        for bundle in &self.bundles {
            let name = bundle.name().to_owned();
            let span = debug_span!("step", step = "register", bundle = %name);
            let _entered = span.enter();
            if registry.by_path(&bundle.metadata.path).is_some() {
                out.unchanged.push(name);
                continue;
            }
            match self.host.register_bundle(bundle, ctx, &registry) {
                Ok(entry) => out.registered.push(entry),
                Err(r) => out.refused.push(r),
            }
        }
        if self.host.strict && !out.refused.is_empty() {
            return Err(HostError::Refused(out.refused));
        }
        Ok(out)
    }
}
