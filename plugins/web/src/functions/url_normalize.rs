//! `url_normalize(url)`: a canonical form of a URL — scheme and host lower-cased, default port
//! and fragment dropped, empty path as `/`. The result field keeps the input field's metadata
//! and adds `df_plugin.udfs.normalized = "true"`, so a column's metadata survives the call.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::as_string_array;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::url::parse;

/// The metadata key `url_normalize` adds to its result field.
pub const NORMALIZED_KEY: &str = "df_plugin.udfs.normalized";

/// Writes the normal form of `url` into `out`; false if `url` is not a URL with a host.
pub fn normalize_into(url: &str, out: &mut String) -> bool {
    let Some(p) = parse(url) else {
        return false;
    };
    out.clear();
    let scheme = p.scheme.unwrap_or("https").to_ascii_lowercase();
    let _ = write!(out, "{scheme}://");
    if let Some(user) = p.user {
        let _ = write!(out, "{user}@");
    }
    out.push_str(&p.host.to_ascii_lowercase());
    let default_port = match scheme.as_str() {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    };
    if let Some(port) = p
        .port
        .filter(|port| Some(*port) != default_port && !port.is_empty())
    {
        let _ = write!(out, ":{port}");
    }
    out.push_str(if p.path.is_empty() { "/" } else { p.path });
    if let Some(q) = p.query.filter(|q| !q.is_empty()) {
        let _ = write!(out, "?{q}");
    }
    true
}

/// The `url_normalize` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlNormalize {
    signature: Signature,
}

impl UrlNormalize {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
                &["url"],
            ),
        }
    }
}

impl Default for UrlNormalize {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UrlNormalize {
    fn name(&self) -> &str {
        "url_normalize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let mut metadata: HashMap<String, String> = args
            .arg_fields
            .first()
            .map(|f| f.metadata().clone())
            .unwrap_or_default();
        metadata.insert(NORMALIZED_KEY.to_owned(), "true".to_owned());
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(metadata),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let urls = args.args[0].to_array(args.number_rows)?;
        let urls = as_string_array(&urls)?;
        let mut out = StringBuilder::with_capacity(urls.len(), 32 * urls.len());
        let mut buf = String::new();
        for url in urls.iter() {
            match url {
                Some(u) if normalize_into(u, &mut buf) => out.append_value(&buf),
                _ => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_into;

    #[test]
    fn normal_forms() {
        let mut s = String::new();
        assert!(normalize_into("HTTP://Example.COM:80?b=2#frag", &mut s));
        assert_eq!(s, "http://example.com/?b=2");
        assert!(normalize_into("https://a.b:8443/x", &mut s));
        assert_eq!(s, "https://a.b:8443/x");
        assert!(!normalize_into("mailto:x@y", &mut s));
    }
}
