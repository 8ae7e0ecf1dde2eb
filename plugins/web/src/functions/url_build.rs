//! Building URLs: `url_join(base, segment, ...)` and the volatile `url_cache_buster(url)`.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `url_join(base, segment, ...)`: appends path segments to a URL with exactly one `/` between
/// them. Takes any number of arguments of any type with a text form (numbers, dates, ...),
/// converted to text at planning time; NULL segments are skipped, as `concat_ws` skips them,
/// and a NULL base gives NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlJoin {
    signature: Signature,
}

impl UrlJoin {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for UrlJoin {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UrlJoin {
    fn name(&self) -> &str {
        "url_join"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.is_empty() {
            return plan_err!(
                "url_join expects a base URL and any number of segments, got no arguments"
            );
        }
        for t in arg_types {
            if t.is_nested()
                || matches!(
                    t,
                    DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                )
            {
                return plan_err!("url_join: a {t} argument has no text form to join");
            }
        }
        Ok(vec![DataType::Utf8; arg_types.len()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let columns: Vec<&StringArray> = columns
            .iter()
            .map(|c| as_string_array(c))
            .collect::<Result<_>>()?;
        let mut out = StringBuilder::with_capacity(args.number_rows, 32 * args.number_rows);
        let mut buf = String::new();
        for row in 0..args.number_rows {
            if columns[0].is_null(row) {
                out.append_null();
                continue;
            }
            buf.clear();
            buf.push_str(columns[0].value(row));
            for segment in &columns[1..] {
                if segment.is_null(row) {
                    continue;
                }
                let s = segment.value(row).trim_start_matches('/');
                if !buf.ends_with('/') {
                    buf.push('/');
                }
                buf.push_str(s);
            }
            out.append_value(&buf);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `url_cache_buster(url)`: the URL with a random `cb=<hex>` query parameter, different on
/// every row and every call. Volatile: never folded into a constant.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlCacheBuster {
    signature: Signature,
}

impl UrlCacheBuster {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(vec![DataType::Utf8], Volatility::Volatile),
                &["url"],
            ),
        }
    }
}

impl Default for UrlCacheBuster {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UrlCacheBuster {
    fn name(&self) -> &str {
        "url_cache_buster"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let urls = args.args[0].to_array(args.number_rows)?;
        let urls = as_string_array(&urls)?;
        // A randomly seeded hasher per call; the row number makes each row's value distinct.
        let seed = std::collections::hash_map::RandomState::new();
        let mut out = StringBuilder::with_capacity(urls.len(), 48 * urls.len());
        for (row, url) in urls.iter().enumerate() {
            match url {
                Some(u) => {
                    let mut h = seed.build_hasher();
                    h.write_usize(row);
                    let sep = if u.contains('?') { '&' } else { '?' };
                    out.append_value(format!("{u}{sep}cb={:016x}", h.finish()));
                }
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
