//! Step 7: the abi_stable root module. abi_stable checks the layout of the module and of every
//! `StableAbi` type it references against the host's; then the host calls `init` with its
//! context and gets the bundle's objects.

use std::sync::Arc;

use abi_stable::library::AbiHeaderRef;
use abi_stable::std_types::{RResult, RString, RVec, Tuple2};
use datafusion::execution::TaskContextProvider;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
use df_plugin_api::ffi::groups_accumulator::{GROUPS_ACCUMULATOR_SYMBOL, GroupsAccumulatorFn};
use df_plugin_api::ffi::plan_runner::{PLAN_RUNNER_SYMBOL, PlanRunnerFn};
use df_plugin_api::ffi::scalar_kernel::{
    FFI_ColumnarBuffers, SCALAR_KERNEL_BUFFERS_SYMBOL, SCALAR_KERNEL_SYMBOL, ScalarKernelFn,
};
use df_plugin_api::ffi::table_source::{FFI_TableSource, TABLE_SOURCES_MINOR};
use df_plugin_api::ffi::{
    BundleModuleRef, FFI_Bundle, FFI_BundleExports, FFI_BundleWithTableSources, FFI_HostContext,
    FFI_LogSink, FFI_Named, INIT_WITH_PLANNERS_SYMBOL, INIT_WITH_TABLE_SOURCES_SYMBOL,
    InitWithPlanners, InitWithTableSources, ROOT_MODULE_SYMBOL,
};
use df_plugin_api::record::{ABI_MAJOR, ABI_MINOR};
use libloading::os::unix::Library;

use crate::error::{Refusal, Step};
use crate::metadata::BundleMetadata;
use crate::session::SessionSlot;

/// Loads the root module (layout-checked) of an opened bundle.
pub fn load(lib: &Library, meta: &BundleMetadata) -> Result<BundleModuleRef, Refusal> {
    let refuse = |reason: String, fix: &str| {
        Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::RootModule,
            reason,
            fix,
        )
    };
    // SAFETY: the symbol is a `LibHeader` static whose address abi_stable reads as
    // `AbiHeaderRef` (exactly what `abi_stable::library::abi_header_from_raw_library` does); the
    // library is never unloaded, so the `'static` lifetime holds.
    let header: AbiHeaderRef = unsafe {
        *lib.get::<AbiHeaderRef>(format!("{ROOT_MODULE_SYMBOL}\0").as_bytes())
            .map_err(|_| {
                refuse(
                    format!("the library does not export the root module `{ROOT_MODULE_SYMBOL}`"),
                    "export the bundle with df_plugin_api::export_bundle!",
                )
            })?
    };
    let header = header.upgrade().map_err(|e| {
        refuse(
            format!("abi_stable refused the library header: {e}"),
            "rebuild the bundle against the same abi_stable 0.11 as the host",
        )
    })?;
    header.init_root_module::<BundleModuleRef>().map_err(|e| {
        refuse(
            format!("the root module's layout does not match the host's: {e}"),
            "rebuild the bundle with the df-plugin-api version the host uses",
        )
    })
}

/// What `init` returned: the exports, the planners of an ABI 1.1 bundle and the table sources
/// of a 1.15 one.
pub struct Initialized {
    pub exports: FFI_BundleExports,
    pub planners: Option<df_plugin_api::ffi::FFI_BundlePlanners>,
    pub table_sources: Vec<FFI_Named<FFI_TableSource>>,
}

/// The `init` a bundle's ABI minor says it has: the newest the host knows.
#[derive(Clone, Copy)]
pub enum InitEntry {
    /// ABI 1.0: the root module's `init`.
    Init,
    /// ABI 1.1: `init` plus the planners.
    WithPlanners(InitWithPlanners),
    /// ABI 1.15: `init_with_planners` plus the table sources.
    WithTableSources(InitWithTableSources),
}

/// The entry point `init` calls for a bundle of this record's minor.
pub fn init_entry(lib: &Library, meta: &BundleMetadata) -> Result<InitEntry, Refusal> {
    // SAFETY: a bundle of ABI 1.15 or later exports this symbol with this type.
    let sources = unsafe {
        entry_point(
            lib,
            meta,
            TABLE_SOURCES_MINOR,
            INIT_WITH_TABLE_SOURCES_SYMBOL,
        )
    }?;
    if let Some(init) = sources {
        return Ok(InitEntry::WithTableSources(init));
    }
    // SAFETY: a bundle of ABI 1.1 or later exports this symbol with this type.
    let planners = unsafe { entry_point(lib, meta, 1, INIT_WITH_PLANNERS_SYMBOL) }?;
    Ok(planners.map_or(InitEntry::Init, InitEntry::WithPlanners))
}

