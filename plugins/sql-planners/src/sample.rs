//! `TABLESAMPLE` over any FROM-clause item: tables, views, CTEs, subqueries (and so joins,
//! inside a subquery), other bundles' tables.
//!
//! DataFusion 55 parses `TABLESAMPLE` and then ignores it, returning every row. [`TableSample`]
//! is a relation planner that takes every item with a sample clause, plans the item itself
//! through the host (so names resolve exactly as without the clause) and samples its rows:
//!
//! - `TABLESAMPLE [BERNOULLI | SYSTEM | ROW | BLOCK] (p [PERCENT])`: each row is kept with
//!   probability p/100 (`random() < p/100`). SYSTEM and BLOCK sample rows too: there are no
//!   storage blocks to pick at this level, and a row sample is a valid, more uniform answer;
//! - `TABLESAMPLE (n ROWS)`: n rows chosen uniformly (the first n by a hash of each row's
//!   values with a seed drawn when the query is planned);
//! - `REPEATABLE (seed)` / `SEED (seed)`: instead of `random()` or a fresh seed, the key is
//!   `tablesample_hash(seed, <every column>)`, a seeded hash of the row's values in [0, 1):
//!   the same data and seed give the same sample on every run and with any partitioning.
//!   Identical rows get the same key, so they are kept or dropped together.
//!
//! `BUCKET x OUT OF y` and `OFFSET` are refused with a message.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::hash_utils::{QualityRandomState, create_hashes};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::sqlparser::ast::{
    self, TableAlias, TableFactor, TableSample as SqlSample, TableSampleKind, TableSampleMethod,
    TableSampleUnit,
};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, lit,
};

/// What to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    /// A fraction in [0, 1].
    Fraction(f64),
    Rows(u64),
}

/// A validated sample clause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSpec {
    pub quantity: Quantity,
    pub seed: Option<i64>,
}

fn number(expr: &ast::Expr) -> Option<&str> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Some(n.as_str()),
            _ => None,
        },
        ast::Expr::Nested(e) => number(e),
        _ => None,
    }
}

impl SampleSpec {
    /// Validates a sample clause.
    pub fn new(sample: &SqlSample) -> Result<Self> {
        if sample.bucket.is_some() {
            return plan_err!(
                "TABLESAMPLE BUCKET ... OUT OF ... is not supported; use TABLESAMPLE (p PERCENT) or (n ROWS)"
            );
        }
        if sample.offset.is_some() {
            return plan_err!("TABLESAMPLE ... OFFSET is not supported");
        }
        match sample.name {
            None
            | Some(TableSampleMethod::Bernoulli)
            | Some(TableSampleMethod::System)
            | Some(TableSampleMethod::Row)
            | Some(TableSampleMethod::Block) => {}
        }
        let Some(q) = &sample.quantity else {
            return plan_err!(
                "TABLESAMPLE needs a quantity: TABLESAMPLE (10 PERCENT) or (100 ROWS)"
            );
        };
        let Some(text) = number(&q.value) else {
            return plan_err!(
                "the TABLESAMPLE quantity must be a number literal, got `{}`",
                q.value
            );
        };
        let quantity = match q.unit {
            Some(TableSampleUnit::Rows) => match text.parse::<u64>() {
                Ok(n) => Quantity::Rows(n),
                Err(_) => {
                    return plan_err!(
                        "TABLESAMPLE ({text} ROWS): the number of rows must be a whole number of at least 0"
                    );
                }
            },
            // PostgreSQL's `TABLESAMPLE BERNOULLI (10)` is a percentage too.
            Some(TableSampleUnit::Percent) | None => match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Quantity::Fraction(p / 100.0),
                _ => {
                    return plan_err!(
                        "TABLESAMPLE ({text} PERCENT): the percentage must be between 0 and 100"
                    );
                }
            },
        };
        let seed = match &sample.seed {
            None => None,
            Some(s) => match &s.value.value {
                ast::Value::Number(n, _) => match n.parse::<i64>() {
                    Ok(seed) => Some(seed),
                    Err(_) => return plan_err!("the TABLESAMPLE seed must be an integer, got {n}"),
                },
                other => return plan_err!("the TABLESAMPLE seed must be an integer, got {other}"),
            },
        };
        Ok(Self { quantity, seed })
    }

    /// The sampled plan over `input`.
    pub fn apply(&self, input: LogicalPlan) -> Result<LogicalPlan> {
        // `n ROWS` without a seed sorts by a hash with a seed drawn now, not by `random()`: a
        // sort key that reads no column lets DataFusion prune every column of the input, and
        // its sort then fails on batches without columns.
        let seed = match (self.seed, self.quantity) {
            (None, Quantity::Rows(_)) => {
                use std::hash::{BuildHasher, Hasher};
                Some(
                    std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish() as i64,
                )
            }
            (seed, _) => seed,
        };
        let key = match seed {
            None => datafusion::functions::math::random().call(vec![]),
            Some(seed) => {
                let mut args = vec![lit(seed)];
                args.extend(input.schema().columns().into_iter().map(Expr::Column));
                Arc::new(ScalarUDF::from(TableSampleHash::new())).call(args)
            }
        };
        let builder = LogicalPlanBuilder::from(input);
        match self.quantity {
            Quantity::Fraction(f) => builder.filter(key.lt(lit(f)))?.build(),
            // A Sort under an explicit Limit, not a Sort with a fetch: DataFusion's SQL planner
            // drops sorts without a Limit above them from FROM-clause items (it does not see a
            // fetch as one), which would count every row.
            Quantity::Rows(n) => builder
                .sort(vec![key.sort(true, false)])?
                .limit(0, Some(n as usize))?
                .build(),
        }
    }
}

