//! `FFI_PlanRunner`: executes a bundle's own plans with a configuration bound once, and
//! returns [`FFI_BatchStream`]s (plugin ABI 1.3).
//!
//! datafusion-ffi's `FFI_ExecutionPlan::execute` takes an `FFI_TaskContext`, which the bundle
//! turns back into a task context on every call: the whole `ConfigOptions` as a string map
//! and back, every function of the registry, and a fresh `RuntimeEnv`; and its stream exports
//! the schema with every batch (see [`super::batch_stream`]). A scan's partitions of one query
//! share one configuration, and a scan's stream looks up no function. A runner is the
//! configuration converted once: the host binds one per configuration (the same `Arc` for
//! every query of a session until a `SET`), and then each `execute` sends only the plan, the
//! partition and the two ids.
//!
//! The plan must be one the bundle made (an `FFI_ExecutionPlan` whose library marker is the
//! bundle's datafusion-ffi): datafusion-ffi then hands back the bundle's own plan object, and
//! the runner executes exactly what `FFI_ExecutionPlan::execute` would have.
//!
//! ABI 1.4 adds [`FFI_PlanRunner::scan`], for the same reason one step earlier: datafusion-ffi's
//! `FFI_TableProvider::scan` rebuilds a session from the host's (the configuration as strings
//! and back, a `ForeignSession`), asks the host for its task context to decode the filters
//! (every function it holds, wrapped one by one) and then the toolkit builds a `SessionState`
//! of its own; about 0.6 ms per scan, most of a Delta `COUNT(*)`. A runner keeps one
//! `SessionState` with the bound configuration and the bundle's runtime environment, and each
//! scan sends only the provider, projection, limit, start time and filters. That session has
//! no functions, so a scan whose filters call one keeps datafusion-ffi's path (see
//! [`calls_no_function`]). It has the host's configuration but not the host session's table
//! options (`SET format.*`); neither has the session the toolkit's `bundle_state` builds on
//! datafusion-ffi's path, so a toolkit provider sees the same session on both paths.
//!
//! ABI 1.7 adds [`FFI_PlanRunner::execute_buffers`]: the same execution, with a stream whose
//! fixed-width columns cross as their buffers ([`FFI_BatchBuffers`]) instead of one struct
//! array through the Arrow C data interface. It also adds
//! [`FFI_PlanRunner::call_table_function`], for the step before a table function's scan:
//! datafusion-ffi's `call_with_args` rebuilds a session from the host's on every call (the
//! configuration as strings and back, a task context to decode the arguments), about 0.4 ms,
//! which a `SELECT` of a few rows from `time_buckets` pays twice over its own work. The runner
//! calls the function in the session it keeps for scans, when the arguments call no function
//! (literals and casts, as a table function's arguments usually are): [`RunnerTableFunction`].
//!
//! ABI 1.8 adds [`FFI_PlanRunner::supports_filters_pushdown`]: the host's optimizer asks a
//! table which filters it takes once per filtered query, and datafusion-ffi's answer converts
//! the host's task context to decode them, the whole configuration to strings and back: 0.75M
//! instructions of the 2.7M a partition-filtered Delta query executed more than natively
//! (callgrind). The runner decodes filters that call no function in the session it keeps for
//! scans, as `scan` does. Neither the decoding nor the provider's answer reads the
//! configuration, so any runner already bound answers.
//!
//! ABI 1.11 adds [`FFI_PlanRunner::schema`]: DataFusion asks a table for its schema at least
//! once a query, and datafusion-ffi sends it through the Arrow C data interface every time,
//! exported in the bundle and parsed in the host: 127K of the 236K instructions a Delta
//! `COUNT(*)` (answered from statistics, all planning) executed more than natively. The host
//! cannot keep the first schema it got: a table may change (the Delta bundle's follows the
//! newest commit, and refuses a statement planned with a schema it no longer has). So the
//! runner asks the provider each time, as datafusion-ffi does, and sends a fingerprint of the
//! answer, with the schema itself only when the fingerprint is not the one the host holds.

use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use async_ffi::{FfiFuture, FutureExt};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use datafusion::arrow::temporal_conversions::timestamp_ns_to_datetime;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::config::FFI_ConfigOptions;
use datafusion_ffi::execution_plan::FFI_ExecutionPlan;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::table_source::FFI_TableProviderFilterPushDown;
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_exprs;
use datafusion_proto::logical_plan::to_proto::serialize_exprs;
use datafusion_proto::protobuf::LogicalExprList;
use prost::Message;
use stabby::string::String as SString;
use stabby::vec::Vec as SVec;
use tokio::runtime::Handle;

use super::batch_stream::{FFI_BatchBuffers, FFI_BatchStream, ForeignBatchStream, StreamBatch};
use super::bound::BoundCache;
use super::planner::ffi_guard;
use crate::toolkit::guard::table::GuardedExec;

/// ABI 1.3: `extern "C" fn(FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner>`, a runner of the
/// bundle's plans bound to that configuration.
pub const PLAN_RUNNER_SYMBOL: &str = "df_plugin_plan_runner";

/// The type of [`PLAN_RUNNER_SYMBOL`].
pub type PlanRunnerFn = extern "C" fn(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner>;

/// A stable struct that executes the producer's plans with one configuration.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_PlanRunner {
    /// Executes partition `partition` of `plan`, which this image made.
    pub execute: unsafe extern "C" fn(
        runner: &Self,
        plan: &FFI_ExecutionPlan,
        partition: usize,
        session_id: SString,
        task_id: FFI_Option<SString>,
    ) -> FFI_Result<FFI_BatchStream>,
    pub clone: unsafe extern "C" fn(runner: &Self) -> Self,
    pub release: unsafe extern "C" fn(runner: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
    /// ABI 1.4 (appended, so absent from the runners of 1.3 bundles, whose hosts must not
    /// read it): plans a scan of `provider`, which this image made, with the bound
    /// configuration. `filters` is a `LogicalExprList` that calls no function; `query_start`
    /// the query's start in nanoseconds since the epoch. `None` when the runner cannot take
    /// the scan (another image's provider, filters it cannot decode): the host then calls the
    /// provider's own `scan`.
    pub scan: ScanFn,
    /// ABI 1.7 (appended, as `scan`): [`FFI_PlanRunner::execute`] with a stream whose
    /// fixed-width columns cross as their buffers.
    pub execute_buffers: unsafe extern "C" fn(
        runner: &Self,
        plan: &FFI_ExecutionPlan,
        partition: usize,
        session_id: SString,
        task_id: FFI_Option<SString>,
    ) -> FFI_Result<FFI_BatchStream<FFI_BatchBuffers>>,
    /// ABI 1.7: calls `udtf`, which this image made, in the session scans are planned in.
    /// `args` is a `LogicalExprList` that calls no function, `query_start` as for `scan`.
    /// `None` when the runner cannot take the call (another image's function, arguments it
    /// cannot decode): the host then calls the function through datafusion-ffi.
    pub call_table_function: unsafe extern "C" fn(
        runner: &Self,
        udtf: &FFI_TableFunction,
        args: SVec<u8>,
        query_start: FFI_Option<i64>,
    ) -> FFI_Option<FFI_Result<FFI_TableProvider>>,
    /// ABI 1.8 (appended, as `scan`): which of `filters` (a `LogicalExprList` that calls no
    /// function) `provider`, which this image made, takes, one answer per filter. `None` when
    /// the runner cannot answer (another image's provider, filters it cannot decode): the
    /// host then asks through datafusion-ffi. The provider answers, so one that should be
    /// offered no filter must say so itself, as the toolkit's do.
    pub supports_filters_pushdown: unsafe extern "C" fn(
        runner: &Self,
        provider: &FFI_TableProvider,
        filters: SVec<u8>,
    ) -> FFI_Option<
        FFI_Result<SVec<FFI_TableProviderFilterPushDown>>,
    >,
    /// ABI 1.11 (appended, as `scan`): the schema `provider` (which this image made) gives
    /// now, with its fingerprint; the schema is left out when the fingerprint is `known`, the
    /// one an earlier answer carried (0 for none). `None` when the runner cannot answer
    /// (another image's provider): the host then asks through datafusion-ffi. The schema is
    /// the provider's, asked anew each time, so a table whose schema changes is seen to.
    pub schema: unsafe extern "C" fn(
        runner: &Self,
        provider: &FFI_TableProvider,
        known: u64,
    ) -> FFI_Option<FFI_ProviderSchema>,
    /// ABI 1.12 (appended, as `scan`): [`FFI_PlanRunner::scan`] without the physical
    /// optimizer: the plan comes back as the provider made it, for a host whose own physical
    /// optimizer asks for it through [`FFI_PlanRunner::optimize`] when it reaches the scan,
    /// where DataFusion would optimize a linked provider's scan. A rule that removes the scan
    /// first (a `COUNT(*)` answered from statistics) spares the work.
    pub scan_unoptimized: ScanFn,
    /// ABI 1.12: `plan` (which this image made, by `scan_unoptimized`) after the physical
    /// optimizer of the bundle's DataFusion, with the bound configuration. `None` for another
    /// image's plan, which the host keeps as it is.
    pub optimize: unsafe extern "C" fn(
        runner: &Self,
        plan: &FFI_ExecutionPlan,
    ) -> FFI_Option<FFI_Result<FFI_ExecutionPlan>>,
}

/// [`FFI_PlanRunner::schema`]'s answer.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ProviderSchema {
    /// A hash of everything two schemas compare (see [`fingerprint`]); never 0.
    pub fingerprint: u64,
    /// The schema, `None` when its fingerprint is the one the host said it holds.
    pub schema: FFI_Option<WrappedSchema>,
}

