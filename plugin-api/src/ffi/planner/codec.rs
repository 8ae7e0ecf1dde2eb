//! Byte encodings of the planner ABI, and the placeholder for plans the host made.
//!
//! A relation planner plans its inputs through the host (`RelationPlannerContext::plan`). Those
//! plans stay on the host — they may scan tables no codec can encode (memory tables, other
//! bundles' tables, CTEs) — and the bundle gets a [`HostPlanRef`]: a leaf node with the plan's
//! full qualified schema, which the bundle builds on with `LogicalPlanBuilder` like any plan.
//! [`PlannerCodec`] encodes it as `(id, nonce)`; the host puts its own plan back in its place.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, DFSchemaRef, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion_proto::bytes::Serializeable;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::protobuf;
use prost::Message;

/// An expression as `protobuf::LogicalExprNode` bytes (functions by name).
pub fn expr_to_bytes(expr: &Expr) -> Result<Vec<u8>> {
    Ok(expr.to_bytes()?.to_vec())
}

/// Decodes an expression, resolving functions in `ctx`.
pub fn expr_from_bytes(bytes: &[u8], ctx: &TaskContext) -> Result<Expr> {
    Expr::from_bytes_with_ctx(bytes, ctx)
}

/// A schema (with qualifiers) as `protobuf::DfSchema` bytes.
pub fn schema_to_bytes(schema: &DFSchema) -> Result<Vec<u8>> {
    Ok(protobuf::DfSchema::try_from(schema)?.encode_to_vec())
}

/// Decodes a schema; empty bytes are the empty schema.
pub fn schema_from_bytes(bytes: &[u8]) -> Result<DFSchema> {
    if bytes.is_empty() {
        return Ok(DFSchema::empty());
    }
    let proto = protobuf::DfSchema::decode(bytes)
        .map_err(|e| DataFusionError::Plan(format!("undecodable schema bytes: {e}")))?;
    Ok(DFSchema::try_from(&proto)?)
}

/// A plan the host planned and kept, standing in its place in a bundle's plan. Valid only
/// within the one `plan_relation` call that created it (`nonce`).
#[derive(Debug, Clone)]
pub struct HostPlanRef {
    pub id: u64,
    pub nonce: u64,
    pub schema: DFSchemaRef,
}

impl HostPlanRef {
    /// The placeholder as a plan node.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }

    /// The placeholder `plan` is, if it is one.
    pub fn of(plan: &LogicalPlan) -> Option<&HostPlanRef> {
        match plan {
            LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<HostPlanRef>(),
            _ => None,
        }
    }
}

impl PartialEq for HostPlanRef {
    fn eq(&self, other: &Self) -> bool {
        (self.id, self.nonce) == (other.id, other.nonce)
    }
}

impl Eq for HostPlanRef {}

impl Hash for HostPlanRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.id, self.nonce).hash(state)
    }
}

// DFSchema is not `PartialOrd`; the identity is (nonce, id).
impl PartialOrd for HostPlanRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some((self.nonce, self.id).cmp(&(other.nonce, other.id)))
    }
}

impl UserDefinedLogicalNodeCore for HostPlanRef {
    fn name(&self) -> &str {
        "HostPlanRef"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "HostPlanRef: id={}", self.id)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, _inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(self.clone())
    }
}

/// The extension codec of relation-planner plans. Bundle side: encodes [`HostPlanRef`]s as
/// `(id, nonce)`. Host side: decodes them against the plans of the current call (`handles`).
/// Everything else is datafusion-proto's default: functions by name, no custom nodes, and no
/// table providers — a relation planner reaches tables through the host's `plan()`.
#[derive(Debug, Default)]
pub struct PlannerCodec {
    /// Host side: (nonce, schema of each handle).
    pub handles: Option<(u64, Vec<DFSchemaRef>)>,
}

impl LogicalExtensionCodec for PlannerCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[LogicalPlan],
        _ctx: &TaskContext,
    ) -> Result<Extension> {
        let bad = || {
            DataFusionError::Plan(
                "a relation planner returned a custom plan node; only standard nodes over plans from the host's plan() can cross".to_owned(),
            )
        };
        let (nonce, schemas) = self.handles.as_ref().ok_or_else(bad)?;
        let bytes: [u8; 16] = buf.try_into().map_err(|_| bad())?;
        let id = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| bad())?);
        let got_nonce = u64::from_le_bytes(bytes[8..].try_into().map_err(|_| bad())?);
        if got_nonce != *nonce {
            return Err(DataFusionError::Plan(
                "a relation planner returned a placeholder from another call of plan_relation; plans from the host's plan() are valid only in the call that made them".to_owned(),
            ));
        }
        let schema = usize::try_from(id)
            .ok()
            .and_then(|i| schemas.get(i))
            .ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "a relation planner returned placeholder {id}, but the host planned only {} relations in this call",
                    schemas.len()
                ))
            })?;
        Ok(Extension {
            node: Arc::new(HostPlanRef {
                id,
                nonce: *nonce,
                schema: Arc::clone(schema),
            }),
        })
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        let Some(r) = node.node.as_any().downcast_ref::<HostPlanRef>() else {
            return Err(DataFusionError::Plan(format!(
                "relation planners cannot return custom plan nodes ({}) across the plugin boundary; build the plan from standard nodes",
                node.node.name()
            )));
        };
        buf.extend_from_slice(&r.id.to_le_bytes());
        buf.extend_from_slice(&r.nonce.to_le_bytes());
        Ok(())
    }

    fn try_decode_table_provider(
        &self,
        _buf: &[u8],
        table_ref: &TableReference,
        _schema: SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        Err(DataFusionError::Plan(format!(
            "a relation planner returned a scan of its own table '{table_ref}'; scan tables through the host's plan()"
        )))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        _node: Arc<dyn TableProvider>,
        _buf: &mut Vec<u8>,
    ) -> Result<()> {
        Err(DataFusionError::Plan(format!(
            "relation planners cannot return scans of their own tables ('{table_ref}') across the plugin boundary; register the table and plan it through the host's plan()"
        )))
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        DefaultLogicalExtensionCodec {}.try_decode_file_format(buf, ctx)
    }
}
