//! `FFI_PlanRunner`: executes a bundle's own plans with a configuration bound once, and
//! returns [`FFI_BatchStream`]s (plugin ABI 1.3).
//!
//! datafusion-ffi's `FFI_ExecutionPlan::execute` takes an `FFI_TaskContext`, which the bundle
//! turns back into a task context on every call: the whole `ConfigOptions` as a string map
//! and back, every function of the registry, and a fresh `RuntimeEnv`; and its stream exports
//! the schema with every batch (see [`super::batch_stream`]). A scan's partitions of one query
//! share one configuration, and a scan's stream looks up no function. A runner is the
//! configuration converted once: the host binds one per configuration (the same `Arc` for
//! every query of a session until a `SET`), and then each `execute` sends only the plan, the
//! partition and the two ids.
//!
//! The plan must be one the bundle made (an `FFI_ExecutionPlan` whose library marker is the
//! bundle's datafusion-ffi): datafusion-ffi then hands back the bundle's own plan object, and
//! the runner executes exactly what `FFI_ExecutionPlan::execute` would have.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use datafusion::common::DataFusionError;
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_ffi::config::FFI_ConfigOptions;
use datafusion_ffi::execution_plan::FFI_ExecutionPlan;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use stabby::string::String as SString;
use tokio::runtime::Handle;

use super::batch_stream::{FFI_BatchStream, ForeignBatchStream};
use super::planner::ffi_guard;

/// ABI 1.3: `extern "C" fn(FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner>`, a runner of the
/// bundle's plans bound to that configuration.
pub const PLAN_RUNNER_SYMBOL: &str = "df_plugin_plan_runner";

