//! `FFI_ArrayBuffers`: an array crossing as its buffers (plugin ABI 1.6 for scalar functions'
//! arguments and results, 1.7 for the columns of a plan's batches).
//!
//! The Arrow C data interface is general, and a batch pays for it: the producer allocates a
//! private struct, a buffer list and a pointer list for every array, and the consumer wraps
//! the array in a shared owner and every buffer in an owner of its own, then builds the array
//! from a generic `ArrayData`. About nine allocations per array whatever its type; measured
//! alone, a round trip of one 8,192-row Int64 array took ~700 ns. A scalar function's batch
//! crosses three arrays, 1,221 times for 10M rows.
//!
//! Most arrays a scalar function sees and returns are fixed-width (integers, floats,
//! timestamps, dates, decimals). Those cross here as a pointer to their values and one to
//! their validity bitmap, kept alive by one handle on the producer's array; the consumer
//! wraps both pointers around one shared owner and builds the typed array directly (~150 ns
//! for the same round trip). Arrays of any other layout (strings, booleans, nested) cross
//! inside the same struct through the C data interface, as before.
//!
//! A scalar argument or result (a constant, `time_bucket(ts, 300)`) crosses as a one-row array
//! flagged as a scalar. An integer, float, date or timestamp skips the array on both sides: the
//! producer copies its value into a box the struct owns, and the consumer reads the value and
//! its validity bit back into a `ScalarValue` ([`FFI_ArrayBuffers::from_scalar`],
//! [`FFI_ArrayBuffers::import_scalar`]). The layout is the same, so either side may be older.
//!
//! A bundle that allocates through the host's allocator (plugin ABI 1.9, see
//! [`super::allocator`]) hands a column it gives up over to the host when its values fill a
//! plain allocation, as a `Vec` would (the Parquet reader's, a column built from a `Vec`): the
//! struct carries the pointer with [`HANDED_OVER`] set in its width, and the consumer builds the
//! array around the memory as arrow-rs builds one from a `Vec`, with no owner and no release
//! through the bundle. Only the null bitmap, if any, stays the producer's.
//!
//! The type does not cross: both sides agreed on it when the call was bound. The consumer
//! checks that the layout and value width the producer sent fit that type, so a bundle that
//! returns something else gets an error instead of a misread buffer.

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ops::DerefMut;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::alloc::Allocation;
use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray, downcast_primitive,
    downcast_primitive_array, new_empty_array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::ArrowNativeType;
use datafusion::arrow::datatypes::{DataType, FieldRef, TimeUnit};
use datafusion::arrow::ffi::FFI_ArrowArray;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;

use super::{allocator, cdata};

/// Set in [`FFI_ArrayBuffers::byte_width`] when the values are handed over (plugin ABI 1.9): an
/// allocation of the consumer's allocator of exactly `len` values, aligned to their width (the
/// layout of a `Vec` of them), which the consumer frees. Only a bundle the host lent its
/// allocator to sets it ([`allocator::hands_over`]; or an image that exports to itself, after
/// [`allocator::share_in_process`]), so no consumer older than 1.9 meets it.
pub const HANDED_OVER: usize = 1 << (usize::BITS - 1);

/// One array: a fixed-width array by its buffers, any other through the C data interface.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ArrayBuffers {
    /// Number of rows.
    pub len: usize,
    /// Bytes per value of a fixed-width array; 0 when [`Self::cdata`] carries the array. With
    /// [`HANDED_OVER`] set, the values are the consumer's to free.
    pub byte_width: usize,
    /// The first row's value (the array's offset already applied), `len * byte_width` bytes.
    pub values: *const u8,
    /// The validity bitmap, null when no row is null.
    pub nulls: *const u8,
    /// The bit of [`Self::nulls`] that holds the first row.
    pub nulls_offset: usize,
    /// Number of null rows.
    pub null_count: usize,
    /// An array of any other layout (released and empty for a fixed-width array).
    pub cdata: FFI_ArrowArray,
    /// Releases what keeps [`Self::values`] (unless handed over) and [`Self::nulls`] alive. It
    /// reads only [`Self::private_data`]: the consumer may call it on another struct carrying
    /// the same `release` and `private_data` (it keeps those two, not the whole struct).
    pub release: unsafe extern "C" fn(array: &mut Self),
    /// Internal data: the producer's array, or the value of a scalar sent without one. Only
    /// the producer may access it.
    pub private_data: *mut c_void,
}

// SAFETY: the pointers are into immutable buffers that `private_data` keeps (the producer's
// `ArrayRef`, or the memory taken out of it, both `Send + Sync`); the C data interface array is
// `Send + Sync` too.
unsafe impl Send for FFI_ArrayBuffers {}
unsafe impl Sync for FFI_ArrayBuffers {}

impl FFI_ArrayBuffers {
    /// Exports `array`, keeping a handle on it until the consumer releases the struct.
    pub fn new(array: &ArrayRef) -> Self {
        let mut this = Self::empty(array.len());
        let handle = array;
        let values: Option<*const u8> = downcast_primitive_array!(
            array => {
                this.hold(array, Arc::clone(handle));
                Some(array.values().inner().as_ptr())
            },
            _ => None
        );
        let Some(values) = values else {
            this.cdata = cdata::export(array);
            return this;
        };
        if let Some(nulls) = array.nulls() {
            this.point_at_nulls(nulls);
        }
        this.byte_width = array.data_type().primitive_width().unwrap_or(0);
        this.values = values;
        this
    }

    /// Exports `array`, which the caller gives up (a batch's column on its way out of a plan's
    /// stream). A fixed-width array that nothing else shares, with buffers that start their
    /// allocations (nearly every array a plan makes), is taken apart here, on the producing
    /// thread: the struct keeps only its values' memory (and its null bitmap), and the array
    /// and its `Bytes` are freed now. The consumer mostly frees a plan's batch on another
    /// thread, and there every object the producer left costs its cache lines' trips between
    /// the cores (see `<abi binary> crossing`). Any other array is exported as
    /// [`Self::new`] does.
    pub fn from_owned(array: ArrayRef) -> Self {
        macro_rules! owned {
            ($t:ty, $array:ident) => {
                Self::own::<$t>($array, allocator::hands_over())
            };
        }
        let owned = downcast_primitive!(array.data_type() => (owned, array), _ => Err(array));
        owned.unwrap_or_else(|array| Self::new(&array))
    }

    /// The struct for `handle`'s array of `T` taken apart (its values handed over if
    /// `hand_over` and they can be), or `handle` back when something else shares it or its
    /// values' memory cannot be taken over.
    fn own<T: ArrowPrimitiveType>(handle: ArrayRef, hand_over: bool) -> Result<Self, ArrayRef> {
        let Some(typed) = handle.as_primitive_opt::<T>() else {
            return Err(handle);
        };
        let values = typed.values().inner();
        if Arc::strong_count(&handle) != 1
            || Arc::weak_count(&handle) != 0
            || values.strong_count() != 1
            || values.ptr_offset() != 0
            || !holds_itself(&handle, typed)
        {
            return Err(handle);
        }
        // Moved out of its allocation, not cloned and dropped: a clone of its `DataType` and
        // the drop of another were code a batch ran cold (callgrind, a scalar function's
        // result).
        // SAFETY: the allocation holds this `PrimitiveArray<T>` (`holds_itself`), so it is an
        // `Arc<PrimitiveArray<T>>`'s, and `handle` is its only handle.
        let typed = unsafe { Arc::from_raw(Arc::into_raw(handle) as *const PrimitiveArray<T>) };
        let typed = Arc::try_unwrap(typed).map_err(|shared| shared as ArrayRef)?;
        let (data_type, values, nulls) = typed.into_parts();
        let len = values.len();
        let values = match handed_over_values::<T::Native>(values.into_inner(), hand_over) {
            Ok(values) => return Ok(Self::hand_over(values, nulls)),
            Err(values) => values,
        };
        let values = match values.into_mutable() {
            Ok(values) => values,
            // Memory arrow-rs did not allocate itself (imported, mapped): keep the array.
            Err(buffer) => {
                let values = ScalarBuffer::new(buffer, 0, len);
                let array = PrimitiveArray::<T>::new(values, nulls).with_data_type(data_type);
                return Err(Arc::new(array));
            }
        };
        let mut this = Self::empty(len);
        this.byte_width = size_of::<T::Native>();
        this.values = values.as_ptr();
        match nulls {
            None => this.keep(Box::new(values)),
            Some(nulls) => {
                this.point_at_nulls(&nulls);
                this.keep(Box::new((values, nulls)));
            }
        }
        Ok(this)
    }

