//! The harness still runs every workload (CI's check; the numbers of a debug build at tiny
//! sizes mean nothing). `cargo bench --workspace --bench abi` is the real run.

use std::path::Path;

use df_plugin_bench::{Config, run};

#[test]
fn every_workload_runs_at_tiny_sizes() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let data = tempfile::tempdir().expect("temp dir");
    let config = Config::smoke(workspace, data.path());
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
        let spread = row.spread.expect("a query row keeps its rounds' ratios");
        assert!(
            spread.q1 <= spread.median && spread.median <= spread.q3,
            "{} / {}: {spread:?}",
            row.group,
            row.name
        );
    }
    let table_function = report
        .rows
        .iter()
        .find(|r| r.group == "table function")
        .expect("a row");
    assert_eq!(table_function.rows, Some(config.rows));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(
        json["rows"].as_array().map(Vec::len),
        Some(report.rows.len())
    );
}
