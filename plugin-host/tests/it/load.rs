//! The embedding API on well-behaved bundles.

use df_plugin_api::ffi::groups_accumulator::CONVERT_TO_STATE_BUFFERS_MINOR;
use df_plugin_conformance::craft;
use df_plugin_host::HostError;

use crate::util::{host, load, plugin_dir, query_csv, register, session, session_with, snapshot};

const FOUR_UDFS: &[(&str, &str)] = &[
    (
        "select url_host('https://User@Example.COM:8080/a?b=1') as h, url_host('not a url') as n",
        "h,n\nexample.com,\n",
    ),
    (
        "select geo_mean(x) as g from (values (1.0), (4.0), (16.0), (null)) t(x)",
        "g\n4.0\n",
    ),
    (
        "select u, ts, sessionize(ts, 10) over (partition by u order by ts) as s \
         from (values ('a', 1), ('a', 5), ('a', 30), ('b', 2), ('a', 41), ('b', 100)) t(u, ts) order by u, ts",
        "u,ts,s\na,1,1\na,5,1\na,30,2\na,41,3\nb,2,1\nb,100,2\n",
    ),
    (
        "select * from url_query_params('https://a.b/?q=data+fusion&page=2&e=%C3%A9')",
        "position,key,value\n1,q,data fusion\n2,page,2\n3,e,é\n",
    ),
];

#[tokio::test]
async fn the_udfs_bundles_register_and_their_functions_match_native() {
    let dir = plugin_dir(&["df-plugin-udfs", "df-plugin-udtfs"]);
    let plugins = load(dir.path());
    assert!(plugins.refused().is_empty(), "{:?}", plugins.refused());
    let ctx = session();
    let registration = plugins.register_into(&ctx).unwrap();
    assert_eq!(registration.registered.len(), 2);
    let udfs = registration
        .registered
        .iter()
        .find(|b| b.name == "udfs")
        .expect("udfs registered");
    assert_eq!(udfs.objects.len(), crate::util::udfs_manifest_names().len());

    let native = session();
    df_plugin_web::functions::register_natively(&native);
    df_plugin_web::register_natively(&native);
    for (sql, expected) in FOUR_UDFS {
        let got = query_csv(&ctx, sql).await.unwrap();
        assert_eq!(&got, expected, "bundle result of {sql}");
        assert_eq!(
            query_csv(&native, sql).await.unwrap(),
            got,
            "native result of {sql}"
        );
    }
}

/// Where rows repeat few groups, DataFusion skips partial aggregation and has the groups
/// accumulator convert each row to a state instead: through the bundle as natively, with the
/// same answers. The states cross back as buffers from a bundle of plugin ABI 1.10, and as
/// datafusion-ffi's arrays with schemas from one of 1.9 (this bundle re-stamped).
#[tokio::test]
async fn a_bundle_aggregate_skips_partial_aggregation_like_native() {
    let (_dir, bundle) = session_with(&["df-plugin-udfs"]);
    let (older_dir, _) = crate::corpus::crafted("df-plugin-udfs", |s, d| {
        craft::with_record(s, d, |r| r.abi_minor = CONVERT_TO_STATE_BUFFERS_MINOR - 1)
    });
    let older = session();
    register(host(older_dir.path()).strict(true), &older);
    let native = session();
    df_plugin_web::functions::register_natively(&native);
    let sql = "select k, geo_mean(v) as g from \
               (select v % 15000 as k, cast(v as double) as v from generate_series(1, 20000) t(v)) \
               group by k";
    let mut results = Vec::new();
    for ctx in [&bundle, &older, &native] {
        for set in [
            "set datafusion.execution.target_partitions = 2",
            "set datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 100",
        ] {
            query_csv(ctx, set).await.unwrap();
        }
        let plan = query_csv(ctx, &format!("explain analyze {sql}"))
            .await
            .unwrap();
        let skipped = plan
            .split("skipped_aggregation_rows=")
            .skip(1)
            .map(|rest| rest.split([',', ']']).next().unwrap_or_default().trim())
            .collect::<Vec<_>>();
        assert!(
            skipped.iter().any(|n| *n != "0"),
            "no partial aggregation skipped: {skipped:?} in\n{plan}"
        );
        results.push(
            query_csv(
                ctx,
                &format!("select count(*), round(sum(g), 3) from ({sql})"),
            )
            .await
            .unwrap(),
        );
    }
    assert_eq!(results[0], results[2], "as the current ABI");
    assert_eq!(results[1], results[2], "as ABI 1.9");
}

