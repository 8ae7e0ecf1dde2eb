//! The consumer side: a typed array built straight from the struct's buffers.
//!
//! arrow-rs's import (`from_ffi_and_data_type`, then `make_array`) works out the type's buffer
//! layout per array (a `Vec`, more than once for a dictionary), gathers the buffers into a
//! `Vec`, builds an `ArrayData` (cloning the type into a dictionary's values), and converts that
//! into the typed array. Here the typed array is built from the struct's buffers around one
//! shared owner of the struct: a string column costs the owner, one `Bytes` per buffer and the
//! `ArrayRef`. On the Delta full scan this took the bundle side's extra allocations from ~59 a
//! batch to ~50 (callgrind).
//!
//! It trusts the producer as far as arrow-rs's import does: offsets, views and dictionary keys
//! are not walked and UTF-8 is not checked (the producer is a bundle built against the same
//! Arrow, exporting arrays Arrow built). It checks what it sees for free: the buffer count,
//! null pointers, alignment, negative lengths and offsets. Other types go to arrow-rs.

use std::ptr::NonNull;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, DictionaryArray, GenericByteArray,
    GenericByteViewArray, PrimitiveArray, downcast_integer, downcast_primitive, make_array,
    new_empty_array,
};
use datafusion::arrow::buffer::{
    BooleanBuffer, Buffer, MutableBuffer, NullBuffer, OffsetBuffer, ScalarBuffer,
};
use datafusion::arrow::datatypes::{
    ArrowDictionaryKeyType, ArrowNativeType, BinaryType, BinaryViewType, ByteArrayType,
    ByteViewType, DataType, LargeBinaryType, LargeUtf8Type, StringViewType, Utf8Type,
};
use datafusion::arrow::ffi::{FFI_ArrowArray, from_ffi_and_data_type};
use datafusion::common::DataFusionError;
use datafusion::error::Result;

/// Imports `array` as `data_type`, the type both sides agreed on.
///
/// # Safety
/// `array` is a C data interface array of `data_type`, released or not: its buffers hold what
/// its length, offset and type say.
pub unsafe fn import(array: FFI_ArrowArray, data_type: &DataType) -> Result<ArrayRef> {
    if array.is_released() {
        return Err(broken(data_type, "a released array"));
    }
    if !is_lean(data_type) {
        // SAFETY: the caller's contract.
        let data = unsafe { from_ffi_and_data_type(array, data_type.clone()) }?;
        return Ok(make_array(data));
    }
    let owner = Arc::new(array);
    let imported = Imported {
        array: &owner,
        owner: &owner,
        data_type,
    };
    // SAFETY: the caller's contract.
    unsafe { imported.array() }
}

/// Whether [`Imported::array`] builds the type itself.
fn is_lean(data_type: &DataType) -> bool {
    use DataType as T;
    match data_type {
        T::Boolean
        | T::Utf8
        | T::LargeUtf8
        | T::Binary
        | T::LargeBinary
        | T::Utf8View
        | T::BinaryView => true,
        T::Dictionary(key, value) => {
            key.is_dictionary_key_type() && !matches!(**value, T::Dictionary(..)) && is_lean(value)
        }
        other => {
            macro_rules! primitive {
                ($t:ty) => {
                    true
                };
            }
            downcast_primitive!(other => (primitive), _ => false)
        }
    }
}

/// `array` as `data_type`, `T`'s type or `T`'s with other parameters. Only a type with
/// parameters (a timestamp's zone, a decimal's precision and scale) can differ from `T`'s own;
/// replacing the type clones and drops one for every column of every batch, so `T`'s is kept
/// when it is the agreed one. Any other type is `T`'s by construction (the caller chose `T`
/// from it), so it is not compared: building and comparing `T::DATA_TYPE` took ~70
/// instructions an array (callgrind).
pub fn with_agreed_type<T: ArrowPrimitiveType>(
    array: PrimitiveArray<T>,
    data_type: &DataType,
) -> PrimitiveArray<T> {
    use DataType as D;
    let parameterized = matches!(
        data_type,
        D::Timestamp(_, Some(_))
            | D::Decimal32(..)
            | D::Decimal64(..)
            | D::Decimal128(..)
            | D::Decimal256(..)
    );
    if !parameterized || *data_type == T::DATA_TYPE {
        return array;
    }
    array.with_data_type(data_type.clone())
}

fn broken(data_type: &DataType, found: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "an array of type {data_type} crossed the plugin boundary as {found}, which the Arrow C \
         data interface does not allow (a bug in the bundle or in its plugin-api)"
    ))
}

