//! # df-plugin-api
//!
//! The versioned, stable ABI between a DataFusion host and plugin bundles (cdylibs), and the
//! toolkit bundle authors use. It has no host logic: the host lives in `df-plugin-host`.
//!
//! - [`record`]: the fixed-layout ABI record and the capability bits, readable from a file
//!   without running it;
//! - [`manifest`]: the TOML manifest model, the source of truth for what a bundle exports;
//! - [`section`]: the link sections both are embedded in;
//! - [`build`]: build-script support that validates and embeds a manifest;
//! - [`ffi`] (feature `ffi`): the abi_stable root module and this project's FFI types;
//! - [`toolkit`] (feature `ffi`): [`export_bundle!`], panic guards, the bundle runtime and the
//!   log bridge.
//!
//! ## Versioning
//!
//! The plugin ABI is `ABI_MAJOR.ABI_MINOR` ([`record::ABI_MAJOR`], [`record::ABI_MINOR`]). A host
//! loads a bundle when the majors are equal and the bundle's minor is not newer than its own.
//! Minors only append: fields at the end of the record, fields at the end of the root module's
//! prefix type, entry points, capability bits, and fields at the end of this project's FFI
//! structs, which a host reads only from bundles of the minor that added them (1.4's
//! `FFI_PlanRunner::scan`). Anything else is a new major.
//!
//! Bundles must also be built against exactly the same DataFusion version as the host
//! (datafusion-ffi's structs carry no version of their own and its config keys and protobuf
//! encodings drift within a major), the same datafusion-ffi and Arrow majors, and the same target.

pub mod build;
pub mod manifest;
pub mod record;
pub mod section;

#[cfg(feature = "ffi")]
pub mod ffi;
#[cfg(feature = "ffi")]
pub mod toolkit;

/// The DataFusion this ABI is built on, re-exported so that a bundle can depend on this crate
/// alone and cannot pick a different version by accident.
#[cfg(feature = "ffi")]
pub use datafusion;

#[cfg(feature = "ffi")]
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
    pub use datafusion_ffi;
}

#[cfg(all(test, feature = "ffi"))]
mod test_tables;

#[cfg(all(test, feature = "ffi"))]
mod tests {
    #[test]
    fn build_facts_match_linked_crates() {
        let facts = crate::toolkit::BUILD_FACTS;
        assert_eq!(
            u64::from(facts.datafusion_ffi_major),
            datafusion_ffi::version()
        );
        assert_eq!(facts.datafusion_version, datafusion::DATAFUSION_VERSION);
    }
}
