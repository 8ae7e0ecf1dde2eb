//! `FFI_RelationPlanner`: DataFusion's `RelationPlanner` across the ABI, and
//! `FFI_RelationPlannerContext`, the host callbacks a relation planner plans its inputs with.
//!
//! DataFusion offers every FROM-clause item (`TableFactor`) to every relation planner, so the
//! struct declares the kinds of items it plans ([`factor_kinds`]) and the host crosses only for
//! those. The item travels as sqlparser's JSON form (see [`super`]), so the planner sees exactly
//! what the user wrote — SQL text would not do: sqlparser 0.62 prints a few items as SQL that
//! reads back differently (e.g. MySQL's `t PARTITION (p)` as `tPARTITION (p)`).
//!
//! Inside `plan_relation` the bundle plans nested relations through the host
//! (`RelationPlannerContext::plan`): the host plans them with everything the session knows (CTEs,
//! views, aliases, other bundles' tables, other planners — including this one, re-entrantly)
//! and keeps the plan; the bundle gets a [`HostPlanRef`] placeholder with its schema. The
//! context is valid only during the one call (a nonce guards the placeholders), and a planner
//! that re-enters itself without end is stopped after [`MAX_DEPTH`] levels.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{TaskContext, TaskContextProvider};
use datafusion::logical_expr::planner::{
    ContextProvider, PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{
    AggregateUDF, Expr, LogicalPlan, ScalarUDF, TableSource, WindowUDF,
};
use datafusion::sql::sqlparser::ast::{self, Ident, ObjectName, TableAlias, TableFactor};
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec;
use stabby::slice::Slice as SSlice;
use stabby::str::Str as SStr;
use stabby::string::String as SString;
use stabby::vec::Vec as SVec;

use super::codec::{
    HostPlanRef, HostTableSchema, expr_to_bytes, schema_from_bytes, schema_to_bytes,
};
use super::lean::LeanCodec;
use super::objects::{DefaultPlanObjectExporter, FFI_PlanObjects, PlanObjectExporter};
use super::{
    AnswerContext, GeneralCodec, PlannerCodec, PlannerSession, ast_from_json, ast_to_json,
    ffi_guard, next_nonce,
};

/// Kinds of FROM-clause items. A planner declares the kinds it plans; `SAMPLED` is any item
/// with a `TABLESAMPLE` clause, whatever its kind.
pub mod factor_kinds {
    pub const TABLE: u32 = 1 << 0;
    pub const TABLE_FUNCTION: u32 = 1 << 1;
    pub const DERIVED: u32 = 1 << 2;
    pub const NESTED_JOIN: u32 = 1 << 3;
    pub const FUNCTION: u32 = 1 << 4;
    pub const UNNEST: u32 = 1 << 5;
    pub const PIVOT: u32 = 1 << 6;
    pub const UNPIVOT: u32 = 1 << 7;
    pub const MATCH_RECOGNIZE: u32 = 1 << 8;
    pub const SAMPLED: u32 = 1 << 9;
    pub const OTHER: u32 = 1 << 31;
}

/// The [`factor_kinds`] bits of `factor`.
pub fn kinds_of(factor: &TableFactor) -> u32 {
    use factor_kinds::*;
    match factor {
        TableFactor::Table { args, sample, .. } => {
            let kind = if args.is_some() {
                TABLE_FUNCTION
            } else {
                TABLE
            };
            kind | if sample.is_some() { SAMPLED } else { 0 }
        }
        TableFactor::Derived { sample, .. } => DERIVED | if sample.is_some() { SAMPLED } else { 0 },
        TableFactor::NestedJoin { .. } => NESTED_JOIN,
        TableFactor::Function { .. } | TableFactor::TableFunction { .. } => FUNCTION,
        TableFactor::UNNEST { .. } => UNNEST,
        TableFactor::Pivot { .. } => PIVOT,
        TableFactor::Unpivot { .. } => UNPIVOT,
        TableFactor::MatchRecognize { .. } => MATCH_RECOGNIZE,
        _ => OTHER,
    }
}

/// How deep a relation planner may re-enter itself through the host's `plan()` on one thread.
pub const MAX_DEPTH: u32 = 32;

/// A table reference in parts, exactly (no quoting rules in between).
#[repr(C)]
#[derive(Debug, Clone)]
pub struct FFI_TableReference {
    pub catalog: FFI_Option<SString>,
    pub schema: FFI_Option<SString>,
    pub table: SString,
}

impl From<&TableReference> for FFI_TableReference {
    fn from(r: &TableReference) -> Self {
        Self {
            catalog: r.catalog().map(SString::from).into(),
            schema: r.schema().map(SString::from).into(),
            table: r.table().into(),
        }
    }
}

impl From<&FFI_TableReference> for TableReference {
    fn from(r: &FFI_TableReference) -> Self {
        let table = r.table.as_str();
        match (r.catalog.as_ref(), r.schema.as_ref()) {
            (Some(c), Some(s)) => TableReference::full(c.as_str(), s.as_str(), table),
            (None, Some(s)) => TableReference::partial(s.as_str(), table),
            _ => TableReference::bare(table),
        }
    }
}

/// A plan the host made and kept: its placeholder id and `protobuf::DfSchema` bytes.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_HostPlan {
    pub id: u64,
    pub schema: SVec<u8>,
}

