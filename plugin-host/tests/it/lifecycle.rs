//! Loading into a running session, deregistering, upgrading, reloading: `LOAD PLUGIN` and
//! friends through the library's statement API (the CLI runs the same code).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use df_plugin_host::{ConflictPolicy, HostError, PluginStatement, statement};

use crate::util::{
    cli, cli_ok, copied_dir, file_name, host, plugin_dir, query_csv, register, session, snapshot,
};

/// Runs a plugin statement; returns (action, bundle, version).
fn run(ctx: &Arc<SessionContext>, sql: &str) -> Result<(String, String, String), HostError> {
    let stmt = PluginStatement::parse(sql).expect("a plugin statement")?;
    let batch = statement::execute(ctx, &stmt)?;
    let col = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .unwrap()
            .value(0)
            .to_owned()
    };
    Ok((col(0), col(1), col(2)))
}

fn load(
    ctx: &Arc<SessionContext>,
    path: &Path,
    force: bool,
) -> Result<(String, String, String), HostError> {
    let force = if force { " FORCE" } else { "" };
    run(ctx, &format!("LOAD PLUGIN '{}'{force}", path.display()))
}

async fn state_of(ctx: &SessionContext, path: &Path) -> String {
    query_csv(
        ctx,
        &format!(
            "SELECT state FROM df_plugins() WHERE path = '{}'",
            path.display()
        ),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn load_plugin_registers_a_bundle_later_and_loading_it_again_is_a_no_op() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let path = dir.path().join(file_name("df-plugin-udfs"));
    let ctx = session();
    assert!(ctx.sql("SELECT url_host('https://a.b/')").await.is_err());

    let (action, bundle, _) = load(&ctx, &path, false).unwrap();
    assert_eq!((action.as_str(), bundle.as_str()), ("loaded", "udfs"));
    let out = query_csv(&ctx, "SELECT url_host('https://a.b/') AS h")
        .await
        .unwrap();
    assert_eq!(out, "h\na.b\n");
    assert_eq!(state_of(&ctx, &path).await, "state\nloaded\n");

    let before = snapshot(&ctx);
    assert_eq!(load(&ctx, &path, false).unwrap().0, "unchanged");
    assert_eq!(run(&ctx, "RELOAD PLUGIN udfs").unwrap().0, "unchanged");
    assert_eq!(snapshot(&ctx), before);
}

#[tokio::test]
async fn unload_plugin_removes_every_object_and_load_brings_them_back() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let path = dir.path().join(file_name("df-plugin-udfs"));
    let ctx = session();
    let empty = snapshot(&ctx);
    load(&ctx, &path, false).unwrap();
    ctx.sql("SET udfs.strip_www = true").await.unwrap();

    assert_eq!(run(&ctx, "UNLOAD PLUGIN udfs").unwrap().0, "deregistered");
    assert_eq!(snapshot(&ctx), empty, "every object of the bundle is gone");
    let e = ctx
        .sql("SELECT url_host('x')")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("url_host"), "{e}");
    let e = ctx
        .sql("SET udfs.strip_www = true")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown option 'udfs.strip_www'"), "{e}");
    assert_eq!(state_of(&ctx, &path).await, "state\nderegistered\n");

    let e = run(&ctx, "UNLOAD PLUGIN udfs").unwrap_err().to_string();
    assert!(e.contains("no bundle named 'udfs' is registered"), "{e}");

    assert_eq!(load(&ctx, &path, false).unwrap().0, "loaded");
    let out = query_csv(&ctx, "SELECT url_host('https://www.a.b/') AS h")
        .await
        .unwrap();
    assert_eq!(
        out, "h\nwww.a.b\n",
        "a fresh registration starts from the defaults"
    );
}

#[tokio::test]
async fn a_newer_version_from_another_file_upgrades_and_an_older_one_needs_force() {
    let dir = plugin_dir(&["corpus-upgrade-v1", "corpus-upgrade-v2"]);
    let v1 = dir.path().join(file_name("corpus-upgrade-v1"));
    let v2 = dir.path().join(file_name("corpus-upgrade-v2"));
    let ctx = session();
    load(&ctx, &v1, false).unwrap();
    query_csv(&ctx, "SELECT corpus_upgrade_v1(1)")
        .await
        .unwrap();

    let (action, bundle, version) = load(&ctx, &v2, false).unwrap();
    assert_eq!(
        (action.as_str(), bundle.as_str(), version.as_str()),
        ("upgraded", "corpus-upgrade", "2.0.0")
    );
    assert!(ctx.sql("SELECT corpus_upgrade_v1(1)").await.is_err());
    let out = query_csv(
        &ctx,
        "SELECT corpus_upgrade_v2(7) AS v, corpus_upgrade_echo(8) AS e",
    )
    .await
    .unwrap();
    assert_eq!(out, "v,e\n7,8\n");
    assert_eq!(state_of(&ctx, &v1).await, "state\nupgraded\n");

    // A downgrade is refused and changes nothing...
    let before = snapshot(&ctx);
    let e = load(&ctx, &v1, false).unwrap_err().to_string();
    assert!(
        e.contains("version 2.0.0 is registered") && e.contains("not newer") && e.contains("FORCE"),
        "{e}"
    );
    assert_eq!(snapshot(&ctx), before);
    query_csv(&ctx, "SELECT corpus_upgrade_v2(1)")
        .await
        .unwrap();

    // ... unless forced.
    assert_eq!(load(&ctx, &v1, true).unwrap().0, "downgraded");
    query_csv(&ctx, "SELECT corpus_upgrade_v1(1)")
        .await
        .unwrap();
    assert!(ctx.sql("SELECT corpus_upgrade_v2(1)").await.is_err());
}

