//! `url_host(url)`: the host of a URL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArrayType, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::{as_large_string_array, as_string_array, as_string_view_array};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use df_plugin_api::toolkit::options::session_options;

use crate::UdfsOptions;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// The components of `scheme://[user@]host[:port][/path][?query][#fragment]` (or of a
/// scheme-relative `//host...`), as written. IPv6 hosts keep their brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: Option<&'a str>,
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

/// Parses a URL with an authority; `None` for anything else (`mailto:`, `file:///`, text).
pub fn parse(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = match url.find("://") {
        Some(i) => {
            let scheme = &url[..i];
            let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            if !valid {
                return None;
            }
            (Some(scheme), &url[i + 3..])
        }
        None => (None, url.strip_prefix("//")?),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if host_port.starts_with('[') {
        let end = host_port.find(']')?;
        let port = host_port[end + 1..].strip_prefix(':');
        (&host_port[..=end], port)
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(UrlParts {
        scheme,
        user,
        host,
        port,
        path,
        query,
        fragment,
    })
}

/// The host of a URL, as written.
pub fn host_of(url: &str) -> Option<&str> {
    parse(url).map(|p| p.host)
}

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
            signature: crate::with_names(
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
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://Example.com/a"), Some("Example.com"));
        assert_eq!(host_of("http://u:p@h.io:8080?x#y"), Some("h.io"));
        assert_eq!(host_of("//cdn.net/x.js"), Some("cdn.net"));
        assert_eq!(host_of("http://[::1]:80/"), Some("[::1]"));
        assert_eq!(host_of("mailto:a@b.c"), None);
        assert_eq!(host_of("file:///etc/passwd"), None);
        assert_eq!(host_of("1ttp://x"), None);
        assert_eq!(host_of("not a url"), None);
        let p = super::parse("https://u:p@Example.com:8443/a/b?x=1#top").unwrap();
        assert_eq!(
            (
                p.scheme, p.user, p.host, p.port, p.path, p.query, p.fragment
            ),
            (
                Some("https"),
                Some("u:p"),
                "Example.com",
                Some("8443"),
                "/a/b",
                Some("x=1"),
                Some("top")
            )
        );
        let p = super::parse("http://[::1]:80?q").unwrap();
        assert_eq!(
            (p.host, p.port, p.path, p.query),
            ("[::1]", Some("80"), "", Some("q"))
        );
        assert_eq!(super::host_for("https://WWW.a.b/", true), Some("a.b"));
        assert_eq!(super::host_for("https://www./", true), Some("www."));
        assert_eq!(super::host_for("https://www.a.b/", false), Some("www.a.b"));
    }
}
