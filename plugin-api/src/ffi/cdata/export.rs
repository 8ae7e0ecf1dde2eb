//! The producer side: one small allocation per array, however many buffers it has.
//!
//! arrow-rs's export (`FFI_ArrowArray::new(&array.to_data())`) builds a generic `ArrayData`,
//! works out the type's buffer layout (a `Vec`), and allocates a `Vec` of buffers, a boxed list
//! of their pointers, a box for its private data and, for a view array, a buffer of the data
//! buffers' lengths: 5 to 7 allocations an array, and as many again for a dictionary's values
//! (a child struct of their own). Here one [`Private`] per struct holds a handle on the array,
//! its pointer list and a view array's lengths inline; a dictionary adds its values' `Private`
//! and their struct's box.
//!
//! Each allocation is kept within glibc's fast bins. The consumer mostly drops a plan's batch
//! on another thread than the one that made it, and a larger chunk freed there takes the
//! producing thread's arena lock. A first version, one shared ~330-byte allocation for a
//! dictionary's two structs, raised the Delta full scan's lock waits on two cores to +197 a run
//! over native code, from +122 and +155 with arrow-rs's export (`perf record -e
//! syscalls:sys_enter_futex`, 21 runs a side).
//!
//! Arrays this does not lay out itself (nested types, a bitmap that does not start on a byte,
//! a view array of more than one data buffer) go to arrow-rs's export.

use std::ffi::c_void;
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
const VIEW_DATA_BUFFERS: usize = 1;

/// The most buffers an array exported here has: a view array's bitmap, views, data buffer and
/// lengths.
const BUFFERS: usize = 3 + VIEW_DATA_BUFFERS;

/// Exports `array` as a C data interface array, keeping a handle on it until the consumer
/// releases the struct.
pub fn export(array: &ArrayRef) -> FFI_ArrowArray {
    lean(array).unwrap_or_else(|| FFI_ArrowArray::new(&array.to_data()))
}

/// The struct for `array`, and its dictionary's; `None` for a layout arrow-rs's export should
/// lay out.
fn lean(array: &ArrayRef) -> Option<FFI_ArrowArray> {
    let layout = Layout::of(array.as_ref())?;
    let dictionary = match array.as_any_dictionary_opt() {
        None => std::ptr::null_mut(),
        Some(dictionary) => {
            let values = dictionary.values();
            let values = Layout::of(values.as_ref())?.export(values, std::ptr::null_mut());
            Box::into_raw(Box::new(values))
        }
    };
    Some(layout.export(array, dictionary))
}

/// One array's buffer pointers, listed as the C data interface lists them, and a view array's
/// data buffer lengths, which the list points to last.
struct Layout {
    buffers: [*const c_void; BUFFERS],
    lengths: [i64; VIEW_DATA_BUFFERS],
    /// Where a view array's pointer to the lengths goes, once they are in their allocation.
    lengths_slot: Option<usize>,
    n_buffers: usize,
    /// The C data interface offset: the bit where the bitmaps start (values are sliced).
    offset: usize,
    len: usize,
    null_count: usize,
}

