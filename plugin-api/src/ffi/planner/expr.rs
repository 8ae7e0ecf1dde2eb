//! `FFI_ExprPlanner`: DataFusion's `ExprPlanner` across the ABI.
//!
//! Expression planners fire for every binary operator, literal and special form of every query,
//! so the hooks are opt-in: the struct says which hooks ([`hooks`]) and which binary operators
//! the planner wants, and [`ForeignExprPlanner`] answers `Original` for everything else without
//! crossing the boundary. Operands whose encoding fails (`EXISTS`/`IN` subqueries, outer references) are not
//! offered either: the planner could not have seen them, so DataFusion plans them as usual.
//!
//! Hooks whose input is not a list of expressions travel as expressions too: a field access as
//! `[base, parts...]` with the kind of access, a dictionary literal as `[k1, v1, k2, v2, ...]`,
//! an aggregate or window call as the `Expr::AggregateFunction` / `Expr::WindowFunction` it
//! describes, a compound identifier as the field's Arrow C schema, its qualifier and the names.

use std::ffi::c_void;
use std::sync::Arc;

use datafusion::arrow::datatypes::Field;
use datafusion::arrow::ffi::FFI_ArrowSchema;
use datafusion::common::{DFSchema, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContextProvider;
use datafusion::logical_expr::expr::{
    AggregateFunction, AggregateFunctionParams, WindowFunction, WindowFunctionParams,
};
use datafusion::logical_expr::planner::{
    ExprPlanner, PlannerResult, RawAggregateExpr, RawBinaryExpr, RawDictionaryExpr,
    RawFieldAccessExpr, RawWindowExpr,
};
use datafusion::logical_expr::{Expr, GetFieldAccess};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use stabby::slice::Slice as SSlice;
use stabby::str::Str as SStr;
use stabby::string::String as SString;
use stabby::vec::Vec as SVec;

use super::codec::{LastSchema, expr_from_bytes_with, expr_to_bytes, schema_to_bytes};
use super::lean::{self, LeanCodec};
use super::objects::{DefaultPlanObjectExporter, PlanObjectExporter};
use super::relation::FFI_TableReference;
use super::{
    AnswerContext, FFI_PlannerResult, GeneralCodec, PlannerCodec, PlannerSession, ffi_guard,
    next_nonce,
};

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
    pub const FIELD_ACCESS: u32 = 1 << 8;
    pub const DICTIONARY_LITERAL: u32 = 1 << 9;
    pub const COMPOUND_IDENTIFIER: u32 = 1 << 10;
    pub const AGGREGATE: u32 = 1 << 11;
    pub const WINDOW: u32 = 1 << 12;
    /// Every hook this ABI version carries.
    pub const ALL: u32 = (1 << 13) - 1;
    /// Not a hook: the planner is lean (ABI 1.16, see [`super::super::lean`]). The host sends
    /// it operands other than columns, literals and query parameters as typed placeholders.
    pub const LEAN: u32 = 1 << 31;
    /// The hooks a lean planner cannot take: their input is a whole function call.
    pub const NOT_LEAN: u32 = AGGREGATE | WINDOW;
}

/// The kinds of field access, the `variant` of a `FIELD_ACCESS` call.
mod access {
    /// `base['name']`: `[base, name literal]`.
    pub const NAMED: u32 = 0;
    /// `base[i]`: `[base, i]`.
    pub const INDEX: u32 = 1;
    /// `base[a:b:c]`: `[base, a, b, c]`.
    pub const RANGE: u32 = 2;
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

    /// Every other hook but `COMPOUND_IDENTIFIER` (`hook` is its [`hooks`] bit), its input as a
    /// list of expressions (see the module docs). `variant` is `is_named_struct` for
    /// `STRUCT_LITERAL` and the kind of access for `FIELD_ACCESS`.
    pub plan_exprs: unsafe extern "C" fn(
        planner: &Self,
        hook: u32,
        exprs: SSlice<SVec<u8>>,
        variant: u32,
        schema: SSlice<u8>,
        host: &FFI_TaskContextProvider,
    ) -> FFI_Result<FFI_PlannerResult>,