/// The plugin ABI minor whose runners have [`FFI_PlanRunner::scan`].
const SCAN_MINOR: u16 = 4;
/// The plugin ABI minor whose runners have [`FFI_PlanRunner::call_table_function`] (and
/// `execute_buffers`, whose minor is [`FFI_BatchBuffers`]'s).
const CALL_TABLE_FUNCTION_MINOR: u16 = 7;

/// The plugin ABI minor whose runners have [`FFI_PlanRunner::supports_filters_pushdown`].
const FILTERS_PUSHDOWN_MINOR: u16 = 8;

/// The plugin ABI minor whose runners have [`FFI_PlanRunner::schema`].
const SCHEMA_MINOR: u16 = 11;

/// The plugin ABI minor whose runners have [`FFI_PlanRunner::scan_unoptimized`] and
/// [`FFI_PlanRunner::optimize`].
const OPTIMIZE_MINOR: u16 = 12;

/// What [`FFI_PlanRunner::scan`] returns when it takes a scan: the bundle's plan, later.
pub type ScanFuture = FfiFuture<FFI_Result<FFI_ExecutionPlan>>;

/// The type of [`FFI_PlanRunner::scan`] and [`FFI_PlanRunner::scan_unoptimized`].
pub type ScanFn = unsafe extern "C" fn(
    runner: &FFI_PlanRunner,
    provider: &FFI_TableProvider,
    projection: FFI_Option<SVec<usize>>,
    filters: SVec<u8>,
    limit: FFI_Option<usize>,
    query_start: FFI_Option<i64>,
) -> FFI_Option<ScanFuture>;

unsafe impl Send for FFI_PlanRunner {}
unsafe impl Sync for FFI_PlanRunner {}

#[derive(Clone)]
struct PlanRunnerPrivateData {
    config: SessionConfig,
    env: Arc<RuntimeEnv>,
    runtime: Option<Handle>,
    /// The session scans are planned in, made by the first scan (a runner that only executes
    /// never pays for it); shared by clones.
    scan_state: Arc<OnceLock<SessionState>>,
    /// `scan_state` without physical optimizer rules, for scans the host optimizes later.
    unoptimized_state: Arc<OnceLock<SessionState>>,
}

impl PlanRunnerPrivateData {
    fn scan_state(&self) -> &SessionState {
        self.scan_state.get_or_init(|| {
            SessionStateBuilder::new()
                .with_config(self.config.clone())
                .with_runtime_env(Arc::clone(&self.env))
                .build()
        })
    }

    /// The scan session with no physical optimizer rules: a provider that optimizes its plan
    /// with its session's rules (as the toolkit's do, see `toolkit::session::optimize`) leaves
    /// it as it made it.
    fn unoptimized_state(&self) -> &SessionState {
        self.unoptimized_state.get_or_init(|| {
            SessionStateBuilder::new_from_existing(self.scan_state().clone())
                .with_physical_optimizer_rules(Vec::new())
                .build()
        })
    }

    /// A copy of the scan session (without physical optimizer rules unless `optimized`) for
    /// one call starting at `query_start`, and `exprs` (a `LogicalExprList` that calls no
    /// function) decoded in it; `None` if they do not decode.
    fn decode(
        &self,
        exprs: &[u8],
        query_start: Option<i64>,
        optimized: bool,
    ) -> Option<(SessionState, Vec<Expr>)> {
        let exprs = self.decode_exprs(exprs)?;
        let mut state = match optimized {
            true => self.scan_state().clone(),
            false => self.unoptimized_state().clone(),
        };
        state.execution_props_mut().query_execution_start_time = query_start
            .and_then(timestamp_ns_to_datetime)
            .map(|t| t.and_utc());
        Some((state, exprs))
    }

    /// `exprs` (a `LogicalExprList` that calls no function) decoded in the scan session;
    /// `None` if they do not decode.
    fn decode_exprs(&self, exprs: &[u8]) -> Option<Vec<Expr>> {
        // Decoding runs none of the bundle's code; a panic here is DataFusion's, and the host's
        // own path can still take the call.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            let list = LogicalExprList::decode(exprs).ok()?;
            let registry = self.scan_state().task_ctx();
            parse_exprs(
                list.expr.iter(),
                &registry,
                &DefaultLogicalExtensionCodec {},
            )
            .ok()
        }));
        decoded.ok().flatten()
    }
}

impl FFI_PlanRunner {
    /// A runner executing with `config` and `env`, inside `runtime` when given.
    pub fn new(config: SessionConfig, env: Arc<RuntimeEnv>, runtime: Option<Handle>) -> Self {
        Self::from_data(PlanRunnerPrivateData {
            config,
            env,
            runtime,
            scan_state: Arc::default(),
            unoptimized_state: Arc::default(),
        })
    }

    fn from_data(data: PlanRunnerPrivateData) -> Self {
        Self {
            execute: execute_fn_wrapper::<FFI_ArrowArray>,
            clone: clone_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: super::library_marker_id,
            scan: scan_fn_wrapper::<true>,
            execute_buffers: execute_fn_wrapper::<FFI_BatchBuffers>,
            call_table_function: call_table_function_fn_wrapper,
            supports_filters_pushdown: supports_filters_pushdown_fn_wrapper,
            schema: schema_fn_wrapper,
            scan_unoptimized: scan_fn_wrapper::<false>,
            optimize: optimize_fn_wrapper,
        }
    }

    fn data(&self) -> &PlanRunnerPrivateData {
        // SAFETY: `private_data` is the box `from_data` made; only this image reads it.
        unsafe { &*(self.private_data as *const PlanRunnerPrivateData) }
    }
}

unsafe extern "C" fn execute_fn_wrapper<B: StreamBatch>(
    runner: &FFI_PlanRunner,
    plan: &FFI_ExecutionPlan,
    partition: usize,
    session_id: SString,
    task_id: FFI_Option<SString>,
) -> FFI_Result<FFI_BatchStream<B>> {
    let data = runner.data();
    ffi_guard(
        || "executing a scan".to_owned(),
        || {
            if (plan.library_marker_id)() != datafusion_ffi::get_library_marker_id() {
                return Err(DataFusionError::Internal(
                    "a plan runner was handed a plan another image made".into(),
                ));
            }
            // Our own struct: datafusion-ffi hands back the plan inside, not a wrapper.
            let plan = <Arc<dyn ExecutionPlan>>::try_from(plan)?;
            let task_id: Option<SString> = task_id.into();
            let context = TaskContext::new(
                task_id.map(|t| t.to_string()),
                session_id.to_string(),
                data.config.clone(),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                Arc::clone(&data.env),
            );
            let _entered = data.runtime.as_ref().map(Handle::enter);
            let stream = plan.execute(partition, Arc::new(context))?;
            Ok(FFI_BatchStream::new(stream, data.runtime.clone()))
        },
    )
}

