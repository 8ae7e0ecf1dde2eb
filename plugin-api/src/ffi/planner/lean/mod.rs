//! Lean planners (plugin ABI 1.16): planners that need neither the host's functions nor tables
//! of their own, and so cross without them.
//!
//! The general planner ABI lets a bundle's planner read any host expression and return any
//! plan: the bundle decodes host expressions with the host session's functions (a datafusion-ffi
//! task context), encodes plans with datafusion-proto's whole plan codec, and exports the tables
//! and functions it made. All of that, with the plan runner those tables need, is linked into
//! the bundle: most of the planners bundle's 100 MB. Most planners need none of it — they
//! rewrite an operator into a call of a function their bundle exports, or put a filter over a
//! relation — so a lean planner (`Bundle::lean_expr_planner`, `Bundle::lean_relation_planner`)
//! gives up three things, and its bundle links none of that code:
//!
//! - **Operands are opaque.** The host sends an expression planner's operands that are not
//!   columns, literals or query parameters as typed placeholders (`Expr::Placeholder` with the
//!   operand's type): the planner sees their types, not their insides, and puts them anywhere in
//!   its answer; the host puts its own expressions back ([`put_back`]). The `AGGREGATE` and
//!   `WINDOW` hooks, whose input is a whole function call, are not offered.
//! - **Functions travel by name.** The planner's answer may call any scalar function the
//!   session has (the bundle's own exported ones included), resolved by name on the host; a
//!   function it made and did not export cannot cross. A relation planner's `ContextProvider`
//!   knows no functions and answers `options()` with DataFusion's defaults, not the session's;
//!   an expression it plans through the host (`sql_to_expr`) comes back if it is a column, a
//!   literal or a parameter, and is an error otherwise.
//! - **Plans are chains.** A relation planner returns filters, projections, sorts, limits,
//!   aliases, `DISTINCT` and `UNION` over the plans the host made for it; no tables of its own.
//!
//! What crosses is the same as for general planners (datafusion-proto bytes and placeholders),
//! so the host decodes both alike; the bundle writes and reads those bytes with its own small
//! codec ([`wire`]), not datafusion-proto's, which would link every plan node.

mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_proto::protobuf;
use prost::Message;

use super::PlannerCodec;
use super::objects::FFI_PlanObjects;

/// The first plugin ABI minor with lean planners (the `hooks::LEAN` bit).
pub const LEAN_PLANNERS_MINOR: u16 = 16;

/// The id prefix of the placeholders the host sends for opaque operands.
const OPERAND: &str = "$df_plugin_operand_";

/// What an expression planner's operand crosses as when the planner is lean: itself if it is a
/// column, a literal without metadata or a query parameter (the planner may look at those), else
/// a placeholder carrying its field, which [`put_back`] replaces. Without a schema (hooks
/// DataFusion gives none) the placeholder has no type. A parameter named like an operand
/// placeholder (`$df_plugin_operand_...`, which SQL may write) is sent opaque too, so it can
/// never be taken for one.
pub fn operand(expr: &Expr, schema: Option<&DFSchema>, nonce: u64, index: usize) -> Expr {
    match expr {
        Expr::Column(_) | Expr::Literal(_, None) => expr.clone(),
        Expr::Placeholder(p) if !p.id.starts_with(OPERAND) => expr.clone(),
        other => {
            // Its type, nullability and metadata; a name would not cross.
            let field = schema
                .and_then(|s| other.to_field(s).ok())
                .map(|(_, f)| Arc::new(f.as_ref().clone().with_name("")));
            Expr::Placeholder(Placeholder::new_with_field(
                format!("{OPERAND}{nonce}_{index}"),
                field,
            ))
        }
    }
}

/// Which operand of call `nonce` a placeholder id names, if it is an operand placeholder.
fn operand_index(id: &str, nonce: u64, count: usize) -> Result<Option<usize>> {
    let Some(rest) = id.strip_prefix(OPERAND) else {
        return Ok(None);
    };
    let parsed = rest
        .split_once('_')
        .and_then(|(n, i)| Some((n.parse::<u64>().ok()?, i.parse::<usize>().ok()?)));
    match parsed {
        Some((n, i)) if n == nonce && i < count => Ok(Some(i)),
        _ => Err(DataFusionError::Plan(format!(
            "used the operand placeholder {id}, which is not one of the {count} operands of this call (a planner may use only the placeholders of the call it answers)"
        ))),
    }
}

/// The planner's answer with the host's operands back in place of their placeholders.
pub fn put_back(expr: Expr, nonce: u64, operands: &[Expr]) -> Result<Expr> {
    Ok(expr
        .transform_up(|e| {
            let index = match &e {
                Expr::Placeholder(p) => operand_index(&p.id, nonce, operands.len())?,
                _ => None,
            };
            Ok(match index {
                Some(i) => Transformed::yes(operands[i].clone()),
                None => Transformed::no(e),
            })
        })?
        .data)
}

/// The bundle side of a lean planner: no host functions in, none of its own objects out.
#[derive(Debug, Default)]
pub(crate) struct LeanCodec;

fn refuse(what: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "a lean planner cannot {what}; export it with expr_planner / relation_planner instead of the lean_ variant"
    ))
}

impl PlannerCodec for LeanCodec {
    fn read_expr(&self, bytes: &[u8], _host: &FFI_TaskContextProvider) -> Result<Expr> {
        let proto = protobuf::LogicalExprNode::decode(bytes)
            .map_err(|e| DataFusionError::Plan(format!("undecodable expression bytes: {e}")))?;
        wire::read_operand(&proto)
    }

    fn write_expr(
        &self,
        expr: &Expr,
        _host: &FFI_TaskContextProvider,
    ) -> Result<(Vec<u8>, FFI_PlanObjects)> {
        let bytes = wire::expr_node(expr)?.encode_to_vec();
        Ok((bytes, FFI_PlanObjects::default()))
    }

    fn write_plan(
        &self,
        plan: &LogicalPlan,
        _host: &FFI_TaskContextProvider,
    ) -> Result<(Vec<u8>, FFI_PlanObjects)> {
        let bytes = wire::plan_node(plan)?.encode_to_vec();
        Ok((bytes, FFI_PlanObjects::default()))
    }

    fn session(&self, _host: &FFI_TaskContextProvider) -> Result<Option<Arc<TaskContext>>> {
        Ok(None)
    }
}