/// The outcome of `plan_relation`.
#[repr(C, u8)]
#[derive(Debug)]
pub enum FFI_RelationPlanning {
    /// `plan`: `LogicalPlanNode` bytes (with [`HostPlanRef`] placeholders); `alias`: the SQL
    /// text of a table alias to apply (`AS t (a, b)`); `objects`: the tables and functions the
    /// planner made, which the plan refers to by index.
    Planned {
        plan: SVec<u8>,
        alias: FFI_Option<SString>,
        objects: FFI_PlanObjects,
    },
    /// Not for this planner: the host goes on with the item it kept.
    Original,
}

/// A stable struct for sharing a [`RelationPlanner`] across FFI boundaries.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_RelationPlanner {
    /// The planner's name in its bundle's manifest.
    pub name: SString,
    /// [`factor_kinds`] bits of the items it plans.
    pub factor_kinds: u32,
    /// `relation`: the item as JSON. `context` is valid only during the call.
    pub plan_relation: unsafe extern "C" fn(
        planner: &Self,
        relation: SStr,
        context: *mut FFI_RelationPlannerContext,
    ) -> FFI_Result<FFI_RelationPlanning>,
    pub clone: unsafe extern "C" fn(planner: &Self) -> Self,
    pub release: unsafe extern "C" fn(planner: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl Send for FFI_RelationPlanner {}
unsafe impl Sync for FFI_RelationPlanner {}

struct RelationPlannerPrivateData {
    planner: Arc<dyn RelationPlanner>,
    codec: Arc<dyn PlannerCodec>,
}

impl FFI_RelationPlanner {
    /// Exports `planner` for the FROM-clause items of `kinds` ([`factor_kinds`] bits).
    pub fn new(name: &str, planner: Arc<dyn RelationPlanner>, kinds: u32) -> Self {
        Self::new_with_exporter(name, planner, kinds, Arc::new(DefaultPlanObjectExporter))
    }

    /// As [`Self::new`], exporting the tables and functions its plans make with `exporter`.
    pub fn new_with_exporter(
        name: &str,
        planner: Arc<dyn RelationPlanner>,
        kinds: u32,
        exporter: Arc<dyn PlanObjectExporter>,
    ) -> Self {
        Self::from_private(
            name.into(),
            kinds,
            RelationPlannerPrivateData {
                planner,
                codec: Arc::new(GeneralCodec::new(exporter)),
            },
        )
    }

    /// Exports `planner` as a lean planner ([`super::lean`]): its plans are chains of
    /// standard nodes over the host's plans, calling functions by name, and its
    /// `ContextProvider` knows no functions. Its bundle links none of the general planner
    /// ABI's codec.
    pub fn new_lean(name: &str, planner: Arc<dyn RelationPlanner>, kinds: u32) -> Self {
        Self::from_private(
            name.into(),
            kinds,
            RelationPlannerPrivateData {
                planner,
                codec: Arc::new(LeanCodec),
            },
        )
    }

    fn from_private(name: SString, kinds: u32, data: RelationPlannerPrivateData) -> Self {
        Self {
            name,
            factor_kinds: kinds,
            plan_relation: plan_relation_fn_wrapper,
            clone: clone_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(data)) as *mut c_void,
            library_marker_id: crate::ffi::library_marker_id,
        }
    }

    fn inner(&self) -> &RelationPlannerPrivateData {
        // SAFETY: only the producer's own functions call this, with its own private data.
        unsafe { &*(self.private_data as *const RelationPlannerPrivateData) }
    }
}

