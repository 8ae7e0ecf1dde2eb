//! `url_query_params(url)` and `url_path_segments(url)`: the query parameters and the path
//! segments of a URL, as tables.

use std::sync::Arc;

use crate::url::{parse, percent_decode_path, query_pairs};
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

/// The single constant text argument of a table function over a URL (`None` for NULL).
fn url_argument(function: &str, exprs: &[Expr]) -> Result<Option<String>> {
    match exprs {
        [
            Expr::Literal(
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v),
                _,
            ),
        ] => Ok(v.clone()),
        // A NULL url has no parameters or segments, as a NULL string has no characters.
        [Expr::Literal(ScalarValue::Null, _)] => Ok(None),
        [other] => plan_err!("{function} expects a constant string argument (url), got {other}"),
        exprs => plan_err!("{function} expects 1 argument (url), got {}", exprs.len()),
    }
}

/// A one-partition table of `(position, <text columns>...)` rows.
fn positional_table(columns: &[&str], rows: &[Vec<String>]) -> Result<Arc<dyn TableProvider>> {
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
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// The `url_query_params` table function.
#[derive(Debug)]
pub struct UrlQueryParams;

impl TableFunctionImpl for UrlQueryParams {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let url = url_argument("url_query_params", args.exprs())?;
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

impl TableFunctionImpl for UrlPathSegments {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let url = url_argument("url_path_segments", args.exprs())?;
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