#[tokio::test]
async fn loading_and_registering_the_same_bundle_twice_is_a_no_op() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let host = host(dir.path()).build().unwrap();
    let ctx = session();
    host.load().unwrap().register_into(&ctx).unwrap();
    let before = snapshot(&ctx);
    let again = host.load().unwrap().register_into(&ctx).unwrap();
    assert!(again.registered.is_empty());
    assert!(again.refused.is_empty(), "{:?}", again.refused);
    assert_eq!(again.unchanged, vec!["udfs".to_string()]);
    assert_eq!(snapshot(&ctx), before);
    assert_eq!(
        query_csv(&ctx, FOUR_UDFS[0].0).await.unwrap(),
        FOUR_UDFS[0].1
    );
}

#[tokio::test]
async fn one_load_registers_into_two_sessions() {
    let dir = plugin_dir(&["df-plugin-udfs", "df-plugin-udtfs"]);
    let plugins = load(dir.path());
    let (a, b) = (session(), session());
    assert_eq!(plugins.register_into(&a).unwrap().registered.len(), 2);
    assert_eq!(plugins.register_into(&b).unwrap().registered.len(), 2);
    // The table function's arguments are encoded against each session's own registry.
    for ctx in [&a, &b] {
        assert_eq!(
            query_csv(ctx, FOUR_UDFS[3].0).await.unwrap(),
            FOUR_UDFS[3].1
        );
    }
    drop(a);
    assert_eq!(query_csv(&b, FOUR_UDFS[1].0).await.unwrap(), FOUR_UDFS[1].1);
}

#[tokio::test]
async fn a_refused_bundle_does_not_stop_the_others() {
    let dir = plugin_dir(&["df-plugin-udfs", "corpus-datafusion-54"]);
    let plugins = load(dir.path());
    assert_eq!(plugins.bundles().len(), 1);
    assert_eq!(plugins.refused().len(), 1);
    assert_eq!(plugins.refused()[0].bundle, "corpus-datafusion-54");
    let ctx = session();
    plugins.register_into(&ctx).unwrap();
    assert_eq!(
        query_csv(&ctx, FOUR_UDFS[0].0).await.unwrap(),
        FOUR_UDFS[0].1
    );
}

#[test]
fn strict_mode_turns_a_refusal_into_an_error() {
    let dir = plugin_dir(&["df-plugin-udfs", "corpus-abi-major-2"]);
    let err = host(dir.path())
        .strict(true)
        .build()
        .unwrap()
        .load()
        .unwrap_err();
    match err {
        HostError::Refused(r) => assert_eq!(r[0].bundle, "corpus-abi-major-2"),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn a_missing_plugin_dir_lists_every_path_searched() {
    let missing = std::env::temp_dir().join("df-plugin-no-such-dir");
    let err = host(&missing).build().unwrap().load().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HostError::NotFound { .. }), "{text}");
    assert!(text.contains("searched:"), "{text}");
    assert!(text.contains(&missing.display().to_string()), "{text}");
}

#[test]
fn an_empty_plugin_dir_is_not_found_with_the_paths_searched() {
    let dir = tempfile::tempdir().unwrap();
    let err = host(dir.path()).build().unwrap().load().unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("no plugin bundles found; searched:"),
        "{text}"
    );
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

