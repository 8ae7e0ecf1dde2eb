//! What one batch's crossing costs with no query around it: `<abi binary> crossing [ROWS]`.
//!
//! The query rows measure a crossing inside a query, where this machine's noise between
//! rounds (±5 % and more) is larger than a per-batch saving of a microsecond. Here a batch is
//! exported and imported in a loop, in one process, the way a bundle's stream sends it and
//! the host takes it, once per way of crossing (`StreamBatch`: the struct array of plugin ABI
//! 1.3, the buffers of 1.7), with no query around it: the difference is the saving per batch.
//!
//! A query hands its batches to another thread, which drops them (the partitions run on the
//! runtime's workers, the caller collects). The second table measures what the crossing adds
//! in that pattern: batches crossed or not, dropped by the thread that crossed them or handed
//! to another one, counting the CPU time of both threads; the third, the same for batches
//! polled from a stream, natively or through `FFI_BatchStream` (runtime entered, as a bundle's
//! plan sends them). Handed over, the host's objects for each imported column (a `Bytes` per
//! buffer and the array; one owner for the batch's fixed-width columns) are freed by a thread
//! that did not allocate them, which makes them several times dearer than the crossing's own
//! work: their cache lines move between the cores, and glibc's malloc cannot recycle them
//! through the allocating thread's cache.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ffi::FFI_ArrowArray;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use df_plugin_api::ffi::batch_stream::{
    FFI_BatchBuffers, FFI_BatchStream, ForeignBatchStream, StreamBatch,
};
use futures::StreamExt;
use tokio::runtime::Runtime;

use crate::measure::process_cpu;

/// The subcommand of the bench binary (`<abi> crossing [ROWS]`).
pub const CROSSING: &str = "crossing";

/// Round trips per timed block, and blocks per way (the median block is reported).
const ITERATIONS: usize = 2_000;
const BLOCKS: usize = 15;

/// Batches handed to the dropping thread at a time, so that waking it is not what is timed.
const HANDOFF: usize = 64;

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
    let once = || {
        black_box(crossed::<B>(black_box(batch.clone())));
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

/// Median CPU nanoseconds (both threads) per batch of taking batches from `next` and dropping
/// them [`HANDOFF`] at a time: on another thread when `elsewhere`, on this one otherwise. The
/// other thread runs either way, so both ways pay for the same wake-ups.
fn grouped(mut next: impl FnMut() -> RecordBatch, elsewhere: bool) -> f64 {
    let (to_dropper, from_producer) = mpsc::sync_channel::<Vec<RecordBatch>>(2);
    let (done, acknowledged) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        for group in from_producer {
            drop(group);
            if done.send(()).is_err() {
                return;
            }
        }
    });
    let mut block = || {
        let start = process_cpu();
        for _ in 0..ITERATIONS / HANDOFF {
            let mut group: Vec<RecordBatch> = (0..HANDOFF).map(|_| next()).collect();
            if !elsewhere {
                group.clear();
            }
            to_dropper.send(group).expect("the dropping thread runs");
        }
        for _ in 0..ITERATIONS / HANDOFF {
            acknowledged.recv().expect("the dropping thread runs");
        }
        (process_cpu() - start).as_nanos() as f64 / (ITERATIONS / HANDOFF * HANDOFF) as f64
    };
    block();
    let mut blocks: Vec<f64> = (0..BLOCKS).map(|_| block()).collect();
    drop(to_dropper);
    dropper.join().expect("the dropping thread ends");
    blocks.sort_by(f64::total_cmp);
    blocks[BLOCKS / 2]
}

/// An endless stream of clones of `batch`, as a plan's stream: natively, or exported as a
/// bundle's stream is (entering `runtime` on every poll) and taken as the host takes it.
fn stream_of(batch: &RecordBatch, crossed: Option<&Runtime>) -> SendableRecordBatchStream {
    let clones = futures::stream::repeat_with({
        let batch = batch.clone();
        move || Ok(batch.clone())
    });
    let native = Box::pin(RecordBatchStreamAdapter::new(batch.schema(), clones));
    let Some(runtime) = crossed else {
        return native;
    };
    let exported = FFI_BatchStream::<FFI_BatchBuffers>::new(native, Some(runtime.handle().clone()));
    Box::pin(ForeignBatchStream::try_new(exported).expect("the schema imports"))
}

/// The next batch of a stream that is always ready.
fn ready(stream: &mut SendableRecordBatchStream) -> RecordBatch {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_next_unpin(&mut cx) {
        Poll::Ready(Some(batch)) => batch.expect("a batch"),
        other => panic!("an endless ready stream returned {other:?}"),
    }
}

/// `batch` exported and imported as `B`, as a bundle's stream sends it and the host takes it.
fn crossed<B: StreamBatch>(batch: RecordBatch) -> RecordBatch {
    let schema = batch.schema();
    // SAFETY: exported just now from a batch of `schema`.
    unsafe { B::export(batch).import(&schema) }.expect("a batch of its own schema")
}

/// The markdown tables of the round trips of each batch shape with `rows` rows: alone, then
/// dropped by the same thread or another, crossed alone and polled from a stream.
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
    out.push_str(&format!(
        "\nWhat the crossing (1.7) adds per batch when the batches are dropped {HANDOFF} at a \
         time, by the thread that crossed them or by another one, as a query's partitions hand \
         theirs to the thread that collects them: CPU time of both threads, median of {BLOCKS} \
         blocks of {ITERATIONS}, against the same batches not crossed:\n\n\
         | batch | dropped by the same thread | by another thread |\n|---|---:|---:|\n"
    ));
    for (name, batch) in batches(rows) {
        let adds = |elsewhere| {
            grouped(|| crossed::<FFI_BatchBuffers>(batch.clone()), elsewhere)
                - grouped(|| batch.clone(), elsewhere)
        };
        let (here, there) = (adds(false), adds(true));
        out.push_str(&format!("| {name} | {here:.0} ns | {there:.0} ns |\n"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a tokio runtime");
    out.push_str(
        "\nThe same, each batch polled from a stream (`FFI_BatchStream`, the bundle's runtime \
         entered for every poll, as a bundle's plan sends it) against the same stream polled \
         natively:\n\n| batch | dropped by the same thread | by another thread |\n\
         |---|---:|---:|\n",
    );
    for (name, batch) in batches(rows) {
        let adds = |elsewhere| {
            let mut exported = stream_of(&batch, Some(&runtime));
            let mut native = stream_of(&batch, None);
            grouped(|| ready(&mut exported), elsewhere) - grouped(|| ready(&mut native), elsewhere)
        };
        let (here, there) = (adds(false), adds(true));
        out.push_str(&format!("| {name} | {here:.0} ns | {there:.0} ns |\n"));
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
        let table = table(3);
        let row = "| two Int64 columns (time_buckets) |";
        assert_eq!(table.matches(row).count(), 3, "{table}");
    }
}
