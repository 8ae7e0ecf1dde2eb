//! `delta_changes(location, start [, end])`: the change data feed between two versions or
//! timestamps (inclusive), through deltalake's `DeltaCdfTableProvider`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use deltalake::delta_datafusion::DeltaCdfTableProvider;
use df_plugin_api::toolkit::runtime;

use super::{argument, at_most, location_argument};
use crate::location::{TableLocation, TimeTravel, plan};

const USAGE: &str =
    "delta_changes('<path or URL>', <start version or timestamp> [, <end version or timestamp>])";

#[derive(Debug, Default)]
pub struct DeltaChangesFunction {
    defaults: BTreeMap<String, String>,
}

impl DeltaChangesFunction {
    pub fn new(defaults: BTreeMap<String, String>) -> Self {
        Self { defaults }
    }
}

impl TableFunctionImpl for DeltaChangesFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        at_most("delta_changes", exprs, 3, USAGE)?;
        let location = location_argument("delta_changes", exprs, USAGE, &self.defaults)?;
        let start = match argument("delta_changes", exprs, 1, "start")? {
            Some(value) => TimeTravel::from_scalar("delta_changes", &value)?,
            None => {
                return Err(plan(format!(
                    "delta_changes needs a start version or timestamp. Usage: {USAGE}"
                )));
            }
        };
        let end = argument("delta_changes", exprs, 2, "end")?
            .map(|value| TimeTravel::from_scalar("delta_changes", &value))
            .transpose()?;
        let provider = runtime::block_on(changes(location, start, end))?;
        Ok(Arc::new(provider))
    }
}

async fn changes(
    location: TableLocation,
    start: TimeTravel,
    end: Option<TimeTravel>,
) -> Result<DeltaCdfTableProvider> {
    let table = location.open(TimeTravel::Latest).await?;
    let mut builder = table.scan_cdf();
    builder = match start {
        TimeTravel::Version(v) => builder.with_starting_version(v as _),
        TimeTravel::Timestamp(t) => builder.with_starting_timestamp(t),
        TimeTravel::Latest => builder,
    };
    builder = match end {
        Some(TimeTravel::Version(v)) => builder.with_ending_version(v as _),
        Some(TimeTravel::Timestamp(t)) => builder.with_ending_timestamp(t),
        Some(TimeTravel::Latest) | None => builder,
    };
    DeltaCdfTableProvider::try_new(builder).map_err(|e| location.error(e))
}
