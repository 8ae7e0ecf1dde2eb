//! `df-plugin-host verify` and `df_plugin_host::conformance::verify`: the project's bundles
//! pass every check; hostile bundles fail the check that names what is wrong.

use std::path::Path;

use df_plugin_api::record::Capability;
use df_plugin_conformance::craft;
use df_plugin_host::conformance::{Report, Status, VerifyOptions, verify};

use crate::util::{bundle, cli};

async fn report(crate_name: &str) -> Report {
    verify(&bundle(crate_name), &VerifyOptions::default()).await
}

fn status(report: &Report, check: &str) -> Status {
    report
        .check(check)
        .unwrap_or_else(|| panic!("no check {check:?} in\n{report}"))
        .status
}

/// A copy of the Delta test tables, which the delta bundle's .slt files read and write.
fn delta_tables() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/data/delta");
    df_plugin_conformance::slt::copy_dir(&src, dir.path()).unwrap();
    dir
}

#[tokio::test]
async fn the_project_bundles_pass_verify_with_their_own_slt_files() {
    for (name, check) in [
        ("df-plugin-udfs", "slt.url_host.slt"),
        ("df-plugin-udtfs", "slt.url_query_params.slt"),
        ("df-plugin-planners", "slt.tablesample.slt"),
    ] {
        let r = report(name).await;
        r.assert_passed();
        for c in [
            "metadata.readable",
            "metadata.manifest",
            "metadata.versions",
            "metadata.handshake",
            "truth.capabilities",
            "truth.exports",
            "truth.registered",
            "safety.init",
            check,
        ] {
            assert_eq!(status(&r, c), Status::Pass, "{c} in\n{r}");
        }
    }
    let tables = delta_tables();
    let options = VerifyOptions {
        slt_vars: vec![("DELTA".into(), tables.path().display().to_string())],
        ..VerifyOptions::default()
    };
    let r = verify(&bundle("df-plugin-delta"), &options).await;
    r.assert_passed();
    assert_eq!(status(&r, "behaviour.factory.DELTA"), Status::Pass, "{r}");
    assert_eq!(status(&r, "slt.writes.slt"), Status::Pass, "{r}");
}

#[tokio::test]
async fn udfs_and_udtfs_checks_cover_every_kind_of_function() {
    let r = report("df-plugin-udfs").await;
    for c in [
        "behaviour.scalar.url_host",
        "behaviour.aggregate.geo_mean",
        "behaviour.window.sessionize",
        "safety.scalar.url_host",
        "safety.aggregate.geo_mean",
        "safety.window.sessionize",
    ] {
        assert_eq!(status(&r, c), Status::Pass, "{c} in\n{r}");
    }
    let r = report("df-plugin-udtfs").await;
    for c in [
        "behaviour.table_function.url_query_params",
        "safety.table_function.url_query_params",
        "slt.time_buckets.slt",
    ] {
        assert_eq!(status(&r, c), Status::Pass, "{c} in\n{r}");
    }
}

#[tokio::test]
async fn verify_names_what_a_misbehaving_bundle_does_wrong() {
    let r = report("corpus-panicking").await;
    assert!(!r.passed());
    for c in [
        "behaviour.scalar.corpus_panic",
        "behaviour.scalar.corpus_wrong_length",
        "behaviour.scalar.corpus_wrong_type",
        "behaviour.aggregate.corpus_panic_agg",
        "behaviour.window.corpus_panic_window",
        "behaviour.table_function.corpus_panic_call",
        "behaviour.table.corpus_panic_scan",
        "behaviour.table.corpus_panic_stream",
        "behaviour.type_planner.corpus_panic_type",
    ] {
        assert_eq!(status(&r, c), Status::Fail, "{c} in\n{r}");
    }
    let wrong = r.check("behaviour.scalar.corpus_wrong_length").unwrap();
    assert!(
        wrong
            .detail
            .contains("returned 4 value(s) for a batch of 5 row(s)"),
        "{r}"
    );
    // Its guards hold even though its objects misbehave, and its metadata is fine.
    assert_eq!(status(&r, "safety.init"), Status::Pass, "{r}");
    assert_eq!(status(&r, "truth.registered"), Status::Pass, "{r}");
}

#[tokio::test]
async fn verify_stops_at_the_first_failing_step_and_names_it() {
    let r = report("corpus-lying-exports").await;
    assert_eq!(status(&r, "metadata.handshake"), Status::Pass, "{r}");
    assert_eq!(status(&r, "truth.exports"), Status::Fail, "{r}");
    assert!(
        r.check("behaviour.scalar.corpus_undeclared").is_none(),
        "{r}"
    );

    let r = report("corpus-datafusion-54").await;
    assert_eq!(status(&r, "metadata.versions"), Status::Fail, "{r}");
    assert!(
        r.check("metadata.versions")
            .unwrap()
            .detail
            .contains("54.0.0"),
        "{r}"
    );

    let r = report("corpus-not-a-plugin").await;
    assert_eq!(status(&r, "metadata.readable"), Status::Fail, "{r}");

    let r = report("corpus-lying-exports").await;
    assert_eq!(status(&r, "truth.capabilities"), Status::Fail, "{r}");
    assert!(
        r.check("truth.capabilities")
            .unwrap()
            .detail
            .contains("window_udf"),
        "{r}"
    );

    let dir = tempfile::tempdir().unwrap();
    let lying = dir.path().join("libcorpus_lying_bits.so");
    craft::with_record(&bundle("corpus-duplicate"), &lying, |r| {
        r.capabilities |= Capability::WindowUdf.bit()
    })
    .unwrap();
    let r = verify(&lying, &VerifyOptions::default()).await;
    assert_eq!(status(&r, "metadata.versions"), Status::Fail, "{r}");
}

#[test]
fn the_cli_prints_the_report_and_exits_0_only_when_every_check_passed() {
    let out = cli()
        .arg("verify")
        .arg(bundle("df-plugin-udfs"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PASS  behaviour.scalar.url_host"), "{text}");
    assert!(text.contains("result: verified"), "{text}");

    let out = cli()
        .args(["verify", "--json"])
        .arg(bundle("corpus-lying-exports"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = json[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(failed, ["truth.capabilities", "truth.exports"]);

    let out = cli()
        .args(["verify", "--slt-var", "no-equals-sign"])
        .arg(bundle("df-plugin-udfs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
