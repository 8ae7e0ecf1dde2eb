//! The cluster codecs: Ballista's own, with plugin objects routed to the bundle that owns them.
//!
//! Every plugin object a plan carries is written as an envelope — [`MAGIC`] and a JSON
//! [`Envelope`] — that names its bundle and version:
//!
//! - a plugin function: by bundle, kind and name. The receiving node takes *its* copy of the
//!   function from *its* copy of the bundle, so a node without the bundle, or with another
//!   version, fails the query with both names instead of "function not found";
//! - a plugin table (client → scheduler): its [`Origin`](super::origin::Origin), replayed on
//!   the scheduler by [`ReplayedTable`];
//! - a scan of a plugin table (scheduler → executors): the same origin plus projection,
//!   filters, limit and the partition count, replayed per task by [`ReplayExec`].
//!
//! Anything else goes to Ballista's codecs unchanged.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use df_plugin_api::record::Capability;
use serde::{Deserialize, Serialize};

use super::node::ClusterNode;
use super::origin::{BundleRef, OriginWire, ScanWire, malformed};
use super::replay::{ReplayExec, ReplayedTable};
use super::slice::ClusterScanExec;
use crate::restore::plans::{BundlePlan, HostTableProvider};

/// What starts every plugin envelope. Ballista's and DataFusion's own payloads are protobuf
/// messages, which never start with these bytes (`d` = field 12, wire type 4: invalid).
pub const MAGIC: &[u8] = b"df-plugin/1\n";

