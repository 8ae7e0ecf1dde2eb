//! SQL planners across the ABI: expression, relation and type planners.
//!
//! datafusion-ffi 55 has no FFI for DataFusion's `ExprPlanner`, `RelationPlanner` and
//! `TypePlanner`; these modules add it in datafusion-ffi's style. A bundle author implements the
//! ordinary DataFusion traits and hands them to the toolkit; the host wraps what it receives in
//! `Foreign*` planners that implement the same traits.
//!
//! What crosses, and how:
//! - expressions and logical plans: datafusion-proto bytes. Functions travel by name and are
//!   resolved in the receiver's function registry (on the bundle side: the host's, through a
//!   cached `TaskContext`; on the host side: the session's, one name at a time, see
//!   [`PlannerSession`]). Functions and tables a planner makes itself travel beside the bytes
//!   as datafusion-ffi objects ([`objects`]), so its answer may use anything it can build;
//! - schemas: `protobuf::DfSchema` bytes (qualifiers included); fields: the Arrow C schema;
//! - SQL AST nodes (`TableFactor`, `DataType`, SQL expressions, identifiers, aliases):
//!   sqlparser's serde JSON. Both sides build the same shapes because the handshake refuses a
//!   bundle with planners built against another sqlparser version, and JSON is exact where SQL
//!   text is not (sqlparser prints a few nodes as SQL that reads back differently, and
//!   re-parsing would need the dialect and stop silently at a token it does not understand).
//!
//! Every `extern "C"` body on both sides runs under `catch_unwind`: a panicking planner or host
//! callback becomes an error of the query being planned.

pub mod codec;
pub mod expr;
pub mod lean;
pub mod objects;
pub mod relation;
pub mod type_planner;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{TaskContext, TaskContextProvider};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::FFI_Result;
use datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stabby::vec::Vec as SVec;

pub use expr::{FFI_ExprPlanner, ForeignExprPlanner};
use objects::{FFI_PlanObjects, PlanObjectExporter};
pub use relation::{FFI_RelationPlanner, FFI_RelationPlannerContext, ForeignRelationPlanner};
pub use type_planner::{FFI_TypePlanner, ForeignTypePlanner};

/// The outcome of one planner call.
#[repr(C, u8)]
#[derive(Debug)]
pub enum FFI_PlannerResult {
    /// The planner planned it: a `protobuf::LogicalExprNode`, and the functions it made.
    Planned {
        expr: SVec<u8>,
        objects: objects::FFI_PlanObjects,
    },
    /// Not for this planner: the caller goes on with the input it kept (nothing is decoded, so
    /// nothing is lost in a round trip).
    Original,
}

/// Runs `f`, turning an error or a panic into an `FFI_Result::Err` that says who failed. `who`
/// runs only on a panic: every planner call goes through here.
pub(crate) fn ffi_guard<T>(
    who: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<T>,
) -> FFI_Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => FFI_Result::Ok(v),
        Ok(Err(e)) => FFI_Result::Err(e.to_string().as_str().into()),
        Err(payload) => FFI_Result::Err(
            format!(
                "{} panicked: {}",
                who(),
                crate::toolkit::panic::panic_message(payload.as_ref())
            )
            .as_str()
            .into(),
        ),
    }
}

/// A SQL AST node in the form it crosses the boundary: sqlparser's serde JSON.
pub fn ast_to_json<T: Serialize>(node: &T, what: &str) -> Result<String> {
    serde_json::to_string(node).map_err(|e| {
        DataFusionError::Plan(format!(
            "cannot send the {what} across the plugin boundary: {e}"
        ))
    })
}

/// A SQL AST node back from its JSON form.
pub(crate) fn ast_from_json<T: DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| {
        DataFusionError::Plan(format!(
            "cannot read the {what} sent across the plugin boundary: {e}"
        ))
    })
}

/// The host session `Foreign*Planner`s are installed in, as they see it: the task context
/// provider their bundle calls back into, and the session itself, which the host decodes the
/// bundle's answers against.
///
/// The host does not decode an answer with `task_ctx()`: that copies every function of the
/// session (DataFusion's ~300 built-ins) into a new `TaskContext`, which each hook call paid to
/// read an answer naming a function or two: over half of what an expression hook cost the
/// host. It decodes with the session's configuration and runtime alone ([`AnswerContext`]).
pub trait PlannerSession: TaskContextProvider + Send + Sync {
    /// The session the planners are installed in, once it exists and while it lives.
    fn session(&self) -> Option<Arc<SessionContext>>;
}

/// What the host decodes one answer against: the session's configuration and runtime in a task
/// context with no functions, and the session, in which [`codec::HostCodec`] looks up each
/// function by the name the answer gives it. Made per answer, so a function or option changed
/// since the last one is seen, as with `task_ctx()`.
pub(crate) struct AnswerContext {
    pub(crate) task: Arc<TaskContext>,
    pub(crate) functions: Option<Arc<SessionContext>>,
}

impl AnswerContext {
    pub(crate) fn of(session: &dyn PlannerSession) -> Self {
        let functions = session.session();
        let task = match &functions {
            Some(ctx) => {
                let state = ctx.state_ref();
                let state = state.read();
                TaskContext::new(
                    None,
                    state.session_id().to_owned(),
                    state.config().clone(),
                    HashMap::new(),
                    HashMap::new(),
                    HashMap::new(),
                    HashMap::new(),
                    Arc::clone(state.runtime_env()),
                )
            }
            None => TaskContext::default(),
        };
        Self {
            task: Arc::new(task),
            functions,
        }
    }

