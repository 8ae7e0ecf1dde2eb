//! Where a bundle's table came from, so another process can make the same table again.
//!
//! A bundle's provider is a handle into one process; it cannot cross a network. What can is
//! how it was made: a named table the bundle exports, a table function call with its
//! arguments, or a `CREATE EXTERNAL TABLE` a factory answered. The host records that
//! [`Origin`] on every [`HostTableProvider`](crate::restore::plans::HostTableProvider) and
//! [`ScanReplay`] on every scan it plans, and the cluster codecs send them in wire form
//! ([`OriginWire`], [`ScanWire`]) for the receiving node to replay with its own copy of the
//! bundle.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{CreateExternalTable, DdlStatement, Expr, LogicalPlan};
use datafusion_proto::logical_plan::from_proto::parse_exprs;
use datafusion_proto::logical_plan::to_proto::serialize_exprs;
use datafusion_proto::logical_plan::{AsLogicalPlan, LogicalExtensionCodec};
use datafusion_proto::protobuf::{LogicalExprList, LogicalPlanNode};
use prost::Message;
use serde::{Deserialize, Serialize};

/// A bundle by name and version: what every plugin object on the wire names as its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRef {
    pub name: String,
    pub version: String,
}

impl std::fmt::Display for BundleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' {}", self.name, self.version)
    }
}

/// How a bundle's table was made.
#[derive(Clone, Debug)]
pub struct Origin {
    pub bundle: BundleRef,
    pub source: Source,
}

#[derive(Clone, Debug)]
pub enum Source {
    /// A table the bundle exports under this name.
    Table { name: String },
    /// A call of the bundle's table function, with the arguments DataFusion passed it.
    TableFunction { name: String, args: Vec<Expr> },
    /// A `CREATE EXTERNAL TABLE` answered by the bundle's factory for this file type.
    Factory {
        name: String,
        cmd: Box<CreateExternalTable>,
    },
}

impl Source {
    /// The bundle object that replays it: (kind, name) for error messages.
    pub fn object(&self) -> (&'static str, &str) {
        match self {
            Source::Table { name } => ("table", name),
            Source::TableFunction { name, .. } => ("table function", name),
            Source::Factory { name, .. } => ("table factory", name),
        }
    }
}

/// A scan of a bundle's table, as the host planned it.
#[derive(Clone, Debug)]
pub struct ScanReplay {
    pub origin: Arc<Origin>,
    pub projection: Option<Vec<usize>>,
    pub filters: Vec<Expr>,
    pub limit: Option<usize>,
}

/// [`Origin`] on the wire: expressions and the `CREATE` statement as datafusion-proto bytes,
/// encoded with the cluster codec so plugin functions inside them keep their owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OriginWire {
    pub bundle: BundleRef,
    pub source: SourceWire,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceWire {
    Table { name: String },
    TableFunction { name: String, args: String },
    Factory { name: String, cmd: String },
}

impl OriginWire {
    pub fn encode(origin: &Origin, codec: &dyn LogicalExtensionCodec) -> Result<Self> {
        let source = match &origin.source {
            Source::Table { name } => SourceWire::Table { name: name.clone() },
            Source::TableFunction { name, args } => SourceWire::TableFunction {
                name: name.clone(),
                args: encode_exprs(args, codec)?,
            },
            Source::Factory { name, cmd } => {
                let plan = LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd.clone()));
                let node = LogicalPlanNode::try_from_logical_plan(&plan, codec)?;
                SourceWire::Factory {
                    name: name.clone(),
                    cmd: hex::encode(node.encode_to_vec()),
                }
            }
        };
        Ok(Self {
            bundle: origin.bundle.clone(),
            source,
        })
    }

    pub fn decode(&self, ctx: &TaskContext, codec: &dyn LogicalExtensionCodec) -> Result<Origin> {
        let source = match &self.source {
            SourceWire::Table { name } => Source::Table { name: name.clone() },
            SourceWire::TableFunction { name, args } => Source::TableFunction {
                name: name.clone(),
                args: decode_exprs(args, ctx, codec)?,
            },
            SourceWire::Factory { name, cmd } => {
                let node = LogicalPlanNode::decode(unhex(cmd)?.as_slice())
                    .map_err(|e| malformed(format!("CREATE statement: {e}")))?;
                match node.try_into_logical_plan(ctx, codec)? {
                    LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => Source::Factory {
                        name: name.clone(),
                        cmd,
                    },
                    other => {
                        return Err(malformed(format!(
                            "expected a CREATE EXTERNAL TABLE, found {}",
                            other.display()
                        )));
                    }
                }
            }
        };
        Ok(Origin {
            bundle: self.bundle.clone(),
            source,
        })
    }
}

/// [`ScanReplay`] on the wire, with what the receiving node needs to check it planned the
/// same scan: the output schema and the partition count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanWire {
    pub origin: OriginWire,
    pub projection: Option<Vec<usize>>,
    pub filters: String,
    pub limit: Option<usize>,
    pub partitions: usize,
    pub schema: String,
}

impl ScanWire {
    pub fn encode(
        scan: &ScanReplay,
        schema: &SchemaRef,
        partitions: usize,
        codec: &dyn LogicalExtensionCodec,
    ) -> Result<Self> {
        let schema = datafusion_proto::protobuf::Schema::try_from(schema.as_ref())?;
        Ok(Self {
            origin: OriginWire::encode(&scan.origin, codec)?,
            projection: scan.projection.clone(),
            filters: encode_exprs(&scan.filters, codec)?,
            limit: scan.limit,
            partitions,
            schema: hex::encode(schema.encode_to_vec()),
        })
    }

    pub fn schema(&self) -> Result<SchemaRef> {
        let proto = datafusion_proto::protobuf::Schema::decode(unhex(&self.schema)?.as_slice())
            .map_err(|e| malformed(format!("schema: {e}")))?;
        Ok(Arc::new(Schema::try_from(&proto)?))
    }

    pub fn filters(
        &self,
        ctx: &TaskContext,
        codec: &dyn LogicalExtensionCodec,
    ) -> Result<Vec<Expr>> {
        decode_exprs(&self.filters, ctx, codec)
    }
}

fn encode_exprs(exprs: &[Expr], codec: &dyn LogicalExtensionCodec) -> Result<String> {
    let list = LogicalExprList {
        expr: serialize_exprs(exprs, codec)?,
    };
    Ok(hex::encode(list.encode_to_vec()))
}

fn decode_exprs(
    hex_bytes: &str,
    ctx: &TaskContext,
    codec: &dyn LogicalExtensionCodec,
) -> Result<Vec<Expr>> {
    let list = LogicalExprList::decode(unhex(hex_bytes)?.as_slice())
        .map_err(|e| malformed(format!("expressions: {e}")))?;
    Ok(parse_exprs(&list.expr, ctx, codec)?)
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    hex::decode(s).map_err(|e| malformed(format!("not hex: {e}")))
}

pub(crate) fn malformed(what: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!(
        "a plugin object on the wire is malformed ({what}): are the client, scheduler and \
         executors running the same df-plugin-host version?"
    ))
}