#[derive(Serialize, Deserialize)]
#[serde(tag = "object", rename_all = "snake_case")]
enum Envelope {
    Function {
        bundle: BundleRef,
        kind: FunctionKind,
        name: String,
    },
    Table {
        origin: OriginWire,
    },
    Scan {
        scan: ScanWire,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FunctionKind {
    Scalar,
    Aggregate,
    Window,
}

impl FunctionKind {
    fn capability(self) -> Capability {
        match self {
            FunctionKind::Scalar => Capability::ScalarUdf,
            FunctionKind::Aggregate => Capability::AggregateUdf,
            FunctionKind::Window => Capability::WindowUdf,
        }
    }
}

impl Envelope {
    fn write(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.extend_from_slice(MAGIC);
        serde_json::to_writer(buf, self).map_err(|e| malformed(e.to_string()))
    }

    /// The envelope in `buf`, or `None` for a payload that is not a plugin's.
    fn read(buf: &[u8]) -> Result<Option<Self>> {
        let Some(json) = buf.strip_prefix(MAGIC) else {
            return Ok(None);
        };
        serde_json::from_slice(json)
            .map(Some)
            .map_err(|e| malformed(e.to_string()))
    }
}

/// Ballista's logical and physical codecs with plugin objects routed by bundle; install the
/// same one on the client, the scheduler and every executor (see [`super`]).
#[derive(Debug)]
pub struct PluginCodec {
    node: Arc<ClusterNode>,
    logical: BallistaLogicalExtensionCodec,
    physical: BallistaPhysicalExtensionCodec,
}

impl PluginCodec {
    pub fn new(node: Arc<ClusterNode>) -> Arc<Self> {
        Arc::new(Self {
            node,
            logical: BallistaLogicalExtensionCodec::default(),
            physical: BallistaPhysicalExtensionCodec::default(),
        })
    }

    pub fn node(&self) -> &Arc<ClusterNode> {
        &self.node
    }

    /// Writes an envelope for `name` if a bundle owns it on this node; `false` otherwise.
    fn encode_function(&self, kind: FunctionKind, name: &str, buf: &mut Vec<u8>) -> Result<bool> {
        let Some(bundle) = self.node.owner(kind.capability(), name) else {
            return Ok(false);
        };
        Envelope::Function {
            bundle,
            kind,
            name: name.to_owned(),
        }
        .write(buf)?;
        Ok(true)
    }

    /// The function an envelope names, from this node's copy of its bundle.
    fn function(&self, want: FunctionKind, buf: &[u8]) -> Result<Option<(BundleRef, String)>> {
        match Envelope::read(buf)? {
            None => Ok(None),
            Some(Envelope::Function { bundle, kind, name }) if kind == want => {
                Ok(Some((bundle, name)))
            }
            Some(_) => Err(malformed(format!("expected a {want:?} function"))),
        }
    }

    /// `plan` must be a [`ClusterScanExec`]'s scan, or have one partition: a bare scan of more
    /// would be run whole by every task (see [`super::slice`]).
    fn encode_scan(&self, plan: &BundlePlan, sliced: bool, buf: &mut Vec<u8>) -> Result<()> {
        if !plan.is_scan() {
            return Err(super::writes_stay_local(format_args!(
                "a bundle's table ({})",
                plan.name()
            )));
        }
        let Some(replay) = plan.replay() else {
            return Err(DataFusionError::Internal(format!(
                "the bundle scan {} carries no origin to replay",
                plan.name()
            )));
        };
        let partitions = plan.properties().partitioning.partition_count();
        if !sliced && partitions > 1 {
            return Err(DataFusionError::Internal(format!(
                "the bundle scan {} has {partitions} partitions but no ClusterScanExec above \
                 it, so every task would run all of them: plan it on a scheduler whose tables \
                 came through this codec (df-plugin-host scheduler)",
                plan.name()
            )));
        }
        let scan = ScanWire::encode(replay, &plan.schema(), partitions, self)?;
        Envelope::Scan { scan }.write(buf)
    }
}

impl LogicalExtensionCodec for PluginCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.logical.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.logical.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match Envelope::read(buf)? {
            Some(Envelope::Table { origin }) => {
                let origin = origin.decode(ctx, self)?;
                let (kind, name) = origin.source.object();
                // Fail here, naming this node, rather than at the first scan.
                self.node.bundle(
                    &origin.bundle,
                    &format!("the {kind} '{name}' ({table_ref})"),
                )?;
                Ok(Arc::new(ReplayedTable::new(
                    Arc::clone(&self.node),
                    origin,
                    schema,
                )))
            }
            Some(_) => Err(malformed("expected a table")),
            None => self
                .logical
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let origin = match node.downcast_ref::<HostTableProvider>() {
            Some(host) => Some(Arc::clone(host.origin())),
            None => node
                .downcast_ref::<ReplayedTable>()
                .map(|t| Arc::new(t.origin().clone())),
        };
        match origin {
            Some(origin) => Envelope::Table {
                origin: OriginWire::encode(&origin, self)?,
            }
            .write(buf),
            None => self.logical.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.logical.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.logical.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match self.function(FunctionKind::Scalar, buf)? {
            Some((bundle, name)) => self.node.scalar(&bundle, &name),
            None => LogicalExtensionCodec::try_decode_udf(&self.logical, name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.encode_function(FunctionKind::Scalar, node.name(), buf)? {
            return Ok(());
        }
        LogicalExtensionCodec::try_encode_udf(&self.logical, node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match self.function(FunctionKind::Aggregate, buf)? {
            Some((bundle, name)) => self.node.aggregate(&bundle, &name),
            None => LogicalExtensionCodec::try_decode_udaf(&self.logical, name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.encode_function(FunctionKind::Aggregate, node.name(), buf)? {
            return Ok(());
        }
        LogicalExtensionCodec::try_encode_udaf(&self.logical, node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        match self.function(FunctionKind::Window, buf)? {
            Some((bundle, name)) => self.node.window(&bundle, &name),
            None => LogicalExtensionCodec::try_decode_udwf(&self.logical, name, buf),
        }
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.encode_function(FunctionKind::Window, node.name(), buf)? {
            return Ok(());
        }
        LogicalExtensionCodec::try_encode_udwf(&self.logical, node, buf)
    }
}

impl PhysicalExtensionCodec for PluginCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match Envelope::read(buf)? {
            Some(Envelope::Scan { scan }) => {
                let origin = scan.origin.decode(ctx, self)?;
                let (kind, name) = origin.source.object();
                // Fail here, naming this executor, rather than in every task's stream.
                self.node
                    .bundle(&origin.bundle, &format!("the scan of the {kind} '{name}'"))?;
                let filters = scan.filters(ctx, self)?;
                let replay = Arc::new(ReplayExec::new(
                    Arc::clone(&self.node),
                    origin,
                    filters,
                    scan,
                )?);
                match inputs {
                    [] => Ok(replay),
                    [tickets] => Ok(Arc::new(ClusterScanExec::new(replay, Arc::clone(tickets)))),
                    _ => Err(malformed("a scan with more than one input")),
                }
            }
            Some(_) => Err(malformed("expected a scan")),
            None => self.physical.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let (scan, sliced) = match node.downcast_ref::<ClusterScanExec>() {
            Some(cluster) => (Arc::clone(cluster.scan()), true),
            None => (Arc::clone(&node), false),
        };
        if let Some(plan) = scan.downcast_ref::<BundlePlan>() {
            return self.encode_scan(plan, sliced, buf);
        }
        if let Some(replay) = scan.downcast_ref::<ReplayExec>() {
            return Envelope::Scan {
                scan: replay.wire().clone(),
            }
            .write(buf);
        }
        self.physical.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match self.function(FunctionKind::Scalar, buf)? {
            Some((bundle, name)) => self.node.scalar(&bundle, &name),
            None => PhysicalExtensionCodec::try_decode_udf(&self.physical, name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.encode_function(FunctionKind::Scalar, node.name(), buf)? {
            return Ok(());
        }
        PhysicalExtensionCodec::try_encode_udf(&self.physical, node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match self.function(FunctionKind::Aggregate, buf)? {
            Some((bundle, name)) => self.node.aggregate(&bundle, &name),
            None => PhysicalExtensionCodec::try_decode_udaf(&self.physical, name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.encode_function(FunctionKind::Aggregate, node.name(), buf)? {
            return Ok(());
        }
        PhysicalExtensionCodec::try_encode_udaf(&self.physical, node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        match self.function(FunctionKind::Window, buf)? {
            Some((bundle, name)) => self.node.window(&bundle, &name),
            None => PhysicalExtensionCodec::try_decode_udwf(&self.physical, name, buf),
        }
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.encode_function(FunctionKind::Window, node.name(), buf)? {
            return Ok(());
        }
        PhysicalExtensionCodec::try_encode_udwf(&self.physical, node, buf)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::functions::math::abs;

    use super::*;
    use crate::register::PluginRegistry;

    fn codec() -> Arc<PluginCodec> {
        let registry = Arc::new(PluginRegistry::default());
        PluginCodec::new(ClusterNode::new(registry, "executor e1 at 127.0.0.1:1"))
    }

    fn envelope(bundle: &str, version: &str, name: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        Envelope::Function {
            bundle: BundleRef {
                name: bundle.into(),
                version: version.into(),
            },
            kind: FunctionKind::Scalar,
            name: name.into(),
        }
        .write(&mut buf)
        .unwrap();
        buf
    }

    #[test]
    fn only_plugin_payloads_are_envelopes() {
        let buf = envelope("udfs", "0.1.0", "time_bucket");
        assert!(buf.starts_with(MAGIC));
        assert!(matches!(
            Envelope::read(&buf),
            Ok(Some(Envelope::Function { name, .. })) if name == "time_bucket"
        ));
        // A protobuf message (field 1, varint) and nothing at all are not ours.
        assert!(matches!(Envelope::read(&[0x08, 0x01]), Ok(None)));
        assert!(matches!(Envelope::read(&[]), Ok(None)));
        let mut broken = MAGIC.to_vec();
        broken.extend_from_slice(b"{not json");
        assert!(Envelope::read(&broken).is_err());
    }

    #[test]
    fn built_in_functions_travel_as_ballista_sends_them() {
        let codec = codec();
        let mut buf = Vec::new();
        LogicalExtensionCodec::try_encode_udf(codec.as_ref(), &abs(), &mut buf).unwrap();
        PhysicalExtensionCodec::try_encode_udf(codec.as_ref(), &abs(), &mut buf).unwrap();
        assert!(buf.is_empty(), "a built-in is found by name on every node");
    }

    #[test]
    fn a_node_without_the_bundle_names_it_and_itself() {
        let codec = codec();
        let buf = envelope("udfs", "0.1.0", "time_bucket");
        let err = PhysicalExtensionCodec::try_decode_udf(codec.as_ref(), "time_bucket", &buf)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("executor e1 at 127.0.0.1:1 has no bundle 'udfs'")
                && err.contains("the scalar function 'time_bucket'")
                && err.contains("planned with udfs 0.1.0"),
            "{err}"
        );
        // A table envelope where a function is expected is malformed, not a missing bundle.
        let err = LogicalExtensionCodec::try_decode_udaf(codec.as_ref(), "time_bucket", &buf)
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed"), "{err}");
    }
}
