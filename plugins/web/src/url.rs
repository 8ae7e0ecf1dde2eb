//! URL text primitives: a URL split into its components as written, percent-decoding, and a
//! query string's pairs. No DataFusion types: the scalar and table functions wrap these for
//! arrays and tables.

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
///
/// `#[inline]`: the udfs bundle's per-row loops call it from another crate, where a function
/// this size is otherwise not inlined (it was in the same crate before the udtfs split).
#[inline]
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
#[inline]
pub fn host_of(url: &str) -> Option<&str> {
    parse(url).map(|p| p.host)
}

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

/// Decodes `%XX` escapes only (in a path, `+` is a plus sign).
pub fn percent_decode_path(s: &str) -> String {
    percent_decode_with(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_url_as_written() {
        assert_eq!(host_of("https://Example.com/a"), Some("Example.com"));
        assert_eq!(host_of("http://u:p@h.io:8080?x#y"), Some("h.io"));
        assert_eq!(host_of("//cdn.net/x.js"), Some("cdn.net"));
        assert_eq!(host_of("http://[::1]:80/"), Some("[::1]"));
        assert_eq!(host_of("mailto:a@b.c"), None);
        assert_eq!(host_of("file:///etc/passwd"), None);
        assert_eq!(host_of("1ttp://x"), None);
        assert_eq!(host_of("not a url"), None);
        let p = parse("https://u:p@Example.com:8443/a/b?x=1#top");
        assert_eq!(
            p.map(|p| (
                p.scheme, p.user, p.host, p.port, p.path, p.query, p.fragment
            )),
            Some((
                Some("https"),
                Some("u:p"),
                "Example.com",
                Some("8443"),
                "/a/b",
                Some("x=1"),
                Some("top")
            ))
        );
        let p = parse("http://[::1]:80?q");
        assert_eq!(
            p.map(|p| (p.host, p.port, p.path, p.query)),
            Some(("[::1]", Some("80"), "", Some("q")))
        );
    }

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
