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
//! a `COUNT(*)` of a Delta table this was most of the bundle's cost. A provider's
//! `supports_filters_pushdown`, asked once per filtered query, has no session: it gets a task
//! context with only the filters' functions ([`for_filters`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::{
    AggregateUDF, Expr, HigherOrderUDF, ScalarUDF, WindowFunctionDefinition, WindowUDF,
};
use datafusion::prelude::SessionConfig;

/// The functions some expressions call.
#[derive(Default)]
struct Called {
    scalars: Vec<Arc<ScalarUDF>>,
    higher_order: Vec<Arc<HigherOrderUDF>>,
    aggregates: Vec<Arc<AggregateUDF>>,
    windows: Vec<Arc<WindowUDF>>,
}

impl Called {
    fn by<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Self {
        let mut called = Self::default();
        for expr in exprs {
            // The closure never fails.
            let _ = expr.apply(|e| {
                match e {
                    Expr::ScalarFunction(f) => called.scalars.push(Arc::clone(&f.func)),
                    Expr::HigherOrderFunction(f) => called.higher_order.push(Arc::clone(&f.func)),
                    Expr::AggregateFunction(AggregateFunction { func, .. }) => {
                        called.aggregates.push(Arc::clone(func))
                    }
                    Expr::WindowFunction(w) => match &w.as_ref() {
                        WindowFunction {
                            fun: WindowFunctionDefinition::AggregateUDF(f),
                            ..
                        } => called.aggregates.push(Arc::clone(f)),
                        WindowFunction {
                            fun: WindowFunctionDefinition::WindowUDF(f),
                            ..
                        } => called.windows.push(Arc::clone(f)),
                    },
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        called
    }
}

/// A task context that holds only the functions `filters` call, for a bundle to decode them
/// against in `supports_filters_pushdown`. That call has no session, and decoding needs
/// nothing else: the configuration is the default one, which DataFusion's own
/// `supports_filters_pushdown` never sees either.
pub fn for_filters(filters: &[&Expr]) -> Arc<TaskContext> {
    let called = Called::by(filters.iter().copied());
    Arc::new(TaskContext::new(
        None,
        String::new(),
        SessionConfig::new(),
        by_name(called.scalars, ScalarUDF::name),
        by_name(called.higher_order, HigherOrderUDF::name),
        by_name(called.aggregates, AggregateUDF::name),
        by_name(called.windows, WindowUDF::name),
        // datafusion-ffi does not send a runtime environment across: one default serves all.
        Arc::clone(EMPTY_RUNTIME.get_or_init(Arc::default)),
    ))
}

static EMPTY_RUNTIME: OnceLock<Arc<RuntimeEnv>> = OnceLock::new();

/// `functions` keyed by name, as a task context holds them.
fn by_name<F>(functions: Vec<Arc<F>>, name: fn(&F) -> &str) -> HashMap<String, Arc<F>> {
    functions
        .into_iter()
        .map(|f| (name(&f).to_owned(), f))
        .collect()
}

/// A session like `state` whose registry holds only the functions `exprs` call; `None` when
/// `state` is not a `SessionState` (then the caller passes it on unchanged).
pub fn for_exprs(state: &dyn Session, exprs: &[Expr]) -> Option<SessionState> {
    let state = state.as_any().downcast_ref::<SessionState>()?;
    let called = Called::by(exprs);
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
            .with_scalar_functions(called.scalars)
            .with_higher_order_functions(called.higher_order)
            .with_aggregate_functions(called.aggregates)
            .with_window_functions(called.windows)
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

#[cfg(test)]
mod tests {
    use datafusion::functions::expr_fn::{abs, concat};
    use datafusion::functions_aggregate::expr_fn::sum;
    use datafusion::prelude::{col, lit};

    use super::*;

    #[test]
    fn a_filters_context_holds_the_functions_they_call_and_no_other() {
        let partition = col("day").eq(lit("2026-01-03"));
        let called = concat(vec![col("year"), lit("-"), col("month")]).eq(lit("2021-12"));
        let nested = abs(col("v")).gt(lit(1)).and(sum(col("v")).is_not_null());

        let none = for_filters(&[&partition]);
        assert!(none.scalar_functions().is_empty());
        assert!(none.aggregate_functions().is_empty());

        let some = for_filters(&[&partition, &called, &nested]);
        let mut scalars: Vec<&String> = some.scalar_functions().keys().collect();
        scalars.sort();
        assert_eq!(scalars, ["abs", "concat"]);
        let aggregates: Vec<&String> = some.aggregate_functions().keys().collect();
        assert_eq!(aggregates, ["sum"]);
        assert!(some.window_functions().is_empty());
    }
}
