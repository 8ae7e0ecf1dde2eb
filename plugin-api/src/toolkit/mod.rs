//! The author toolkit: everything a bundle needs besides its own functions.
//!
//! A bundle is a cdylib with a one-line `build.rs` ([`crate::build::embed_manifest`]) and a
//! `lib.rs` that registers its objects in a function and exports it:
//!
//! ```ignore
//! use df_plugin_api::toolkit::Bundle;
//!
//! fn exports(bundle: &mut Bundle) -> datafusion::error::Result<()> {
//!     bundle.scalar_udf(MyFunction::new());
//!     Ok(())
//! }
//!
//! df_plugin_api::export_bundle!(exports);
//! ```
//!
//! The macro embeds the manifest and ABI record, exports the handshake symbols and the abi_stable
//! root module; `init` then installs the log bridge, starts the bundle's tokio runtime, calls
//! `exports`, wraps every object in a panic guard and converts it to its datafusion-ffi struct.

pub mod guard;
pub mod options;
pub mod panic;
pub mod runtime;
pub mod session;
pub mod source;
pub mod values;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};

use abi_stable::std_types::{RResult, RString};
use datafusion::catalog::{TableFunctionImpl, TableProviderFactory};
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
use datafusion_ffi::udtf::FFI_TableFunction;
use tokio::runtime::Handle;

use crate::ffi::plan_runner;
use crate::ffi::planner::expr::ExprPlannerHooks;
use crate::ffi::planner::objects::PlanObjectExporter;
use crate::ffi::planner::{FFI_ExprPlanner, FFI_RelationPlanner, FFI_TypePlanner};
use crate::ffi::table_source::FFI_TableSource;
use crate::ffi::{
    FFI_Bundle, FFI_BundleExports, FFI_BundlePlanners, FFI_BundleWithTableSources,
    FFI_FunctionSignature, FFI_HostContext, FFI_Named, ForeignLogSink,
};
use crate::record::{BuildFacts, Capability};
use datafusion::logical_expr::planner::{ExprPlanner, RelationPlanner, TypePlanner};
use guard::GuardedExporter;
use guard::table::{GuardedTableFunction, GuardedTableProviderFactory};
use panic::{BundleTag, ObjectLabel};
use source::TableSource;

/// Major version of datafusion-ffi this crate is pinned to (a test checks it against
/// `datafusion_ffi::version()`, which is not a `const fn`).
pub const DATAFUSION_FFI_MAJOR: u32 = 55;

/// What this build links. `datafusion = "=55.2.0"` fixes Arrow's major (59) and
/// `sqlparser = "=0.62.0"` is pinned directly, so these are true by construction. The host
/// compares a bundle's record against its own copy of these facts.
pub const BUILD_FACTS: BuildFacts = BuildFacts {
    datafusion_ffi_major: DATAFUSION_FFI_MAJOR,
    arrow_major: 59,
    datafusion_version: datafusion::DATAFUSION_VERSION,
    sqlparser_version: "0.62.0",
    target: env!("DF_PLUGIN_TARGET"),
    rustc_version: env!("DF_PLUGIN_RUSTC_VERSION"),
};

/// The objects a bundle exports, collected by its `exports` function.
pub struct Bundle {
    name: Arc<str>,
    options: BTreeMap<String, String>,
    runtime: Handle,
    scalar_udfs: Vec<ScalarUDF>,
    aggregate_udfs: Vec<AggregateUDF>,
    window_udfs: Vec<WindowUDF>,
    // Tables and planners are converted as they are added, not in `into_bundle`: that way
    // their datafusion-ffi conversions (and the plan runner they enable) are only reachable
    // from the methods that add them, and the linker drops them from a bundle of functions.
    table_functions: Vec<FFI_Named<FFI_TableFunction>>,
    table_providers: Vec<FFI_Named<FFI_TableProvider>>,
    table_provider_factories: Vec<FFI_Named<FFI_TableProviderFactory>>,
    table_sources: Vec<FFI_Named<FFI_TableSource>>,
    planners: FFI_BundlePlanners,
    /// Wraps and converts every function and table, exported or made by a planner.
    exporter: Arc<GuardedExporter>,
}

