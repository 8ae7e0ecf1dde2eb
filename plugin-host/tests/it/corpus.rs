//! The hostile-bundle corpus cases that `refusal.rs` and `panics.rs` do not cover. Files no
//! honest build produces are crafted from real bundles (`df_plugin_conformance::craft`): a copy
//! with one thing changed. Each case ends with the host alive and the session unchanged.

use std::path::{Path, PathBuf};

use df_plugin_api::ffi::values::INVOKE_VALUES_MINOR;
use df_plugin_api::record::{ABI_MINOR, AbiRecord, Capability, FixedStr};
use df_plugin_conformance::craft;
use df_plugin_host::{Refusal, Step};
use tempfile::TempDir;

use crate::util::{bundle, host, load, only_refusal, plugin_dir, query_csv, session, snapshot};

/// A directory holding one file crafted from the bundle of `crate_name`.
pub fn crafted(
    crate_name: &str,
    make: impl FnOnce(&Path, &Path) -> craft::Result<()>,
) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = bundle(crate_name);
    let dst = dir.path().join(src.file_name().unwrap());
    make(&src, &dst).unwrap();
    (dir, dst)
}

/// The one refusal of `dir` (see [`only_refusal`]), which must be at `step`.
async fn refused_at(dir: &Path, step: Step) -> Refusal {
    let r = only_refusal(dir).await;
    assert_eq!(r.step, step, "{r}");
    r
}

fn field<'a>(r: &'a Refusal, name: &str) -> &'a df_plugin_host::Mismatch {
    r.mismatches
        .iter()
        .find(|m| m.field == name)
        .unwrap_or_else(|| panic!("no mismatch on {name:?} in:\n{r}"))
}

#[tokio::test]
async fn a_bundle_for_another_architecture() {
    let (dir, _) = crafted("corpus-datafusion-54", |s, d| {
        craft::with_machine(s, d, object::elf::EM_AARCH64)
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let m = field(&r, "architecture");
    assert_eq!(
        (m.expected.as_str(), m.found.as_str()),
        ("X86_64", "Aarch64"),
        "{r}"
    );
}

#[tokio::test]
async fn a_bundle_with_metadata_but_no_handshake_symbol() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::without_symbol(s, d, "df_plugin_abi_record")
    });
    let r = refused_at(dir.path(), Step::Handshake).await;
    assert!(r.reason.contains("df_plugin_abi_record"), "{r}");
}

#[tokio::test]
async fn a_bundle_whose_handshake_disagrees_with_its_metadata() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::with_file_record_only(s, d, |r| r.rustc_version = FixedStr::new("rustc 1.0.0"))
    });
    let r = refused_at(dir.path(), Step::Handshake).await;
    assert!(
        r.reason
            .contains("the live handshake disagrees with the record embedded in the file"),
        "{r}"
    );
}

#[tokio::test]
async fn a_bundle_for_plugin_abi_major_0() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::with_record(s, d, |r| r.abi_major = 0)
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let m = field(&r, "plugin ABI major");
    assert_eq!((m.expected.as_str(), m.found.as_str()), ("1", "0"), "{r}");
}

#[tokio::test]
async fn a_bundle_for_a_newer_plugin_abi_minor() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = ABI_MINOR + 1)
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let newer = format!("1.{}", ABI_MINOR + 1);
    assert!(r.to_string().contains(&newer), "{r}");
}

#[tokio::test]
async fn a_bundle_built_for_another_datafusion_ffi() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::with_record(s, d, |r| r.datafusion_ffi_major = 54)
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let m = field(&r, "datafusion-ffi major");
    assert_eq!((m.expected.as_str(), m.found.as_str()), ("55", "54"), "{r}");
}

#[tokio::test]
async fn a_bundle_built_for_another_arrow() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::with_record(s, d, |r| r.arrow_major = 58)
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let m = field(&r, "arrow major");
    assert_eq!((m.expected.as_str(), m.found.as_str()), ("59", "58"), "{r}");
}

