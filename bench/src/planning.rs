//! What the bundles cost at planning time.
//!
//! - A plain query (20 joins; no JSON, no UUID, no TABLESAMPLE) planned in a session without
//!   plugins and in one with the planners, UDF and Delta bundles loaded: the planners' hooks
//!   are opt-in, so loading them must not cost a query that does not use them (≤ 5 %).
//! - A query per planner hook, planned with the planners linked in and from the bundle: the
//!   price of crossing the ABI (encode, call, decode) per planned query. Shown, no target:
//!   it is microseconds per query, paid only by queries that use the hook.
//!
//! Planning is `SessionState::create_logical_plan` (SQL to logical plan); each sample plans
//! the query [`BATCH`] times; the sessions alternate sample by sample.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::empty::EmptyTable;
use datafusion::prelude::SessionContext;

use crate::measure::{Rounds, Took, interleaved, time};
use crate::report::{Row, Spread, Target};
use crate::sessions::{BUNDLES, Sessions};

/// Plans per sample.
pub const BATCH: usize = 20;

fn tables(ctx: &SessionContext) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
        Field::new("doc", DataType::Utf8, true),
        Field::new("b", DataType::Binary, true),
    ]));
    for i in 0..=20 {
        let table = Arc::new(EmptyTable::new(Arc::clone(&schema)));
        ctx.register_table(format!("t{i}"), table)
            .expect("register a table");
    }
}

/// `SELECT ... FROM t0 JOIN t1 ... JOIN t20` with a filter on each end.
pub fn twenty_joins() -> String {
    let mut sql = String::from("SELECT t0.v, t20.v FROM t0");
    for i in 1..=20 {
        sql.push_str(&format!(" JOIN t{i} ON t{}.id = t{i}.id", i - 1));
    }
    sql.push_str(" WHERE t0.v > 10 AND t20.v < 5");
    sql
}

/// The time to plan `sql` once in each of `sessions`, per round.
fn race(
    sessions: &[&SessionContext],
    sql: &str,
    samples: usize,
    rt: &tokio::runtime::Runtime,
) -> Rounds {
    let states: Vec<_> = sessions.iter().map(|s| s.state()).collect();
    interleaved(states.len(), samples, |i| {
        let ((), took) = time(|| {
            for _ in 0..BATCH {
                rt.block_on(states[i].create_logical_plan(sql))
                    .unwrap_or_else(|e| panic!("planning {sql}: {e}"));
            }
        });
        Took {
            wall: took.wall / BATCH as u32,
            cpu: took.cpu / BATCH as u32,
        }
    })
}

/// The median µs of each side of `rounds`.
fn median_us(rounds: &Rounds) -> Vec<f64> {
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    rounds.medians().into_iter().map(us).collect()
}

pub fn measure(sessions: &Sessions, samples: usize, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let (plain, native, bundle) = (&sessions.plain, &sessions.native, &sessions.bundle);
    for ctx in [plain, native, bundle] {
        tables(ctx);
    }
    let rounds = race(&[plain, bundle], &twenty_joins(), samples, rt);
    let t = median_us(&rounds);
    let overheads = rounds.ratios(1, 0).into_iter().map(|r| r - 1.0).collect();
    let mut rows = vec![Row {
        baseline: Some(t[0]),
        spread: Spread::of(overheads),
        ..Row::value(
            "planning",
            &format!("20 joins: no plugins vs {} bundles loaded", BUNDLES.len()),
            "µs",
            t[1],
            Target::MaxOverhead { max: 0.05 },
        )
    }];
    let hooks = [
        (
            "hook: type (CAST AS UUID)",
            "SELECT CAST(b AS UUID) FROM t0",
        ),
        (
            "hook: expression (-> / ->>)",
            "SELECT doc -> 'a' ->> 'b' FROM t0 WHERE (doc ->> 'c') = 'x'",
        ),
        (
            "hook: relation (TABLESAMPLE)",
            "SELECT count(*) FROM t0 TABLESAMPLE (10 PERCENT) REPEATABLE (1)",
        ),
    ];
    for (name, sql) in hooks {
        let t = median_us(&race(&[native, bundle], sql, samples, rt));
        rows.push(Row {
            baseline: Some(t[0]),
            ..Row::value("planning", name, "µs", t[1], Target::None)
        });
    }
    rows
}