/// The type of [`PLAN_RUNNER_SYMBOL`].
pub type PlanRunnerFn = extern "C" fn(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner>;

/// How many bound runners a [`ForeignPlanRunner`] keeps (one per live configuration).
const BOUND_RUNNERS: usize = 16;

/// A stable struct that executes the producer's plans with one configuration.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_PlanRunner {
    /// Executes partition `partition` of `plan`, which this image made.
    pub execute: unsafe extern "C" fn(
        runner: &Self,
        plan: &FFI_ExecutionPlan,
        partition: usize,
        session_id: SString,
        task_id: FFI_Option<SString>,
    ) -> FFI_Result<FFI_BatchStream>,
    pub clone: unsafe extern "C" fn(runner: &Self) -> Self,
    pub release: unsafe extern "C" fn(runner: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl Send for FFI_PlanRunner {}
unsafe impl Sync for FFI_PlanRunner {}

#[derive(Clone)]
struct PlanRunnerPrivateData {
    config: SessionConfig,
    env: Arc<RuntimeEnv>,
    runtime: Option<Handle>,
}

impl FFI_PlanRunner {
    /// A runner executing with `config` and `env`, inside `runtime` when given.
    pub fn new(config: SessionConfig, env: Arc<RuntimeEnv>, runtime: Option<Handle>) -> Self {
        Self::from_data(PlanRunnerPrivateData {
            config,
            env,
            runtime,
        })
    }

    fn from_data(data: PlanRunnerPrivateData) -> Self {
        Self {
            execute: execute_fn_wrapper,
            clone: clone_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: super::library_marker_id,
        }
    }

    fn data(&self) -> &PlanRunnerPrivateData {
        // SAFETY: `private_data` is the box `from_data` made; only this image reads it.
        unsafe { &*(self.private_data as *const PlanRunnerPrivateData) }
    }
}

unsafe extern "C" fn execute_fn_wrapper(
    runner: &FFI_PlanRunner,
    plan: &FFI_ExecutionPlan,
    partition: usize,
    session_id: SString,
    task_id: FFI_Option<SString>,
) -> FFI_Result<FFI_BatchStream> {
    let data = runner.data();
    ffi_guard(
        || "executing a scan".to_owned(),
        || {
            if (plan.library_marker_id)() != datafusion_ffi::get_library_marker_id() {
                return Err(DataFusionError::Internal(
                    "a plan runner was handed a plan another image made".into(),
                ));
            }
            // Our own struct: datafusion-ffi hands back the plan inside, not a wrapper.
            let plan = <Arc<dyn ExecutionPlan>>::try_from(plan)?;
            let task_id: Option<SString> = task_id.into();
            let context = TaskContext::new(
                task_id.map(|t| t.to_string()),
                session_id.to_string(),
                data.config.clone(),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                Arc::clone(&data.env),
            );
            let _entered = data.runtime.as_ref().map(Handle::enter);
            let stream = plan.execute(partition, Arc::new(context))?;
            Ok(FFI_BatchStream::new(stream, data.runtime.clone()))
        },
    )
}

unsafe extern "C" fn clone_fn_wrapper(runner: &FFI_PlanRunner) -> FFI_PlanRunner {
    FFI_PlanRunner::from_data(runner.data().clone())
}

unsafe extern "C" fn release_fn_wrapper(runner: &mut FFI_PlanRunner) {
    if runner.private_data.is_null() {
        return;
    }
    // SAFETY: the box `from_data` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(runner.private_data as *mut PlanRunnerPrivateData) });
    runner.private_data = std::ptr::null_mut();
}

impl Clone for FFI_PlanRunner {
    fn clone(&self) -> Self {
        // SAFETY: `clone` belongs to the image that made the struct.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_PlanRunner {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// Used by [`crate::export_bundle!`]: a runner of this bundle's plans, with the bundle's
/// runtime environment (where its scans registered their object stores) and tokio runtime.
#[doc(hidden)]
pub fn export_plan_runner(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
    ffi_guard(
        || "binding a plan runner".to_owned(),
        || {
            let config = SessionConfig::from(ConfigOptions::try_from(config)?);
            Ok(FFI_PlanRunner::new(
                config,
                crate::toolkit::session::runtime_env(),
                crate::toolkit::runtime::handle(),
            ))
        },
    )
}

/// The host side of a bundle's [`PLAN_RUNNER_SYMBOL`]: executes the bundle's plans through a
/// runner bound once per configuration.
#[derive(Debug)]
pub struct ForeignPlanRunner {
    bind: PlanRunnerFn,
    /// Bound runners with the configuration they were bound to; the `Arc` is kept, so its
    /// address identifies the configuration for as long as the entry lives.
    bound: Mutex<Vec<(Arc<ConfigOptions>, Arc<FFI_PlanRunner>)>>,
}

impl ForeignPlanRunner {
    pub fn new(bind: PlanRunnerFn) -> Self {
        Self {
            bind,
            bound: Mutex::new(Vec::new()),
        }
    }

    fn runner(&self, config: &Arc<ConfigOptions>) -> Result<Arc<FFI_PlanRunner>> {
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, runner)) = bound.iter().find(|(c, _)| Arc::ptr_eq(c, config)) {
            return Ok(Arc::clone(runner));
        }
        let runner = match (self.bind)(FFI_ConfigOptions::from(config.as_ref())) {
            FFI_Result::Ok(runner) => Arc::new(runner),
            FFI_Result::Err(e) => return Err(DataFusionError::Ffi(e.to_string())),
        };
        if bound.len() == BOUND_RUNNERS {
            bound.remove(0);
        }
        bound.push((Arc::clone(config), Arc::clone(&runner)));
        Ok(runner)
    }

    /// Executes partition `partition` of `plan` (which the bundle made) with `context`'s
    /// configuration and ids. The bundle sees no function registry: a plan's expressions were
    /// built when it was planned.
    pub fn execute(
        &self,
        plan: &FFI_ExecutionPlan,
        partition: usize,
        context: &TaskContext,
    ) -> Result<SendableRecordBatchStream> {
        let runner = self.runner(context.session_config().options())?;
        let task_id = context.task_id().map(|t| SString::from(t.as_str()));
        // SAFETY: `execute` belongs to the image that made the runner.
        let stream = unsafe {
            (runner.execute)(
                &runner,
                plan,
                partition,
                context.session_id().as_str().into(),
                task_id.into(),
            )
        };
        match stream {
            FFI_Result::Ok(stream) => Ok(Box::pin(ForeignBatchStream::try_new(stream)?)),
            FFI_Result::Err(e) => Err(DataFusionError::Ffi(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::execution::TaskContext;
    use futures::TryStreamExt;

    use super::*;

    static BINDS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn bind(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        BINDS.fetch_add(1, Ordering::SeqCst);
        export_plan_runner(config)
    }

    extern "C" fn bind_uncounted(config: FFI_ConfigOptions) -> FFI_Result<FFI_PlanRunner> {
        export_plan_runner(config)
    }

    extern "C" fn another_image() -> usize {
        0
    }

    /// A two-partition plan of one Int64 column, as a bundle would export it.
    fn exported_plan() -> (FFI_ExecutionPlan, Vec<Vec<RecordBatch>>) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = |v: Vec<i64>| {
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(v))])
                .expect("a valid batch")
        };
        let partitions = vec![
            vec![batch(vec![1, 2])],
            vec![batch(vec![3]), batch(vec![4])],
        ];
        let plan = MemorySourceConfig::try_new_exec(&partitions, schema, None).expect("a plan");
        (FFI_ExecutionPlan::new(plan, None), partitions)
    }

    #[tokio::test]
    async fn runs_every_partition_and_binds_a_configuration_once() {
        let (plan, partitions) = exported_plan();
        let runner = ForeignPlanRunner::new(bind);
        let context = TaskContext::default();
        let before = BINDS.load(Ordering::SeqCst);
        for (i, expected) in partitions.iter().enumerate() {
            let stream = runner.execute(&plan, i, &context).expect("executes");
            let got: Vec<RecordBatch> = stream.try_collect().await.expect("batches");
            assert_eq!(&got, expected);
        }
        assert_eq!(BINDS.load(Ordering::SeqCst) - before, 1);
    }

    #[tokio::test]
    async fn refuses_a_plan_another_image_made() {
        let (mut plan, _) = exported_plan();
        plan.library_marker_id = another_image;
        let runner = ForeignPlanRunner::new(bind_uncounted);
        let e = runner
            .execute(&plan, 0, &TaskContext::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("another image made"), "{e}");
    }
}