    /// `field`: the Arrow C schema of the matched field; `nested_names`: the names after it.
    pub plan_compound_identifier: unsafe extern "C" fn(
        planner: &Self,
        field: WrappedSchema,
        qualifier: FFI_Option<FFI_TableReference>,
        nested_names: SSlice<SString>,
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
    codec: Arc<dyn PlannerCodec>,
    schemas: LastSchema,
}

impl FFI_ExprPlanner {
    fn inner(&self) -> &ExprPlannerPrivateData {
        // SAFETY: only the producer's own functions call this, with its own private data.
        unsafe { &*(self.private_data as *const ExprPlannerPrivateData) }
    }

    /// Exports `planner` for the hooks in `hooks`.
    pub fn new(name: &str, planner: Arc<dyn ExprPlanner>, hooks: ExprPlannerHooks) -> Self {
        Self::new_with_exporter(name, planner, hooks, Arc::new(DefaultPlanObjectExporter))
    }

    /// As [`Self::new`], exporting the functions its expressions make with `exporter`.
    pub fn new_with_exporter(
        name: &str,
        planner: Arc<dyn ExprPlanner>,
        hooks: ExprPlannerHooks,
        exporter: Arc<dyn PlanObjectExporter>,
    ) -> Self {
        Self::from_private(
            name.into(),
            0,
            ExprPlannerPrivateData {
                planner,
                hooks,
                codec: Arc::new(GeneralCodec::new(exporter)),
                schemas: LastSchema::default(),
            },
        )
    }

    /// Exports `planner` as a lean planner ([`super::lean`]): it sees operands other than
    /// columns, literals and query parameters as typed placeholders, and its answers call
    /// functions by name. Its
    /// bundle links none of the general planner ABI's codec. Refuses the `AGGREGATE` and
    /// `WINDOW` hooks, whose input is a whole function call.
    pub fn new_lean(
        name: &str,
        planner: Arc<dyn ExprPlanner>,
        hooks: ExprPlannerHooks,
    ) -> Result<Self> {
        if hooks.hooks & hooks::NOT_LEAN != 0 {
            return Err(DataFusionError::Plan(format!(
                "expression planner '{name}': a lean planner cannot take the AGGREGATE or WINDOW hook (its input is a whole function call); export it with expr_planner"
            )));
        }
        Ok(Self::from_private(
            name.into(),
            hooks::LEAN,
            ExprPlannerPrivateData {
                planner,
                hooks,
                codec: Arc::new(LeanCodec),
                schemas: LastSchema::default(),
            },
        ))
    }

    /// `mode`: [`hooks::LEAN`] or 0.
    fn from_private(name: SString, mode: u32, data: ExprPlannerPrivateData) -> Self {
        let mut bits = (data.hooks.hooks & hooks::ALL) | (mode & hooks::LEAN);
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
            plan_compound_identifier: plan_compound_identifier_fn_wrapper,
            clone: clone_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: crate::ffi::library_marker_id,
        }
    }
}

impl ExprPlannerPrivateData {
    /// Encodes the planner's answer: functions the host gave it by name, its own in the side
    /// table.
    fn planned(
        &self,
        result: PlannerResult<impl Sized>,
        host: &FFI_TaskContextProvider,
    ) -> Result<FFI_PlannerResult> {
        Ok(match result {
            PlannerResult::Planned(e) => {
                let (expr, objects) = self.codec.write_expr(&e, host)?;
                FFI_PlannerResult::Planned {
                    expr: expr.into_iter().collect(),
                    objects,
                }
            }
            PlannerResult::Original(_) => FFI_PlannerResult::Original,
        })
    }
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
                left: data.codec.read_expr(&left, host)?,
                right: data.codec.read_expr(&right, host)?,
            };
            let schema = data.schemas.decode(&schema)?;
            data.planned(data.planner.plan_binary_op(expr, &schema)?, host)
        },
    )
}

