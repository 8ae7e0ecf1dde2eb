//! `FFI_HostAllocator`: the host's allocator, lent to a bundle (plugin ABI 1.9), so that memory
//! a bundle fills can be handed to the host instead of held for it.
//!
//! A bundle is a Rust image of its own, with its own global allocator; until 1.9 every buffer
//! a bundle sent had to stay the bundle's, released through a call back into it when the host
//! was done. The host's objects around that memory (an owner per batch, a `Bytes` per buffer)
//! are then freed by whichever thread drops the batch, mostly not the one that made them, and
//! that costs more than the crossing's own work (`<abi binary> crossing`). A bundle that
//! allocates through the host's allocator can give the host a column's values as a plain
//! allocation of the host's, which arrow-rs frees like any array it built itself.
//!
//! The host lends its allocator through [`SHARE_ALLOCATOR_SYMBOL`] right after opening the
//! library, before it calls anything else in it. [`BundleAllocator`], the global allocator
//! that `export_bundle!` declares, allocates from the system until then; if anything was
//! allocated before the host's call (a constructor that ran at `dlopen`), it stays on the
//! system allocator for good and says so ([`ALLOCATOR_KEPT`]), and the bundle keeps the
//! crossing of 1.8: the system's allocations must go back to the system.
//!
//! The table is a static of the host's, alive for the process; it needs no `clone`, `release`
//! or `private_data`, as it holds no state.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};

/// The plugin ABI minor whose bundles a host lends its allocator to.
pub const SHARE_ALLOCATOR_MINOR: u16 = 9;

/// Name of the symbol a bundle of ABI 1.9 or later exports: [`ShareAllocatorFn`].
pub const SHARE_ALLOCATOR_SYMBOL: &str = "df_plugin_share_allocator";