/// Removes the sample clause and the alias from an item.
fn split(relation: TableFactor) -> (TableFactor, Option<Box<SqlSample>>, Option<TableAlias>) {
    let take = |s: Option<TableSampleKind>| {
        s.map(|k| match k {
            TableSampleKind::BeforeTableAlias(s) | TableSampleKind::AfterTableAlias(s) => s,
        })
    };
    match relation {
        TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_hints,
        } => (
            TableFactor::Table {
                name,
                alias: None,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample: None,
                index_hints,
            },
            take(sample),
            alias,
        ),
        TableFactor::Derived {
            lateral,
            subquery,
            alias,
            sample,
        } => (
            TableFactor::Derived {
                lateral,
                subquery,
                alias: None,
                sample: None,
            },
            take(sample),
            alias,
        ),
        other => (other, None, None),
    }
}

/// The `TABLESAMPLE` relation planner.
#[derive(Debug, Default)]
pub struct TableSample;

impl RelationPlanner for TableSample {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let (bare, sample, alias) = split(relation.clone());
        let Some(sample) = sample else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let spec = SampleSpec::new(&sample)?;
        let input = context.plan(bare)?;
        let plan = spec.apply(input)?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan, alias,
        ))))
    }
}

/// `tablesample_hash(seed, value, ...)`: a seeded hash of the values, as a float in [0, 1).
/// What `TABLESAMPLE ... REPEATABLE (seed)` samples by.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TableSampleHash {
    signature: Signature,
}

impl TableSampleHash {
    pub fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for TableSampleHash {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for TableSampleHash {
    fn name(&self) -> &str {
        "tablesample_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.is_empty() || !arg_types[0].is_integer() {
            return plan_err!("tablesample_hash(seed, value, ...) takes an integer seed first");
        }
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // A literal, though it may arrive as an array (datafusion-ffi passes arrays).
        let seed = match &args.args[0] {
            ColumnarValue::Scalar(s) => s.clone(),
            ColumnarValue::Array(a) if !a.is_empty() => ScalarValue::try_from_array(a, 0)?,
            ColumnarValue::Array(_) => ScalarValue::Int64(Some(0)),
        };
        let ScalarValue::Int64(Some(seed)) = seed.cast_to(&DataType::Int64)? else {
            return exec_err!("tablesample_hash: the seed must not be NULL");
        };
        let seed = seed as u64;
        // One value per row, also when every argument is a scalar.
        let values: Vec<ArrayRef> = args.args[1..]
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<_>>()?;
        let mut hashes = vec![0u64; args.number_rows];
        if !values.is_empty() {
            let state = QualityRandomState::with_seed(seed);
            create_hashes(&values, &state, &mut hashes)?;
        } else {
            hashes.fill(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        // The top 53 bits as a float in [0, 1).
        let out: Float64Array = hashes
            .iter()
            .map(|h| Some((h >> 11) as f64 / (1u64 << 53) as f64))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
