//! The planner ABI end to end in one process: ordinary DataFusion planners exported as `FFI_*`
//! structs, wrapped back in `Foreign*` planners and installed in a session, then driven by SQL.
//! Everything crosses as it does between a host and a bundle (bytes, side tables, callbacks);
//! only datafusion-ffi's own objects short-circuit, as they do for any same-image pair.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Int64Array, RecordBatch, Scalar};
use datafusion::arrow::compute::kernels::numeric::add;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::{SessionStateBuilder, TaskContext, TaskContextProvider};
use datafusion::functions::math::abs;
use datafusion::functions_aggregate::first_last::last_value_udaf;
use datafusion::logical_expr::planner::{
    ExprPlanner, PlannedRelation, PlannerResult, RawAggregateExpr, RawDictionaryExpr,
    RawFieldAccessExpr, RawWindowExpr, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{
    ColumnarValue, Expr, GetFieldAccess, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, WindowFunctionDefinition, lit,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{self, TableFactor};

use super::codec::HostPlanRef;
use super::expr::{ExprPlannerHooks, hooks};
use super::relation::factor_kinds;
use super::{
    FFI_ExprPlanner, FFI_RelationPlanner, ForeignExprPlanner, ForeignRelationPlanner,
    PlannerSession,
};

/// The session, for the `Foreign*` planners installed in it (set once it exists).
#[derive(Default)]
struct Slot(OnceLock<Arc<SessionContext>>);

impl TaskContextProvider for Slot {
    fn task_ctx(&self) -> Arc<TaskContext> {
        match self.0.get() {
            Some(ctx) => ctx.task_ctx(),
            None => Arc::new(TaskContext::default()),
        }
    }
}

impl PlannerSession for Slot {
    fn session(&self) -> Option<Arc<SessionContext>> {
        self.0.get().cloned()
    }
}

/// A session with `expr` before DataFusion's expression planners and `relation` as its only
/// relation planner, both across the ABI.
fn session(
    expr: Option<(Arc<dyn ExprPlanner>, ExprPlannerHooks)>,
    relation: Option<(Arc<dyn RelationPlanner>, u32)>,
) -> SessionContext {
    session_of(
        expr.map(|(planner, hooks)| FFI_ExprPlanner::new("probe", planner, hooks)),
        relation.map(|(planner, kinds)| FFI_RelationPlanner::new("probe", planner, kinds)),
    )
}

/// As [`session`], with the planners exported as they are given.
fn session_of(
    expr: Option<FFI_ExprPlanner>,
    relation: Option<FFI_RelationPlanner>,
) -> SessionContext {
    let slot = Arc::new(Slot::default());
    let provider = Arc::clone(&slot) as Arc<dyn PlannerSession>;
    let state = SessionStateBuilder::new().with_default_features().build();
    let mut builder = SessionStateBuilder::new_from_existing(state);
    if let Some(ffi) = expr {
        let foreign = ForeignExprPlanner::new(ffi, "test", Arc::clone(&provider));
        let planners = builder.expr_planners().get_or_insert_with(Vec::new);
        planners.insert(0, Arc::new(foreign));
    }
    if let Some(ffi) = relation {
        let foreign = ForeignRelationPlanner::new(ffi, "test", Arc::clone(&provider));
        *builder.relation_planners() = Some(vec![Arc::new(foreign)]);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    slot.0.set(Arc::new(ctx.clone())).ok();
    ctx
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(pretty_format_batches(&batches)?.to_string())
}

/// The error of `sql`, as text.
async fn error(ctx: &SessionContext, sql: &str) -> String {
    match rows(ctx, sql).await {
        Ok(out) => panic!("{sql}: no error, rows:\n{out}"),
        Err(e) => e.to_string(),
    }
}

async fn one(ctx: &SessionContext, sql: &str) -> String {
    let out = rows(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    // The one value of a one-row, one-column result, without the table's frame.
    out.lines()
        .nth(3)
        .map(|l| l.trim_matches(|c| c == '|' || c == ' ').to_owned())
        .unwrap_or_default()
}

/// A private function the planners build themselves (never registered): `plus_one(x)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PlusOne(Signature);

impl PlusOne {
    fn udf() -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::from(PlusOne(Signature::exact(
            vec![DataType::Int64],
            Volatility::Immutable,
        ))))
    }
}

impl ScalarUDFImpl for PlusOne {
    fn name(&self) -> &str {
        "plus_one"
    }

    fn signature(&self) -> &Signature {
        &self.0
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let x = args.args[0].to_array(args.number_rows)?;
        let one = Scalar::new(Int64Array::from(vec![1i64]));
        Ok(ColumnarValue::Array(add(&x, &one)?))
    }
}

/// An expression planner that answers every hook with what it was given, so a test sees that
/// the input crossed intact.
#[derive(Debug)]
struct Probe;

impl ExprPlanner for Probe {
    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        let text = match &expr.field_access {
            GetFieldAccess::NamedStructField { name } => format!("{} named {name}", expr.expr),
            GetFieldAccess::ListIndex { key } => format!("{} index {key}", expr.expr),
            GetFieldAccess::ListRange {
                start,
                stop,
                stride,
            } => format!("{} range {start} {stop} {stride}", expr.expr),
        };
        Ok(PlannerResult::Planned(lit(text)))
    }

    fn plan_dictionary_literal(
        &self,
        expr: RawDictionaryExpr,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<RawDictionaryExpr>> {
        let pairs: Vec<String> = expr
            .keys
            .iter()
            .zip(&expr.values)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Ok(PlannerResult::Planned(lit(pairs.join(","))))
    }

    fn plan_compound_identifier(
        &self,
        field: &Field,
        qualifier: Option<&TableReference>,
        nested_names: &[String],
    ) -> Result<PlannerResult<Vec<Expr>>> {
        let q = qualifier.map(|q| q.to_string()).unwrap_or_default();
        Ok(PlannerResult::Planned(lit(format!(
            "{q}|{}:{}|{}",
            field.name(),
            field.data_type(),
            nested_names.join(".")
        ))))
    }

    /// `sum(DISTINCT x)` becomes the private `plus_one(sum(x))`: the aggregate crossed with its
    /// flags, and a function the planner made came back.
    fn plan_aggregate(&self, expr: RawAggregateExpr) -> Result<PlannerResult<RawAggregateExpr>> {
        if expr.func.name() != "sum" || !expr.distinct {
            return Ok(PlannerResult::Original(expr));
        }
        let sum =
            Expr::AggregateFunction(datafusion::logical_expr::expr::AggregateFunction::new_udf(
                Arc::clone(&expr.func),
                expr.args,
                false,
                expr.filter,
                expr.order_by,
                expr.null_treatment,
            ));
        Ok(PlannerResult::Planned(PlusOne::udf().call(vec![sum])))
    }

    /// `first_value(..) OVER (..)` becomes `last_value` over the same window.
    fn plan_window(&self, expr: RawWindowExpr) -> Result<PlannerResult<RawWindowExpr>> {
        if expr.func_def.name() != "first_value" {
            return Ok(PlannerResult::Original(expr));
        }
        let window = datafusion::logical_expr::expr::WindowFunction {
            fun: WindowFunctionDefinition::AggregateUDF(last_value_udaf()),
            params: datafusion::logical_expr::expr::WindowFunctionParams {
                args: expr.args,
                partition_by: expr.partition_by,
                order_by: expr.order_by,
                window_frame: expr.window_frame,
                filter: expr.filter,
                null_treatment: expr.null_treatment,
                distinct: expr.distinct,
            },
        };
        Ok(PlannerResult::Planned(Expr::WindowFunction(Box::new(
            window,
        ))))
    }
}

fn probe(bits: u32) -> Option<(Arc<dyn ExprPlanner>, ExprPlannerHooks)> {
    Some((
        Arc::new(Probe),
        ExprPlannerHooks::default().with_hooks(bits).with_schema(),
    ))
}

#[tokio::test]
async fn field_access_crosses_each_kind() {
    let ctx = session(probe(hooks::FIELD_ACCESS), None);
    ctx.sql("CREATE TABLE t (a BIGINT) AS VALUES (1)")
        .await
        .unwrap();
    assert_eq!(one(&ctx, "SELECT a['k'] FROM t").await, "t.a named k");
    assert_eq!(
        one(&ctx, "SELECT a[a + 1] FROM t").await,
        "t.a index t.a + Int64(1)"
    );
    assert_eq!(
        one(&ctx, "SELECT a[1:2] FROM t").await,
        "t.a range Int64(1) Int64(2) Int64(1)"
    );
}

#[tokio::test]
async fn dictionary_literal_crosses_as_pairs() {
    let ctx = session(probe(hooks::DICTIONARY_LITERAL), None);
    ctx.sql("SET datafusion.sql_parser.dialect = 'DuckDB'")
        .await
        .unwrap();
    assert_eq!(
        one(&ctx, "SELECT {'a': 1, 'b': 2}").await,
        "Utf8(\"a\")=Int64(1),Utf8(\"b\")=Int64(2)"
    );
}

#[tokio::test]
async fn compound_identifier_crosses_with_its_field() {
    let ctx = session(probe(hooks::COMPOUND_IDENTIFIER), None);
    ctx.sql("CREATE TABLE s AS SELECT named_struct('x', 1) AS st")
        .await
        .unwrap();
    assert_eq!(
        one(&ctx, "SELECT s.st.x FROM s").await,
        "s|st:Struct(\"x\": Int64)|x"
    );
}

#[tokio::test]
async fn aggregate_and_window_cross_and_private_functions_come_back() {
    let ctx = session(probe(hooks::AGGREGATE | hooks::WINDOW), None);
    ctx.sql("CREATE TABLE n (g BIGINT, v BIGINT) AS VALUES (1, 10), (1, 10), (1, 20), (2, 5)")
        .await
        .unwrap();
    // sum(DISTINCT v) would be 35; the planner made it plus_one(sum(v)) = 46.
    assert_eq!(one(&ctx, "SELECT sum(DISTINCT v) FROM n").await, "46");
    // Untouched aggregates stay DataFusion's.
    assert_eq!(one(&ctx, "SELECT sum(v) FROM n").await, "45");
    assert_eq!(
        one(
            &ctx,
            "SELECT first_value(v) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM n WHERE g = 2"
        )
        .await,
        "5"
    );
    let out = rows(
        &ctx,
        "SELECT DISTINCT first_value(v) OVER (PARTITION BY g ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS f FROM n WHERE g = 1",
    )
    .await
    .unwrap();
    assert!(out.contains("| 20 |"), "{out}");
}

#[tokio::test]
async fn undeclared_hooks_never_cross() {
    // Declares nothing: every hook is DataFusion's.
    let ctx = session(probe(0), None);
    ctx.sql("CREATE TABLE n (v BIGINT) AS VALUES (1), (1), (2)")
        .await
        .unwrap();
    assert_eq!(one(&ctx, "SELECT sum(DISTINCT v) FROM n").await, "3");
    assert_eq!(one(&ctx, "SELECT named_struct('x', 7)['x']").await, "7");
}

/// A relation planner for `FROM private_rows` (a table it makes) and a few hostile answers.
#[derive(Debug)]
struct Rows;

impl RelationPlanner for Rows {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let TableFactor::Table { name, .. } = &relation else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let planned = |plan| {
            Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
                plan, None,
            ))))
        };
        match name.to_string().as_str() {
            // A table and a function only the planner has: both travel as FFI objects.
            "private_rows" => {
                let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
                )?;
                let table = MemTable::try_new(schema, vec![vec![batch]])?;
                let plan = LogicalPlanBuilder::scan(
                    "private_rows",
                    datafusion::datasource::provider_as_source(Arc::new(table)),
                    None,
                )?
                .project(vec![
                    PlusOne::udf()
                        .call(vec![Expr::Column(Column::from_name("x"))])
                        .alias("y"),
                ])?
                .build()?;
                planned(plan)
            }
            // Scans the host's table through its schema-only stand-in instead of plan().
            "via_schema" => {
                let source = context
                    .context_provider()
                    .get_table_source(TableReference::bare("host_rows"))?;
                planned(LogicalPlanBuilder::scan("host_rows", source, None)?.build()?)
            }
            // A chain over the host's table, calling a function by name: lean or not.
            "chained_host_rows" => {
                let host = context.plan(table_factor("host_rows"))?;
                let v = || Expr::Column(Column::from_name("v"));
                let plan = LogicalPlanBuilder::from(host)
                    .filter(v().gt(lit(0i64)))?
                    .sort(vec![v().sort(false, true)])?
                    .limit(0, Some(1))?
                    .project(vec![(abs().call(vec![v()]) + lit(1i64)).alias("w")])?
                    .build()?;
                planned(plan)
            }
            // A host expression that calls a function, planned through the host.
            "host_function_expr" => planned(select_through_host(context, "abs(-2)")?),
            // A placeholder the host never made.
            "forged_placeholder" => {
                let host = context.plan(table_factor("host_rows"))?;
                let mut forged = HostPlanRef::of(&host).cloned().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal("no placeholder".into())
                })?;
                forged.id = 7;
                planned(forged.into_plan())
            }
            // A placeholder from another call of plan_relation.
            "stale_placeholder" => {
                let host = context.plan(table_factor("host_rows"))?;
                let mut stale = HostPlanRef::of(&host).cloned().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal("no placeholder".into())
                })?;
                stale.nonce = stale.nonce.wrapping_add(1);
                planned(stale.into_plan())
            }
            // An expression the host cannot encode for the bundle.
            "subquery_expr" => planned(select_through_host(context, "EXISTS (SELECT 1)")?),
            _ => Ok(RelationPlanning::Original(Box::new(relation))),
        }
    }
}

