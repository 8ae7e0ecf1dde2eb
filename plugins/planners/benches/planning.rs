//! What the SQL planners cost at planning time, measured against native in the same run.
//!
//! `cargo bench --workspace --bench planning`
//!
//! - A plain query (20 joins, no JSON, no type, no TABLESAMPLE) planned in a session without
//!   plugins and in one with the planners, UDF and Delta bundles loaded: the planners' hooks
//!   are opt-in, so the bundles' planners must not cost it anything (target: within 5%).
//! - A query per hook, planned with the planners installed natively and from the bundle: the
//!   price of crossing the ABI (encoding, the call, decoding) per planned query.
//!
//! Planning is `SessionState::create_logical_plan` (SQL to logical plan); each sample plans
//! the query `BATCH` times; the sessions alternate sample by sample, so drift hits both.
//! Medians of `SAMPLES` samples.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::empty::EmptyTable;
use datafusion::prelude::SessionContext;
use df_plugin_conformance::bundles;
use df_plugin_host::PluginHost;

const SAMPLES: usize = 41;
const BATCH: usize = 20;

fn tables(ctx: &SessionContext) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("doc", DataType::Utf8, true),
        Field::new("b", DataType::Binary, true),
    ]));
    for i in 0..=20 {
        ctx.register_table(
            format!("t{i}"),
            Arc::new(EmptyTable::new(Arc::clone(&schema))),
        )
        .expect("register a table");
    }
}

fn twenty_joins() -> String {
    let mut sql = String::from("SELECT t0.v, t20.v FROM t0");
    for i in 1..=20 {
        sql.push_str(&format!(" JOIN t{i} ON t{}.id = t{i}.id", i - 1));
    }
    sql.push_str(" WHERE t0.v > 10 AND t20.v < 5");
    sql
}

/// Median time to plan `sql` once, for each session, sampled alternately.
fn race(sessions: &[&SessionContext], sql: &str) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut samples = vec![Vec::with_capacity(SAMPLES); sessions.len()];
    for round in 0..SAMPLES + 3 {
        for (i, ctx) in sessions.iter().enumerate() {
            let state = ctx.state();
            let start = Instant::now();
            for _ in 0..BATCH {
                rt.block_on(state.create_logical_plan(sql))
                    .unwrap_or_else(|e| panic!("planning {sql}: {e}"));
            }
            // The first rounds warm caches up.
            if round >= 3 {
                samples[i].push(start.elapsed() / BATCH as u32);
            }
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = bundles::plugin_dir(
        bundles::built(&workspace),
        &["df-plugin-planners", "df-plugin-udfs", "df-plugin-delta"],
    );
    let plugins = PluginHost::builder()
        .search_path(dir.path())
        .ignore_env(true)
        .cache_dir(None)
        .strict(true)
        .build()
        .expect("a host")
        .load()
        .expect("the bundles load");

    let plain = Arc::new(SessionContext::new());
    let loaded = Arc::new(SessionContext::new());
    let native = Arc::new(SessionContext::new());
    plugins
        .register_into(&loaded)
        .expect("register the bundles");
    df_plugin_planners::register_natively(&native);
    for ctx in [&plain, &loaded, &native] {
        tables(ctx);
    }

    println!("planning time per query (median of {SAMPLES} samples of {BATCH})\n");
    let sql = twenty_joins();
    let t = race(&[&plain, &loaded], &sql);
    println!("| plain query | no plugins | 3 bundles loaded | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| 20 joins | {:.1} µs | {:.1} µs | {:.3} |\n",
        micros(t[0]),
        micros(t[1]),
        micros(t[1]) / micros(t[0])
    );

    let hooks = [
        ("type (CAST AS UUID)", "SELECT CAST(b AS UUID) FROM t0"),
        (
            "expression (-> / ->>)",
            "SELECT doc -> 'a' ->> 'b' FROM t0 WHERE (doc ->> 'c') = 'x'",
        ),
        (
            "relation (TABLESAMPLE)",
            "SELECT count(*) FROM t0 TABLESAMPLE (10 PERCENT) REPEATABLE (1)",
        ),
    ];
    println!("| hook | native planners | from the bundle | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, sql) in hooks {
        let t = race(&[&native, &loaded], sql);
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.2} |",
            micros(t[0]),
            micros(t[1]),
            micros(t[1]) / micros(t[0])
        );
    }
}
