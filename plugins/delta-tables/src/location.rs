//! Where a Delta table lives and which version of it to read.
//!
//! A user names a table by a local path or a URL. Unlike `deltalake::ensure_table_uri`, nothing
//! here creates a directory: a missing table is an error that names the location, never a
//! silently created empty directory.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use url::Url;

/// A Delta table's root and the storage options to reach it.
#[derive(Debug, Clone)]
pub struct TableLocation {
    /// What the user wrote, for error messages.
    pub given: String,
    pub url: Url,
    pub storage_options: HashMap<String, String>,
}

/// Which snapshot of a table a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeTravel {
    /// The newest committed version, looked up again for every query.
    Latest,
    /// A version number.
    Version(i64),
    /// The newest version committed at or before a time (commit file times, as delta-rs does).
    Timestamp(DateTime<Utc>),
}

impl TimeTravel {
    pub fn is_pinned(&self) -> bool {
        !matches!(self, TimeTravel::Latest)
    }

    /// A version or timestamp given as a table function argument: integers are versions, text
    /// and timestamps are points in time.
    pub fn from_scalar(function: &str, value: &ScalarValue) -> Result<Self> {
        let version = match value {
            ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int64(Some(v)) => Some(*v),
            ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt64(Some(v)) => Some(i64::try_from(*v).unwrap_or(i64::MAX)),
            _ => None,
        };
        if let Some(v) = version {
            return TimeTravel::version(v);
        }
        if let Some(text) = scalar_text(value) {
            return Ok(TimeTravel::Timestamp(parse_timestamp(&text)?));
        }
        match value.cast_to(&datafusion::arrow::datatypes::DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        )) {
            Ok(ScalarValue::TimestampMicrosecond(Some(us), _)) => {
                DateTime::from_timestamp_micros(us)
                    .map(TimeTravel::Timestamp)
                    .ok_or_else(|| plan(format!("{function}: timestamp {value} is out of range")))
            }
            _ => Err(plan(format!(
                "{function}: expected a version (integer) or a timestamp (text such as \
                 '2024-01-31T12:00:00Z'), got {value} of type {}",
                value.data_type()
            ))),
        }
    }

    pub fn version(v: i64) -> Result<Self> {
        if v < 0 {
            return Err(plan(format!("Delta table versions start at 0, got {v}")));
        }
        Ok(TimeTravel::Version(v))
    }
}

/// The text of a string scalar, if it is one and not NULL.
pub fn scalar_text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Parses RFC 3339 (`2024-01-31T12:00:00+01:00`), or a time without offset (UTC) as
/// `2024-01-31 12:00:00[.fff]` / `2024-01-31T12:00:00`, or a date (its midnight, UTC).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(plan(format!(
        "'{text}' is not a timestamp: use RFC 3339 ('2024-01-31T12:00:00Z'), \
         'YYYY-MM-DD HH:MM:SS' (UTC) or 'YYYY-MM-DD'"
    )))
}

impl TableLocation {
    /// Resolves a path or URL without creating anything. A local path must exist.
    pub fn parse(given: &str, storage_options: HashMap<String, String>) -> Result<Self> {
        let trimmed = given.trim();
        if trimmed.is_empty() {
            return Err(plan("a Delta table location is required, got ''"));
        }
        let url = match Url::parse(trimmed) {
            // `C:\x` parses as a URL with scheme `c`; a one-letter scheme is a drive letter.
            Ok(url) if url.scheme().len() > 1 => {
                if url.scheme() == "file" {
                    let path = url
                        .to_file_path()
                        .map_err(|()| plan(format!("'{trimmed}' is not a valid file:// URL")))?;
                    local_url(trimmed, &path)?
                } else {
                    url
                }
            }
            _ => local_url(trimmed, std::path::Path::new(trimmed))?,
        };
        Ok(Self {
            given: trimmed.to_string(),
            url,
            storage_options,
        })
    }

    /// Opens the table at the requested snapshot. A location without a Delta log is an error.
    pub async fn open(&self, travel: TimeTravel) -> Result<DeltaTable> {
        let mut builder = DeltaTableBuilder::from_url(self.url.clone())
            .map_err(|e| self.error(e))?
            .with_storage_options(self.storage_options.clone());
        builder = match travel {
            TimeTravel::Latest => builder,
            TimeTravel::Version(v) => builder.with_version(v as _),
            TimeTravel::Timestamp(t) => builder.with_timestamp(t),
        };
        match builder.load().await {
            Ok(table) => Ok(table),
            Err(e) => Err(self.open_error(e, travel).await),
        }
    }

