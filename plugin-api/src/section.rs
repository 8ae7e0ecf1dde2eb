//! Names of the link sections that carry a bundle's metadata.
//!
//! The host reads these with the `object` crate, straight from the file, so that `inspect` and
//! every refusal happen without executing a byte of the bundle (no `dlopen`, so no constructors).

/// Section holding the [`crate::record::AbiRecord`] (ELF).
pub const ELF_RECORD: &str = ".dfplugin.abi";
/// Section holding the manifest TOML (ELF).
pub const ELF_MANIFEST: &str = ".dfplugin.manifest";
/// Segment and section holding the record (Mach-O; section names are limited to 16 bytes).
pub const MACHO_RECORD: (&str, &str) = ("__DATA", "__dfplugin_abi");
/// Segment and section holding the manifest (Mach-O).
pub const MACHO_MANIFEST: (&str, &str) = ("__DATA", "__dfplugin_man");
