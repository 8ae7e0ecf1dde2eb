//! What a bundle's `init` hands to the host: every object, as datafusion-ffi structs.

use abi_stable::StableAbi;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_ffi::udwf::FFI_WindowUDF;
use stabby::string::String as SString;
use stabby::vec::Vec as SVec;

use super::planner::{FFI_ExprPlanner, FFI_RelationPlanner, FFI_TypePlanner};
use super::signature::FFI_FunctionSignature;
use super::table_source::FFI_TableSource;

/// A named object. A `#[repr(C)]` pair, because Rust tuples have no stable layout.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct FFI_Named<T> {
    pub name: SString,
    pub value: T,
}

impl<T> FFI_Named<T> {
    pub fn new(name: &str, value: T) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// Every object a bundle exports. Each vector belongs to one capability bit.
///
/// The vectors are opaque to abi_stable (they are stabby containers of datafusion-ffi structs);
/// their layout is fixed by the exact DataFusion / datafusion-ffi version the host checked.
#[repr(C)]
#[derive(StableAbi)]
pub struct FFI_BundleExports {
    #[sabi(unsafe_opaque_field)]
    pub scalar_udfs: SVec<FFI_ScalarUDF>,
    #[sabi(unsafe_opaque_field)]
    pub aggregate_udfs: SVec<FFI_AggregateUDF>,
    #[sabi(unsafe_opaque_field)]
    pub window_udfs: SVec<FFI_WindowUDF>,
    #[sabi(unsafe_opaque_field)]
    pub table_functions: SVec<FFI_Named<FFI_TableFunction>>,
    #[sabi(unsafe_opaque_field)]
    pub table_providers: SVec<FFI_Named<FFI_TableProvider>>,
    /// Keyed by the `STORED AS` name; the host registers it upper-cased, as DataFusion looks
    /// factories up by the upper-cased file type.
    #[sabi(unsafe_opaque_field)]
    pub table_provider_factories: SVec<FFI_Named<FFI_TableProviderFactory>>,
    /// The real signature of each scalar, aggregate and window function (see
    /// [`super::signature`]); functions whose signature cannot be expressed are absent.
    #[sabi(unsafe_opaque_field)]
    pub function_signatures: SVec<FFI_FunctionSignature>,
}

/// A bundle's SQL planners (ABI 1.1). Each planner carries its manifest name.
#[repr(C)]
#[derive(StableAbi)]
pub struct FFI_BundlePlanners {
    #[sabi(unsafe_opaque_field)]
    pub expr_planners: SVec<FFI_ExprPlanner>,
    #[sabi(unsafe_opaque_field)]
    pub relation_planners: SVec<FFI_RelationPlanner>,
    #[sabi(unsafe_opaque_field)]
    pub type_planners: SVec<FFI_TypePlanner>,
}

/// Everything a bundle's `init_with_planners` returns (ABI 1.1): the 1.0 exports and the
/// planners. A new struct rather than new fields in [`FFI_BundleExports`], whose layout a 1.0
/// bundle fixes.
#[repr(C)]
#[derive(StableAbi)]
pub struct FFI_Bundle {
    pub exports: FFI_BundleExports,
    pub planners: FFI_BundlePlanners,
}

/// Everything a bundle's `init_with_table_sources` returns (ABI 1.15): the 1.1 bundle and its
/// table sources ([`super::table_source`]), which the host registers as table functions.
#[repr(C)]
#[derive(StableAbi)]
pub struct FFI_BundleWithTableSources {
    pub bundle: FFI_Bundle,
    #[sabi(unsafe_opaque_field)]
    pub table_sources: SVec<FFI_Named<FFI_TableSource>>,
}