    /// The newest version of the table, if it can be read.
    async fn latest_version(&self) -> Option<u64> {
        let builder = DeltaTableBuilder::from_url(self.url.clone())
            .ok()?
            .with_storage_options(self.storage_options.clone());
        builder.load().await.ok()?.version()
    }

    async fn open_error(&self, error: DeltaTableError, travel: TimeTravel) -> DataFusionError {
        if let TimeTravel::Version(v) = travel
            && !matches!(error, DeltaTableError::NotATable(_))
            && let Some(latest) = self.latest_version().await
            && v as u64 > latest
        {
            return plan(format!(
                "Delta table '{}' has no version {v}: its newest version is {latest}",
                self.given
            ));
        }
        match (&error, travel) {
            (DeltaTableError::NotATable(_), _) => plan(format!(
                "no Delta table at '{}': the location has no _delta_log directory with commits. \
                 Check the path, or create the table first",
                self.given
            )),
            (DeltaTableError::InvalidVersion(_), TimeTravel::Version(v)) => plan(format!(
                "Delta table '{}' has no version {v}: {error}",
                self.given
            )),
            _ => self.error(error),
        }
    }

    /// A deltalake error with the table it concerns.
    pub fn error(&self, error: DeltaTableError) -> DataFusionError {
        DataFusionError::External(Box::new(LocatedError {
            location: self.given.clone(),
            source: error,
        }))
    }
}

/// A deltalake error and the table it happened on.
#[derive(Debug)]
struct LocatedError {
    location: String,
    source: DeltaTableError,
}

impl std::fmt::Display for LocatedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Delta table '{}': {}", self.location, self.source)
    }
}

impl std::error::Error for LocatedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The `file://` URL of an existing local directory.
fn local_url(given: &str, path: &std::path::Path) -> Result<Url> {
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        plan(format!(
            "no Delta table at '{given}': {e}. The location must be an existing table directory \
             or a URL such as s3://bucket/path"
        ))
    })?;
    if !canonical.is_dir() {
        return Err(plan(format!(
            "no Delta table at '{given}': it is a file, not a table directory"
        )));
    }
    Url::from_directory_path(&canonical)
        .map_err(|()| plan(format!("cannot turn '{}' into a URL", canonical.display())))
}

pub fn plan(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_documented_form() {
        let expect = "2020-05-02T05:47:31Z".parse::<DateTime<Utc>>().unwrap();
        for text in [
            "2020-05-02T05:47:31Z",
            "2020-05-01T22:47:31-07:00",
            "2020-05-02 05:47:31",
            "2020-05-02T05:47:31.000",
        ] {
            assert_eq!(parse_timestamp(text).unwrap(), expect, "{text}");
        }
        assert!(parse_timestamp("2020-05-02").is_ok());
        let err = parse_timestamp("last tuesday").unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn versions_and_timestamps_from_arguments() {
        let v = TimeTravel::from_scalar("f", &ScalarValue::Int64(Some(3))).unwrap();
        assert_eq!(v, TimeTravel::Version(3));
        assert!(TimeTravel::from_scalar("f", &ScalarValue::Int64(Some(-1))).is_err());
        let t = TimeTravel::from_scalar("f", &ScalarValue::from("2020-05-02 05:47:31")).unwrap();
        assert!(matches!(t, TimeTravel::Timestamp(_)));
        let err = TimeTravel::from_scalar("f", &ScalarValue::Boolean(Some(true)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a version"), "{err}");
    }

    #[test]
    fn missing_local_tables_are_errors_and_nothing_is_created() {
        let dir = std::env::temp_dir().join("df-plugin-delta-no-such-table");
        let _ = std::fs::remove_dir_all(&dir);
        let err = TableLocation::parse(dir.to_str().unwrap(), HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Delta table"), "{err}");
        assert!(!dir.exists());
        let url = format!("file://{}", dir.display());
        assert!(TableLocation::parse(&url, HashMap::new()).is_err());
        assert!(!dir.exists());
    }
}