/// [`FFI_PlanRunner::scan`] (`OPTIMIZED`) and [`FFI_PlanRunner::scan_unoptimized`].
unsafe extern "C" fn scan_fn_wrapper<const OPTIMIZED: bool>(
    runner: &FFI_PlanRunner,
    provider: &FFI_TableProvider,
    projection: FFI_Option<SVec<usize>>,
    filters: SVec<u8>,
    limit: FFI_Option<usize>,
    query_start: FFI_Option<i64>,
) -> FFI_Option<ScanFuture> {
    let Some(provider) = own_provider(provider) else {
        return FFI_Option::None;
    };
    let data = runner.data();
    let Some((state, filters)) = data.decode(&filters, query_start.into(), OPTIMIZED) else {
        return FFI_Option::None;
    };
    let projection: Option<Vec<usize>> = projection.into_option().map(|p| p.into_iter().collect());
    let limit: Option<usize> = limit.into();
    let runtime = data.runtime.clone();
    FFI_Option::Some(
        async move {
            // The toolkit's provider guards its own panics and enters the bundle runtime.
            match provider
                .scan(&state, projection.as_ref(), &filters, limit)
                .await
            {
                Ok(plan) => FFI_Result::Ok(FFI_ExecutionPlan::new(plan, runtime)),
                Err(e) => FFI_Result::Err(e.to_string().as_str().into()),
            }
        }
        .into_ffi(),
    )
}

unsafe extern "C" fn optimize_fn_wrapper(
    runner: &FFI_PlanRunner,
    plan: &FFI_ExecutionPlan,
) -> FFI_Option<FFI_Result<FFI_ExecutionPlan>> {
    if (plan.library_marker_id)() != datafusion_ffi::get_library_marker_id() {
        return FFI_Option::None;
    }
    let data = runner.data();
    FFI_Option::Some(ffi_guard(
        || "optimizing a scan".to_owned(),
        || {
            // Our own struct: datafusion-ffi hands back the plan inside, not a wrapper.
            let plan = <Arc<dyn ExecutionPlan>>::try_from(plan)?;
            // The toolkit's guard stays outside: rules see the provider's own nodes.
            let plan = GuardedExec::map_guarded(plan, "optimize", |plan| {
                crate::toolkit::session::optimize(plan, data.scan_state())
            })?;
            Ok(FFI_ExecutionPlan::new(plan, data.runtime.clone()))
        },
    ))
}

unsafe extern "C" fn call_table_function_fn_wrapper(
    runner: &FFI_PlanRunner,
    udtf: &FFI_TableFunction,
    args: SVec<u8>,
    query_start: FFI_Option<i64>,
) -> FFI_Option<FFI_Result<FFI_TableProvider>> {
    if (udtf.library_marker_id)() != datafusion_ffi::get_library_marker_id() {
        return FFI_Option::None;
    }
    let data = runner.data();
    let Some((state, args)) = data.decode(&args, query_start.into(), true) else {
        return FFI_Option::None;
    };
    FFI_Option::Some(ffi_guard(
        || "calling a table function".to_owned(),
        || {
            // Our own struct: datafusion-ffi hands back the function inside, not a wrapper.
            // The toolkit's function guards its own panics and enters the bundle runtime.
            let function = <Arc<dyn TableFunctionImpl>>::from(udtf.clone());
            let provider = function.call_with_args(TableFunctionArgs::new(&args, &state))?;
            // As datafusion-ffi's `call_with_args` exports it: no filter pushdown, the
            // function's codec.
            Ok(FFI_TableProvider::new_with_ffi_codec(
                provider,
                false,
                data.runtime.clone(),
                udtf.logical_codec.clone(),
            ))
        },
    ))
}

unsafe extern "C" fn supports_filters_pushdown_fn_wrapper(
    runner: &FFI_PlanRunner,
    provider: &FFI_TableProvider,
    filters: SVec<u8>,
) -> FFI_Option<FFI_Result<SVec<FFI_TableProviderFilterPushDown>>> {
    let Some(provider) = own_provider(provider) else {
        return FFI_Option::None;
    };
    let Some(filters) = runner.data().decode_exprs(&filters) else {
        return FFI_Option::None;
    };
    FFI_Option::Some(ffi_guard(
        || "asking a table which filters it takes".to_owned(),
        || {
            // The toolkit's provider guards its own panics, and answers `Unsupported` when it
            // was exported without filter pushdown, as datafusion-ffi's host side does.
            let filters: Vec<&Expr> = filters.iter().collect();
            Ok(provider
                .supports_filters_pushdown(&filters)?
                .iter()
                .map(FFI_TableProviderFilterPushDown::from)
                .collect())
        },
    ))
}

unsafe extern "C" fn schema_fn_wrapper(
    _runner: &FFI_PlanRunner,
    provider: &FFI_TableProvider,
    known: u64,
) -> FFI_Option<FFI_ProviderSchema> {
    let Some(provider) = own_provider(provider) else {
        return FFI_Option::None;
    };
    // The toolkit's provider guards its own `schema`; a panic of anybody else's, or a schema
    // the C data interface cannot carry, leaves the question to datafusion-ffi's path.
    let answered = catch_unwind(AssertUnwindSafe(|| {
        let schema = provider.schema();
        let fingerprint = fingerprint(&schema);
        let schema = match fingerprint == known {
            true => None,
            false => Some(WrappedSchema(
                FFI_ArrowSchema::try_from(schema.as_ref()).ok()?,
            )),
        };
        Some(FFI_ProviderSchema {
            fingerprint,
            schema: schema.into(),
        })
    }));
    answered.ok().flatten().into()
}

/// The provider inside `provider` when this image made it (datafusion-ffi then hands back the
/// provider itself, not a wrapper); `None` for another image's, which the runner leaves to
/// datafusion-ffi's path.
fn own_provider(provider: &FFI_TableProvider) -> Option<Arc<dyn TableProvider>> {
    let ours = (provider.library_marker_id)() == datafusion_ffi::get_library_marker_id();
    ours.then(|| <Arc<dyn TableProvider>>::from(provider))
}

/// `schema`'s fingerprint: a hash of what two schemas compare (each field's name, type,
/// nullability and metadata, and the schema's metadata), never 0, the host's "none known".
/// Two schemas that differ share one only by a 64-bit hash collision.
fn fingerprint(schema: &Schema) -> u64 {
    let mut hasher = DefaultHasher::new();
    schema.hash(&mut hasher);
    hasher.finish().max(1)
}

unsafe extern "C" fn clone_fn_wrapper(runner: &FFI_PlanRunner) -> FFI_PlanRunner {
    FFI_PlanRunner::from_data(runner.data().clone())
}

unsafe extern "C" fn release_fn_wrapper(runner: &mut FFI_PlanRunner) {
    if runner.private_data.is_null() {
        return;
    }
    // SAFETY: the box `from_data` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(runner.private_data as *mut PlanRunnerPrivateData) });
    runner.private_data = std::ptr::null_mut();
}

