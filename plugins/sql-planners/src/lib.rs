//! SQL planners for DataFusion: the code the planners bundle exports ([`exports`]).
//!
//! - [`types`]: the SQL types `UUID` (`FixedSizeBinary(16)`, `arrow.uuid`) and `JSON` / `JSONB`
//!   (`Utf8`, `arrow.json`), a type planner;
//! - [`json`]: the operators `->`, `->>` and `?`, subscripts `doc['a'][0]` and dots `doc.a` over
//!   JSON text, an expression planner;
//! - [`sample`]: `TABLESAMPLE` over any FROM-clause item, a relation planner.
//!
//! The planners are ordinary DataFusion planners; [`register_natively`] installs the very same
//! objects into a session without the ABI, which tests and benchmarks compare against.

pub mod json;
pub mod sample;
pub mod types;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::ScalarUDF;
use datafusion::logical_expr::planner::ExprPlanner;
use datafusion::prelude::SessionContext;
use df_plugin_api::ffi::planner::expr::{ExprPlannerHooks, hooks};
use df_plugin_api::ffi::planner::relation::factor_kinds;
use df_plugin_api::toolkit::Bundle;

use json::{JsonOp, JsonOperators};

/// The functions the planners' plans call, in the order the bundle exports them.
fn udfs() -> [ScalarUDF; 6] {
    [
        JsonOp::Get.udf(),
        JsonOp::GetText.udf(),
        JsonOp::HasKey.udf(),
        types::UuidParse::new().into(),
        types::UuidText::new().into(),
        sample::TableSampleHash::new().into(),
    ]
}

/// What the planners bundle exports: the planners and the functions their plans call.
pub fn exports(bundle: &mut Bundle) -> Result<()> {
    for udf in udfs() {
        bundle.scalar_udf(udf);
    }
    // Lean planners: they need no host functions or tables of their own, so the bundle links
    // none of the general planner codec (ABI 1.16).
    bundle
        .type_planner("sql_types", Arc::new(types::SqlTypes), &types::TYPE_NAMES)
        .lean_expr_planner(
            "json_operators",
            Arc::new(JsonOperators),
            ExprPlannerHooks::binary_ops(JsonOperators::operators())
                .with_hooks(hooks::FIELD_ACCESS | hooks::COMPOUND_IDENTIFIER)
                .with_schema(),
        )?
        .lean_relation_planner(
            "tablesample",
            Arc::new(sample::TableSample),
            factor_kinds::SAMPLED,
        );
    Ok(())
}

/// Installs the bundle's functions and planners directly (linked in, no ABI): the native
/// baseline. Expression planners go first, as the host puts bundles' planners.
pub fn register_natively(ctx: &SessionContext) {
    for udf in udfs() {
        ctx.register_udf(udf);
    }
    let state_ref = ctx.state_ref();
    let mut state = state_ref.write();
    let id = state.session_id().to_owned();
    let mut builder = SessionStateBuilder::new_from_existing(state.clone()).with_session_id(id);
    let planners = builder.expr_planners().get_or_insert_with(Vec::new);
    planners.insert(0, Arc::new(JsonOperators) as Arc<dyn ExprPlanner>);
    let relation = builder.relation_planners().get_or_insert_with(Vec::new);
    relation.insert(0, Arc::new(sample::TableSample));
    *builder.type_planner() = Some(Arc::new(types::SqlTypes));
    *state = builder.build();
}
