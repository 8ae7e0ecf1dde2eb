//! `behaviour.table_function.*`, `behaviour.table.*`, `behaviour.factory.*`: whatever a table
//! returns must have the schema it declared (every batch, every projection), and `count(*)`
//! must agree with the rows it streams. Calls the kit cannot give valid arguments to (a Delta
//! table function needs a table's path) may decline with an error, never with a panic.

use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::scalar::ScalarValue;
use df_plugin_api::record::Capability;

use super::report::Report;
use super::values::{self, SAMPLES};
use super::{Outcome, Outcomes, Trigger};
use crate::metadata::BundleMetadata;

pub(super) async fn check_all(
    ctx: &SessionContext,
    meta: &BundleMetadata,
    report: &mut Report,
) -> Vec<Trigger> {
    let mut triggers = Vec::new();
    for decl in meta.manifest.objects_of(Capability::TableFunction) {
        let outcomes = exercise_table_function(ctx, &decl.name, decl.parameters.len()).await;
        if outcomes.reachable() {
            triggers.push((Capability::TableFunction, decl.name.clone()));
        }
        report.outcome(
            format!("behaviour.table_function.{}", decl.name),
            outcomes.verdict_allowing_declines("call"),
        );
    }
    for decl in meta.manifest.objects_of(Capability::TableProvider) {
        let outcomes = exercise_table(ctx, &decl.name).await;
        triggers.push((Capability::TableProvider, decl.name.clone()));
        report.outcome(
            format!("behaviour.table.{}", decl.name),
            outcomes.verdict("scan"),
        );
    }
    for decl in meta.manifest.objects_of(Capability::TableProviderFactory) {
        let outcomes = exercise_factory(ctx, &decl.name).await;
        triggers.push((Capability::TableProviderFactory, decl.name.clone()));
        report.outcome(
            format!("behaviour.factory.{}", decl.name),
            outcomes.verdict_allowing_declines("CREATE EXTERNAL TABLE"),
        );
    }
    triggers
}

/// `SELECT * FROM f(..)` with literal arguments: text, and text followed by integers.
pub(super) async fn exercise_table_function(
    ctx: &SessionContext,
    name: &str,
    parameters: usize,
) -> Outcomes {
    let mut out = Outcomes::default();
    for arity in 0..=parameters.clamp(1, 3) {
        for i in 0..SAMPLES.min(3) {
            let mut kinds = vec![vec![DataType::Utf8; arity]];
            if arity > 1 {
                let mut mixed = vec![DataType::Int64; arity];
                mixed[0] = DataType::Utf8;
                kinds.push(mixed);
            }
            for types in kinds {
                let args: Vec<String> = types
                    .iter()
                    .filter_map(|t| values::sample(t, i).map(|v| sql_literal(&v)))
                    .collect();
                let call = format!("{name}({})", args.join(", "));
                let outcome = match ctx.sql(&format!("SELECT * FROM {call}")).await {
                    Ok(df) => scanned(ctx, df, &format!("SELECT count(*) FROM {call}")).await,
                    Err(e) => Outcome::refused(e.to_string()),
                };
                out.push(call, outcome);
            }
        }
    }
    out
}

/// The whole table, its first column alone, and `count(*)`.
pub(super) async fn exercise_table(ctx: &SessionContext, name: &str) -> Outcomes {
    let mut out = Outcomes::default();
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let outcome = match ctx.sql(&format!("SELECT * FROM {quoted}")).await {
        Ok(df) => scanned(ctx, df, &format!("SELECT count(*) FROM {quoted}")).await,
        Err(e) => Outcome::refused(e.to_string()),
    };
    out.push(format!("SELECT * FROM {quoted}"), outcome);
    let first = match ctx.table(quoted.as_str()).await {
        Ok(df) => df
            .schema()
            .fields()
            .first()
            .map(|f| (df.clone(), f.name().clone())),
        Err(_) => None,
    };
    if let Some((df, first)) = first {
        let outcome = match df.select_columns(&[first.as_str()]) {
            Ok(df) => scanned(ctx, df, &format!("SELECT count(*) FROM {quoted}")).await,
            Err(e) => Outcome::refused(e.to_string()),
        };
        out.push(format!("SELECT \"{first}\" FROM {quoted}"), outcome);
    }
    out
}

/// `CREATE EXTERNAL TABLE .. STORED AS <name>` over an empty directory.
pub(super) async fn exercise_factory(ctx: &SessionContext, name: &str) -> Outcomes {
    let mut out = Outcomes::default();
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            out.push("a scratch directory", Outcome::Declined(e.to_string()));
            return out;
        }
    };
    let location = dir.path().join("df_plugin_conformance");
    let sql = format!(
        "CREATE EXTERNAL TABLE df_plugin_conformance_t STORED AS {name} LOCATION '{}'",
        location.display().to_string().replace('\'', "''")
    );
    let outcome = match ctx.sql(&sql).await {
        Ok(df) => match df.collect().await {
            Ok(_) => {
                let scan = exercise_table(ctx, "df_plugin_conformance_t").await;
                let _ = ctx.deregister_table("df_plugin_conformance_t");
                match scan.verdict_allowing_declines("scan") {
                    Ok(_) => Outcome::Accepted,
                    Err(e) => Outcome::Violation(e),
                }
            }
            Err(e) => Outcome::refused(e.to_string()),
        },
        Err(e) => Outcome::refused(e.to_string()),
    };
    out.push(sql, outcome);
    out
}

/// Collects `df` and checks every batch against its declared schema, and the row count
/// against `count_sql`.
async fn scanned(ctx: &SessionContext, df: DataFrame, count_sql: &str) -> Outcome {
    let declared: Schema = df.schema().as_arrow().clone();
    let batches: Vec<RecordBatch> = match df.collect().await {
        Ok(b) => b,
        Err(e) => return Outcome::refused(e.to_string()),
    };
    for batch in &batches {
        let found = batch.schema();
        let types = |s: &Schema| -> Vec<(String, DataType)> {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect()
        };
        if types(&found) != types(&declared) {
            return Outcome::Violation(format!(
                "streamed a batch of schema {:?} where it declared {:?}",
                types(&found),
                types(&declared)
            ));
        }
    }
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let counted = match ctx.sql(count_sql).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    let counted = match counted {
        Ok(b) => b
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
            .filter(|a| a.len() == 1)
            .map(|a| a.value(0)),
        Err(e) => return Outcome::refused(e.to_string()),
    };
    match counted {
        Some(n) if n as usize == rows => Outcome::Accepted,
        Some(n) => Outcome::Violation(format!("streamed {rows} rows but count(*) says {n}")),
        None => Outcome::Violation("count(*) returned no count".into()),
    }
}

/// A literal as SQL text.
fn sql_literal(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s)) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}