#[tokio::test]
async fn a_planner_bundle_built_for_another_sqlparser() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        craft::with_record(s, d, |r| r.sqlparser_version = FixedStr::new("0.61.0"))
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let m = field(&r, "sqlparser version (the bundle exports planners)");
    assert_eq!(
        (m.expected.as_str(), m.found.as_str()),
        ("0.62.0", "0.61.0"),
        "{r}"
    );
}

/// The record's bits are derived from the manifest, so a bit without a declared object is
/// refused from the file, before any code runs.
#[tokio::test]
async fn a_capability_bit_without_objects() {
    let (dir, _) = crafted("corpus-duplicate", |s, d| {
        craft::with_record(s, d, |r| r.capabilities |= Capability::TableProvider.bit())
    });
    let r = refused_at(dir.path(), Step::Compatibility).await;
    let m = field(&r, "capabilities (manifest vs record)");
    assert_eq!(m.found, "scalar_udf, table_provider", "{r}");
}

/// A bundle that exports a kind of object its manifest and record never mention.
#[tokio::test]
async fn objects_without_their_capability_bit() {
    let dir = plugin_dir(&["corpus-lying-exports"]);
    let r = refused_at(dir.path(), Step::Truthfulness).await;
    let m = field(&r, "capability window_udf");
    assert_eq!(m.found, "bit not set", "{r}");
}

#[tokio::test]
async fn a_bundle_exporting_one_name_twice() {
    let dir = plugin_dir(&["corpus-duplicate-inside"]);
    let r = refused_at(dir.path(), Step::Truthfulness).await;
    let m = field(&r, "scalar_udf 'corpus_twice'");
    assert_eq!(m.found, "exported twice", "{r}");
}

#[tokio::test]
async fn a_bundle_without_its_table_sources_entry_point() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        craft::without_symbol(s, d, df_plugin_api::ffi::INIT_WITH_TABLE_SOURCES_SYMBOL)
    });
    let r = refused_at(dir.path(), Step::RootModule).await;
    assert!(r.reason.contains("plugin ABI 1.15 or later"), "{r}");
    assert!(
        r.reason.contains("df_plugin_init_with_table_sources"),
        "{r}"
    );
}

/// A 1.1–1.14 bundle's `init` is `init_with_planners` (a 1.15 one's is the entry point above).
#[tokio::test]
async fn a_planner_bundle_without_its_planner_entry_point() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        let stripped = d.with_extension("stripped");
        let symbol = df_plugin_api::ffi::module::INIT_WITH_PLANNERS_SYMBOL;
        craft::without_symbol(s, &stripped, symbol)?;
        craft::with_record(&stripped, d, |r| r.abi_minor = 14)?;
        std::fs::remove_file(&stripped).map_err(|e| e.to_string())
    });
    let r = refused_at(dir.path(), Step::RootModule).await;
    assert!(r.reason.contains("df_plugin_init_with_planners"), "{r}");
}

#[tokio::test]
async fn a_bundle_without_its_scalar_kernel_entry_point() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        craft::without_symbol(
            s,
            d,
            df_plugin_api::ffi::scalar_kernel::SCALAR_KERNEL_SYMBOL,
        )
    });
    let r = refused_at(dir.path(), Step::RootModule).await;
    assert!(r.reason.contains("plugin ABI 1.2 or later"), "{r}");
    assert!(r.reason.contains("df_plugin_scalar_kernel"), "{r}");
}

#[tokio::test]
async fn a_bundle_without_its_scalar_kernel_buffers_entry_point() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        craft::without_symbol(
            s,
            d,
            df_plugin_api::ffi::scalar_kernel::SCALAR_KERNEL_BUFFERS_SYMBOL,
        )
    });
    let r = refused_at(dir.path(), Step::RootModule).await;
    assert!(r.reason.contains("plugin ABI 1.6 or later"), "{r}");
    assert!(r.reason.contains("df_plugin_scalar_kernel_buffers"), "{r}");
}

