//! Hostile-bundle corpus: a bundle whose every object panics when used.

use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::planner::{
    ExprPlanner, PlannedRelation, PlannerResult, RawBinaryExpr, RelationPlanner,
    RelationPlannerContext, RelationPlanning, TypePlanner,
};
use datafusion::logical_expr::sqlparser::ast::{self, BinaryOperator, TableFactor};
use datafusion::logical_expr::{LogicalPlanBuilder, ScalarUDF};
use df_plugin_api::ffi::planner::expr::ExprPlannerHooks;
use df_plugin_api::ffi::planner::relation::factor_kinds;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    use corpus_common::*;
    bundle
        .scalar_udf(PanicScalar::default())
        .aggregate_udf(PanicAggregate::default())
        .window_udf(PanicWindow::default())
        .table_function("corpus_panic_call", Arc::new(PanicTableFunction))
        .table_provider("corpus_panic_scan", Arc::new(PanicTable(PanicAt::Scan)))
        .table_provider("corpus_panic_stream", Arc::new(PanicTable(PanicAt::Stream)))
        .expr_planner(
            "corpus_panic_operator",
            Arc::new(PanicPlanner),
            ExprPlannerHooks::binary_ops([BinaryOperator::Arrow]),
        )
        .type_planner("corpus_panic_type", Arc::new(PanicPlanner), &["PANIC_TYPE"])
        .relation_planner(
            "corpus_panic_relation",
            Arc::new(PanicPlanner),
            factor_kinds::TABLE,
        );
    Ok(())
}

/// Every planner kind, misbehaving.
#[derive(Debug)]
struct PanicPlanner;

impl ExprPlanner for PanicPlanner {
    fn plan_binary_op(
        &self,
        _expr: RawBinaryExpr,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        panic!("asked to panic");
    }
}

impl TypePlanner for PanicPlanner {
    fn plan_type_field(
        &self,
        _sql_type: &ast::DataType,
    ) -> Result<Option<datafusion::arrow::datatypes::FieldRef>> {
        panic!("asked to panic");
    }
}

impl RelationPlanner for PanicPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let name = match &relation {
            TableFactor::Table { name, .. } => name.to_string(),
            _ => String::new(),
        };
        match name.as_str() {
            "corpus_panic_relation" => panic!("asked to panic"),
            // Calls a function the host does not have: the plan cannot be decoded there.
            "corpus_undecodable" => {
                let missing = Arc::new(ScalarUDF::from(corpus_common::Echo::new(
                    "corpus_not_exported",
                )))
                .call(vec![datafusion::logical_expr::lit(1i64)]);
                let plan = LogicalPlanBuilder::empty(true)
                    .project(vec![missing])?
                    .build()?;
                Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                    plan, None,
                ))))
            }
            // Plans its own input unchanged: re-enters itself until the host stops it.
            "corpus_loop" => {
                let plan = context.plan(relation)?;
                Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                    plan, None,
                ))))
            }
            _ => Ok(RelationPlanning::Original(Box::new(relation))),
        }
    }
}

df_plugin_api::export_bundle!(exports);
