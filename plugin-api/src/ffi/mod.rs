//! The FFI types this project adds on top of datafusion-ffi.
//!
//! They follow datafusion-ffi's conventions: `#[repr(C)]` structs of `extern "C"` fns and
//! `private_data`, a producer constructor (`FFI_X::new`) and a consumer wrapper (`ForeignX`) side
//! by side in one module per kind. Types the host reads are layout-checked at load time by
//! abi_stable (`StableAbi`); datafusion-ffi's own structs travel inside them as opaque fields,
//! whose layout is guaranteed by the exact DataFusion version match of the compatibility step.

pub mod exports;
pub mod host_context;
pub mod log_sink;
pub mod module;
pub mod signature;

pub use exports::{FFI_BundleExports, FFI_Named};
pub use host_context::FFI_HostContext;
pub use log_sink::{FFI_LogSink, ForeignLogSink};
pub use module::{BundleModule, BundleModuleRef, ROOT_MODULE_SYMBOL};
pub use signature::FFI_FunctionSignature;
