//! Byte encodings of the planner ABI, and the placeholder for plans the host made.
//!
//! A relation planner plans its inputs through the host (`RelationPlannerContext::plan`). Those
//! plans stay on the host — they may scan tables no codec can encode (memory tables, other
//! bundles' tables, CTEs) — and the bundle gets a [`HostPlanRef`]: a leaf node with the plan's
//! full qualified schema, which the bundle builds on with `LogicalPlanBuilder` like any plan.
//! [`BundleCodec`] encodes it as `(id, nonce)`; [`HostCodec`] decodes it, and the host puts its
//! own plan back in its place. The same two codecs carry the answer's side table
//! ([`super::objects`]): tables and functions the planner made itself.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, DFSchemaRef, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, WindowUDF};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::prelude::SessionContext;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_proto::bytes::Serializeable;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::protobuf;
use prost::Message;

use super::objects::{FFI_PlanObjects, PlanObjectExporter, PlanObjectsReader, PlanObjectsWriter};

/// An expression as `protobuf::LogicalExprNode` bytes (functions by name).
pub fn expr_to_bytes(expr: &Expr) -> Result<Vec<u8>> {
    Ok(expr.to_bytes()?.to_vec())
}

/// An expression as `protobuf::LogicalExprNode` bytes, functions and tables through `codec`.
pub(crate) fn expr_to_bytes_with(
    expr: &Expr,
    codec: &dyn LogicalExtensionCodec,
) -> Result<Vec<u8>> {
    Ok(serialize_expr(expr, codec)?.encode_to_vec())
}

/// Decodes an expression, resolving functions in `ctx` and then through `codec`.
pub(crate) fn expr_from_bytes_with(
    bytes: &[u8],
    ctx: &TaskContext,
    codec: &dyn LogicalExtensionCodec,
) -> Result<Expr> {
    let proto = protobuf::LogicalExprNode::decode(bytes)
        .map_err(|e| DataFusionError::Plan(format!("undecodable expression bytes: {e}")))?;
    Ok(parse_expr(&proto, ctx, codec)?)
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

/// The last schema a planner was sent, decoded. The host sends the schema with every call, and
/// the calls of a query (and of the next) mostly plan against the same one: decoding it again
/// was over half of what an expression hook cost the bundle, where comparing bytes costs little.
#[derive(Debug, Default)]
pub(crate) struct LastSchema(Mutex<Option<(Vec<u8>, Arc<DFSchema>)>>);

impl LastSchema {
    /// `bytes` decoded ([`schema_from_bytes`]), or the schema they decoded to last time.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Arc<DFSchema>> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, schema)) = last.as_ref()
            && seen.as_slice() == bytes
        {
            return Ok(Arc::clone(schema));
        }
        let schema = Arc::new(schema_from_bytes(bytes)?);
        *last = Some((bytes.to_vec(), Arc::clone(&schema)));
        Ok(schema)
    }
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

/// A table of the host the bundle resolved through `ContextProvider::get_table_source`: its
/// schema only. It can be planned against, but not scanned or sent back — the host's table must
/// be planned through `RelationPlannerContext::plan`.
#[derive(Debug)]
pub(crate) struct HostTableSchema {
    pub(crate) name: TableReference,
    pub(crate) schema: SchemaRef,
}

#[async_trait::async_trait]
impl TableProvider for HostTableSchema {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        Err(host_table_error(&self.name))
    }
}

fn host_table_error(name: &TableReference) -> DataFusionError {
    DataFusionError::Plan(format!(
        "a relation planner scanned the host's table '{name}' through get_table_source(), which gives its schema only; plan it through RelationPlannerContext::plan()"
    ))
}

/// Bundle side: encodes a planner's answer. Placeholders become `(id, nonce)`; functions the
/// host gave the bundle stay names; tables and functions the planner made go to the side table.
#[derive(Debug)]
pub(crate) struct BundleCodec {
    objects: PlanObjectsWriter,
}

