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
//!   cached `TaskContext`). Functions and tables a planner makes itself travel beside the bytes
//!   as datafusion-ffi objects ([`objects`]), so its answer may use anything it can build;
//! - schemas: `protobuf::DfSchema` bytes (qualifiers included); fields: the Arrow C schema;
//! - SQL AST nodes (`TableFactor`, `DataType`, SQL expressions): their SQL text, re-parsed on the
//!   other side with the session's dialect and recursion limit, and refused unless the parser
//!   consumed all of it (sqlparser's `parse_*` functions stop at the first token they do not
//!   understand). The handshake already proved both sides use the same sqlparser version.
//!
//! Every `extern "C"` body on both sides runs under `catch_unwind`: a panicking planner or host
//! callback becomes an error of the query being planned.

pub mod codec;
pub mod expr;
pub mod objects;
pub mod relation;
pub mod type_planner;

#[cfg(test)]
mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, dialect_from_str};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::FFI_Result;
use stabby::vec::Vec as SVec;

pub use expr::{FFI_ExprPlanner, ForeignExprPlanner};
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

/// The dialect DataFusion names `name` (`datafusion.sql_parser.dialect`).
pub(crate) fn dialect(name: &str) -> Result<Box<dyn Dialect>> {
    if name.is_empty() {
        return Ok(Box::new(GenericDialect {}));
    }
    dialect_from_str(name).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "unsupported SQL dialect {name:?} for plugin planners"
        ))
    })
}

/// Parses `sql` with `parse`, requiring that it consumes every token: sqlparser's `parse_*`
/// functions stop at the first token they do not understand and would silently drop the rest.
pub(crate) fn parse_sql<T>(
    sql: &str,
    dialect_name: &str,
    recursion_limit: usize,
    what: &str,
    parse: impl FnOnce(
        &mut Parser<'_>,
    ) -> std::result::Result<T, datafusion::sql::sqlparser::parser::ParserError>,
) -> Result<T> {
    let dialect = dialect(dialect_name)?;
    let bad = |e: String| {
        DataFusionError::Plan(format!(
            "cannot re-parse the {what} `{sql}` on the other side of the plugin boundary: {e}"
        ))
    };
    let mut parser = Parser::new(dialect.as_ref())
        .with_recursion_limit(recursion_limit.max(1))
        .try_with_sql(sql)
        .map_err(|e| bad(e.to_string()))?;
    let value = parse(&mut parser).map_err(|e| bad(e.to_string()))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(bad(format!("unexpected `{}` after the {what}", next.token)));
    }
    Ok(value)
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