#[tokio::test]
async fn plugin_functions_carry_their_manifest_docs_and_named_parameters() {
    let (_dir, ctx) = session_with(&["df-plugin-udfs"]);
    let manifest =
        df_plugin_api::manifest::Manifest::parse(include_str!("../../../manifests/udfs.toml"))
            .unwrap();
    for name in ["url_host", "geo_mean", "sessionize"] {
        let decl = manifest.objects.iter().find(|o| o.name == name).unwrap();
        let sql = format!(
            "select description, syntax_example from information_schema.routines \
             where routine_name = '{name}'"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let col = |i: usize| {
            datafusion::arrow::compute::cast(
                batches[0].column(i),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .unwrap()
        };
        let description = col(0);
        let syntax = col(1);
        let as_str = |a: &datafusion::arrow::array::ArrayRef| {
            a.as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
                .unwrap()
                .value(0)
                .to_owned()
        };
        assert_eq!(as_str(&description), decl.doc, "{name}");
        assert_eq!(Some(as_str(&syntax)), decl.signature.clone(), "{name}");
    }

    // Named arguments, in any order, as for built-ins.
    assert_eq!(
        query_csv(&ctx, "select url_host(url => 'http://Named.Example/') as h")
            .await
            .unwrap(),
        "h\nnamed.example\n"
    );
    assert_eq!(
        query_csv(
            &ctx,
            "select geo_mean(value => x) as g from (values (2.0), (8.0)) t(x)"
        )
        .await
        .unwrap(),
        "g\n4.0\n"
    );
    let err = query_csv(&ctx, "select url_host(link => 'http://a.b/')")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("link"), "{err}");

    // datafusion-ffi's aggregate return_type is unimplemented!(); the restored one answers.
    let geo_mean = datafusion::execution::FunctionRegistry::udaf(ctx.as_ref(), "geo_mean").unwrap();
    assert_eq!(
        geo_mean
            .return_type(&[datafusion::arrow::datatypes::DataType::Float64])
            .unwrap(),
        datafusion::arrow::datatypes::DataType::Float64
    );
}

#[tokio::test]
async fn plugin_functions_list_and_fail_like_native_ones() {
    let (_dir, ctx) = session_with(&["df-plugin-udfs", "df-plugin-udtfs"]);
    let native = session();
    df_plugin_web::functions::register_natively(&native);
    df_plugin_web::register_natively(&native);

    // SHOW FUNCTIONS needs the argument types, which datafusion-ffi alone does not carry.
    for name in ["url_host", "geo_mean"] {
        let show = format!("show functions like '{name}'");
        let listed = |c: &datafusion::prelude::SessionContext| {
            let show = show.clone();
            let c = c.clone();
            async move {
                let batches = c.sql(&show).await.unwrap().collect().await.unwrap();
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string();
                (rows, text)
            }
        };
        let (rows, plugin_text) = listed(&ctx).await;
        assert!(
            rows > 0,
            "{name} is not listed by SHOW FUNCTIONS:\n{plugin_text}"
        );
        assert!(plugin_text.contains(name), "{plugin_text}");
        let (native_rows, native_text) = listed(&native).await;
        assert_eq!(
            rows, native_rows,
            "plugin:\n{plugin_text}\nnative:\n{native_text}"
        );
    }

    // Coercion happens in the host with the real signature: the same calls succeed or fail,
    // with the same words, as with the natively registered functions.
    let mut errors = 0;
    for sql in [
        "select url_host(1) as h",
        "select url_host('a', 'b')",
        "select url_host()",
        "select geo_mean(x) from (values (1), (2)) t(x)",
        "select geo_mean('x')",
        "select geo_mean(1, 2)",
        // Errors raised inside the bundle: accumulator, groups accumulator, evaluator, table
        // function, literal-dependent return type.
        "select geo_mean(x) from (values (-1.0)) t(x)",
        "select k, geo_mean(x) from (values (1, 2.0), (2, -1.0)) t(k, x) group by k",
        "select sessionize(ts, -1) over (order by ts) from (values (1)) t(ts)",
        "select * from url_query_params('a', 'b')",
        "select url_parts('http://a.b/', 'hots')",
    ] {
        let plugin = query_csv(&ctx, sql).await.map_err(|e| e.to_string());
        let native = query_csv(&native, sql).await.map_err(|e| e.to_string());
        errors += usize::from(native.is_err());
        assert_eq!(plugin, native, "{sql}");
    }
    assert!(
        errors >= 8,
        "the cases must include planning and execution errors"
    );
}

#[tokio::test]
async fn unknown_plugin_options_are_refused_with_the_known_ones() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let ctx = session();
    load(dir.path()).register_into(&ctx).unwrap();
    let err = ctx
        .sql("SET udfs.strip_wwww = true")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown option 'udfs.strip_wwww'"), "{err}");
    assert!(err.contains("plugin options: udfs.strip_www"), "{err}");
    // Without the bundle, the namespace is unknown as usual.
    let bare = session();
    let err = bare
        .sql("SET udfs.strip_www = true")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("udfs"), "{err}");
}