impl BundleCodec {
    pub(crate) fn new(
        task: Arc<TaskContext>,
        host: FFI_TaskContextProvider,
        exporter: Arc<dyn PlanObjectExporter>,
    ) -> Self {
        Self {
            objects: PlanObjectsWriter::new(task, host, exporter),
        }
    }

    /// The side table written so far.
    pub(crate) fn finish(self) -> FFI_PlanObjects {
        self.objects.finish()
    }
}

/// A [`HostPlanRef`] as `(id, nonce)`; any other extension node cannot cross.
pub(crate) fn encode_host_plan_ref(node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
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

fn refuse_decode() -> DataFusionError {
    DataFusionError::Internal("the bundle side of the planner ABI decodes no plans".to_owned())
}

impl LogicalExtensionCodec for BundleCodec {
    fn try_decode(
        &self,
        _buf: &[u8],
        _inputs: &[LogicalPlan],
        _ctx: &TaskContext,
    ) -> Result<Extension> {
        Err(refuse_decode())
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        encode_host_plan_ref(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        _buf: &[u8],
        _table_ref: &TableReference,
        _schema: SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        Err(refuse_decode())
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if node.is::<HostTableSchema>() {
            return Err(host_table_error(table_ref));
        }
        self.objects.table(table_ref, node, buf);
        Ok(())
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.objects.scalar_udf(node, buf);
        Ok(())
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.objects.aggregate_udf(node, buf);
        Ok(())
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.objects.window_udf(node, buf);
        Ok(())
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        DefaultLogicalExtensionCodec {}.try_encode_file_format(buf, node)
    }
}

/// Host side: decodes a planner's answer. Placeholders are checked against the plans of the
/// current call (`handles`: its nonce and each plan's schema); side-table references become the
/// bundle's objects; functions the answer names without a reference are the host session's
/// (`functions`), looked up one by one (see [`super::AnswerContext`]).
#[derive(Default)]
pub(crate) struct HostCodec {
    handles: Option<(u64, Vec<DFSchemaRef>)>,
    objects: PlanObjectsReader,
    functions: Option<Arc<SessionContext>>,
}

impl fmt::Debug for HostCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCodec")
            .field("handles", &self.handles)
            .field("objects", &self.objects)
            .field("session", &self.functions.as_ref().map(|s| s.session_id()))
            .finish()
    }
}

impl HostCodec {
    pub(crate) fn new(objects: &FFI_PlanObjects) -> Self {
        Self {
            handles: None,
            objects: PlanObjectsReader::new(objects),
            functions: None,
        }
    }

    pub(crate) fn with_handles(mut self, nonce: u64, schemas: Vec<DFSchemaRef>) -> Self {
        self.handles = Some((nonce, schemas));
        self
    }

    /// Resolves the functions an answer names without a side-table reference in `session`.
    pub(crate) fn with_functions(mut self, session: Option<Arc<SessionContext>>) -> Self {
        self.functions = session;
        self
    }

    /// The host's function `name` when the answer sent no object for it (`buf` empty) and the
    /// session has one; otherwise the side table's, whose error names what is missing.
    fn function<F>(
        &self,
        name: &str,
        buf: &[u8],
        host: impl FnOnce(&SessionContext, &str) -> Result<Arc<F>>,
        sent: impl FnOnce(&[u8], &str) -> Result<Arc<F>>,
    ) -> Result<Arc<F>> {
        if buf.is_empty()
            && let Some(found) = self.functions.as_deref().and_then(|s| host(s, name).ok())
        {
            return Ok(found);
        }
        sent(buf, name)
    }
}

impl LogicalExtensionCodec for HostCodec {
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

