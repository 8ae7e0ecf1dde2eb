//! The side table of a planner's answer: objects the answer refers to that the host does not
//! have — table providers and functions the planner made itself.
//!
//! datafusion-proto writes functions by name and asks the extension codec about everything else.
//! A function whose name the host's session knows travels by name, as datafusion-proto does it
//! (so a planner may build its own copy of a function its bundle exports, and the plan uses the
//! one the session registered); a function of another name, or a table, the planner built
//! travels beside the bytes as its datafusion-ffi struct, and the bytes carry its index. The
//! host turns each struct into its `Foreign*` object when it decodes the answer, so the plan it
//! runs calls back into the bundle.
//!
//! DataFusion compares a `Foreign*` function by identity, so a private function decoded twice
//! is two functions: one used in both `SELECT` and `GROUP BY` does not match itself. Export the
//! function (it then travels by name) when grouping by it.

use std::sync::{Arc, Mutex};

use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, AggregateUDFImpl, ScalarUDF, ScalarUDFImpl, WindowUDF, WindowUDFImpl,
};
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udwf::FFI_WindowUDF;
use stabby::vec::Vec as SVec;

/// How a bundle exports the objects its planners make. The toolkit's exporter wraps them in
/// the bundle's panic guards and runs tables on the bundle's runtime; the default one exports
/// them as they are.
///
/// Tables are exported without filter pushdown: pushed-down filters are decoded in the bundle
/// against the host's functions, and a filter over the planner's own functions (pushed through
/// its projection) could not be; the host filters above the scan instead.
pub trait PlanObjectExporter: Send + Sync {
    fn table_provider(
        &self,
        name: &TableReference,
        provider: Arc<dyn TableProvider>,
        host: &FFI_TaskContextProvider,
    ) -> FFI_TableProvider {
        let _ = name;
        FFI_TableProvider::new(provider, false, None, host.clone(), None)
    }

    fn scalar_udf(&self, udf: ScalarUDF) -> FFI_ScalarUDF {
        FFI_ScalarUDF::from(Arc::new(udf))
    }

    fn aggregate_udf(&self, udaf: AggregateUDF) -> FFI_AggregateUDF {
        FFI_AggregateUDF::from(Arc::new(udaf))
    }

    fn window_udf(&self, udwf: WindowUDF) -> FFI_WindowUDF {
        FFI_WindowUDF::from(Arc::new(udwf))
    }
}

/// Exports objects unguarded, with no runtime of their own.
#[derive(Debug, Default)]
pub struct DefaultPlanObjectExporter;

impl PlanObjectExporter for DefaultPlanObjectExporter {}

/// The objects of one answer, in the order the bytes refer to them.
#[repr(C)]
#[derive(Debug, Default)]
pub struct FFI_PlanObjects {
    pub tables: SVec<FFI_TableProvider>,
    pub scalar_udfs: SVec<FFI_ScalarUDF>,
    pub aggregate_udfs: SVec<FFI_AggregateUDF>,
    pub window_udfs: SVec<FFI_WindowUDF>,
}

#[derive(Default)]
struct Written {
    tables: Vec<FFI_TableProvider>,
    scalar_udfs: Vec<FFI_ScalarUDF>,
    aggregate_udfs: Vec<FFI_AggregateUDF>,
    window_udfs: Vec<FFI_WindowUDF>,
}

/// Bundle side: collects the objects while the answer is encoded.
pub(crate) struct PlanObjectsWriter {
    /// The host's functions as this bundle sees them: names it knows travel as names.
    task: Arc<TaskContext>,
    host: FFI_TaskContextProvider,
    exporter: Arc<dyn PlanObjectExporter>,
    written: Mutex<Written>,
}

impl std::fmt::Debug for PlanObjectsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanObjectsWriter")
    }
}

fn index_bytes(i: usize, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(i as u64).to_le_bytes());
}

