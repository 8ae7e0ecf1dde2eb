//! The query workloads: the same SQL in the native and the bundle session.

use std::time::Duration;

use crate::instructions::{self, RunLabel};
use crate::measure::{Took, drain, interleaved_for, monotonic_ns, time};
use crate::profile::Timeline;
use crate::report::{Row, Spread, Target};
use crate::sessions::Sessions;
use crate::{Config, MAX_ROUNDS, delta_table};

/// The two sides of a query workload, by index.
pub const SIDES: [&str; 2] = ["native", "bundle"];

/// One query workload and the ratio it must reach.
pub struct Workload {
    pub group: &'static str,
    pub name: &'static str,
    pub sql: String,
    /// Lower bound on native time / bundle time.
    pub min_ratio: f64,
}

/// Every query workload at `config`'s sizes.
pub fn all(config: &Config) -> Vec<Workload> {
    let w = |group, name, sql: &str, min_ratio| Workload {
        group,
        name,
        sql: sql.to_owned(),
        min_ratio,
    };
    // `rows` one-minute buckets from the epoch.
    let buckets = format!("SELECT * FROM time_buckets(0, {}, 60)", config.rows * 60);
    let day = delta_table::FILTER_DAY;
    vec![
        w(
            "scalar",
            "time_bucket(ts, w): Int64 columns",
            "SELECT time_bucket(ts, w) FROM events",
            0.97,
        ),
        w(
            "scalar",
            "time_bucket(ts, 300): a constant argument",
            "SELECT time_bucket(ts, 300) FROM events",
            0.97,
        ),
        w(
            "scalar",
            "url_host(url): Utf8View",
            "SELECT url_host(url) FROM events",
            0.97,
        ),
        w(
            "aggregate",
            "geo_mean(v), 10 groups",
            "SELECT g_few, geo_mean(v) FROM events GROUP BY g_few",
            0.95,
        ),
        w(
            "aggregate",
            "geo_mean(v), many groups",
            "SELECT g_many, geo_mean(v) FROM events GROUP BY g_many",
            0.95,
        ),
        w(
            "window",
            "sessionize(ts, 1800) over user partitions",
            "SELECT sessionize(ts, 1800) OVER (PARTITION BY user_id ORDER BY ts) FROM events",
            0.95,
        ),
        Workload {
            group: "table function",
            name: "time_buckets(...): all rows",
            sql: buckets,
            min_ratio: 0.97,
        },
        w("delta", "full scan", "SELECT * FROM hits", 0.97),
        w(
            "delta",
            "projection (one column)",
            "SELECT value FROM hits",
            0.97,
        ),
        Workload {
            group: "delta",
            name: "partition filter (1 of 10 days)",
            sql: format!("SELECT * FROM hits WHERE day = '{day}'"),
            min_ratio: 0.97,
        },
        w("delta", "COUNT(*)", "SELECT COUNT(*) FROM hits", 0.97),
    ]
}

impl Workload {
    /// The physical plan of the query on each side (`--explain`).
    pub fn explain(&self, sessions: &Sessions, runtime: &tokio::runtime::Runtime) -> String {
        let ctx = [&sessions.native, &sessions.bundle];
        let mut out = String::new();
        for (side, ctx) in SIDES.iter().zip(ctx) {
            let plan = runtime.block_on(async {
                let plan = ctx.sql(&self.sql).await?.create_physical_plan().await?;
                Ok::<_, datafusion::error::DataFusionError>(
                    datafusion::physical_plan::displayable(plan.as_ref())
                        .indent(true)
                        .to_string(),
                )
            });
            let plan = plan.unwrap_or_else(|e| format!("cannot plan: {e}\n"));
            out.push_str(&format!("{side}:\n"));
            // A scan's line lists every file: its start says enough.
            for line in plan.lines() {
                let cut = line.char_indices().nth(160).map_or(line.len(), |(i, _)| i);
                let more = if cut < line.len() { " ..." } else { "" };
                out.push_str(&format!("{}{more}\n", &line[..cut]));
            }
        }
        out
    }

    /// Runs the query natively and from the bundle, interleaved; both must return as many rows.
    /// With `config.side` set, runs that side only (for a profiler) and reports its time.
    pub fn measure(
        &self,
        sessions: &Sessions,
        config: &Config,
        runtime: &tokio::runtime::Runtime,
        timeline: &mut Timeline,
    ) -> Row {
        let ctx = [&sessions.native, &sessions.bundle];
        let mut counts = [None, None];
        let mut runs = [0, 0];
        let budget = Duration::from_secs_f64(config.min_seconds);
        let max_rounds = MAX_ROUNDS.max(config.reps);
        let rounds = interleaved_for(2, config.reps, budget, max_rounds, |side| {
            if config.side.is_some_and(|only| only != side) {
                return Took::default();
            }
            let label = RunLabel {
                workload: self.name.to_owned(),
                side,
                round: runs[side],
                batches: 0,
            };
            runs[side] += 1;
            let start = monotonic_ns();
            let (drained, took) = instructions::counted(config.callgrind, label, || {
                let (drained, took) = time(|| runtime.block_on(drain(ctx[side], &self.sql)));
                let drained =
                    drained.unwrap_or_else(|e| panic!("{} ({}): {e}", self.sql, SIDES[side]));
                ((drained, took), drained.batches)
            });
            let end = start + took.wall.as_nanos() as u64;
            timeline.record(self.name, side, start, end);
            counts[side] = Some(drained.rows);
            took
        });
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let cpu = [0, 1].map(|side| ms(rounds.cpu_median(side)));
        let ran = [0, 1]
            .into_iter()
            .filter(|s| config.side.is_none_or(|only| only == *s));
        let cpu_line: Vec<String> = ran
            .map(|s| format!("{} {:.1} ms", SIDES[s], cpu[s]))
            .collect();
        eprintln!("  median CPU time (all threads): {}", cpu_line.join(", "));
        if let Some(side) = config.side {
            let name = format!("{} [{} only]", self.name, SIDES[side]);
            let mut row = Row::value(
                self.group,
                &name,
                "ms",
                ms(rounds.median(side)),
                Target::None,
            );
            row.rows = counts[side];
            return row;
        }
        assert_eq!(
            counts[0], counts[1],
            "{}: the native and the bundle session disagree on the row count",
            self.sql
        );
        let mut row = Row::ratio(
            self.group,
            self.name,
            ms(rounds.median(0)),
            ms(rounds.median(1)),
            self.min_ratio,
        );
        row.spread = Spread::of(rounds.ratios(0, 1));
        row.rounds = Some(rounds.count());
        row.cpu_ms = Some(cpu);
        row.rows = counts[0];
        row
    }
}
