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
//! through the allocating thread's cache. The fourth table measures the way out of plugin ABI
//! 1.9: fresh batches, as a generator makes them, with their memory held for the host (1.8)
//! against handed over to it (the host making per column only what native code makes), which
//! a bundle sharing the host's allocator does. Its differences are steadier with glibc's heap
//! trimming off (`GLIBC_TUNABLES=glibc.malloc.trim_threshold=1000000000`).

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
use df_plugin_api::ffi::allocator;
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

/// Blocks for fresh batches, whose making varies more than the crossing costs.
const FRESH_BLOCKS: usize = 41;

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

/// What each way after the first adds per batch over the first (`ways[0]`, the baseline): CPU
/// nanoseconds of both threads to take batches from a way and drop them [`HANDOFF`] at a
/// time, on another thread when `elsewhere`, on this one otherwise (the other thread runs
/// either way, so both pay for the same wake-ups). The ways take turns block by block, and
/// the median of the `blocks` differences is kept, so a drift of the machine falls on all of
/// them alike.
fn adds_over(
    ways: &mut [&mut dyn FnMut() -> RecordBatch],
    elsewhere: bool,
    blocks: usize,
) -> Vec<f64> {
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
    let block = |next: &mut dyn FnMut() -> RecordBatch| {
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
    for way in ways.iter_mut() {
        block(*way);
    }
    let mut differences = vec![Vec::with_capacity(blocks); ways.len() - 1];
    for _ in 0..blocks {
        let baseline = block(&mut *ways[0]);
        for (way, differences) in ways[1..].iter_mut().zip(differences.iter_mut()) {
            differences.push(block(*way) - baseline);
        }
    }
    drop(to_dropper);
    dropper.join().expect("the dropping thread ends");
    differences
        .into_iter()
        .map(|mut d| {
            d.sort_by(f64::total_cmp);
            d[blocks / 2]
        })
        .collect()
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

/// A batch as a generator makes it: an Int64 column of `rows` fresh values per field of
/// `schema`, each built from a `Vec` and owned by this batch alone.
fn fresh(schema: &SchemaRef, rows: usize) -> RecordBatch {
    let columns = (0..schema.fields().len())
        .map(|c| {
            let values: Vec<i64> = (0..rows as i64).map(|i| i + c as i64).collect();
            Arc::new(Int64Array::from(values)) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(SchemaRef::clone(schema), columns).expect("columns of the schema")
}

/// `batch` crossed with the columns' memory handed over (plugin ABI 1.9), as a bundle that
/// shares the host's allocator sends them: one process has one allocator, so this image may
/// hand its own memory over to itself while it exports.
fn handed_over(batch: RecordBatch) -> RecordBatch {
    // SAFETY: this image imports what it exports here, at once.
    unsafe { allocator::share_in_process(true) };
    let crossed = crossed::<FFI_BatchBuffers>(batch);
    // SAFETY: as above.
    unsafe { allocator::share_in_process(false) };
    crossed
}

/// The table of what crossing fresh batches of Int64 columns adds when another thread drops
/// them: held for the host until it drops them (1.8), and handed over (1.9).
fn fresh_table(rows: usize) -> String {
    let mut out = format!(
        "\nThe same for fresh batches, as a generator makes them (Int64 columns built from a \
         `Vec`, owned by the batch alone), dropped by another thread ({FRESH_BLOCKS} blocks): \
         what the crossing adds with the columns' memory held for the host (1.8: taken apart \
         at export, released through the bundle) and handed over to it (1.9: a bundle sharing \
         the host's allocator):\n\n\
         | batch | held (1.8) | handed over (1.9) |\n|---|---:|---:|\n"
    );
    for (name, batch) in batches(rows).into_iter().take(2) {
        let schema = batch.schema();
        let mut native = || fresh(&schema, rows);
        let mut held = || crossed::<FFI_BatchBuffers>(fresh(&schema, rows));
        let mut handed = || handed_over(fresh(&schema, rows));
        let ways: &mut [&mut dyn FnMut() -> RecordBatch] =
            &mut [&mut native, &mut held, &mut handed];
        let adds = adds_over(ways, true, FRESH_BLOCKS);
        out.push_str(&format!(
            "| {name} | {:.0} ns | {:.0} ns |\n",
            adds[0], adds[1]
        ));
    }
    out
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
         theirs to the thread that collects them: CPU time of both threads, against the same \
         batches not crossed, block by block in turns, median of {BLOCKS} blocks' differences \
         ({ITERATIONS} batches a block):\n\n\
         | batch | dropped by the same thread | by another thread |\n|---|---:|---:|\n"
    ));
    for (name, batch) in batches(rows) {
        let adds = |elsewhere| {
            let mut native = || batch.clone();
            let mut crossing = || crossed::<FFI_BatchBuffers>(batch.clone());
            adds_over(&mut [&mut native, &mut crossing], elsewhere, BLOCKS)[0]
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
            let (mut exported, mut native) =
                (stream_of(&batch, Some(&runtime)), stream_of(&batch, None));
            let mut native = || ready(&mut native);
            let mut crossing = || ready(&mut exported);
            adds_over(&mut [&mut native, &mut crossing], elsewhere, BLOCKS)[0]
        };
        let (here, there) = (adds(false), adds(true));
        out.push_str(&format!("| {name} | {here:.0} ns | {there:.0} ns |\n"));
    }
    out.push_str(&fresh_table(rows));
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
        for (name, batch) in batches(3).into_iter().take(2) {
            let expected = fresh(&batch.schema(), 3);
            assert_eq!(handed_over(fresh(&batch.schema(), 3)), expected, "{name}");
        }
        let table = table(3);
        let row = "| two Int64 columns (time_buckets) |";
        assert_eq!(table.matches(row).count(), 4, "{table}");
    }
}