fn malformed(hook: &str) -> DataFusionError {
    DataFusionError::Internal(format!("malformed {hook} call across the planner ABI"))
}

/// The input of a `FIELD_ACCESS` call, back from its expression list.
fn field_access(mut args: Vec<Expr>, variant: u32) -> Result<RawFieldAccessExpr> {
    let bad = || malformed("field access");
    if args.is_empty() {
        return Err(bad());
    }
    let expr = args.remove(0);
    let mut parts = args.into_iter().map(Box::new);
    let mut next = || parts.next().ok_or_else(bad);
    let field_access = match variant {
        access::NAMED => match *next()? {
            Expr::Literal(name, _) => GetFieldAccess::NamedStructField { name },
            _ => return Err(bad()),
        },
        access::INDEX => GetFieldAccess::ListIndex { key: next()? },
        access::RANGE => GetFieldAccess::ListRange {
            start: next()?,
            stop: next()?,
            stride: next()?,
        },
        _ => return Err(bad()),
    };
    Ok(RawFieldAccessExpr { field_access, expr })
}

/// The kind of a field access, the `variant` of its call.
fn access_kind(access: &GetFieldAccess) -> u32 {
    match access {
        GetFieldAccess::NamedStructField { .. } => access::NAMED,
        GetFieldAccess::ListIndex { .. } => access::INDEX,
        GetFieldAccess::ListRange { .. } => access::RANGE,
    }
}

/// A field access as its expression list (the inverse of [`field_access`]).
fn field_access_parts(access: &RawFieldAccessExpr) -> Vec<Expr> {
    let base = access.expr.clone();
    match &access.field_access {
        GetFieldAccess::NamedStructField { name } => {
            vec![base, Expr::Literal(name.clone(), None)]
        }
        GetFieldAccess::ListIndex { key } => vec![base, *key.clone()],
        GetFieldAccess::ListRange {
            start,
            stop,
            stride,
        } => vec![base, *start.clone(), *stop.clone(), *stride.clone()],
    }
}

fn aggregate_expr(raw: &RawAggregateExpr) -> Expr {
    Expr::AggregateFunction(AggregateFunction {
        func: Arc::clone(&raw.func),
        params: AggregateFunctionParams {
            args: raw.args.clone(),
            distinct: raw.distinct,
            filter: raw.filter.clone(),
            order_by: raw.order_by.clone(),
            null_treatment: raw.null_treatment,
        },
    })
}

fn raw_aggregate(expr: Expr) -> Result<RawAggregateExpr> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else {
        return Err(malformed("aggregate"));
    };
    Ok(RawAggregateExpr {
        func,
        args: params.args,
        distinct: params.distinct,
        filter: params.filter,
        order_by: params.order_by,
        null_treatment: params.null_treatment,
    })
}

fn window_expr(raw: &RawWindowExpr) -> Expr {
    Expr::WindowFunction(Box::new(WindowFunction {
        fun: raw.func_def.clone(),
        params: WindowFunctionParams {
            args: raw.args.clone(),
            partition_by: raw.partition_by.clone(),
            order_by: raw.order_by.clone(),
            window_frame: raw.window_frame.clone(),
            filter: raw.filter.clone(),
            null_treatment: raw.null_treatment,
            distinct: raw.distinct,
        },
    }))
}

fn raw_window(expr: Expr) -> Result<RawWindowExpr> {
    let Expr::WindowFunction(w) = expr else {
        return Err(malformed("window"));
    };
    let WindowFunction { fun, params } = *w;
    Ok(RawWindowExpr {
        func_def: fun,
        args: params.args,
        partition_by: params.partition_by,
        order_by: params.order_by,
        window_frame: params.window_frame,
        filter: params.filter,
        null_treatment: params.null_treatment,
        distinct: params.distinct,
    })
}

/// The single expression of a one-expression call.
fn only(mut args: Vec<Expr>, hook: &str) -> Result<Expr> {
    match (args.pop(), args.is_empty()) {
        (Some(e), true) => Ok(e),
        _ => Err(malformed(hook)),
    }
}

