//! Step 6: the handshake. The bundle's live code must return exactly the ABI record and the
//! manifest the host read from the file: a file whose metadata section was edited, or a
//! library that merely copied another bundle's section, is refused here.

use std::ffi::c_char;

use df_plugin_api::record::{AbiRecord, HANDSHAKE_SYMBOL, MANIFEST_SYMBOL};
use libloading::os::unix::Library;

use crate::error::{Mismatch, Refusal, Step};
use crate::metadata::BundleMetadata;

type RecordFn = unsafe extern "C" fn() -> *const AbiRecord;
type ManifestFn = unsafe extern "C" fn(*mut usize) -> *const c_char;

/// Calls the handshake symbols and compares their answers with the file's metadata.
pub fn check(lib: &Library, meta: &BundleMetadata) -> Result<(), Refusal> {
    let refuse = |reason: String| {
        Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::Handshake,
            reason,
            "rebuild the bundle with df_plugin_api::export_bundle!; do not edit bundle files",
        )
    };
    // SAFETY: the symbol types are fixed by the plugin ABI the bundle declared (checked in
    // step 4); the record is plain old data read through `AbiRecord::read`.
    let live = unsafe {
        let record_fn = *lib.get::<RecordFn>(format!("{HANDSHAKE_SYMBOL}\0").as_bytes()).map_err(|_| {
            refuse(format!("the library has a df-plugin metadata section but no `{HANDSHAKE_SYMBOL}` handshake symbol"))
        })?;
        let ptr = record_fn();
        if ptr.is_null() {
            return Err(refuse("the handshake returned a null record".into()));
        }
        // Read the header first, then as many bytes as the bundle says it wrote.
        let header = std::slice::from_raw_parts(ptr.cast::<u8>(), 12);
        let size = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]) as usize;
        let size = size.clamp(12, 64 * 1024);
        AbiRecord::read(std::slice::from_raw_parts(ptr.cast::<u8>(), size))
            .map_err(|e| refuse(format!("the handshake record is not valid: {e}")))?
    };
    if live != meta.record {
        let (l, f) = (live.decode().ok(), Some(meta.info.clone()));
        let mut mismatches = Vec::new();
        if let (Some(l), Some(f)) = (l, f) {
            let pairs = [
                ("bundle name", f.bundle_name, l.bundle_name),
                ("bundle version", f.bundle_version, l.bundle_version),
                (
                    "plugin ABI",
                    format!("{}.{}", f.abi_major, f.abi_minor),
                    format!("{}.{}", l.abi_major, l.abi_minor),
                ),
                (
                    "datafusion version",
                    f.datafusion_version,
                    l.datafusion_version,
                ),
                (
                    "capabilities",
                    f.capabilities.to_string(),
                    l.capabilities.to_string(),
                ),
                ("target", f.target, l.target),
            ];
            for (field, file, live) in pairs {
                if file != live {
                    mismatches.push(Mismatch::new(format!("{field} (file vs live)"), file, live));
                }
            }
        }
        return Err(refuse(
            "the live handshake disagrees with the record embedded in the file".into(),
        )
        .with_mismatches(mismatches));
    }
    // SAFETY: as above; the manifest is a static byte array of the returned length.
    let manifest = unsafe {
        let manifest_fn = *lib
            .get::<ManifestFn>(format!("{MANIFEST_SYMBOL}\0").as_bytes())
            .map_err(|_| refuse(format!("the library has no `{MANIFEST_SYMBOL}` symbol")))?;
        let mut len = 0usize;
        let ptr = manifest_fn(&mut len);
        if ptr.is_null() || len > 16 * 1024 * 1024 {
            return Err(refuse(
                "the live manifest is missing or implausibly large".into(),
            ));
        }
        std::slice::from_raw_parts(ptr.cast::<u8>(), len).to_vec()
    };
    if manifest != meta.manifest_text.as_bytes() {
        return Err(refuse(
            "the live manifest differs from the manifest embedded in the file".into(),
        ));
    }
    Ok(())
}