/// One array of the struct that crossed (the struct itself, or its dictionary), and the owner
/// that keeps the whole struct alive: every buffer holds a handle on it, and dropping the last
/// calls the producer's release once.
struct Imported<'a> {
    array: &'a FFI_ArrowArray,
    owner: &'a Arc<FFI_ArrowArray>,
    data_type: &'a DataType,
}

impl Imported<'_> {
    /// # Safety
    /// As [`import`], for `self.array` and `self.data_type`.
    unsafe fn array(&self) -> Result<ArrayRef> {
        let (Ok(len), Ok(offset)) = (
            usize::try_from(self.array.length),
            usize::try_from(self.array.offset),
        ) else {
            return Err(self.broken("a negative length or offset"));
        };
        if len == 0 {
            return Ok(new_empty_array(self.data_type));
        }
        macro_rules! primitive {
            ($t:ty) => {
                self.primitive::<$t>(self.data_type, offset, len)
                    .map(|a| Arc::new(a) as ArrayRef)
            };
        }
        macro_rules! dictionary {
            ($k:ty, $value_type:expr) => {
                self.dictionary::<$k>($value_type, offset, len)
            };
        }
        // SAFETY (each arm): the caller's contract.
        unsafe {
            match self.data_type {
                DataType::Boolean => self.boolean(offset, len),
                DataType::Utf8 => self.bytes::<Utf8Type>(offset, len),
                DataType::LargeUtf8 => self.bytes::<LargeUtf8Type>(offset, len),
                DataType::Binary => self.bytes::<BinaryType>(offset, len),
                DataType::LargeBinary => self.bytes::<LargeBinaryType>(offset, len),
                DataType::Utf8View => self.views::<StringViewType>(offset, len),
                DataType::BinaryView => self.views::<BinaryViewType>(offset, len),
                DataType::Dictionary(key, value) => downcast_integer!(
                    key.as_ref() => (dictionary, value),
                    _ => Err(self.broken("a dictionary with keys that are not integers")),
                ),
                other => downcast_primitive!(
                    other => (primitive),
                    _ => Err(self.broken("a layout this import does not read")),
                ),
            }
        }
    }

    fn broken(&self, found: &str) -> DataFusionError {
        broken(self.data_type, found)
    }

    /// Checks that the array has `n` buffers, as its layout says.
    fn expect_buffers(&self, n: usize) -> Result<()> {
        if self.array.n_buffers != n as i64 || self.array.buffers.is_null() {
            let found = format!("{} buffers", self.array.n_buffers);
            return Err(self.broken(&found));
        }
        Ok(())
    }

    /// The pointer to buffer `i`.
    ///
    /// # Safety
    /// `i < n_buffers`, checked by the caller.
    unsafe fn pointer(&self, i: usize) -> *const u8 {
        // SAFETY: `buffers` holds `n_buffers` pointers (the C data interface), maybe unaligned.
        unsafe { std::ptr::read_unaligned((self.array.buffers as *const *const u8).add(i)) }
    }

    /// Buffer `i` from its byte `start`, `len` bytes, aligned for `T`. A null pointer is an
    /// empty buffer, if nothing is to be read from it.
    ///
    /// # Safety
    /// `i < n_buffers`, and the buffer holds `start + len` bytes.
    unsafe fn buffer<T>(&self, i: usize, start: usize, len: usize) -> Result<Buffer> {
        // SAFETY: the caller's contract.
        let base = unsafe { self.pointer(i) };
        let Some(base) = NonNull::new(base as *mut u8) else {
            return match len {
                // Aligned for any type, as arrow-rs's own empty buffers.
                0 => Ok(MutableBuffer::new(0).into()),
                _ => Err(self.broken(&format!("no pointer for buffer {i}"))),
            };
        };
        // SAFETY: within the buffer (the caller's contract).
        let start = unsafe { base.add(start) };
        if !start.cast::<T>().is_aligned() {
            return Err(self.broken(&format!("buffer {i} misaligned")));
        }
        let owner = Arc::clone(self.owner);
        // SAFETY: the producer's buffer holds these bytes until its release, which `owner`
        // calls when the last buffer made from it is dropped.
        Ok(unsafe { Buffer::from_custom_allocation(start, len, owner) })
    }

    /// `len` values of `T` from buffer `i`, after the array's first `offset`.
    ///
    /// # Safety
    /// As [`Self::buffer`], for `(offset + len) * size_of::<T>()` bytes.
    unsafe fn values<T: ArrowNativeType>(
        &self,
        i: usize,
        offset: usize,
        len: usize,
    ) -> Result<ScalarBuffer<T>> {
        let width = size_of::<T>();
        // SAFETY: the caller's contract.
        let buffer = unsafe { self.buffer::<T>(i, offset * width, len * width) }?;
        Ok(buffer.into())
    }

    /// The bits `offset..offset + len` of buffer `i`.
    ///
    /// # Safety
    /// As [`Self::buffer`], for `offset + len` bits.
    unsafe fn bits(&self, i: usize, offset: usize, len: usize) -> Result<BooleanBuffer> {
        let bytes = (offset % 8 + len).div_ceil(8);
        // SAFETY: the caller's contract.
        let buffer = unsafe { self.buffer::<u8>(i, offset / 8, bytes) }?;
        Ok(BooleanBuffer::new(buffer, offset % 8, len))
    }

    /// The validity bitmap, buffer 0: none when the producer counted no nulls.
    ///
    /// # Safety
    /// `n_buffers > 0`, checked by the caller; as [`Self::bits`].
    unsafe fn nulls(&self, offset: usize, len: usize) -> Result<Option<NullBuffer>> {
        let null_count = self.array.null_count;
        // SAFETY: the caller's contract.
        if null_count == 0 || unsafe { self.pointer(0) }.is_null() {
            // The interface allows no bitmap only for an array without nulls.
            return match null_count {
                n if n > 0 => Err(self.broken("nulls counted without a validity bitmap")),
                _ => Ok(None),
            };
        }
        // SAFETY: the caller's contract.
        let bits = unsafe { self.bits(0, offset, len) }?;
        Ok(Some(match usize::try_from(null_count) {
            Ok(count) if count <= len => {
                // SAFETY: the producer counted the nulls of these bits.
                unsafe { NullBuffer::new_unchecked(bits, count) }
            }
            // -1: not counted, as the interface allows.
            _ => NullBuffer::new(bits),
        }))
    }

    /// The array's values, or a dictionary's keys, as `data_type`.
    ///
    /// # Safety
    /// As [`Self::array`], for values of `T`; `data_type` is `T`'s type or `T`'s with other
    /// parameters.
    unsafe fn primitive<T: ArrowPrimitiveType>(
        &self,
        data_type: &DataType,
        offset: usize,
        len: usize,
    ) -> Result<PrimitiveArray<T>> {
        self.expect_buffers(2)?;
        // SAFETY: the caller's contract.
        let (nulls, values) = unsafe { (self.nulls(offset, len)?, self.values(1, offset, len)?) };
        Ok(with_agreed_type(
            PrimitiveArray::try_new(values, nulls)?,
            data_type,
        ))
    }

    /// # Safety
    /// As [`Self::array`], for a boolean array.
    unsafe fn boolean(&self, offset: usize, len: usize) -> Result<ArrayRef> {
        self.expect_buffers(2)?;
        // SAFETY: the caller's contract.
        let (nulls, values) = unsafe { (self.nulls(offset, len)?, self.bits(1, offset, len)?) };
        Ok(Arc::new(BooleanArray::new(values, nulls)))
    }

    /// # Safety
    /// As [`Self::array`], for an array of offsets into values.
    unsafe fn bytes<T: ByteArrayType>(&self, offset: usize, len: usize) -> Result<ArrayRef> {
        self.expect_buffers(3)?;
        // SAFETY: the caller's contract: `len + 1` offsets, into values as long as the last.
        unsafe {
            let nulls = self.nulls(offset, len)?;
            let offsets = self.values::<T::Offset>(1, offset, len + 1)?;
            let (first, last) = (offsets[0].to_usize(), offsets[len].to_usize());
            let (Some(first), Some(last)) = (first, last) else {
                return Err(self.broken("negative offsets"));
            };
            if last < first {
                return Err(self.broken("offsets that end before they start"));
            }
            let values = self.buffer::<u8>(2, 0, last)?;
            let offsets = OffsetBuffer::new_unchecked(offsets);
            let array = GenericByteArray::<T>::new_unchecked(offsets, values, nulls);
            Ok(Arc::new(array))
        }
    }

    /// # Safety
    /// As [`Self::array`], for an array of views: buffers are the bitmap, the views, the data
    /// buffers, and their lengths.
    unsafe fn views<T: ByteViewType>(&self, offset: usize, len: usize) -> Result<ArrayRef> {
        let n = usize::try_from(self.array.n_buffers).unwrap_or(0);
        if n < 3 || self.array.buffers.is_null() {
            let found = format!("{} buffers", self.array.n_buffers);
            return Err(self.broken(&found));
        }
        // SAFETY: the caller's contract; the last buffer holds the data buffers' lengths.
        unsafe {
            let nulls = self.nulls(offset, len)?;
            let views = self.values::<u128>(1, offset, len)?;
            let lengths = self.pointer(n - 1) as *const i64;
            if lengths.is_null() && n > 3 {
                return Err(self.broken("data buffers without their lengths"));
            }
            let data = (2..n - 1)
                .map(|i| {
                    let length = std::ptr::read_unaligned(lengths.add(i - 2));
                    let Ok(length) = usize::try_from(length) else {
                        return Err(self.broken("a data buffer of negative length"));
                    };
                    self.buffer::<u8>(i, 0, length)
                })
                .collect::<Result<Arc<[Buffer]>>>()?;
            let array = GenericByteViewArray::<T>::new_unchecked(views, data, nulls);
            Ok(Arc::new(array))
        }
    }

    /// # Safety
    /// As [`Self::array`], for a dictionary of `K` keys: its values are the struct's dictionary,
    /// kept alive by the same owner (the producer's release releases it with the keys).
    unsafe fn dictionary<K: ArrowDictionaryKeyType>(
        &self,
        value_type: &DataType,
        offset: usize,
        len: usize,
    ) -> Result<ArrayRef> {
        // SAFETY: the caller's contract.
        let keys = unsafe { self.primitive::<K>(&K::DATA_TYPE, offset, len) }?;
        // SAFETY: a dictionary array's `dictionary` points to its values (the interface).
        let Some(values) = (unsafe { self.array.dictionary.as_ref() }) else {
            return Err(self.broken("a dictionary without its values"));
        };
        if values.is_released() {
            return Err(self.broken("a dictionary with released values"));
        }
        let values = Imported {
            array: values,
            owner: self.owner,
            data_type: value_type,
        };
        // SAFETY: the caller's contract, for the values.
        let values = unsafe { values.array() }?;
        // SAFETY: the keys index the values (the producer's dictionary array, as arrow-rs's
        // import trusts it).
        Ok(Arc::new(unsafe {
            DictionaryArray::<K>::new_unchecked(keys, values)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_void;

    use datafusion::arrow::array::{
        Array, DictionaryArray, ListArray, StringArray, StringViewArray, UInt16Array,
    };
    use datafusion::arrow::datatypes::{Int32Type, UInt16Type};

    use super::super::tests::{SLICES, lean_arrays, long};
    use super::*;

    fn export(array: &dyn Array) -> FFI_ArrowArray {
        FFI_ArrowArray::new(&array.to_data())
    }

    fn round_trip(array: &dyn Array) {
        // SAFETY: exported just now from an array of this type.
        let imported = unsafe { import(export(array), array.data_type()) }.expect("import");
        assert_eq!(imported.to_data(), array.to_data(), "{}", array.data_type());
        assert_eq!(imported.data_type(), array.data_type());
        assert_eq!(imported.null_count(), array.null_count());
    }

    #[test]
    fn every_lean_layout_round_trips_whole_and_sliced() {
        for array in lean_arrays() {
            assert!(is_lean(array.data_type()), "{}", array.data_type());
            round_trip(&array);
            for (offset, len) in SLICES {
                round_trip(&array.slice(offset, len));
            }
        }
    }
    #[test]
    fn other_layouts_go_to_arrow_rs() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]);
        assert!(!is_lean(list.data_type()));
        round_trip(&list);
        round_trip(&list.slice(1, 2));
    }

    /// Every buffer holds the owner; the producer's array is released once, when the last of
    /// them (here, a dictionary's values outliving its keys) is dropped.
    #[test]
    fn the_import_keeps_the_producers_array_alive_until_its_last_buffer_goes() {
        let values = StringArray::from(vec!["a", "b"]);
        let held = values.values().clone();
        let keys = UInt16Array::from(vec![0, 1, 1]);
        let array = DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(values)).expect("dict");
        let exported = export(&array);
        drop(array);
        assert_eq!(held.strong_count(), 2, "ours and the export's");
        // SAFETY: exported just now from an array of this type.
        let imported = unsafe {
            import(
                exported,
                &DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
            )
        };
        let imported = imported.expect("import");
        let values = Arc::clone(
            imported
                .as_any()
                .downcast_ref::<DictionaryArray<UInt16Type>>()
                .expect("dictionary")
                .values(),
        );
        drop(imported);
        assert_eq!(held.strong_count(), 2, "the values still hold the export");
        assert_eq!(values.len(), 2);
        drop(values);
        assert_eq!(held.strong_count(), 1, "released");
    }

    /// Overwrites buffer `i`'s pointer in a struct `FFI_ArrowArray::new` made.
    fn set_buffer(array: &mut FFI_ArrowArray, i: usize, pointer: *const u8) {
        assert!((i as i64) < array.n_buffers);
        // SAFETY: `buffers` holds `n_buffers` pointers, owned by the struct's private data.
        unsafe { *array.buffers.add(i) = pointer as *const c_void };
    }

    /// Offsets a faulty producer could send, in place of a 3-row array's.
    static BACKWARDS: [i32; 4] = [5, 0, 0, 0];
    static NEGATIVE: [i32; 4] = [-1, 0, 0, 0];
    /// A data buffer length a faulty producer could send, in place of a view array's.
    static NEGATIVE_LENGTH: [i64; 1] = [-1];

    /// A struct that breaks the C data interface in ways the import can see is refused before
    /// it reads a value, and still released.
    #[test]
    fn a_struct_that_breaks_the_interface_is_an_error() {
        let strings = StringArray::from(vec![Some("a"), None, Some("ccc")]);
        let held = strings.values().clone();
        let utf8 = DataType::Utf8;
        let dictionary = DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        let keys = UInt16Array::from(vec![0]);
        let keys = DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(strings.clone()));
        let keys = keys.expect("dictionary");
        // Buffers: the bitmap, the views, one data buffer, its length.
        let views = StringViewArray::from(vec![long(1), None, long(2)]);
        let view_type = DataType::Utf8View;
        type Break = fn(&mut FFI_ArrowArray);
        let cases: [(&dyn Array, &DataType, Break, &str); 12] = [
            (
                &strings,
                &utf8,
                |a| a.length = -1,
                "a negative length or offset",
            ),
            (&strings, &utf8, |a| a.n_buffers = 2, "as 2 buffers"),
            (
                &strings,
                &utf8,
                |a| set_buffer(a, 1, std::ptr::null()),
                "no pointer for buffer 1",
            ),
            (
                &strings,
                &utf8,
                |a| set_buffer(a, 0, std::ptr::null()),
                "nulls counted without a validity bitmap",
            ),
            (
                &strings,
                &utf8,
                // SAFETY: one byte into the offsets, still within them.
                |a| set_buffer(a, 1, unsafe { (*a.buffers.add(1) as *const u8).add(1) }),
                "buffer 1 misaligned",
            ),
            (
                &strings,
                &utf8,
                |a| set_buffer(a, 1, BACKWARDS.as_ptr().cast()),
                "offsets that end before they start",
            ),
            (
                &strings,
                &utf8,
                |a| set_buffer(a, 1, NEGATIVE.as_ptr().cast()),
                "negative offsets",
            ),
            (&strings, &utf8, |a| a.release = None, "a released array"),
            (
                &keys,
                &dictionary,
                |a| a.dictionary = std::ptr::null_mut(),
                "a dictionary without its values",
            ),
            (&keys, &dictionary, |a| a.n_buffers = 3, "as 3 buffers"),
            (
                &views,
                &view_type,
                |a| set_buffer(a, 3, std::ptr::null()),
                "data buffers without their lengths",
            ),
            (
                &views,
                &view_type,
                |a| set_buffer(a, 3, NEGATIVE_LENGTH.as_ptr().cast()),
                "a data buffer of negative length",
            ),
        ];
        for (array, data_type, break_it, found) in cases {
            let mut exported = export(array);
            let (release, private_data) = (exported.release, exported.private_data);
            break_it(&mut exported);
            let unreleasable = exported.release.is_none();
            // SAFETY: each check fails before a value is read.
            let e = unsafe { import(exported, data_type) }
                .expect_err(found)
                .to_string();
            assert!(e.contains(found), "{found}: {e}");
            assert!(e.contains(&format!("type {data_type} crossed")), "{e}");
            if unreleasable {
                // Nothing could release it; the test does, with the callback it had.
                let mut copy = FFI_ArrowArray::empty();
                (copy.release, copy.private_data) = (release, private_data);
                drop(copy);
            }
        }
        assert_eq!(
            held.strong_count(),
            3,
            "ours, `strings`' and the dictionary's"
        );
    }
}
