//! What a bundle's scan or table function call is handed of the host's session: everything but
//! the function registry.
//!
//! datafusion-ffi copies the session it is given across the boundary on every scan and table
//! function call, the task context on every `execute`, and the host slot's task context (to
//! decode filters and arguments) on both: function by function, DataFusion's ~300 built-ins,
//! each an FFI struct made on one side and wrapped on the other, every time (ffi-brief §6.7).
//! A call needs none of them but the functions its expressions call, and streams need none:
//! their expressions were built when the plan was. So the host hands a call a session with the
//! same configuration, table options, catalogs, execution properties and runtime, and only the
//! expressions' functions, and puts that session's task context in scope for the slot
//! ([`crate::session::with_task_ctx`]); and an `execute` a task context with no functions. On
//! a `COUNT(*)` of a Delta table this was most of the bundle's cost.

use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::{Expr, WindowFunctionDefinition};

/// A session like `state` whose registry holds only the functions `exprs` call; `None` when
/// `state` is not a `SessionState` (then the caller passes it on unchanged).
pub fn for_exprs(state: &dyn Session, exprs: &[Expr]) -> Option<SessionState> {
    let state = state.as_any().downcast_ref::<SessionState>()?;
    let (mut scalars, mut aggregates, mut windows) = (Vec::new(), Vec::new(), Vec::new());
    for expr in exprs {
        // The closure never fails.
        let _ = expr.apply(|e| {
            match e {
                Expr::ScalarFunction(f) => scalars.push(Arc::clone(&f.func)),
                Expr::AggregateFunction(AggregateFunction { func, .. }) => {
                    aggregates.push(Arc::clone(func))
                }
                Expr::WindowFunction(w) => match &w.as_ref() {
                    WindowFunction {
                        fun: WindowFunctionDefinition::AggregateUDF(f),
                        ..
                    } => aggregates.push(Arc::clone(f)),
                    WindowFunction {
                        fun: WindowFunctionDefinition::WindowUDF(f),
                        ..
                    } => windows.push(Arc::clone(f)),
                },
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    // `build` would otherwise register a fresh, empty default catalog into the host's catalog
    // list, hiding every table of the session.
    let mut config = state.config().clone();
    config
        .options_mut()
        .catalog
        .create_default_catalog_and_schema = false;
    Some(
        SessionStateBuilder::new()
            .with_session_id(state.session_id().to_string())
            .with_config(config)
            .with_table_options(state.table_options().clone())
            .with_catalog_list(Arc::clone(state.catalog_list()))
            .with_execution_props(state.execution_props().clone())
            .with_runtime_env(Arc::clone(state.runtime_env()))
            .with_scalar_functions(scalars)
            .with_aggregate_functions(aggregates)
            .with_window_functions(windows)
            .build(),
    )
}

/// `context` without its function registry, for executing a bundle's scan.
pub fn for_execute(context: &TaskContext) -> Arc<TaskContext> {
    Arc::new(TaskContext::new(
        context.task_id(),
        context.session_id(),
        context.session_config().clone(),
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
        context.runtime_env(),
    ))
}
