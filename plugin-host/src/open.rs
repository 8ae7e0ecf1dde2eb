//! Step 5: opening the library. Only bundles that passed steps 1–4 get here; this is the first
//! point where any of a bundle's code (its constructors) runs.
//!
//! Libraries are opened with `RTLD_NOW | RTLD_LOCAL` (every symbol resolved up front, none
//! interposed on other images) and are **never closed**: every datafusion-ffi object, every
//! stabby allocation and the bundle's runtime threads point into the image for the rest of the
//! process. The same file opened twice returns the same handle — which is why a file that
//! changed since it was opened is refused here: the dynamic loader would hand back the old code
//! under the new file's name (glibc matches already-loaded libraries by path). A new version
//! must come from a new file name.
//!
//! Right after `dlopen`, before anything else of the bundle runs, the host lends it its global
//! allocator (plugin ABI 1.9, `df_plugin_api::ffi::allocator`): a bundle that allocated nothing
//! yet allocates through the host's from then on, and can hand its batches' columns over
//! instead of holding them for the host. An older bundle, one with an allocator of its own, or
//! one whose constructors allocated keeps its own heap, and its columns cross as before. A
//! host whose application vouched that its allocator is the system's
//! (`PluginHostBuilder::system_allocator`) lends the system's, which every bundle shares.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use df_plugin_api::ffi::allocator::{
    ALLOCATOR_ANOTHER_HOSTS, ALLOCATOR_KEPT, ALLOCATOR_SHARED, FFI_HostAllocator,
    SHARE_ALLOCATOR_MINOR, SHARE_ALLOCATOR_SYMBOL, ShareAllocatorFn,
};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::error::{Refusal, Step};
use crate::metadata::BundleMetadata;
use crate::trust::file::FileKey;

/// A bundle's library, open for the rest of the process.
#[derive(Debug, Clone, Copy)]
pub struct OpenLibrary {
    pub lib: &'static Library,
    /// Whether the bundle allocates through the host's allocator (see the module's doc).
    pub shares_allocator: bool,
}

type Opened = HashMap<PathBuf, (OpenLibrary, Option<FileKey>)>;

/// The host's allocator, as a bundle that takes it gets it.
static GLOBAL_ALLOCATOR: FFI_HostAllocator = FFI_HostAllocator::new();
// SAFETY: lent only by a host built with `system_allocator`, whose caller vouched for it.
static SYSTEM_ALLOCATOR: FFI_HostAllocator = unsafe { FFI_HostAllocator::system() };

/// The table a host lends bundles: the system's if the application said its global allocator
/// is the system's (`PluginHostBuilder::system_allocator`), its global allocator's otherwise.
pub(crate) fn lent_allocator(system: bool) -> &'static FFI_HostAllocator {
    if system {
        &SYSTEM_ALLOCATOR
    } else {
        &GLOBAL_ALLOCATOR
    }
}

fn opened() -> &'static Mutex<Opened> {
    static OPENED: OnceLock<Mutex<Opened>> = OnceLock::new();
    OPENED.get_or_init(Default::default)
}

/// Opens (or returns the already open) library of a verified bundle; `file` is the file's key
/// as the trust step saw it, `lend` the allocator the host lends the bundle.
pub fn open(
    meta: &BundleMetadata,
    file: Option<FileKey>,
    lend: &'static FFI_HostAllocator,
) -> Result<OpenLibrary, Refusal> {
    let key = std::fs::canonicalize(&meta.path).unwrap_or_else(|_| meta.path.clone());
    let mut opened = opened().lock().unwrap_or_else(|p| p.into_inner());
    if let Some((open, was)) = opened.get(&key) {
        if file.is_some() && was.is_some() && file != *was {
            return Err(Refusal::new(
                meta.info.bundle_name.clone(),
                &meta.path,
                Step::Open,
                format!(
                    "{} changed since this process loaded it, and a loaded library cannot be replaced in place (the dynamic loader would return the old code)",
                    key.display()
                ),
                "copy the new version to a new file name and load that (LOAD PLUGIN '<new file>'), or restart the host",
            ));
        }
        return Ok(*open);
    }
    // The file must still be the one the trust step verified (it could only have been swapped
    // by someone allowed to write it, but then say so instead of running other code).
    if let Some(verified) = file {
        let now = std::fs::metadata(&key).map(|m| FileKey::of(&m)).ok();
        if now != Some(verified) {
            return Err(Refusal::new(
                meta.info.bundle_name.clone(),
                &meta.path,
                Step::Open,
                format!("{} changed after it was verified", key.display()),
                "load it again; if this repeats, find out what rewrites the plugin directory",
            ));
        }
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
    let shares_allocator = share_allocator(lib, meta, lend)?;
    let open = OpenLibrary {
        lib,
        shares_allocator,
    };
    opened.insert(key, (open, file));
    Ok(open)
}

/// Lends the host's allocator to a library just opened; whether the bundle took it. Only a
/// bundle of ABI 1.9 or later is asked (one re-stamped older keeps that minor's crossing).
fn share_allocator(
    lib: &Library,
    meta: &BundleMetadata,
    lend: &'static FFI_HostAllocator,
) -> Result<bool, Refusal> {
    if meta.info.abi_minor < SHARE_ALLOCATOR_MINOR {
        return Ok(false);
    }
    let symbol = format!("{SHARE_ALLOCATOR_SYMBOL}\0");
    // SAFETY: a bundle's symbol of this name has the type plugin-api declares for it (the
    // compatibility step checked the bundle speaks this ABI).
    let Ok(share) = (unsafe { lib.get::<ShareAllocatorFn>(symbol.as_bytes()) }) else {
        return Ok(false);
    };
    // SAFETY: `lend` allocates through this image's global allocator (`lent_allocator`).
    let answer = unsafe { share(lend) };
    shares(answer).map_err(|(problem, fix)| {
        Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::Open,
            problem,
            fix,
        )
    })
}

/// What a bundle's answer to the host's allocator means: whether it shares it, or why the
/// bundle must be refused and how to fix that.
fn shares(answer: u8) -> Result<bool, (String, &'static str)> {
    match answer {
        ALLOCATOR_SHARED => Ok(true),
        ALLOCATOR_KEPT => Ok(false),
        ALLOCATOR_ANOTHER_HOSTS => Err((
            "the bundle already allocates through the allocator of another df-plugin-host in \
             this process (an application that links the host twice, with two allocators), and \
             it hands its columns to whichever host reads them"
                .to_string(),
            "load this bundle through one host of the process only",
        )),
        other => Err((
            format!(
                "the bundle answered {other} to the host's allocator, which no plugin ABI defines"
            ),
            "rebuild the bundle with df_plugin_api::export_bundle!",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_fed_by_another_host_or_answering_nonsense_is_refused() {
        assert_eq!(shares(ALLOCATOR_SHARED), Ok(true));
        assert_eq!(shares(ALLOCATOR_KEPT), Ok(false));
        let (problem, fix) = shares(ALLOCATOR_ANOTHER_HOSTS).expect_err("another host's");
        assert!(problem.contains("another df-plugin-host"), "{problem}");
        assert!(fix.contains("one host"), "{fix}");
        let (problem, _) = shares(7).expect_err("no such answer");
        assert!(problem.contains("answered 7"), "{problem}");
    }
}