/// An ABI 1.5 bundle's scalar functions take the 1.2 kernel, whose arrays cross through the
/// C data interface, with the same results and errors as the 1.6 kernel's buffers.
#[tokio::test]
async fn an_abi_1_5_bundle_runs_its_scalar_functions_through_the_c_data_kernel() {
    let (old, _) = crafted("df-plugin-udfs", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = 5)
    });
    let (new, current) = crate::util::session_with(&["df-plugin-udfs"]);
    // The host took each minor's kernel: the C data one for 1.5; from 1.6 the buffers one,
    // its arguments lent from 1.13, and over values from 1.14 for a function written so.
    for (dir, minor) in [(old.path(), 2), (new.path(), INVOKE_VALUES_MINOR)] {
        let plugins = load(dir);
        let kernels = &plugins.bundles()[0].objects().scalar_kernels;
        for name in ["time_bucket", "url_host"] {
            assert_eq!(
                kernels[name].abi_minor(),
                minor,
                "{name} in {}",
                dir.display()
            );
        }
    }
    let old_ctx = session();
    crate::util::register(host(old.path()).strict(true), &old_ctx);
    let sql = "SELECT time_bucket(ts, w) AS b, time_bucket(ts, 60) AS c, url_host(u) AS h \
               FROM (VALUES (125, 60, 'https://a.example/x'), (NULL, 60, NULL), \
               (3599, 3600, 'http://b.example:8080/')) t(ts, w, u)";
    let want = "b,c,h\n120,120,a.example\n,,\n0,3540,b.example\n";
    for ctx in [&old_ctx, &current] {
        assert_eq!(query_csv(ctx, sql).await.unwrap(), want);
        let e = query_csv(ctx, "SELECT time_bucket(10, 0)")
            .await
            .unwrap_err();
        let e = e.to_string();
        assert!(e.contains("the width must be a positive number"), "{e}");
    }
}

#[tokio::test]
async fn a_bundle_without_its_plan_runner_entry_point() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        craft::without_symbol(s, d, df_plugin_api::ffi::plan_runner::PLAN_RUNNER_SYMBOL)
    });
    let r = refused_at(dir.path(), Step::RootModule).await;
    assert!(r.reason.contains("plugin ABI 1.3 or later"), "{r}");
    assert!(r.reason.contains("df_plugin_plan_runner"), "{r}");
}

#[tokio::test]
async fn a_bundle_without_its_groups_accumulator_entry_point() {
    let (dir, _) = crafted("corpus-panicking", |s, d| {
        craft::without_symbol(
            s,
            d,
            df_plugin_api::ffi::groups_accumulator::GROUPS_ACCUMULATOR_SYMBOL,
        )
    });
    let r = refused_at(dir.path(), Step::RootModule).await;
    assert!(r.reason.contains("plugin ABI 1.5 or later"), "{r}");
    assert!(r.reason.contains("df_plugin_groups_accumulator"), "{r}");
}

/// An ABI 1.4 bundle has no lean groups accumulators: its aggregate functions run through
/// datafusion-ffi's, with the same results and errors.
#[tokio::test]
async fn an_abi_1_4_bundle_runs_its_groups_accumulators_through_datafusion_ffi() {
    let (dir, _) = crafted("df-plugin-udfs", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = 4)
    });
    let ctx = session();
    crate::util::register(host(dir.path()).strict(true), &ctx);
    let sql = "SELECT k, geo_mean(v) AS g FROM (VALUES (1, 2.0), (1, 8.0), (2, 1.0)) t(k, v) \
               GROUP BY k ORDER BY k";
    assert_eq!(query_csv(&ctx, sql).await.unwrap(), "k,g\n1,4.0\n2,1.0\n");
    let sql = "SELECT k, geo_mean(v) FROM (VALUES (1, 2.0), (2, -1.0)) t(k, v) GROUP BY k";
    let e = query_csv(&ctx, sql).await.unwrap_err().to_string();
    assert!(
        e.contains("geo_mean is defined for positive values only, got -1"),
        "{e}"
    );
}