unsafe extern "C" fn plan_exprs_fn_wrapper(
    planner: &FFI_ExprPlanner,
    hook: u32,
    exprs: SSlice<SVec<u8>>,
    variant: u32,
    schema: SSlice<u8>,
    host: &FFI_TaskContextProvider,
) -> FFI_Result<FFI_PlannerResult> {
    ffi_guard(
        || format!("expression planner '{}'", planner.name),
        || {
            let data = planner.inner();
            if data.hooks.hooks & hook == 0 {
                return Ok(FFI_PlannerResult::Original);
            }
            let args = exprs
                .iter()
                .map(|e| data.codec.read_expr(e, host))
                .collect::<Result<Vec<_>>>()?;
            let p = &data.planner;
            let schema = || data.schemas.decode(&schema);
            let planned = |r| data.planned(r, host);
            match hook {
                hooks::ARRAY_LITERAL => planned(p.plan_array_literal(args, &*schema()?)?),
                hooks::POSITION => planned(p.plan_position(args)?),
                hooks::EXTRACT => planned(p.plan_extract(args)?),
                hooks::SUBSTRING => planned(p.plan_substring(args)?),
                hooks::STRUCT_LITERAL => planned(p.plan_struct_literal(args, variant != 0)?),
                hooks::OVERLAY => planned(p.plan_overlay(args)?),
                hooks::MAKE_MAP => planned(p.plan_make_map(args)?),
                hooks::FIELD_ACCESS => {
                    let access = field_access(args, variant)?;
                    data.planned(p.plan_field_access(access, &*schema()?)?, host)
                }
                hooks::DICTIONARY_LITERAL => {
                    if args.len() % 2 != 0 {
                        return Err(malformed("dictionary literal"));
                    }
                    let (mut keys, mut values) = (Vec::new(), Vec::new());
                    for (i, e) in args.into_iter().enumerate() {
                        if i % 2 == 0 { &mut keys } else { &mut values }.push(e);
                    }
                    let dict = RawDictionaryExpr { keys, values };
                    data.planned(p.plan_dictionary_literal(dict, &*schema()?)?, host)
                }
                hooks::AGGREGATE => {
                    let raw = raw_aggregate(only(args, "aggregate")?)?;
                    data.planned(p.plan_aggregate(raw)?, host)
                }
                hooks::WINDOW => {
                    let raw = raw_window(only(args, "window")?)?;
                    data.planned(p.plan_window(raw)?, host)
                }
                other => Err(DataFusionError::Internal(format!(
                    "unknown expression planner hook {other:#x}"
                ))),
            }
        },
    )
}

unsafe extern "C" fn plan_compound_identifier_fn_wrapper(
    planner: &FFI_ExprPlanner,
    field: WrappedSchema,
    qualifier: FFI_Option<FFI_TableReference>,
    nested_names: SSlice<SString>,
    host: &FFI_TaskContextProvider,
) -> FFI_Result<FFI_PlannerResult> {
    ffi_guard(
        || format!("expression planner '{}'", planner.name),
        || {
            let data = planner.inner();
            if data.hooks.hooks & hooks::COMPOUND_IDENTIFIER == 0 {
                return Ok(FFI_PlannerResult::Original);
            }
            let field = Field::try_from(&field.0)?;
            let qualifier = qualifier.as_ref().map(TableReference::from);
            let names: Vec<String> = nested_names.iter().map(|n| n.to_string()).collect();
            let result =
                data.planner
                    .plan_compound_identifier(&field, qualifier.as_ref(), &names)?;
            data.planned(result, host)
        },
    )
}

