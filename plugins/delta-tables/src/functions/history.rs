//! `delta_history(location [, limit])`: one row per commit, newest first.
//!
//! deltalake's `DeltaTable::history` yields commit infos without their version and skips
//! commits that have none, so this reads the log itself: the commit files directly under
//! `_delta_log/` (never `.tmp/` leftovers of failed writers) up to the table's version.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result};
use deltalake::ObjectMeta;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::logstore::object_store::path::Path;
use df_plugin_api::toolkit::runtime;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use super::{argument, at_most, location_argument};
use crate::location::{TableLocation, TimeTravel, plan};

const USAGE: &str = "delta_history('<path or URL>' [, limit])";

/// Commit files fetched at once.
const CONCURRENT_READS: usize = 16;

#[derive(Debug, Default)]
pub struct DeltaHistoryFunction {
    defaults: BTreeMap<String, String>,
}

impl DeltaHistoryFunction {
    pub fn new(defaults: BTreeMap<String, String>) -> Self {
        Self { defaults }
    }
}

impl TableFunctionImpl for DeltaHistoryFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        at_most("delta_history", exprs, 2, USAGE)?;
        let location = location_argument("delta_history", exprs, USAGE, &self.defaults)?;
        let limit = match argument("delta_history", exprs, 1, "limit")? {
            None => None,
            Some(value) => match value.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
                Ok(datafusion::common::ScalarValue::Int64(Some(n))) if n >= 0 => Some(n as usize),
                _ => {
                    return Err(plan(format!(
                        "delta_history: the limit must be a non-negative integer, got {value}"
                    )));
                }
            },
        };
        let batch = runtime::block_on(read_history(location, limit))?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

/// One commit of the log.
struct Commit {
    version: u64,
    meta: ObjectMeta,
    info: Map<String, Value>,
}

async fn read_history(location: TableLocation, limit: Option<usize>) -> Result<RecordBatch> {
    let table = location.open(TimeTravel::Latest).await?;
    let latest = table.version().unwrap_or_default();
    let store = table.log_store().object_store(None);
    let listing = store
        .list_with_delimiter(Some(&Path::from("_delta_log")))
        .await
        .map_err(|e| external(&location, e))?;
    let mut files: Vec<(u64, ObjectMeta)> = listing
        .objects
        .into_iter()
        .filter_map(|meta| Some((commit_version(&meta.location)?, meta)))
        .filter(|(v, _)| *v <= latest)
        .collect();
    files.sort_unstable_by_key(|(version, _)| std::cmp::Reverse(*version));
    if let Some(limit) = limit {
        files.truncate(limit);
    }
    let commits: Vec<Commit> = futures::stream::iter(files)
        .map(|(version, meta)| {
            let store = Arc::clone(&store);
            let location = &location;
            async move {
                let bytes = store
                    .get(&meta.location)
                    .await
                    .map_err(|e| external(location, e))?
                    .bytes()
                    .await
                    .map_err(|e| external(location, e))?;
                let info = commit_info(&bytes).map_err(|e| {
                    plan(format!(
                        "Delta table '{}': commit {version} is not valid JSON: {e}",
                        location.given
                    ))
                })?;
                Ok::<_, DataFusionError>(Commit {
                    version,
                    meta,
                    info,
                })
            }
        })
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await?;
    history_batch(&commits)
}

fn external(location: &TableLocation, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!(
        "Delta table '{}': cannot read its log: {e}",
        location.given
    ))
}

/// `00000000000000000012.json` is commit 12; checkpoints, CRCs and others are not commits.
fn commit_version(path: &Path) -> Option<u64> {
    let name = path.filename()?;
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `commitInfo` action of a commit file (an empty map when the writer wrote none).
fn commit_info(bytes: &[u8]) -> serde_json::Result<Map<String, Value>> {
    for line in bytes.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let action: Value = serde_json::from_slice(line)?;
        if let Some(Value::Object(info)) = action.get("commitInfo") {
            return Ok(info.clone());
        }
    }
    Ok(Map::new())
}

fn history_batch(commits: &[Commit]) -> Result<RecordBatch> {
    let mut version = Int64Builder::new();
    let mut timestamp = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut operation = StringBuilder::new();
    let mut parameters = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut metrics = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut read_version = Int64Builder::new();
    let mut blind_append = BooleanBuilder::new();
    let mut engine = StringBuilder::new();
    let mut user = StringBuilder::new();
    for commit in commits {
        let info = &commit.info;
        version.append_value(commit.version as i64);
        // In-commit timestamps are authoritative when present; then the writer's clock; a
        // commit without either gets its file time, which is what timestamp travel uses.
        let ts = info
            .get("inCommitTimestamp")
            .and_then(Value::as_i64)
            .or_else(|| info.get("timestamp").and_then(Value::as_i64))
            .unwrap_or_else(|| commit.meta.last_modified.timestamp_millis());
        timestamp.append_value(ts);
        operation.append_option(info.get("operation").and_then(Value::as_str));
        append_map(&mut parameters, info.get("operationParameters"))?;
        append_map(&mut metrics, info.get("operationMetrics"))?;
        read_version.append_option(info.get("readVersion").and_then(Value::as_i64));
        blind_append.append_option(info.get("isBlindAppend").and_then(Value::as_bool));
        engine.append_option(info.get("engineInfo").and_then(Value::as_str));
        user.append_option(info.get("userName").and_then(Value::as_str));
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("version", Arc::new(version.finish())),
        ("timestamp", Arc::new(timestamp.finish())),
        ("operation", Arc::new(operation.finish())),
        ("parameters", Arc::new(parameters.finish())),
        ("metrics", Arc::new(metrics.finish())),
        ("read_version", Arc::new(read_version.finish())),
        ("is_blind_append", Arc::new(blind_append.finish())),
        ("engine_info", Arc::new(engine.finish())),
        ("user_name", Arc::new(user.finish())),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), name != &"version"))
            .collect::<Vec<_>>(),
    );
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )?)
}

/// A JSON object as a string map; non-string values keep their JSON text.
fn append_map(
    builder: &mut MapBuilder<StringBuilder, StringBuilder>,
    value: Option<&Value>,
) -> Result<()> {
    let Some(Value::Object(entries)) = value else {
        builder.append(false)?;
        return Ok(());
    };
    for (key, value) in entries {
        builder.keys().append_value(key);
        match value {
            Value::String(s) => builder.values().append_value(s),
            Value::Null => builder.values().append_null(),
            other => builder.values().append_value(other.to_string()),
        }
    }
    builder.append(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_top_level_commit_files_are_commits() {
        assert_eq!(
            commit_version(&Path::from("_delta_log/00000000000000000012.json")),
            Some(12)
        );
        assert_eq!(
            commit_version(&Path::from(
                "_delta_log/00000000000000000010.checkpoint.parquet"
            )),
            None
        );
        assert_eq!(
            commit_version(&Path::from("_delta_log/00000000000000000010.crc")),
            None
        );
        assert_eq!(
            commit_version(&Path::from("_delta_log/_last_checkpoint")),
            None
        );
    }

    #[test]
    fn commit_info_is_found_on_any_line() {
        let commit = b"{\"protocol\":{}}\n{\"commitInfo\":{\"operation\":\"WRITE\"}}\n";
        assert_eq!(commit_info(commit).unwrap()["operation"], "WRITE");
        assert!(commit_info(b"{\"add\":{}}").unwrap().is_empty());
        assert!(commit_info(b"not json").is_err());
    }
}
