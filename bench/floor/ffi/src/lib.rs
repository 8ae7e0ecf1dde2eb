//! The size floor of a datafusion-ffi bundle: one built-in scalar, aggregate and window
//! function, one table function and one table provider, each exported through
//! datafusion-ffi 55.2 and nothing else. The benchmark compares each bundle's size with it
//! (`bench/src/sizes.rs`); nothing loads it.

use std::sync::Arc;

use datafusion_catalog::empty::EmptyTable;
use datafusion_common::arrow::datatypes::{DataType, Field, Schema};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_ffi::udwf::FFI_WindowUDF;

/// One object of each kind datafusion-ffi exports, tables included.
#[repr(C)]
pub struct FloorObjects {
    pub scalar: FFI_ScalarUDF,
    pub aggregate: FFI_AggregateUDF,
    pub window: FFI_WindowUDF,
    pub table_function: FFI_TableFunction,
    pub table: FFI_TableProvider,
}

/// # Safety
/// `codec` must be a valid codec from the host.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn size_floor_objects(codec: &FFI_LogicalExtensionCodec) -> FloorObjects {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
    let table = EmptyTable::new(schema);
    let series = datafusion_functions_table::generate_series();
    FloorObjects {
        scalar: FFI_ScalarUDF::from(datafusion_functions::math::abs()),
        aggregate: FFI_AggregateUDF::from(datafusion_functions_aggregate::sum::sum_udaf()),
        window: FFI_WindowUDF::from(datafusion_functions_window::row_number::row_number_udwf()),
        table_function: FFI_TableFunction::new_with_ffi_codec(
            Arc::clone(series.function()),
            None,
            codec.clone(),
        ),
        table: FFI_TableProvider::new_with_ffi_codec(Arc::new(table), true, None, codec.clone()),
    }
}