impl Bundle {
    /// The bundle's name, from its manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An option the host configured for this bundle (e.g. a storage credential).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// All options the host configured for this bundle.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// The bundle's own tokio runtime (see [`runtime`]).
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    pub fn scalar_udf(&mut self, udf: impl Into<ScalarUDF>) -> &mut Self {
        self.scalar_udfs.push(udf.into());
        self
    }

    pub fn aggregate_udf(&mut self, udaf: impl Into<AggregateUDF>) -> &mut Self {
        self.aggregate_udfs.push(udaf.into());
        self
    }

    pub fn window_udf(&mut self, udwf: impl Into<WindowUDF>) -> &mut Self {
        self.window_udfs.push(udwf.into());
        self
    }

    pub fn table_function(
        &mut self,
        name: impl Into<String>,
        function: Arc<dyn TableFunctionImpl>,
    ) -> &mut Self {
        let name = name.into();
        let function = GuardedTableFunction::wrap(function, &self.exporter.bundle, &name);
        // No runtime: datafusion-ffi's consumer reads it through the producer's private data
        // (unsound across images); the guard enters ours instead.
        let function =
            FFI_TableFunction::new_with_ffi_codec(function, None, self.exporter.codec.clone());
        self.table_functions.push(FFI_Named::new(&name, function));
        plan_runner::enable();
        self
    }

    /// A table function whose tables are batches only ([`source`]): it crosses without
    /// DataFusion's plans, so unlike [`Bundle::table_function`] it adds none of them to the
    /// bundle. The host registers it as a table function named `name`.
    pub fn table_source(
        &mut self,
        name: impl Into<String>,
        source: Arc<dyn TableSource>,
    ) -> &mut Self {
        let name = name.into();
        let label = ObjectLabel::new(&self.exporter.bundle, "table function", &name);
        let source = FFI_TableSource::new(source, label, Some(self.runtime.clone()));
        self.table_sources.push(FFI_Named::new(&name, source));
        self
    }

    pub fn table_provider(
        &mut self,
        name: impl Into<String>,
        provider: Arc<dyn TableProvider>,
    ) -> &mut Self {
        let name = name.into();
        let provider = self.exporter.table(&name, provider, true);
        self.table_providers.push(FFI_Named::new(&name, provider));
        plan_runner::enable();
        self
    }

    /// A factory for `CREATE EXTERNAL TABLE ... STORED AS <name>`.
    pub fn table_provider_factory(
        &mut self,
        name: impl Into<String>,
        factory: Arc<dyn TableProviderFactory>,
    ) -> &mut Self {
        let name = name.into();
        let factory = GuardedTableProviderFactory::wrap(factory, &self.exporter.bundle, &name);
        let factory = FFI_TableProviderFactory::new_with_ffi_codec(
            factory,
            Some(self.runtime.clone()),
            self.exporter.codec.clone(),
        );
        self.table_provider_factories
            .push(FFI_Named::new(&name, factory));
        plan_runner::enable();
        self
    }

    /// An expression planner, asked only about the hooks and operators in `hooks`. Bundle
    /// planners run before DataFusion's own, so they can take operators such as `->`.
    pub fn expr_planner(
        &mut self,
        name: &str,
        planner: Arc<dyn ExprPlanner>,
        hooks: ExprPlannerHooks,
    ) -> &mut Self {
        let exporter = Arc::clone(&self.exporter) as Arc<dyn PlanObjectExporter>;
        let planner = FFI_ExprPlanner::new_with_exporter(name, planner, hooks, exporter);
        self.planners.expr_planners.push(planner);
        plan_runner::enable();
        self
    }

    /// A relation planner, offered only the FROM-clause items of `kinds`
    /// ([`crate::ffi::planner::relation::factor_kinds`] bits).
    pub fn relation_planner(
        &mut self,
        name: &str,
        planner: Arc<dyn RelationPlanner>,
        kinds: u32,
    ) -> &mut Self {
        let exporter = Arc::clone(&self.exporter) as Arc<dyn PlanObjectExporter>;
        let planner = FFI_RelationPlanner::new_with_exporter(name, planner, kinds, exporter);
        self.planners.relation_planners.push(planner);
        plan_runner::enable();
        self
    }

