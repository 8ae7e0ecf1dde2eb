//! The lean codec against datafusion-proto: what the bundle writes, the host reads with
//! datafusion-proto into the very expression or plan the planner returned.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::functions::math::abs;
use datafusion::functions_aggregate::sum::sum;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, cast, col, in_list, lit, try_cast, when,
};
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec;
use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use prost::Message;

use super::{operand, put_back, wire};
use crate::ffi::planner::codec::{HostCodec, HostPlanRef};
use crate::ffi::planner::objects::FFI_PlanObjects;

fn read_back(ctx: &SessionContext, expr: &Expr) -> Expr {
    let bytes = wire::expr_node(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .encode_to_vec();
    let proto = datafusion_proto::protobuf::LogicalExprNode::decode(bytes.as_slice()).unwrap();
    parse_expr(&proto, &ctx.task_ctx(), &DefaultLogicalExtensionCodec {})
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

#[test]
fn every_expression_kind_reads_back_as_it_was_written() {
    let ctx = SessionContext::new();
    let a = || col("t.a");
    let typed = Arc::new(Field::new("", DataType::Int64, false));
    let exprs = [
        a(),
        lit(7i64),
        lit(ScalarValue::Utf8(None)),
        a().alias("x"),
        a().alias_qualified(Some("q"), "x"),
        a() + lit(1i64) * a() - lit(2i64),
        a().eq(lit(1i64)).and(a().gt(lit(0i64))).or(a().is_null()),
        col("t.s").like(lit("a%")),
        col("t.s").ilike(lit("A%")),
        col("t.s").not_like(lit("a%")),
        abs().call(vec![a()]),
        !a().is_null(),
        a().is_not_null(),
        a().is_true(),
        a().is_false(),
        a().is_not_true(),
        a().is_unknown(),
        a().is_not_unknown(),
        Expr::SimilarTo(datafusion::logical_expr::expr::Like::new(
            false,
            Box::new(col("t.s")),
            Box::new(lit("a.*")),
            None,
            false,
        )),
        a().is_not_false(),
        -a(),
        a().between(lit(1i64), lit(2i64)),
        a().not_between(lit(1i64), lit(2i64)),
        when(a().gt(lit(1i64)), lit("big"))
            .otherwise(lit("small"))
            .unwrap(),
        cast(a(), DataType::Utf8),
        try_cast(col("t.s"), DataType::Int64),
        in_list(a(), vec![lit(1i64), lit(2i64)], true),
        Expr::Placeholder(Placeholder::new_with_field("$1".into(), Some(typed))),
        Expr::Placeholder(Placeholder::new_with_field("$2".into(), None)),
    ];
    for expr in exprs {
        assert_eq!(read_back(&ctx, &expr), expr, "{expr}");
        // The very bytes datafusion-proto writes.
        let ours = wire::expr_node(&expr).unwrap().encode_to_vec();
        let theirs = serialize_expr(&expr, &DefaultLogicalExtensionCodec {})
            .unwrap()
            .encode_to_vec();
        assert_eq!(ours, theirs, "{expr}");
    }
}

#[test]
fn a_long_chain_of_one_operator_is_one_node() {
    // Nested two by two, 300 ORs would pass prost's recursion limit when the host decodes them.
    let ctx = SessionContext::new();
    let chain = (1..300i64).fold(col("a").eq(lit(0i64)), |acc, i| acc.or(col("a").eq(lit(i))));
    assert_eq!(read_back(&ctx, &chain), chain);
}

#[test]
fn expressions_a_lean_planner_cannot_return_are_refused_by_name() {
    let err = wire::expr_node(&sum(col("a"))).unwrap_err().to_string();
    assert!(
        err.contains("a lean planner cannot return the expression `sum(a)`"),
        "{err}"
    );
    assert!(err.contains("instead of the lean_ variant"), "{err}");
}

#[test]
fn operands_cross_as_columns_literals_or_typed_placeholders() {
    let schema = DFSchema::try_from_qualified_schema(
        "t",
        &datafusion::arrow::datatypes::Schema::new(vec![Field::new("a", DataType::Int64, true)]),
    )
    .unwrap();
    let sum_of = col("t.a") + lit(1i64);
    let sent: Vec<Expr> = [col("t.a"), lit(3i64), sum_of.clone()]
        .iter()
        .enumerate()
        .map(|(i, e)| operand(e, Some(&schema), 42, i))
        .collect();
    assert_eq!(sent[0], col("t.a"));
    assert_eq!(sent[1], lit(3i64));
    let Expr::Placeholder(p) = &sent[2] else {
        panic!("{}", sent[2]);
    };
    assert_eq!(p.id, "$df_plugin_operand_42_2");
    assert_eq!(
        p.field.as_ref().map(|f| f.data_type()),
        Some(&DataType::Int64)
    );

    // What the bundle reads is what was sent: it never needs the host's functions.
    for e in &sent {
        let bytes = crate::ffi::planner::codec::expr_to_bytes(e).unwrap();
        let proto = datafusion_proto::protobuf::LogicalExprNode::decode(bytes.as_slice()).unwrap();
        assert_eq!(&wire::read_operand(&proto).unwrap(), e);
    }
    let with_function =
        crate::ffi::planner::codec::expr_to_bytes(&abs().call(vec![col("a")])).unwrap();
    let proto =
        datafusion_proto::protobuf::LogicalExprNode::decode(with_function.as_slice()).unwrap();
    let err = wire::read_operand(&proto).unwrap_err().to_string();
    assert!(
        err.contains("cannot read a host expression other than"),
        "{err}"
    );

    // The answer gets the host's expressions back, wherever the planner put them.
    let answer = abs().call(vec![sent[2].clone()]) * sent[2].clone();
    let originals = [col("t.a"), lit(3i64), sum_of.clone()];
    assert_eq!(
        put_back(answer, 42, &originals).unwrap(),
        abs().call(vec![sum_of.clone()]) * sum_of
    );
    for (id, why) in [
        ("$df_plugin_operand_41_2", "another call"),
        ("$df_plugin_operand_42_3", "out of range"),
        ("$df_plugin_operand_x", "malformed"),
    ] {
        let forged = Expr::Placeholder(Placeholder::new_with_field(id.into(), None));
        let err = put_back(forged, 42, &originals).unwrap_err().to_string();
        assert!(
            err.contains("not one of the 3 operands of this call"),
            "{why}: {err}"
        );
    }
    // A parameter of the user's own passes through; one named like an operand placeholder
    // crosses opaque, so it comes back as the user wrote it whatever the planner does.
    let user = Expr::Placeholder(Placeholder::new_with_field("$1".into(), None));
    assert_eq!(operand(&user, Some(&schema), 42, 0), user);
    assert_eq!(put_back(user.clone(), 42, &originals).unwrap(), user);
    let lookalike = Expr::Placeholder(Placeholder::new_with_field(
        "$df_plugin_operand_42_0".into(),
        None,
    ));
    let sent = operand(&lookalike, Some(&schema), 43, 0);
    assert_ne!(sent, lookalike);
    assert_eq!(
        put_back(sent, 43, std::slice::from_ref(&lookalike)).unwrap(),
        lookalike
    );
    // So does a literal with metadata, which datafusion-proto's literals do not carry.
    let meta = std::collections::BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let tagged = Expr::Literal(ScalarValue::Int64(Some(1)), Some(meta.into()));
    assert!(matches!(
        operand(&tagged, Some(&schema), 44, 0),
        Expr::Placeholder(_)
    ));
}

#[test]
fn a_chain_over_host_plans_reads_back_as_it_was_written() {
    let ctx = SessionContext::new();
    let schema = Arc::new(
        DFSchema::try_from_qualified_schema(
            "t",
            &datafusion::arrow::datatypes::Schema::new(vec![Field::new(
                "v",
                DataType::Int64,
                true,
            )]),
        )
        .unwrap(),
    );
    let host = |id| {
        HostPlanRef {
            id,
            nonce: 9,
            schema: Arc::clone(&schema),
        }
        .into_plan()
    };
    let plan = LogicalPlanBuilder::from(host(0))
        .filter(col("t.v").gt(lit(0i64)))
        .unwrap()
        .sort(vec![col("t.v").sort(false, true)])
        .unwrap()
        .limit(1, Some(5))
        .unwrap()
        .project(vec![(abs().call(vec![col("t.v")]) + lit(1i64)).alias("w")])
        .unwrap()
        .distinct()
        .unwrap()
        .alias("s")
        .unwrap()
        .build()
        .unwrap();
    let plan = LogicalPlanBuilder::from(plan.clone())
        .union(
            LogicalPlanBuilder::from(host(1))
                .project(vec![col("t.v").alias("w")])
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
    let bytes = wire::plan_node(&plan).unwrap().encode_to_vec();
    let objects = FFI_PlanObjects::default();
    let codec = HostCodec::new(&objects).with_handles(9, vec![Arc::clone(&schema); 2]);
    let back: LogicalPlan =
        logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
    assert_eq!(
        back.display_indent().to_string(),
        plan.display_indent().to_string()
    );

    let computed_limit = LogicalPlanBuilder::from(host(0))
        .limit_by_expr(None, Some(col("t.v")))
        .unwrap()
        .build()
        .unwrap();
    let err = wire::plan_node(&computed_limit).unwrap_err().to_string();
    assert!(
        err.contains("a lean planner cannot return a LIMIT or OFFSET that is not a literal"),
        "{err}"
    );

    let table = LogicalPlanBuilder::empty(false).build().unwrap();
    let err = wire::plan_node(&table).unwrap_err().to_string();
    assert!(
        err.contains("a lean planner cannot return a plan with a EmptyRelation"),
        "{err}"
    );
}
