//! Every refusal path, each with a real file. A refused bundle must leave the session exactly
//! as it was and the process alive (every test here ends by running a query).

use df_plugin_host::{ConflictPolicy, Refusal, Step};

use crate::util::{bundle, host, load, only_refusal, plugin_dir, query_csv, session, snapshot};

fn mismatch<'a>(r: &'a Refusal, field: &str) -> &'a df_plugin_host::Mismatch {
    r.mismatches
        .iter()
        .find(|m| m.field == field)
        .unwrap_or_else(|| panic!("no mismatch on {field:?} in:\n{r}"))
}

#[tokio::test]
async fn a_file_that_is_not_a_shared_library() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("libnotes.so"),
        "these are notes, not a library\n",
    )
    .unwrap();
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Metadata);
    assert!(r.reason.contains("not a shared library"), "{r}");
    assert!(r.to_string().contains("libnotes.so"), "{r}");
}

#[tokio::test]
async fn a_truncated_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(bundle("df-plugin-udfs")).unwrap();
    std::fs::write(dir.path().join("libtruncated.so"), &full[..full.len() / 3]).unwrap();
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Metadata);
    assert!(r.reason.contains("truncated"), "{r}");
}

#[tokio::test]
async fn a_shared_library_that_is_not_a_plugin() {
    let dir = plugin_dir(&["corpus-not-a-plugin"]);
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Metadata);
    assert!(r.reason.contains("not a df-plugin bundle"), "{r}");
    assert!(r.reason.contains(".dfplugin.abi"), "{r}");
    assert!(r.fix.contains("export_bundle!"), "{r}");
}

#[tokio::test]
async fn a_bundle_for_another_plugin_abi_major() {
    let dir = plugin_dir(&["corpus-abi-major-2"]);
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Compatibility);
    assert_eq!(r.bundle, "corpus-abi-major-2");
    let m = mismatch(&r, "plugin ABI major");
    assert_eq!((m.expected.as_str(), m.found.as_str()), ("1", "2"));
    assert!(r.fix.contains("plugin ABI 1.x"), "{r}");
}

#[tokio::test]
async fn a_bundle_built_for_another_datafusion() {
    let dir = plugin_dir(&["corpus-datafusion-54"]);
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Compatibility);
    let m = mismatch(&r, "datafusion version");
    assert_eq!(
        (m.expected.as_str(), m.found.as_str()),
        ("55.2.0", "54.0.0")
    );
    assert!(
        r.fix
            .contains("rebuild the bundle against datafusion 55.2.0"),
        "{r}"
    );
    // The message a user sees carries all of it.
    let text = r.to_string();
    assert!(
        text.contains("datafusion version: expected 55.2.0, found 54.0.0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_bundle_whose_exports_do_not_match_its_manifest() {
    let dir = plugin_dir(&["corpus-lying-exports"]);
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Truthfulness);
    let declared = mismatch(&r, "scalar_udf 'corpus_declared_only'");
    assert_eq!(declared.found, "not exported");
    let undeclared = mismatch(&r, "scalar_udf 'corpus_undeclared'");
    assert_eq!(undeclared.found, "exported but undeclared");
}

#[tokio::test]
async fn two_bundles_exporting_the_same_function_name() {
    // Discovery is in file-name order: libcorpus_duplicate.so registers first.
    let dir = plugin_dir(&["df-plugin-udfs", "corpus-duplicate"]);
    let plugins = load(dir.path());
    assert_eq!(plugins.bundles().len(), 2, "both are fine on their own");
    let ctx = session();
    let registration = plugins.register_into(&ctx).unwrap();
    assert_eq!(registration.registered.len(), 1);
    assert_eq!(registration.registered[0].name, "corpus-duplicate");
    let r = &registration.refused[0];
    assert_eq!((r.bundle.as_str(), r.step), ("udfs", Step::Register));
    assert!(
        r.reason
            .contains("scalar_udf 'url_host' is already registered by bundle 'corpus-duplicate'"),
        "{r}"
    );
    // Nothing of udfs got in, not even its non-conflicting functions.
    let state = ctx.state();
    assert!(!state.aggregate_functions().contains_key("geo_mean"));
    assert!(!state.window_functions().contains_key("sessionize"));
    // url_host is corpus-duplicate's echo.
    assert_eq!(
        query_csv(&ctx, "select url_host(7) as h").await.unwrap(),
        "h\n7\n"
    );
}

#[tokio::test]
async fn the_skip_policy_registers_everything_but_the_conflicting_name() {
    let dir = plugin_dir(&["df-plugin-udfs", "corpus-duplicate"]);
    let plugins = host(dir.path())
        .conflict_policy(ConflictPolicy::Skip)
        .build()
        .unwrap()
        .load()
        .unwrap();
    let ctx = session();
    let registration = plugins.register_into(&ctx).unwrap();
    assert!(
        registration.refused.is_empty(),
        "{:?}",
        registration.refused
    );
    let udfs = registration
        .registered
        .iter()
        .find(|b| b.name == "udfs")
        .unwrap();
    assert_eq!(udfs.skipped.len(), 1);
    assert!(ctx.state().aggregate_functions().contains_key("geo_mean"));
}

#[tokio::test]
async fn a_bundle_conflicting_with_a_built_in_is_refused() {
    let dir = plugin_dir(&["df-plugin-udfs"]);
    let plugins = load(dir.path());
    let ctx = session();
    ctx.register_udf(df_plugin_web::functions::url::UrlHost::new().into());
    let before = snapshot(&ctx);
    let registration = plugins.register_into(&ctx).unwrap();
    let r = &registration.refused[0];
    assert!(
        r.reason.contains("already registered by the session"),
        "{r}"
    );
    assert_eq!(snapshot(&ctx), before);
}

#[tokio::test]
async fn a_manifest_whose_parameters_do_not_fit_the_signature() {
    let dir = plugin_dir(&["corpus-bad-parameters"]);
    let r = only_refusal(dir.path()).await;
    assert_eq!(r.step, Step::Truthfulness);
    let m = mismatch(&r, "scalar_udf 'corpus_echo' parameters");
    assert!(m.found.contains("does not match signature arity"), "{r}");
}
