//! A panic anywhere in a bundle's objects becomes an error naming the bundle and the object;
//! the process survives and the next query works.

use std::sync::Arc;

use crate::util::{query_csv, session_with};
use datafusion::prelude::SessionContext;

async fn panicking_session() -> (tempfile::TempDir, Arc<SessionContext>) {
    session_with(&["corpus-panicking"])
}

async fn assert_contained(ctx: &SessionContext, sql: &str, object: &str, call: &str) {
    let err = query_csv(ctx, sql).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "'{object}' of plugin bundle 'corpus-panicking' panicked in {call}"
        )),
        "{sql}: {err}"
    );
    assert!(err.contains("asked to panic"), "{sql}: {err}");
    // The session is still usable, and the same failure is reported the same way again.
    assert_eq!(
        query_csv(ctx, "select 41 + 1 as x").await.unwrap(),
        "x\n42\n"
    );
    let again = query_csv(ctx, sql).await.unwrap_err().to_string();
    assert!(again.contains("panicked"), "{sql}: {again}");
}

#[tokio::test]
async fn a_scalar_udf_that_panics() {
    let (_dir, ctx) = panicking_session().await;
    assert_contained(&ctx, "select corpus_panic(1)", "corpus_panic", "invoke").await;
}

#[tokio::test]
async fn an_accumulator_that_panics() {
    let (_dir, ctx) = panicking_session().await;
    let sql = "select corpus_panic_agg(x) from (values (1), (2)) t(x)";
    assert_contained(&ctx, sql, "corpus_panic_agg", "update_batch").await;
}

#[tokio::test]
async fn a_window_evaluator_that_panics() {
    let (_dir, ctx) = panicking_session().await;
    let sql = "select corpus_panic_window(x) over (order by x) from (values (1), (2)) t(x)";
    assert_contained(&ctx, sql, "corpus_panic_window", "evaluate_all").await;
}

#[tokio::test]
async fn a_table_function_that_panics() {
    let (_dir, ctx) = panicking_session().await;
    assert_contained(
        &ctx,
        "select * from corpus_panic_call()",
        "corpus_panic_call",
        "call",
    )
    .await;
}

#[tokio::test]
async fn a_table_scan_that_panics() {
    let (_dir, ctx) = panicking_session().await;
    assert_contained(
        &ctx,
        "select * from corpus_panic_scan",
        "corpus_panic_scan",
        "scan",
    )
    .await;
}

#[tokio::test]
async fn a_record_batch_stream_that_panics() {
    let (_dir, ctx) = panicking_session().await;
    assert_contained(
        &ctx,
        "select * from corpus_panic_stream",
        "corpus_panic_stream",
        "stream",
    )
    .await;
}