/// `unsafe extern "C" fn(host: &'static FFI_HostAllocator) -> u8`: from now on the bundle
/// allocates through `host`, if it allocated nothing before; one of the three answers below.
/// `host` must allocate with `std::alloc`'s contract.
pub type ShareAllocatorFn = unsafe extern "C" fn(host: &'static FFI_HostAllocator) -> u8;

/// The bundle keeps the system's allocator (it allocated before the host's call): its columns
/// cross as in plugin ABI 1.8.
pub const ALLOCATOR_KEPT: u8 = 0;
/// The bundle allocates through the host's allocator and hands its columns over.
pub const ALLOCATOR_SHARED: u8 = 1;
/// The bundle already allocates through another allocator a host lent it: a second host image
/// in the process, with its own allocator. It hands its columns over to whichever host reads
/// them, so only the first host may load it.
pub const ALLOCATOR_ANOTHER_HOSTS: u8 = 2;

/// The host's global allocator as four C functions, with `std::alloc`'s contract: a size and
/// an alignment (a power of two) instead of a `Layout`.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_HostAllocator {
    pub alloc: unsafe extern "C" fn(size: usize, align: usize) -> *mut u8,
    pub alloc_zeroed: unsafe extern "C" fn(size: usize, align: usize) -> *mut u8,
    pub dealloc: unsafe extern "C" fn(ptr: *mut u8, size: usize, align: usize),
    pub realloc:
        unsafe extern "C" fn(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8,
}

impl FFI_HostAllocator {
    /// This image's global allocator (the host's, whatever the application chose).
    pub const fn new() -> Self {
        Self {
            alloc: alloc_fn_wrapper,
            alloc_zeroed: alloc_zeroed_fn_wrapper,
            dealloc: dealloc_fn_wrapper,
            realloc: realloc_fn_wrapper,
        }
    }
}

impl Default for FFI_HostAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY (all four): the consumer passes what `GlobalAlloc` was given, a valid layout's size and
// alignment, and a pointer this allocator returned.
unsafe extern "C" fn alloc_fn_wrapper(size: usize, align: usize) -> *mut u8 {
    unsafe { std::alloc::alloc(Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn alloc_zeroed_fn_wrapper(size: usize, align: usize) -> *mut u8 {
    unsafe { std::alloc::alloc_zeroed(Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn dealloc_fn_wrapper(ptr: *mut u8, size: usize, align: usize) {
    unsafe { std::alloc::dealloc(ptr, Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn realloc_fn_wrapper(
    ptr: *mut u8,
    size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    unsafe {
        std::alloc::realloc(
            ptr,
            Layout::from_size_align_unchecked(size, align),
            new_size,
        )
    }
}

/// Nothing allocated yet, nothing lent.
const UNSET: u8 = 0;
/// Allocated from the system before any host lent its allocator: for good.
const SYSTEM: u8 = 1;
/// A host is lending its allocator; [`LENT`] is being written.
const SHARING: u8 = 2;
/// Every allocation goes to [`LENT`].
const HOST: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNSET);
static LENT: AtomicPtr<FFI_HostAllocator> = AtomicPtr::new(std::ptr::null_mut());
static IN_PROCESS: AtomicBool = AtomicBool::new(false);

/// A bundle's global allocator: the system's until a host lends its own through
/// [`share_allocator`], the host's from then on. `export_bundle!` declares it.
pub struct BundleAllocator;

impl BundleAllocator {
    /// The host's allocator if it was lent, `None` while this image allocates from the system.
    #[inline]
    fn lent(&self) -> Option<&'static FFI_HostAllocator> {
        loop {
            match STATE.load(Ordering::Acquire) {
                // SAFETY: `LENT` was written before `HOST` was stored (release) and never changes.
                HOST => return Some(unsafe { &*LENT.load(Ordering::Relaxed) }),
                SYSTEM => return None,
                // The first allocation: the system's, unless a host got here first.
                UNSET => {
                    let first =
                        STATE.compare_exchange(UNSET, SYSTEM, Ordering::AcqRel, Ordering::Acquire);
                    if first.is_ok() {
                        return None;
                    }
                }
                _ => std::hint::spin_loop(),
            }
        }
    }
}

// SAFETY: every call goes to one allocator for the image's whole life past its first allocation
// (the system's or the host's), so memory is always freed by the allocator that made it.
unsafe impl GlobalAlloc for BundleAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.lent() {
            // SAFETY: `GlobalAlloc`'s contract, passed on.
            Some(host) => unsafe { (host.alloc)(layout.size(), layout.align()) },
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.lent() {
            // SAFETY: as above.
            Some(host) => unsafe { (host.alloc_zeroed)(layout.size(), layout.align()) },
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.lent() {
            // SAFETY: as above; `ptr` came from the same allocator.
            Some(host) => unsafe { (host.dealloc)(ptr, layout.size(), layout.align()) },
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match self.lent() {
            // SAFETY: as above.
            Some(host) => unsafe { (host.realloc)(ptr, layout.size(), layout.align(), new_size) },
            None => unsafe { System.realloc(ptr, layout, new_size) },
        }
    }
}

/// What [`SHARE_ALLOCATOR_SYMBOL`] does in a bundle: lends `host`'s allocator to this image's
/// [`BundleAllocator`], if it allocated nothing yet; [`ALLOCATOR_SHARED`] also when it already
/// allocates through `host` (the same host image asking again).
///
/// # Safety
/// `host` allocates with `std::alloc`'s contract, and this image's global allocator is
/// [`BundleAllocator`] (`export_bundle!` declares both the allocator and the symbol).
pub unsafe fn share_allocator(host: &'static FFI_HostAllocator) -> u8 {
    let ours = std::ptr::from_ref(host).cast_mut();
    loop {
        match STATE.compare_exchange(UNSET, SHARING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                LENT.store(ours, Ordering::Relaxed);
                STATE.store(HOST, Ordering::Release);
                return ALLOCATOR_SHARED;
            }
            Err(HOST) if std::ptr::eq(LENT.load(Ordering::Relaxed), ours) => {
                return ALLOCATOR_SHARED;
            }
            Err(HOST) => return ALLOCATOR_ANOTHER_HOSTS,
            Err(SYSTEM) => return ALLOCATOR_KEPT,
            // Another host is lending its own right now.
            Err(_) => std::hint::spin_loop(),
        }
    }
}

/// Whether memory this image allocates may be handed to the image it sends batches to, which
/// then frees it with its own allocator: in a bundle that a host lent its allocator to, or in
/// one image after [`share_in_process`].
#[inline]
pub fn hands_over() -> bool {
    STATE.load(Ordering::Relaxed) == HOST || IN_PROCESS.load(Ordering::Relaxed)
}

/// Lets this image hand memory over (`share`) or not, when it is both the producer and the
/// consumer (the benchmark's `crossing`, which exports and imports in one process).
///
/// # Safety
/// While on, everything this image exports is imported by this image: a host that loads
/// bundles must never turn it on, as it would hand them memory they cannot free.
pub unsafe fn share_in_process(share: bool) {
    IN_PROCESS.store(share, Ordering::Relaxed);
}
