//! What one batch's crossing costs, alone: `<abi binary> crossing [ROWS]`.
//!
//! The query rows measure a crossing inside a query, where this machine's noise between
//! rounds (±5 % and more) is larger than a per-batch saving of a microsecond. Here a batch is
//! exported and imported in a loop, in one process, the way a bundle's stream sends it and
//! the host takes it, once per way of crossing (`StreamBatch`: the struct array of plugin ABI
//! 1.3, the buffers of 1.7), with no query around it: the difference is the saving per batch.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ffi::FFI_ArrowArray;
use df_plugin_api::ffi::batch_stream::{FFI_BatchBuffers, StreamBatch};

/// The subcommand of the bench binary (`<abi> crossing [ROWS]`).
pub const CROSSING: &str = "crossing";

/// Round trips per timed block, and blocks per way (the median block is reported).
const ITERATIONS: usize = 2_000;
const BLOCKS: usize = 15;

/// The batch shapes the query rows send: `time_buckets`' two Int64 columns, a one-column
/// projection, and the generated Delta table's six columns (four fixed-width, two strings).
fn batches(rows: usize) -> Vec<(&'static str, RecordBatch)> {
    let ints = |offset: i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            (0..rows as i64).map(|i| i + offset),
        ))
    };
    let strings = |prefix: &str| -> ArrayRef {
        Arc::new(StringViewArray::from_iter_values(
            (0..rows).map(|i| format!("{prefix}{}", i % 97)),
        ))
    };
    let field = |name: &str, t: DataType| Field::new(name, t, false);
    let schema = |fields: Vec<Field>| -> SchemaRef { Arc::new(Schema::new(fields)) };
    let batch = |s: SchemaRef, columns: Vec<ArrayRef>| {
        RecordBatch::try_new(s, columns).expect("columns of the schema")
    };
    let two = schema(vec![
        field("bucket_start", DataType::Int64),
        field("bucket_end", DataType::Int64),
    ]);
    let one = schema(vec![field("value", DataType::Int64)]);
    let delta = schema(vec![
        field("id", DataType::Int64),
        field("user_id", DataType::Int64),
        field("url", DataType::Utf8View),
        field("value", DataType::Float64),
        field("ts", DataType::Int64),
        field("day", DataType::Utf8View),
    ]);
    let values: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|i| i as f64)));
    vec![
        (
            "two Int64 columns (time_buckets)",
            batch(two, vec![ints(0), ints(60)]),
        ),
        ("one Int64 column (a projection)", batch(one, vec![ints(0)])),
        (
            "the Delta table's six columns",
            batch(
                delta,
                vec![
                    ints(0),
                    ints(7),
                    strings("https://a.example/page/"),
                    values,
                    ints(1_700_000_000),
                    strings("2026-11-"),
                ],
            ),
        ),
    ]
}

/// Median nanoseconds of one export and import of `batch` crossing as `B`.
fn round_trip<B: StreamBatch>(batch: &RecordBatch) -> f64 {
    let schema = batch.schema();
    let once = || {
        let exported = B::export(batch.clone());
        // SAFETY: exported just now from a batch of `schema`.
        let imported = unsafe { black_box(exported).import(&schema) };
        black_box(imported.expect("a batch of its own schema"));
    };
    for _ in 0..ITERATIONS {
        once();
    }
    let mut blocks: Vec<f64> = (0..BLOCKS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERATIONS {
                once();
            }
            t.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .collect();
    blocks.sort_by(f64::total_cmp);
    blocks[BLOCKS / 2]
}

/// The markdown table of the round trips of each batch shape with `rows` rows.
pub fn table(rows: usize) -> String {
    let mut out = format!(
        "One batch of {rows} rows exported and imported, median of {BLOCKS} blocks of \
         {ITERATIONS}:\n\n| batch | struct array (1.3) | buffers (1.7) | saved per batch |\n\
         |---|---:|---:|---:|\n"
    );
    for (name, batch) in batches(rows) {
        let arrays = round_trip::<FFI_ArrowArray>(&batch);
        let buffers = round_trip::<FFI_BatchBuffers>(&batch);
        out.push_str(&format!(
            "| {name} | {arrays:.0} ns | {buffers:.0} ns | {:.0} ns |\n",
            arrays - buffers
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_crosses_both_ways() {
        for (name, batch) in batches(3) {
            let schema = batch.schema();
            // SAFETY: exported just now from a batch of `schema`.
            let arrays = unsafe { FFI_ArrowArray::export(batch.clone()).import(&schema) };
            let buffers = unsafe { FFI_BatchBuffers::export(batch.clone()).import(&schema) };
            assert_eq!(arrays.expect(name), batch);
            assert_eq!(buffers.expect(name), batch);
        }
        assert!(table(3).contains("| two Int64 columns (time_buckets) |"));
    }
}
