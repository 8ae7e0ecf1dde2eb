//! Two bundles' planners in one session: type planners compose into one, relation planners run
//! in load order (file-name order: `libcorpus_panicking` before `libdf_plugin_planners`), and a
//! planner's input planned through the host reaches the other bundle's planners.

use crate::util::{query_csv, session_with};

#[tokio::test]
async fn two_bundles_planners_compose() {
    let (_dir, ctx) = session_with(&["corpus-panicking", "df-plugin-planners"]);

    // Types: each bundle's own names reach it, anything else is DataFusion's.
    let out = query_csv(
        &ctx,
        "select arrow_typeof(cast(x'00112233445566778899aabbccddeeff' as uuid)) as u, arrow_typeof(cast(1 as int)) as i",
    )
    .await
    .unwrap();
    assert_eq!(out, "u,i\nFixedSizeBinary(16),Int32\n");
    let err = query_csv(&ctx, "select cast(1 as panic_type)")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("corpus_panic_type"), "{err}");

    // TABLESAMPLE (planners) over a subquery whose table only the corpus's relation planner
    // knows: the sample's input is planned through the host, which asks every bundle's planner.
    let out = query_csv(
        &ctx,
        "select count(*) as n from (select * from corpus_private_rows) tablesample (2 rows)",
    )
    .await
    .unwrap();
    assert_eq!(out, "n\n2\n");
    let out = query_csv(
        &ctx,
        "select count(*) as n from (select * from corpus_private_rows) s tablesample (0 percent)",
    )
    .await
    .unwrap();
    assert_eq!(out, "n\n0\n");

    // Load order decides who sees an item first: the corpus's planner (loaded first, TABLE
    // items) takes `corpus_private_rows TABLESAMPLE ...` as its own table and keeps every row;
    // the planners bundle samples everything the corpus leaves alone.
    let out = query_csv(
        &ctx,
        "select count(*) as n from corpus_private_rows tablesample (2 rows)",
    )
    .await
    .unwrap();
    assert_eq!(out, "n\n3\n");
    let out = query_csv(
        &ctx,
        "select count(*) as n from (values (1), (2), (3)) t(x) tablesample (2 rows)",
    )
    .await
    .unwrap();
    assert_eq!(out, "n\n2\n");
}