impl PlanObjectsWriter {
    pub(crate) fn new(
        task: Arc<TaskContext>,
        host: FFI_TaskContextProvider,
        exporter: Arc<dyn PlanObjectExporter>,
    ) -> Self {
        Self {
            task,
            host,
            exporter,
            written: Mutex::default(),
        }
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn table(
        &self,
        name: &TableReference,
        provider: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) {
        let ffi = self.exporter.table_provider(name, provider, &self.host);
        let mut written = self.written();
        index_bytes(written.tables.len(), buf);
        written.tables.push(ffi);
    }

    /// Writes nothing for a function the host has by name.
    pub(crate) fn scalar_udf(&self, udf: &ScalarUDF, buf: &mut Vec<u8>) {
        if !self.task.scalar_functions().contains_key(udf.name()) {
            let ffi = self.exporter.scalar_udf(udf.clone());
            let mut written = self.written();
            index_bytes(written.scalar_udfs.len(), buf);
            written.scalar_udfs.push(ffi);
        }
    }

    pub(crate) fn aggregate_udf(&self, udaf: &AggregateUDF, buf: &mut Vec<u8>) {
        if !self.task.aggregate_functions().contains_key(udaf.name()) {
            let ffi = self.exporter.aggregate_udf(udaf.clone());
            let mut written = self.written();
            index_bytes(written.aggregate_udfs.len(), buf);
            written.aggregate_udfs.push(ffi);
        }
    }

    pub(crate) fn window_udf(&self, udwf: &WindowUDF, buf: &mut Vec<u8>) {
        if !self.task.window_functions().contains_key(udwf.name()) {
            let ffi = self.exporter.window_udf(udwf.clone());
            let mut written = self.written();
            index_bytes(written.window_udfs.len(), buf);
            written.window_udfs.push(ffi);
        }
    }

    pub(crate) fn finish(self) -> FFI_PlanObjects {
        let w = self.written.into_inner().unwrap_or_else(|p| p.into_inner());
        FFI_PlanObjects {
            tables: w.tables.into_iter().collect(),
            scalar_udfs: w.scalar_udfs.into_iter().collect(),
            aggregate_udfs: w.aggregate_udfs.into_iter().collect(),
            window_udfs: w.window_udfs.into_iter().collect(),
        }
    }
}

/// Host side: the objects of one answer, as the host's `Foreign*` objects.
#[derive(Debug, Default)]
pub(crate) struct PlanObjectsReader {
    tables: Vec<Arc<dyn TableProvider>>,
    scalar_udfs: Vec<Arc<ScalarUDF>>,
    aggregate_udfs: Vec<Arc<AggregateUDF>>,
    window_udfs: Vec<Arc<WindowUDF>>,
}

/// The index a side-table reference carries.
fn read_index(buf: &[u8], what: &str, name: &str, count: usize) -> Result<usize> {
    let bytes: [u8; 8] = buf.try_into().map_err(|_| {
        DataFusionError::Plan(format!(
            "the answer refers to {what} '{name}', which the host does not have and the planner did not send"
        ))
    })?;
    let i = u64::from_le_bytes(bytes);
    usize::try_from(i)
        .ok()
        .filter(|i| *i < count)
        .ok_or_else(|| {
            DataFusionError::Plan(format!(
                "the answer refers to {what} '{name}' as object {i}, but the planner sent {count}"
            ))
        })
}

impl PlanObjectsReader {
    pub(crate) fn new(objects: &FFI_PlanObjects) -> Self {
        Self {
            tables: objects
                .tables
                .iter()
                .map(<Arc<dyn TableProvider>>::from)
                .collect(),
            scalar_udfs: objects
                .scalar_udfs
                .iter()
                .map(|f| {
                    Arc::new(ScalarUDF::new_from_shared_impl(
                        <Arc<dyn ScalarUDFImpl>>::from(f),
                    ))
                })
                .collect(),
            aggregate_udfs: objects
                .aggregate_udfs
                .iter()
                .map(|f| {
                    Arc::new(AggregateUDF::new_from_shared_impl(<Arc<
                        dyn AggregateUDFImpl,
                    >>::from(
                        f
                    )))
                })
                .collect(),
            window_udfs: objects
                .window_udfs
                .iter()
                .map(|f| {
                    Arc::new(WindowUDF::new_from_shared_impl(
                        <Arc<dyn WindowUDFImpl>>::from(f),
                    ))
                })
                .collect(),
        }
    }

    pub(crate) fn table(
        &self,
        buf: &[u8],
        name: &TableReference,
    ) -> Result<Arc<dyn TableProvider>> {
        let i = read_index(buf, "table", &name.to_string(), self.tables.len())?;
        Ok(Arc::clone(&self.tables[i]))
    }

    pub(crate) fn scalar_udf(&self, buf: &[u8], name: &str) -> Result<Arc<ScalarUDF>> {
        let i = read_index(buf, "function", name, self.scalar_udfs.len())?;
        Ok(Arc::clone(&self.scalar_udfs[i]))
    }

    pub(crate) fn aggregate_udf(&self, buf: &[u8], name: &str) -> Result<Arc<AggregateUDF>> {
        let i = read_index(buf, "aggregate function", name, self.aggregate_udfs.len())?;
        Ok(Arc::clone(&self.aggregate_udfs[i]))
    }

    pub(crate) fn window_udf(&self, buf: &[u8], name: &str) -> Result<Arc<WindowUDF>> {
        let i = read_index(buf, "window function", name, self.window_udfs.len())?;
        Ok(Arc::clone(&self.window_udfs[i]))
    }
}