    /// The struct for `values` handed over to the consumer; it keeps only `nulls`.
    fn hand_over<N: ArrowNativeType>(values: Vec<N>, nulls: Option<NullBuffer>) -> Self {
        let mut values = ManuallyDrop::new(values);
        let mut this = Self::empty(values.len());
        this.byte_width = size_of::<N>() | HANDED_OVER;
        this.values = values.as_mut_ptr().cast::<u8>();
        if let Some(nulls) = nulls {
            this.point_at_nulls(&nulls);
            this.keep(Box::new(nulls));
        }
        this
    }

    /// Points the struct at `nulls`, which the caller keeps alive with the values.
    fn point_at_nulls(&mut self, nulls: &NullBuffer) {
        self.nulls = nulls.buffer().as_ptr();
        self.nulls_offset = nulls.offset();
        self.null_count = nulls.null_count();
    }

    /// Keeps `memory` (what the struct's pointers point into) until the consumer releases it.
    fn keep<K: Send + Sync>(&mut self, memory: Box<K>) {
        self.private_data = Box::into_raw(memory) as *mut c_void;
        self.release = release_fn_wrapper::<K>;
    }

    /// Keeps `handle`, a handle on `typed`'s array, until the consumer releases the struct.
    ///
    /// When the handle's allocation holds `typed` itself ([`holds_itself`]), the struct keeps
    /// the handle as a thin pointer and its release is typed for `T`: no allocation. Otherwise
    /// the handle is boxed. A box is freed by whichever thread drops the last column, and a
    /// plan's batches are mostly dropped on another thread than the one that exported them,
    /// where glibc's malloc cannot recycle the chunk through the exporting thread's cache.
    fn hold<T: ArrowPrimitiveType>(&mut self, typed: &PrimitiveArray<T>, handle: ArrayRef) {
        if holds_itself(&handle, typed) {
            self.private_data = Arc::into_raw(handle) as *const PrimitiveArray<T> as *mut c_void;
            self.release = release_primitive_fn_wrapper::<T>;
        } else {
            self.keep(Box::new(handle));
        }
    }

    /// Exports a scalar as a one-row array without building the array: an integer, float,
    /// date or timestamp is copied into a small box the struct owns (`to_array_of_size(1)`
    /// and the array's handle took ~900 instructions a batch for a constant argument).
    /// `None` for any other scalar: the caller exports it as a one-row array.
    pub fn from_scalar(value: &ScalarValue) -> Option<Self> {
        let (width, bytes) = scalar_native_bytes(value)?;
        // The pointers come from the raw pointer, not from the box, which `into_raw` moves.
        let held = Box::into_raw(Box::new(ScalarBytes {
            value: bytes.unwrap_or_default(),
            validity: 0,
        }));
        let mut this = Self::empty(1);
        this.byte_width = width;
        // SAFETY: `held` is the live allocation just made; `release_fn_wrapper` frees it.
        this.values = unsafe { (&raw const (*held).value).cast::<u8>() };
        if bytes.is_none() {
            // SAFETY: as above.
            this.nulls = unsafe { &raw const (*held).validity };
            this.null_count = 1;
        }
        this.release = release_fn_wrapper::<ScalarBytes>;
        this.private_data = held as *mut c_void;
        Some(this)
    }

    /// A struct of `len` rows that carries and releases nothing.
    pub(crate) fn empty(len: usize) -> Self {
        Self {
            len,
            byte_width: 0,
            values: std::ptr::null(),
            nulls: std::ptr::null(),
            nulls_offset: 0,
            null_count: 0,
            cdata: FFI_ArrowArray::empty(),
            release: release_fn_wrapper::<ArrayRef>,
            private_data: std::ptr::null_mut(),
        }
    }

    /// Imports the array as `data_type`, the type both sides agreed on.
    ///
    /// # Safety
    /// `self` was made by [`FFI_ArrayBuffers::new`] (or to its contract) from an array whose
    /// buffers hold `len` rows.
    pub unsafe fn import(mut self, data_type: &DataType) -> Result<ArrayRef> {
        // One array crossing alone: its own owner, the handle itself. Not through
        // `share_owner`: a scalar function's result crosses this way every batch, and the
        // shared owner's gathering is code a batch runs cold (callgrind: ~15 first-level
        // instruction cache misses a batch more than this, for nothing to share).
        let owner = self.take_fixed(data_type)?;
        let owner = owner.map(|held| Arc::new(held) as Arc<dyn Allocation>);
        // SAFETY: the caller's contract; `owner` holds the handle `take_fixed` took.
        unsafe { self.import_held(data_type, owner) }
    }

    /// For a fixed-width type, checks that the producer sent values of its width and moves the
    /// handle on them out of the struct, which then releases nothing. `None` for other types,
    /// and for values handed over with no null bitmap (nothing is held).
    fn take_fixed(&mut self, data_type: &DataType) -> Result<Option<Held>> {
        let Some(width) = fixed_width(data_type) else {
            return Ok(None);
        };
        self.check_width(width, data_type)?;
        if self.handed_over() && self.private_data.is_null() {
            // Nothing to hold: the struct's release becomes this image's own no-op.
            self.release = release_fn_wrapper::<ArrayRef>;
            return Ok(None);
        }
        Ok(Some(Held::take(self)))
    }

    /// Checks that the producer sent values `width` bytes wide, as `data_type`'s are.
    fn check_width(&self, width: usize, data_type: &DataType) -> Result<()> {
        let sent = self.byte_width & !HANDED_OVER;
        if sent == width {
            return Ok(());
        }
        let found = match sent {
            0 => "a C data interface array".to_string(),
            w => format!("{w}-byte values"),
        };
        Err(layout_mismatch(data_type, &found))
    }

    /// Whether the values are the consumer's to free ([`HANDED_OVER`]).
    fn handed_over(&self) -> bool {
        self.byte_width & HANDED_OVER != 0
    }

    /// Frees values handed over and not imported (after an error, or a struct never sent).
    /// They are an allocation of exactly `len` values aligned to their width, the only ones
    /// handed over.
    fn free_handed_over(&mut self) {
        if !self.handed_over() || self.values.is_null() {
            return;
        }
        let width = self.byte_width & !HANDED_OVER;
        let size = self.len.checked_mul(width);
        let layout = size.and_then(|size| Layout::from_size_align(size, width).ok());
        // A layout no producer of ours hands over is leaked, not freed with the wrong layout.
        let values = self.values.addr();
        let layout = layout.filter(|l| l.size() > 0 && values.is_multiple_of(l.align()));
        if let Some(layout) = layout {
            // SAFETY: the producer allocated it with this layout through this image's allocator
            // (the flag's contract), and nothing else points into it.
            unsafe { std::alloc::dealloc(self.values.cast_mut(), layout) };
        }
        self.values = std::ptr::null();
    }

    /// Builds the array: a fixed-width type's around its values (handed over, or kept alive by
    /// `owner`: what [`Self::take_fixed`] took, maybe shared with other columns), any other from
    /// the C data interface array.
    ///
    /// # Safety
    /// As [`Self::import`]; `owner`, when `Some`, keeps this struct's buffers alive.
    unsafe fn import_held(
        mut self,
        data_type: &DataType,
        owner: Option<Arc<dyn Allocation>>,
    ) -> Result<ArrayRef> {
        // SAFETY: the caller's contract.
        unsafe { self.import_in_place(data_type, owner) }
    }

