//! A lean export and import of Arrow C data interface arrays, for the layouts a plan's batches
//! and a function's arguments carry most: fixed-width values, booleans, strings and binaries
//! (offset and view layouts), and dictionaries of those.
//!
//! The structs are the standard C data interface ones, so either side may be arrow-rs's own
//! (an older bundle or host): only the allocations behind them change. arrow-rs's export and
//! import are general and go through a generic `ArrayData`. On the Delta full scan (two string
//! columns through this interface, four fixed-width ones as buffers) the bundle side made ~59
//! allocations a batch more than native code; with both sides here, 33.8 (callgrind). See
//! [`export`] and [`import`] for what each side saves.

mod export;
mod import;

pub use export::export;
pub use import::{import, with_agreed_type};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, Decimal128Array, DictionaryArray,
        Int64Array, LargeBinaryArray, LargeStringArray, StringArray, StringViewArray,
        StringViewBuilder, TimestampMillisecondArray, UInt16Array,
    };
    use datafusion::arrow::datatypes::UInt16Type;

    /// Offsets off a byte boundary of the bitmaps, on one, and an empty slice.
    pub const SLICES: [(usize, usize); 5] = [(3, 50), (8, 17), (61, 39), (99, 1), (5, 0)];

    pub fn long(i: usize) -> Option<String> {
        (!i.is_multiple_of(4))
            .then(|| format!("row {i}, long enough not to be inlined in its view"))
    }

    /// An array of each layout this module lays out itself, 100 rows with nulls.
    pub fn lean_arrays() -> Vec<ArrayRef> {
        let strings: Vec<Option<String>> = (0..100).map(long).collect();
        let short: Vec<Option<&str>> = (0..100).map(|i| (i % 3 != 0).then_some("short")).collect();
        let bytes: Vec<Option<&[u8]>> = (0..100)
            .map(|i| (i % 5 != 0).then_some(&b"b"[..]))
            .collect();
        // A view array of many data buffers (a block holds a string and a half).
        let mut views = StringViewBuilder::new().with_fixed_block_size(80);
        strings
            .iter()
            .for_each(|s| views.append_option(s.as_deref()));
        let views = views.finish();
        let keys = UInt16Array::from_iter((0..100u16).map(|i| (i % 7 != 0).then_some(i % 3)));
        let values = StringArray::from(vec!["2024-01-01", "2024-01-02", "2024-01-03"]);
        let dictionary =
            DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(values)).expect("dict");
        let view_values = StringViewArray::from(vec![long(1), long(2)]);
        let view_keys = UInt16Array::from_iter((0..100u16).map(|i| Some(i % 2)));
        let view_dictionary =
            DictionaryArray::<UInt16Type>::try_new(view_keys, Arc::new(view_values)).expect("dict");
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(strings.clone())),
            Arc::new(StringArray::from(short.clone())),
            Arc::new(LargeStringArray::from(strings.clone())),
            Arc::new(BinaryArray::from(bytes.clone())),
            Arc::new(LargeBinaryArray::from(bytes.clone())),
            Arc::new(views),
            Arc::new(StringViewArray::from(short)),
            Arc::new(BinaryViewArray::from(bytes)),
            Arc::new(BooleanArray::from_iter(
                (0..100).map(|i| (i % 3 != 0).then_some(i % 2 == 0)),
            )),
            Arc::new(dictionary),
            Arc::new(view_dictionary),
            Arc::new(Int64Array::from_iter(
                (0..100).map(|i| (i % 6 != 0).then_some(i)),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(0..100).with_timezone("+02:00")),
            Arc::new(
                Decimal128Array::from_iter_values(0..100)
                    .with_precision_and_scale(10, 2)
                    .expect("decimal"),
            ),
        ];
        arrays
    }
}
