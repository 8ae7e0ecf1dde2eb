//! The harness still runs every workload (CI's check; the numbers of a debug build at tiny
//! sizes mean nothing). `cargo bench --workspace --bench abi` is the real run.

use std::path::Path;

use df_plugin_bench::{Config, run, sizes, workloads};

#[test]
fn every_workload_runs_at_tiny_sizes() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::smoke(workspace, data.path());
    let timeline = data.path().join("runs.tsv");
    config.timeline = Some(timeline.clone());
    let report = run(&config);

    let groups = [
        "scalar",
        "aggregate",
        "window",
        "table function",
        "delta",
        "planning",
        "load",
        "size",
    ];
    for group in groups {
        assert!(
            report.rows.iter().any(|r| r.group == group),
            "no {group} row in\n{}",
            report.to_markdown()
        );
    }
    for row in &report.rows {
        assert!(
            row.measured > 0.0,
            "{} / {} measured nothing",
            row.group,
            row.name
        );
    }
    for row in report
        .rows
        .iter()
        .filter(|r| r.unit == "ms" && r.baseline.is_some())
    {
        let cpu = row.cpu_ms.expect("a query row has its CPU times");
        assert!(
            cpu[0] > 0.0 && cpu[1] > 0.0,
            "{} / {}: {cpu:?}",
            row.group,
            row.name
        );
        let spread = row.spread.expect("a query row keeps its rounds' ratios");
        assert!(
            spread.q1 <= spread.median && spread.median <= spread.q3,
            "{} / {}: {spread:?}",
            row.group,
            row.name
        );
    }
    // Each bundle's size is set against the floor built in the same cargo run; the floor of
    // the Delta design not built is a row of its own.
    let (floors, bundles): (Vec<_>, Vec<_>) = report
        .rows
        .iter()
        .filter(|r| r.name.ends_with("stripped"))
        .partition(|r| r.name.starts_with("size-floor-"));
    for row in bundles {
        assert!(
            row.baseline.is_some_and(|floor| floor > 0.0),
            "{}: no floor",
            row.name
        );
    }
    assert!(
        matches!(floors.as_slice(), [kernel] if kernel.name.starts_with(sizes::KERNEL_ROUTE) && kernel.measured > 0.0),
        "{floors:?}"
    );
    let table_function = report
        .rows
        .iter()
        .find(|r| r.group == "table function")
        .expect("a row");
    assert_eq!(table_function.rows, Some(config.rows));
    // Every query run's window, warm-up included, for splitting a profile by side.
    let windows = std::fs::read_to_string(&timeline).expect("the timeline was written");
    let queries = workloads::all(&config).len();
    assert_eq!(windows.lines().count(), queries * 2 * (config.reps + 1));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(
        json["rows"].as_array().map(Vec::len),
        Some(report.rows.len())
    );
}
