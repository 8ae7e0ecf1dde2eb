//! The FFI types this project adds on top of datafusion-ffi.
//!
//! They follow datafusion-ffi's conventions: `#[repr(C)]` structs of `extern "C"` fns and
//! `private_data`, a producer constructor (`FFI_X::new`) and a consumer wrapper (`ForeignX`) side
//! by side in one module per kind. Types the host reads are layout-checked at load time by
//! abi_stable (`StableAbi`); datafusion-ffi's own structs travel inside them as opaque fields,
//! whose layout is guaranteed by the exact DataFusion version match of the compatibility step.

pub mod allocator;
pub mod batch_stream;
pub mod bound;
pub mod buffers;
pub(crate) mod cdata;
pub mod contract;
pub mod errors;
pub mod exports;
pub mod groups_accumulator;
pub mod host_context;
pub mod log_sink;
pub mod module;
pub mod plan_runner;
pub mod planner;
pub mod scalar_kernel;
pub mod signature;
pub mod table_source;
pub mod values;

pub use exports::{
    FFI_Bundle, FFI_BundleExports, FFI_BundlePlanners, FFI_BundleWithTableSources, FFI_Named,
};
pub use host_context::FFI_HostContext;
pub use log_sink::{FFI_LogSink, ForeignLogSink};
pub use module::{
    BundleModule, BundleModuleRef, INIT_WITH_PLANNERS_SYMBOL, INIT_WITH_TABLE_SOURCES_SYMBOL,
    InitWithPlanners, InitWithTableSources, ROOT_MODULE_SYMBOL,
};
pub use signature::FFI_FunctionSignature;

static LIBRARY_MARKER: u8 = 0;

/// Identifies the image (host or bundle) that made an FFI struct, as datafusion-ffi's
/// `library_marker_id` does: each image has its own copy of this static.
pub extern "C" fn library_marker_id() -> usize {
    &LIBRARY_MARKER as *const u8 as usize
}