    /// A lean expression planner ([`crate::ffi::planner::lean`]): it sees operands other than
    /// columns and literals as typed placeholders and its answers call functions by name, so
    /// its bundle links none of the general planner codec (nor the plan runner). Refuses the
    /// `AGGREGATE` and `WINDOW` hooks.
    pub fn lean_expr_planner(
        &mut self,
        name: &str,
        planner: Arc<dyn ExprPlanner>,
        hooks: ExprPlannerHooks,
    ) -> Result<&mut Self> {
        let planner = FFI_ExprPlanner::new_lean(name, planner, hooks)?;
        self.planners.expr_planners.push(planner);
        Ok(self)
    }

    /// A lean relation planner ([`crate::ffi::planner::lean`]): it returns filters,
    /// projections, sorts, limits, aliases, `DISTINCT` and `UNION` over the plans the host
    /// made for it, calling functions by name; its bundle links none of the general planner
    /// codec (nor the plan runner).
    pub fn lean_relation_planner(
        &mut self,
        name: &str,
        planner: Arc<dyn RelationPlanner>,
        kinds: u32,
    ) -> &mut Self {
        let planner = FFI_RelationPlanner::new_lean(name, planner, kinds);
        self.planners.relation_planners.push(planner);
        self
    }

    /// A type planner for the SQL types named `type_names` (upper-case base names).
    pub fn type_planner(
        &mut self,
        name: &str,
        planner: Arc<dyn TypePlanner>,
        type_names: &[&str],
    ) -> &mut Self {
        let planner = FFI_TypePlanner::new(name, planner, type_names);
        self.planners.type_planners.push(planner);
        self
    }

    /// The real signature of every function, which datafusion-ffi's structs do not carry.
    fn function_signatures(&self) -> stabby::vec::Vec<FFI_FunctionSignature> {
        let scalar = self
            .scalar_udfs
            .iter()
            .map(|u| (Capability::ScalarUdf, u.name(), u.signature()));
        let aggregate = self
            .aggregate_udfs
            .iter()
            .map(|u| (Capability::AggregateUdf, u.name(), u.signature()));
        let window = self
            .window_udfs
            .iter()
            .map(|u| (Capability::WindowUdf, u.name(), u.signature()));
        scalar
            .chain(aggregate)
            .chain(window)
            .filter_map(|(kind, name, sig)| FFI_FunctionSignature::new(kind, name, sig))
            .collect()
    }

    /// Wraps every function in its panic guard and converts it to its datafusion-ffi struct
    /// (tables and planners were converted as they were added).
    fn into_bundle(self) -> FFI_BundleWithTableSources {
        let exporter = &self.exporter;
        let function_signatures = self.function_signatures();
        let exports = FFI_BundleExports {
            function_signatures,
            scalar_udfs: self
                .scalar_udfs
                .into_iter()
                .map(|u| exporter.scalar_udf(u))
                .collect(),
            aggregate_udfs: self
                .aggregate_udfs
                .into_iter()
                .map(|u| exporter.aggregate_udf(u))
                .collect(),
            window_udfs: self
                .window_udfs
                .into_iter()
                .map(|u| exporter.window_udf(u))
                .collect(),
            table_functions: self.table_functions.into_iter().collect(),
            table_providers: self.table_providers.into_iter().collect(),
            table_provider_factories: self.table_provider_factories.into_iter().collect(),
        };
        FFI_BundleWithTableSources {
            bundle: FFI_Bundle {
                exports,
                planners: self.planners,
            },
            table_sources: self.table_sources.into_iter().collect(),
        }
    }
}

