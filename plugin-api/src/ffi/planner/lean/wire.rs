//! The bundle side of a lean planner's bytes: datafusion-proto's messages, written and read for
//! the expressions and plan nodes a lean planner has, as datafusion-proto does (the same bytes:
//! `tests` compares them).
//!
//! Why not datafusion-proto's own `serialize_expr` / `parse_expr`: an expression may hold a
//! subquery, so both reach datafusion-proto's whole plan codec, and with it every table provider
//! and file format (Parquet, CSV, JSON, Avro) DataFusion has, into the bundle. The host decodes
//! these bytes with datafusion-proto itself, so what is written here must stay what it writes
//! (`tests` round-trips each kind through it).

use datafusion::arrow::datatypes::Field;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::{
    Alias, Between, Case, Cast, InList, Like, Placeholder, ScalarFunction, Sort, TryCast,
};
use datafusion::logical_expr::{BinaryExpr, Distinct, Expr, FetchType, LogicalPlan, SkipType};
use datafusion_proto::protobuf::{
    self, logical_expr_node::ExprType, logical_plan_node::LogicalPlanType,
};

use super::refuse;
use crate::ffi::planner::codec::encode_host_plan_ref;

fn boxed(expr: &Expr) -> Result<Option<Box<protobuf::LogicalExprNode>>> {
    Ok(Some(Box::new(expr_node(expr)?)))
}

fn exprs(list: &[Expr]) -> Result<Vec<protobuf::LogicalExprNode>> {
    list.iter().map(expr_node).collect()
}

fn sorts(list: &[Sort]) -> Result<Vec<protobuf::SortExprNode>> {
    list.iter()
        .map(|s| {
            Ok(protobuf::SortExprNode {
                expr: Some(expr_node(&s.expr)?),
                asc: s.asc,
                nulls_first: s.nulls_first,
            })
        })
        .collect()
}

fn proto_err(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("cannot encode the planner's expression: {e}"))
}