#[tokio::test]
async fn field_metadata_survives_a_plugin_function() {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use std::collections::HashMap;
    use std::sync::Arc;

    let field = Field::new("u", DataType::Utf8, true)
        .with_metadata(HashMap::from([("origin".to_owned(), "crawler".to_owned())]));
    let schema = Arc::new(Schema::new(vec![field]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(vec![Some("HTTP://A.b:80/x")]))],
    )
    .unwrap();
    let table =
        || Arc::new(MemTable::try_new(Arc::clone(&schema), vec![vec![batch.clone()]]).unwrap());

    let dir = plugin_dir(&["df-plugin-udfs"]);
    let bundle = session();
    load(dir.path()).register_into(&bundle).unwrap();
    let native = session();
    df_plugin_web::functions::register_natively(&native);
    for ctx in [&bundle, &native] {
        ctx.register_table("pages", table()).unwrap();
        let df = ctx
            .sql("select url_normalize(u) as n from pages")
            .await
            .unwrap();
        let batches = df.collect().await.unwrap();
        let metadata = batches[0].schema().field(0).metadata().clone();
        assert_eq!(
            metadata.get("origin").map(String::as_str),
            Some("crawler"),
            "{metadata:?}"
        );
        assert_eq!(
            metadata
                .get("df_plugin.udfs.normalized")
                .map(String::as_str),
            Some("true"),
            "{metadata:?}"
        );
    }
}

#[tokio::test]
async fn geo_mean_offers_its_groups_accumulator_across_the_boundary() {
    use datafusion::arrow::array::{Array, Float64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::EmitTo;
    use datafusion::logical_expr::function::AccumulatorArgs;
    use datafusion::physical_expr::expressions::col;
    use std::sync::Arc;

    let dir = plugin_dir(&["df-plugin-udfs"]);
    let ctx = session();
    load(dir.path()).register_into(&ctx).unwrap();
    let geo_mean = datafusion::execution::FunctionRegistry::udaf(ctx.as_ref(), "geo_mean").unwrap();

    let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
    let exprs = [col("x", &schema).unwrap()];
    let expr_fields = [Arc::new(Field::new("x", DataType::Float64, true))];
    let args = || AccumulatorArgs {
        return_field: Arc::new(Field::new("g", DataType::Float64, true)),
        schema: &schema,
        ignore_nulls: false,
        order_bys: &[],
        is_reversed: false,
        name: "geo_mean(x)",
        is_distinct: false,
        exprs: &exprs,
        expr_fields: &expr_fields,
    };
    // DataFusion picks the vectorised path only when this says yes; it crossed the ABI.
    assert!(geo_mean.groups_accumulator_supported(args()));
    let mut groups = geo_mean.create_groups_accumulator(args()).unwrap();
    let values: Arc<dyn Array> = Arc::new(Float64Array::from(vec![2.0, 3.0, 8.0, 12.0]));
    groups
        .update_batch(&[values], &[0, 1, 0, 1], None, 2)
        .unwrap();
    let result = groups.evaluate(EmitTo::All).unwrap();
    let result = result.as_any().downcast_ref::<Float64Array>().unwrap();
    assert!(
        (result.value(0) - 4.0).abs() < 1e-9 && (result.value(1) - 6.0).abs() < 1e-9,
        "{result:?}"
    );
}

#[tokio::test]
async fn a_bundle_built_for_plugin_abi_1_0_loads_through_its_1_0_init() {
    // corpus-upgrade-v1's record says ABI 1.0, so the host must not look for the 1.1 entry
    // point and must start it through the root module's `init`.
    let (_dir, ctx) = session_with(&["corpus-upgrade-v1"]);
    assert_eq!(
        query_csv(&ctx, "select plugin_abi, state from df_plugins()")
            .await
            .unwrap(),
        "plugin_abi,state\n1.0,loaded\n"
    );
    assert_eq!(
        query_csv(&ctx, "select corpus_upgrade_v1(7) as x")
            .await
            .unwrap(),
        "x\n7\n"
    );
}
