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

/// A planner failure: the query fails with the planner, its bundle and the cause; the session
/// plans the next query.
async fn assert_planner_fails(ctx: &SessionContext, sql: &str, planner: &str, cause: &str) {
    let err = query_csv(ctx, sql).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("'{planner}' of plugin bundle 'corpus-panicking'")),
        "{sql}: {err}"
    );
    assert!(err.contains(cause), "{sql}: {err}");
    assert_eq!(
        query_csv(ctx, "select 41 + 1 as x").await.unwrap(),
        "x\n42\n"
    );
}

#[tokio::test]
async fn planners_that_panic_fail_the_query_not_the_process() {
    let (_dir, ctx) = panicking_session().await;
    let panicked = "panicked: asked to panic";
    assert_planner_fails(&ctx, "select 'a' -> 'b'", "corpus_panic_operator", panicked).await;
    assert_planner_fails(
        &ctx,
        "select cast(1 as panic_type)",
        "corpus_panic_type",
        panicked,
    )
    .await;
    assert_planner_fails(
        &ctx,
        "select * from corpus_panic_relation",
        "corpus_panic_relation",
        panicked,
    )
    .await;
    // Operators, types and relations the planners did not declare never reach them.
    assert_eq!(
        query_csv(
            &ctx,
            "select cast(2 as bigint) * 3 as x from (values (1)) t(y)"
        )
        .await
        .unwrap(),
        "x\n6\n"
    );
}

#[tokio::test]
async fn a_plan_the_host_cannot_decode_fails_the_query() {
    let (_dir, ctx) = panicking_session().await;
    assert_planner_fails(
        &ctx,
        "select * from corpus_undecodable",
        "corpus_panic_relation",
        "returned a plan the host cannot decode",
    )
    .await;
    let err = query_csv(&ctx, "select * from corpus_undecodable")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("placeholder from another call"), "{err}");
    // The session still plans and runs.
    assert_eq!(
        query_csv(&ctx, "select 1 as one").await.unwrap(),
        "one\n1\n"
    );
}

#[tokio::test]
async fn a_relation_planners_own_table_and_function_travel_with_its_plan() {
    let (_dir, ctx) = panicking_session().await;
    // Neither the table nor the function is exported: both cross as FFI objects beside the
    // plan, and run in the bundle's image.
    let out = query_csv(
        &ctx,
        "select sum(x) as s, count(*) as n from corpus_private_rows where x > 1",
    )
    .await
    .unwrap();
    assert_eq!(out, "s,n\n5,2\n");
    assert!(
        query_csv(&ctx, "select corpus_not_exported(1)")
            .await
            .is_err(),
        "the private function must not become a session function"
    );
}

#[tokio::test]
async fn a_relation_planner_that_reenters_itself_forever_is_stopped() {
    let (_dir, ctx) = panicking_session().await;
    assert_planner_fails(
        &ctx,
        "select * from corpus_loop",
        "corpus_panic_relation",
        "re-entered each other 32 levels deep",
    )
    .await;
}

#[tokio::test]
async fn a_from_item_sqlparser_cannot_print_faithfully_still_crosses_intact() {
    let (_dir, ctx) = panicking_session().await;
    // sqlparser 0.62 prints MySQL's `t PARTITION (p0)` as `tPARTITION (p0)`, so as SQL text the
    // item would reach the planner as another table; as JSON it arrives as written, and the
    // corpus's planner recognises its table.
    query_csv(&ctx, "set datafusion.sql_parser.dialect = 'MySQL'")
        .await
        .unwrap();
    let out = query_csv(
        &ctx,
        "select count(*) as n from corpus_private_rows PARTITION (p0)",
    )
    .await
    .unwrap();
    assert_eq!(out, "n\n3\n");
}