/// A bundle's lean paths past datafusion-ffi's per-call conversions (`None`: a bundle of an
/// older ABI minor, whose objects keep datafusion-ffi's path).
#[derive(Clone, Copy, Default)]
pub struct LeanPaths {
    /// ABI 1.2: the per-batch path of each scalar function.
    pub scalar_kernel: Option<ScalarKernelFn>,
    /// ABI 1.3: executing the bundle's plans with a bound configuration and lean streams.
    pub plan_runner: Option<PlanRunnerFn>,
    /// The bundle's ABI minor, which says what its runners have: from 1.4 they plan scans
    /// ([`df_plugin_api::ffi::plan_runner::FFI_PlanRunner::scan`]), from 1.7 their streams'
    /// fixed-width columns cross as their buffers and they call table functions, from 1.8
    /// they answer which filters a table takes.
    pub abi_minor: u16,
    /// ABI 1.5: the per-batch path of the groups accumulators its aggregate functions make.
    pub groups_accumulator: Option<GroupsAccumulatorFn>,
    /// ABI 1.6: the scalar functions' per-batch path with fixed-width arrays crossing as their
    /// buffers (preferred over `scalar_kernel`).
    pub scalar_kernel_buffers: Option<ScalarKernelFn<FFI_ColumnarBuffers>>,
}

/// The entry points of a bundle's lean paths its ABI minor promises.
pub fn lean_paths(lib: &Library, meta: &BundleMetadata) -> Result<LeanPaths, Refusal> {
    // SAFETY: bundles of ABI 1.2, 1.3, 1.5 and 1.6 or later export these symbols with these
    // types.
    unsafe {
        Ok(LeanPaths {
            scalar_kernel: entry_point(lib, meta, 2, SCALAR_KERNEL_SYMBOL)?,
            plan_runner: entry_point(lib, meta, 3, PLAN_RUNNER_SYMBOL)?,
            abi_minor: meta.info.abi_minor,
            groups_accumulator: entry_point(lib, meta, 5, GROUPS_ACCUMULATOR_SYMBOL)?,
            scalar_kernel_buffers: entry_point(lib, meta, 6, SCALAR_KERNEL_BUFFERS_SYMBOL)?,
        })
    }
}

/// The function `symbol` that every bundle of ABI minor `since` or later exports; `None` for
/// older bundles, a refusal for a bundle whose record claims the minor without the symbol.
///
/// # Safety
/// Bundles of minor `since` or later export `symbol` with type `F` (the exact DataFusion and
/// plugin-api versions were checked by now).
unsafe fn entry_point<F: Copy>(
    lib: &Library,
    meta: &BundleMetadata,
    since: u16,
    symbol: &str,
) -> Result<Option<F>, Refusal> {
    if meta.info.abi_minor < since {
        return Ok(None);
    }
    // SAFETY: the caller's contract.
    let f = unsafe { lib.get::<F>(format!("{symbol}\0").as_bytes()) }.map_err(|_| {
        Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::RootModule,
            format!(
                "the bundle's record says plugin ABI {}.{}, but it does not export `{symbol}`, \
                 which every bundle of plugin ABI {}.{since} or later exports",
                meta.info.abi_major, meta.info.abi_minor, meta.info.abi_major
            ),
            "export the bundle with df_plugin_api::export_bundle!",
        )
    })?;
    Ok(Some(*f))
}

/// Calls the bundle's `init` (the newest its minor has, `entry`) with a host context bound to
/// `slot`.
pub fn init(
    module: BundleModuleRef,
    entry: InitEntry,
    meta: &BundleMetadata,
    slot: &Arc<SessionSlot>,
    options: &[(String, String)],
) -> Result<Initialized, Refusal> {
    let provider = Arc::clone(slot) as Arc<dyn TaskContextProvider>;
    let provider = FFI_TaskContextProvider::from(&provider);
    let codec =
        FFI_LogicalExtensionCodec::new(Arc::new(DefaultLogicalExtensionCodec {}), None, provider);
    let host = FFI_HostContext {
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        host: RString::from(concat!("df-plugin-host ", env!("CARGO_PKG_VERSION"))),
        log_sink: FFI_LogSink::new(&meta.info.bundle_name),
        options: options
            .iter()
            .map(|(k, v)| Tuple2(RString::from(k.as_str()), RString::from(v.as_str())))
            .collect::<RVec<_>>(),
        logical_codec: codec,
    };
    let initialized = |exports, planners, table_sources: Vec<_>| Initialized {
        exports,
        planners,
        table_sources,
    };
    let result = match entry {
        InitEntry::WithTableSources(init) => match init(&host) {
            RResult::ROk(FFI_BundleWithTableSources {
                bundle: FFI_Bundle { exports, planners },
                table_sources,
            }) => RResult::ROk(initialized(
                exports,
                Some(planners),
                table_sources.into_iter().collect(),
            )),
            RResult::RErr(e) => RResult::RErr(e),
        },
        InitEntry::WithPlanners(init) => match init(&host) {
            RResult::ROk(FFI_Bundle { exports, planners }) => {
                RResult::ROk(initialized(exports, Some(planners), Vec::new()))
            }
            RResult::RErr(e) => RResult::RErr(e),
        },
        InitEntry::Init => match (module.init())(&host) {
            RResult::ROk(exports) => RResult::ROk(initialized(exports, None, Vec::new())),
            RResult::RErr(e) => RResult::RErr(e),
        },
    };
    match result {
        RResult::ROk(initialized) => Ok(initialized),
        RResult::RErr(message) => Err(Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::RootModule,
            format!("the bundle's init failed: {message}"),
            "see the bundle's message; check its options in the host configuration",
        )),
    }
}
