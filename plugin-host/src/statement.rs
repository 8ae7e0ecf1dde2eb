//! Plugin statements, for shells and applications that take SQL text:
//!
//! ```sql
//! LOAD PLUGIN '/opt/plugins/libdf_plugin_delta.so' [FORCE];  -- load, upgrade (FORCE: any version)
//! RELOAD PLUGIN delta;                                      -- no-op if the file is unchanged
//! UNLOAD PLUGIN delta;                                      -- deregister its objects
//! SET PLUGIN TRUST signed;                                  -- tighten only
//! ```
//!
//! DataFusion's parser does not know them, so a script is first [`split`] into statements
//! (quotes, comments and dollar-quoting respected), each one is offered to
//! [`PluginStatement::parse`], and the rest go to DataFusion as usual.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::error::{HostError, Result};
use crate::lifecycle::{self, Change};
use crate::register::PluginRegistry;
use crate::trust::TrustLevel;

/// A statement about plugins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginStatement {
    Load { path: PathBuf, force: bool },
    Reload { name: String },
    Unload { name: String },
    SetTrust(TrustLevel),
}

const USAGE: &str = "plugin statements: LOAD PLUGIN '<path>' [FORCE] | RELOAD PLUGIN <name> | UNLOAD PLUGIN <name> | SET PLUGIN TRUST <any|pinned|signed>";

