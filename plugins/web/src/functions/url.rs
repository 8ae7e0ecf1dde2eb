//! `url_host(url)`: the host of a URL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArrayType, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::{as_large_string_array, as_string_array, as_string_view_array};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use df_plugin_api::toolkit::options::session_options;

use super::UdfsOptions;
pub use crate::url::{UrlParts, host_of, parse};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// The host as `url_host` returns it: `host_of`, without a leading `www.` when asked.
fn host_for(url: &str, strip_www: bool) -> Option<&str> {
    let host = host_of(url)?;
    match host.get(..4) {
        Some(www) if strip_www && www.eq_ignore_ascii_case("www.") && host.len() > 4 => {
            Some(&host[4..])
        }
        _ => Some(host),
    }
}

/// Appends the lower-cased host of `url` (or NULL) to `out`, reusing `buf` for the lowering.
fn append_host(url: Option<&str>, strip_www: bool, out: &mut StringBuilder, buf: &mut String) {
    match url.and_then(|u| host_for(u, strip_www)) {
        Some(host) if host.bytes().any(|b| b.is_ascii_uppercase()) => {
            buf.clear();
            buf.push_str(host);
            buf.make_ascii_lowercase();
            out.append_value(buf.as_str());
        }
        Some(host) => out.append_value(host),
        None => out.append_null(),
    }
}

fn hosts<'a>(urls: impl StringArrayType<'a>, strip_www: bool) -> ArrayRef {
    let mut out = StringBuilder::with_capacity(urls.len(), 16 * urls.len());
    let mut buf = String::new();
    for url in urls.iter() {
        append_host(url, strip_www, &mut out, &mut buf);
    }
    Arc::new(out.finish())
}

/// The `url_host` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlHost {
    signature: Signature,
}

impl UrlHost {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::one_of(
                    vec![
                        TypeSignature::Exact(vec![DataType::Utf8]),
                        TypeSignature::Exact(vec![DataType::LargeUtf8]),
                        TypeSignature::Exact(vec![DataType::Utf8View]),
                    ],
                    Volatility::Immutable,
                ),
                &["url"],
            ),
        }
    }
}

impl Default for UrlHost {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UrlHost {
    fn name(&self) -> &str {
        "url_host"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("url_host expects 1 argument, got {}", args.args.len());
        };
        let strip_www = session_options::<UdfsOptions>(&args.config_options)
            .unwrap_or_default()
            .strip_www;
        match arg {
            ColumnarValue::Scalar(s) => {
                let url = match s {
                    ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                        v.as_deref()
                    }
                    other => {
                        return exec_err!("url_host expects a string, got {}", other.data_type());
                    }
                };
                let host = url
                    .and_then(|u| host_for(u, strip_www))
                    .map(str::to_ascii_lowercase);
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(host)))
            }
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(match a.data_type() {
                DataType::Utf8 => hosts(as_string_array(a)?, strip_www),
                DataType::LargeUtf8 => hosts(as_large_string_array(a)?, strip_www),
                DataType::Utf8View => hosts(as_string_view_array(a)?, strip_www),
                other => return exec_err!("url_host expects a string, got {other}"),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_www_only_when_asked() {
        assert_eq!(super::host_for("https://WWW.a.b/", true), Some("a.b"));
        assert_eq!(super::host_for("https://www./", true), Some("www."));
        assert_eq!(super::host_for("https://www.a.b/", false), Some("www.a.b"));
    }
}
