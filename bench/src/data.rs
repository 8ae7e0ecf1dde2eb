//! The generated data: one in-memory table of web events, shared (not copied) by the native
//! and the bundle session.
//!
//! Deterministic (a fixed linear congruential sequence), so that every run measures the same
//! bytes; batches of the sessions' batch size, spread over as many partitions as the sessions
//! have. An in-memory scan hands its batches on as they are stored, so the stored size is the
//! size every operator above it sees: `--batch-size` must reach this table too, or it would
//! change nothing for the workloads over it.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;

/// The rows per generated batch unless `--batch-size` says otherwise: DataFusion's default
/// `batch_size`.
pub const BATCH_ROWS: usize = 8192;

/// Distinct URLs in the `url` column (the views point into one shared buffer of them).
const DISTINCT_URLS: usize = 4096;

/// A small deterministic pseudo-random sequence (Knuth's MMIX constants).
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The `events` table's schema:
/// - `ts`: epoch seconds, increasing with jitter; `w`: a bucket width per row (60..=3600);
/// - `url`: Utf8View, from a pool of realistic URLs;
/// - `g_few` (10 groups), `g_many` (`many_groups` groups), `user_id` (`window_partitions`);
/// - `v`: a positive Float64 (for `geo_mean`).
pub fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Int64, false),
        Field::new("w", DataType::Int64, false),
        Field::new("url", DataType::Utf8View, true),
        Field::new("g_few", DataType::Int64, false),
        Field::new("g_many", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("v", DataType::Float64, false),
    ]))
}

fn url_pool(rng: &mut Lcg) -> Vec<String> {
    let hosts = [
        "Example.COM",
        "www.shop.test",
        "cdn.assets.net",
        "api.data.io",
    ];
    (0..DISTINCT_URLS)
        .map(|i| {
            let host = hosts[i % hosts.len()];
            let user = if i % 7 == 0 { "u:p@" } else { "" };
            let port = if i % 5 == 0 { ":8443" } else { "" };
            format!(
                "https://{user}{host}{port}/section/{}/item-{}?ref=campaign{}&page={}",
                i % 13,
                rng.below(100_000),
                i % 17,
                i % 9
            )
        })
        .collect()
}

/// The `events` table: `rows` rows in batches of `batch_rows` over `partitions` partitions.
pub fn events(
    rows: usize,
    batch_rows: usize,
    many_groups: usize,
    users: usize,
    partitions: usize,
) -> MemTable {
    let batch_rows = batch_rows.max(1);
    let mut rng = Lcg::new(42);
    let urls = url_pool(&mut rng);
    let schema = events_schema();
    let partitions = partitions.max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    let mut ts = 1_700_000_000i64;
    for (i, start) in (0..rows).step_by(batch_rows).enumerate() {
        let n = batch_rows.min(rows - start);
        let mut url = StringViewBuilder::with_capacity(n).with_deduplicate_strings();
        let mut cols: [Vec<i64>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            ts += rng.below(3) as i64;
            cols[0].push(ts);
            cols[1].push(60 * (1 + rng.below(60) as i64));
            cols[2].push(rng.below(10) as i64);
            cols[3].push(rng.below(many_groups as u64) as i64);
            cols[4].push(rng.below(users as u64) as i64);
            v.push(1.0 + rng.below(1_000) as f64 / 10.0);
            url.append_value(&urls[rng.below(urls.len() as u64) as usize]);
        }
        let [ts_c, w, g_few, g_many, user] =
            cols.map(|c| Arc::new(Int64Array::from(c)) as ArrayRef);
        let columns: Vec<ArrayRef> = vec![
            ts_c,
            w,
            Arc::new(url.finish()),
            g_few,
            g_many,
            user,
            Arc::new(Float64Array::from(v)),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("a valid batch");
        parts[i % partitions].push(batch);
    }
    MemTable::try_new(schema, parts).expect("a valid table")
}

#[cfg(test)]
mod tests {
    use datafusion::datasource::TableProvider;
    use datafusion::prelude::SessionContext;

    use super::*;

    #[tokio::test]
    async fn the_table_stores_batches_of_the_asked_size() {
        let table = Arc::new(events(10, 4, 3, 2, 2));
        let ctx = SessionContext::new();
        let plan = table
            .scan(&ctx.state(), None, &[], None)
            .await
            .expect("a scan");
        let mut sizes = Vec::new();
        for partition in 0..2 {
            let batches = datafusion::physical_plan::common::collect(
                plan.execute(partition, ctx.task_ctx()).expect("a stream"),
            )
            .await
            .expect("batches");
            sizes.extend(batches.iter().map(|b| b.num_rows()));
        }
        // 10 rows in batches of 4, dealt round-robin over two partitions.
        assert_eq!(sizes, [4, 2, 4]);
    }
}