unsafe extern "C" fn plan_relation_fn_wrapper(
    planner: &FFI_RelationPlanner,
    relation: SStr,
    context: *mut FFI_RelationPlannerContext,
) -> FFI_Result<FFI_RelationPlanning> {
    ffi_guard(
        || format!("relation planner '{}'", planner.name),
        || {
            let data = planner.inner();
            // SAFETY: the host lends the context for this call; the adapter below reaches it
            // only through this raw pointer, one short-lived reference per host callback.
            let host = unsafe { (*context).task_ctx_provider.clone() };
            let factor: TableFactor = ast_from_json(relation.as_str(), "FROM-clause item")?;
            let mut adapter = ForeignRelationPlannerContext {
                ffi: context,
                provider: HostContextProvider {
                    ffi: context,
                    task: data.codec.session(&host)?,
                },
                host: &host,
                codec: data.codec.as_ref(),
            };
            match data.planner.plan_relation(factor, &mut adapter)? {
                RelationPlanning::Original(_) => Ok(FFI_RelationPlanning::Original),
                RelationPlanning::Planned(planned) => {
                    let (plan, objects) = data.codec.write_plan(&planned.plan, &host)?;
                    Ok(FFI_RelationPlanning::Planned {
                        plan: plan.into_iter().collect(),
                        alias: planned
                            .alias
                            .map(|a| ast_to_json(&a, "table alias"))
                            .transpose()?
                            .map(|a| SString::from(a.as_str()))
                            .into(),
                        objects,
                    })
                }
            }
        },
    )
}

unsafe extern "C" fn clone_fn_wrapper(planner: &FFI_RelationPlanner) -> FFI_RelationPlanner {
    let data = planner.inner();
    FFI_RelationPlanner::from_private(
        planner.name.clone(),
        planner.factor_kinds,
        RelationPlannerPrivateData {
            planner: Arc::clone(&data.planner),
            codec: Arc::clone(&data.codec),
        },
    )
}

unsafe extern "C" fn release_fn_wrapper(planner: &mut FFI_RelationPlanner) {
    if planner.private_data.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `from_private`; released once (nulled below).
    drop(unsafe { Box::from_raw(planner.private_data as *mut RelationPlannerPrivateData) });
    planner.private_data = std::ptr::null_mut();
}

