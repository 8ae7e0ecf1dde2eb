//! `behaviour.aggregate.*` and `behaviour.window.*`: each aggregate and window function run
//! over generated data (values, NULLs, a group of NULLs only, an empty batch) with 1 and with 4
//! target partitions must give the same results — partial states merged across partitions
//! (and, where offered, groups accumulators) agree with a single pass. A grouped aggregate also
//! runs with partial aggregation skipped, as DataFusion does with many groups: its groups
//! accumulator's `convert_to_state` states, merged, must agree too.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ExprFunctionExt, WindowUDF};
use datafusion::prelude::{DataFrame, Expr, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use df_plugin_api::record::Capability;

use super::report::Report;
use super::values;
use super::{Outcome, Outcomes, Trigger, fresh_config};
use crate::metadata::BundleMetadata;

/// Rows per partition of the generated input, rows per batch, and partitions.
const ROWS: usize = 40;
const BATCH_ROWS: usize = 10;
const PARTITIONS: usize = 4;
/// The group whose arguments are all NULL.
const NULL_GROUP: i64 = 9;

pub(super) async fn check_all(
    ctx: &datafusion::prelude::SessionContext,
    meta: &BundleMetadata,
    report: &mut Report,
) -> Vec<Trigger> {
    let mut triggers = Vec::new();
    let state = ctx.state();
    for decl in meta.manifest.objects_of(Capability::AggregateUdf) {
        let check = format!("behaviour.aggregate.{}", decl.name);
        let Some(udaf) = state.aggregate_functions().get(&decl.name).cloned() else {
            report.skip(check, "not registered (see truth.registered)");
            continue;
        };
        let outcomes = exercise_aggregate(&udaf, decl.parameters.len()).await;
        if outcomes.reachable() {
            triggers.push((Capability::AggregateUdf, decl.name.clone()));
        }
        report.outcome(check, outcomes.verdict("query"));
    }
    for decl in meta.manifest.objects_of(Capability::WindowUdf) {
        let check = format!("behaviour.window.{}", decl.name);
        let Some(udwf) = state.window_functions().get(&decl.name).cloned() else {
            report.skip(check, "not registered (see truth.registered)");
            continue;
        };
        let outcomes = exercise_window(&udwf, decl.parameters.len()).await;
        if outcomes.reachable() {
            triggers.push((Capability::WindowUdf, decl.name.clone()));
        }
        report.outcome(check, outcomes.verdict("query"));
    }
    triggers
}

/// The aggregate grouped and ungrouped, at 1 and 4 partitions, and over no rows.
pub(super) async fn exercise_aggregate(udaf: &AggregateUDF, parameters: usize) -> Outcomes {
    let mut out = Outcomes::default();
    for types in values::argument_types(udaf, parameters.max(2))
        .iter()
        .take(3)
    {
        let what = values::call_text(udaf.name(), types);
        for (how, args) in argument_variants(types) {
            let what = format!("{what} with {how}");
            let call = udaf.call(args);
            let grouped = |df: DataFrame| {
                df.aggregate(vec![col("g")], vec![call.clone().alias("v")])?
                    .sort(vec![col("g").sort(true, true)])
            };
            out.push(
                format!("{what}, GROUP BY"),
                same_as_single(types, grouped, &[Run::Partitioned, Run::Skipping]).await,
            );
            let whole = |df: DataFrame| df.aggregate(vec![], vec![call.clone().alias("v")]);
            out.push(
                format!("{what}, no GROUP BY"),
                same_as_single(types, whole, &[Run::Partitioned]).await,
            );
            let empty = |df: DataFrame| {
                df.filter(lit(false))?
                    .aggregate(vec![], vec![call.clone().alias("v")])
            };
            out.push(format!("{what}, over no rows"), one_row(types, empty).await);
        }
    }
    out
}

/// The window function over `PARTITION BY g ORDER BY o`, at 1 and 4 partitions, and over no rows.
pub(super) async fn exercise_window(udwf: &WindowUDF, parameters: usize) -> Outcomes {
    let mut out = Outcomes::default();
    for types in values::argument_types(udwf, parameters.max(2))
        .iter()
        .take(3)
    {
        let what = values::call_text(udwf.name(), types);
        for (how, args) in argument_variants(types) {
            let what = format!("{what} with {how}");
            let window = match udwf
                .call(args)
                .partition_by(vec![col("g")])
                .order_by(vec![col("o").sort(true, true)])
                .build()
            {
                Ok(w) => w,
                Err(e) => {
                    out.push(what, Outcome::refused(e.to_string()));
                    continue;
                }
            };
            let query = |df: DataFrame| {
                df.window(vec![window.clone().alias("v")])?
                    .select(vec![col("g"), col("o"), col("v")])?
                    .sort(vec![col("g").sort(true, true), col("o").sort(true, true)])
            };
            out.push(
                format!("{what}, OVER (PARTITION BY g ORDER BY o)"),
                same_as_single(types, query, &[Run::Partitioned]).await,
            );
            let empty = |df: DataFrame| {
                df.filter(lit(false))?
                    .window(vec![window.clone().alias("v")])
            };
            let result = run(types, Run::Partitioned, empty).await;
            out.push(
                format!("{what}, over no rows"),
                match result {
                    Ok(rows) if rows.is_empty() => Outcome::Accepted,
                    Ok(rows) => Outcome::Violation(format!("{} rows out of no input", rows.len())),
                    Err(e) => Outcome::refused(e.to_string()),
                },
            );
        }
    }
    out
}

/// Arguments as columns, and (for functions that want literals, e.g. `top_hosts(url, k)`) the
/// first as a column and the rest as literals.
fn argument_variants(types: &[DataType]) -> Vec<(&'static str, Vec<Expr>)> {
    let columns = (0..types.len()).map(|i| col(format!("c{i}"))).collect();
    let mut variants = vec![("column arguments", columns)];
    if types.len() > 1 {
        let literals: Option<Vec<Expr>> = std::iter::once(Some(col("c0")))
            .chain(types[1..].iter().map(|t| values::sample(t, 4).map(lit)))
            .collect();
        if let Some(args) = literals {
            variants.push(("literal arguments after the first", args));
        }
    }
    variants
}

/// How a query's session runs it.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// At 1 target partition: a single pass.
    Single,
    /// At [`PARTITIONS`]: partial states merged.
    Partitioned,
    /// At [`PARTITIONS`], with partial aggregation skipped after each partition's first batch
    /// (DataFusion's probe, at thresholds that always trip): the later batches reach the groups
    /// accumulator's `convert_to_state`, and their states are merged.
    Skipping,
}

