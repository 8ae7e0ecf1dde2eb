//! `url_query_params(url)`: the query parameters of a URL, as a table.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

/// Decodes `%XX` escapes and `+` (as space, as in query strings and forms); malformed escapes
/// are kept as written.
pub fn percent_decode(s: &str) -> String {
    percent_decode_with(s, true)
}

fn percent_decode_with(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `(key, value)` pairs of the query part of `url`, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

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
            .and_then(crate::url::parse)
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

/// Decodes `%XX` escapes only (in a path, `+` is a plus sign).
pub fn percent_decode_path(s: &str) -> String {
    percent_decode_with(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        assert_eq!(
            query_pairs("https://a.b/p?q=data+fusion&x=%41%zz&flag#frag"),
            vec![
                ("q".into(), "data fusion".into()),
                ("x".into(), "A%zz".into()),
                ("flag".into(), "".into()),
            ]
        );
        assert!(query_pairs("https://a.b/").is_empty());
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode_path("a+b%20c"), "a+b c");
    }
}
