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
//! The type does not cross: both sides agreed on it when the call was bound. The consumer
//! checks that the layout and value width the producer sent fit that type, so a bundle that
//! returns something else gets an error instead of a misread buffer.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, downcast_primitive,
    downcast_primitive_array, make_array, new_empty_array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::ffi::{FFI_ArrowArray, from_ffi_and_data_type};
use datafusion::common::DataFusionError;
use datafusion::error::Result;

/// One array: a fixed-width array by its buffers, any other through the C data interface.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_ArrayBuffers {
    /// Number of rows.
    pub len: usize,
    /// Bytes per value of a fixed-width array; 0 when [`Self::cdata`] carries the array.
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
    /// Releases what keeps [`Self::values`] and [`Self::nulls`] alive.
    pub release: unsafe extern "C" fn(array: &mut Self),
    /// Internal data: the producer's array. Only the producer may access it.
    pub private_data: *mut c_void,
}

// SAFETY: the pointers are into immutable buffers that the boxed `ArrayRef` in `private_data`
// owns, and an `ArrayRef` is `Send + Sync`; the C data interface array is `Send + Sync` too.
unsafe impl Send for FFI_ArrayBuffers {}
unsafe impl Sync for FFI_ArrayBuffers {}

impl FFI_ArrayBuffers {
    /// Exports `array`, keeping a handle on it until the consumer releases the struct.
    pub fn new(array: &ArrayRef) -> Self {
        let mut this = Self::empty(array.len());
        let values: Option<*const u8> = downcast_primitive_array!(
            array => Some(array.values().inner().as_ptr()),
            _ => None
        );
        let Some(values) = values else {
            this.cdata = FFI_ArrowArray::new(&array.to_data());
            return this;
        };
        if let Some(nulls) = array.nulls() {
            this.nulls = nulls.buffer().as_ptr();
            this.nulls_offset = nulls.offset();
            this.null_count = nulls.null_count();
        }
        this.byte_width = array.data_type().primitive_width().unwrap_or(0);
        this.values = values;
        this.private_data = Box::into_raw(Box::new(Arc::clone(array))) as *mut c_void;
        this
    }

    fn empty(len: usize) -> Self {
        Self {
            len,
            byte_width: 0,
            values: std::ptr::null(),
            nulls: std::ptr::null(),
            nulls_offset: 0,
            null_count: 0,
            cdata: FFI_ArrowArray::empty(),
            release: release_fn_wrapper,
            private_data: std::ptr::null_mut(),
        }
    }

    /// Imports the array as `data_type`, the type both sides agreed on.
    ///
    /// # Safety
    /// `self` was made by [`FFI_ArrayBuffers::new`] (or to its contract) from an array whose
    /// buffers hold `len` rows.
    pub unsafe fn import(self, data_type: &DataType) -> Result<ArrayRef> {
        macro_rules! fixed {
            ($t:ty, $this:expr, $data_type:expr) => {
                // SAFETY: the caller's contract.
                unsafe { import_fixed::<$t>($this, $data_type) }
            };
        }
        downcast_primitive!(
            data_type => (fixed, self, data_type),
            _ => {
                // SAFETY: the caller's contract.
                unsafe { self.import_cdata(data_type) }
            }
        )
    }

    /// # Safety
    /// As [`Self::import`].
    unsafe fn import_cdata(mut self, data_type: &DataType) -> Result<ArrayRef> {
        if self.byte_width != 0 {
            return Err(layout_mismatch(data_type, "fixed-width values"));
        }
        let cdata = std::mem::replace(&mut self.cdata, FFI_ArrowArray::empty());
        if cdata.is_released() {
            return Err(layout_mismatch(data_type, "no array"));
        }
        // SAFETY: the producer exported an array of the type both sides agreed on.
        let data = unsafe { from_ffi_and_data_type(cdata, data_type.clone()) }?;
        Ok(make_array(data))
    }
}

fn layout_mismatch(data_type: &DataType, found: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "an array of type {data_type} crossed the plugin boundary as {found}, which that type \
         cannot be (a bug in the bundle or in its plugin-api)"
    ))
}

/// # Safety
/// As [`FFI_ArrayBuffers::import`]; `T` is the primitive type of `data_type`.
unsafe fn import_fixed<T: ArrowPrimitiveType>(
    array: FFI_ArrayBuffers,
    data_type: &DataType,
) -> Result<ArrayRef> {
    let width = size_of::<T::Native>();
    if array.byte_width != width {
        let found = match array.byte_width {
            0 => "a C data interface array".to_string(),
            w => format!("{w}-byte values"),
        };
        return Err(layout_mismatch(data_type, &found));
    }
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
    // One owner for both buffers: dropping the last of them releases the producer's array.
    let owner = Arc::new(array);
    // SAFETY: the producer's array, kept alive by `owner`, holds `len` values from `values`.
    let values = unsafe { Buffer::from_custom_allocation(values, len * width, owner.clone()) };
    let nulls = match NonNull::new(nulls as *mut u8) {
        None => None,
        Some(nulls) => {
            let bytes = (nulls_offset + len).div_ceil(8);
            // SAFETY: as above, for the bitmap's bits `nulls_offset..nulls_offset + len`.
            let buffer = unsafe { Buffer::from_custom_allocation(nulls, bytes, owner) };
            let bits = BooleanBuffer::new(buffer, nulls_offset, len);
            // SAFETY: the producer counted the nulls of these bits.
            Some(unsafe { NullBuffer::new_unchecked(bits, null_count) })
        }
    };
    let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls)?
        .with_data_type(data_type.clone());
    Ok(Arc::new(array))
}

unsafe extern "C" fn release_fn_wrapper(array: &mut FFI_ArrayBuffers) {
    if array.private_data.is_null() {
        return;
    }
    // SAFETY: the box `new` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(array.private_data as *mut ArrayRef) });
    array.private_data = std::ptr::null_mut();
}

impl Drop for FFI_ArrayBuffers {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct. `cdata` releases
        // itself when dropped.
        unsafe { (self.release)(self) }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array, Int32Array,
        Int64Array, ListArray, StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

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
        let cases = [
            (no_values, DataType::Int64, "as no values"),
            (misaligned, DataType::Int64, "as misaligned values"),
            (no_array, DataType::Utf8View, "as no array"),
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
