//! The session a bundle's providers see.
//!
//! datafusion-ffi gives a bundle a `ForeignSession` and, at execution, a `TaskContext`, each
//! with a fresh default `RuntimeEnv` (ffi-brief §6.4). An object store a provider registers
//! while planning (deltalake registers the table's store during `scan`) is therefore gone
//! when the plan executes, and a `ForeignSession` is not a `SessionState`, which many
//! providers downcast to. The toolkit gives every call one real `SessionState` built from the
//! host's session (config, functions, query start time) around a runtime environment shared
//! by the whole bundle, and executes plans with that same environment.

use std::sync::{Arc, OnceLock};

use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::physical_plan::ExecutionPlan;

/// The bundle's runtime environment: object stores registered in one call stay registered.
pub fn runtime_env() -> Arc<RuntimeEnv> {
    static ENV: OnceLock<Arc<RuntimeEnv>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| Arc::new(RuntimeEnv::default())))
}

/// A `SessionState` equivalent to the host's `session`, around [`runtime_env`].
pub fn bundle_state(session: &dyn Session) -> SessionState {
    if let Some(state) = session.as_any().downcast_ref::<SessionState>() {
        // Linked natively: the host's own state, with its own object stores.
        return state.clone();
    }
    let mut state = SessionStateBuilder::new()
        .with_session_id(session.session_id().to_string())
        .with_config(session.config().clone())
        .with_runtime_env(runtime_env())
        .with_aggregate_functions(session.aggregate_functions().values().cloned().collect())
        .with_window_functions(session.window_functions().values().cloned().collect())
        .with_execution_props(session.execution_props().clone())
        .build();
    // Registered after `build`, which would call `with_updated_config` on each: for the host's
    // functions that is an FFI call per function with the whole configuration serialised,
    // ~20 ms per scan for DataFusion's ~300 built-ins. The host configured them already.
    for udf in session.scalar_functions().values() {
        // SessionState's registry cannot refuse a function.
        let _ = state.register_udf(Arc::clone(udf));
    }
    state
}

/// Runs the physical optimizer of the bundle's DataFusion over a plan the bundle made.
///
/// The host sees a bundle's scan as one opaque node (its optimizer cannot rewrite across the
/// boundary without breaking plans that inspect their children), so the bundle's subtree is
/// optimized here, with the host's settings, as DataFusion would have optimized it natively.
///
/// A host of plugin ABI 1.12 or later asks for this later instead, when its own physical
/// optimizer reaches the scan (after the rules that may remove it): the plan runner then plans
/// the scan in a session with no physical optimizer rules, where this changes nothing, and
/// applies the rules when asked (`FFI_PlanRunner::optimize`).
pub fn optimize(
    plan: Arc<dyn ExecutionPlan>,
    state: &SessionState,
) -> Result<Arc<dyn ExecutionPlan>> {
    let config = state.config_options();
    state
        .physical_optimizers()
        .iter()
        .try_fold(plan, |plan, rule| rule.optimize(plan, config))
}

/// `context` with [`runtime_env`] in place of the default one datafusion-ffi builds.
pub fn task_context(context: &TaskContext) -> Arc<TaskContext> {
    Arc::new(TaskContext::new(
        context.task_id(),
        context.session_id(),
        context.session_config().clone(),
        context.scalar_functions().clone(),
        context.higher_order_functions().clone(),
        context.aggregate_functions().clone(),
        context.window_functions().clone(),
        runtime_env(),
    ))
}
