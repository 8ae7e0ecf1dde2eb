//! Panic-containing wrappers, one module per kind of exported object.
//!
//! Each wrapper delegates every trait method datafusion-ffi forwards across the boundary and
//! runs it under [`super::panic::guard`]. Objects created by a wrapped object (accumulators,
//! evaluators, plans, streams, providers) are wrapped in turn.

pub mod aggregate;
pub mod scalar;
pub mod table;
pub mod window;

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udwf::FFI_WindowUDF;
use tokio::runtime::Handle;

use crate::ffi::planner::objects::PlanObjectExporter;
use crate::toolkit::panic::BundleTag;

/// Exports a bundle's functions and tables the one way: in their panic guards, tables on the
/// bundle's runtime with the host's codec. Used for the bundle's exports and for whatever its
/// planners' answers make.
pub(crate) struct GuardedExporter {
    pub(crate) bundle: BundleTag,
    pub(crate) runtime: Handle,
    pub(crate) codec: FFI_LogicalExtensionCodec,
}

impl GuardedExporter {
    /// `pushdown`: whether the host may offer the table filters (see [`PlanObjectExporter`]
    /// for why a planner's tables are not).
    pub(crate) fn table(
        &self,
        name: &str,
        provider: Arc<dyn TableProvider>,
        pushdown: bool,
    ) -> FFI_TableProvider {
        let provider = table::GuardedTableProvider::wrap(provider, &self.bundle, name, pushdown);
        FFI_TableProvider::new_with_ffi_codec(
            provider,
            pushdown,
            Some(self.runtime.clone()),
            self.codec.clone(),
        )
    }
}

impl PlanObjectExporter for GuardedExporter {
    fn table_provider(
        &self,
        name: &TableReference,
        provider: Arc<dyn TableProvider>,
        _host: &FFI_TaskContextProvider,
    ) -> FFI_TableProvider {
        self.table(&name.to_string(), provider, false)
    }

    fn scalar_udf(&self, udf: ScalarUDF) -> FFI_ScalarUDF {
        FFI_ScalarUDF::from(Arc::new(scalar::GuardedScalarUDF::wrap(udf, &self.bundle)))
    }

    fn aggregate_udf(&self, udaf: AggregateUDF) -> FFI_AggregateUDF {
        FFI_AggregateUDF::from(Arc::new(aggregate::GuardedAggregateUDF::wrap(
            udaf,
            &self.bundle,
        )))
    }

    fn window_udf(&self, udwf: WindowUDF) -> FFI_WindowUDF {
        FFI_WindowUDF::from(Arc::new(window::GuardedWindowUDF::wrap(udwf, &self.bundle)))
    }
}