    /// A codec for the answer's objects that resolves the session's functions by name.
    pub(crate) fn codec(&self, objects: &FFI_PlanObjects) -> codec::HostCodec {
        codec::HostCodec::new(objects).with_functions(self.functions.clone())
    }
}

/// A bundle-side cache of the host's `TaskContext`. Converting the host's task context crosses
/// every function the session has, so it is done once and again only when decoding fails (a
/// function registered since); decoded functions are only used to plan and travel back to the
/// host by name, so a stale cache cannot change what runs.
#[derive(Debug, Default)]
pub(crate) struct TaskContextCache(Mutex<Option<Arc<TaskContext>>>);

impl TaskContextCache {
    fn fetch(&self, provider: &FFI_TaskContextProvider, fresh: bool) -> Result<Arc<TaskContext>> {
        if !fresh {
            let cached = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(ctx) = cached {
                return Ok(ctx);
            }
        }
        // Not under the lock: the conversion calls into the host.
        let ctx = <Arc<TaskContext>>::try_from(provider)?;
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&ctx));
        Ok(ctx)
    }

    /// The cached context (fetched on first use).
    pub(crate) fn get(&self, provider: &FFI_TaskContextProvider) -> Result<Arc<TaskContext>> {
        self.fetch(provider, false)
    }

    /// Decodes with the cached context, refreshing it once if that fails.
    pub(crate) fn decode<T>(
        &self,
        provider: &FFI_TaskContextProvider,
        decode: impl Fn(&TaskContext) -> Result<T>,
    ) -> Result<T> {
        match decode(self.get(provider)?.as_ref()) {
            Ok(v) => Ok(v),
            Err(_) => decode(self.fetch(provider, true)?.as_ref()),
        }
    }

    pub(crate) fn decode_expr(
        &self,
        provider: &FFI_TaskContextProvider,
        bytes: &[u8],
    ) -> Result<Expr> {
        self.decode(provider, |ctx| codec::expr_from_bytes(bytes, ctx))
    }
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// A number no earlier planner call had: what the placeholders of one call carry.
pub(crate) fn next_nonce() -> u64 {
    NONCE.fetch_add(1, Ordering::Relaxed)
}

/// How a bundle's planner reads what the host sends and writes its answers.
///
/// The general codec ([`GeneralCodec`]) reads host expressions with the host session's
/// functions and exports the tables and functions a planner made; the lean one
/// ([`lean::LeanCodec`]) needs neither. The planner structs hold it as a trait object made by
/// their constructor, so a bundle of lean planners links none of the general codec's code.
pub(crate) trait PlannerCodec: Send + Sync {
    /// A host expression from its `LogicalExprNode` bytes.
    fn read_expr(&self, bytes: &[u8], host: &FFI_TaskContextProvider) -> Result<Expr>;

    /// The planner's expression as `LogicalExprNode` bytes, and the objects they refer to.
    fn write_expr(
        &self,
        expr: &Expr,
        host: &FFI_TaskContextProvider,
    ) -> Result<(Vec<u8>, FFI_PlanObjects)>;

    /// A relation planner's plan (over [`codec::HostPlanRef`] placeholders) as
    /// `LogicalPlanNode` bytes, and the objects they refer to.
    fn write_plan(
        &self,
        plan: &LogicalPlan,
        host: &FFI_TaskContextProvider,
    ) -> Result<(Vec<u8>, FFI_PlanObjects)>;

    /// The host session's functions and options, which a relation planner's
    /// `ContextProvider` answers from (`None`: it knows no functions).
    fn session(&self, host: &FFI_TaskContextProvider) -> Result<Option<Arc<TaskContext>>>;
}

/// The codec of `FFI_ExprPlanner::new` and `FFI_RelationPlanner::new`: host expressions
/// decoded with the host's functions (its task context, cached), answers that may carry the
/// planner's own tables and functions.
pub(crate) struct GeneralCodec {
    tasks: TaskContextCache,
    exporter: Arc<dyn PlanObjectExporter>,
}

impl GeneralCodec {
    pub(crate) fn new(exporter: Arc<dyn PlanObjectExporter>) -> Self {
        Self {
            tasks: TaskContextCache::default(),
            exporter,
        }
    }

    fn bundle_codec(&self, host: &FFI_TaskContextProvider) -> Result<codec::BundleCodec> {
        // Encode with the context the planner saw: the host's functions travel by name.
        let task = self.tasks.get(host)?;
        Ok(codec::BundleCodec::new(
            task,
            host.clone(),
            Arc::clone(&self.exporter),
        ))
    }
}

impl PlannerCodec for GeneralCodec {
    fn read_expr(&self, bytes: &[u8], host: &FFI_TaskContextProvider) -> Result<Expr> {
        self.tasks.decode_expr(host, bytes)
    }

    fn write_expr(
        &self,
        expr: &Expr,
        host: &FFI_TaskContextProvider,
    ) -> Result<(Vec<u8>, FFI_PlanObjects)> {
        let codec = self.bundle_codec(host)?;
        let bytes = codec::expr_to_bytes_with(expr, &codec)?;
        Ok((bytes, codec.finish()))
    }

    fn write_plan(
        &self,
        plan: &LogicalPlan,
        host: &FFI_TaskContextProvider,
    ) -> Result<(Vec<u8>, FFI_PlanObjects)> {
        let codec = self.bundle_codec(host)?;
        let bytes = logical_plan_to_bytes_with_extension_codec(plan, &codec)?;
        Ok((bytes.to_vec(), codec.finish()))
    }

    fn session(&self, host: &FFI_TaskContextProvider) -> Result<Option<Arc<TaskContext>>> {
        self.tasks.get(host).map(Some)
    }
}
