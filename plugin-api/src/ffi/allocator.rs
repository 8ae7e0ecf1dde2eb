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
//! A host whose global allocator is the system's (a Rust binary's default, and this project's
//! CLI) can say so ([`FFI_HostAllocator::system`]): the bundle then keeps allocating from the
//! system directly, which is the host's allocator already, and hands its columns over whatever
//! it allocated before. Through the table, each of a bundle's allocations and frees runs about
//! a dozen instructions more than a native one (the state, the table's call and its wrapper);
//! on the system's path, three (see `unsettled` below). The Delta scan allocates 231 times a
//! batch.
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
/// allocates through `host`, if it allocated nothing before (or `host` is the system's); one of
/// the three answers below. `host` must allocate with `std::alloc`'s contract.
pub type ShareAllocatorFn = unsafe extern "C" fn(host: &'static FFI_HostAllocator) -> u8;

/// The bundle keeps the system's allocator (it allocated before the host's call): its columns
/// cross as in plugin ABI 1.8.
pub const ALLOCATOR_KEPT: u8 = 0;
/// The bundle allocates through the host's allocator and hands its columns over.
pub const ALLOCATOR_SHARED: u8 = 1;
/// The bundle already hands its columns over to another host image of the process, whose
/// allocator may not be this one's (an application that links the host twice). It hands them
/// to whichever host reads them, so only the first host may load it.
pub const ALLOCATOR_ANOTHER_HOSTS: u8 = 2;

/// The host's global allocator as four C functions, with `std::alloc`'s contract: a size and
/// an alignment (a power of two) instead of a `Layout`.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_HostAllocator {
    /// The functions are the system's (`std::alloc::System`): a bundle need not call them, as
    /// its own system allocator is the same.
    pub is_system: bool,
    pub alloc: unsafe extern "C" fn(size: usize, align: usize) -> *mut u8,
    pub alloc_zeroed: unsafe extern "C" fn(size: usize, align: usize) -> *mut u8,
    pub dealloc: unsafe extern "C" fn(ptr: *mut u8, size: usize, align: usize),
    pub realloc:
        unsafe extern "C" fn(ptr: *mut u8, size: usize, align: usize, new_size: usize) -> *mut u8,
}

impl FFI_HostAllocator {
    /// This image's global allocator (the host's, whatever the application chose).
    pub const fn new() -> Self {
        Self::of::<Global>(false)
    }

    /// The system's allocator, for a host whose global allocator is the system's.
    ///
    /// # Safety
    /// This image's global allocator is `std::alloc::System` (no `#[global_allocator]` in the
    /// application): memory a bundle hands over is freed with it.
    pub const unsafe fn system() -> Self {
        Self::of::<System>(true)
    }

    const fn of<A: GlobalAlloc + Default>(is_system: bool) -> Self {
        Self {
            is_system,
            alloc: alloc_fn_wrapper::<A>,
            alloc_zeroed: alloc_zeroed_fn_wrapper::<A>,
            dealloc: dealloc_fn_wrapper::<A>,
            realloc: realloc_fn_wrapper::<A>,
        }
    }
}

impl Default for FFI_HostAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// This image's global allocator, whichever it is.
#[derive(Default)]
struct Global;

// SAFETY: `std::alloc`'s functions are the global allocator's.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { std::alloc::alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { std::alloc::alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { std::alloc::realloc(ptr, layout, new_size) }
    }
}

