//! `df_plugins()` and `df_plugin_objects()` after real loads.

use df_plugin_api::record::{ABI_MAJOR, ABI_MINOR};
use df_plugin_host::trust::digest::hash_file;

use crate::util::{
    cli, csv_rows, file_name, host, plugin_dir, query_csv, register, session, session_with,
    udfs_manifest_names,
};

#[tokio::test]
async fn df_plugins_after_a_mixed_load_shows_every_refused_bundle_with_its_reason() {
    let dir = plugin_dir(&[
        "df-plugin-udfs",
        "corpus-abi-major-2",
        "corpus-datafusion-54",
        "corpus-not-a-plugin",
        "corpus-lying-exports",
    ]);
    std::fs::write(dir.path().join("libnotes.so"), "just text").unwrap();
    let ctx = session();
    let plugins = host(dir.path())
        .skip("corpus-lying-exports")
        .build()
        .unwrap()
        .load()
        .unwrap();
    plugins.register_into(&ctx).unwrap();

    let csv = query_csv(
        &ctx,
        "SELECT path, name, state, reason, plugin_abi, array_to_string(capabilities, ', '), \
         load_time_us > 0 AS timed, shares_allocator \
         FROM df_plugins() ORDER BY path",
    )
    .await
    .unwrap();
    let rows = csv_rows(&csv);
    let row = |file: &str| {
        rows.iter()
            .find(|r| r[0].ends_with(file))
            .unwrap_or_else(|| panic!("no row for {file} in:\n{csv}"))
    };
    assert_eq!(rows.len(), 7, "a header and one row per file:\n{csv}");

    let udfs = row(&file_name("df-plugin-udfs"));
    assert_eq!(&udfs[1..3], ["udfs", "loaded"]);
    assert_eq!(udfs[4], format!("{ABI_MAJOR}.{ABI_MINOR}"));
    assert_eq!(udfs[5], "scalar_udf, aggregate_udf, window_udf");
    assert_eq!(udfs[6], "true");
    assert_eq!(
        udfs[7], "true",
        "a 1.9 bundle allocates through the host's allocator"
    );

    for (file, name, step, why) in [
        (
            file_name("corpus-abi-major-2"),
            "corpus-abi-major-2",
            "compatibility",
            "plugin ABI",
        ),
        (
            file_name("corpus-datafusion-54"),
            "corpus-datafusion-54",
            "compatibility",
            "datafusion",
        ),
        (
            file_name("corpus-not-a-plugin"),
            "libcorpus_not_a_plugin.so",
            "metadata",
            "not a df-plugin bundle",
        ),
        (
            "libnotes.so".to_owned(),
            "libnotes.so",
            "metadata",
            "not a shared library",
        ),
    ] {
        let r = row(&file);
        assert_eq!(r[1], name, "{r:?}");
        assert_eq!(r[2], "refused", "{r:?}");
        assert!(
            r[3].contains(&format!("refused at step '{step}'")) && r[3].contains(why),
            "{file}: {}",
            r[3]
        );
        assert!(r[3].contains("fix: "), "{}", r[3]);
    }
    let skipped = row(&file_name("corpus-lying-exports"));
    assert_eq!(skipped[2], "skipped");
    assert!(skipped[3].contains("skip"), "{}", skipped[3]);

    // The refusals left the loaded bundle usable.
    let out = query_csv(&ctx, "SELECT url_host('https://a.b/x') AS h")
        .await
        .unwrap();
    assert_eq!(out, "h\na.b\n");
}

