//! Hostile-bundle corpus: a bundle whose every object panics or breaks its contract when used
//! (and one well-behaved relation-planner answer as the control, `corpus_private_rows`); with
//! the init option `panic_in_init = true`, its `init` panics.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::planner::{
    ExprPlanner, PlannedRelation, PlannerResult, RawBinaryExpr, RelationPlanner,
    RelationPlannerContext, RelationPlanning, TypePlanner,
};
use datafusion::logical_expr::sqlparser::ast::{self, BinaryOperator, TableFactor};
use datafusion::logical_expr::{LogicalPlanBuilder, ScalarUDF, col};
use df_plugin_api::ffi::planner::codec::HostPlanRef;
use df_plugin_api::ffi::planner::expr::ExprPlannerHooks;
use df_plugin_api::ffi::planner::relation::factor_kinds;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    use corpus_common::*;
    if bundle.option("panic_in_init") == Some("true") {
        panic!("init asked to panic");
    }
    bundle
        .scalar_udf(PanicScalar::default())
        .scalar_udf(Misbehave::new(Broken::Length))
        .scalar_udf(Misbehave::new(Broken::Type))
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
            // Refers to a plan the host never made (a forged placeholder): the host cannot
            // decode the answer.
            "corpus_undecodable" => {
                let forged = HostPlanRef {
                    id: 7,
                    nonce: 0,
                    schema: Arc::new(DFSchema::empty()),
                };
                Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                    forged.into_plan(),
                    None,
                ))))
            }
            // The control: a table and a function only this bundle has (never exported) travel
            // beside the plan and run in the bundle.
            "corpus_private_rows" => {
                let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
                )?;
                let table = MemTable::try_new(schema, vec![vec![batch]])?;
                let echo = Arc::new(ScalarUDF::from(corpus_common::Echo::new(
                    "corpus_not_exported",
                )));
                let plan = LogicalPlanBuilder::scan(
                    "corpus_private_rows",
                    provider_as_source(Arc::new(table)),
                    None,
                )?
                .project(vec![echo.call(vec![col("x")]).alias("x")])?
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