    /// [`Self::import_held`] leaving the struct where it is: a fixed-width array's handle stays
    /// in it, a C data interface array is moved out.
    ///
    /// # Safety
    /// As [`Self::import_held`].
    unsafe fn import_in_place(
        &mut self,
        data_type: &DataType,
        owner: Option<Arc<dyn Allocation>>,
    ) -> Result<ArrayRef> {
        macro_rules! fixed {
            ($t:ty, $this:expr, $data_type:expr, $owner:expr) => {
                // SAFETY: the caller's contract.
                unsafe { import_fixed::<$t>($this, $data_type, $owner) }
            };
        }
        downcast_primitive!(
            data_type => (fixed, self, data_type, owner),
            // SAFETY: the caller's contract.
            _ => unsafe { self.import_cdata(data_type) }
        )
    }

    /// Imports an array the producer lends for one call (plugin ABI 1.13, a scalar function's
    /// argument): the producer keeps the struct and releases it when the call returns.
    ///
    /// A fixed-width array the producer still owns is built around `lent` and its handle stays
    /// in the struct: no owner to allocate, no release to call back, when nothing keeps the
    /// array past the call. [`LentOwner::settle`] then says whether something did, and
    /// [`LentOwner::keep`] moves the handle into `lent` if so. Any other array (values handed
    /// over, the C data interface) is taken out of the struct and imported as
    /// [`Self::import`] does.
    ///
    /// # Safety
    /// As [`Self::import`]; the producer keeps the array's buffers alive until the call returns,
    /// and the caller settles `lent` before it does.
    pub unsafe fn import_lent(
        &mut self,
        data_type: &DataType,
        lent: &Arc<LentOwner>,
    ) -> Result<ArrayRef> {
        if fixed_width(data_type).is_none() || self.handed_over() {
            let taken = std::mem::replace(self, Self::empty(0));
            // SAFETY: the caller's contract.
            return unsafe { taken.import(data_type) };
        }
        let owner: Arc<dyn Allocation> = Arc::clone(lent) as _;
        // SAFETY: the caller's contract: the producer's handle, left in the struct, keeps the
        // buffers alive for the call, and `lent` takes it before anything outlives the call.
        unsafe { self.import_in_place(data_type, Some(owner)) }
    }

    /// Imports a one-row array as the scalar it stands for (a scalar argument or result of a
    /// scalar function). Integers, floats, dates and timestamps are read straight from the
    /// value and the validity bit: building a one-row array and reading it back with
    /// `ScalarValue::try_from_array` took ~1,900 instructions a batch, most of what a constant
    /// argument cost (callgrind). Any other type goes through the array.
    ///
    /// # Safety
    /// As [`Self::import`].
    pub unsafe fn import_scalar(self, data_type: &DataType) -> Result<ScalarValue> {
        // SAFETY: the caller's contract.
        if let Some(scalar) = unsafe { self.read_scalar(data_type) } {
            return Ok(scalar);
        }
        // SAFETY: the caller's contract.
        let array = unsafe { self.import(data_type) }?;
        if array.len() != 1 {
            let rows = format!("a scalar of {} rows", array.len());
            return Err(layout_mismatch(data_type, &rows));
        }
        ScalarValue::try_from_array(&array, 0)
    }

    /// The scalar of a one-row fixed-width array of a type read directly; `None` for anything
    /// else (the struct is left to the array path).
    ///
    /// # Safety
    /// As [`Self::import`].
    unsafe fn read_scalar(&self, data_type: &DataType) -> Option<ScalarValue> {
        if self.len != 1 || self.values.is_null() {
            return None;
        }
        // SAFETY: the bitmap holds the bits `nulls_offset..nulls_offset + len` (the contract).
        let valid = self.nulls.is_null()
            || unsafe { *self.nulls.add(self.nulls_offset / 8) } & (1 << (self.nulls_offset % 8))
                != 0;
        macro_rules! read {
            ($native:ty) => {{
                if self.byte_width & !HANDED_OVER != size_of::<$native>() {
                    return None;
                }
                // SAFETY: `values` holds one value of `byte_width` bytes (the contract),
                // maybe unaligned.
                valid.then(|| unsafe { std::ptr::read_unaligned(self.values as *const $native) })
            }};
        }
        use ScalarValue as S;
        Some(match data_type {
            DataType::Int8 => S::Int8(read!(i8)),
            DataType::Int16 => S::Int16(read!(i16)),
            DataType::Int32 => S::Int32(read!(i32)),
            DataType::Int64 => S::Int64(read!(i64)),
            DataType::UInt8 => S::UInt8(read!(u8)),
            DataType::UInt16 => S::UInt16(read!(u16)),
            DataType::UInt32 => S::UInt32(read!(u32)),
            DataType::UInt64 => S::UInt64(read!(u64)),
            DataType::Float32 => S::Float32(read!(f32)),
            DataType::Float64 => S::Float64(read!(f64)),
            DataType::Date32 => S::Date32(read!(i32)),
            DataType::Date64 => S::Date64(read!(i64)),
            DataType::Timestamp(unit, tz) => {
                let (value, tz) = (read!(i64), tz.clone());
                match unit {
                    TimeUnit::Second => S::TimestampSecond(value, tz),
                    TimeUnit::Millisecond => S::TimestampMillisecond(value, tz),
                    TimeUnit::Microsecond => S::TimestampMicrosecond(value, tz),
                    TimeUnit::Nanosecond => S::TimestampNanosecond(value, tz),
                }
            }
            _ => return None,
        })
    }

    /// # Safety
    /// As [`Self::import`].
    unsafe fn import_cdata(&mut self, data_type: &DataType) -> Result<ArrayRef> {
        if self.byte_width != 0 {
            return Err(layout_mismatch(data_type, "fixed-width values"));
        }
        let cdata = std::mem::replace(&mut self.cdata, FFI_ArrowArray::empty());
        if cdata.is_released() {
            return Err(layout_mismatch(data_type, "no array"));
        }
        // SAFETY: the producer exported an array of the type both sides agreed on.
        unsafe { cdata::import(cdata, data_type) }
    }
}

/// Whether `handle`'s allocation holds `typed` itself, as an `Arc<PrimitiveArray<T>>` made an
/// `ArrayRef` does (nearly every array: same address, size and alignment), rather than an
/// array wrapping another or a type of its own that answers `as_any` with an array inside it.
/// Then the handle can be turned back into the `Arc<PrimitiveArray<T>>` it was made from.
fn holds_itself<T: ArrowPrimitiveType>(handle: &ArrayRef, typed: &PrimitiveArray<T>) -> bool {
    let payload: &dyn Array = &**handle;
    std::ptr::addr_eq(payload, typed)
        && size_of_val(payload) == size_of::<PrimitiveArray<T>>()
        && align_of_val(payload) == align_of::<PrimitiveArray<T>>()
}

fn layout_mismatch(data_type: &DataType, found: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "an array of type {data_type} crossed the plugin boundary as {found}, which that type \
         cannot be (a bug in the bundle or in its plugin-api)"
    ))
}

/// `values`' memory as a `Vec` of exactly its values, to hand over: when this image may
/// (`hand_over`: [`allocator::hands_over`]), and the memory is one (a `Vec`'s layout, shared
/// with nothing, from its start: [`Buffer::into_vec`]) of values aligned to their width. A
/// `Vec` with room to spare is shrunk to fit (the last batch of a file, mostly). `values` back
/// otherwise.
fn handed_over_values<N: ArrowNativeType>(
    values: Buffer,
    hand_over: bool,
) -> Result<Vec<N>, Buffer> {
    if !hand_over || align_of::<N>() != size_of::<N>() || values.is_empty() {
        return Err(values);
    }
    let mut values = values.into_vec::<N>()?;
    values.shrink_to_fit();
    if values.capacity() != values.len() {
        return Err(Buffer::from_vec(values));
    }
    Ok(values)
}

