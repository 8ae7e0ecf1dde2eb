//! Objects the hostile-bundle corpus is built from. Each corpus bundle is a tiny cdylib that
//! exports some of these and lies about itself in one specific way (see its manifest and
//! build script); the host's integration tests load the real files.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::function::{
    AccumulatorArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, Expr, PartitionEvaluator, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility, WindowUDFImpl,
};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::scalar::ScalarValue;

/// `<name>(x)` returns `x` (Int64). The well-behaved function of the corpus.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Echo {
    name: String,
    signature: Signature,
}

impl Echo {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Echo {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}
/// How [`Misbehave`] breaks the scalar-function contract.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
pub enum Broken {
    /// One value fewer than the batch has rows.
    Length,
    /// Utf8 values where its return type says Int64.
    Type,
}

/// `corpus_wrong_length(x)` / `corpus_wrong_type(x)`: returns without panicking, but not what a
/// scalar function must return.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Misbehave {
    broken: Broken,
    signature: Signature,
}

impl Misbehave {
    pub fn new(broken: Broken) -> Self {
        Self {
            broken,
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Misbehave {
    fn name(&self) -> &str {
        match self.broken {
            Broken::Length => "corpus_wrong_length",
            Broken::Type => "corpus_wrong_type",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let array: ArrayRef = match self.broken {
            Broken::Length => Arc::new(datafusion::arrow::array::Int64Array::from(vec![
                7;
                rows.saturating_sub(1)
            ])),
            Broken::Type => Arc::new(datafusion::arrow::array::StringArray::from(vec![
                "not an integer";
                rows
            ])),
        };
        Ok(ColumnarValue::Array(array))
    }
}

/// `corpus_panic(x)` panics when invoked.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PanicScalar {
    signature: Signature,
}

impl Default for PanicScalar {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PanicScalar {
    fn name(&self) -> &str {
        "corpus_panic"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        panic!("corpus_panic was asked to panic")
    }
}

/// `corpus_panic_agg(x)`: its accumulator panics on the first batch.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PanicAggregate {
    signature: Signature,
}

impl Default for PanicAggregate {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

#[derive(Debug)]
struct PanicAccumulator;

impl Accumulator for PanicAccumulator {
    fn update_batch(&mut self, _values: &[ArrayRef]) -> Result<()> {
        panic!("accumulator asked to panic")
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(None))
    }
    fn size(&self) -> usize {
        0
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(None)])
    }
    fn merge_batch(&mut self, _states: &[ArrayRef]) -> Result<()> {
        Ok(())
    }
}

impl AggregateUDFImpl for PanicAggregate {
    fn name(&self) -> &str {
        "corpus_panic_agg"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(PanicAccumulator))
    }
}

/// `corpus_panic_window(x)`: its evaluator panics.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PanicWindow {
    signature: Signature,
}

impl Default for PanicWindow {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

#[derive(Debug)]
struct PanicEvaluator;

impl PartitionEvaluator for PanicEvaluator {
    fn evaluate_all(&mut self, _values: &[ArrayRef], _num_rows: usize) -> Result<ArrayRef> {
        panic!("window evaluator asked to panic")
    }
}

impl WindowUDFImpl for PanicWindow {
    fn name(&self) -> &str {
        "corpus_panic_window"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn partition_evaluator(
        &self,
        _: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(PanicEvaluator))
    }
    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(args.name(), DataType::Int64, true)))
    }
}

/// `corpus_panic_call()`: the table function panics when called.
#[derive(Debug, Default)]
pub struct PanicTableFunction;

impl TableFunctionImpl for PanicTableFunction {
    fn call_with_args(&self, _args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        panic!("table function asked to panic")
    }
}

/// Where a [`PanicTable`] panics.
#[derive(Debug, Clone, Copy)]
pub enum PanicAt {
    Scan,
    Stream,
}

/// A one-column table whose `scan` or stream panics.
#[derive(Debug)]
pub struct PanicTable(pub PanicAt);

fn one_column() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]))
}

#[async_trait]
impl TableProvider for PanicTable {
    fn schema(&self) -> SchemaRef {
        one_column()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match self.0 {
            PanicAt::Scan => panic!("scan asked to panic"),
            PanicAt::Stream => Ok(Arc::new(PanicExec::new())),
        }
    }
}

/// A plan whose stream panics when polled.
#[derive(Debug)]
struct PanicExec {
    properties: Arc<PlanProperties>,
}

impl PanicExec {
    fn new() -> Self {
        Self {
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(one_column()),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Incremental,
                Boundedness::Bounded,
            )),
        }
    }
}

impl DisplayAs for PanicExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PanicExec")
    }
}

impl ExecutionPlan for PanicExec {
    fn name(&self) -> &str {
        "PanicExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_plan::PhysicalExpr>,
        ) -> Result<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> Result<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }
    fn execute(
        &self,
        _partition: usize,
        _ctx: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = futures::stream::once(async {
            if true {
                panic!("stream asked to panic");
            }
            Ok::<RecordBatch, datafusion::error::DataFusionError>(RecordBatch::new_empty(
                one_column(),
            ))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            one_column(),
            stream,
        )))
    }
}

/// Adds an ELF constructor (`.init_array`) to the bundle that writes the file named by
/// `DF_PLUGIN_CORPUS_MARKER`: proof, when the file appears, that the bundle's code ran.
#[macro_export]
macro_rules! constructor {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static CORPUS_CONSTRUCTOR: extern "C" fn() = {
            extern "C" fn write_marker() {
                if let Some(path) = std::env::var_os("DF_PLUGIN_CORPUS_MARKER") {
                    let _ = std::fs::write(path, "the bundle's constructor ran");
                }
            }
            write_marker
        };
    };
}