#[tokio::test]
async fn a_bundle_file_rewritten_in_place_is_refused_and_the_loaded_one_keeps_working() {
    let dir = copied_dir(&["corpus-upgrade-v1"]);
    let path = dir.path().join(file_name("corpus-upgrade-v1"));
    let ctx = session();
    load(&ctx, &path, false).unwrap();

    // Replace the file (rename: the mapped inode stays intact) with the other version.
    let tmp = dir.path().join("new.tmp");
    std::fs::copy(crate::util::bundle("corpus-upgrade-v2"), &tmp).unwrap();
    std::fs::rename(&tmp, &path).unwrap();

    let e = run(&ctx, "RELOAD PLUGIN \"corpus-upgrade\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("changed since this process loaded it") && e.contains("new file name"),
        "{e}"
    );
    let out = query_csv(&ctx, "SELECT corpus_upgrade_v1(5) AS v")
        .await
        .unwrap();
    assert_eq!(out, "v\n5\n");
}

#[tokio::test]
async fn deregistering_a_bundle_that_replaced_an_object_puts_the_old_one_back() {
    let ctx = session();
    let plus_one = create_udf(
        "corpus_upgrade_echo",
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let a = arrays[0].as_any().downcast_ref::<Int64Array>().unwrap();
            let out: Int64Array = a.iter().map(|v| v.map(|v| v + 1)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    ctx.register_udf(plus_one);
    let dir = plugin_dir(&["corpus-upgrade-v1"]);
    register(
        host(dir.path())
            .conflict_policy(ConflictPolicy::Replace)
            .strict(true),
        &ctx,
    );
    let q = "SELECT corpus_upgrade_echo(1) AS v";
    assert_eq!(
        query_csv(&ctx, q).await.unwrap(),
        "v\n1\n",
        "the bundle's echo"
    );
    run(&ctx, "UNLOAD PLUGIN \"corpus-upgrade\"").unwrap();
    assert_eq!(
        query_csv(&ctx, q).await.unwrap(),
        "v\n2\n",
        "the session's own again"
    );
}

#[test]
fn the_cli_runs_plugin_statements_between_sql_statements() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let path = dir.path().join(file_name("df-plugin-udfs"));
    let empty = tempfile::tempdir().unwrap();
    let script = format!(
        "LOAD PLUGIN '{}'; SELECT url_host('https://x.y/') AS h; UNLOAD PLUGIN udfs; \
         SELECT name, state FROM df_plugins();",
        path.display()
    );
    let stdout = cli_ok(
        cli()
            .args(["sql", "--format", "csv", "--plugin-dir"])
            .arg(empty.path())
            .args(["-e", &script]),
    );
    assert!(stdout.contains("loaded,udfs,0.1.0"), "{stdout}");
    assert!(stdout.contains("h\nx.y\n"), "{stdout}");
    assert!(stdout.contains("deregistered,udfs,0.1.0"), "{stdout}");
    assert!(
        stdout.contains("name,state\nudfs,deregistered\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_upgrade_that_cannot_register_keeps_the_old_version() {
    let ctx = session();
    // The session already has a function named like one that only version 2 exports.
    ctx.register_udf(create_udf(
        "corpus_upgrade_v2",
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
    ));
    let dir = plugin_dir(&["corpus-upgrade-v1", "corpus-upgrade-v2"]);
    let v1 = dir.path().join(file_name("corpus-upgrade-v1"));
    let v2 = dir.path().join(file_name("corpus-upgrade-v2"));
    load(&ctx, &v1, false).unwrap();
    let before = snapshot(&ctx);

    let e = load(&ctx, &v2, false).unwrap_err().to_string();
    assert!(
        e.contains("name conflict") && e.contains("corpus_upgrade_v2"),
        "{e}"
    );
    assert_eq!(
        snapshot(&ctx),
        before,
        "the old version is registered again"
    );
    let out = query_csv(&ctx, "SELECT corpus_upgrade_v1(3) AS v")
        .await
        .unwrap();
    assert_eq!(out, "v\n3\n");
    assert_eq!(state_of(&ctx, &v1).await, "state\nloaded\n");
    assert_eq!(state_of(&ctx, &v2).await, "state\nrefused\n");
}

#[tokio::test]
async fn lifecycle_statements_on_missing_files_and_unknown_bundles_are_clear_errors() {
    let ctx = session();
    let e = run(&ctx, "LOAD PLUGIN '/nonexistent/libx.so'")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no such bundle file: /nonexistent/libx.so"),
        "{e}"
    );
    let e = run(&ctx, "RELOAD PLUGIN nothing").unwrap_err().to_string();
    assert!(
        e.contains("no bundle named 'nothing' is registered") && e.contains("LOAD PLUGIN"),
        "{e}"
    );
    // A host whose policy is looser than the session's cannot register into it.
    run(&ctx, "SET PLUGIN TRUST pinned").unwrap();
    let dir = plugin_dir(&["corpus-panicking"]);
    let e = host(dir.path())
        .build()
        .unwrap()
        .load()
        .unwrap()
        .register_into(&ctx)
        .unwrap_err()
        .to_string();
    assert!(e.contains("can only be tightened"), "{e}");
}
