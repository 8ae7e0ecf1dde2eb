//! The root module: the one abi_stable-checked entry point of a bundle.
//!
//! abi_stable compares the layout of [`BundleModule`] (and everything it references that is
//! `StableAbi`) between host and bundle when the host loads it, before `init` runs. It is a
//! *prefix type*: a later ABI minor appends fields (for example planner factories) after
//! `init`, and a host reading an older bundle sees those fields as absent instead of reading
//! past the end of the struct.

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RString};
use abi_stable::{StableAbi, declare_root_module_statics};

use super::exports::{FFI_Bundle, FFI_BundleExports, FFI_BundleWithTableSources};
use super::host_context::FFI_HostContext;

/// The exported symbol abi_stable's `#[export_root_module]` would generate; spelled out because
/// [`crate::export_bundle!`] must not require bundles to depend on abi_stable themselves. A unit
/// test keeps it equal to `abi_stable::library::ROOT_MODULE_LOADER_NAME`.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The functions of a bundle, in ABI order. Never reorder; append with a minor version bump.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BundleModuleRef)))]
#[sabi(missing_field(panic))]
pub struct BundleModule {
    /// Builds every object of the bundle. Called once per process by the host, after the
    /// handshake; returns the objects or a message saying why the bundle cannot start.
    #[sabi(last_prefix_field)]
    pub init: extern "C" fn(host: &FFI_HostContext) -> RResult<FFI_BundleExports, RString>,
}

/// ABI 1.1: `extern "C" fn(&FFI_HostContext) -> RResult<FFI_Bundle, RString>`, `init` plus
/// the bundle's SQL planners. A 1.1 host calls it instead of `init` for bundles whose record
/// says minor 1 or later.
///
/// A plain symbol rather than a new field of [`BundleModule`]: abi_stable's layout check lets a
/// library's prefix type have *more* fields than the host's, never fewer, so a new field would
/// make every 1.0 bundle fail the check. Its layout is guaranteed by the record's ABI minor
/// and the exact DataFusion version match, like the datafusion-ffi structs it carries.
pub const INIT_WITH_PLANNERS_SYMBOL: &str = "df_plugin_init_with_planners";

/// The type of [`INIT_WITH_PLANNERS_SYMBOL`].
pub type InitWithPlanners = extern "C" fn(host: &FFI_HostContext) -> RResult<FFI_Bundle, RString>;

/// ABI 1.15: `extern "C" fn(&FFI_HostContext) -> RResult<FFI_BundleWithTableSources, RString>`,
/// `init_with_planners` plus the bundle's table sources. A 1.15 host calls it instead of
/// `init_with_planners` for bundles whose record says minor 15 or later; a symbol of its own
/// for the reason [`INIT_WITH_PLANNERS_SYMBOL`] is one.
pub const INIT_WITH_TABLE_SOURCES_SYMBOL: &str = "df_plugin_init_with_table_sources";

/// The type of [`INIT_WITH_TABLE_SOURCES_SYMBOL`].
pub type InitWithTableSources =
    extern "C" fn(host: &FFI_HostContext) -> RResult<FFI_BundleWithTableSources, RString>;

impl RootModule for BundleModuleRef {
    declare_root_module_statics! {BundleModuleRef}
    const BASE_NAME: &'static str = "df_plugin";
    const NAME: &'static str = "df_plugin";
    // abi_stable refuses a different major; our own record check has already compared
    // major.minor with a clearer message by the time abi_stable looks at this.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
