//! The `df-plugin-host` binary, as a user runs it.

use df_plugin_api::record::{ABI_MAJOR, ABI_MINOR};
use std::process::Output;

use df_plugin_conformance::bundles::profile_dir;

use crate::util::{bundle, cli, plugin_dir, sql};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

const FOUR_UDFS_SQL: &str = "select url_host('https://Docs.Example.org/x') as host; \
    select geo_mean(x) as g from (values (2.0), (8.0)) t(x); \
    select ts, sessionize(ts, 60) over (order by ts) as s from (values (0), (30), (200)) t(ts); \
    select key, value from url_query_params('https://a.b/?lang=en&q=arrow')";

const FOUR_UDFS_CSV: &str =
    "host\ndocs.example.org\ng\n4.0\nts,s\n0,1\n30,1\n200,2\nkey,value\nlang,en\nq,arrow\n";

#[test]
fn sql_runs_each_udf_kind_and_prints_csv() {
    let dir = plugin_dir(&["df-plugin-udfs", "df-plugin-udtfs"]);
    let out = sql(dir.path(), &["-e", FOUR_UDFS_SQL, "--format", "csv"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), FOUR_UDFS_CSV);
}

#[test]
fn sql_without_flags_finds_the_bundles_next_to_the_executable() {
    // target/<profile>/ holds the udfs bundle and the hostile corpus; only libdf_plugin_* files
    // are taken from there, so the corpus stays out.
    let out = cli()
        .args(["sql", "-e", FOUR_UDFS_SQL, "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), FOUR_UDFS_CSV);
    assert!(
        !text(&out.stderr).contains("corpus"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sql_reports_refused_bundles_on_stderr_and_goes_on() {
    let dir = plugin_dir(&["df-plugin-udfs", "corpus-abi-major-2"]);
    let out = sql(
        dir.path(),
        &[
            "-e",
            "select url_host('http://x.y/') as h",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[{\"h\":\"x.y\"}]\n");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bundle 'corpus-abi-major-2'"), "{stderr}");
    assert!(
        stderr.contains("plugin ABI major: expected 1, found 2"),
        "{stderr}"
    );
}

#[test]
fn sql_errors_exit_1_with_the_message() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let out = sql(dir.path(), &["-e", "select url_host(1, 2)"]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("url_host"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_json_shows_versions_capabilities_objects_and_verdict() {
    let out = cli()
        .args(["inspect", "--json"])
        .arg(bundle("df-plugin-udfs"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &json[0];
    assert_eq!(r["name"], "udfs");
    assert_eq!(r["version"], "0.1.0");
    assert_eq!(r["plugin_abi"], format!("{ABI_MAJOR}.{ABI_MINOR}"));
    assert_eq!(r["datafusion_version"], datafusion::DATAFUSION_VERSION);
    assert_eq!(r["datafusion_ffi_major"], 55);
    assert_eq!(r["arrow_major"], 59);
    assert_eq!(
        r["capabilities"],
        serde_json::json!(["scalar_udf", "aggregate_udf", "window_udf"])
    );
    let objects: Vec<&str> = r["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(objects, crate::util::udfs_manifest_names());
    assert_eq!(r["options"][0]["name"], "strip_www");
    assert_eq!(r["options"][0]["type"], "bool");
    assert_eq!(r["compatible"], true);
    assert_eq!(r["loaded"], false);
}

#[test]
fn inspect_exit_codes() {
    let ok = cli()
        .arg("inspect")
        .arg(bundle("df-plugin-udfs"))
        .output()
        .unwrap();
    assert_eq!(code(&ok), 0, "{}", text(&ok.stdout));
    assert!(
        text(&ok.stdout).contains("compatible (not loaded"),
        "{}",
        text(&ok.stdout)
    );

    let dir = plugin_dir(&["df-plugin-udfs", "corpus-datafusion-54"]);
    let mixed = cli().arg("inspect").arg(dir.path()).output().unwrap();
    assert_eq!(code(&mixed), 1);
    let stdout = text(&mixed.stdout);
    assert!(stdout.contains("INCOMPATIBLE"), "{stdout}");
    assert!(
        stdout.contains("datafusion version: expected 55.2.0, found 54.0.0"),
        "{stdout}"
    );

    let missing = cli()
        .args(["inspect", "/no/such/bundle.so"])
        .output()
        .unwrap();
    assert_eq!(code(&missing), 2);
    assert!(text(&missing.stderr).contains("/no/such/bundle.so"));

    let usage = cli().arg("inspect").output().unwrap();
    assert_eq!(code(&usage), 2);
}

#[test]
fn inspect_and_refusal_never_run_bundle_code() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("constructor-ran");

    // inspect without --load reads the file only.
    let out = cli()
        .env("DF_PLUGIN_CORPUS_MARKER", &marker)
        .arg("inspect")
        .arg(bundle("corpus-constructor"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    assert!(!marker.exists(), "inspect ran the bundle's constructor");

    // Refusing an incompatible bundle does not open it.
    let dir = plugin_dir(&["corpus-constructor-incompatible"]);
    let out = cli()
        .env("DF_PLUGIN_CORPUS_MARKER", &marker)
        .args(["sql", "--plugin-dir"])
        .arg(dir.path())
        .args(["-e", "select 1"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused at step 'compatibility'"),
        "{}",
        text(&out.stderr)
    );
    assert!(!marker.exists(), "refusing the bundle ran its constructor");

    // The probe works: opening the compatible one runs its constructor.
    let out = cli()
        .env("DF_PLUGIN_CORPUS_MARKER", &marker)
        .args(["inspect", "--load"])
        .arg(bundle("corpus-constructor"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("compatible (loaded"),
        "{}",
        text(&out.stdout)
    );
    assert!(marker.exists(), "the constructor probe never fired");
}

#[test]
fn debug_logging_shows_a_span_per_step_per_bundle_with_durations() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let out = cli()
        .env("RUST_LOG", "df_plugin_host=debug")
        .env("NO_COLOR", "1")
        .args(["sql", "--plugin-dir"])
        .arg(dir.path())
        .args(["-e", "select 1"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for step in [
        "discover",
        "metadata",
        "compatibility",
        "open",
        "handshake",
        "root module",
        "truthfulness",
        "register",
    ] {
        let closed = stderr.lines().any(|l| {
            l.contains(&format!("step=\"{step}\""))
                && l.contains("close")
                && l.contains("time.busy")
        });
        assert!(closed, "no closed span for step {step} in:\n{stderr}");
    }
    assert!(
        stderr.contains("bundle=\"udfs\"") || stderr.contains("bundle=udfs"),
        "{stderr}"
    );
}

#[test]
fn bundle_log_events_reach_the_host_logger() {
    // A contained panic is logged by the bundle's panic hook (target df_plugin::panic), inside
    // the bundle's own copy of `log`; it must come out of the host's subscriber.
    let dir = plugin_dir(&["corpus-panicking"]);
    let out = cli()
        .env("RUST_LOG", "df_plugin=debug")
        .args(["sql", "--plugin-dir"])
        .arg(dir.path())
        .args(["-e", "select corpus_panic(1)"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[bundle corpus-panicking] contained panic"),
        "{stderr}"
    );
}

#[test]
fn the_embedding_example_runs() {
    let example = profile_dir().join("examples").join("embed");
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let out = std::process::Command::new(example)
        .arg(dir.path())
        .env_remove("DF_PLUGIN_PATH")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("example.com"), "{stdout}");
    assert!(
        stdout.contains("| loaded |") && stdout.contains("any: not verified"),
        "{stdout}"
    );
}

#[test]
fn the_embedding_example_refuses_unpinned_plugins_when_asked_to_pin() {
    let example = profile_dir().join("examples").join("embed");
    let dir = crate::util::copied_dir(&["df-plugin-udfs"]);
    let run = || {
        std::process::Command::new(&example)
            .arg(dir.path())
            .env_remove("DF_PLUGIN_PATH")
            .env("DF_PLUGIN_TRUST", "pinned")
            .env("DF_PLUGIN_HOST_CACHE_DIR", crate::util::test_cache_dir())
            .output()
            .unwrap()
    };
    let out = run();
    assert_ne!(code(&out), 0);
    assert!(
        text(&out.stderr).contains("refused at step 'trust'"),
        "{}",
        text(&out.stderr)
    );
    let lock = cli().arg("lock").arg(dir.path()).output().unwrap();
    assert_eq!(code(&lock), 0, "{}", text(&lock.stderr));
    let out = run();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pinned: pinned in"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn csv_output_writes_nested_values_as_text() {
    let out = cli()
        .args([
            "sql",
            "-e",
            "select [1, 2] as l, named_struct('a', 1) as s, 3 as n",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "l,s,n\n\"[1, 2]\",{a: 1},3\n");
}

#[test]
fn bundle_options_can_be_set_and_shown() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let out = sql(
        dir.path(),
        &[
            "-e",
            "SET udfs.strip_www = true; SHOW udfs.strip_www; SELECT url_host('http://www.a.b/') AS h",
            "--format",
            "csv",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "name,value\nudfs.strip_www,true\nh\na.b\n"
    );
}
