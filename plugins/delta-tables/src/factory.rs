//! `CREATE EXTERNAL TABLE ... STORED AS DELTA`.
//!
//! Compared with deltalake's `DeltaTableFactory`: the location must already hold a table (no
//! directory is created), `OPTIONS` may pin a `version` or `timestamp`, a declared column list
//! is checked against the table instead of being ignored, and the provider follows new commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{Session, TableProviderFactory};
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use datafusion::logical_expr::CreateExternalTable;

use crate::location::{TableLocation, TimeTravel, parse_timestamp, plan};
use crate::provider::DeltaTableProvider;

/// The factory for `STORED AS DELTA` (and `DELTATABLE`).
#[derive(Debug, Default)]
pub struct DeltaTableFactory {
    /// Storage options for every table (the bundle's options from the host); a table's own
    /// `OPTIONS` win.
    defaults: BTreeMap<String, String>,
}

impl DeltaTableFactory {
    pub fn new(defaults: BTreeMap<String, String>) -> Self {
        Self { defaults }
    }
}

#[async_trait]
impl TableProviderFactory for DeltaTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let (travel, storage) = split_options(&cmd.options)?;
        let mut options: HashMap<String, String> = self.defaults.clone().into_iter().collect();
        options.extend(storage);
        let [given] = cmd.locations.as_slice() else {
            return Err(plan(format!(
                "a Delta table has one location, got {}: {}",
                cmd.locations.len(),
                cmd.locations.join(", ")
            )));
        };
        let location = TableLocation::parse(given, options)?;
        let provider = DeltaTableProvider::open(location, travel).await?;
        check_declared_columns(cmd, &provider)?;
        Ok(Arc::new(provider))
    }
}

/// Separates time travel (`version`, `timestamp`) from storage options. DataFusion prefixes
/// keys without a dot with `format.`; the prefix is dropped.
fn split_options(
    options: &HashMap<String, String>,
) -> Result<(TimeTravel, HashMap<String, String>)> {
    let mut travel = TimeTravel::Latest;
    let mut storage = HashMap::new();
    for (key, value) in options {
        let key = key.strip_prefix("format.").unwrap_or(key);
        let pinned = match key {
            "version" => {
                let v: i64 = value.trim().parse().map_err(|_| {
                    plan(format!(
                        "OPTIONS 'version' must be a table version (an integer), got '{value}'"
                    ))
                })?;
                TimeTravel::version(v)?
            }
            "timestamp" => TimeTravel::Timestamp(parse_timestamp(value)?),
            _ => {
                storage.insert(key.to_string(), value.clone());
                continue;
            }
        };
        if travel.is_pinned() {
            return Err(plan(
                "OPTIONS may pin a 'version' or a 'timestamp', not both",
            ));
        }
        travel = pinned;
    }
    Ok((travel, storage))
}

/// A declared column list must name the table's columns, in order, with matching types
/// (string and dictionary encodings of the same values count as the same type).
fn check_declared_columns(cmd: &CreateExternalTable, provider: &DeltaTableProvider) -> Result<()> {
    let declared = cmd.schema.fields();
    let actual = provider.schema();
    let describe = || {
        actual
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !declared.is_empty() {
        let fits = declared.len() == actual.fields().len()
            && declared
                .iter()
                .zip(actual.fields())
                .all(|(d, a)| d.name() == a.name() && same_values(d.data_type(), a.data_type()));
        if !fits {
            return Err(plan(format!(
                "the columns declared for '{}' do not match the Delta table at '{}', which has \
                 ({}). Leave the column list out to take the table's schema",
                cmd.name,
                cmd.locations.join(", "),
                describe()
            )));
        }
    }
    if !cmd.table_partition_cols.is_empty() {
        let partitions = provider.partition_columns();
        if cmd.table_partition_cols != partitions {
            return Err(plan(format!(
                "PARTITIONED BY ({}) does not match the Delta table at '{}', which is \
                 partitioned by ({}). Leave PARTITIONED BY out: a Delta table knows its partitions",
                cmd.table_partition_cols.join(", "),
                cmd.locations.join(", "),
                partitions.join(", ")
            )));
        }
    }
    Ok(())
}

/// Whether two types hold the same values, ignoring dictionary and view encodings.
fn same_values(a: &DataType, b: &DataType) -> bool {
    fn plain(t: &DataType) -> &DataType {
        match t {
            DataType::Dictionary(_, v) => plain(v),
            DataType::Utf8View | DataType::LargeUtf8 => &DataType::Utf8,
            DataType::BinaryView | DataType::LargeBinary => &DataType::Binary,
            other => other,
        }
    }
    plain(a) == plain(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_time_travel_and_storage() {
        let options = HashMap::from([
            ("format.version".to_string(), "3".to_string()),
            ("format.aws_region".to_string(), "eu-west-1".to_string()),
        ]);
        let (travel, storage) = split_options(&options).unwrap();
        assert_eq!(travel, TimeTravel::Version(3));
        assert_eq!(storage["aws_region"], "eu-west-1");

        let both = HashMap::from([
            ("format.version".to_string(), "3".to_string()),
            ("format.timestamp".to_string(), "2020-01-01".to_string()),
        ]);
        assert!(split_options(&both).is_err());
        let bad = HashMap::from([("format.version".to_string(), "three".to_string())]);
        let err = split_options(&bad).unwrap_err().to_string();
        assert!(err.contains("integer"), "{err}");
    }

    #[test]
    fn encodings_of_the_same_values_match() {
        let dict = DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        assert!(same_values(&DataType::Utf8, &dict));
        assert!(same_values(&DataType::Utf8, &DataType::Utf8View));
        assert!(!same_values(&DataType::Utf8, &DataType::Int32));
    }
}