/// Installs the log bridge and a panic hook that logs instead of printing, once per bundle
/// image. The first host context wins; later `init` calls (a second session) reuse it.
fn install_process_hooks(sink: ForeignLogSink) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let sink: &'static ForeignLogSink = Box::leak(Box::new(sink));
        if log::set_logger(sink).is_ok() {
            log::set_max_level(sink.max_level_filter());
        }
        let _ = tracing::subscriber::set_global_default(*sink);
        // The guard turns the panic into an error for the user; the default hook would also
        // print it to the host's stderr, in the middle of a result table.
        std::panic::set_hook(Box::new(|info| {
            log::debug!(target: "df_plugin::panic", "contained panic: {info}");
        }));
    });
}

/// The body of every bundle's `init` (ABI 1.0: no planners); called by the code
/// [`crate::export_bundle!`] generates.
#[doc(hidden)]
pub fn init(
    host: &FFI_HostContext,
    name: &'static str,
    exports: fn(&mut Bundle) -> Result<()>,
) -> RResult<FFI_BundleExports, RString> {
    match init_with_planners(host, name, exports) {
        RResult::ROk(bundle) => RResult::ROk(bundle.exports),
        RResult::RErr(e) => RResult::RErr(e),
    }
}

/// The body of every bundle's `init_with_planners` (ABI 1.1). A host that calls it rather
/// than `init_with_table_sources` is older than table sources and cannot load this bundle;
/// its table sources are dropped here and the host's truthfulness check names them.
#[doc(hidden)]
pub fn init_with_planners(
    host: &FFI_HostContext,
    name: &'static str,
    exports: fn(&mut Bundle) -> Result<()>,
) -> RResult<FFI_Bundle, RString> {
    match init_with_table_sources(host, name, exports) {
        RResult::ROk(bundle) => RResult::ROk(bundle.bundle),
        RResult::RErr(e) => RResult::RErr(e),
    }
}

/// The body of every bundle's `init_with_table_sources` (ABI 1.15).
#[doc(hidden)]
pub fn init_with_table_sources(
    host: &FFI_HostContext,
    name: &'static str,
    exports: fn(&mut Bundle) -> Result<()>,
) -> RResult<FFI_BundleWithTableSources, RString> {
    let result = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<_, String> {
        install_process_hooks(ForeignLogSink(host.log_sink));
        let rt = runtime::runtime(name)
            .map_err(|e| format!("cannot start the bundle's tokio runtime: {e}"))?;
        let options: BTreeMap<String, String> = host
            .options
            .iter()
            .map(|kv| (kv.0.to_string(), kv.1.to_string()))
            .collect();
        let tag = BundleTag::new(
            name,
            options.get(panic::INJECT_PANIC_OPTION).map(String::as_str),
        );
        if tag.inject_panic.as_deref() == Some("init") {
            panic!("{}", panic::INJECTED_PANIC);
        }
        let mut bundle = Bundle {
            name: Arc::from(name),
            options,
            runtime: rt.handle().clone(),
            scalar_udfs: Vec::new(),
            aggregate_udfs: Vec::new(),
            window_udfs: Vec::new(),
            table_functions: Vec::new(),
            table_providers: Vec::new(),
            table_provider_factories: Vec::new(),
            table_sources: Vec::new(),
            planners: FFI_BundlePlanners {
                expr_planners: Default::default(),
                relation_planners: Default::default(),
                type_planners: Default::default(),
            },
            exporter: Arc::new(GuardedExporter {
                bundle: tag,
                runtime: rt.handle().clone(),
                codec: host.logical_codec.clone(),
            }),
        };
        {
            let _entered = rt.enter();
            exports(&mut bundle).map_err(|e| e.to_string())?;
        }
        Ok(bundle.into_bundle())
    }));
    match result {
        Ok(Ok(exports)) => RResult::ROk(exports),
        Ok(Err(message)) => RResult::RErr(message.into()),
        Err(payload) => RResult::RErr(
            format!(
                "panicked in init: {}",
                panic::panic_message(payload.as_ref())
            )
            .into(),
        ),
    }
}

