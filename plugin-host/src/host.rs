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

use crate::discover::SearchPath;
use crate::error::{HostError, Refusal, Result, Step};
use crate::metadata::{self, BundleMetadata};
use crate::register::{self, ConflictPolicy, PluginRegistry, RegisteredBundle};
use crate::session::SessionSlot;
use crate::truth::{self, BundleObjects};
use crate::{handshake, open, restore, root_module, verify};

/// Configures a [`PluginHost`].
#[derive(Clone, Debug, Default)]
pub struct PluginHostBuilder {
    search_paths: Vec<PathBuf>,
    ignore_env: bool,
    policy: ConflictPolicy,
    strict: bool,
    options: BTreeMap<String, Vec<(String, String)>>,
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

    pub fn build(self) -> Result<PluginHost> {
        Ok(PluginHost {
            search_path: SearchPath::resolve(&self.search_paths, !self.ignore_env),
            policy: self.policy,
            strict: self.strict,
            options: Arc::new(self.options),
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
    module: BundleModuleRef,
    slot: Arc<SessionSlot>,
    objects: BundleObjects,
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
    bundles: Vec<LoadedBundle>,
    refused: Vec<Refusal>,
    searched: Vec<PathBuf>,
    policy: ConflictPolicy,
    strict: bool,
    options: Arc<BTreeMap<String, Vec<(String, String)>>>,
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
        for path in candidates {
            match self.load_file(&path) {
                Ok(b) => {
                    if let Some(first) = bundles.iter().find(|x| x.name() == b.name()) {
                        refused.push(Refusal::new(
                            b.name(),
                            &path,
                            Step::Discover,
                            format!(
                                "shadowed by the bundle of the same name found first at {}",
                                first.metadata.path.display()
                            ),
                            "remove one of the two files, or reorder the plugin path",
                        ));
                    } else {
                        bundles.push(b);
                    }
                }
                Err(r) => refused.push(r),
            }
        }
        if self.strict && !refused.is_empty() {
            return Err(HostError::Refused(refused));
        }
        Ok(Plugins {
            bundles,
            refused,
            searched,
            policy: self.policy,
            strict: self.strict,
            options: Arc::clone(&self.options),
        })
    }

    /// Steps 2–8 for one file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedBundle, Refusal> {
        let mut t = StepTimings::default();
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = t.time(Step::Metadata, &label, || metadata::read(path))?;
        let name = meta.info.bundle_name.clone();
        t.time(Step::Compatibility, &name, || verify::check(&meta))?;
        let lib = t.time(Step::Open, &name, || open::open(&meta))?;
        t.time(Step::Handshake, &name, || handshake::check(lib, &meta))?;
        let module = t.time(Step::RootModule, &name, || root_module::load(lib, &meta))?;
        let slot = SessionSlot::new();
        let options = self.options.get(&name).cloned().unwrap_or_default();
        let exports = t.time(Step::RootModule, &name, || {
            root_module::init(module, &meta, &slot, &options)
        })?;
        let objects = t.time(Step::Truthfulness, &name, || {
            let objects = BundleObjects::from_ffi(&exports);
            truth::check(&meta, &objects)?;
            restore::apply(&meta, objects)
        })?;
        let warnings = verify::warnings(&meta);
        for w in &warnings {
            tracing::warn!(bundle = %name, "{w}");
        }
        Ok(LoadedBundle {
            metadata: meta,
            warnings,
            timings: t,
            module,
            slot,
            objects,
        })
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

    /// Step 9: registers every loaded bundle into `ctx`, each one whole or not at all. The
    /// session keeps what the bundles' objects need alive; it must stay in this `Arc` (do not
    /// replace it with a copy of its state) for as long as it is used.
    pub fn register_into(&self, ctx: &Arc<SessionContext>) -> Result<Registration> {
        let registry = PluginRegistry::of(ctx);
        let mut out = Registration::default();
        for bundle in &self.bundles {
            let name = bundle.name().to_owned();
            let span = debug_span!("step", step = "register", bundle = %name);
            let _entered = span.enter();
            if registry.by_path(&bundle.metadata.path).is_some() {
                out.unchanged.push(name);
                continue;
            }
            // Objects are bound to one session. A second session gets its own, from a fresh
            // `init` against a slot bound to it.
            let (slot, objects) = if bundle.slot.bind(ctx) {
                (Arc::clone(&bundle.slot), bundle.objects.clone())
            } else {
                match self.reinit(bundle, ctx) {
                    Ok(pair) => pair,
                    Err(r) => {
                        out.refused.push(r);
                        continue;
                    }
                }
            };
            match register::register(ctx, &registry, &bundle.metadata, &objects, self.policy) {
                Ok(entry) => {
                    registry.keep_alive(&slot);
                    out.registered.push(entry);
                }
                Err(r) => out.refused.push(r),
            }
        }
        if self.strict && !out.refused.is_empty() {
            return Err(HostError::Refused(out.refused));
        }
        Ok(out)
    }

    fn reinit(
        &self,
        bundle: &LoadedBundle,
        ctx: &Arc<SessionContext>,
    ) -> Result<(Arc<SessionSlot>, BundleObjects), Refusal> {
        let slot = SessionSlot::new();
        slot.bind(ctx);
        let options = self.options.get(bundle.name()).cloned().unwrap_or_default();
        let exports = root_module::init(bundle.module, &bundle.metadata, &slot, &options)?;
        let objects = BundleObjects::from_ffi(&exports);
        truth::check(&bundle.metadata, &objects)?;
        Ok((slot, restore::apply(&bundle.metadata, objects)?))
    }
}