/// Splits a script at top-level `;`s. Empty statements are dropped.
pub fn split(script: &str) -> Vec<&str> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' | b'`' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                // $tag$ ... $tag$
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map(|p| i + 1 + p);
                if let Some(end) = tag_end.filter(|e| bytes[*e] == b'$') {
                    let tag = &script[i..=end];
                    match script[end + 1..].find(tag) {
                        Some(close) => i = end + close + tag.len(),
                        None => i = bytes.len(),
                    }
                }
            }
            b';' => {
                out.push(&script[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&script[start.min(script.len())..]);
    out.into_iter()
        .filter(|s| !strip_comments(s).trim().is_empty())
        .collect()
}

/// The statement without leading whitespace and comments.
fn strip_comments(s: &str) -> &str {
    let mut s = s.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.find('\n').map_or("", |n| &rest[n + 1..]).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |n| &rest[n + 2..]).trim_start();
        } else {
            return s;
        }
    }
}

/// Words and single-quoted strings ('' escapes a quote).
fn tokens(s: &str) -> std::result::Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == '=' {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        text.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => text.push(ch),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push((text, true));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '\'' || ch == '=' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            out.push((word.trim_matches('"').to_owned(), false));
        }
    }
    Ok(out)
}

impl PluginStatement {
    /// `None` when `sql` is not a plugin statement (hand it to DataFusion); otherwise the
    /// statement or what is wrong with it.
    pub fn parse(sql: &str) -> Option<Result<Self>> {
        let body = strip_comments(sql).trim().trim_end_matches(';').trim();
        let mut words = body.split_whitespace();
        let verb = words.next()?.to_ascii_uppercase();
        if !words.next()?.eq_ignore_ascii_case("PLUGIN")
            || !matches!(verb.as_str(), "LOAD" | "RELOAD" | "UNLOAD" | "SET")
        {
            return None;
        }
        Some(Self::parse_body(&verb, body))
    }

    fn parse_body(verb: &str, body: &str) -> Result<Self> {
        let bad = |why: &str| HostError::Usage(format!("{why} in `{body}`; {USAGE}"));
        let toks = tokens(body).map_err(|e| bad(&e))?;
        let rest = &toks[2..];
        let name = || match rest {
            [(name, _)] if !name.is_empty() => Ok(name.clone()),
            [] => Err(bad("a bundle name is missing")),
            _ => Err(bad("expected one bundle name")),
        };
        match verb {
            "LOAD" => match rest {
                [(path, true)] => Ok(Self::Load {
                    path: PathBuf::from(path),
                    force: false,
                }),
                [(path, true), (force, false)] if force.eq_ignore_ascii_case("FORCE") => {
                    Ok(Self::Load {
                        path: PathBuf::from(path),
                        force: true,
                    })
                }
                [] => Err(bad("the bundle path is missing")),
                [(_, false), ..] => Err(bad("the path must be a quoted string")),
                _ => Err(bad(
                    "unexpected words after the path (only FORCE is allowed)",
                )),
            },
            "RELOAD" => Ok(Self::Reload { name: name()? }),
            "UNLOAD" => Ok(Self::Unload { name: name()? }),
            _ => match rest {
                [(trust, false), (level, _)] if trust.eq_ignore_ascii_case("TRUST") => {
                    Ok(Self::SetTrust(TrustLevel::parse(level)?))
                }
                _ => Err(bad("expected SET PLUGIN TRUST <level>")),
            },
        }
    }
}

/// Runs a plugin statement against `ctx`; the result is one row: action, bundle, version,
/// path, detail.
pub fn execute(ctx: &Arc<SessionContext>, statement: &PluginStatement) -> Result<RecordBatch> {
    let change = match statement {
        PluginStatement::Load { path, force } => lifecycle::load(ctx, path, *force)?,
        PluginStatement::Reload { name } => lifecycle::reload(ctx, name)?,
        PluginStatement::Unload { name } => lifecycle::deregister(ctx, name)?,
        PluginStatement::SetTrust(level) => {
            PluginRegistry::of(ctx).tighten_trust(*level)?;
            return row(["trust", "", "", "", level.as_str()]);
        }
    };
    let b = change.bundle();
    let detail = match &change {
        Change::Upgraded { from, .. } => {
            format!("was {} from {}", from.version, from.path.display())
        }
        Change::Deregistered(_) => format!("{} objects removed", b.objects.len()),
        _ => format!("{} objects", b.objects.len()),
    };
    let path = b.path.display().to_string();
    row([change.action(), &b.name, &b.version, &path, &detail])
}

fn row(values: [&str; 5]) -> Result<RecordBatch> {
    let names = ["action", "bundle", "version", "path", "detail"];
    let schema = Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    );
    let columns: Vec<ArrayRef> = values
        .iter()
        .map(|v| Arc::new(StringArray::from(vec![*v])) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| HostError::DataFusion(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_top_level_semicolons_only() {
        let script = "SELECT ';' AS a; -- x; y\nLOAD PLUGIN '/p;q.so';\n/* ; */ SELECT $$a;b$$; ;";
        let parts: Vec<&str> = split(script).into_iter().map(str::trim).collect();
        assert_eq!(
            parts,
            vec![
                "SELECT ';' AS a",
                "-- x; y\nLOAD PLUGIN '/p;q.so'",
                "/* ; */ SELECT $$a;b$$"
            ]
        );
    }

    #[test]
    fn plugin_statements_parse_and_others_pass_through() {
        assert!(PluginStatement::parse("SELECT 1").is_none());
        assert!(PluginStatement::parse("LOAD DATA 'x'").is_none());
        let load = PluginStatement::parse("-- hi\n load plugin '/a/it''s.so' force;");
        assert_eq!(
            load.unwrap().unwrap(),
            PluginStatement::Load {
                path: "/a/it's.so".into(),
                force: true
            }
        );
        assert_eq!(
            PluginStatement::parse("UNLOAD PLUGIN \"delta\"")
                .unwrap()
                .unwrap(),
            PluginStatement::Unload {
                name: "delta".into()
            }
        );
        assert_eq!(
            PluginStatement::parse("SET PLUGIN TRUST = 'signed'")
                .unwrap()
                .unwrap(),
            PluginStatement::SetTrust(TrustLevel::Signed)
        );
        for bad in [
            "LOAD PLUGIN /unquoted.so",
            "LOAD PLUGIN",
            "LOAD PLUGIN 'a' NOW",
            "RELOAD PLUGIN",
            "SET PLUGIN TRUST sometimes",
            "LOAD PLUGIN 'open",
        ] {
            let e = PluginStatement::parse(bad)
                .unwrap()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("LOAD PLUGIN '<path>'") || e.contains("unknown trust level"),
                "{bad}: {e}"
            );
        }
    }
}
