//! `FFI_ExprPlanner`: DataFusion's `ExprPlanner` across the ABI.
//!
//! Expression planners fire for every binary operator, literal and special form of every query,
//! so the hooks are opt-in: the struct says which hooks ([`hooks`]) and which binary operators
//! the planner wants, and [`ForeignExprPlanner`] answers `Original` for everything else without
//! crossing the boundary. Operands whose encoding fails (subqueries, outer references) are not
//! offered either: the planner could not have seen them, so DataFusion plans them as usual.

use std::ffi::c_void;
use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContextProvider;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::FFI_Result;
use stabby::slice::Slice as SSlice;
use stabby::str::Str as SStr;
use stabby::string::String as SString;
use stabby::vec::Vec as SVec;

use super::codec::{expr_to_bytes, schema_from_bytes, schema_to_bytes};
use super::{FFI_PlannerResult, TaskContextCache, ffi_guard};

/// The hooks of `ExprPlanner` that can cross the boundary. A planner sets the bits of the hooks
/// it implements; the host never calls it for the others.
pub mod hooks {
    pub const BINARY_OP: u32 = 1 << 0;
    pub const ARRAY_LITERAL: u32 = 1 << 1;
    pub const POSITION: u32 = 1 << 2;
    pub const EXTRACT: u32 = 1 << 3;
    pub const SUBSTRING: u32 = 1 << 4;
    pub const STRUCT_LITERAL: u32 = 1 << 5;
    pub const OVERLAY: u32 = 1 << 6;
    pub const MAKE_MAP: u32 = 1 << 7;
    /// Every hook this ABI version carries.
    pub const ALL: u32 = (1 << 8) - 1;
}

/// What an expression planner wants to be asked about.
#[derive(Debug, Clone, Default)]
pub struct ExprPlannerHooks {
    /// [`hooks`] bits.
    pub hooks: u32,
    /// The binary operators `plan_binary_op` handles (the `BINARY_OP` bit is implied).
    pub binary_ops: Vec<BinaryOperator>,
    /// Whether the planner reads the input schema. Without it the planner gets an empty schema
    /// and the host saves encoding the schema on every call.
    pub needs_schema: bool,
}

impl ExprPlannerHooks {
    /// A planner of these binary operators.
    pub fn binary_ops(ops: impl IntoIterator<Item = BinaryOperator>) -> Self {
        Self {
            hooks: hooks::BINARY_OP,
            binary_ops: ops.into_iter().collect(),
            needs_schema: false,
        }
    }

    /// Adds hooks ([`hooks`] bits).
    pub fn with_hooks(mut self, bits: u32) -> Self {
        self.hooks |= bits & hooks::ALL;
        self
    }

    /// The planner reads the input schema (e.g. to check operand types).
    pub fn with_schema(mut self) -> Self {
        self.needs_schema = true;
        self
    }
}