/// A scalar of an integer, float, date or timestamp type as its width and its native bytes (in
/// the first `width` of the 8; `None` for a null): what [`FFI_ArrayBuffers::from_scalar`] sends,
/// and what a call over values lends (`super::values`). `None` for a scalar of any other type.
pub(crate) fn scalar_native_bytes(value: &ScalarValue) -> Option<(usize, Option<[u8; 8]>)> {
    use ScalarValue as S;
    macro_rules! native {
        ($v:expr, $t:ty) => {{
            let width = size_of::<$t>();
            let bytes = $v.map(|v: $t| {
                let mut bytes = [0u8; 8];
                bytes[..width].copy_from_slice(&v.to_ne_bytes());
                bytes
            });
            (width, bytes)
        }};
    }
    Some(match value {
        S::Int8(v) => native!(v, i8),
        S::Int16(v) => native!(v, i16),
        S::Int32(v) => native!(v, i32),
        S::Int64(v) => native!(v, i64),
        S::UInt8(v) => native!(v, u8),
        S::UInt16(v) => native!(v, u16),
        S::UInt32(v) => native!(v, u32),
        S::UInt64(v) => native!(v, u64),
        S::Float32(v) => native!(v, f32),
        S::Float64(v) => native!(v, f64),
        S::Date32(v) => native!(v, i32),
        S::Date64(v) => native!(v, i64),
        S::TimestampSecond(v, _)
        | S::TimestampMillisecond(v, _)
        | S::TimestampMicrosecond(v, _)
        | S::TimestampNanosecond(v, _) => native!(v, i64),
        _ => return None,
    })
}

/// Bytes per value of a fixed-width type (one [`FFI_ArrayBuffers`] sends as its buffers),
/// `None` for any other.
fn fixed_width(data_type: &DataType) -> Option<usize> {
    macro_rules! width {
        ($t:ty) => {
            Some(size_of::<<$t as ArrowPrimitiveType>::Native>())
        };
    }
    downcast_primitive!(data_type => (width), _ => None)
}

/// Imports a batch's columns, one per field of its schema, each as its field's type. The
/// fixed-width columns' buffers share one owner, which releases every column's producer array
/// when the last of them is dropped: one allocation a batch instead of one a column. On the
/// Delta table's six columns (four fixed-width) that took ~250 ns off a batch crossed and
/// dropped on one thread (`<abi binary> crossing`); handed to another thread, the batch costs
/// what it did, since there the cost follows the cache lines the host's `Bytes` and arrays
/// fill, not the count of allocations. A column kept alive longer than its batch keeps its
/// batch's other fixed-width columns alive too, as arrow-rs's import of a batch as one struct
/// array does for all of them.
///
/// The columns are taken by value: whatever this does not import, it releases.
///
/// # Safety
/// As [`FFI_ArrayBuffers::import`], for each column and its field's type.
pub unsafe fn import_columns(
    mut columns: impl DerefMut<Target = [FFI_ArrayBuffers]>,
    fields: &[FieldRef],
) -> Result<Vec<ArrayRef>> {
    if columns.len() != fields.len() {
        return Err(DataFusionError::Execution(format!(
            "a batch of {} columns crossed the plugin boundary in a stream of {} (a bug in the \
             bundle or in its plugin-api)",
            columns.len(),
            fields.len()
        )));
    }
    let owner = share_owner(columns.iter_mut().zip(fields.iter().map(|f| f.data_type())))?;
    columns
        .iter_mut()
        .zip(fields)
        .map(|(column, field)| {
            let column = std::mem::replace(column, FFI_ArrayBuffers::empty(0));
            // SAFETY: the caller's contract; `owner` holds every handle `share_owner` took.
            unsafe { column.import_shared(field.data_type(), &owner) }
        })
        .collect()
}

/// The first of two steps that import arrays crossing together (a batch's columns, a call's
/// arguments): checks each fixed-width array's width and moves its handle into one owner
/// they will share, none for no handle, the handle itself for one. Each array is then
/// imported with [`FFI_ArrayBuffers::import_shared`]. On an error the handles taken so far are
/// released with the owner; the arrays left release their own.
pub fn share_owner<'a>(
    arrays: impl IntoIterator<Item = (&'a mut FFI_ArrayBuffers, &'a DataType)>,
) -> Result<Option<Arc<dyn Allocation>>> {
    let mut held = HeldColumns::default();
    for (array, data_type) in arrays {
        held.extend(array.take_fixed(data_type)?);
    }
    Ok(held.into_owner())
}

impl FFI_ArrayBuffers {
    /// The second step of [`share_owner`]: imports the array around its values handed over or
    /// the owner that took its handle.
    ///
    /// # Safety
    /// As [`FFI_ArrayBuffers::import`]; `owner` is what [`share_owner`] returned for arrays
    /// that included this one, with the same type.
    pub unsafe fn import_shared(
        self,
        data_type: &DataType,
        owner: &Option<Arc<dyn Allocation>>,
    ) -> Result<ArrayRef> {
        // Past `share_owner` a fixed-width array's width is checked (so not 0); any other array
        // is imported without the owner, or refused if it has a width.
        let owner = (self.byte_width != 0).then(|| owner.clone()).flatten();
        // SAFETY: the caller's contract; `owner` holds every handle `share_owner` took.
        unsafe { self.import_held(data_type, owner) }
    }
}

/// The handles of fixed-width arrays crossing together, until they make one owner. Four fit
/// inline, so the owner of a typical batch is one allocation of glibc's fast bins.
#[derive(Default)]
struct HeldColumns {
    first: [Option<Held>; 4],
    more: Vec<Held>,
}

impl Extend<Held> for HeldColumns {
    fn extend<I: IntoIterator<Item = Held>>(&mut self, handles: I) {
        for handle in handles {
            match self.first.iter_mut().find(|slot| slot.is_none()) {
                Some(slot) => *slot = Some(handle),
                None => self.more.push(handle),
            }
        }
    }
}

impl HeldColumns {
    /// The owner the columns' buffers share: none without a handle, the handle itself when
    /// there is one (two pointers, as a lone array's).
    fn into_owner(mut self) -> Option<Arc<dyn Allocation>> {
        let taken = self.first.iter().flatten().count() + self.more.len();
        match taken {
            0 => None,
            1 => self.first[0]
                .take()
                .map(|h| Arc::new(h) as Arc<dyn Allocation>),
            _ => Some(Arc::new(self)),
        }
    }
}

/// # Safety
/// As [`FFI_ArrayBuffers::import`]; `T` is the primitive type of `data_type`, and `owner`, when
/// `Some`, keeps the array's buffers alive.
unsafe fn import_fixed<T: ArrowPrimitiveType>(
    array: &mut FFI_ArrayBuffers,
    data_type: &DataType,
    owner: Option<Arc<dyn Allocation>>,
) -> Result<ArrayRef> {
    let width = size_of::<T::Native>();
    array.check_width(width, data_type)?;
    if array.len == 0 {
        return Ok(new_empty_array(data_type));
    }
    let (len, values, nulls) = (array.len, array.values, array.nulls);
    let (nulls_offset, null_count) = (array.nulls_offset, array.null_count);
    let Some(values) = NonNull::new(values as *mut u8) else {
        return Err(layout_mismatch(data_type, "no values"));
    };
    if !values.cast::<T::Native>().is_aligned() {
        return Err(layout_mismatch(data_type, "misaligned values"));
    }
    let (Some(bytes), Some(bits)) = (len.checked_mul(width), nulls_offset.checked_add(len)) else {
        return Err(layout_mismatch(
            data_type,
            "a length past the address space",
        ));
    };
    if null_count > len {
        return Err(layout_mismatch(data_type, "more nulls than rows"));
    }
    let values = if array.handed_over() {
        if align_of::<T::Native>() != width {
            return Err(layout_mismatch(
                data_type,
                "handed-over values of another alignment",
            ));
        }
        array.values = std::ptr::null();
        // SAFETY: handed over, `len` values allocated as a `Vec` of exactly `len` of them by
        // this image's allocator, which nothing else frees or points into (the flag's contract).
        let values = unsafe { Vec::from_raw_parts(values.cast::<T::Native>().as_ptr(), len, len) };
        Buffer::from_vec(values)
    } else {
        let Some(owner) = owner.clone() else {
            return Err(layout_mismatch(data_type, "values nothing keeps alive"));
        };
        // SAFETY: the producer's array, kept alive by `owner`, holds `len` values from `values`.
        unsafe { Buffer::from_custom_allocation(values, bytes, owner) }
    };
    let nulls = match NonNull::new(nulls as *mut u8) {
        None => None,
        Some(nulls) => {
            let Some(owner) = owner else {
                return Err(layout_mismatch(
                    data_type,
                    "a null bitmap nothing keeps alive",
                ));
            };
            let bytes = bits.div_ceil(8);
            // SAFETY: as above, for the bitmap's bits `nulls_offset..nulls_offset + len`.
            let buffer = unsafe { Buffer::from_custom_allocation(nulls, bytes, owner) };
            let bits = BooleanBuffer::new(buffer, nulls_offset, len);
            // SAFETY: the producer counted the nulls of these bits.
            Some(unsafe { NullBuffer::new_unchecked(bits, null_count) })
        }
    };
    let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls)?;
    Ok(Arc::new(cdata::with_agreed_type(array, data_type)))
}