/// A Delta table every Delta bundle reads: 7 rows, `value` 1 to 7 (as text).
const DELTA_TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../conformance/data/delta/delta-0.8.0-partitioned"
);

/// `count(*)` and the sum of `value` of [`DELTA_TABLE`], through the Delta bundle's
/// `delta_scan`: a datafusion-ffi table function (the udtfs bundle's are table sources).
fn delta_scan_sum() -> String {
    format!("SELECT count(*) AS n, sum(CAST(value AS INT)) AS s FROM delta_scan('{DELTA_TABLE}')")
}

/// The runners of an ABI 1.3 bundle have no `scan` and no `execute_buffers`: the host plans
/// its scans with datafusion-ffi's `scan` and executes them through the runner's `execute`,
/// whose batches cross as struct arrays.
#[tokio::test]
async fn an_abi_1_3_bundle_plans_its_scans_through_datafusion_ffi() {
    let (dir, _) = crafted("df-plugin-delta", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = 3)
    });
    let ctx = session();
    crate::util::register(host(dir.path()).strict(true), &ctx);
    assert_eq!(
        query_csv(&ctx, &delta_scan_sum()).await.unwrap(),
        "n,s\n7,28\n"
    );
}

/// A 1.7 bundle's table functions are called through its plan runner, which is bound once for
/// the session's configuration however many queries call them and scan their tables.
#[tokio::test]
async fn table_function_calls_reuse_the_runner_bound_for_the_session() {
    let dir = plugin_dir(&["df-plugin-delta"]);
    let plugins = load(dir.path());
    let runner = plugins.bundles()[0].objects().plan_runner.clone();
    let runner = runner.expect("the Delta bundle has a plan runner");
    let ctx = session();
    plugins.register_into(&ctx).unwrap();
    for _ in 0..3 {
        assert_eq!(
            query_csv(&ctx, &delta_scan_sum()).await.unwrap(),
            "n,s\n7,28\n"
        );
    }
    assert_eq!(runner.bound(), 1);
}

/// An ABI 1.15 bundle's table sources are called with no plan runner: the runner of the udtfs
/// bundle, whose table functions are all sources, is never bound.
#[tokio::test]
async fn table_sources_cross_without_the_plan_runner() {
    let dir = plugin_dir(&["df-plugin-udtfs"]);
    let plugins = load(dir.path());
    let runner = plugins.bundles()[0].objects().plan_runner.clone();
    let runner = runner.expect("every bundle of ABI 1.3 or later has a plan runner entry point");
    let ctx = session();
    plugins.register_into(&ctx).unwrap();
    let sql = "SELECT count(*) AS n, sum(bucket_start) AS s FROM time_buckets(0, 600, 60)";
    assert_eq!(query_csv(&ctx, sql).await.unwrap(), "n,s\n10,2700\n");
    assert_eq!(runner.bound(), 0);
}

/// A bundle of table sources stamped older than 1.15 is refused by name, not loaded without
/// its table functions: the host calls an older `init`, which has no place for them.
#[tokio::test]
async fn a_bundle_of_table_sources_stamped_before_1_15_is_refused() {
    let (dir, _) = crafted("df-plugin-udtfs", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = 14)
    });
    let r = refused_at(dir.path(), Step::Truthfulness).await;
    let m = field(&r, "table_function 'time_buckets'");
    assert_eq!(m.found, "not exported", "{r}");
}

/// A bundle of lean planners stamped older than 1.16 is refused by name: a host of that minor
/// would send its expression planner operands it cannot read.
#[tokio::test]
async fn a_bundle_of_lean_planners_stamped_before_1_16_is_refused() {
    let (dir, _) = crafted("df-plugin-planners", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = 15)
    });
    let r = refused_at(dir.path(), Step::Truthfulness).await;
    let m = field(&r, "expr_planner 'json_operators'");
    assert_eq!(m.found, "not exported", "{r}");
}

