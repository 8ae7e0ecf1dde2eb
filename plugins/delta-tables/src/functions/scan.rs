//! `delta_scan(location [, version | timestamp])`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use df_plugin_api::toolkit::runtime;

use super::{argument, at_most, location_argument};
use crate::location::TimeTravel;
use crate::provider::DeltaTableProvider;

const USAGE: &str =
    "delta_scan('<path or URL>' [, <version, e.g. 3> | <timestamp, e.g. '2024-01-31T12:00:00Z'>])";

/// Reads a table without registering it first.
#[derive(Debug, Default)]
pub struct DeltaScanFunction {
    defaults: BTreeMap<String, String>,
}

impl DeltaScanFunction {
    pub fn new(defaults: BTreeMap<String, String>) -> Self {
        Self { defaults }
    }
}

impl TableFunctionImpl for DeltaScanFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        at_most("delta_scan", exprs, 2, USAGE)?;
        let location = location_argument("delta_scan", exprs, USAGE, &self.defaults)?;
        let travel = match argument("delta_scan", exprs, 1, "version_or_timestamp")? {
            Some(value) => TimeTravel::from_scalar("delta_scan", &value)?,
            None => TimeTravel::Latest,
        };
        let provider = runtime::block_on(DeltaTableProvider::open(location, travel))?;
        Ok(Arc::new(provider))
    }
}
