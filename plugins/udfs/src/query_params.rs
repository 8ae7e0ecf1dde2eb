//! `url_query_params(url)`: the query parameters of a URL, as a table.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

/// Decodes `%XX` escapes and `+` (as space); malformed escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
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

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("position", DataType::Int64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]))
}

/// The `url_query_params` table function.
#[derive(Debug)]
pub struct UrlQueryParams;

impl TableFunctionImpl for UrlQueryParams {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let url = match args.exprs() {
            [
                Expr::Literal(
                    ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v),
                    _,
                ),
            ] => v.clone(),
            // A NULL url has no parameters, as a NULL string has no characters.
            [Expr::Literal(ScalarValue::Null, _)] => None,
            [other] => {
                return plan_err!(
                    "url_query_params expects a constant string argument (url), got {other}"
                );
            }
            exprs => {
                return plan_err!(
                    "url_query_params expects 1 argument (url), got {}",
                    exprs.len()
                );
            }
        };
        let pairs = url.as_deref().map(query_pairs).unwrap_or_default();
        let mut position = Int64Builder::with_capacity(pairs.len());
        let mut keys = StringBuilder::new();
        let mut values = StringBuilder::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            position.append_value(i as i64 + 1);
            keys.append_value(k);
            values.append_value(v);
        }
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(position.finish()),
                Arc::new(keys.finish()),
                Arc::new(values.finish()),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema(), vec![vec![batch]])?))
    }
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
    }
}
