//! `FFI_TypePlanner`: DataFusion's `TypePlanner` across the ABI.
//!
//! DataFusion asks its one type planner about every SQL type it plans (CAST, DDL columns,
//! CREATE EXTERNAL TABLE schemas); the struct names the types the planner handles (upper-case
//! base names such as `UUID`), so the host crosses only for those. The SQL type travels as
//! sqlparser's JSON form; the answer is an Arrow field, so it keeps
//! nullability and extension metadata (`ARROW:extension:name`).

use std::ffi::c_void;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::arrow::ffi::FFI_ArrowSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast;
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use stabby::str::Str as SStr;
use stabby::string::String as SString;
use stabby::vec::Vec as SVec;

use super::{ast_from_json, ast_to_json, ffi_guard};

/// The base name the host filters on: the type's SQL text up to its first `(`, space or `<`,
/// upper-cased (`VARCHAR(10)` is `VARCHAR`, `UUID` is `UUID`).
pub fn type_base_name(sql_type: &ast::DataType) -> String {
    let text = sql_type.to_string();
    let end = text.find(['(', ' ', '<', '[']).unwrap_or(text.len());
    text[..end].to_ascii_uppercase()
}

/// A stable struct for sharing a [`TypePlanner`] across FFI boundaries.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_TypePlanner {
    /// The planner's name in its bundle's manifest.
    pub name: SString,
    /// Upper-case base names of the SQL types it plans (see [`type_base_name`]).
    pub type_names: SVec<SString>,
    /// `sql_type`: the type as JSON (sqlparser's serde form).
    /// `Some(field)`: the field's Arrow C schema (its name is ignored).
    pub plan_type_field: unsafe extern "C" fn(
        planner: &Self,
        sql_type: SStr,
    ) -> FFI_Result<FFI_Option<WrappedSchema>>,
    pub clone: unsafe extern "C" fn(planner: &Self) -> Self,
    pub release: unsafe extern "C" fn(planner: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl Send for FFI_TypePlanner {}
unsafe impl Sync for FFI_TypePlanner {}

struct TypePlannerPrivateData {
    planner: Arc<dyn TypePlanner>,
}

impl FFI_TypePlanner {
    /// Exports `planner` for the SQL types named `type_names` (e.g. `["UUID", "JSON"]`).
    pub fn new(name: &str, planner: Arc<dyn TypePlanner>, type_names: &[&str]) -> Self {
        Self {
            name: name.into(),
            type_names: type_names
                .iter()
                .map(|n| SString::from(n.to_ascii_uppercase().as_str()))
                .collect(),
            plan_type_field: plan_type_field_fn_wrapper,
            clone: clone_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(Box::new(TypePlannerPrivateData { planner }))
                as *mut c_void,
            library_marker_id: crate::ffi::library_marker_id,
        }
    }

    fn inner(&self) -> &TypePlannerPrivateData {
        // SAFETY: only the producer's own functions call this, with its own private data.
        unsafe { &*(self.private_data as *const TypePlannerPrivateData) }
    }
}

unsafe extern "C" fn plan_type_field_fn_wrapper(
    planner: &FFI_TypePlanner,
    sql_type: SStr,
) -> FFI_Result<FFI_Option<WrappedSchema>> {
    ffi_guard(
        || format!("type planner '{}'", planner.name),
        || {
            let data_type: ast::DataType = ast_from_json(sql_type.as_str(), "SQL type")?;
            let Some(field) = planner.inner().planner.plan_type_field(&data_type)? else {
                return Ok(FFI_Option::None);
            };
            Ok(FFI_Option::Some(WrappedSchema(FFI_ArrowSchema::try_from(
                field.as_ref(),
            )?)))
        },
    )
}

unsafe extern "C" fn clone_fn_wrapper(planner: &FFI_TypePlanner) -> FFI_TypePlanner {
    let mut clone = FFI_TypePlanner::new("", Arc::clone(&planner.inner().planner), &[]);
    clone.name = planner.name.clone();
    clone.type_names = planner.type_names.clone();
    clone
}

unsafe extern "C" fn release_fn_wrapper(planner: &mut FFI_TypePlanner) {
    if planner.private_data.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `new`; released once (nulled below).
    drop(unsafe { Box::from_raw(planner.private_data as *mut TypePlannerPrivateData) });
    planner.private_data = std::ptr::null_mut();
}

impl Clone for FFI_TypePlanner {
    fn clone(&self) -> Self {
        // SAFETY: the producer's clone function.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_TypePlanner {
    fn drop(&mut self) {
        // SAFETY: the producer's release function.
        unsafe { (self.release)(self) }
    }
}

/// The host side of an [`FFI_TypePlanner`].
#[derive(Debug)]
pub struct ForeignTypePlanner {
    ffi: FFI_TypePlanner,
    label: String,
    type_names: Vec<String>,
}

unsafe impl Send for ForeignTypePlanner {}
unsafe impl Sync for ForeignTypePlanner {}

impl ForeignTypePlanner {
    pub fn new(ffi: FFI_TypePlanner, bundle: &str) -> Self {
        Self {
            label: format!("type planner '{}' of plugin bundle '{bundle}'", ffi.name),
            type_names: ffi.type_names.iter().map(|s| s.to_string()).collect(),
            ffi,
        }
    }

    pub fn name(&self) -> &str {
        self.ffi.name.as_str()
    }

    /// Whether the planner declared `sql_type`'s base name.
    pub fn handles(&self, sql_type: &ast::DataType) -> bool {
        let name = type_base_name(sql_type);
        self.type_names.contains(&name)
    }
}

impl TypePlanner for ForeignTypePlanner {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        if !self.handles(sql_type) {
            return Ok(None);
        }
        let json = ast_to_json(sql_type, "SQL type")?;
        // SAFETY: the bundle's function, with borrowed arguments valid for the call.
        let result = unsafe { (self.ffi.plan_type_field)(&self.ffi, json.as_str().into()) };
        match result {
            FFI_Result::Ok(FFI_Option::None) => Ok(None),
            FFI_Result::Ok(FFI_Option::Some(schema)) => {
                let field = Field::try_from(&schema.0).map_err(|e| {
                    DataFusionError::Plan(format!(
                        "{} returned a field the host cannot read: {e}",
                        self.label
                    ))
                })?;
                Ok(Some(Arc::new(field)))
            }
            FFI_Result::Err(e) => Err(DataFusionError::Plan(format!("{}: {e}", self.label))),
        }
    }
}
