//! Step 5: opening the library. Only bundles that passed steps 1–4 get here; this is the first
//! point where any of a bundle's code (its constructors) runs.
//!
//! Libraries are opened with `RTLD_NOW | RTLD_LOCAL` (every symbol resolved up front, none
//! interposed on other images) and are **never closed**: every datafusion-ffi object, every
//! stabby allocation and the bundle's runtime threads point into the image for the rest of the
//! process. The same file opened twice returns the same handle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::error::{Refusal, Step};
use crate::metadata::BundleMetadata;

fn opened() -> &'static Mutex<HashMap<PathBuf, &'static Library>> {
    static OPENED: OnceLock<Mutex<HashMap<PathBuf, &'static Library>>> = OnceLock::new();
    OPENED.get_or_init(Default::default)
}

/// Opens (or returns the already open) library of a verified bundle.
pub fn open(meta: &BundleMetadata) -> Result<&'static Library, Refusal> {
    let key = std::fs::canonicalize(&meta.path).unwrap_or_else(|_| meta.path.clone());
    let mut opened = opened().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(lib) = opened.get(&key) {
        return Ok(lib);
    }
    // SAFETY: opening a library runs its initialisers. The bundle passed the metadata and
    // compatibility checks; running its code is what loading a plugin means.
    let lib = unsafe { Library::open(Some(key.as_os_str()), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
        Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::Open,
            format!("the dynamic loader refused the library: {e}"),
            "check that the bundle was built for this system and that its dependencies are installed",
        )
    })?;
    let lib: &'static Library = Box::leak(Box::new(lib));
    opened.insert(key, lib);
    Ok(lib)
}
