//! What the host hands to a bundle's `init`.

use abi_stable::StableAbi;
use abi_stable::std_types::{RString, RVec, Tuple2};
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;

use super::log_sink::FFI_LogSink;

/// Borrowed by the bundle for the duration of `init`; the bundle clones what it keeps.
#[repr(C)]
#[derive(StableAbi)]
pub struct FFI_HostContext {
    /// Plugin ABI version of the host.
    pub abi_major: u16,
    pub abi_minor: u16,
    /// `name version` of the host, for the bundle's own diagnostics.
    pub host: RString,
    /// Where the bundle's log events go (see [`super::log_sink`]).
    pub log_sink: FFI_LogSink,
    /// Per-bundle options from the host's configuration (e.g. storage options).
    pub options: RVec<Tuple2<RString, RString>>,
    /// Carries the host's task-context provider (a weak reference to the host session) into
    /// every table provider, table function and factory the bundle creates, so that
    /// datafusion-ffi can encode filters and arguments against the host's function registry.
    #[sabi(unsafe_opaque_field)]
    pub logical_codec: FFI_LogicalExtensionCodec,
}