impl Clone for FFI_RelationPlanner {
    fn clone(&self) -> Self {
        // SAFETY: the producer's clone function.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_RelationPlanner {
    fn drop(&mut self) {
        // SAFETY: the producer's release function.
        unsafe { (self.release)(self) }
    }
}

// ---------------------------------------------------------------------------------------------
// The host's callbacks.

/// The host callbacks of one `plan_relation` call. Made by the host on its stack around
/// DataFusion's `RelationPlannerContext`, borrowed by the bundle for the call, never stored.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_RelationPlannerContext {
    /// Plans a FROM-clause item (JSON) through the host; the host keeps the plan.
    pub plan: unsafe extern "C" fn(ctx: &mut Self, relation: SStr) -> FFI_Result<FFI_HostPlan>,
    /// Plans a SQL expression (JSON) against a schema (`DfSchema` bytes); `rewrite` false is
    /// `sql_expr_to_logical_expr`. Returns `LogicalExprNode` bytes.
    pub sql_to_expr: unsafe extern "C" fn(
        ctx: &mut Self,
        expr: SStr,
        schema: SSlice<u8>,
        rewrite: bool,
    ) -> FFI_Result<SVec<u8>>,
    /// `ident`: the identifier as JSON (with its quote style).
    pub normalize_ident: unsafe extern "C" fn(ctx: &Self, ident: SStr) -> FFI_Result<SString>,
    /// `name`: an object name as JSON.
    pub object_name_to_table_reference:
        unsafe extern "C" fn(ctx: &Self, name: SStr) -> FFI_Result<FFI_TableReference>,
    /// The schema of a table the statement names.
    pub table_schema:
        unsafe extern "C" fn(ctx: &Self, table: FFI_TableReference) -> FFI_Result<WrappedSchema>,
    /// The host session, for decoding expressions with its functions.
    pub task_ctx_provider: FFI_TaskContextProvider,
    /// Identifies this call; placeholders carry it.
    pub nonce: u64,
    /// Internal data. Only the host may access it.
    pub private_data: *mut c_void,
    pub library_marker_id: extern "C" fn() -> usize,
}

struct HostContextData<'a> {
    inner: &'a mut dyn RelationPlannerContext,
    handles: Vec<LogicalPlan>,
}

impl FFI_RelationPlannerContext {
    /// Runs `f` with a context around `inner`; returns its result and the plans it made.
    pub fn scoped<R>(
        inner: &mut dyn RelationPlannerContext,
        session: &FFI_TaskContextProvider,
        nonce: u64,
        f: impl FnOnce(&mut FFI_RelationPlannerContext) -> R,
    ) -> (R, Vec<LogicalPlan>) {
        let mut data = HostContextData {
            inner,
            handles: Vec::new(),
        };
        let mut ctx = FFI_RelationPlannerContext {
            plan: host_plan,
            sql_to_expr: host_sql_to_expr,
            normalize_ident: host_normalize_ident,
            object_name_to_table_reference: host_object_name_to_table_reference,
            table_schema: host_table_schema,
            task_ctx_provider: session.clone(),
            nonce,
            // The pointer lives no longer than `data`: `ctx` is dropped before this returns.
            private_data: &mut data as *mut HostContextData<'_> as *mut c_void,
            library_marker_id: crate::ffi::library_marker_id,
        };
        let result = f(&mut ctx);
        drop(ctx);
        (result, data.handles)
    }

