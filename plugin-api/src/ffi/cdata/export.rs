//! The producer side: one allocation per array, however many buffers it has.
//!
//! arrow-rs's export (`FFI_ArrowArray::new(&array.to_data())`) builds a generic `ArrayData`,
//! works out the type's buffer layout (a `Vec`), and allocates a `Vec` of buffers, a boxed list
//! of their pointers, a box for its private data and, for a view array, a buffer of the data
//! buffers' lengths: 5 to 7 allocations an array, twice that for a dictionary (its values are a
//! child struct of their own). Here one shared allocation ([`Exported`]) holds a handle on the
//! array, the pointer lists and the lengths inline, and a dictionary's child struct.
//!
//! Arrays this does not lay out itself (nested types, a bitmap that does not start on a byte,
//! a view array of many data buffers) go to arrow-rs's export.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericByteArray, GenericByteViewArray, downcast_primitive_array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    BinaryType, BinaryViewType, ByteArrayType, ByteViewType, DataType, LargeBinaryType,
    LargeUtf8Type, StringViewType, Utf8Type,
};
use datafusion::arrow::ffi::FFI_ArrowArray;

/// Data buffers a view array may have to be exported here (arrow-rs exports the others).
const VIEW_DATA_BUFFERS: usize = 3;

/// Exports `array` as a C data interface array, keeping a handle on it until the consumer
/// releases the struct.
pub fn export(array: &ArrayRef) -> FFI_ArrowArray {
    match Exported::export(array) {
        Some(exported) => exported,
        None => FFI_ArrowArray::new(&array.to_data()),
    }
}

/// One array's buffer pointers, laid out as the C data interface lists them, and a view
/// array's data buffer lengths, which the list points to last.
struct Pointers {
    buffers: [*const c_void; 3 + VIEW_DATA_BUFFERS],
    lengths: [i64; VIEW_DATA_BUFFERS],
    n_buffers: usize,
    /// The C data interface offset: the bit where the bitmaps start (values are sliced).
    offset: usize,
    len: usize,
    null_count: usize,
}

impl Pointers {
    /// The buffers of `array`, or `None` for a layout arrow-rs's export should lay out.
    fn of(array: &dyn Array) -> Option<Self> {
        let mut this = Self {
            buffers: [std::ptr::null(); 3 + VIEW_DATA_BUFFERS],
            lengths: [0; VIEW_DATA_BUFFERS],
            n_buffers: 0,
            offset: 0,
            len: array.len(),
            null_count: array.null_count(),
        };
        let values: Option<*const u8> = downcast_primitive_array!(
            array => Some(array.values().inner().as_ptr()),
            _ => None
        );
        if let Some(values) = values {
            this.push_nulls(array.nulls(), 0)?;
            this.push(values);
            return Some(this);
        }
        match array.data_type() {
            DataType::Boolean => {
                let values = array.as_boolean_opt()?.values();
                this.offset = values.offset() % 8;
                this.push_nulls(array.nulls(), this.offset)?;
                // SAFETY: the byte that holds the first bit, within the buffer.
                this.push(unsafe { values.inner().as_ptr().add(values.offset() / 8) });
            }
            DataType::Utf8 => this.push_bytes::<Utf8Type>(array)?,
            DataType::LargeUtf8 => this.push_bytes::<LargeUtf8Type>(array)?,
            DataType::Binary => this.push_bytes::<BinaryType>(array)?,
            DataType::LargeBinary => this.push_bytes::<LargeBinaryType>(array)?,
            DataType::Utf8View => this.push_views::<StringViewType>(array)?,
            DataType::BinaryView => this.push_views::<BinaryViewType>(array)?,
            DataType::Dictionary(_, value) if !matches!(**value, DataType::Dictionary(..)) => {
                // The keys' buffers; the values are the struct's dictionary.
                let keys = array.as_any_dictionary_opt()?.keys();
                return Self::of(keys).filter(|keys| keys.n_buffers == 2);
            }
            _ => return None,
        }
        Some(this)
    }

    fn push(&mut self, buffer: *const u8) {
        self.buffers[self.n_buffers] = buffer.cast();
        self.n_buffers += 1;
    }

    /// The validity bitmap, from the byte that holds the first row's bit, which must be bit
    /// `offset` of that byte (the one offset the interface has applies to every bitmap).
    fn push_nulls(&mut self, nulls: Option<&NullBuffer>, offset: usize) -> Option<()> {
        let Some(nulls) = nulls.filter(|n| n.null_count() > 0) else {
            self.push(std::ptr::null());
            return Some(());
        };
        if nulls.offset() % 8 != offset {
            return None;
        }
        // SAFETY: the byte that holds the first bit, within the buffer.
        self.push(unsafe { nulls.buffer().as_ptr().add(nulls.offset() / 8) });
        Some(())
    }

    fn push_bytes<T: ByteArrayType>(&mut self, array: &dyn Array) -> Option<()> {
        let array: &GenericByteArray<T> = array.as_bytes_opt()?;
        self.push_nulls(array.nulls(), 0)?;
        self.push(array.offsets().inner().inner().as_ptr());
        self.push(array.values().as_ptr());
        Some(())
    }