unsafe extern "C" fn clone_fn_wrapper(planner: &FFI_ExprPlanner) -> FFI_ExprPlanner {
    let data = planner.inner();
    FFI_ExprPlanner::from_private(
        planner.name.clone(),
        planner.hooks,
        ExprPlannerPrivateData {
            planner: Arc::clone(&data.planner),
            hooks: data.hooks.clone(),
            codec: Arc::clone(&data.codec),
            schemas: LastSchema::default(),
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

/// The operands of one call as sent: their bytes, and for a lean planner the nonce of their
/// placeholders and the expressions they stand for.
struct Sent {
    bytes: Vec<SVec<u8>>,
    lean: Option<(u64, Vec<Expr>)>,
}

/// The host side of an [`FFI_ExprPlanner`]: an [`ExprPlanner`] that crosses the boundary only
/// for the hooks and operators the bundle declared.
pub struct ForeignExprPlanner {
    ffi: FFI_ExprPlanner,
    /// Who it is in errors: "expression planner 'x' of plugin bundle 'y'".
    label: String,
    binary_ops: Vec<String>,
    /// The host session: decodes what the bundle returns, and is what the bundle decodes with.
    session: Arc<dyn PlannerSession>,
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
    pub fn new(ffi: FFI_ExprPlanner, bundle: &str, session: Arc<dyn PlannerSession>) -> Self {
        let provider: Arc<dyn TaskContextProvider> = Arc::clone(&session) as _;
        Self {
            label: format!(
                "expression planner '{}' of plugin bundle '{bundle}'",
                ffi.name
            ),
            binary_ops: ffi.binary_ops.iter().map(|s| s.to_string()).collect(),
            ffi_session: FFI_TaskContextProvider::from(&provider),
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

    /// Whether the planner is lean: it gets opaque operands ([`lean::operand`]).
    fn is_lean(&self) -> bool {
        self.ffi.hooks & hooks::LEAN != 0
    }

    /// `operands` encoded for the call: as they are, or for a lean planner as
    /// [`lean::operand`]s of a fresh nonce, which `Sent` keeps to put them back. `None` when
    /// one cannot be encoded (the planner could not have seen it).
    fn send(&self, operands: &[&Expr], schema: Option<&DFSchema>) -> Option<Sent> {
        let lean = self.is_lean().then(next_nonce);
        let bytes = operands
            .iter()
            .copied()
            .enumerate()
            .map(|(i, e)| match lean {
                Some(nonce) => expr_to_bytes(&lean::operand(e, schema, nonce, i)),
                None => expr_to_bytes(e),
            })
            .map(|b| b.map(|b| b.into_iter().collect::<SVec<u8>>()))
            .collect::<Result<Vec<_>>>()
            .ok()?;
        Some(Sent {
            bytes,
            lean: lean.map(|nonce| (nonce, operands.iter().map(|&e| e.clone()).collect())),
        })
    }

    /// Turns the bundle's answer into a planner result; `original` is the input we kept.
    fn finish<T>(
        &self,
        result: FFI_Result<FFI_PlannerResult>,
        original: T,
        sent: Option<Sent>,
    ) -> Result<PlannerResult<T>> {
        match result {
            FFI_Result::Ok(FFI_PlannerResult::Original) => Ok(PlannerResult::Original(original)),
            FFI_Result::Ok(FFI_PlannerResult::Planned { expr, objects }) => {
                let answer = AnswerContext::of(self.session.as_ref());
                let mut expr = expr_from_bytes_with(&expr, &answer.task, &answer.codec(&objects))
                    .map_err(|e| {
                    DataFusionError::Plan(format!(
                        "{} returned an expression the host cannot decode: {e}",
                        self.label
                    ))
                })?;
                if let Some((nonce, operands)) = sent.and_then(|s| s.lean) {
                    expr = lean::put_back(expr, nonce, &operands).map_err(|e| match e {
                        DataFusionError::Plan(m) => {
                            DataFusionError::Plan(format!("{}: {m}", self.label))
                        }
                        other => other,
                    })?;
                }
                Ok(PlannerResult::Planned(expr))
            }
            FFI_Result::Err(e) => Err(DataFusionError::Plan(format!("{}: {e}", self.label))),
        }
    }

    fn plan_list(
        &self,
        hook: u32,
        args: Vec<Expr>,
        variant: u32,
        schema: Option<&DFSchema>,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_hook(hook, args, |a| a.clone(), variant, schema)
    }

    /// Offers `input` to the bundle's `hook` as the expression list `exprs(&input)`; the input
    /// comes back unchanged (`Original`) when the hook was not declared or an expression cannot
    /// be encoded.
    fn plan_hook<T>(
        &self,
        hook: u32,
        input: T,
        exprs: impl FnOnce(&T) -> Vec<Expr>,
        variant: u32,
        schema: Option<&DFSchema>,
    ) -> Result<PlannerResult<T>> {
        if self.ffi.hooks & hook == 0 || (self.is_lean() && hook & hooks::NOT_LEAN != 0) {
            return Ok(PlannerResult::Original(input));
        }
        let operands = exprs(&input);
        let Some(sent) = self.send(&operands.iter().collect::<Vec<_>>(), schema) else {
            return Ok(PlannerResult::Original(input));
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
                sent.bytes.as_slice().into(),
                variant,
                schema.as_slice().into(),
                &self.ffi_session,
            )
        };
        self.finish(result, input, Some(sent))
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
        let Some(sent) = self.send(&[&expr.left, &expr.right], Some(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let [left, right] = sent.bytes.as_slice() else {
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
        self.finish(result, expr, Some(sent))
    }

    fn plan_array_literal(
        &self,
        exprs: Vec<Expr>,
        schema: &DFSchema,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::ARRAY_LITERAL, exprs, 0, Some(schema))
    }

    fn plan_position(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::POSITION, args, 0, None)
    }

    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::EXTRACT, args, 0, None)
    }

    fn plan_substring(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::SUBSTRING, args, 0, None)
    }

    fn plan_struct_literal(
        &self,
        args: Vec<Expr>,
        is_named_struct: bool,
    ) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::STRUCT_LITERAL, args, is_named_struct as u32, None)
    }

    fn plan_overlay(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::OVERLAY, args, 0, None)
    }

    fn plan_make_map(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        self.plan_list(hooks::MAKE_MAP, args, 0, None)
    }

    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        // The kind only: the operands are cloned for encoding once the hook is known declared.
        let variant = access_kind(&expr.field_access);
        self.plan_hook(
            hooks::FIELD_ACCESS,
            expr,
            field_access_parts,
            variant,
            Some(schema),
        )
    }

    fn plan_dictionary_literal(
        &self,
        expr: RawDictionaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawDictionaryExpr>> {
        let pairs = |d: &RawDictionaryExpr| {
            d.keys
                .iter()
                .zip(&d.values)
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect()
        };
        if expr.keys.len() != expr.values.len() {
            return Ok(PlannerResult::Original(expr));
        }
        self.plan_hook(hooks::DICTIONARY_LITERAL, expr, pairs, 0, Some(schema))
    }

    fn plan_compound_identifier(
        &self,
        field: &Field,
        qualifier: Option<&TableReference>,
        nested_names: &[String],
    ) -> Result<PlannerResult<Vec<Expr>>> {
        if self.ffi.hooks & hooks::COMPOUND_IDENTIFIER == 0 {
            return Ok(PlannerResult::Original(Vec::new()));
        }
        let schema = WrappedSchema(FFI_ArrowSchema::try_from(field)?);
        let names: Vec<SString> = nested_names.iter().map(|n| n.as_str().into()).collect();
        // SAFETY: the bundle's function, with borrowed arguments valid for the call.
        let result = unsafe {
            (self.ffi.plan_compound_identifier)(
                &self.ffi,
                schema,
                qualifier.map(FFI_TableReference::from).into(),
                names.as_slice().into(),
                &self.ffi_session,
            )
        };
        self.finish(result, Vec::new(), None)
    }

    fn plan_aggregate(&self, expr: RawAggregateExpr) -> Result<PlannerResult<RawAggregateExpr>> {
        self.plan_hook(hooks::AGGREGATE, expr, |e| vec![aggregate_expr(e)], 0, None)
    }

    fn plan_window(&self, expr: RawWindowExpr) -> Result<PlannerResult<RawWindowExpr>> {
        self.plan_hook(hooks::WINDOW, expr, |e| vec![window_expr(e)], 0, None)
    }
}