    fn host(&mut self) -> &mut HostContextData<'_> {
        // SAFETY: set by `scoped` to a `HostContextData` that outlives this struct.
        unsafe { &mut *(self.private_data as *mut HostContextData<'_>) }
    }

    fn host_ref(&self) -> &HostContextData<'_> {
        // SAFETY: as in `host`.
        unsafe { &*(self.private_data as *const HostContextData<'_>) }
    }
}

unsafe extern "C" fn host_plan(
    ctx: &mut FFI_RelationPlannerContext,
    relation: SStr,
) -> FFI_Result<FFI_HostPlan> {
    ffi_guard(
        || "the host's plan()".to_owned(),
        || {
            let factor: TableFactor = ast_from_json(relation.as_str(), "FROM-clause item")?;
            let host = ctx.host();
            let plan = host.inner.plan(factor)?;
            let schema = schema_to_bytes(plan.schema())?;
            host.handles.push(plan);
            Ok(FFI_HostPlan {
                id: (host.handles.len() - 1) as u64,
                schema: schema.into_iter().collect(),
            })
        },
    )
}

unsafe extern "C" fn host_sql_to_expr(
    ctx: &mut FFI_RelationPlannerContext,
    expr: SStr,
    schema: SSlice<u8>,
    rewrite: bool,
) -> FFI_Result<SVec<u8>> {
    ffi_guard(
        || "the host's sql_to_expr()".to_owned(),
        || {
            let sql_expr: ast::Expr = ast_from_json(expr.as_str(), "expression")?;
            let shown = sql_expr.to_string();
            let schema = schema_from_bytes(&schema)?;
            let host = ctx.host();
            let planned = if rewrite {
                host.inner.sql_to_expr(sql_expr, &schema)?
            } else {
                host.inner.sql_expr_to_logical_expr(sql_expr, &schema)?
            };
            let bytes = expr_to_bytes(&planned).map_err(|e| {
            DataFusionError::Plan(format!(
                "the expression `{shown}` cannot cross the plugin boundary (EXISTS / IN subqueries and outer references cannot be encoded): {e}"
            ))
        })?;
            Ok(bytes.into_iter().collect())
        },
    )
}

unsafe extern "C" fn host_normalize_ident(
    ctx: &FFI_RelationPlannerContext,
    ident: SStr,
) -> FFI_Result<SString> {
    ffi_guard(
        || "the host's normalize_ident()".to_owned(),
        || {
            let ident: Ident = ast_from_json(ident.as_str(), "identifier")?;
            Ok(ctx.host_ref().inner.normalize_ident(ident).as_str().into())
        },
    )
}

unsafe extern "C" fn host_object_name_to_table_reference(
    ctx: &FFI_RelationPlannerContext,
    name: SStr,
) -> FFI_Result<FFI_TableReference> {
    ffi_guard(
        || "the host's object_name_to_table_reference()".to_owned(),
        || {
            let name: ObjectName = ast_from_json(name.as_str(), "object name")?;
            let r = ctx.host_ref().inner.object_name_to_table_reference(name)?;
            Ok(FFI_TableReference::from(&r))
        },
    )
}

unsafe extern "C" fn host_table_schema(
    ctx: &FFI_RelationPlannerContext,
    table: FFI_TableReference,
) -> FFI_Result<WrappedSchema> {
    ffi_guard(
        || "the host's get_table_source()".to_owned(),
        || {
            let source = ctx
                .host_ref()
                .inner
                .context_provider()
                .get_table_source(TableReference::from(&table))?;
            Ok(WrappedSchema::from(source.schema()))
        },
    )
}

// ---------------------------------------------------------------------------------------------
// The bundle's view of the host's callbacks.

fn ffi_err(e: SString) -> DataFusionError {
    DataFusionError::Plan(e.to_string())
}

/// The `ContextProvider` a bundle's relation planner sees: tables (schema only) through the
/// host, functions and options from the host session's task context (a lean planner's has
/// none: no functions, default options).
struct HostContextProvider {
    ffi: *mut FFI_RelationPlannerContext,
    task: Option<Arc<TaskContext>>,
}

impl HostContextProvider {
    fn functions<T>(&self, of: impl FnOnce(&TaskContext) -> T) -> Option<T> {
        self.task.as_deref().map(of)
    }
}

impl ContextProvider for HostContextProvider {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        // SAFETY: the context outlives the adapter that owns this provider (one call).
        // SAFETY: the host's function, called during the call that lent the context.
        let schema =
            unsafe { ((*self.ffi).table_schema)(&*self.ffi, FFI_TableReference::from(&name)) }
                .into_result()
                .map_err(ffi_err)?;
        let schema: SchemaRef = schema.into();
        let table: Arc<dyn TableProvider> = Arc::new(HostTableSchema { name, schema });
        Ok(provider_as_source(table))
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions(|t| t.scalar_functions().get(name).cloned())?
    }

    fn get_higher_order_meta(
        &self,
        _name: &str,
    ) -> Option<Arc<datafusion::logical_expr::HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.functions(|t| t.aggregate_functions().get(name).cloned())?
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.functions(|t| t.window_functions().get(name).cloned())?
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        match &self.task {
            Some(task) => task.session_config().options(),
            None => {
                static DEFAULT: OnceLock<ConfigOptions> = OnceLock::new();
                DEFAULT.get_or_init(ConfigOptions::default)
            }
        }
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions(|t| t.scalar_functions().keys().cloned().collect())
            .unwrap_or_default()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.functions(|t| t.aggregate_functions().keys().cloned().collect())
            .unwrap_or_default()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.functions(|t| t.window_functions().keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// The `RelationPlannerContext` a bundle's planner gets: every call goes to the host.
struct ForeignRelationPlannerContext<'a> {
    /// Lent by the host for the call; see `plan_relation_fn_wrapper`.
    ffi: *mut FFI_RelationPlannerContext,
    provider: HostContextProvider,
    host: &'a FFI_TaskContextProvider,
    codec: &'a dyn PlannerCodec,
}

impl ForeignRelationPlannerContext<'_> {
    fn expr(&mut self, expr: ast::Expr, schema: &DFSchema, rewrite: bool) -> Result<Expr> {
        let text = ast_to_json(&expr, "expression")?;
        let schema_bytes = schema_to_bytes(schema)?;
        // SAFETY: the host's function, called during the call that lent the context.
        let bytes = unsafe {
            ((*self.ffi).sql_to_expr)(
                &mut *self.ffi,
                text.as_str().into(),
                schema_bytes.as_slice().into(),
                rewrite,
            )
        }
        .into_result()
        .map_err(ffi_err)?;
        self.codec.read_expr(&bytes, self.host)
    }
}

impl RelationPlannerContext for ForeignRelationPlannerContext<'_> {
    fn context_provider(&self) -> &dyn ContextProvider {
        &self.provider
    }