    fn push_views<T: ByteViewType>(&mut self, array: &dyn Array) -> Option<()> {
        let array: &GenericByteViewArray<T> = array.as_byte_view_opt()?;
        let data = array.data_buffers();
        if data.len() > VIEW_DATA_BUFFERS {
            return None;
        }
        self.push_nulls(array.nulls(), 0)?;
        self.push(array.views().inner().as_ptr());
        for (i, buffer) in data.iter().enumerate() {
            self.push(buffer.as_ptr());
            self.lengths[i] = buffer.len() as i64;
        }
        // A placeholder for the lengths, pointed to once this struct has its address.
        self.push(std::ptr::null());
        Some(())
    }

    /// Points the last buffer of a view array to the lengths, at their final address.
    fn point_to_lengths(&mut self, data_type: &DataType) {
        if matches!(data_type, DataType::Utf8View | DataType::BinaryView) {
            self.buffers[self.n_buffers - 1] = self.lengths.as_ptr().cast();
        }
    }

    /// The struct for these buffers, owned through `private_data` and released by `release`.
    fn array(
        &self,
        dictionary: *mut FFI_ArrowArray,
        release: unsafe extern "C" fn(*mut FFI_ArrowArray),
        private_data: *const Exported,
    ) -> FFI_ArrowArray {
        let mut array = FFI_ArrowArray::empty();
        array.length = self.len as i64;
        array.null_count = self.null_count as i64;
        array.offset = self.offset as i64;
        array.n_buffers = self.n_buffers as i64;
        // Read only, as the interface has it.
        array.buffers = self.buffers.as_ptr() as *mut *const c_void;
        array.dictionary = dictionary;
        array.release = Some(release);
        array.private_data = private_data as *mut c_void;
        array
    }
}

/// What an exported array's struct (and its dictionary's, each holding a count on it) owns.
struct Exported {
    /// Keeps the buffers alive.
    _array: ArrayRef,
    pointers: Pointers,
    dictionary_pointers: Option<Pointers>,
    /// A dictionary's values; the parent struct points to it. The consumer writes to it when it
    /// releases or moves it out, through that pointer.
    dictionary: UnsafeCell<ManuallyDrop<FFI_ArrowArray>>,
}

// SAFETY: the pointers are into immutable buffers that `_array` (`Send + Sync`) owns. The
// dictionary's struct is written only by the consumer holding the parent, under the C data
// interface's rules (once, when it releases or moves it).
unsafe impl Send for Exported {}
unsafe impl Sync for Exported {}

impl Exported {
    /// The struct for `array` and its dictionary's, sharing one `Exported`; `None` for a layout
    /// arrow-rs's export should lay out.
    fn export(array: &ArrayRef) -> Option<FFI_ArrowArray> {
        let pointers = Pointers::of(array.as_ref())?;
        let dictionary_pointers = match array.as_any_dictionary_opt() {
            Some(dictionary) => Some(Pointers::of(dictionary.values().as_ref())?),
            None => None,
        };
        let mut exported = Arc::new(Self {
            _array: Arc::clone(array),
            pointers,
            dictionary_pointers,
            dictionary: UnsafeCell::new(ManuallyDrop::new(FFI_ArrowArray::empty())),
        });
        // Where the pointer lists point to the lengths, now that they have their address.
        let this = Arc::get_mut(&mut exported)?;
        this.pointers.point_to_lengths(array.data_type());
        if let (Some(values), DataType::Dictionary(_, value_type)) =
            (&mut this.dictionary_pointers, array.data_type())
        {
            values.point_to_lengths(value_type);
        }
        // The parent's count.
        let raw = Arc::into_raw(exported);
        // SAFETY: the allocation just made, alive while the counts the structs hold are.
        let this = unsafe { &*raw };
        let mut dictionary = std::ptr::null_mut();
        if let Some(values) = &this.dictionary_pointers {
            // SAFETY: as above; the dictionary's count.
            unsafe { Arc::increment_strong_count(raw) };
            dictionary = this.dictionary.get().cast::<FFI_ArrowArray>();
            let child = values.array(std::ptr::null_mut(), release_dictionary, raw);
            // SAFETY: the dictionary's place in the allocation, which nothing else points to
            // yet; the empty struct there needs no release.
            unsafe { std::ptr::write(dictionary, child) };
        }
        let parent = this.pointers.array(dictionary, release_array, raw);
        Some(parent)
    }
}

unsafe extern "C" fn release_array(array: *mut FFI_ArrowArray) {
    // SAFETY: the consumer passes the struct `Exported::export` made, or a move of it.
    let Some(array) = (unsafe { array.as_mut() }) else {
        return;
    };
    // SAFETY: the dictionary's struct, inside the allocation this struct still holds. The
    // consumer cleared its `release` if it moved it out.
    if let Some(dictionary) = unsafe { array.dictionary.as_mut() }
        && let Some(release) = dictionary.release
    {
        // SAFETY: its own release, called once.
        unsafe { release(dictionary) };
    }
    // SAFETY: the count `Exported::export` took for this struct, released once.
    drop(unsafe { Arc::from_raw(array.private_data as *const Exported) });
    array.release = None;
}

