//! `url_query_params(url)` and `url_path_segments(url)`: the query parameters and the path
//! segments of a URL, as tables.

use std::sync::Arc;

use crate::url::{parse, percent_decode_path, query_pairs};
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use df_plugin_api::toolkit::source::{BatchTable, SourceTable, TableSource};

/// The single constant text argument of a table function over a URL (`None` for NULL).
fn url_argument(function: &str, args: &[ScalarValue]) -> Result<Option<String>> {
    match args {
        [ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v)] => {
            Ok(v.clone())
        }
        // A NULL url has no parameters or segments, as a NULL string has no characters.
        [ScalarValue::Null] => Ok(None),
        [other] => plan_err!("{function} expects a constant string argument (url), got {other}"),
        args => plan_err!("{function} expects 1 argument (url), got {}", args.len()),
    }
}

/// A one-partition table of `(position, <text columns>...)` rows.
fn positional_table(columns: &[&str], rows: &[Vec<String>]) -> Result<Arc<dyn SourceTable>> {
    let mut fields = vec![Field::new("position", DataType::Int64, false)];
    fields.extend(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, false)),
    );
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut position = Int64Builder::with_capacity(rows.len());
    let mut texts: Vec<StringBuilder> = columns.iter().map(|_| StringBuilder::new()).collect();
    for (i, row) in rows.iter().enumerate() {
        position.append_value(i as i64 + 1);
        for (b, v) in texts.iter_mut().zip(row) {
            b.append_value(v);
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(position.finish())];
    arrays.extend(texts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(BatchTable::new(batch))
}

/// The `url_query_params` table function.
#[derive(Debug)]
pub struct UrlQueryParams;

impl TableSource for UrlQueryParams {
    fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>> {
        let url = url_argument("url_query_params", args)?;
        let rows: Vec<Vec<String>> = url
            .as_deref()
            .map(query_pairs)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| vec![k, v])
            .collect();
        positional_table(&["key", "value"], &rows)
    }
}

/// The `url_path_segments` table function: one row `(position, segment)` per non-empty path
/// segment of a URL, percent-decoded.
#[derive(Debug)]
pub struct UrlPathSegments;

impl TableSource for UrlPathSegments {
    fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>> {
        let url = url_argument("url_path_segments", args)?;
        let rows: Vec<Vec<String>> = url
            .as_deref()
            .and_then(parse)
            .map(|p| {
                p.path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| vec![percent_decode_path(s)])
                    .collect()
            })
            .unwrap_or_default();
        positional_table(&["segment"], &rows)
    }
}