/// What the arrays lent for one call are built around (plugin ABI 1.13,
/// [`FFI_ArrayBuffers::import_lent`]): nothing while the call runs, since the producer keeps
/// its arrays until the call returns, and the producer's handles if an array outlived it (a
/// result that is an argument, an argument a function kept).
///
/// A call's arguments used to cross with their handles moved into an owner made for them: an
/// allocation a call, and a release called back into the producer for every array. Lent, the
/// owner is made once a thread and reused by each call nothing outlived, and the handles stay
/// with the producer.
#[derive(Default)]
pub struct LentOwner {
    kept: Mutex<HeldColumns>,
}

thread_local! {
    /// This thread's owner for its next lent call: the last one nothing outlived.
    static UNSHARED: Cell<Option<Arc<LentOwner>>> = const { Cell::new(None) };
}

impl LentOwner {
    /// The owner for a call on this thread: the one its last call left unshared, else a new one.
    pub fn for_call() -> Arc<Self> {
        UNSHARED
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Ends a call: `None` when nothing built around `this` outlived the call (it is kept for
    /// the thread's next one), else `this` back, to [`Self::keep`] the lent arrays' handles in.
    /// Checked with [`Arc::get_mut`], which synchronizes with another thread's drop of a clone
    /// (its reads of the buffers happen before the producer frees them).
    pub fn settle(mut this: Arc<Self>) -> Option<Arc<Self>> {
        if Arc::get_mut(&mut this).is_none() {
            return Some(this);
        }
        // A thread past its thread-locals drops it instead.
        let _ = UNSHARED.try_with(move |unshared| unshared.set(Some(this)));
        None
    }

    /// Moves the handles of `lent` (the fixed-width arrays [`FFI_ArrayBuffers::import_lent`]
    /// built around this owner) out of their structs and into this owner, which releases them
    /// when the last array built around it is dropped.
    pub fn keep<'a>(&self, lent: impl IntoIterator<Item = &'a mut FFI_ArrayBuffers>) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        // Up to four handles fit in the owner: no allocation to keep a call's arguments.
        kept.extend(
            lent.into_iter()
                .filter(|array| array.byte_width != 0 && !array.handed_over())
                .map(Held::take),
        );
    }
}

/// What keeps an imported fixed-width array's buffers alive: the producer's release and private
/// data, moved out of the struct that crossed.
///
/// The whole struct (144 bytes) as the owner cost a copy, and a chunk too large for glibc's
/// fast bins: a plan's batches are mostly dropped on another thread than the one that imported
/// them, where a free past that thread's cache of small chunks locks the importing thread's
/// arena, mid-query. This one is two pointers. On the Delta full scan (four fixed-width
/// columns, two cores), the bundle side's extra waits on glibc's arena locks per run went from
/// +231 over native code (one run) to +122 and +155 (two), and its score from a median of 0.935
/// (0.921–0.962, six runs) to 0.959 (0.920–0.988, six); different builds, so code placement is
/// in that too. `release` reads only `private_data` (the [`FFI_ArrayBuffers::release`]
/// contract), so a fresh struct carrying the two releases it.
struct Held {
    release: unsafe extern "C" fn(array: &mut FFI_ArrayBuffers),
    private_data: *mut c_void,
}

// SAFETY: `private_data` keeps immutable buffers alive (the producer's `Send + Sync` array or a
// scalar's bytes), as in `FFI_ArrayBuffers`, and only `release` reads it.
unsafe impl Send for Held {}
unsafe impl Sync for Held {}

impl Held {
    /// Moves the producer's release and private data out of `array`, which then releases
    /// nothing when dropped.
    fn take(array: &mut FFI_ArrayBuffers) -> Self {
        // A fixed-width array's is empty; dropping it releases whatever a faulty producer put
        // there.
        drop(std::mem::replace(&mut array.cdata, FFI_ArrowArray::empty()));
        let held = Self {
            release: array.release,
            private_data: array.private_data,
        };
        // `release_fn_wrapper` does nothing for a null pointer.
        array.release = release_fn_wrapper::<ArrayRef>;
        array.private_data = std::ptr::null_mut();
        held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut array = FFI_ArrayBuffers::empty(0);
        array.release = self.release;
        array.private_data = self.private_data;
        // Dropping it calls `release` with the producer's private data.
        drop(array);
    }
}

/// A scalar's value and validity bitmap (all bits clear: null), kept alive by the struct
/// [`FFI_ArrayBuffers::from_scalar`] made, which points into it.
#[repr(C, align(8))]
struct ScalarBytes {
    value: [u8; 8],
    validity: u8,
}

unsafe extern "C" fn release_primitive_fn_wrapper<T: ArrowPrimitiveType>(
    array: &mut FFI_ArrayBuffers,
) {
    if array.private_data.is_null() {
        return;
    }
    // SAFETY: the handle `hold` took with `Arc::into_raw` from an `ArrayRef` whose allocation
    // holds this `PrimitiveArray<T>` (the same allocation an `Arc<PrimitiveArray<T>>` has),
    // released once (the pointer is cleared).
    drop(unsafe { Arc::from_raw(array.private_data as *const PrimitiveArray<T>) });
    array.private_data = std::ptr::null_mut();
}

/// Releases the box [`FFI_ArrayBuffers::keep`] made for a `K` (what the struct points into:
/// a boxed `ArrayRef`, a scalar's bytes, memory taken out of an array); nothing when the
/// pointer is null.
unsafe extern "C" fn release_fn_wrapper<K>(array: &mut FFI_ArrayBuffers) {
    if array.private_data.is_null() {
        return;
    }
    // SAFETY: the box `keep` made for this `K`, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(array.private_data as *mut K) });
    array.private_data = std::ptr::null_mut();
}