impl Run {
    fn session(self) -> Arc<SessionContext> {
        let partitions = match self {
            Run::Single => 1,
            Run::Partitioned | Run::Skipping => PARTITIONS,
        };
        let mut config = fresh_config(partitions);
        if let Run::Skipping = self {
            let execution = &mut config.options_mut().execution;
            execution.skip_partial_aggregation_probe_rows_threshold = 1;
            execution.skip_partial_aggregation_probe_ratio_threshold = 0.0;
        }
        Arc::new(SessionContext::new_with_config(config))
    }

    fn name(self) -> String {
        match self {
            Run::Single => "1 partition".to_owned(),
            Run::Partitioned => format!("{PARTITIONS} partitions"),
            Run::Skipping => format!("{PARTITIONS} partitions with partial aggregation skipped"),
        }
    }

    /// What a difference from a single pass means.
    fn meaning(self) -> &'static str {
        match self {
            Run::Single => "the function is not deterministic",
            Run::Partitioned => "partial states do not merge to the same answer",
            Run::Skipping => {
                "the groups accumulator's convert_to_state states do not merge to the same answer"
            }
        }
    }
}

/// Runs `query` in a single pass and in each of `runs`, and compares the rows.
async fn same_as_single(
    types: &[DataType],
    query: impl Fn(DataFrame) -> Result<DataFrame>,
    runs: &[Run],
) -> Outcome {
    let single = match run(types, Run::Single, &query).await {
        Ok(rows) => rows,
        Err(e) => return Outcome::refused(e.to_string()),
    };
    for &other in runs {
        let rows = match run(types, other, &query).await {
            Ok(rows) => rows,
            Err(e) => {
                return Outcome::Violation(format!(
                    "worked at 1 partition but failed at {}: {e}",
                    other.name()
                ));
            }
        };
        if let Some(diff) = first_difference(&single, &rows) {
            return Outcome::Violation(format!(
                "results differ between 1 partition and {} ({}): {diff}",
                other.name(),
                other.meaning()
            ));
        }
    }
    Outcome::Accepted
}

/// Runs `query`, which must return exactly one row.
async fn one_row(types: &[DataType], query: impl Fn(DataFrame) -> Result<DataFrame>) -> Outcome {
    match run(types, Run::Partitioned, query).await {
        Ok(rows) if rows.len() == 1 => Outcome::Accepted,
        Ok(rows) => Outcome::Violation(format!(
            "{} rows for an aggregate without GROUP BY (expected 1)",
            rows.len()
        )),
        Err(e) => Outcome::refused(e.to_string()),
    }
}

async fn run(
    types: &[DataType],
    how: Run,
    query: impl Fn(DataFrame) -> Result<DataFrame>,
) -> Result<Vec<Vec<String>>> {
    let ctx = how.session();
    let df = ctx.read_table(Arc::new(input(types)?))?;
    let batches = query(df)?.collect().await?;
    df_plugin_conformance::slt::rows(&batches)
        .map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))
}