    fn plan(&mut self, relation: TableFactor) -> Result<LogicalPlan> {
        let text = ast_to_json(&relation, "FROM-clause item")?;
        // SAFETY: the host's function, called during the call that lent the context.
        let (planned, nonce) = unsafe {
            let planned = ((*self.ffi).plan)(&mut *self.ffi, text.as_str().into());
            (planned, (*self.ffi).nonce)
        };
        let planned = planned.into_result().map_err(ffi_err)?;
        Ok(HostPlanRef {
            id: planned.id,
            nonce,
            schema: Arc::new(schema_from_bytes(&planned.schema)?),
        }
        .into_plan())
    }

    fn sql_to_expr(&mut self, expr: ast::Expr, schema: &DFSchema) -> Result<Expr> {
        self.expr(expr, schema, true)
    }

    fn sql_expr_to_logical_expr(&mut self, expr: ast::Expr, schema: &DFSchema) -> Result<Expr> {
        self.expr(expr, schema, false)
    }

    fn normalize_ident(&self, ident: Ident) -> String {
        let Ok(text) = ast_to_json(&ident, "identifier") else {
            return ident.value;
        };
        // SAFETY: the host's function, called during the call that lent the context.
        match unsafe { ((*self.ffi).normalize_ident)(&*self.ffi, text.as_str().into()) } {
            FFI_Result::Ok(s) => s.to_string(),
            // The trait cannot fail; the identifier as written is the safest answer.
            FFI_Result::Err(_) => ident.value,
        }
    }

    fn object_name_to_table_reference(&self, name: ObjectName) -> Result<TableReference> {
        let text = ast_to_json(&name, "object name")?;
        // SAFETY: the host's function, called during the call that lent the context.
        let r = unsafe {
            ((*self.ffi).object_name_to_table_reference)(&*self.ffi, text.as_str().into())
        }
        .into_result()
        .map_err(ffi_err)?;
        Ok(TableReference::from(&r))
    }
}