impl Layout {
    /// The buffers of `array`, or `None` for a layout arrow-rs's export should lay out.
    fn of(array: &dyn Array) -> Option<Self> {
        let mut this = Self {
            buffers: [std::ptr::null(); BUFFERS],
            lengths: [0; VIEW_DATA_BUFFERS],
            lengths_slot: None,
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
        self.lengths_slot = Some(self.n_buffers);
        self.push(std::ptr::null());
        Some(())
    }

    /// The struct for these buffers of `array`, owning a handle on it and `dictionary` (a boxed
    /// struct, or null).
    fn export(self, array: &ArrayRef, dictionary: *mut FFI_ArrowArray) -> FFI_ArrowArray {
        let private = Box::into_raw(Box::new(Private {
            _array: Arc::clone(array),
            buffers: self.buffers,
            lengths: self.lengths,
            dictionary,
        }));
        // SAFETY: the allocation just made, owned by the struct below until its release.
        let buffers = unsafe { &raw mut (*private).buffers };
        if let Some(slot) = self.lengths_slot {
            // SAFETY: as above; the lengths, at their final address, into the slot `push_views`
            // left for them.
            unsafe { (*buffers)[slot] = (&raw const (*private).lengths).cast() };
        }
        let mut array = FFI_ArrowArray::empty();
        array.length = self.len as i64;
        array.null_count = self.null_count as i64;
        array.offset = self.offset as i64;
        array.n_buffers = self.n_buffers as i64;
        array.buffers = buffers.cast();
        array.dictionary = dictionary;
        array.release = Some(release_array);
        array.private_data = private.cast();
        array
    }
}

/// What an exported struct owns. 64 bytes, so that a consumer freeing it on another thread does
/// not lock the producing thread's arena (glibc's fast bins take chunks of up to 128 bytes).
struct Private {
    /// Keeps the buffers alive.
    _array: ArrayRef,
    buffers: [*const c_void; BUFFERS],
    lengths: [i64; VIEW_DATA_BUFFERS],
    /// A dictionary's values: a boxed struct (released by its own release unless the consumer
    /// moved it out), or null.
    dictionary: *mut FFI_ArrowArray,
}

const _: () = assert!(size_of::<Private>() <= 64);

unsafe extern "C" fn release_array(array: *mut FFI_ArrowArray) {
    // SAFETY: the consumer passes a struct `Layout::export` made, or a move of it.
    let Some(array) = (unsafe { array.as_mut() }) else {
        return;
    };
    // SAFETY: the box `Layout::export` made, released once (`release` is cleared).
    let private = unsafe { Box::from_raw(array.private_data as *mut Private) };
    if !private.dictionary.is_null() {
        // SAFETY: the box `lean` made for the dictionary's struct. Dropping it calls its
        // release, unless the consumer moved it out (and cleared it).
        drop(unsafe { Box::from_raw(private.dictionary) });
    }
    drop(private);
    array.release = None;
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
            assert_eq!(Layout::of(&array).is_some(), !many, "{}", array.data_type());
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
        assert!(Layout::of(&booleans.slice(3, 50)).is_some());
    }

    /// The struct holds the array, its dictionary's struct the values; the consumer may move
    /// the dictionary out and release the two in either order (the C data interface's rule for
    /// children).
    #[test]
    fn a_dictionary_moved_out_outlives_its_parent() {
        let values: ArrayRef = Arc::new(StringViewArray::from(vec![long(1), long(2)]));
        let keys = datafusion::arrow::array::UInt16Array::from(vec![0, 1, 1]);
        let array = DictionaryArray::<UInt16Type>::try_new(keys, Arc::clone(&values));
        let array: ArrayRef = Arc::new(array.expect("dictionary"));
        let counts = || (Arc::strong_count(&array), Arc::strong_count(&values));
        assert_eq!(counts(), (1, 2), "ours, and the dictionary's values");
        let mut parent = export(&array);
        assert_eq!(counts(), (2, 3), "and the two structs'");
        // SAFETY: the parent's dictionary, a struct of the C data interface, moved out.
        let moved = unsafe { FFI_ArrowArray::from_raw(parent.dictionary) };
        drop(parent);
        assert_eq!(
            counts(),
            (1, 3),
            "the moved dictionary still holds the values"
        );
        // SAFETY: the dictionary's values, exported by the struct.
        let imported = unsafe { import(moved, &DataType::Utf8View) }.expect("import");
        assert_eq!(imported.to_data(), values.to_data());
        drop(imported);
        assert_eq!(counts(), (1, 2), "released");
        // Released together, by the parent.
        parent = export(&array);
        assert_eq!(counts(), (2, 3));
        drop(parent);
        assert_eq!(counts(), (1, 2), "released");
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