/// A stable struct for sharing an [`ExprPlanner`] across FFI boundaries.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ExprPlanner {
    /// The planner's name in its bundle's manifest.
    pub name: SString,
    /// [`hooks`] bits of the hooks it implements.
    pub hooks: u32,
    /// `BinaryOperator` Display spellings of the operators it plans.
    pub binary_ops: SVec<SString>,
    /// False: the host passes an empty schema.
    pub needs_schema: bool,

    /// `RawBinaryExpr`: operands as `LogicalExprNode` bytes; `schema` as `DfSchema` bytes.
    pub plan_binary_op: unsafe extern "C" fn(
        planner: &Self,
        op: SStr,
        left: SSlice<u8>,
        right: SSlice<u8>,
        schema: SSlice<u8>,
        host: &FFI_TaskContextProvider,
    ) -> FFI_Result<FFI_PlannerResult>,

    /// The hooks that take a list of expressions (`hook` is their [`hooks`] bit);
    /// `flag` is `is_named_struct` for `STRUCT_LITERAL`.
    pub plan_exprs: unsafe extern "C" fn(
        planner: &Self,
        hook: u32,
        exprs: SSlice<SVec<u8>>,
        flag: bool,
        schema: SSlice<u8>,
        host: &FFI_TaskContextProvider,
    ) -> FFI_Result<FFI_PlannerResult>,

    pub clone: unsafe extern "C" fn(planner: &Self) -> Self,
    pub release: unsafe extern "C" fn(planner: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl Send for FFI_ExprPlanner {}
unsafe impl Sync for FFI_ExprPlanner {}

struct ExprPlannerPrivateData {
    planner: Arc<dyn ExprPlanner>,
    hooks: ExprPlannerHooks,
    tasks: Arc<TaskContextCache>,
}

impl FFI_ExprPlanner {
    fn inner(&self) -> &ExprPlannerPrivateData {
        // SAFETY: only the producer's own functions call this, with its own private data.
        unsafe { &*(self.private_data as *const ExprPlannerPrivateData) }
    }

    /// Exports `planner` for the hooks in `hooks`.
    pub fn new(name: &str, planner: Arc<dyn ExprPlanner>, hooks: ExprPlannerHooks) -> Self {
        Self::from_private(
            name.into(),
            ExprPlannerPrivateData {
                planner,
                hooks,
                tasks: Arc::default(),
            },
        )
    }

    fn from_private(name: SString, data: ExprPlannerPrivateData) -> Self {
        let mut bits = data.hooks.hooks & hooks::ALL;
        if !data.hooks.binary_ops.is_empty() {
            bits |= hooks::BINARY_OP;
        }
        Self {
            name,
            hooks: bits,
            binary_ops: data
                .hooks
                .binary_ops
                .iter()
                .map(|op| SString::from(op.to_string().as_str()))
                .collect(),
            needs_schema: data.hooks.needs_schema,
            plan_binary_op: plan_binary_op_fn_wrapper,
            plan_exprs: plan_exprs_fn_wrapper,
            clone: clone_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: crate::ffi::library_marker_id,
        }
    }
}

fn planned(result: PlannerResult<impl Sized>) -> Result<FFI_PlannerResult> {
    Ok(match result {
        PlannerResult::Planned(e) => {
            FFI_PlannerResult::Planned(expr_to_bytes(&e)?.into_iter().collect())
        }
        PlannerResult::Original(_) => FFI_PlannerResult::Original,
    })
}

unsafe extern "C" fn plan_binary_op_fn_wrapper(
    planner: &FFI_ExprPlanner,
    op: SStr,
    left: SSlice<u8>,
    right: SSlice<u8>,
    schema: SSlice<u8>,
    host: &FFI_TaskContextProvider,
) -> FFI_Result<FFI_PlannerResult> {
    ffi_guard(
        || format!("expression planner '{}'", planner.name),
        || {
            let data = planner.inner();
            let Some(op) = data
                .hooks
                .binary_ops
                .iter()
                .find(|o| o.to_string() == op.as_str())
            else {
                return Ok(FFI_PlannerResult::Original);
            };
            let expr = RawBinaryExpr {
                op: op.clone(),
                left: data.tasks.decode_expr(host, &left)?,
                right: data.tasks.decode_expr(host, &right)?,
            };
            let schema = schema_from_bytes(&schema)?;
            planned(data.planner.plan_binary_op(expr, &schema)?)
        },
    )
}

unsafe extern "C" fn plan_exprs_fn_wrapper(
    planner: &FFI_ExprPlanner,
    hook: u32,
    exprs: SSlice<SVec<u8>>,
    flag: bool,
    schema: SSlice<u8>,
    host: &FFI_TaskContextProvider,
) -> FFI_Result<FFI_PlannerResult> {
    ffi_guard(
        || format!("expression planner '{}'", planner.name),
        || {
            let data = planner.inner();
            let args = exprs
                .iter()
                .map(|e| data.tasks.decode_expr(host, e))
                .collect::<Result<Vec<_>>>()?;
            let p = &data.planner;
            let result = match hook {
                hooks::ARRAY_LITERAL => p.plan_array_literal(args, &schema_from_bytes(&schema)?)?,
                hooks::POSITION => p.plan_position(args)?,
                hooks::EXTRACT => p.plan_extract(args)?,
                hooks::SUBSTRING => p.plan_substring(args)?,
                hooks::STRUCT_LITERAL => p.plan_struct_literal(args, flag)?,
                hooks::OVERLAY => p.plan_overlay(args)?,
                hooks::MAKE_MAP => p.plan_make_map(args)?,
                other => {
                    return Err(DataFusionError::Internal(format!(
                        "unknown expression planner hook {other:#x}"
                    )));
                }
            };
            planned(result)
        },
    )
}

unsafe extern "C" fn clone_fn_wrapper(planner: &FFI_ExprPlanner) -> FFI_ExprPlanner {
    let data = planner.inner();
    FFI_ExprPlanner::from_private(
        planner.name.clone(),
        ExprPlannerPrivateData {
            planner: Arc::clone(&data.planner),
            hooks: data.hooks.clone(),
            tasks: Arc::clone(&data.tasks),
        },
    )
}

unsafe extern "C" fn release_fn_wrapper(planner: &mut FFI_ExprPlanner) {
    if planner.private_data.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `from_private`; released once (nulled below).
    drop(unsafe { Box::from_raw(planner.private_data as *mut ExprPlannerPrivateData) });
    planner.private_data = std::ptr::null_mut();
}

impl Clone for FFI_ExprPlanner {
    fn clone(&self) -> Self {
        // SAFETY: the producer's clone function.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_ExprPlanner {
    fn drop(&mut self) {
        // SAFETY: the producer's release function.
        unsafe { (self.release)(self) }
    }
}

/// The host side of an [`FFI_ExprPlanner`]: an [`ExprPlanner`] that crosses the boundary only
/// for the hooks and operators the bundle declared.
pub struct ForeignExprPlanner {
    ffi: FFI_ExprPlanner,
    /// Who it is in errors: "expression planner 'x' of plugin bundle 'y'".
    label: String,
    binary_ops: Vec<String>,
    /// The host session: decodes what the bundle returns, and is what the bundle decodes with.
    session: Arc<dyn TaskContextProvider>,
    ffi_session: FFI_TaskContextProvider,
}

impl std::fmt::Debug for ForeignExprPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

unsafe impl Send for ForeignExprPlanner {}
unsafe impl Sync for ForeignExprPlanner {}

impl ForeignExprPlanner {
    pub fn new(ffi: FFI_ExprPlanner, bundle: &str, session: Arc<dyn TaskContextProvider>) -> Self {
        Self {
            label: format!(
                "expression planner '{}' of plugin bundle '{bundle}'",
                ffi.name
            ),
            binary_ops: ffi.binary_ops.iter().map(|s| s.to_string()).collect(),
            ffi_session: FFI_TaskContextProvider::from(&session),
            session,
            ffi,
        }
    }

    pub fn name(&self) -> &str {
        self.ffi.name.as_str()
    }

    fn schema_bytes(&self, schema: &DFSchema) -> Result<Vec<u8>> {
        if self.ffi.needs_schema {
            schema_to_bytes(schema)
        } else {
            Ok(Vec::new())
        }
    }

    /// Turns the bundle's answer into a planner result; `original` is the input we kept.
    fn finish<T>(
        &self,
        result: FFI_Result<FFI_PlannerResult>,
        original: T,
    ) -> Result<PlannerResult<T>> {
        match result {
            FFI_Result::Ok(FFI_PlannerResult::Original) => Ok(PlannerResult::Original(original)),
            FFI_Result::Ok(FFI_PlannerResult::Planned(bytes)) => {
                let expr = super::codec::expr_from_bytes(&bytes, &self.session.task_ctx())
                    .map_err(|e| {
                        DataFusionError::Plan(format!(
                            "{} returned an expression the host cannot decode: {e}",
                            self.label
                        ))
                    })?;
                Ok(PlannerResult::Planned(expr))
            }
            FFI_Result::Err(e) => Err(DataFusionError::Plan(format!("{}: {e}", self.label))),
        }
    }

    fn plan_list(
        &self,
        hook: u32,
        args: Vec<Expr>,
        flag: bool,
        schema: Option<&DFSchema>,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        if self.ffi.hooks & hook == 0 {
            return Ok(PlannerResult::Original(args));
        }
        let Ok(encoded) = args
            .iter()
            .map(|e| expr_to_bytes(e).map(|b| b.into_iter().collect::<SVec<u8>>()))
            .collect::<Result<Vec<_>>>()
        else {
            return Ok(PlannerResult::Original(args));
        };
        let schema = match schema {
            Some(s) => self.schema_bytes(s)?,
            None => Vec::new(),
        };
        // SAFETY: the bundle's function, with borrowed arguments valid for the call.
        let result = unsafe {
            (self.ffi.plan_exprs)(
                &self.ffi,
                hook,
                encoded.as_slice().into(),
                flag,
                schema.as_slice().into(),
                &self.ffi_session,
            )
        };
        self.finish(result, args)
    }
}

impl ExprPlanner for ForeignExprPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        if self.ffi.hooks & hooks::BINARY_OP == 0 {
            return Ok(PlannerResult::Original(expr));
        }
        let op = expr.op.to_string();
        if !self.binary_ops.contains(&op) {
            return Ok(PlannerResult::Original(expr));
        }
        let (Ok(left), Ok(right)) = (expr_to_bytes(&expr.left), expr_to_bytes(&expr.right)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let schema = self.schema_bytes(schema)?;
        // SAFETY: the bundle's function, with borrowed arguments valid for the call.
        let result = unsafe {
            (self.ffi.plan_binary_op)(
                &self.ffi,
                op.as_str().into(),
                left.as_slice().into(),
                right.as_slice().into(),
                schema.as_slice().into(),
                &self.ffi_session,
            )
        };
        self.finish(result, expr)
    }

    fn plan_array_literal(
        &self,
        exprs: Vec<Expr>,
        schema: &DFSchema,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::ARRAY_LITERAL, exprs, false, Some(schema))
    }

    fn plan_position(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::POSITION, args, false, None)
    }

    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::EXTRACT, args, false, None)
    }

    fn plan_substring(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::SUBSTRING, args, false, None)
    }

    fn plan_struct_literal(
        &self,
        args: Vec<Expr>,
        is_named_struct: bool,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::STRUCT_LITERAL, args, is_named_struct, None)
    }

    fn plan_overlay(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::OVERLAY, args, false, None)
    }

    fn plan_make_map(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::MAKE_MAP, args, false, None)
    }
}