// ---------------------------------------------------------------------------------------------
// The host side of a bundle's planner.

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Counts nested `plan_relation` calls on this thread for as long as it lives.
struct DepthGuard;

impl DepthGuard {
    fn enter(label: &str) -> Result<Self> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let guard = DepthGuard;
        if depth > MAX_DEPTH {
            return Err(DataFusionError::Plan(format!(
                "{label}: relation planners re-entered each other {MAX_DEPTH} levels deep; a planner probably passes its own input back to plan() unchanged"
            )));
        }
        Ok(guard)
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// The host side of an [`FFI_RelationPlanner`].
pub struct ForeignRelationPlanner {
    ffi: FFI_RelationPlanner,
    label: String,
    session: Arc<dyn PlannerSession>,
    ffi_session: FFI_TaskContextProvider,
}

impl std::fmt::Debug for ForeignRelationPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

unsafe impl Send for ForeignRelationPlanner {}
unsafe impl Sync for ForeignRelationPlanner {}

impl ForeignRelationPlanner {
    pub fn new(ffi: FFI_RelationPlanner, bundle: &str, session: Arc<dyn PlannerSession>) -> Self {
        let provider: Arc<dyn TaskContextProvider> = Arc::clone(&session) as _;
        Self {
            label: format!(
                "relation planner '{}' of plugin bundle '{bundle}'",
                ffi.name
            ),
            ffi_session: FFI_TaskContextProvider::from(&provider),
            session,
            ffi,
        }
    }

    pub fn name(&self) -> &str {
        self.ffi.name.as_str()
    }

    fn error(&self, e: impl std::fmt::Display) -> DataFusionError {
        DataFusionError::Plan(format!("{}: {e}", self.label))
    }

    fn finish(
        &self,
        relation: TableFactor,
        planned: FFI_RelationPlanning,
        nonce: u64,
        handles: Vec<LogicalPlan>,
    ) -> Result<RelationPlanning> {
        let (bytes, alias, objects) = match planned {
            FFI_RelationPlanning::Original => {
                return Ok(RelationPlanning::Original(Box::new(relation)));
            }
            FFI_RelationPlanning::Planned {
                plan,
                alias,
                objects,
            } => (plan, alias, objects),
        };
        let answer = AnswerContext::of(self.session.as_ref());
        let codec = answer.codec(&objects).with_handles(
            nonce,
            handles.iter().map(|h| Arc::clone(h.schema())).collect(),
        );
        let plan = logical_plan_from_bytes_with_extension_codec(&bytes, &answer.task, &codec)
            .map_err(|e| self.error(format!("returned a plan the host cannot decode: {e}")))?;
        let plan = plan
            .transform_up(|node| match HostPlanRef::of(&node) {
                Some(r) => Ok(Transformed::yes(handles[r.id as usize].clone())),
                None => Ok(Transformed::no(node)),
            })?
            .data;
        let alias = match alias.into_option() {
            None => None,
            Some(json) => Some(
                ast_from_json::<TableAlias>(json.as_str(), "table alias")
                    .map_err(|e| self.error(e))?,
            ),
        };
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan, alias,
        ))))
    }
}

impl RelationPlanner for ForeignRelationPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        if kinds_of(&relation) & self.ffi.factor_kinds == 0 {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let _depth = DepthGuard::enter(&self.label)?;
        let json = ast_to_json(&relation, "FROM-clause item").map_err(|e| self.error(e))?;
        let nonce = next_nonce();
        let (result, handles) =
            FFI_RelationPlannerContext::scoped(context, &self.ffi_session, nonce, |ctx| {
                // SAFETY: the bundle's function; `ctx` lives for the call.
                unsafe { (self.ffi.plan_relation)(&self.ffi, json.as_str().into(), ctx) }
            });
        match result {
            FFI_Result::Ok(planned) => self.finish(relation, planned, nonce, handles),
            FFI_Result::Err(e) => Err(self.error(e)),
        }
    }
}