/// Copies a string into an array at compile time (the manifest's link section).
#[doc(hidden)]
pub const fn str_to_array<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    assert!(bytes.len() == N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Exports a bundle: its metadata sections, handshake symbols and abi_stable root module, and
/// declares its global allocator ([`crate::ffi::allocator::BundleAllocator`]), which the host
/// lends its own to when it opens the bundle (plugin ABI 1.9): a batch's columns can then be
/// handed to the host instead of held for it.
///
/// Takes the path of a `fn(&mut Bundle) -> datafusion::error::Result<()>` that registers the
/// bundle's objects. Requires the bundle's build script to have run
/// [`crate::build::embed_manifest`]. A bundle that declares a global allocator of its own
/// writes `export_bundle!(exports, own_allocator)`: its columns cross as in plugin ABI 1.8.
#[macro_export]
macro_rules! export_bundle {
    ($exports:path) => {
        $crate::export_bundle!($exports, own_allocator);

        #[doc(hidden)]
        pub mod __df_plugin_allocator {
            use $crate::ffi::allocator::{BundleAllocator, FFI_HostAllocator, share_allocator};

            #[global_allocator]
            static ALLOCATOR: BundleAllocator = BundleAllocator;

            /// ABI 1.9: the host lends its allocator (see
            /// `df_plugin_api::ffi::allocator::SHARE_ALLOCATOR_SYMBOL`).
            ///
            /// # Safety
            /// `host` allocates with `std::alloc`'s contract.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn df_plugin_share_allocator(
                host: &'static FFI_HostAllocator,
            ) -> u8 {
                // SAFETY: `ALLOCATOR` is this image's global allocator; the caller's contract.
                unsafe { share_allocator(host) }
            }
        }
    };
    ($exports:path, own_allocator) => {
        #[doc(hidden)]
        pub mod __df_plugin_export {
            #[allow(unused_imports)]
            use super::*;
            use $crate::__private::abi_stable::library::{
                __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
            };
            use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait;
            use $crate::__private::abi_stable::std_types::{RResult, RString};
            use $crate::record::{AbiRecord, RecordOverrides};

            include!(concat!(env!("OUT_DIR"), "/df_plugin_bundle.rs"));

            #[used]
            #[cfg_attr(target_os = "macos", unsafe(link_section = "__DATA,__dfplugin_abi"))]
            #[cfg_attr(not(target_os = "macos"), unsafe(link_section = ".dfplugin.abi"))]
            static ABI_RECORD: AbiRecord = AbiRecord::for_bundle(
                NAME,
                VERSION,
                CAPABILITIES,
                $crate::toolkit::BUILD_FACTS,
                OVERRIDES,
            );

            #[used]
            #[cfg_attr(target_os = "macos", unsafe(link_section = "__DATA,__dfplugin_man"))]
            #[cfg_attr(not(target_os = "macos"), unsafe(link_section = ".dfplugin.manifest"))]
            static MANIFEST_SECTION: [u8; MANIFEST.len()] = $crate::toolkit::str_to_array(MANIFEST);

            /// Handshake: the same record as the link section, from live code.
            #[unsafe(no_mangle)]
            pub extern "C" fn df_plugin_abi_record() -> *const AbiRecord {
                &ABI_RECORD
            }

            /// The embedded manifest, from live code.
            ///
            /// # Safety
            /// `len` is null or points to a writable `usize`.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn df_plugin_manifest(len: *mut usize) -> *const u8 {
                if !len.is_null() {
                    // SAFETY: the host passes a valid pointer to a usize.
                    unsafe { *len = MANIFEST_SECTION.len() };
                }
                MANIFEST_SECTION.as_ptr()
            }

            extern "C" fn init(
                host: &$crate::ffi::FFI_HostContext,
            ) -> RResult<$crate::ffi::FFI_BundleExports, RString> {
                $crate::toolkit::init(host, NAME, $exports)
            }

            /// ABI 1.1: `init` plus the bundle's planners (see
            /// `df_plugin_api::ffi::INIT_WITH_PLANNERS_SYMBOL`).
            #[unsafe(no_mangle)]
            pub extern "C" fn df_plugin_init_with_planners(
                host: &$crate::ffi::FFI_HostContext,
            ) -> RResult<$crate::ffi::FFI_Bundle, RString> {
                $crate::toolkit::init_with_planners(host, NAME, $exports)
            }

            /// ABI 1.15: `init_with_planners` plus the bundle's table sources (see
            /// `df_plugin_api::ffi::INIT_WITH_TABLE_SOURCES_SYMBOL`).
            #[unsafe(no_mangle)]
            pub extern "C" fn df_plugin_init_with_table_sources(
                host: &$crate::ffi::FFI_HostContext,
            ) -> RResult<$crate::ffi::FFI_BundleWithTableSources, RString> {
                $crate::toolkit::init_with_table_sources(host, NAME, $exports)
            }

            /// ABI 1.2: the lean per-batch path of each scalar function `init` returned (see
            /// `df_plugin_api::ffi::scalar_kernel::SCALAR_KERNEL_SYMBOL`).
            #[unsafe(no_mangle)]
            pub extern "C" fn df_plugin_scalar_kernel(
                udf: &$crate::__private::datafusion_ffi::udf::FFI_ScalarUDF,
            ) -> $crate::__private::datafusion_ffi::util::FFI_Option<
                $crate::ffi::scalar_kernel::FFI_ScalarKernel,
            > {
                $crate::ffi::scalar_kernel::export_kernel(udf)
            }

            /// ABI 1.6: the same path with fixed-width arrays crossing as their buffers (see
            /// `df_plugin_api::ffi::scalar_kernel::SCALAR_KERNEL_BUFFERS_SYMBOL`).
            #[unsafe(no_mangle)]
            pub extern "C" fn df_plugin_scalar_kernel_buffers(
                udf: &$crate::__private::datafusion_ffi::udf::FFI_ScalarUDF,
            ) -> $crate::__private::datafusion_ffi::util::FFI_Option<
                $crate::ffi::scalar_kernel::FFI_ScalarKernel<
                    $crate::ffi::scalar_kernel::FFI_ColumnarBuffers,
                >,
            > {
                $crate::ffi::scalar_kernel::export_kernel(udf)
            }

            /// ABI 1.3: executes this bundle's plans with a configuration bound once, through
            /// lean streams; 1.4: plans its scans too (see
            /// `df_plugin_api::ffi::plan_runner::PLAN_RUNNER_SYMBOL`).
            #[unsafe(no_mangle)]
            pub extern "C" fn df_plugin_plan_runner(
                config: $crate::__private::datafusion_ffi::config::FFI_ConfigOptions,
            ) -> $crate::__private::datafusion_ffi::util::FFI_Result<
                $crate::ffi::plan_runner::FFI_PlanRunner,
            > {
                $crate::ffi::plan_runner::export_enabled_plan_runner(config)
            }

            /// ABI 1.5: the lean per-batch path of a groups accumulator this bundle's
            /// aggregate functions made (see
            /// `df_plugin_api::ffi::groups_accumulator::GROUPS_ACCUMULATOR_SYMBOL`).
            ///
            /// # Safety
            /// `accumulator` points to a datafusion-ffi `FFI_GroupsAccumulator`, which this
            /// call moves out.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn df_plugin_groups_accumulator(
                accumulator: *mut ::std::ffi::c_void,
            ) -> $crate::__private::datafusion_ffi::util::FFI_Result<
                $crate::ffi::groups_accumulator::FFI_LeanGroupsAccumulator,
            > {
                // SAFETY: the caller's contract.
                unsafe { $crate::ffi::groups_accumulator::export_groups_accumulator(accumulator) }
            }

            fn root_module() -> $crate::ffi::BundleModuleRef {
                $crate::ffi::BundleModule { init }.leak_into_prefix()
            }

            extern "C" fn root_module_loader() -> RootModuleResult {
                __call_root_module_loader(root_module)
            }

            /// What abi_stable's `#[export_root_module]` would generate.
            #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
            pub static DF_PLUGIN_ROOT_MODULE: LibHeader = unsafe {
                LibHeader::from_constructor::<$crate::ffi::BundleModuleRef>(
                    root_module_loader,
                    CheckTypeLayout::Yes,
                )
            };
        }
    };
}
