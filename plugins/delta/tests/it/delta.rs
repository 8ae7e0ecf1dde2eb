//! The Delta bundle, loaded: the shared Delta tables read through SQL with the values in their
//! EXPECTED.md, writes, time travel by timestamp, concurrent writers and bad input.
//!
//! Every test works on its own copy of `conformance/data/delta`, so writes and changed file
//! times never touch the checked-in tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use datafusion::prelude::SessionContext;
use df_plugin_conformance::slt;
use tempfile::TempDir;

use crate::util::{config, load, plugin_dir, query_csv, session};

/// A private copy of the shared Delta tables.
pub struct DeltaTables {
    dir: TempDir,
}

impl DeltaTables {
    pub fn copy() -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/data/delta");
        let dir = tempfile::tempdir().expect("temp dir");
        slt::copy_dir(&src, dir.path()).expect("copy the Delta test tables");
        Self { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn table(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

async fn count(ctx: &SessionContext, sql: &str) -> String {
    query_csv(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn delta_slt_files_pass_natively_and_from_the_bundle() {
    let files =
        slt::files_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/slt/delta"))
            .unwrap();
    assert!(files.len() >= 6, "{files:?}");
    let (_dir, plugins) = load();
    let mut failures = Vec::new();
    for partitions in [1, 4] {
        for how in ["native", "bundle"] {
            let ctx = Arc::new(SessionContext::new_with_config(config(partitions)));
            if how == "native" {
                df_plugin_delta_tables::register_natively(&ctx);
            } else {
                plugins.register_into(&ctx).unwrap();
            }
            for file in &files {
                // Files write to their tables: each run reads and writes its own copy.
                let tables = DeltaTables::copy();
                let root = tables.root().display().to_string();
                if let Err(e) =
                    slt::run_file_with_vars(Arc::clone(&ctx), file, &[("DELTA", &root)]).await
                {
                    failures.push(format!("[{how}, target_partitions={partitions}] {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Sets the file times of `simple_table`'s commits as delta-rs's own time-travel test does
/// (copies reset them): v0..v4 at 2020-05-0{1..5}T22:47:31-07:00.
fn set_commit_times(table: &Path) {
    let first = SystemTime::UNIX_EPOCH + Duration::from_secs(1_588_398_451); // 2020-05-02T05:47:31Z
    for v in 0..5u64 {
        let path = table.join(format!("_delta_log/{v:020}.json"));
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(first + Duration::from_secs(v * 86_400))
            .unwrap();
    }
}

#[tokio::test]
async fn timestamp_travel_resolves_commit_times() {
    let tables = DeltaTables::copy();
    let table = tables.table("simple_table");
    set_commit_times(&table);
    let (_dir, ctx) = session();
    let rows_at = |ts: &str| {
        format!(
            "SELECT count(*) FROM delta_scan('{}', '{ts}')",
            table.display()
        )
    };
    // (timestamp, version it resolves to) from delta-rs's time_travel test; rows by version.
    let rows_by_version = ["5", "20", "5", "5", "3"];
    for (ts, version) in [
        ("2020-05-01T00:47:31-07:00", 0),
        ("2020-05-02T22:47:31-07:00", 1),
        ("2020-05-02T23:47:31-07:00", 1),
        ("2020-05-03T22:47:31-07:00", 2),
        ("2020-05-04T22:47:31-07:00", 3),
        ("2020-05-05T21:47:31-07:00", 3),
        ("2020-05-05T22:47:31-07:00", 4),
        // The `.tmp` commit 5 is not a commit.
        ("2020-05-25T22:47:31-07:00", 4),
    ] {
        assert_eq!(
            count(&ctx, &rows_at(ts)).await,
            rows_by_version[version],
            "{ts}"
        );
    }
    // The same pin through CREATE EXTERNAL TABLE, with a UTC time without offset.
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE at_v2 STORED AS DELTA LOCATION '{}' \
         OPTIONS ('timestamp' '2020-05-04 06:00:00')",
        table.display()
    ))
    .await
    .unwrap();
    assert_eq!(count(&ctx, "SELECT count(*) FROM at_v2").await, "5");
}

#[tokio::test]
async fn concurrent_appends_from_two_sessions_lose_no_row() {
    let tables = DeltaTables::copy();
    let table = tables.table("delta-0.8.0");
    let (_d1, a) = session();
    let (_d2, b) = session();
    for ctx in [&a, &b] {
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{}'",
            table.display()
        ))
        .await
        .unwrap();
    }
    const ROUNDS: i64 = 6;
    let writer = |ctx: Arc<SessionContext>, base: i64| async move {
        for i in 0..ROUNDS {
            let sql = format!(
                "INSERT INTO t VALUES ({}), ({})",
                base + 2 * i,
                base + 2 * i + 1
            );
            ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        }
    };
    let (ra, rb) = tokio::join!(
        tokio::spawn(writer(Arc::clone(&a), 1000)),
        tokio::spawn(writer(Arc::clone(&b), 2000))
    );
    ra.unwrap();
    rb.unwrap();
    // 4 rows at v1, plus 2 per insert from each session; every insert one commit.
    let expected = 4 + 2 * 2 * ROUNDS;
    assert_eq!(
        count(&a, "SELECT count(*) FROM t").await,
        expected.to_string()
    );
    assert_eq!(
        count(&b, "SELECT count(DISTINCT value) FROM t").await,
        expected.to_string()
    );
    let history = format!(
        "SELECT count(*) FROM delta_history('{}') WHERE version > 1",
        table.display()
    );
    assert_eq!(count(&a, &history).await, (2 * ROUNDS).to_string());
}

#[tokio::test]
async fn a_corrupt_commit_is_an_error_that_names_the_table() {
    let tables = DeltaTables::copy();
    let table = tables.table("delta-0.8.0");
    std::fs::write(
        table.join("_delta_log/00000000000000000002.json"),
        b"{\"add\": {not json",
    )
    .unwrap();
    let (_dir, ctx) = session();
    let err = ctx
        .sql(&format!("SELECT * FROM delta_scan('{}')", table.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("delta-0.8.0"), "{err}");
    // The versions before the corrupt commit are still readable.
    let v1 = format!("SELECT count(*) FROM delta_scan('{}', 1)", table.display());
    assert_eq!(count(&ctx, &v1).await, "4");
}

/// A session with the bundle loaded and its own copy of the Delta table `name` registered as
/// `t`; the copy and the plugin directory live as long as the first two values.
async fn registered_as_t(name: &str) -> (DeltaTables, TempDir, Arc<SessionContext>) {
    let tables = DeltaTables::copy();
    let (dir, ctx) = session();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{}'",
        tables.table(name).display()
    ))
    .await
    .unwrap();
    (tables, dir, ctx)
}

#[tokio::test]
async fn a_registered_table_reports_a_commit_that_went_bad_after_registration() {
    let (tables, _dir, ctx) = registered_as_t("delta-0.8.0").await;
    let table = tables.table("delta-0.8.0");
    std::fs::write(
        table.join("_delta_log/00000000000000000002.json"),
        b"garbage",
    )
    .unwrap();
    let err = query_csv(&ctx, "SELECT count(*) FROM t")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("delta-0.8.0"), "{err}");
    let insert = query_csv(&ctx, "INSERT INTO t VALUES (1)").await;
    assert!(insert.is_err(), "an insert on a corrupt log must fail");
}

/// Another writer adds a column to a registered table. The first statement, planned with the
/// schema the table's provider read last, is refused when its scan finds the commit; the next
/// one is planned with the new schema and reads the new column (null in the files written
/// before it). A host that kept the schema it was given first would plan every later statement
/// with the old one.
#[tokio::test]
async fn a_registered_table_follows_a_column_another_writer_added() {
    let (tables, _dir, ctx) = registered_as_t("delta-0.8.0").await;
    let table = tables.table("delta-0.8.0");
    assert_eq!(count(&ctx, "SELECT count(*) FROM t").await, "4");
    let value = r#"{\"name\":\"value\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}}"#;
    let note = r#"{\"name\":\"note\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}}"#;
    let commit = format!(
        r#"{{"commitInfo":{{"timestamp":1615043800000,"operation":"ADD COLUMNS","operationParameters":{{}}}}}}
{{"metaData":{{"id":"c48a3abf-ea47-498b-b173-52ce534e8dab","format":{{"provider":"parquet","options":{{}}}},"schemaString":"{{\"type\":\"struct\",\"fields\":[{value},{note}]}}","partitionColumns":[],"configuration":{{}},"createdTime":1615043767476}}}}
"#
    );
    std::fs::write(table.join("_delta_log/00000000000000000002.json"), commit).unwrap();
    // Planned with the schema the provider last read; its scan reads the new commit.
    let e = query_csv(&ctx, "SELECT * FROM t")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("run the statement again"), "{e}");
    let rows = query_csv(&ctx, "SELECT value, note FROM t ORDER BY value")
        .await
        .unwrap();
    assert_eq!(rows, "value,note\n0,\n1,\n2,\n4,\n");
}

#[tokio::test]
async fn partition_filters_and_counts_are_answered_inside_the_scan() {
    let tables = DeltaTables::copy();
    let (_dir, ctx) = session();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE http STORED AS DELTA LOCATION '{}'",
        tables.table("http_requests").display()
    ))
    .await
    .unwrap();
    let plan = query_csv(
        &ctx,
        "EXPLAIN SELECT \"ClientIP\" FROM http WHERE date = '2023-04-14'",
    )
    .await
    .unwrap();
    // The filter is exact (partition column): no FilterExec above the scan, and the scan
    // carries the predicate.
    assert!(!plan.contains("FilterExec"), "{plan}");
    assert!(plan.contains("date@") || plan.contains("date ="), "{plan}");

    let count_plan = query_csv(
        &ctx,
        "EXPLAIN ANALYZE SELECT COUNT(*) FROM http WHERE date > '2023-04-13'",
    )
    .await
    .unwrap();
    assert!(!count_plan.contains("DataSourceExec"), "{count_plan}");
    assert_eq!(
        count(&ctx, "SELECT COUNT(*) FROM http WHERE date > '2023-04-13'").await,
        "1437"
    );
}

/// The table's scan is optimized where a linked provider's would be: by the session's
/// physical optimizer, with the session's settings, when it reaches the scan. Planned in a
/// session that has the host's rule, the scan comes unoptimized (one group of files), the
/// rule repartitions it into `target_partitions` byte ranges, and a `COUNT(*)` answered from
/// statistics never asks; planned in a session without the rule, the scan comes optimized.
#[tokio::test]
async fn a_scan_is_optimized_when_the_sessions_optimizer_reaches_it() {
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    use df_plugin_host::restore::optimize::OptimizeBundleScans;

    let tables = DeltaTables::copy();
    let (_dir, plugins) = load();
    let mut config = config(4).with_batch_size(100);
    config.options_mut().optimizer.repartition_file_min_size = 0;
    let ctx = Arc::new(SessionContext::new_with_config(config));
    plugins.register_into(&ctx).unwrap();
    let location = tables.table("http_requests");
    let sql = format!(
        "CREATE EXTERNAL TABLE http STORED AS DELTA LOCATION '{}'",
        location.display()
    );
    ctx.sql(&sql).await.unwrap();
    let partitions = |plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>| {
        plan.properties().partitioning.partition_count()
    };

    let planned = ctx.sql("SELECT * FROM http").await.unwrap();
    let planned = planned.create_physical_plan().await.unwrap();
    assert_eq!(
        partitions(&planned),
        4,
        "repartitioned by the session's settings"
    );

    let state = ctx.state();
    let table = ctx.table_provider("http").await.unwrap();
    let raw = table.scan(&state, None, &[], None).await.unwrap();
    assert_eq!(
        partitions(&raw),
        1,
        "one group of files, as the provider made it"
    );
    let optimized = OptimizeBundleScans
        .optimize(raw, state.config_options())
        .unwrap();
    assert_eq!(partitions(&optimized), 4);

    let rules = state.physical_optimizers().iter().cloned();
    let without = rules
        .filter(|r| r.name() != OptimizeBundleScans::NAME)
        .collect();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rules(without)
        .build();
    let scan = table.scan(&state, None, &[], None).await.unwrap();
    assert_eq!(partitions(&scan), 4, "optimized at once");

    assert_eq!(count(&ctx, "SELECT COUNT(*) FROM http").await, "1581");
    assert_eq!(
        count(&ctx, "SELECT SUM(1) FROM http").await,
        "1581",
        "read by 4 partitions"
    );
}

#[test]
fn inspect_lists_the_delta_objects() {
    let dir = plugin_dir();
    // Built next to the bundle by the same cargo run.
    let cli = df_plugin_conformance::bundles::profile_dir().join("df-plugin-host");
    let out = std::process::Command::new(cli)
        .arg("inspect")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for name in [
        "DELTA",
        "DELTATABLE",
        "delta_scan",
        "delta_history",
        "delta_changes",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}
