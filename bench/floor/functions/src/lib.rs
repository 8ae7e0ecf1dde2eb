//! The size floor of a datafusion-ffi bundle of functions: one built-in scalar, aggregate and
//! window function, each exported through datafusion-ffi 55.2 and nothing else. The benchmark
//! compares the udfs bundle's size with it (`bench/src/sizes.rs`); nothing loads it.

use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udwf::FFI_WindowUDF;

/// One function of each kind the udfs bundle exports.
#[repr(C)]
pub struct FloorFunctions {
    pub scalar: FFI_ScalarUDF,
    pub aggregate: FFI_AggregateUDF,
    pub window: FFI_WindowUDF,
}

#[unsafe(no_mangle)]
pub extern "C" fn size_floor_functions() -> FloorFunctions {
    FloorFunctions {
        scalar: FFI_ScalarUDF::from(datafusion_functions::math::abs()),
        aggregate: FFI_AggregateUDF::from(datafusion_functions_aggregate::sum::sum_udaf()),
        window: FFI_WindowUDF::from(datafusion_functions_window::row_number::row_number_udwf()),
    }
}