impl Drop for FFI_ArrayBuffers {
    fn drop(&mut self) {
        self.free_handed_over();
        // SAFETY: `release` belongs to the image that made the struct. `cdata` releases
        // itself when dropped.
        unsafe { (self.release)(self) }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Decimal256Array, Float64Array, Int8Array,
        Int32Array, Int64Array, ListArray, StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::buffer::MutableBuffer;
    use datafusion::arrow::datatypes::{
        Decimal256Type, Field, Int32Type, Int64Type, TimestampMicrosecondType, i256,
    };

    use super::*;

    fn round_trip(array: ArrayRef) -> ArrayRef {
        let exported = FFI_ArrayBuffers::new(&array);
        // SAFETY: exported just now from an array of this type.
        let imported = unsafe { exported.import(array.data_type()) }.expect("import");
        assert_eq!(&imported, &array);
        assert_eq!(imported.data_type(), array.data_type());
        assert_eq!(imported.null_count(), array.null_count());
        imported
    }

    #[test]
    fn fixed_width_arrays_cross_by_their_buffers() {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..10_000)),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(Float64Array::from(vec![Some(0.5), None])),
            Arc::new(Date32Array::from(vec![19_000, 19_001])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1), None, Some(3)])
                    .with_timezone("Europe/Paris"),
            ),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345), None])
                    .with_precision_and_scale(10, 2)
                    .expect("decimal"),
            ),
        ];
        for array in arrays {
            let exported = FFI_ArrayBuffers::new(&array);
            assert!(exported.cdata.is_released(), "{}", array.data_type());
            assert_eq!(
                exported.byte_width,
                array.data_type().primitive_width().unwrap()
            );
            drop(exported);
            round_trip(array);
        }
    }

    #[test]
    fn one_row_arrays_import_as_the_scalars_they_stand_for() {
        // Each scalar, and whether it crosses without an array (`from_scalar`).
        let scalars = [
            (ScalarValue::Int8(Some(-3)), true),
            (ScalarValue::Int64(Some(300)), true),
            (ScalarValue::Int64(None), true),
            (ScalarValue::UInt16(Some(7)), true),
            (ScalarValue::Float64(Some(-0.5)), true),
            (ScalarValue::Float32(None), true),
            (ScalarValue::Date32(Some(19_000)), true),
            (
                ScalarValue::TimestampMillisecond(Some(1_700_000_000_000), Some("+02:00".into())),
                true,
            ),
            (ScalarValue::TimestampNanosecond(None, None), true),
            (ScalarValue::Decimal128(Some(12_345), 10, 2), false),
            (ScalarValue::from("text"), false),
            (ScalarValue::Boolean(Some(true)), false),
        ];
        for (scalar, direct) in scalars {
            let array = scalar.to_array_of_size(1).expect("one row");
            let exported = FFI_ArrayBuffers::from_scalar(&scalar);
            assert_eq!(exported.is_some(), direct, "{scalar:?}");
            // A consumer of an earlier build reads a bare value as the one-row array it was.
            if let Some(earlier) = FFI_ArrayBuffers::from_scalar(&scalar) {
                // SAFETY: exported just now from a value of this type.
                let imported = unsafe { earlier.import(array.data_type()) }.expect("import");
                assert_eq!(&imported, &array);
            }
            for exported in [Some(FFI_ArrayBuffers::new(&array)), exported]
                .into_iter()
                .flatten()
            {
                // SAFETY: exported just now from a value of this type.
                let imported = unsafe { exported.import_scalar(array.data_type()) };
                let imported = imported.expect("import");
                assert_eq!(imported, scalar);
                assert_eq!(imported.data_type(), scalar.data_type());
            }
        }
        // A null in a slice: the validity bit is found at its offset.
        let ints = Int64Array::from(vec![Some(1), Some(2), None, Some(4)]);
        for (row, expected) in [(1, Some(2)), (2, None), (3, Some(4))] {
            let one: ArrayRef = Arc::new(ints.slice(row, 1));
            // SAFETY: exported just now from an Int64 array.
            let imported = unsafe { FFI_ArrayBuffers::new(&one).import_scalar(&DataType::Int64) };
            assert_eq!(imported.expect("import"), ScalarValue::Int64(expected));
        }
    }

    #[test]
    fn a_scalar_of_the_wrong_width_or_length_is_refused() {
        let two: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        // SAFETY: exported just now from an Int64 array; imported as what it is not.
        let wrong_len = unsafe { FFI_ArrayBuffers::new(&two).import_scalar(&DataType::Int64) };
        let message = wrong_len.expect_err("two rows are no scalar").to_string();
        assert!(message.contains("a scalar of 2 rows"), "{message}");
        let one: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        // SAFETY: as above.
        let wrong_width = unsafe { FFI_ArrayBuffers::new(&one).import_scalar(&DataType::Int64) };
        let message = wrong_width
            .expect_err("a 4-byte value is no Int64")
            .to_string();
        assert!(message.contains("4-byte values"), "{message}");
    }

    #[test]
    fn slices_keep_their_offsets() {
        let all: Vec<Option<i8>> = (0..100).map(|i| (i % 3 != 0).then_some(i)).collect();
        let array = Int8Array::from(all);
        // Offsets off a byte boundary of the bitmap.
        for (offset, len) in [(3, 50), (8, 17), (61, 39), (99, 1), (5, 0)] {
            round_trip(Arc::new(array.slice(offset, len)));
        }
    }

    #[test]
    fn other_layouts_cross_through_the_c_data_interface() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
        ]);
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![
                Some("a string longer than twelve bytes"),
                None,
                Some("short"),
            ])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(list),
        ];
        for array in arrays {
            let exported = FFI_ArrayBuffers::new(&array);
            assert_eq!(exported.byte_width, 0);
            assert!(!exported.cdata.is_released(), "{}", array.data_type());
            drop(exported);
            round_trip(array);
        }
    }

    #[test]
    fn the_imported_array_keeps_the_producers_alive_and_then_releases_it() {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None, Some(9)]));
        let imported = round_trip(Arc::clone(&array));
        // The original, the import's handle on it.
        assert_eq!(Arc::strong_count(&array), 2);
        let sliced = imported.slice(1, 2);
        drop(imported);
        assert_eq!(Arc::strong_count(&array), 2);
        drop(sliced);
        assert_eq!(Arc::strong_count(&array), 1);
        // A struct dropped without import releases its handle too.
        drop(FFI_ArrayBuffers::new(&array));
        assert_eq!(Arc::strong_count(&array), 1);
    }

    /// The import keeps only the producer's release and private data; a C data interface
    /// array a faulty producer sent alongside fixed-width buffers is released at once.
    #[test]
    fn a_fixed_width_import_releases_everything_the_struct_held() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let stray = Int32Array::from(vec![4, 5]);
        let stray_values = stray.values().inner();
        let mut both = FFI_ArrayBuffers::new(&ints);
        both.cdata = FFI_ArrowArray::new(&stray.to_data());
        assert_eq!(
            stray_values.strong_count(),
            2,
            "ours and the C data array's"
        );
        // SAFETY: the buffers are an Int64 array's.
        let imported = unsafe { both.import(&DataType::Int64) }.expect("import");
        assert_eq!(stray_values.strong_count(), 1, "the stray array, released");
        assert_eq!(Arc::strong_count(&ints), 2, "the producer's array, held");
        assert_eq!(&imported, &ints);
        drop(imported);
        assert_eq!(Arc::strong_count(&ints), 1);
    }

    /// Exports an array given up whole and checks that it was taken apart (or not), that it
    /// imports as it was, and that a shared one is held, not taken apart.
    fn give_up<T: ArrowPrimitiveType>(name: &str, make: impl Fn() -> ArrayRef, taken_apart: bool) {
        let expected = make();
        let exported = match FFI_ArrayBuffers::own::<T>(make(), false) {
            Ok(exported) => exported,
            Err(array) => {
                assert!(!taken_apart, "{name}: kept whole");
                FFI_ArrayBuffers::new(&array)
            }
        };
        // SAFETY: exported just now from an array of this type.
        let imported = unsafe { exported.import(expected.data_type()) }.expect(name);
        assert_eq!(&imported, &expected, "{name}");
        assert_eq!(imported.data_type(), expected.data_type(), "{name}");
        // SAFETY: as above.
        let via = unsafe { FFI_ArrayBuffers::from_owned(make()).import(expected.data_type()) };
        assert_eq!(&via.expect(name), &expected, "{name}");
        let shared = make();
        assert!(
            FFI_ArrayBuffers::own::<T>(Arc::clone(&shared), false).is_err(),
            "{name}: shared"
        );
        assert_eq!(Arc::strong_count(&shared), 1, "{name}");
    }

    /// An array given up whole is taken apart at export: the struct keeps its memory, not the
    /// array. An array something else shares, a slice, memory arrow-rs did not allocate, and
    /// an `ArrayRef` whose allocation holds another array (not the array itself, so it cannot
    /// be moved out of it) are exported as before.
    #[test]
    fn an_array_given_up_is_taken_apart_at_export() {
        give_up::<Int64Type>("unique", || Arc::new(Int64Array::from(vec![1, 2, 3])), true);
        let with_nulls = || Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        give_up::<Int32Type>("with nulls", with_nulls, true);
        let zoned = || {
            Arc::new(TimestampMicrosecondArray::from(vec![1, 2]).with_timezone("+01:00"))
                as ArrayRef
        };
        give_up::<TimestampMicrosecondType>("a zoned timestamp", zoned, true);
        let slice = || Arc::new(Int64Array::from(vec![1, 2, 3]).slice(1, 2)) as ArrayRef;
        give_up::<Int64Type>("a slice", slice, false);
        let own_memory = || {
            let memory = Arc::new(vec![5i64, 6, 7]);
            let ptr = NonNull::from(memory.as_slice()).cast::<u8>();
            // SAFETY: `memory` holds 24 bytes at `ptr` and never changes.
            let buffer = unsafe { Buffer::from_custom_allocation(ptr, 24, memory) };
            Arc::new(Int64Array::new(ScalarBuffer::from(buffer), None)) as ArrayRef
        };
        give_up::<Int64Type>("memory of its own", own_memory, false);
        let wrapper = || {
            let inner: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
            Arc::new(inner) as ArrayRef
        };
        give_up::<Int64Type>("an array wrapping another", wrapper, false);
    }

    /// A batch's fixed-width columns share one owner: each producer array is held until the
    /// batch's last fixed-width column is dropped, then released once. Past the four handles
    /// the owner keeps inline, the rest are kept too.
    #[test]
    fn a_batchs_fixed_width_columns_share_one_owner() {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringViewArray::from(vec![Some("a"), None, Some("c")])),
            Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5])),
            Arc::new(Int8Array::from(vec![1, 2, 3])),
            Arc::new(Date32Array::from(vec![19_000, 19_001, 19_002])),
            Arc::new(Int32Array::from(vec![Some(4), Some(5), None])),
            Arc::new(Int64Array::from(vec![7, 8, 9])),
        ];
        let columns: Vec<_> = arrays.iter().map(FFI_ArrayBuffers::new).collect();
        // SAFETY: exported just now from arrays of these types.
        let imported = unsafe { import_columns(columns, &fields_of(&arrays)) }.expect("import");
        assert_eq!(imported, arrays);
        let held =
            |arrays: &[ArrayRef]| -> Vec<usize> { arrays.iter().map(Arc::strong_count).collect() };
        assert_eq!(held(&arrays), [2; 7]);
        // The string column has an owner of its own; the others stay until the last goes.
        let mut imported = imported;
        let last = imported.pop().expect("seven columns");
        imported.remove(1);
        assert_eq!(held(&arrays), [2, 1, 2, 2, 2, 2, 2]);
        drop(imported);
        assert_eq!(held(&arrays), [2, 1, 2, 2, 2, 2, 2]);
        drop(last);
        assert_eq!(held(&arrays), [1; 7]);
    }

    fn fields_of(arrays: &[ArrayRef]) -> Vec<FieldRef> {
        let field =
            |(i, a): (usize, &ArrayRef)| Field::new(format!("c{i}"), a.data_type().clone(), true);
        arrays
            .iter()
            .enumerate()
            .map(|c| Arc::new(field(c)))
            .collect()
    }

    /// A batch with a column that is not what its type says is refused, and every column is
    /// released: those taken into the shared owner before the broken one (found while taking
    /// the handles, or while building the arrays) and those after it.
    #[test]
    fn a_batch_with_a_broken_column_releases_every_column() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let narrow: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let strings: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b"]));
        let as_ints =
            |array: &ArrayRef| -> ArrayRef { Arc::new(Int64Array::from(vec![0; array.len()])) };
        // Found while taking the handles: 4-byte values sent for an Int64 column.
        let fields = fields_of(&[
            Arc::clone(&ints),
            as_ints(&narrow),
            Arc::clone(&strings),
            Arc::clone(&ints),
        ]);
        let arrays = [&ints, &narrow, &strings, &ints];
        let columns: Vec<_> = arrays.into_iter().map(FFI_ArrayBuffers::new).collect();
        // SAFETY: the second column's width is checked before any buffer is read.
        let e = unsafe { import_columns(columns, &fields) }
            .expect_err("a 4-byte column is no Int64")
            .to_string();
        assert!(e.contains("as 4-byte values"), "{e}");
        // Found while building the arrays: the third column (fixed-width, taken) lost its
        // values, the fourth (a string) its C data interface array.
        let fields = fields_of(&[
            Arc::clone(&ints),
            Arc::clone(&ints),
            Arc::clone(&ints),
            Arc::clone(&strings),
        ]);
        let mut columns: Vec<_> = [&ints, &ints, &ints, &strings]
            .into_iter()
            .map(FFI_ArrayBuffers::new)
            .collect();
        columns[2].values = std::ptr::null();
        // SAFETY: the broken column is refused before its buffers are read.
        let e = unsafe { import_columns(columns, &fields) }
            .expect_err("an Int64 column without values")
            .to_string();
        assert!(e.contains("as no values"), "{e}");
        let mut columns: Vec<_> = [&ints, &ints, &strings]
            .into_iter()
            .map(FFI_ArrayBuffers::new)
            .collect();
        columns[2].cdata = FFI_ArrowArray::empty();
        let fields = fields_of(&[Arc::clone(&ints), Arc::clone(&ints), Arc::clone(&strings)]);
        // SAFETY: as above.
        let e = unsafe { import_columns(columns, &fields) }
            .expect_err("a string column without its array")
            .to_string();
        assert!(e.contains("as no array"), "{e}");
        // Columns of another count than the fields.
        let columns = vec![FFI_ArrayBuffers::new(&ints)];
        // SAFETY: refused before any column is read.
        let e = unsafe { import_columns(columns, &fields) }
            .expect_err("one column for three fields")
            .to_string();
        assert!(e.contains("a batch of 1 columns"), "{e}");
        for array in [ints, narrow, strings] {
            assert_eq!(Arc::strong_count(&array), 1, "{}", array.data_type());
        }
    }

    /// An `ArrayRef` whose allocation holds another `ArrayRef`, not the array itself, is held
    /// by a boxed handle, and the export's release, the last handle, drops the wrapper.
    #[test]
    fn an_array_wrapping_another_array_is_held_whole() {
        let inner: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let wrapped: ArrayRef = Arc::new(Arc::clone(&inner));
        let exported = FFI_ArrayBuffers::new(&wrapped);
        assert_eq!(exported.byte_width, 8);
        drop(wrapped);
        // SAFETY: exported just now from an Int64 array.
        let imported = unsafe { exported.import(&DataType::Int64) }.expect("import");
        assert_eq!(&imported, &inner);
        assert_eq!(Arc::strong_count(&inner), 2, "ours and the wrapper's");
        drop(imported);
        assert_eq!(Arc::strong_count(&inner), 1, "the wrapper is gone");
    }

    /// `array`'s values given up to a consumer that shares this image's allocator, exported;
    /// whether they were handed over.
    fn hand_over<T: ArrowPrimitiveType>(array: ArrayRef) -> (FFI_ArrayBuffers, bool) {
        let exported = FFI_ArrayBuffers::own::<T>(array, true).expect("taken apart");
        let handed = exported.byte_width & HANDED_OVER != 0;
        (exported, handed)
    }

    /// An Int64 array of `values` in a `MutableBuffer` (64-byte-aligned, as some kernels make).
    fn built(values: std::ops::Range<i64>) -> ArrayRef {
        let mut buffer = MutableBuffer::new(0);
        values.for_each(|v| buffer.push(v));
        Arc::new(Int64Array::new(Buffer::from(buffer).into(), None))
    }

    #[test]
    fn values_in_a_vecs_memory_are_handed_over_when_the_allocator_is_shared() {
        let values: Vec<i64> = (0..1000).collect();
        let ptr = values.as_ptr();
        let (exported, handed) = hand_over::<Int64Type>(Arc::new(Int64Array::from(values)));
        assert!(handed);
        assert!(exported.private_data.is_null(), "nothing left to release");
        let imported = unsafe { exported.import(&DataType::Int64) }.expect("import");
        assert_eq!(imported.as_primitive::<Int64Type>().values().as_ptr(), ptr);
        assert_eq!(
            &imported,
            &(Arc::new(Int64Array::from_iter_values(0..1000)) as ArrayRef)
        );
        // The consumer's array owns the memory as arrow-rs owns a `Vec`'s.
        let (_, values, _) = imported.as_primitive::<Int64Type>().clone().into_parts();
        drop(imported);
        assert_eq!(
            values.into_inner().into_vec::<i64>().expect("a Vec").len(),
            1000
        );

        let spare = {
            let mut values = Vec::with_capacity(100);
            values.extend([1, 2, 3]);
            let nulls = NullBuffer::from(vec![true, false, true]);
            Int32Array::new(values.into(), Some(nulls))
        };
        let (exported, handed) = hand_over::<Int32Type>(Arc::new(spare));
        assert!(handed, "shrunk to fit");
        assert!(
            !exported.private_data.is_null(),
            "the null bitmap stays the producer's"
        );
        let imported = unsafe { exported.import(&DataType::Int32) }.expect("import");
        let expected = Int32Array::from(vec![Some(1), None, Some(3)]);
        assert_eq!(imported.as_primitive::<Int32Type>(), &expected);
    }

    #[test]
    fn memory_that_is_no_vec_of_its_values_is_taken_apart_as_before() {
        let (exported, handed) = hand_over::<Int64Type>(built(0..100));
        assert!(!handed, "a 64-byte-aligned buffer");
        let imported = unsafe { exported.import(&DataType::Int64) }.expect("import");
        assert_eq!(&imported, &built(0..100));
        let wide = || Decimal256Array::from(vec![i256::from(7), i256::from(-8)]);
        let (exported, handed) = hand_over::<Decimal256Type>(Arc::new(wide()));
        assert!(!handed, "aligned to less than its width");
        let decimal = DataType::Decimal256(76, 10);
        let imported = unsafe { exported.import(&decimal) }.expect("import");
        assert_eq!(imported.as_primitive::<Decimal256Type>(), &wide());
    }

    #[test]
    fn handed_over_values_are_freed_whatever_becomes_of_the_struct() {
        let fresh = || Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef;
        let (never_sent, _) = hand_over::<Int64Type>(fresh());
        drop(never_sent);
        let (wrong_type, handed) = hand_over::<Int64Type>(fresh());
        assert!(handed);
        let e = unsafe { wrong_type.import(&DataType::Int32) }.expect_err("8-byte values");
        assert!(e.to_string().contains("as 8-byte values"), "{e}");
        let (scalar, _) = hand_over::<Int64Type>(Arc::new(Int64Array::from(vec![42])));
        let scalar = unsafe { scalar.import_scalar(&DataType::Int64) }.expect("a scalar");
        assert_eq!(scalar, ScalarValue::Int64(Some(42)));
        // A batch of columns handed over, with and without nulls, held and through C data.
        let with_nulls = || Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef;
        let strings: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b", "c"]));
        let arrays = vec![fresh(), Arc::clone(&strings), with_nulls(), built(4..7)];
        let exported = [
            hand_over::<Int64Type>(fresh()),
            (FFI_ArrayBuffers::new(&strings), false),
            hand_over::<Int32Type>(with_nulls()),
            hand_over::<Int64Type>(built(4..7)),
        ];
        let handed: Vec<bool> = exported.iter().map(|(_, handed)| *handed).collect();
        assert_eq!(handed, [true, false, true, false]);
        let columns: Vec<_> = exported.into_iter().map(|(column, _)| column).collect();
        let imported = unsafe { import_columns(columns, &fields_of(&arrays)) }.expect("import");
        assert_eq!(imported, arrays);
    }

    #[test]
    fn handed_over_values_without_their_alignment_or_a_held_bitmap_are_refused() {
        use datafusion::arrow::datatypes::IntervalUnit;
        let fresh = || Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef;
        let (eight_bytes, handed) = hand_over::<Int64Type>(fresh());
        assert!(handed);
        let day_time = DataType::Interval(IntervalUnit::DayTime);
        let e = unsafe { eight_bytes.import(&day_time) }.expect_err("aligned to 4");
        assert!(e.to_string().contains("of another alignment"), "{e}");

        let with_nulls = Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef;
        let (mut no_holder, handed) = hand_over::<Int32Type>(with_nulls);
        assert!(handed);
        let held = std::mem::replace(&mut no_holder.private_data, std::ptr::null_mut());
        let e = unsafe { no_holder.import(&DataType::Int32) }.expect_err("a bitmap unheld");
        assert!(
            e.to_string().contains("a null bitmap nothing keeps alive"),
            "{e}"
        );
        drop(unsafe { Box::from_raw(held as *mut NullBuffer) });
    }

    /// A producer that keeps its values alive some other way (no `private_data`) and hands
    /// nothing over is imported as before 1.9.
    #[test]
    fn a_held_column_without_private_data_imports_as_before() {
        let ints = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let mut unheld = FFI_ArrayBuffers::new(&(Arc::clone(&ints) as ArrayRef));
        let held = std::mem::replace(&mut unheld.private_data, std::ptr::null_mut());
        let imported = unsafe { unheld.import(&DataType::Int64) }.expect("imported");
        assert_eq!(imported.as_primitive::<Int64Type>(), ints.as_ref());
        drop(imported);
        drop(unsafe { Arc::from_raw(held as *const Int64Array) });
        assert_eq!(Arc::strong_count(&ints), 1);
    }

    #[test]
    fn a_layout_the_agreed_type_cannot_have_is_an_error() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let strings: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b"]));
        let cases = [
            (&ints, DataType::Int64, "as 4-byte values"),
            (&ints, DataType::Utf8View, "as fixed-width values"),
            (&strings, DataType::Int64, "as a C data interface array"),
        ];
        for (array, as_type, found) in cases {
            // SAFETY: the consumer checks the layout before it reads a buffer.
            let e = unsafe { FFI_ArrayBuffers::new(array).import(&as_type) }
                .expect_err("a layout mismatch")
                .to_string();
            assert!(e.contains(&format!("type {as_type} crossed")), "{e}");
            assert!(e.contains(found), "{e}");
        }
        assert_eq!(Arc::strong_count(&ints), 1);
    }

    /// A struct that breaks the contract in ways the consumer can see is refused before any
    /// buffer is read, and still releases the producer's array.
    #[test]
    fn a_struct_without_its_buffers_is_an_error() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let strings: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b"]));
        let mut no_values = FFI_ArrayBuffers::new(&ints);
        no_values.values = std::ptr::null();
        let mut misaligned = FFI_ArrayBuffers::new(&ints);
        misaligned.values = misaligned.values.wrapping_add(1);
        let mut no_array = FFI_ArrayBuffers::new(&strings);
        no_array.cdata = FFI_ArrowArray::empty();
        let mut too_long = FFI_ArrayBuffers::new(&ints);
        too_long.len = usize::MAX;
        let mut too_many_nulls = FFI_ArrayBuffers::new(&ints);
        too_many_nulls.null_count = 4;
        let cases = [
            (no_values, DataType::Int64, "as no values"),
            (misaligned, DataType::Int64, "as misaligned values"),
            (no_array, DataType::Utf8View, "as no array"),
            (
                too_long,
                DataType::Int64,
                "as a length past the address space",
            ),
            (too_many_nulls, DataType::Int64, "as more nulls than rows"),
        ];
        for (broken, as_type, found) in cases {
            // SAFETY: each check fails before a buffer is read.
            let e = unsafe { broken.import(&as_type) }
                .expect_err("a broken struct")
                .to_string();
            assert!(e.contains(found), "{e}");
        }
        assert_eq!(Arc::strong_count(&ints), 1);
        assert_eq!(Arc::strong_count(&strings), 1);
    }
}
