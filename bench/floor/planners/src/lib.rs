//! The size floor of the planners bundle: its type, expression and relation planners called
//! directly on inputs the linker cannot see through, and its functions exported through
//! datafusion-ffi. Nothing else crosses, so this is what the planners and their functions weigh
//! with this DataFusion; the benchmark compares the planners bundle's size with it
//! (`bench/src/sizes.rs`). Nothing loads it.

use std::ffi::c_void;
use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::logical_expr::planner::{
    ExprPlanner, RawBinaryExpr, RawFieldAccessExpr, RelationPlanner, RelationPlannerContext,
    TypePlanner,
};
use datafusion::sql::sqlparser::ast;
use datafusion_ffi::udf::FFI_ScalarUDF;
use df_plugin_sql_planners::{json, sample, types};

/// What the planners are called with: the SQL AST nodes as JSON (as they cross the planner
/// ABI), the operands and the relation planner's context.
pub struct FloorInputs {
    pub factor: String,
    pub sql_type: String,
    pub binary: RawBinaryExpr,
    pub access: RawFieldAccessExpr,
    pub schema: DFSchema,
    pub context: Box<dyn RelationPlannerContext>,
}

/// Plans `inputs` with each planner and exports the functions; returns the results boxed
/// (null if an input does not parse). Never called: it only has to be linked.
///
/// # Safety
/// `inputs` must come from `Box::into_raw(Box::new(FloorInputs { .. }))`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn size_floor_planners(inputs: *mut c_void) -> *mut c_void {
    // SAFETY: the caller's promise.
    let mut inputs = unsafe { Box::from_raw(inputs as *mut FloorInputs) };
    let (Ok(factor), Ok(sql_type)) = (
        serde_json::from_str::<ast::TableFactor>(&inputs.factor),
        serde_json::from_str::<ast::DataType>(&inputs.sql_type),
    ) else {
        return std::ptr::null_mut();
    };
    let relation = sample::TableSample.plan_relation(factor, inputs.context.as_mut());
    let field = types::SqlTypes.plan_type_field(&sql_type);
    let schema = inputs.schema.clone();
    let binary = json::JsonOperators.plan_binary_op(inputs.binary, &schema);
    let access = json::JsonOperators.plan_field_access(inputs.access, &schema);
    let functions: Vec<FFI_ScalarUDF> = [
        json::JsonOp::Get.udf(),
        json::JsonOp::GetText.udf(),
        json::JsonOp::HasKey.udf(),
        types::UuidParse::new().into(),
        types::UuidText::new().into(),
        sample::TableSampleHash::new().into(),
    ]
    .into_iter()
    .map(|f| FFI_ScalarUDF::from(Arc::new(f)))
    .collect();
    Box::into_raw(Box::new((relation, field, binary, access, functions))) as *mut c_void
}
