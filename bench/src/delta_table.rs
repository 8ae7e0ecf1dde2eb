//! The generated Delta table: `hits`, partitioned by `day`, written by delta-rs in several
//! commits (so several files per partition), kept between runs under the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::kernel::{DataType as DeltaType, StructField};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, ensure_table_uri};

use crate::data::Lcg;

/// Days (partitions) of the table; a partition-filtered scan reads one of them.
pub const DAYS: usize = 10;

/// Commits the rows are written in: each adds a file to every partition.
const COMMITS: usize = 5;

/// The partition the filtered workload reads.
pub const FILTER_DAY: &str = "2026-01-03";

fn day(i: usize) -> String {
    format!("2026-01-{:02}", i + 1)
}

/// The table of `rows` rows, written on first use: `(id, user_id, url, value, ts, day)`.
pub fn ensure(data_dir: &Path, rows: usize, runtime: &tokio::runtime::Runtime) -> PathBuf {
    let dir = data_dir.join(format!("delta-hits-{rows}"));
    let complete = dir.join("_bench_complete");
    if complete.exists() {
        return dir;
    }
    eprintln!("writing the Delta table {} ({rows} rows)", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the Delta table directory");
    runtime
        .block_on(write(&dir, rows))
        .unwrap_or_else(|e| panic!("writing the Delta table at {}: {e}", dir.display()));
    std::fs::write(&complete, b"").expect("mark the table complete");
    dir
}

async fn write(dir: &Path, rows: usize) -> Result<(), deltalake::DeltaTableError> {
    let url = ensure_table_uri(dir.to_string_lossy())?;
    let mut table = DeltaTable::try_from_url(url)
        .await?
        .create()
        .with_columns(vec![
            StructField::new("id", DeltaType::LONG, false),
            StructField::new("user_id", DeltaType::LONG, false),
            StructField::new("url", DeltaType::STRING, false),
            StructField::new("value", DeltaType::DOUBLE, false),
            StructField::new("ts", DeltaType::LONG, false),
            StructField::new("day", DeltaType::STRING, false),
        ])
        .with_partition_columns(["day"])
        .await?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("day", DataType::Utf8, false),
    ]));
    let mut rng = Lcg::new(7);
    let per_commit = rows.div_ceil(COMMITS);
    for commit in 0..COMMITS {
        let from = commit * per_commit;
        let to = rows.min(from + per_commit);
        let mut batches = Vec::new();
        for start in (from..to).step_by(65_536) {
            let ids: Vec<i64> = (start..to.min(start + 65_536)).map(|i| i as i64).collect();
            let n = ids.len();
            let urls: Vec<String> = (0..n)
                .map(|_| format!("https://site{}.test/p/{}", rng.below(50), rng.below(1000)))
                .collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(ids.iter().copied())),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|_| rng.below(1000) as i64),
                )),
                Arc::new(StringArray::from_iter_values(urls)),
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|_| rng.below(10_000) as f64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    ids.iter().map(|i| 1_767_225_600 + i),
                )),
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| day(*i as usize % DAYS)),
                )),
            ];
            batches.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
        table = table
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .await?;
    }
    Ok(())
}