unsafe extern "C" fn release_dictionary(array: *mut FFI_ArrowArray) {
    // SAFETY: as `release_array`.
    let Some(array) = (unsafe { array.as_mut() }) else {
        return;
    };
    array.release = None;
    // SAFETY: the count `Exported::export` took for the dictionary, released once. `array` may be
    // inside the allocation, so it is not touched after.
    drop(unsafe { Arc::from_raw(array.private_data as *const Exported) });
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{DictionaryArray, StringArray, StringViewArray, make_array};
    use datafusion::arrow::datatypes::UInt16Type;
    use datafusion::arrow::ffi::from_ffi_and_data_type;

    use super::super::import;
    use super::super::tests::{SLICES, lean_arrays, long};
    use super::*;

    /// Exports `array` and imports it with arrow-rs's import (an older consumer's) and with
    /// this module's.
    fn round_trip(array: &ArrayRef) {
        // SAFETY (both): exported just now from an array of this type.
        let arrow_rs = unsafe { from_ffi_and_data_type(export(array), array.data_type().clone()) };
        let arrow_rs = make_array(arrow_rs.expect("arrow-rs's import"));
        let ours = unsafe { import(export(array), array.data_type()) }.expect("import");
        for imported in [arrow_rs, ours] {
            assert_eq!(imported.to_data(), array.to_data(), "{}", array.data_type());
            assert_eq!(imported.data_type(), array.data_type());
            assert_eq!(imported.null_count(), array.null_count());
        }
    }

    #[test]
    fn every_lean_layout_round_trips_through_either_import() {
        let mut fallbacks = 0;
        for array in lean_arrays() {
            // Whole, each array is laid out here, but for views of many data buffers.
            let many = array
                .as_string_view_opt()
                .is_some_and(|v| v.data_buffers().len() > VIEW_DATA_BUFFERS);
            assert_eq!(
                Pointers::of(&array).is_some(),
                !many,
                "{}",
                array.data_type()
            );
            fallbacks += usize::from(many);
            round_trip(&array);
            for (offset, len) in SLICES {
                round_trip(&array.slice(offset, len));
            }
        }
        assert_eq!(fallbacks, 1, "the view array of many data buffers");
        // A boolean slice off a byte boundary has its bitmaps at the same bit of a byte.
        let booleans = lean_arrays()
            .into_iter()
            .find(|a| a.data_type() == &DataType::Boolean)
            .expect("a boolean array");
        assert!(Pointers::of(&booleans.slice(3, 50)).is_some());
    }

    /// The struct and its dictionary each hold the array; the consumer may move the dictionary
    /// out and release the two in either order (the C data interface's rule for children).
    #[test]
    fn a_dictionary_moved_out_outlives_its_parent() {
        let values = StringViewArray::from(vec![long(1), long(2)]);
        let keys = datafusion::arrow::array::UInt16Array::from(vec![0, 1, 1]);
        let array: ArrayRef = Arc::new(
            DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(values.clone()))
                .expect("dictionary"),
        );
        let mut parent = export(&array);
        assert_eq!(Arc::strong_count(&array), 2, "ours and the export's");
        // SAFETY: the parent's dictionary, a struct of the C data interface, moved out.
        let moved = unsafe { FFI_ArrowArray::from_raw(parent.dictionary) };
        drop(parent);
        assert_eq!(
            Arc::strong_count(&array),
            2,
            "the dictionary still holds it"
        );
        // SAFETY: the dictionary's values, exported by the struct.
        let imported = unsafe { import(moved, &DataType::Utf8View) }.expect("import");
        assert_eq!(imported.to_data(), values.to_data());
        drop(imported);
        assert_eq!(Arc::strong_count(&array), 1, "released");
        // Released together, by the parent.
        parent = export(&array);
        drop(parent);
        assert_eq!(Arc::strong_count(&array), 1, "released");
    }

    #[test]
    fn a_string_array_exports_its_buffers_in_place() {
        let array = StringArray::from(vec![Some("a"), None, Some("bc")]);
        let exported = export(&(Arc::new(array.clone()) as ArrayRef));
        assert_eq!((exported.length, exported.null_count), (3, 1));
        assert_eq!((exported.offset, exported.n_buffers), (0, 3));
        // SAFETY: three pointers, as counted.
        let buffers = unsafe { std::slice::from_raw_parts(exported.buffers, 3) };
        let nulls = array.nulls().expect("nulls").buffer().as_ptr();
        let offsets = array.offsets().inner().inner().as_ptr();
        let expected = [nulls, offsets, array.values().as_ptr()].map(|p| p.cast::<c_void>());
        assert_eq!(buffers, expected);
    }
}