    fn try_encode(&self, _node: &Extension, _buf: &mut Vec<u8>) -> Result<()> {
        Err(DataFusionError::Internal(
            "the host side of the planner ABI encodes no plans".to_owned(),
        ))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = self.objects.table(buf, table_ref)?;
        if table.schema() != schema {
            return Err(DataFusionError::Plan(format!(
                "the planner's table '{table_ref}' has another schema than its scan says"
            )));
        }
        Ok(table)
    }

    fn try_encode_table_provider(
        &self,
        _table_ref: &TableReference,
        _node: Arc<dyn TableProvider>,
        _buf: &mut Vec<u8>,
    ) -> Result<()> {
        Err(DataFusionError::Internal(
            "the host side of the planner ABI encodes no plans".to_owned(),
        ))
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.function(name, buf, FunctionRegistry::udf, |b, n| {
            self.objects.scalar_udf(b, n)
        })
    }

    fn try_decode_higher_order_function(
        &self,
        name: &str,
        buf: &[u8],
    ) -> Result<Arc<HigherOrderUDF>> {
        // A planner cannot send one (datafusion-ffi has no FFI type for them): the host's only.
        self.function(
            name,
            buf,
            FunctionRegistry::higher_order_function,
            |_, n| {
                Err(DataFusionError::Plan(format!(
                    "the answer refers to higher-order function '{n}', which the host does not have"
                )))
            },
        )
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.function(name, buf, FunctionRegistry::udaf, |b, n| {
            self.objects.aggregate_udf(b, n)
        })
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.function(name, buf, FunctionRegistry::udwf, |b, n| {
            self.objects.window_udf(b, n)
        })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        DefaultLogicalExtensionCodec {}.try_decode_file_format(buf, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_schema_is_decoded_once_and_a_new_one_replaces_it() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = |name: &str| {
            let fields = vec![Field::new(name, DataType::Int64, true)];
            DFSchema::try_from_qualified_schema("t", &Schema::new(fields)).unwrap()
        };
        let (a, b) = (schema("a"), schema("b"));
        let (a_bytes, b_bytes) = (schema_to_bytes(&a).unwrap(), schema_to_bytes(&b).unwrap());
        let last = LastSchema::default();
        let first = last.decode(&a_bytes).unwrap();
        assert_eq!(*first, a);
        assert!(Arc::ptr_eq(&first, &last.decode(&a_bytes).unwrap()));
        assert_eq!(*last.decode(&b_bytes).unwrap(), b);
        assert!(!Arc::ptr_eq(&first, &last.decode(&a_bytes).unwrap()));
        assert!(last.decode(b"not a schema").is_err());
        assert_eq!(*last.decode(&b_bytes).unwrap(), b);
    }

    /// What an answer names without sending resolves in the session, whatever the kind; what
    /// the session lacks is an error that says so.
    #[test]
    fn the_host_codec_resolves_unsent_functions_in_the_session() {
        let objects = FFI_PlanObjects::default();
        let codec = HostCodec::new(&objects).with_functions(Some(Arc::new(SessionContext::new())));
        assert_eq!(codec.try_decode_udf("abs", &[]).unwrap().name(), "abs");
        assert_eq!(codec.try_decode_udaf("sum", &[]).unwrap().name(), "sum");
        assert_eq!(
            codec.try_decode_udwf("row_number", &[]).unwrap().name(),
            "row_number"
        );
        let hof = codec.try_decode_higher_order_function("array_transform", &[]);
        assert_eq!(hof.unwrap().name(), "array_transform");

        let missing = codec.try_decode_higher_order_function("nope", &[]);
        let err = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("higher-order function 'nope', which the host does not have"),
            "{err}"
        );
        // No session (none bound yet): only what the answer sent.
        let unbound = HostCodec::new(&objects);
        let err = unbound
            .try_decode_udf("abs", &[])
            .err()
            .map(|e| e.to_string());
        assert!(
            err.unwrap_or_default().contains(
                "function 'abs', which the host does not have and the planner did not send"
            )
        );
    }
}
