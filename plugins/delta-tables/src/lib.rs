//! Delta Lake tables for DataFusion: the code the delta bundle exports ([`exports`]).
//!
//! - `CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '...'` ([`factory`]), reading the
//!   newest commit on every query unless `OPTIONS` pin a version or timestamp, and writable
//!   with `INSERT INTO` / `INSERT OVERWRITE` ([`provider`]);
//! - `delta_scan`, `delta_history` and `delta_changes` ([`functions`]);
//! - S3, GCS and Azure tables from storage options ([`storage`]).
//!
//! [`register_natively`] registers the same objects without the ABI, the baseline that tests
//! and benchmarks compare the loaded bundle with.

pub mod factory;
pub mod functions;
pub mod location;
pub mod provider;
pub mod storage;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::{TableFunctionImpl, TableProviderFactory};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use df_plugin_api::toolkit::Bundle;

use factory::DeltaTableFactory;
use functions::changes::DeltaChangesFunction;
use functions::history::DeltaHistoryFunction;
use functions::scan::DeltaScanFunction;

/// The names `STORED AS` accepts: ours and the one delta-rs documents.
pub const FACTORY_NAMES: [&str; 2] = ["DELTA", "DELTATABLE"];

/// The table functions, by name, with `defaults` as storage options for every table.
pub fn table_functions(
    defaults: &BTreeMap<String, String>,
) -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        (
            "delta_scan",
            Arc::new(DeltaScanFunction::new(defaults.clone())),
        ),
        (
            "delta_history",
            Arc::new(DeltaHistoryFunction::new(defaults.clone())),
        ),
        (
            "delta_changes",
            Arc::new(DeltaChangesFunction::new(defaults.clone())),
        ),
    ]
}

/// What the delta bundle exports, with the bundle's options as storage options for every table.
pub fn exports(bundle: &mut Bundle) -> Result<()> {
    storage::register_cloud_stores();
    let defaults = bundle.options().clone();
    let factory: Arc<dyn TableProviderFactory> = Arc::new(DeltaTableFactory::new(defaults.clone()));
    for name in FACTORY_NAMES {
        bundle.table_provider_factory(name, Arc::clone(&factory));
    }
    for (name, function) in table_functions(&defaults) {
        bundle.table_function(name, function);
    }
    Ok(())
}

/// Registers the bundle's objects directly (linked in, no ABI): the native baseline.
pub fn register_natively(ctx: &SessionContext) {
    storage::register_cloud_stores();
    let defaults = BTreeMap::new();
    let factory: Arc<dyn TableProviderFactory> = Arc::new(DeltaTableFactory::new(defaults.clone()));
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        for name in FACTORY_NAMES {
            state
                .table_factories_mut()
                .insert(name.to_string(), Arc::clone(&factory));
        }
    }
    for (name, function) in table_functions(&defaults) {
        ctx.register_udtf(name, function);
    }
}