/// `expr` as datafusion-proto writes it; functions by name. Refuses what a lean planner cannot
/// return (subqueries, aggregates, window functions, ...), naming it.
pub(crate) fn expr_node(expr: &Expr) -> Result<protobuf::LogicalExprNode> {
    let node = match expr {
        Expr::Column(c) => ExprType::Column(c.into()),
        Expr::Alias(Alias {
            expr,
            relation,
            name,
            metadata,
        }) => ExprType::Alias(Box::new(protobuf::AliasNode {
            expr: boxed(expr)?,
            relation: relation.clone().map(|r| vec![r.into()]).unwrap_or_default(),
            alias: name.clone(),
            metadata: metadata
                .as_ref()
                .map(|m| m.to_hashmap())
                .unwrap_or_default(),
        })),
        Expr::Literal(value, _) => ExprType::Literal(value.try_into().map_err(proto_err)?),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            // A left-nested chain of one operator as one node of many operands, as
            // datafusion-proto writes it: nested, a long `OR` chain would pass prost's
            // recursion limit when the host decodes it.
            let mut chain = vec![right.as_ref()];
            let mut current = left.as_ref();
            while let Expr::BinaryExpr(BinaryExpr {
                left,
                op: inner,
                right,
            }) = current
                && inner == op
            {
                chain.push(right.as_ref());
                current = left.as_ref();
            }
            chain.push(current);
            ExprType::BinaryExpr(protobuf::BinaryExprNode {
                operands: chain
                    .into_iter()
                    .rev()
                    .map(expr_node)
                    .collect::<Result<_>>()?,
                op: format!("{op:?}"),
            })
        }
        Expr::Like(Like {
            negated,
            expr,
            pattern,
            escape_char,
            case_insensitive,
        }) => {
            let (expr, pattern) = (boxed(expr)?, boxed(pattern)?);
            let escape_char = escape_char.map(|c| c.to_string()).unwrap_or_default();
            let negated = *negated;
            if *case_insensitive {
                ExprType::Ilike(Box::new(protobuf::ILikeNode {
                    negated,
                    expr,
                    pattern,
                    escape_char,
                }))
            } else {
                ExprType::Like(Box::new(protobuf::LikeNode {
                    negated,
                    expr,
                    pattern,
                    escape_char,
                }))
            }
        }
        Expr::SimilarTo(Like {
            negated,
            expr,
            pattern,
            escape_char,
            case_insensitive: _,
        }) => ExprType::SimilarTo(Box::new(protobuf::SimilarToNode {
            negated: *negated,
            expr: boxed(expr)?,
            pattern: boxed(pattern)?,
            escape_char: escape_char.map(|c| c.to_string()).unwrap_or_default(),
        })),
        Expr::ScalarFunction(ScalarFunction { func, args }) => {
            ExprType::ScalarUdfExpr(protobuf::ScalarUdfExprNode {
                fun_name: func.name().to_owned(),
                fun_definition: None,
                args: exprs(args)?,
            })
        }
        Expr::Not(e) => ExprType::NotExpr(Box::new(protobuf::Not { expr: boxed(e)? })),
        Expr::IsNull(e) => ExprType::IsNullExpr(Box::new(protobuf::IsNull { expr: boxed(e)? })),
        Expr::IsNotNull(e) => {
            ExprType::IsNotNullExpr(Box::new(protobuf::IsNotNull { expr: boxed(e)? }))
        }
        Expr::IsTrue(e) => ExprType::IsTrue(Box::new(protobuf::IsTrue { expr: boxed(e)? })),
        Expr::IsFalse(e) => ExprType::IsFalse(Box::new(protobuf::IsFalse { expr: boxed(e)? })),
        Expr::IsUnknown(e) => {
            ExprType::IsUnknown(Box::new(protobuf::IsUnknown { expr: boxed(e)? }))
        }
        Expr::IsNotUnknown(e) => {
            ExprType::IsNotUnknown(Box::new(protobuf::IsNotUnknown { expr: boxed(e)? }))
        }
        Expr::IsNotTrue(e) => {
            ExprType::IsNotTrue(Box::new(protobuf::IsNotTrue { expr: boxed(e)? }))
        }
        Expr::IsNotFalse(e) => {
            ExprType::IsNotFalse(Box::new(protobuf::IsNotFalse { expr: boxed(e)? }))
        }
        Expr::Negative(e) => {
            ExprType::Negative(Box::new(protobuf::NegativeNode { expr: boxed(e)? }))
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => ExprType::Between(Box::new(protobuf::BetweenNode {
            expr: boxed(expr)?,
            negated: *negated,
            low: boxed(low)?,
            high: boxed(high)?,
        })),
        Expr::Case(Case {
            expr,
            when_then_expr,
            else_expr,
        }) => ExprType::Case(Box::new(protobuf::CaseNode {
            expr: expr.as_deref().map(boxed).transpose()?.flatten(),
            when_then_expr: when_then_expr
                .iter()
                .map(|(w, t)| {
                    Ok(protobuf::WhenThen {
                        when_expr: Some(expr_node(w)?),
                        then_expr: Some(expr_node(t)?),
                    })
                })
                .collect::<Result<_>>()?,
            else_expr: else_expr.as_deref().map(boxed).transpose()?.flatten(),
        })),
        Expr::Cast(Cast { expr, field }) => ExprType::Cast(Box::new(protobuf::CastNode {
            expr: boxed(expr)?,
            arrow_type: Some(field.data_type().try_into().map_err(proto_err)?),
            metadata: field.metadata().clone(),
            nullable: Some(field.is_nullable()),
        })),
        Expr::TryCast(TryCast { expr, field }) => {
            ExprType::TryCast(Box::new(protobuf::TryCastNode {
                expr: boxed(expr)?,
                arrow_type: Some(field.data_type().try_into().map_err(proto_err)?),
                metadata: field.metadata().clone(),
                nullable: Some(field.is_nullable()),
            }))
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => ExprType::InList(Box::new(protobuf::InListNode {
            expr: boxed(expr)?,
            list: exprs(list)?,
            negated: *negated,
        })),
        Expr::Placeholder(Placeholder { id, field }) => {
            ExprType::Placeholder(protobuf::PlaceholderNode {
                id: id.clone(),
                data_type: field
                    .as_ref()
                    .map(|f| f.data_type().try_into().map_err(proto_err))
                    .transpose()?,
                nullable: field.as_ref().map(|f| f.is_nullable()),
                metadata: field
                    .as_ref()
                    .map(|f| f.metadata().clone())
                    .unwrap_or_default(),
            })
        }
        other => {
            return Err(refuse(&format!(
                "return the expression `{other}` (it may return columns, literals, operators, CASE, casts, IN lists and calls of scalar functions)"
            )));
        }
    };
    Ok(protobuf::LogicalExprNode {
        expr_type: Some(node),
    })
}

/// A host operand, as the host sends a lean planner's: a column, a literal or a placeholder
/// ([`super::operand`]).
pub(crate) fn read_operand(node: &protobuf::LogicalExprNode) -> Result<Expr> {
    match &node.expr_type {
        Some(ExprType::Column(c)) => Ok(Expr::Column(Column::from(c.clone()))),
        Some(ExprType::Literal(v)) => {
            let value = ScalarValue::try_from(v).map_err(|e| {
                DataFusionError::Plan(format!("cannot read a literal the host sent: {e}"))
            })?;
            Ok(Expr::Literal(value, None))
        }
        Some(ExprType::Placeholder(p)) => {
            let field = match &p.data_type {
                None => None,
                Some(t) => {
                    let data_type = t.try_into().map_err(|e| {
                        DataFusionError::Plan(format!("cannot read an operand's type: {e}"))
                    })?;
                    let field = Field::new("", data_type, p.nullable.unwrap_or(true))
                        .with_metadata(p.metadata.clone());
                    Some(field.into())
                }
            };
            Ok(Expr::Placeholder(Placeholder::new_with_field(
                p.id.clone(),
                field,
            )))
        }
        _ => Err(refuse(
            "read a host expression other than a column, a literal or an operand placeholder",
        )),
    }
}

/// A lean relation planner's plan as `LogicalPlanNode`: the nodes of a chain over the host's
/// plans.
pub(crate) fn plan_node(plan: &LogicalPlan) -> Result<protobuf::LogicalPlanNode> {
    let input = |p: &LogicalPlan| plan_node(p).map(|n| Some(Box::new(n)));
    let node = match plan {
        LogicalPlan::Extension(e) => {
            let mut buf = Vec::new();
            encode_host_plan_ref(e, &mut buf)?;
            LogicalPlanType::Extension(protobuf::LogicalExtensionNode {
                node: buf,
                inputs: Vec::new(),
            })
        }
        LogicalPlan::Filter(f) => LogicalPlanType::Selection(Box::new(protobuf::SelectionNode {
            input: input(&f.input)?,
            expr: boxed(&f.predicate)?,
        })),
        LogicalPlan::Projection(p) => {
            LogicalPlanType::Projection(Box::new(protobuf::ProjectionNode {
                input: input(&p.input)?,
                expr: exprs(&p.expr)?,
                optional_alias: None,
            }))
        }
        LogicalPlan::Sort(s) => LogicalPlanType::Sort(Box::new(protobuf::SortNode {
            input: input(&s.input)?,
            expr: sorts(&s.expr)?,
            fetch: s.fetch.map_or(-1, |f| f as i64),
        })),
        LogicalPlan::Limit(l) => {
            let (SkipType::Literal(skip), FetchType::Literal(fetch)) =
                (l.get_skip_type()?, l.get_fetch_type()?)
            else {
                return Err(refuse("return a LIMIT or OFFSET that is not a literal"));
            };
            LogicalPlanType::Limit(Box::new(protobuf::LimitNode {
                input: input(&l.input)?,
                skip: skip as i64,
                fetch: fetch.map_or(i64::MAX, |f| f as i64),
            }))
        }
        LogicalPlan::SubqueryAlias(a) => {
            LogicalPlanType::SubqueryAlias(Box::new(protobuf::SubqueryAliasNode {
                input: input(&a.input)?,
                alias: Some(a.alias.clone().into()),
            }))
        }
        LogicalPlan::Distinct(Distinct::All(i)) => {
            LogicalPlanType::Distinct(Box::new(protobuf::DistinctNode { input: input(i)? }))
        }
        LogicalPlan::Union(u) => LogicalPlanType::Union(protobuf::UnionNode {
            inputs: u
                .inputs
                .iter()
                .map(|i| plan_node(i))
                .collect::<Result<_>>()?,
        }),
        other => {
            return Err(refuse(&format!(
                "return a plan with a {} node (it may return Filter, Projection, Sort, Limit, SubqueryAlias, Distinct and Union over the host's plans)",
                other.display()
            )));
        }
    };
    Ok(protobuf::LogicalPlanNode {
        logical_plan_type: Some(node),
    })
}