#[tokio::test]
async fn a_bundle_whose_init_panics() {
    let dir = plugin_dir(&["corpus-panicking"]);
    let plugins = host(dir.path())
        .bundle_option("corpus-panicking", "panic_in_init", "true")
        .build()
        .unwrap()
        .load()
        .unwrap();
    let r = plugins.refused().first().cloned().expect("refused");
    assert_eq!(r.step, Step::RootModule, "{r}");
    assert!(
        r.reason.contains("panicked in init: init asked to panic"),
        "{r}"
    );
    let ctx = session();
    let before = snapshot(&ctx);
    plugins.register_into(&ctx).unwrap();
    assert_eq!(snapshot(&ctx), before);
}

/// The scalar-function contract, checked by the toolkit in the bundle and by the host.
#[tokio::test]
async fn a_function_returning_the_wrong_number_of_rows() {
    let (_dir, ctx) = crate::util::session_with(&["corpus-panicking"]);
    let sql = "select corpus_wrong_length(x) from (values (1), (2), (3)) t(x)";
    let e = query_csv(&ctx, sql).await.unwrap_err().to_string();
    assert!(
        e.contains("scalar function 'corpus_wrong_length' of plugin bundle 'corpus-panicking' returned 2 value(s) for a batch of 3 row(s)"),
        "{e}"
    );
    assert_eq!(
        query_csv(&ctx, "select 1 as one").await.unwrap(),
        "one\n1\n"
    );
}

#[tokio::test]
async fn a_function_returning_the_wrong_type() {
    let (_dir, ctx) = crate::util::session_with(&["corpus-panicking"]);
    let sql = "select corpus_wrong_type(x) + 1 from (values (1), (2)) t(x)";
    let e = query_csv(&ctx, sql).await.unwrap_err().to_string();
    assert!(
        e.contains("'corpus_wrong_type' of plugin bundle 'corpus-panicking' returned values of type Utf8 where its return type says Int64"),
        "{e}"
    );
    assert_eq!(
        query_csv(&ctx, "select 1 as one").await.unwrap(),
        "one\n1\n"
    );
}

/// A refused bundle gets no second way in: registering the same load again, and offering the
/// file again with `LOAD PLUGIN`, refuse it again, with the same reason, and change nothing.
#[tokio::test]
async fn a_bundle_that_tries_to_register_after_it_was_refused() {
    let dir = plugin_dir(&["corpus-lying-exports"]);
    let plugins = load(dir.path());
    let first = plugins.refused().first().cloned().expect("refused");
    let ctx = session();
    let before = snapshot(&ctx);
    plugins.register_into(&ctx).unwrap();
    plugins.register_into(&ctx).unwrap();
    assert_eq!(snapshot(&ctx), before);
    let file = crate::util::bundle("corpus-lying-exports");
    let again = df_plugin_host::lifecycle::load(&ctx, &file, true).unwrap_err();
    let text = again.to_string();
    assert!(text.contains(&first.reason), "{text}");
    assert_eq!(snapshot(&ctx), before);
    let states = query_csv(&ctx, "select name, state from df_plugins() order by name")
        .await
        .unwrap();
    assert!(states.contains("corpus-lying-exports,refused"), "{states}");
    assert!(!states.contains("loaded"), "{states}");
}

/// `AbiRecord` is edited through its public fields; keep the crafted cases honest about what
/// they change.
#[test]
fn crafted_records_change_only_what_they_say() {
    let (_dir, dst) = crafted("corpus-duplicate", |s, d| {
        craft::with_record(s, d, |r| r.arrow_major = 58)
    });
    let read = |p: &Path| df_plugin_host::metadata::read(p).unwrap().record;
    let original: AbiRecord = read(&bundle("corpus-duplicate"));
    let edited = read(&dst);
    assert_eq!(edited.arrow_major, 58);
    assert_eq!(
        AbiRecord {
            arrow_major: original.arrow_major,
            ..edited
        },
        original
    );
}
