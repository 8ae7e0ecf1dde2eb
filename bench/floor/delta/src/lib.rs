//! The size floor of a Delta bundle: delta-rs's own `DeltaTableFactory` (read and write through
//! its `DeltaTableProvider`), exported through datafusion-ffi 55.2 and nothing else. The
//! benchmark compares the Delta bundle's size with it (`bench/src/sizes.rs`); nothing loads it.

use std::sync::Arc;

use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
use deltalake::delta_datafusion::DeltaTableFactory;

/// # Safety
/// `codec` must be a valid codec from the host.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn size_floor_delta_factory(
    codec: &FFI_LogicalExtensionCodec,
) -> FFI_TableProviderFactory {
    FFI_TableProviderFactory::new_with_ffi_codec(
        Arc::new(DeltaTableFactory {}),
        None,
        codec.clone(),
    )
}