#[tokio::test]
async fn df_plugin_objects_lists_every_registered_object_with_signature_and_doc() {
    let (_dir, ctx) = session_with(&["df-plugin-udfs", "df-plugin-delta"]);
    let csv = query_csv(
        &ctx,
        "SELECT bundle, kind, name, signature IS NOT NULL AS signed, doc IS NOT NULL AS documented \
         FROM df_plugin_objects() WHERE bundle = 'udfs'",
    )
    .await
    .unwrap();
    let rows = csv_rows(&csv);
    let mut names: Vec<String> = rows[1..].iter().map(|r| r[2].clone()).collect();
    let mut declared = udfs_manifest_names();
    names.sort();
    declared.sort();
    assert_eq!(names, declared);
    assert!(rows[1..].iter().all(|r| r[4] == "true"), "{csv}");
    assert!(rows[1..].iter().all(|r| r[3] == "true"), "{csv}");

    let delta = query_csv(
        &ctx,
        "SELECT kind, name FROM df_plugin_objects() WHERE bundle = 'delta' ORDER BY name",
    )
    .await
    .unwrap();
    assert_eq!(
        delta,
        "kind,name\ntable_provider_factory,DELTA\ntable_provider_factory,DELTATABLE\n\
         table_function,delta_changes\ntable_function,delta_history\ntable_function,delta_scan\n"
    );
    let e = ctx.sql("SELECT * FROM df_plugins(1)").await.unwrap_err();
    assert!(
        e.to_string().contains("df_plugins() takes no arguments"),
        "{e}"
    );
}

#[test]
fn inspect_and_df_plugins_report_the_same_hash_and_trust() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let path = dir.path().join(file_name("df-plugin-udfs"));
    let out = cli()
        .args(["inspect", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha = hash_file(&path).unwrap();
    assert_eq!(report[0]["sha256"], sha.as_str());
    assert!(report[0]["trust"].as_str().unwrap().starts_with("any: "));

    let out = cli()
        .args(["sql", "--format", "csv", "--plugin-dir"])
        .arg(dir.path())
        .args(["-e", "SELECT sha256, trust FROM df_plugins()"])
        .output()
        .unwrap();
    let rows = csv_rows(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows[1][0], sha);
    assert_eq!(rows[1][1], report[0]["trust"].as_str().unwrap());
}

#[tokio::test]
async fn at_trust_level_any_a_bundle_is_hashed_only_when_a_query_reads_sha256() {
    let dir = plugin_dir(&["corpus-panicking"]);
    let cache = tempfile::tempdir().unwrap();
    let digests = cache.path().join("digests.json");
    let ctx = session();
    register(
        host(dir.path()).cache_dir(Some(cache.path().to_path_buf())),
        &ctx,
    );
    query_csv(&ctx, "SELECT name, state, trust FROM df_plugins()")
        .await
        .unwrap();
    assert!(!digests.exists(), "loading and listing hashed the bundle");
    let out = query_csv(&ctx, "SELECT sha256 FROM df_plugins()")
        .await
        .unwrap();
    let sha = hash_file(&dir.path().join(file_name("corpus-panicking"))).unwrap();
    assert_eq!(out, format!("sha256\n{sha}\n"));
    assert!(
        digests.exists(),
        "the hash is remembered for the next process"
    );
}

/// The CLI lends bundles the system's allocator (its own): a bundle whose constructor allocated
/// at `dlopen` shares it too, since what it allocated is the system's, and works. (Lent a
/// host's table instead, such a bundle keeps its own heap: `df_plugin_api::ffi::allocator`'s
/// tests.)
#[test]
fn under_the_cli_a_bundle_shares_the_system_allocator_whatever_its_constructors_did() {
    let dir = plugin_dir(&["df-plugin-udfs", "corpus-constructor"]);
    let marker = tempfile::tempdir().unwrap();
    let ran = marker.path().join("ran");
    let sql = |query: &str| {
        let out = cli()
            // The constructor reads this variable and writes the file: both allocate.
            .env("DF_PLUGIN_CORPUS_MARKER", &ran)
            .args(["sql", "--format", "csv", "--plugin-dir"])
            .arg(dir.path())
            .args(["-e", query])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        csv_rows(&String::from_utf8_lossy(&out.stdout))
    };
    let rows = sql("SELECT name, shares_allocator FROM df_plugins() ORDER BY name");
    assert!(ran.exists(), "the constructor ran");
    assert_eq!(rows[1], ["corpus-constructor", "true"]);
    assert_eq!(rows[2], ["udfs", "true"]);
    let rows = sql("SELECT corpus_ctor_echo(41) + 1 AS v");
    assert_eq!(rows[1], ["42"]);
}