/// `g` (group), `o` (order, unique), `c0..` (arguments): [`PARTITIONS`] partitions of
/// [`ROWS`] rows in batches of [`BATCH_ROWS`] (slices of one, so their arrays start at an
/// offset), every seventh argument NULL, group [`NULL_GROUP`] NULL throughout, and an empty
/// batch first.
fn input(types: &[DataType]) -> Result<MemTable> {
    let mut fields = vec![
        Field::new("g", DataType::Int64, false),
        Field::new("o", DataType::Int64, false),
    ];
    for (i, t) in types.iter().enumerate() {
        fields.push(Field::new(format!("c{i}"), t.clone(), true));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut partitions = Vec::new();
    for p in 0..PARTITIONS {
        let n: Vec<i64> = (0..ROWS).map(|r| (p * ROWS + r) as i64).collect();
        let group = |n: i64| if n % 10 == 9 { NULL_GROUP } else { n % 4 };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(n.iter().map(|n| group(*n)))),
            Arc::new(Int64Array::from(n.clone())),
        ];
        for (i, t) in types.iter().enumerate() {
            let values = n
                .iter()
                .map(|n| {
                    let n = *n as usize;
                    if group(n as i64) == NULL_GROUP || n % 7 == 6 {
                        ScalarValue::try_from(t)
                    } else {
                        values::sample(t, n + i).ok_or_else(|| {
                            datafusion::error::DataFusionError::NotImplemented(format!(
                                "no samples of {t}"
                            ))
                        })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            columns.push(ScalarValue::iter_to_array(values)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let mut batches: Vec<RecordBatch> = (0..ROWS)
            .step_by(BATCH_ROWS)
            .map(|start| batch.slice(start, BATCH_ROWS.min(ROWS - start)))
            .collect();
        if p == 0 {
            batches.insert(0, RecordBatch::new_empty(Arc::clone(&schema)));
        }
        partitions.push(batches);
    }
    MemTable::try_new(schema, partitions)
}

/// The first row where the two results differ, allowing floating-point rounding from a
/// different order of merging.
fn first_difference(a: &[Vec<String>], b: &[Vec<String>]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} rows vs {} rows", a.len(), b.len()));
    }
    let close = |x: &str, y: &str| match (x.parse::<f64>(), y.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => x == y,
    };
    a.iter().zip(b).find_map(|(ra, rb)| {
        let same = ra.len() == rb.len() && ra.iter().zip(rb).all(|(x, y)| close(x, y));
        (!same).then(|| format!("[{}] vs [{}]", ra.join(", "), rb.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::BooleanArray;
    use datafusion::arrow::datatypes::FieldRef;
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
    use datafusion::logical_expr::{
        Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    };

    use super::*;

    /// `sum` whose groups accumulator converts every row to an empty state: right as long as
    /// partial aggregation runs, wrong once it is skipped.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct ForgetfulSum(AggregateUDF);

    impl AggregateUDFImpl for ForgetfulSum {
        fn name(&self) -> &str {
            "forgetful_sum"
        }
        fn signature(&self) -> &Signature {
            self.0.signature()
        }
        fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
            self.0.return_type(arg_types)
        }
        fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
            self.0.accumulator(args)
        }
        fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
            self.0.state_fields(args)
        }
        fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
            self.0.groups_accumulator_supported(args)
        }
        fn create_groups_accumulator(
            &self,
            args: AccumulatorArgs,
        ) -> Result<Box<dyn GroupsAccumulator>> {
            Ok(Box::new(Forgetful(self.0.create_groups_accumulator(args)?)))
        }
    }

    struct Forgetful(Box<dyn GroupsAccumulator>);

    impl GroupsAccumulator for Forgetful {
        fn update_batch(
            &mut self,
            values: &[ArrayRef],
            group_indices: &[usize],
            opt_filter: Option<&BooleanArray>,
            total_num_groups: usize,
        ) -> Result<()> {
            self.0
                .update_batch(values, group_indices, opt_filter, total_num_groups)
        }
        fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
            self.0.evaluate(emit_to)
        }
        fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
            self.0.state(emit_to)
        }
        fn merge_batch(
            &mut self,
            values: &[ArrayRef],
            group_indices: &[usize],
            total_num_groups: usize,
        ) -> Result<()> {
            self.0.merge_batch(values, group_indices, total_num_groups)
        }
        fn convert_to_state(
            &self,
            values: &[ArrayRef],
            _opt_filter: Option<&BooleanArray>,
        ) -> Result<Vec<ArrayRef>> {
            let none = BooleanArray::from(vec![false; values[0].len()]);
            self.0.convert_to_state(values, Some(&none))
        }
        fn size(&self) -> usize {
            self.0.size()
        }
    }

    #[tokio::test]
    async fn a_groups_accumulator_whose_converted_states_are_wrong_is_a_violation() {
        let sum = sum_udaf();
        let good = exercise_aggregate(&sum, 1).await;
        assert!(good.verdict("query").is_ok(), "{:?}", good.verdict("query"));

        let forgetful = AggregateUDF::new_from_impl(ForgetfulSum(sum.as_ref().clone()));
        let bad = exercise_aggregate(&forgetful, 1).await;
        assert!(
            bad.failed_with("with partial aggregation skipped"),
            "{:?}",
            bad.verdict("query")
        );
        // Only the grouped query skips: the others still pass.
        assert!(bad.reachable());
    }
}