// SAFETY (all four): the consumer passes what `GlobalAlloc` was given, a valid layout's size and
// alignment, and a pointer this allocator returned.
unsafe extern "C" fn alloc_fn_wrapper<A: GlobalAlloc + Default>(
    size: usize,
    align: usize,
) -> *mut u8 {
    unsafe { A::default().alloc(Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn alloc_zeroed_fn_wrapper<A: GlobalAlloc + Default>(
    size: usize,
    align: usize,
) -> *mut u8 {
    unsafe { A::default().alloc_zeroed(Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn dealloc_fn_wrapper<A: GlobalAlloc + Default>(
    ptr: *mut u8,
    size: usize,
    align: usize,
) {
    unsafe { A::default().dealloc(ptr, Layout::from_size_align_unchecked(size, align)) }
}

unsafe extern "C" fn realloc_fn_wrapper<A: GlobalAlloc + Default>(
    ptr: *mut u8,
    size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
    unsafe { A::default().realloc(ptr, layout, new_size) }
}

/// Nothing allocated yet, nothing lent.
const UNSET: u8 = 0;
/// Allocating from the system: before any host lent its allocator (for good), or because the
/// host's is the system's.
const SYSTEM: u8 = 1;
/// A host is lending its allocator; [`Lending::lent`] is being written.
const SHARING: u8 = 2;
/// Every allocation goes to [`Lending::lent`].
const HOST: u8 = 3;

/// Which allocator an image allocates from, and whether it may hand memory over: one static of
/// it per bundle ([`BundleAllocator`]'s); tests make their own.
struct Lending {
    state: AtomicU8,
    lent: AtomicPtr<FFI_HostAllocator>,
    /// The host frees what this image allocates with its own allocator.
    hands_over: AtomicBool,
}

impl Lending {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(UNSET),
            lent: AtomicPtr::new(std::ptr::null_mut()),
            hands_over: AtomicBool::new(false),
        }
    }

    /// The allocator this image settled on, as every allocation of a bundle sees it: `SYSTEM`
    /// and `HOST` are final.
    #[inline(always)]
    fn settled(&self) -> Settled {
        match self.state.load(Ordering::Acquire) {
            SYSTEM => Settled::System,
            // SAFETY: `lent` was written before `HOST` was stored (release) and never changes.
            HOST => Settled::Host(unsafe { &*self.lent.load(Ordering::Relaxed) }),
            _ => Settled::Not,
        }
    }

    /// The host's allocator if it was lent, `None` while this image allocates from the system.
    #[inline]
    fn allocator(&self) -> Option<&'static FFI_HostAllocator> {
        loop {
            match self.settled() {
                Settled::Host(host) => return Some(host),
                Settled::System => return None,
                // The first allocation: the system's, unless a host got here first.
                Settled::Not => {
                    match self.state.compare_exchange(
                        UNSET,
                        SYSTEM,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return None,
                        // A host is lending its own right now.
                        Err(SHARING) => std::hint::spin_loop(),
                        // Settled meanwhile: read it again.
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// See [`share_allocator`].
    fn share(&self, host: &'static FFI_HostAllocator) -> u8 {
        let ours = std::ptr::from_ref(host).cast_mut();
        let answer = loop {
            match self
                .state
                .compare_exchange(UNSET, SHARING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if host.is_system => {
                    self.state.store(SYSTEM, Ordering::Release);
                    break ALLOCATOR_SHARED;
                }
                Ok(_) => {
                    self.lent.store(ours, Ordering::Relaxed);
                    self.state.store(HOST, Ordering::Release);
                    break ALLOCATOR_SHARED;
                }
                // The system's allocations so far are the host's too.
                Err(SYSTEM) if host.is_system => break ALLOCATOR_SHARED,
                Err(SYSTEM) => break ALLOCATOR_KEPT,
                Err(HOST) if std::ptr::eq(self.lent.load(Ordering::Relaxed), ours) => {
                    break ALLOCATOR_SHARED;
                }
                Err(HOST) => break ALLOCATOR_ANOTHER_HOSTS,
                // Another host is lending its own right now.
                Err(_) => std::hint::spin_loop(),
            }
        };
        match answer {
            ALLOCATOR_SHARED => self.hands_over.store(true, Ordering::Relaxed),
            // It hands its columns to a host of the system's allocator already.
            ALLOCATOR_KEPT if self.hands_over.load(Ordering::Relaxed) => {
                return ALLOCATOR_ANOTHER_HOSTS;
            }
            _ => {}
        }
        answer
    }
}

/// What [`Lending::settled`] found.
enum Settled {
    System,
    Host(&'static FFI_HostAllocator),
    /// Nothing allocated yet, or a host lending right now: [`Lending::allocator`] decides.
    Not,
}

static LENDING: Lending = Lending::new();
static IN_PROCESS: AtomicBool = AtomicBool::new(false);

/// A bundle's global allocator: the system's until a host lends its own through
/// [`share_allocator`], the host's from then on (unless the host's is the system's too).
/// `export_bundle!` declares it.
pub struct BundleAllocator;

// SAFETY: every call goes to one allocator for the image's whole life past its first allocation
// (the system's or the host's), so memory is always freed by the allocator that made it.
unsafe impl GlobalAlloc for BundleAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match LENDING.settled() {
            // SAFETY: `GlobalAlloc`'s contract, passed on.
            Settled::System => unsafe { System.alloc(layout) },
            Settled::Host(host) => unsafe { (host.alloc)(layout.size(), layout.align()) },
            Settled::Not => unsafe { unsettled::alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match LENDING.settled() {
            // SAFETY: as above.
            Settled::System => unsafe { System.alloc_zeroed(layout) },
            Settled::Host(host) => unsafe { (host.alloc_zeroed)(layout.size(), layout.align()) },
            Settled::Not => unsafe { unsettled::alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match LENDING.settled() {
            // SAFETY: as above; `ptr` came from the same allocator.
            Settled::System => unsafe { System.dealloc(ptr, layout) },
            Settled::Host(host) => unsafe { (host.dealloc)(ptr, layout.size(), layout.align()) },
            Settled::Not => unsafe { unsettled::dealloc(ptr, layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match LENDING.settled() {
            // SAFETY: as above.
            Settled::System => unsafe { System.realloc(ptr, layout, new_size) },
            Settled::Host(host) => unsafe {
                (host.realloc)(ptr, layout.size(), layout.align(), new_size)
            },
            Settled::Not => unsafe { unsettled::realloc(ptr, layout, new_size) },
        }
    }
}

/// [`BundleAllocator`]'s calls before the image settled on an allocator: its first allocation,
/// or one while a host is lending its own. Out of line, so that the race stays out of
/// `__rust_alloc` and `__rust_dealloc`. Inline, rustc kept it there with the registers it
/// saves, and the system's path cost 9 instructions more than a native allocation and 7 more
/// than a native free, where it now costs 3 (callgrind: a third of what the Delta projection's
/// crossing counted, 231 allocations a batch of the Delta scan).
mod unsettled {
    use super::*;

    // SAFETY (all four): `GlobalAlloc`'s contract, passed on to the allocator this image
    // allocates from.
    #[cold]
    #[inline(never)]
    pub(super) unsafe fn alloc(layout: Layout) -> *mut u8 {
        match LENDING.allocator() {
            Some(host) => unsafe { (host.alloc)(layout.size(), layout.align()) },
            None => unsafe { System.alloc(layout) },
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) unsafe fn alloc_zeroed(layout: Layout) -> *mut u8 {
        match LENDING.allocator() {
            Some(host) => unsafe { (host.alloc_zeroed)(layout.size(), layout.align()) },
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
        match LENDING.allocator() {
            Some(host) => unsafe { (host.dealloc)(ptr, layout.size(), layout.align()) },
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match LENDING.allocator() {
            Some(host) => unsafe { (host.realloc)(ptr, layout.size(), layout.align(), new_size) },
            None => unsafe { System.realloc(ptr, layout, new_size) },
        }
    }
}

/// What [`SHARE_ALLOCATOR_SYMBOL`] does in a bundle: lends `host`'s allocator to this image's
/// [`BundleAllocator`], if it allocated nothing yet. [`ALLOCATOR_SHARED`] also when it already
/// allocates through `host` (the same host image asking again), and when `host` is the
/// system's, whatever it allocated before.
///
/// # Safety
/// `host` allocates with `std::alloc`'s contract (the system's, if it says so), and this
/// image's global allocator is [`BundleAllocator`] (`export_bundle!` declares both the
/// allocator and the symbol).
pub unsafe fn share_allocator(host: &'static FFI_HostAllocator) -> u8 {
    LENDING.share(host)
}

/// Whether memory this image allocates may be handed to the image it sends batches to, which
/// then frees it with its own allocator: in a bundle that a host lent its allocator to, or in
/// one image after [`share_in_process`].
#[inline]
pub fn hands_over() -> bool {
    LENDING.hands_over.load(Ordering::Relaxed) || IN_PROCESS.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;

    static GLOBAL: FFI_HostAllocator = FFI_HostAllocator::new();
    static ANOTHER: FFI_HostAllocator = FFI_HostAllocator::new();
    // SAFETY: the test binary declares no global allocator.
    static SYSTEM_TABLE: FFI_HostAllocator = unsafe { FFI_HostAllocator::system() };

    fn lent(lending: &Lending) -> Option<*const FFI_HostAllocator> {
        lending.allocator().map(std::ptr::from_ref)
    }

    #[test]
    fn a_host_lends_its_allocator_to_an_image_that_allocated_nothing_yet() {
        let lending = Lending::new();
        assert_eq!(lending.share(&GLOBAL), ALLOCATOR_SHARED);
        assert_eq!(lent(&lending), Some(std::ptr::from_ref(&GLOBAL)));
        assert!(lending.hands_over.load(Ordering::Relaxed));
        assert_eq!(
            lending.share(&GLOBAL),
            ALLOCATOR_SHARED,
            "the same host again"
        );
        assert_eq!(lending.share(&ANOTHER), ALLOCATOR_ANOTHER_HOSTS);
        assert_eq!(lending.share(&SYSTEM_TABLE), ALLOCATOR_ANOTHER_HOSTS);
        assert_eq!(lent(&lending), Some(std::ptr::from_ref(&GLOBAL)));
    }

    #[test]
    fn an_image_that_allocated_first_keeps_the_system_allocator_for_good() {
        let lending = Lending::new();
        assert_eq!(lent(&lending), None, "the first allocation");
        assert_eq!(lending.share(&GLOBAL), ALLOCATOR_KEPT);
        assert_eq!(lent(&lending), None);
        assert!(!lending.hands_over.load(Ordering::Relaxed));
    }

    #[test]
    fn a_system_host_is_shared_with_whatever_was_allocated_before() {
        for allocated_first in [false, true] {
            let lending = Lending::new();
            if allocated_first {
                assert_eq!(lent(&lending), None);
            }
            assert_eq!(lending.share(&SYSTEM_TABLE), ALLOCATOR_SHARED);
            assert_eq!(lent(&lending), None, "the system's, directly");
            assert!(lending.hands_over.load(Ordering::Relaxed));
            assert_eq!(
                lending.share(&GLOBAL),
                ALLOCATOR_ANOTHER_HOSTS,
                "a host of its own heap"
            );
        }
    }

    /// What `BundleAllocator` reads on every call: the state's two final values, and nothing
    /// else taken for one of them.
    fn settled(lending: &Lending) -> Option<Option<*const FFI_HostAllocator>> {
        match lending.settled() {
            Settled::System => Some(None),
            Settled::Host(host) => Some(Some(std::ptr::from_ref(host))),
            Settled::Not => None,
        }
    }

    #[test]
    fn only_a_settled_state_takes_the_inline_path() {
        let fresh = Lending::new();
        assert_eq!(settled(&fresh), None, "nothing allocated yet");
        assert_eq!(lent(&fresh), None, "the first allocation settles it");
        assert_eq!(settled(&fresh), Some(None), "the system's for good");

        let lent_to = Lending::new();
        lent_to.share(&GLOBAL);
        assert_eq!(settled(&lent_to), Some(Some(std::ptr::from_ref(&GLOBAL))));

        let lending_now = Lending::new();
        lending_now.state.store(SHARING, Ordering::Relaxed);
        assert_eq!(settled(&lending_now), None, "a host is writing its table");

        let system_host = Lending::new();
        system_host.share(&SYSTEM_TABLE);
        assert_eq!(settled(&system_host), Some(None));
    }

    #[test]
    fn the_tables_allocate_and_free() {
        for table in [&GLOBAL, &SYSTEM_TABLE] {
            unsafe {
                let p = (table.alloc)(64, 16);
                assert!(!p.is_null() && p.addr().is_multiple_of(16));
                p.write_bytes(7, 64);
                let p = (table.realloc)(p, 64, 16, 4096);
                assert_eq!(*p.add(63), 7);
                (table.dealloc)(p, 4096, 16);
                let z = (table.alloc_zeroed)(32, 8);
                assert_eq!(*z.add(31), 0);
                (table.dealloc)(z, 32, 8);
            }
        }
    }
}