impl Clone for FFI_PlanRunner {
    fn clone(&self) -> Self {
        // SAFETY: `clone` belongs to the image that made the struct.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_PlanRunner {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The plan runner of this image, once a table or a planner has been exported (see
/// [`enable`]). A function pointer rather than a flag: with a flag, the entry point would call
/// [`export_plan_runner`] itself, and every bundle would link it.
static ENABLED: OnceLock<fn(FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner>> = OnceLock::new();

/// Makes [`export_enabled_plan_runner`] bind runners. The toolkit calls it from every method
/// that exports something that can make plans (a table, a table function or factory, an
/// expression or relation planner). Only those methods reach [`export_plan_runner`], so a
/// bundle of functions only does not link the runner, its `SessionState` or the physical
/// planner: tens of megabytes (see the README's bundle sizes).
pub(crate) fn enable() {
    ENABLED.get_or_init(|| export_plan_runner);
}

/// Used by [`crate::export_bundle!`] for [`PLAN_RUNNER_SYMBOL`]: a runner of this bundle's
/// plans, or an error if the bundle exported nothing that makes plans. A host asks only to run
/// plans a bundle made, so the error is a host bug, not a user's.
#[doc(hidden)]
pub fn export_enabled_plan_runner(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
    bind_if_enabled(ENABLED.get().copied(), config)
}

fn bind_if_enabled(
    bind: Option<fn(FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner>>,
    config: FFI_ConfigOptions,
) -> FFI_Result<FFI_PlanRunner> {
    match bind {
        Some(bind) => bind(config),
        None => FFI_Result::Err(
            "this bundle exports no table, table function or factory and no planner, so it has \
             no plans to run: the host asked it for a plan runner in error"
                .into(),
        ),
    }
}

/// A runner of this bundle's plans, with the bundle's runtime environment (where its scans
/// registered their object stores) and tokio runtime.
#[doc(hidden)]
pub fn export_plan_runner(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
    ffi_guard(
        || "binding a plan runner".to_owned(),
        || {
            let config = SessionConfig::from(ConfigOptions::try_from(config)?);
            Ok(FFI_PlanRunner::new(
                config,
                crate::toolkit::session::runtime_env(),
                crate::toolkit::runtime::handle(),
            ))
        },
    )
}

/// The host side of a bundle's [`PLAN_RUNNER_SYMBOL`]: plans and executes the bundle's scans
/// through a runner bound once per configuration.
#[derive(Debug)]
pub struct ForeignPlanRunner {
    bind: PlanRunnerFn,
    /// The bundle's plugin ABI minor: which of the appended fields its runners have
    /// ([`FFI_PlanRunner::scan`] from 1.4, [`FFI_PlanRunner::execute_buffers`] from 1.7).
    abi_minor: u16,
    /// Bound runners, keyed by the configuration they were bound to.
    bound: BoundCache<Arc<ConfigOptions>, Arc<FFI_PlanRunner>>,
}

impl ForeignPlanRunner {
    /// The runners `bind` makes, in a bundle of plugin ABI 1.`abi_minor` (3 or later).
    pub fn new(bind: PlanRunnerFn, abi_minor: u16) -> Self {
        Self {
            bind,
            abi_minor,
            bound: BoundCache::new(),
        }
    }

    fn runner(&self, config: &Arc<ConfigOptions>) -> Result<Arc<FFI_PlanRunner>> {
        self.bound
            .get_or_bind(|c| Arc::ptr_eq(c, config), || self.bind(config))
    }

    /// The runner bound last, whatever its configuration, or one bound to the default
    /// configuration when none is yet: for calls that read no configuration.
    fn any_runner(&self) -> Result<Arc<FFI_PlanRunner>> {
        self.bound
            .get_or_bind(|_| true, || self.bind(&Arc::default()))
    }

    fn bind(
        &self,
        config: &Arc<ConfigOptions>,
    ) -> Result<(Arc<ConfigOptions>, Arc<FFI_PlanRunner>)> {
        match (self.bind)(FFI_ConfigOptions::from(config.as_ref())) {
            FFI_Result::Ok(runner) => Ok((Arc::clone(config), Arc::new(runner))),
            FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }

    /// Plans a scan of `provider` (which the bundle made) with `session`'s configuration;
    /// `Ok(None)` when the runner cannot take it (see [`FFI_PlanRunner::scan`]) and the caller
    /// uses the provider's `scan`. With `optimize_later`, a bundle of ABI 1.12 or later leaves
    /// the plan unoptimized and the answer says how to optimize it ([`ForeignScan::later`]);
    /// the caller must then do so before executing the plan.
    pub async fn scan(
        &self,
        provider: &FFI_TableProvider,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
        optimize_later: bool,
    ) -> Result<Option<ForeignScan>> {
        if self.abi_minor < SCAN_MINOR {
            return Ok(None);
        }
        let Some(filters) = encoded(filters) else {
            return Ok(None);
        };
        let runner = self.runner(session.config().options())?;
        let later = optimize_later && self.abi_minor >= OPTIMIZE_MINOR;
        // SAFETY: `scan` belongs to the image that made the runner, a bundle of ABI 1.4 or
        // later, whose runners have the field; `scan_unoptimized` one of ABI 1.12 or later.
        let scan = match later {
            true => runner.scan_unoptimized,
            false => runner.scan,
        };
        let planned = unsafe {
            scan(
                &runner,
                provider,
                projection.map(|p| SVec::from(p.as_slice())).into(),
                filters,
                limit.into(),
                query_start(session).into(),
            )
        };
        let Some(future) = planned.into_option() else {
            return Ok(None);
        };
        match future.await {
            FFI_Result::Ok(plan) => Ok(Some(ForeignScan {
                plan,
                later: later.then(|| LaterOptimization { runner }),
            })),
            FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }

    /// Which of `filters` `provider` (which the bundle made) takes; `Ok(None)` when the
    /// runner cannot answer (see [`FFI_PlanRunner::supports_filters_pushdown`]) and the
    /// caller asks the provider through datafusion-ffi.
    pub fn supports_filters_pushdown(
        &self,
        provider: &FFI_TableProvider,
        filters: &[&Expr],
    ) -> Result<Option<Vec<TableProviderFilterPushDown>>> {
        if self.abi_minor < FILTERS_PUSHDOWN_MINOR {
            return Ok(None);
        }
        let Some(bytes) = encoded(filters.iter().copied()) else {
            return Ok(None);
        };
        let runner = self.any_runner()?;
        // SAFETY: `supports_filters_pushdown` belongs to the image that made the runner, a
        // bundle of ABI 1.8 or later, whose runners have the field.
        let answered = unsafe { (runner.supports_filters_pushdown)(&runner, provider, bytes) };
        match answered.into_option() {
            None => Ok(None),
            Some(FFI_Result::Ok(answers)) if answers.len() == filters.len() => Ok(Some(
                answers
                    .iter()
                    .map(TableProviderFilterPushDown::from)
                    .collect(),
            )),
            Some(FFI_Result::Ok(answers)) => Err(DataFusionError::Ffi(format!(
                "a table answered for {} filters when asked about {}: a bug in the bundle's \
                 provider, whose supports_filters_pushdown must answer once per filter",
                answers.len(),
                filters.len()
            ))),
            Some(FFI_Result::Err(e)) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }

    /// `provider`'s schema (the bundle made `provider`) and its fingerprint, given `known`,
    /// what an earlier call returned, if any: that schema itself again while the table's is
    /// the same, without it crossing. `Ok(None)` when the runner cannot answer (see
    /// [`FFI_PlanRunner::schema`]) and the caller asks the provider through datafusion-ffi.
    pub fn schema(
        &self,
        provider: &FFI_TableProvider,
        known: Option<&(u64, SchemaRef)>,
    ) -> Result<Option<(u64, SchemaRef)>> {
        if self.abi_minor < SCHEMA_MINOR {
            return Ok(None);
        }
        let runner = self.any_runner()?;
        let known_fingerprint = known.map_or(0, |(fingerprint, _)| *fingerprint);
        // SAFETY: `schema` belongs to the image that made the runner, a bundle of ABI 1.11 or
        // later, whose runners have the field.
        let answered = unsafe { (runner.schema)(&runner, provider, known_fingerprint) };
        let Some(answer) = answered.into_option() else {
            return Ok(None);
        };
        match (answer.schema.into_option(), known) {
            (Some(sent), _) => {
                let schema = Schema::try_from(&sent.0)?;
                Ok(Some((answer.fingerprint, Arc::new(schema))))
            }
            (None, Some((fingerprint, schema))) if *fingerprint == answer.fingerprint => {
                Ok(Some((*fingerprint, Arc::clone(schema))))
            }
            (None, _) => Err(DataFusionError::Ffi(format!(
                "a table's schema was left out as the one the host holds (fingerprint \
                 {known_fingerprint}) with another fingerprint ({}): a bug in the bundle's plan \
                 runner",
                answer.fingerprint
            ))),
        }
    }

    /// How many configurations runners are bound to (each binding converts one in the
    /// bundle): says whether a host reuses them.
    pub fn bound(&self) -> usize {
        self.bound.count()
    }

    /// Whether [`Self::call_table_function`] takes a call with `args` (the bundle is of ABI 1.7
    /// or later and the arguments call no function), so that a caller can skip what only
    /// datafusion-ffi's path needs.
    pub fn takes_table_function_call(&self, args: &[Expr]) -> bool {
        self.abi_minor >= CALL_TABLE_FUNCTION_MINOR && calls_no_function(args)
    }

    /// Calls `udtf` (which the bundle made) with `args` and `session`'s configuration;
    /// `Ok(None)` when the runner cannot take the call (see
    /// [`FFI_PlanRunner::call_table_function`]) and the caller calls it through datafusion-ffi.
    pub fn call_table_function(
        &self,
        udtf: &FFI_TableFunction,
        session: &dyn Session,
        args: &[Expr],
    ) -> Result<Option<FFI_TableProvider>> {
        if !self.takes_table_function_call(args) {
            return Ok(None);
        }
        let Some(args) = encoded(args) else {
            return Ok(None);
        };
        let runner = self.runner(session.config().options())?;
        // SAFETY: `call_table_function` belongs to the image that made the runner, a bundle of
        // ABI 1.7 or later, whose runners have the field.
        let called = unsafe {
            (runner.call_table_function)(&runner, udtf, args, query_start(session).into())
        };
        match called.into_option() {
            None => Ok(None),
            Some(FFI_Result::Ok(provider)) => Ok(Some(provider)),
            Some(FFI_Result::Err(e)) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }

    /// Executes partition `partition` of `plan` (which the bundle made) with `context`'s
    /// configuration and ids. The bundle sees no function registry: a plan's expressions were
    /// built when it was planned.
    pub fn execute(
        &self,
        plan: &FFI_ExecutionPlan,
        partition: usize,
        context: &TaskContext,
    ) -> Result<SendableRecordBatchStream> {
        let runner = self.runner(context.session_config().options())?;
        let task_id = context.task_id().map(|t| SString::from(t.as_str()));
        let session_id = context.session_id().as_str().into();
        if self.abi_minor >= FFI_BatchBuffers::ABI_MINOR {
            // SAFETY: `execute_buffers` belongs to the image that made the runner, a bundle of
            // ABI 1.7 or later, whose runners have the field.
            let stream = unsafe {
                (runner.execute_buffers)(&runner, plan, partition, session_id, task_id.into())
            };
            foreign_stream(stream)
        } else {
            // SAFETY: `execute` belongs to the image that made the runner.
            let stream =
                unsafe { (runner.execute)(&runner, plan, partition, session_id, task_id.into()) };
            foreign_stream(stream)
        }
    }
}

/// A scan a bundle planned for the host ([`ForeignPlanRunner::scan`]).
#[derive(Debug)]
pub struct ForeignScan {
    /// The bundle's plan.
    pub plan: FFI_ExecutionPlan,
    /// How to optimize `plan`, when the bundle left that for later.
    pub later: Option<LaterOptimization>,
}

/// The runner that planned a scan without optimizing it, to optimize it with the same
/// configuration when the host's physical optimizer reaches the scan.
#[derive(Debug, Clone)]
pub struct LaterOptimization {
    runner: Arc<FFI_PlanRunner>,
}

impl LaterOptimization {
    /// `plan` (the [`ForeignScan`]'s) after the bundle's physical optimizer; `Ok(None)` when
    /// the runner cannot optimize it (another image made it) and the caller keeps it as it is.
    pub fn optimize(&self, plan: &FFI_ExecutionPlan) -> Result<Option<FFI_ExecutionPlan>> {
        let runner = &self.runner;
        // SAFETY: `optimize` belongs to the image that made the runner, which took a scan
        // through `scan_unoptimized`: a bundle of ABI 1.12 or later, whose runners have it.
        let optimized = unsafe { (runner.optimize)(runner, plan) };
        match optimized.into_option() {
            None => Ok(None),
            Some(FFI_Result::Ok(plan)) => Ok(Some(plan)),
            Some(FFI_Result::Err(e)) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }
}

/// `exprs` as the `LogicalExprList` bytes a runner decodes; `None` when they call a function
/// (see [`calls_no_function`]) or do not serialize.
fn encoded<'a>(exprs: impl IntoIterator<Item = &'a Expr> + Clone) -> Option<SVec<u8>> {
    if !calls_no_function(exprs.clone()) {
        return None;
    }
    let list = serialize_exprs(exprs, &DefaultLogicalExtensionCodec {}).ok()?;
    Some(SVec::from(
        LogicalExprList { expr: list }.encode_to_vec().as_slice(),
    ))
}

/// The start of `session`'s query in nanoseconds since the epoch.
fn query_start(session: &dyn Session) -> Option<i64> {
    session
        .execution_props()
        .query_execution_start_time
        .and_then(|t| t.timestamp_nanos_opt())
}

/// The host side of a table function of a bundle of plugin ABI 1.7 or later: a call whose
/// arguments call no function goes through the bundle's plan runner
/// ([`ForeignPlanRunner::call_table_function`]), any other through datafusion-ffi's
/// `ForeignTableFunction`.
#[derive(Debug)]
pub struct RunnerTableFunction {
    udtf: FFI_TableFunction,
    runner: Arc<ForeignPlanRunner>,
    /// datafusion-ffi's wrapper of the same function.
    foreign: Arc<dyn TableFunctionImpl>,
}

impl RunnerTableFunction {
    /// `udtf`, called through `runner` when it can take the call.
    pub fn new(udtf: FFI_TableFunction, runner: Arc<ForeignPlanRunner>) -> Self {
        let foreign = <Arc<dyn TableFunctionImpl>>::from(udtf.clone());
        Self {
            udtf,
            runner,
            foreign,
        }
    }
}

impl TableFunctionImpl for RunnerTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        match self
            .runner
            .call_table_function(&self.udtf, args.session(), args.exprs())?
        {
            Some(provider) => Ok(<Arc<dyn TableProvider>>::from(&provider)),
            None => self.foreign.call_with_args(args),
        }
    }
}

fn foreign_stream<B: StreamBatch>(
    stream: FFI_Result<FFI_BatchStream<B>>,
) -> Result<SendableRecordBatchStream> {
    match stream {
        FFI_Result::Ok(stream) => Ok(Box::pin(ForeignBatchStream::try_new(stream)?)),
        FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
    }
}

/// Whether `filters` call no function at all. Functions cross by name, and the bundle's
/// scan session has none: decoding them would need every DataFusion built-in linked into every
/// bundle (megabytes each), and a name alone cannot tell a built-in from one the host replaced
/// or another bundle's. Partition and range filters (comparisons, `IN`, `CAST`, `IS NULL`,
/// `LIKE`) call none.
fn calls_no_function<'a>(filters: impl IntoIterator<Item = &'a Expr>) -> bool {
    let mut none = true;
    for filter in filters {
        // The closure never fails.
        let _ = filter.apply(|e| {
            none = !matches!(
                e,
                Expr::ScalarFunction(_) | Expr::AggregateFunction(_) | Expr::WindowFunction(_)
            );
            Ok(if none {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        });
        if !none {
            break;
        }
    }
    none
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::{MemTable, TableType};
    use datafusion::execution::{TaskContext, TaskContextProvider};
    use datafusion::functions::expr_fn::abs;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::physical_plan::{DisplayAs, DisplayFormatType, PlanProperties, collect};
    use datafusion::prelude::{SessionContext, cast, col, lit};
    use futures::TryStreamExt;

    use super::*;
    use crate::record::ABI_MINOR;
    use crate::test_tables::{PlanOver, Scripted};
    use crate::toolkit::guard::table::GuardedTableProvider;
    use crate::toolkit::panic::BundleTag;

    static BINDS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn bind(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        BINDS.fetch_add(1, Ordering::SeqCst);
        export_plan_runner(config)
    }

    extern "C" fn bind_uncounted(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        export_plan_runner(config)
    }

    #[test]
    fn a_bundle_without_tables_or_planners_refuses_to_bind_a_runner() {
        let config = || FFI_ConfigOptions::from(&ConfigOptions::default());
        match bind_if_enabled(None, config()) {
            FFI_Result::Err(e) => assert!(e.contains("exports no table"), "{e}"),
            FFI_Result::Ok(_) => panic!("bound a runner without tables"),
        }
        assert!(matches!(
            bind_if_enabled(Some(export_plan_runner), config()),
            FFI_Result::Ok(_)
        ));
    }

    extern "C" fn another_image() -> usize {
        0
    }

    /// A two-partition plan of one Int64 column, as a bundle would export it.
    fn exported_plan() -> (FFI_ExecutionPlan, Vec<Vec<RecordBatch>>) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = |v: Vec<i64>| {
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(v))])
                .expect("a valid batch")
        };
        let partitions = vec![
            vec![batch(vec![1, 2])],
            vec![batch(vec![3]), batch(vec![4])],
        ];
        let plan = MemorySourceConfig::try_new_exec(&partitions, schema, None).expect("a plan");
        (FFI_ExecutionPlan::new(plan, None), partitions)
    }

    #[tokio::test]
    async fn runs_every_partition_and_binds_a_configuration_once() {
        let (plan, partitions) = exported_plan();
        let runner = ForeignPlanRunner::new(bind, ABI_MINOR);
        let context = TaskContext::default();
        let before = BINDS.load(Ordering::SeqCst);
        for (i, expected) in partitions.iter().enumerate() {
            let stream = runner.execute(&plan, i, &context).expect("executes");
            let got: Vec<RecordBatch> = stream.try_collect().await.expect("batches");
            assert_eq!(&got, expected);
        }
        assert_eq!(BINDS.load(Ordering::SeqCst) - before, 1);
    }

    unsafe extern "C" fn not_this_path<B>(
        _: &FFI_PlanRunner,
        _: &FFI_ExecutionPlan,
        _: usize,
        _: SString,
        _: FFI_Option<SString>,
    ) -> FFI_Result<FFI_BatchStream<B>> {
        FFI_Result::Err("not this path".into())
    }

    /// A runner that can execute only through the batch buffers of ABI 1.7.
    extern "C" fn bind_buffers_only(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        let mut runner = export_plan_runner(config);
        if let FFI_Result::Ok(runner) = &mut runner {
            runner.execute = not_this_path::<FFI_ArrowArray>;
        }
        runner
    }

    /// A runner that can execute only through the struct arrays of ABI 1.3.
    extern "C" fn bind_struct_arrays_only(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        let mut runner = export_plan_runner(config);
        if let FFI_Result::Ok(runner) = &mut runner {
            runner.execute_buffers = not_this_path::<FFI_BatchBuffers>;
        }
        runner
    }

    /// A bundle of ABI 1.7 or later is executed through `execute_buffers`; an older one only
    /// through `execute`, as its runners have no `execute_buffers` to read.
    #[tokio::test]
    async fn executes_through_the_path_of_the_bundles_minor() {
        let (plan, partitions) = exported_plan();
        let context = TaskContext::default();
        let buffers_only: PlanRunnerFn = bind_buffers_only;
        let struct_arrays_only: PlanRunnerFn = bind_struct_arrays_only;
        let cases = [
            (buffers_only, ABI_MINOR, struct_arrays_only),
            (struct_arrays_only, 6, buffers_only),
        ];
        for (works, minor, fails) in cases {
            let stream = ForeignPlanRunner::new(works, minor).execute(&plan, 1, &context);
            let got: Vec<RecordBatch> = stream
                .expect("executes")
                .try_collect()
                .await
                .expect("batches");
            assert_eq!(got, partitions[1], "as ABI 1.{minor}");
            let e = ForeignPlanRunner::new(fails, minor)
                .execute(&plan, 1, &context)
                .err()
                .expect("the other path");
            assert!(
                e.to_string().contains("not this path"),
                "as ABI 1.{minor}: {e}"
            );
        }
    }

    /// A three-row in-memory table of columns `v` and `w`.
    fn table() -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("w", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![1, -2, 3])),
                Arc::new(Int64Array::from(vec![10, 20, 30])),
            ],
        )
        .expect("a valid batch");
        MemTable::try_new(schema, vec![vec![batch]]).expect("a table")
    }

    /// `provider` exported as a bundle exports its tables, and the session datafusion-ffi's
    /// own `scan` would ask for its functions (the caller keeps it alive).
    fn exported(
        provider: Arc<dyn TableProvider>,
    ) -> (FFI_TableProvider, Arc<dyn TaskContextProvider>) {
        let ctx: Arc<dyn TaskContextProvider> = Arc::new(SessionContext::new());
        (
            FFI_TableProvider::new(provider, true, None, &ctx, None),
            ctx,
        )
    }

    fn exported_table() -> (FFI_TableProvider, Arc<dyn TaskContextProvider>) {
        exported(Arc::new(table()))
    }

    #[tokio::test]
    async fn the_provider_gets_the_filters_limit_and_start_time_the_host_sent() {
        let recording = Arc::new(Scripted::new(table()));
        let (ffi, _ctx) = exported(Arc::clone(&recording) as Arc<dyn TableProvider>);
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let mut state = SessionContext::new().state();
        let start = 1_700_000_000_123_456_789;
        state.execution_props_mut().query_execution_start_time =
            timestamp_ns_to_datetime(start).map(|t| t.and_utc());
        let filters = vec![
            col("v").gt(lit(1)).and(col("w").lt_eq(lit(30i64))),
            cast(col("w"), DataType::Utf8).in_list(vec![lit("10"), lit("30")], true),
        ];
        let taken = runner
            .scan(&ffi, &state, None, &filters, Some(2), false)
            .await
            .expect("plans");
        assert!(taken.is_some(), "the runner takes the scan");
        let seen = recording.seen.lock().expect("not poisoned").take();
        assert_eq!(seen, Some((filters, Some(2), Some(start))));
    }

    /// A table whose scan puts `plan` over its in-memory plan, exported as a bundle's,
    /// through the toolkit's guard.
    fn exported_planned(plan: PlanOver) -> (FFI_TableProvider, Arc<dyn TaskContextProvider>) {
        let tag = BundleTag::new("test", None);
        let planned = Arc::new(Scripted {
            plan,
            ..Scripted::new(table())
        });
        exported(GuardedTableProvider::wrap(planned, &tag, "t", true))
    }

    /// Every column of `plan`, in order, or with the first renamed `first`.
    fn projected(plan: Arc<dyn ExecutionPlan>, renamed: bool) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = plan.schema();
        let columns = (0..schema.fields().len()).map(|i| {
            let name = schema.field(i).name();
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, i));
            let alias = if renamed && i == 0 { "first" } else { name };
            (column, alias.to_owned())
        });
        Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
    }

    /// A leaf that executes its plan, and panics when the optimizer tries to swap a projection
    /// above it with it: a provider's node with a bug the optimizer runs into.
    #[derive(Debug)]
    struct PanicsWhenOptimized(Arc<dyn ExecutionPlan>);

    impl DisplayAs for PanicsWhenOptimized {
        fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "PanicsWhenOptimized")
        }
    }

    impl ExecutionPlan for PanicsWhenOptimized {
        fn name(&self) -> &str {
            "PanicsWhenOptimized"
        }

        fn properties(&self) -> &Arc<PlanProperties> {
            self.0.properties()
        }

        fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
            Vec::new()
        }

        fn apply_expressions(
            &self,
            _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
        ) -> Result<TreeNodeRecursion> {
            Ok(TreeNodeRecursion::Continue)
        }

        fn with_new_children(
            self: Arc<Self>,
            _: Vec<Arc<dyn ExecutionPlan>>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            Ok(self)
        }

        fn execute(
            &self,
            partition: usize,
            context: Arc<TaskContext>,
        ) -> Result<SendableRecordBatchStream> {
            self.0.execute(partition, context)
        }

        fn try_swapping_with_projection(
            &self,
            _: &ProjectionExec,
        ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
            panic!("a node the optimizer cannot rewrite")
        }
    }

    /// A scan left unoptimized comes back as the provider made it, and the runner applies the
    /// physical optimizer when asked; an older runner, or a host that does not ask, gets the
    /// scan optimized at once; the plan of another image is not the runner's to optimize.
    #[tokio::test]
    async fn optimizes_a_scan_later_when_the_host_asks() {
        // `ProjectionPushdown` removes a projection of every column in order: the plan's root
        // says whether the optimizer ran.
        let (table, _ctx) = exported_planned(|plan| projected(plan, false));
        let state = SessionContext::new().state();
        let root = |plan: &FFI_ExecutionPlan| {
            let plan = <Arc<dyn ExecutionPlan>>::try_from(plan).expect("a plan of this image");
            plan.name().to_owned()
        };
        let scan = |minor, later| {
            let (table, state) = (&table, &state);
            async move {
                ForeignPlanRunner::new(bind_uncounted, minor)
                    .scan(table, state, None, &[], None, later)
                    .await
                    .expect("plans")
                    .expect("the runner takes the scan")
            }
        };

        let now = scan(ABI_MINOR, false).await;
        assert!(now.later.is_none());
        assert_eq!(root(&now.plan), "DataSourceExec", "optimized in the bundle");
        let older = scan(OPTIMIZE_MINOR - 1, true).await;
        assert!(older.later.is_none(), "an ABI 1.11 runner cannot wait");
        assert_eq!(root(&older.plan), "DataSourceExec");

        let mut deferred = scan(ABI_MINOR, true).await;
        assert_eq!(
            root(&deferred.plan),
            "ProjectionExec",
            "as the provider made it"
        );
        let later = deferred.later.take().expect("optimized later");
        let optimized = later
            .optimize(&deferred.plan)
            .expect("optimizes")
            .expect("a plan this image made");
        assert_eq!(root(&optimized), "DataSourceExec");
        let plan = <Arc<dyn ExecutionPlan>>::try_from(&optimized).expect("a plan of this image");
        let batches = collect(plan, state.task_ctx()).await.expect("runs");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);

        deferred.plan.library_marker_id = another_image;
        let theirs = later.optimize(&deferred.plan).expect("no error");
        assert!(theirs.is_none(), "another image's plan");
    }

    /// A panic in the bundle's optimizer, run later, is an error of the host's planning that
    /// names the table, as one in the provider's `scan` would be.
    #[tokio::test]
    async fn a_panic_while_optimizing_later_is_an_error_naming_the_table() {
        let (table, _ctx) =
            exported_planned(|plan| projected(Arc::new(PanicsWhenOptimized(plan)), true));
        let state = SessionContext::new().state();
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let scan = runner
            .scan(&table, &state, None, &[], None, true)
            .await
            .expect("plans: nothing optimized yet")
            .expect("the runner takes the scan");
        let later = scan.later.expect("optimized later");
        let e = later
            .optimize(&scan.plan)
            .expect_err("the optimizer panics");
        let e = e.to_string();
        assert!(
            e.contains("table 't' of plugin bundle 'test' panicked in optimize"),
            "{e}"
        );
        assert!(e.contains("a node the optimizer cannot rewrite"), "{e}");
    }

    #[tokio::test]
    async fn plans_a_scan_whose_filters_call_no_function() {
        let (table, _ctx) = exported_table();
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let state = SessionContext::new().state();
        let filters = vec![
            col("v").gt(lit(1)),
            col("w").is_not_null(),
            cast(col("w"), DataType::Utf8).in_list(vec![lit("10"), lit("30")], false),
        ];
        let scan = runner
            .scan(&table, &state, Some(&vec![1]), &filters, None, false)
            .await
            .expect("plans")
            .expect("the runner takes the scan");
        assert!(scan.later.is_none(), "optimized by the bundle");
        let plan = <Arc<dyn ExecutionPlan>>::try_from(&scan.plan).expect("a plan of this image");
        assert_eq!(plan.schema().fields().len(), 1);
        assert_eq!(plan.schema().field(0).name(), "w");
        let batches = collect(plan, state.task_ctx()).await.expect("runs");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    }

    #[tokio::test]
    async fn leaves_other_scans_to_the_providers_own_path() {
        let (mut table, _ctx) = exported_table();
        let state = SessionContext::new().state();
        let plain = vec![col("v").gt(lit(1))];
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);

        // A built-in, and a function of the host's (which the bundle could only look up by
        // name, finding its own built-in `abs` or nothing).
        let replaced_abs = create_udf(
            "abs",
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
        );
        for filter in [abs(col("v")), replaced_abs.call(vec![col("v")])] {
            let taken = runner
                .scan(&table, &state, None, &[filter.gt(lit(1))], None, false)
                .await;
            assert!(taken.expect("no error").is_none(), "a function call");
        }

        let older = ForeignPlanRunner::new(bind_uncounted, 3);
        let taken = older.scan(&table, &state, None, &plain, None, false).await;
        assert!(taken.expect("no error").is_none(), "an ABI 1.3 runner");

        table.library_marker_id = another_image;
        let taken = runner.scan(&table, &state, None, &plain, None, false).await;
        assert!(
            taken.expect("no error").is_none(),
            "another image's provider"
        );
    }

    /// A table that takes the filters on `v` exactly and no other.
    fn exact_on_v() -> Arc<dyn TableProvider> {
        Arc::new(Scripted {
            answer: |f| {
                let columns = f.column_refs();
                if columns.len() == 1 && columns.iter().all(|c| c.name == "v") {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            },
            ..Scripted::new(table())
        })
    }

    #[tokio::test]
    async fn answers_which_filters_a_table_takes_with_a_runner_already_bound() {
        let (table, _ctx) = exported(exact_on_v());
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let (on_v, on_w) = (
            col("v").gt(lit(1)),
            col("w").in_list(vec![lit(10i64)], false),
        );
        let answers = runner
            .supports_filters_pushdown(&table, &[&on_v, &on_w])
            .expect("no error")
            .expect("the runner answers");
        use TableProviderFilterPushDown::{Exact, Unsupported};
        assert_eq!(
            answers,
            vec![Exact, Unsupported],
            "the provider's own answers"
        );
        assert_eq!(
            runner.bound(),
            1,
            "a runner bound to the default configuration"
        );

        // A query binds its session's configuration; the next question asks that runner.
        let state = SessionContext::new().state();
        let taken = runner.scan(&table, &state, None, &[], None, false).await;
        assert!(taken.expect("plans").is_some());
        let again = runner.supports_filters_pushdown(&table, &[&on_w, &on_v]);
        assert_eq!(again.expect("no error"), Some(vec![Unsupported, Exact]));
        assert_eq!(runner.bound(), 2, "no runner bound for the question");
    }

    #[test]
    fn leaves_other_filter_questions_to_datafusion_ffi() {
        let (mut table, _ctx) = exported(exact_on_v());
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let plain = col("v").gt(lit(1));
        let called = abs(col("v")).gt(lit(1));
        let answer = runner.supports_filters_pushdown(&table, &[&plain, &called]);
        assert_eq!(answer.expect("no error"), None, "a function call");

        let older = ForeignPlanRunner::new(bind_uncounted, FILTERS_PUSHDOWN_MINOR - 1);
        let answer = older.supports_filters_pushdown(&table, &[&plain]);
        assert_eq!(answer.expect("no error"), None, "an ABI 1.7 runner");
        assert_eq!(
            older.bound(),
            0,
            "nothing bound for a question it cannot ask"
        );

        table.library_marker_id = another_image;
        let answer = runner.supports_filters_pushdown(&table, &[&plain]);
        assert_eq!(answer.expect("no error"), None, "another image's provider");
    }

    /// A table whose schema another writer may change between two questions; with none, its
    /// `schema` panics.
    #[derive(Debug)]
    struct Changing(Mutex<Option<SchemaRef>>);

    #[async_trait::async_trait]
    impl TableProvider for Changing {
        fn schema(&self) -> SchemaRef {
            let schema = self.0.lock().expect("not poisoned").clone();
            schema.expect("a table that cannot say its schema")
        }

        fn table_type(&self) -> TableType {
            TableType::Base
        }

        async fn scan(
            &self,
            _: &dyn Session,
            _: Option<&Vec<usize>>,
            _: &[Expr],
            _: Option<usize>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            Err(DataFusionError::NotImplemented("no scan".into()))
        }
    }

    #[test]
    fn sends_a_tables_schema_again_only_when_it_changed() {
        let v = Field::new("v", DataType::Int64, false);
        let schema = Arc::new(Schema::new(vec![v.clone()]));
        let changing = Arc::new(Changing(Mutex::new(Some(schema))));
        let (mut table, _ctx) = exported(Arc::clone(&changing) as Arc<dyn TableProvider>);
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let ask = |known: Option<&(u64, SchemaRef)>| {
            runner
                .schema(&table, known)
                .expect("no error")
                .expect("the runner answers")
        };

        let first = ask(None);
        assert_eq!(first.1, changing.schema(), "the provider's schema");
        let again = ask(Some(&first));
        assert_eq!(again.0, first.0);
        assert!(
            Arc::ptr_eq(&again.1, &first.1),
            "the host's copy, not a new one"
        );

        // Another writer adds a column; then only its metadata changes.
        let note = Field::new("note", DataType::Utf8, true);
        *changing.0.lock().expect("not poisoned") =
            Some(Arc::new(Schema::new(vec![v.clone(), note.clone()])));
        let added = ask(Some(&first));
        assert_ne!(added.0, first.0);
        assert_eq!(added.1, changing.schema());
        let tagged = note.with_metadata(HashMap::from([("k".into(), "v".into())]));
        *changing.0.lock().expect("not poisoned") = Some(Arc::new(Schema::new(vec![v, tagged])));
        let retagged = ask(Some(&added));
        assert_ne!(retagged.0, added.0);
        assert_eq!(retagged.1, changing.schema());

        let older = ForeignPlanRunner::new(bind_uncounted, SCHEMA_MINOR - 1);
        let answer = older.schema(&table, None).expect("no error");
        assert!(answer.is_none(), "an ABI 1.10 runner");
        assert_eq!(
            older.bound(),
            0,
            "nothing bound for a question it cannot ask"
        );

        // A provider whose `schema` panics: the question is left to datafusion-ffi's path.
        *changing.0.lock().expect("not poisoned") = None;
        let answer = runner.schema(&table, Some(&retagged)).expect("no error");
        assert!(answer.is_none(), "a panic in the provider");

        table.library_marker_id = another_image;
        let answer = runner.schema(&table, Some(&first)).expect("no error");
        assert!(answer.is_none(), "another image's provider");
    }

    /// Leaves the schema out under a fingerprint the host never held.
    unsafe extern "C" fn claims_unchanged(
        _: &FFI_PlanRunner,
        _: &FFI_TableProvider,
        _: u64,
    ) -> FFI_Option<FFI_ProviderSchema> {
        FFI_Option::Some(FFI_ProviderSchema {
            fingerprint: 7,
            schema: FFI_Option::None,
        })
    }

    extern "C" fn bind_claiming_unchanged(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        let mut runner = export_plan_runner(config);
        if let FFI_Result::Ok(runner) = &mut runner {
            runner.schema = claims_unchanged;
        }
        runner
    }

    #[test]
    fn a_schema_left_out_under_another_fingerprint_is_an_error() {
        let (table, _ctx) = exported_table();
        let runner = ForeignPlanRunner::new(bind_claiming_unchanged, ABI_MINOR);
        let held = (3, Arc::new(Schema::empty()));
        for known in [None, Some(&held)] {
            let error = runner.schema(&table, known).expect_err("a lying runner");
            assert!(
                error
                    .to_string()
                    .contains("a bug in the bundle's plan runner"),
                "{error}"
            );
        }
    }

    /// Answers one filter too few, as a miscounting provider would.
    unsafe extern "C" fn answers_one_too_few(
        _: &FFI_PlanRunner,
        _: &FFI_TableProvider,
        _: SVec<u8>,
    ) -> FFI_Option<FFI_Result<SVec<FFI_TableProviderFilterPushDown>>> {
        FFI_Option::Some(FFI_Result::Ok(SVec::new()))
    }

    unsafe extern "C" fn fails_to_answer(
        _: &FFI_PlanRunner,
        _: &FFI_TableProvider,
        _: SVec<u8>,
    ) -> FFI_Option<FFI_Result<SVec<FFI_TableProviderFilterPushDown>>> {
        FFI_Option::Some(FFI_Result::Err("the table cannot say".into()))
    }

    /// Binds a runner whose filter question fails (`FAILS`) or miscounts.
    extern "C" fn bind_answering_wrong<const FAILS: bool>(
        config: FFI_ConfigOptions,
    ) -> FFI_Result<FFI_PlanRunner> {
        let mut runner = export_plan_runner(config);
        if let FFI_Result::Ok(runner) = &mut runner {
            runner.supports_filters_pushdown = if FAILS {
                fails_to_answer
            } else {
                answers_one_too_few
            };
        }
        runner
    }

    #[test]
    fn a_wrong_count_of_answers_or_a_failed_answer_is_an_error() {
        let (table, _ctx) = exported(exact_on_v());
        let filter = col("v").gt(lit(1));
        let miscounting = ForeignPlanRunner::new(bind_answering_wrong::<false>, ABI_MINOR);
        let e = miscounting
            .supports_filters_pushdown(&table, &[&filter])
            .expect_err("no answer for the one filter");
        assert!(
            e.to_string()
                .contains("answered for 0 filters when asked about 1"),
            "{e}"
        );
        let failing = ForeignPlanRunner::new(bind_answering_wrong::<true>, ABI_MINOR);
        let e = failing
            .supports_filters_pushdown(&table, &[&filter])
            .expect_err("the bundle's error");
        assert!(e.to_string().contains("the table cannot say"), "{e}");
    }

    #[tokio::test]
    async fn reports_the_providers_scan_error() {
        let (table, _ctx) = exported_table();
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let state = SessionContext::new().state();
        let e = runner
            .scan(&table, &state, Some(&vec![7]), &[], None, false)
            .await
            .expect_err("column 7 does not exist");
        assert!(matches!(e, DataFusionError::Ffi(_)), "{e}");
    }

    /// What a [`SeesSession`] table function was called in: session id, batch size, query
    /// start (ns).
    type Called = (String, usize, Option<i64>);

    /// A table function that records the session it is called in.
    #[derive(Debug, Default)]
    struct SeesSession {
        called: Mutex<Option<Called>>,
    }

    impl TableFunctionImpl for SeesSession {
        fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
            if args.exprs().is_empty() {
                return Err(DataFusionError::Plan(
                    "sees_session needs an argument".into(),
                ));
            }
            let session = args.session();
            let start = session
                .execution_props()
                .query_execution_start_time
                .and_then(|t| t.timestamp_nanos_opt());
            let called = (
                session.session_id().to_owned(),
                session.config().batch_size(),
                start,
            );
            *self.called.lock().expect("not poisoned") = Some(called);
            Ok(Arc::new(table()))
        }
    }

    /// A 1.7 runner calls a table function whose arguments call no function in its own
    /// session, with the host's configuration and query start; other calls, and every call to
    /// an older bundle's function, go through datafusion-ffi (here, in one image, straight to
    /// the function with the host's session).
    #[tokio::test]
    async fn calls_a_table_function_whose_arguments_call_no_function() {
        let function = Arc::new(SeesSession::default());
        let ctx: Arc<dyn TaskContextProvider> = Arc::new(SessionContext::new());
        let udtf = FFI_TableFunction::new(Arc::clone(&function) as _, None, &ctx, None);
        let host = SessionContext::new_with_config(SessionConfig::new().with_batch_size(123));
        let mut state = host.state();
        let start = 1_700_000_000_123_456_789;
        state.execution_props_mut().query_execution_start_time =
            timestamp_ns_to_datetime(start).map(|t| t.and_utc());
        let host_id = state.session_id().to_owned();
        let call = |f: &RunnerTableFunction, args: &[Expr]| {
            let provider = f.call_with_args(TableFunctionArgs::new(args, &state));
            assert_eq!(provider.expect("a table").schema(), table().schema());
            function
                .called
                .lock()
                .expect("not poisoned")
                .take()
                .expect("called")
        };
        let literals = [lit(1), cast(lit("2"), DataType::Int64)];

        let current = RunnerTableFunction::new(
            udtf.clone(),
            Arc::new(ForeignPlanRunner::new(bind_uncounted, ABI_MINOR)),
        );
        let (id, batch_size, called_start) = call(&current, &literals);
        assert_ne!(id, host_id, "the runner's session");
        assert_eq!((batch_size, called_start), (123, Some(start)));
        assert_eq!(
            call(&current, &[abs(lit(-1))]).0,
            host_id,
            "a function call"
        );

        let e = current
            .call_with_args(TableFunctionArgs::new(&[], &state))
            .expect_err("the function's error");
        assert!(
            e.to_string().contains("sees_session needs an argument"),
            "{e}"
        );

        let older =
            RunnerTableFunction::new(udtf, Arc::new(ForeignPlanRunner::new(bind_uncounted, 6)));
        assert_eq!(call(&older, &literals).0, host_id, "an ABI 1.6 runner");
    }

    #[tokio::test]
    async fn refuses_a_plan_another_image_made() {
        let (mut plan, _) = exported_plan();
        plan.library_marker_id = another_image;
        let runner = ForeignPlanRunner::new(bind_uncounted, ABI_MINOR);
        let e = runner
            .execute(&plan, 0, &TaskContext::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("another image made"), "{e}");
    }
}