/// `SELECT <sql>`, the expression planned by the host through the context.
fn select_through_host(
    context: &mut dyn RelationPlannerContext,
    sql: &str,
) -> Result<datafusion::logical_expr::LogicalPlan> {
    let expr = datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::GenericDialect {},
    )
    .try_with_sql(sql)
    .and_then(|mut p| p.parse_expr())
    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let e = context.sql_to_expr(expr, &DFSchema::empty())?;
    LogicalPlanBuilder::empty(true).project(vec![e])?.build()
}

fn table_factor(name: &str) -> TableFactor {
    TableFactor::Table {
        name: ast::ObjectName::from(vec![ast::Ident::new(name)]),
        alias: None,
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}

async fn rows_session() -> SessionContext {
    let ctx = session(None, Some((Arc::new(Rows), factor_kinds::TABLE)));
    ctx.sql("CREATE TABLE host_rows (v BIGINT) AS VALUES (1)")
        .await
        .unwrap();
    ctx
}

#[tokio::test]
async fn plugin_made_tables_and_functions_travel_as_ffi_objects() {
    let ctx = rows_session().await;
    assert_eq!(one(&ctx, "SELECT sum(y) FROM private_rows").await, "9");
    // Joined with a host table, filtered: the private table is an ordinary scan to the host.
    assert_eq!(
        one(
            &ctx,
            "SELECT count(*) FROM private_rows JOIN host_rows ON y = v + 1 WHERE y > 1"
        )
        .await,
        "1"
    );
}

#[tokio::test]
async fn hostile_relation_answers_fail_the_query_cleanly() {
    let ctx = rows_session().await;
    for (table, expected) in [
        ("via_schema", "gives its schema only"),
        ("forged_placeholder", "returned placeholder 7"),
        ("stale_placeholder", "from another call of plan_relation"),
        ("subquery_expr", "cannot cross the plugin boundary"),
    ] {
        // DataFusion resolves the statement's tables before planning: name host_rows in it.
        let err = rows(&ctx, &format!("SELECT * FROM {table} CROSS JOIN host_rows"))
            .await
            .expect_err(table)
            .to_string();
        assert!(err.contains(expected), "{table}: {err}");
        assert!(err.contains("relation planner 'probe'"), "{table}: {err}");
    }
    // The session still works.
    assert_eq!(one(&ctx, "SELECT v FROM host_rows").await, "1");
}

// ---------------------------------------------------------------------------------------------
// Lean planners (ABI 1.16): the same host, the bundle side without the host's functions.

/// A lean expression planner: `l -> r` is `abs(l) * r` (a function by name, the operands
/// wherever it likes), `l -> 0` calls a function only it has, `l -> -1` answers a stale operand
/// placeholder, and `l ->> r` says what it saw of `l`.
#[derive(Debug)]
struct LeanProbe;

impl ExprPlanner for LeanProbe {
    fn plan_binary_op(
        &self,
        expr: datafusion::logical_expr::planner::RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<datafusion::logical_expr::planner::RawBinaryExpr>> {
        use datafusion::logical_expr::ExprSchemable;
        use datafusion::sql::sqlparser::ast::BinaryOperator;
        let (l, r) = (expr.left.clone(), expr.right.clone());
        Ok(PlannerResult::Planned(match expr.op {
            BinaryOperator::Arrow if r == lit(0i64) => PlusOne::udf().call(vec![l]),
            // An operand placeholder of an earlier call.
            BinaryOperator::Arrow if r == lit(-1i64) => {
                Expr::Placeholder(datafusion::logical_expr::expr::Placeholder::new_with_field(
                    "$df_plugin_operand_1_0".into(),
                    None,
                ))
            }
            BinaryOperator::Arrow => abs().call(vec![l]) * r,
            _ => {
                let seen = match &l {
                    Expr::Placeholder(p) => format!("placeholder {}", p.id.split('_').count()),
                    other => other.to_string(),
                };
                lit(format!("{seen}: {}", l.get_type(schema)?))
            }
        }))
    }
}

fn lean_probe() -> FFI_ExprPlanner {
    let hooks =
        ExprPlannerHooks::binary_ops([ast::BinaryOperator::Arrow, ast::BinaryOperator::LongArrow])
            .with_schema();
    FFI_ExprPlanner::new_lean("probe", Arc::new(LeanProbe), hooks).unwrap()
}

#[tokio::test]
async fn lean_operands_cross_opaque_and_come_back() {
    let ctx = session_of(Some(lean_probe()), None);
    ctx.sql("CREATE TABLE t (a BIGINT) AS VALUES (1)")
        .await
        .unwrap();
    // The host's `a - 5` went as a placeholder and came back inside abs(): |1 - 5| * 2.
    assert_eq!(one(&ctx, "SELECT (a - 5) -> 2 FROM t").await, "8");
    // An operand calling a function the bundle never sees.
    assert_eq!(one(&ctx, "SELECT abs(a - 3) -> 3 FROM t").await, "6");
    // Chained: the inner answer is an operand of the outer call.
    assert_eq!(one(&ctx, "SELECT (a - 3) -> 2 -> 3 FROM t").await, "12");
    // Columns cross as themselves, anything else as a typed placeholder.
    assert_eq!(one(&ctx, "SELECT a ->> 1 FROM t").await, "t.a: Int64");
    assert_eq!(
        one(&ctx, "SELECT (a + 1) ->> 1 FROM t").await,
        "placeholder 5: Int64"
    );
    // A function the planner made and did not export cannot travel by name.
    let err = error(&ctx, "SELECT a -> 0 FROM t").await;
    assert!(
        err.contains("expression planner 'probe' of plugin bundle 'test'"),
        "{err}"
    );
    assert!(err.contains("plus_one"), "{err}");
    let err = error(&ctx, "SELECT (a + 1) -> -1 FROM t").await;
    assert!(
        err.contains("expression planner 'probe' of plugin bundle 'test': used the operand placeholder $df_plugin_operand_1_0, which is not one of the 2 operands of this call"),
        "{err}"
    );
}

/// `tag(x)`: a constant that says which `tag` ran.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Tag {
    by: &'static str,
    signature: Signature,
}

impl Tag {
    fn udf(by: &'static str) -> ScalarUDF {
        ScalarUDF::from(Tag {
            by,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for Tag {
    fn name(&self) -> &str {
        "tag"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.by.into()))
    }
}

/// A lean planner that answers `l -> r` with `tag(l)`: a function it names, so the host's.
#[derive(Debug)]
struct Tagger;

impl ExprPlanner for Tagger {
    fn plan_binary_op(
        &self,
        expr: datafusion::logical_expr::planner::RawBinaryExpr,
        _schema: &DFSchema,
    ) -> Result<PlannerResult<datafusion::logical_expr::planner::RawBinaryExpr>> {
        Ok(PlannerResult::Planned(
            Tag::udf("the planner").call(vec![expr.left]),
        ))
    }
}

#[tokio::test]
async fn an_answer_calls_the_session_function_of_its_name_as_it_is_at_that_answer() {
    let hooks = ExprPlannerHooks::binary_ops([ast::BinaryOperator::Arrow]);
    let lean = FFI_ExprPlanner::new_lean("tagger", Arc::new(Tagger), hooks).unwrap();
    let ctx = session_of(Some(lean), None);
    ctx.register_udf(Tag::udf("first"));
    assert_eq!(one(&ctx, "SELECT 1 -> 2").await, "first");
    // Replaced between two queries: the next answer runs the new one.
    ctx.register_udf(Tag::udf("second"));
    assert_eq!(one(&ctx, "SELECT 1 -> 2").await, "second");
    ctx.deregister_udf("tag");
    let err = error(&ctx, "SELECT 1 -> 2").await;
    assert!(
        err.contains("expression planner 'tagger' of plugin bundle 'test' returned an expression the host cannot decode"),
        "{err}"
    );
    assert!(
        err.contains("refers to function 'tag', which the host does not have"),
        "{err}"
    );
}

#[test]
fn a_lean_expression_planner_cannot_take_aggregates_or_windows() {
    for bit in [hooks::AGGREGATE, hooks::WINDOW] {
        let hooks = ExprPlannerHooks::default().with_hooks(bit);
        let err = FFI_ExprPlanner::new_lean("probe", Arc::new(Probe), hooks)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("a lean planner cannot take the AGGREGATE or WINDOW hook"),
            "{err}"
        );
    }
}

/// A planner marked lean that takes the AGGREGATE hook anyway (not one the toolkit makes: a
/// hand-written or miscompiled bundle): the host never offers it an aggregate, which would reach
/// it as a placeholder, so the aggregate stays DataFusion's.
#[tokio::test]
async fn the_host_offers_a_lean_planner_no_aggregate_or_window() {
    let hooks = ExprPlannerHooks::default().with_hooks(hooks::AGGREGATE | hooks::WINDOW);
    let mut ffi = FFI_ExprPlanner::new("probe", Arc::new(Probe), hooks);
    ffi.hooks |= hooks::LEAN;
    let ctx = session_of(Some(ffi), None);
    ctx.sql("CREATE TABLE n (v BIGINT) AS VALUES (1), (1), (2)")
        .await
        .unwrap();
    // Offered, the probe would get a placeholder where it reads an aggregate: an error.
    assert_eq!(one(&ctx, "SELECT sum(DISTINCT v) FROM n").await, "3");
}

#[tokio::test]
async fn a_lean_relation_planner_returns_chains_over_host_plans() {
    let lean = FFI_RelationPlanner::new_lean("probe", Arc::new(Rows), factor_kinds::TABLE);
    let ctx = session_of(None, Some(lean));
    ctx.sql("CREATE TABLE host_rows (v BIGINT) AS VALUES (1), (-4), (3)")
        .await
        .unwrap();
    let sql = "SELECT w FROM chained_host_rows CROSS JOIN host_rows WHERE v = 1";
    assert_eq!(one(&ctx, sql).await, "4");
    for (table, expected) in [
        (
            "private_rows",
            "a lean planner cannot return a plan with a TableScan",
        ),
        ("forged_placeholder", "returned placeholder 7"),
        ("stale_placeholder", "from another call of plan_relation"),
        (
            "host_function_expr",
            "a lean planner cannot read a host expression",
        ),
    ] {
        let err = rows(&ctx, &format!("SELECT * FROM {table} CROSS JOIN host_rows"))
            .await
            .expect_err(table)
            .to_string();
        assert!(err.contains(expected), "{table}: {err}");
        assert!(err.contains("relation planner 'probe'"), "{table}: {err}");
    }
    // The same planner, not lean, returns the same chain.
    let ctx = rows_session().await;
    rows(&ctx, "INSERT INTO host_rows VALUES (-4), (3)")
        .await
        .unwrap();
    assert_eq!(
        one(
            &ctx,
            "SELECT w FROM chained_host_rows CROSS JOIN host_rows WHERE v = 1"
        )
        .await,
        "4"
    );
}
