//! Step 8: truthfulness. The objects a bundle's `init` returned must be exactly the objects its
//! manifest (and so its ABI record) declares: every capability bit has at least one object of
//! that kind, every object has its bit, and the names match one for one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::catalog::{TableFunctionImpl, TableProviderFactory};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::TypeSignature;
use datafusion::logical_expr::{
    AggregateUDF, AggregateUDFImpl, ScalarUDF, ScalarUDFImpl, WindowUDF, WindowUDFImpl,
};
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_ffi::util::FFI_Option;
use df_plugin_api::ffi::FFI_BundleExports;
use df_plugin_api::ffi::groups_accumulator::GroupsAccumulatorFn;
use df_plugin_api::ffi::plan_runner::{ForeignPlanRunner, RunnerTableFunction};
use df_plugin_api::ffi::planner::expr::hooks;
use df_plugin_api::ffi::planner::lean::LEAN_PLANNERS_MINOR;
use df_plugin_api::ffi::planner::{FFI_ExprPlanner, FFI_RelationPlanner, FFI_TypePlanner};
use df_plugin_api::ffi::scalar_kernel::{ForeignScalarKernel, KernelValue, ScalarKernelFn};
use df_plugin_api::ffi::signature::FunctionSignature;
use df_plugin_api::ffi::table_source::ForeignTableSource;
use df_plugin_api::record::{Capabilities, Capability};
use df_plugin_api::toolkit::source::SourceTableFunction;

use crate::error::{Mismatch, Refusal, Step};
use crate::metadata::BundleMetadata;
use crate::root_module::{Initialized, LeanPaths};

/// The real signatures a bundle sent for its functions, by kind and name.
pub type Signatures = HashMap<(Capability, String), (FunctionSignature, TypeSignature)>;

/// A bundle's objects as host-side DataFusion objects (datafusion-ffi's `Foreign*` wrappers).
#[derive(Clone, Default)]
pub struct BundleObjects {
    pub scalar_udfs: Vec<ScalarUDF>,
    pub aggregate_udfs: Vec<AggregateUDF>,
    pub window_udfs: Vec<WindowUDF>,
    pub table_functions: Vec<(String, Arc<dyn TableFunctionImpl>)>,
    pub table_providers: Vec<(String, Arc<dyn TableProvider>)>,
    pub table_provider_factories: Vec<(String, Arc<dyn TableProviderFactory>)>,
    /// The real signatures the bundle sent for its functions, by kind and name.
    pub signatures: Signatures,
    /// SQL planners, still as FFI structs: the host wraps them for the session they are
    /// registered in (see [`crate::planners`]).
    pub expr_planners: Vec<FFI_ExprPlanner>,
    pub relation_planners: Vec<FFI_RelationPlanner>,
    pub type_planners: Vec<FFI_TypePlanner>,
    /// The lean per-batch path of each scalar function, by name (ABI 1.2 bundles; 1.6 with
    /// fixed-width arrays crossing as their buffers).
    pub scalar_kernels: HashMap<String, Arc<ForeignScalarKernel>>,
    /// Executes the bundle's scans with a bound configuration and lean streams (ABI 1.3).
    pub plan_runner: Option<Arc<ForeignPlanRunner>>,
    /// Gives the groups accumulators of the bundle's aggregate functions their lean per-batch
    /// path (ABI 1.5).
    pub groups_accumulator: Option<GroupsAccumulatorFn>,
}

impl BundleObjects {
    /// Converts the FFI structs into host objects. No call crosses the boundary except the
    /// name and signature queries datafusion-ffi makes while wrapping.
    /// `lean` are the bundle's ABI 1.2+ entry points; the scalar kernel one is asked for
    /// the kernel of each scalar function. Table sources (ABI 1.15) are table functions to
    /// everything after this.
    pub fn from_ffi(init: &Initialized, lean: LeanPaths) -> Self {
        let exports = &init.exports;
        let planners = init.planners.as_ref();
        let scalar_kernels = match (lean.scalar_kernel_buffers, lean.scalar_kernel) {
            (Some(kernel_of), _) => scalar_kernels(exports, kernel_of, lean.abi_minor),
            (None, Some(kernel_of)) => scalar_kernels(exports, kernel_of, lean.abi_minor),
            (None, None) => HashMap::new(),
        };
        let plan_runner = lean
            .plan_runner
            .map(|bind| Arc::new(ForeignPlanRunner::new(bind, lean.abi_minor)));
        // The runner calls the table functions when it can (ABI 1.7 and later).
        let table_function = |f: &FFI_TableFunction| -> Arc<dyn TableFunctionImpl> {
            match &plan_runner {
                Some(runner) => Arc::new(RunnerTableFunction::new(f.clone(), Arc::clone(runner))),
                None => <Arc<dyn TableFunctionImpl>>::from(f.clone()),
            }
        };
        Self {
            scalar_kernels,
            plan_runner: plan_runner.clone(),
            groups_accumulator: lean.groups_accumulator,
            // A lean expression planner (ABI 1.16) of a bundle stamped older is not taken: a
            // host of that minor would send it operands it cannot read. Truthfulness then
            // refuses the bundle by the planner's name.
            expr_planners: planners
                .map(|p| {
                    p.expr_planners
                        .iter()
                        .filter(|e| {
                            e.hooks & hooks::LEAN == 0 || lean.abi_minor >= LEAN_PLANNERS_MINOR
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            relation_planners: planners
                .map(|p| p.relation_planners.iter().cloned().collect())
                .unwrap_or_default(),
            type_planners: planners
                .map(|p| p.type_planners.iter().cloned().collect())
                .unwrap_or_default(),
            scalar_udfs: exports
                .scalar_udfs
                .iter()
                .map(|f| ScalarUDF::new_from_shared_impl(<Arc<dyn ScalarUDFImpl>>::from(f)))
                .collect(),
            aggregate_udfs: exports
                .aggregate_udfs
                .iter()
                .map(|f| AggregateUDF::new_from_shared_impl(<Arc<dyn AggregateUDFImpl>>::from(f)))
                .collect(),
            window_udfs: exports
                .window_udfs
                .iter()
                .map(|f| WindowUDF::new_from_shared_impl(<Arc<dyn WindowUDFImpl>>::from(f)))
                .collect(),
            table_functions: exports
                .table_functions
                .iter()
                .map(|n| (n.name.to_string(), table_function(&n.value)))
                .chain(init.table_sources.iter().map(|n| {
                    let source = Arc::new(ForeignTableSource(n.value.clone()));
                    let f = SourceTableFunction::new(n.name.as_str(), source);
                    (
                        n.name.to_string(),
                        Arc::new(f) as Arc<dyn TableFunctionImpl>,
                    )
                }))
                .collect(),
            table_providers: exports
                .table_providers
                .iter()
                .map(|n| (n.name.to_string(), <Arc<dyn TableProvider>>::from(&n.value)))
                .collect(),
            table_provider_factories: exports
                .table_provider_factories
                .iter()
                .map(|n| {
                    (
                        n.name.to_string(),
                        <Arc<dyn TableProviderFactory>>::from(&n.value),
                    )
                })
                .collect(),
            signatures: exports
                .function_signatures
                .iter()
                .filter_map(|s| {
                    let kind = Capability::ALL.into_iter().find(|c| c.bit() == s.kind)?;
                    Some(((kind, s.name.to_string()), s.decode()?))
                })
                .collect(),
        }
    }

    /// Every exported object as (kind, name), in export order.
    pub fn names(&self) -> Vec<(Capability, String)> {
        let mut out = Vec::new();
        out.extend(
            self.scalar_udfs
                .iter()
                .map(|u| (Capability::ScalarUdf, u.name().to_owned())),
        );
        out.extend(
            self.aggregate_udfs
                .iter()
                .map(|u| (Capability::AggregateUdf, u.name().to_owned())),
        );
        out.extend(
            self.window_udfs
                .iter()
                .map(|u| (Capability::WindowUdf, u.name().to_owned())),
        );
        out.extend(
            self.table_functions
                .iter()
                .map(|(n, _)| (Capability::TableFunction, n.clone())),
        );
        out.extend(
            self.table_providers
                .iter()
                .map(|(n, _)| (Capability::TableProvider, n.clone())),
        );
        out.extend(
            self.table_provider_factories
                .iter()
                .map(|(n, _)| (Capability::TableProviderFactory, n.clone())),
        );
        out.extend(
            self.expr_planners
                .iter()
                .map(|p| (Capability::ExprPlanner, p.name.to_string())),
        );
        out.extend(
            self.relation_planners
                .iter()
                .map(|p| (Capability::RelationPlanner, p.name.to_string())),
        );
        out.extend(
            self.type_planners
                .iter()
                .map(|p| (Capability::TypePlanner, p.name.to_string())),
        );
        out
    }
}

/// The kernel of each scalar function the bundle (of plugin ABI 1.`abi_minor`) exported, by
/// name (`kernel_of` answers `None` for a function it has no kernel for).
fn scalar_kernels<V: KernelValue>(
    exports: &FFI_BundleExports,
    kernel_of: ScalarKernelFn<V>,
    abi_minor: u16,
) -> HashMap<String, Arc<ForeignScalarKernel>> {
    exports
        .scalar_udfs
        .iter()
        .filter_map(|f| match kernel_of(f) {
            FFI_Option::Some(k) => {
                let kernel = ForeignScalarKernel::new(k, abi_minor);
                Some((f.name.to_string(), Arc::new(kernel)))
            }
            FFI_Option::None => None,
        })
        .collect()
}

/// Compares the objects with the manifest and the record's capability bits.
pub fn check(meta: &BundleMetadata, objects: &BundleObjects) -> Result<(), Refusal> {
    let exported = objects.names();
    let mut mismatches = Vec::new();

    let mut seen = BTreeSet::new();
    for (kind, name) in &exported {
        if !seen.insert((*kind, name.as_str())) {
            mismatches.push(Mismatch::new(
                format!("{kind} '{name}'"),
                "exported once",
                "exported twice",
            ));
        }
    }

    let exported_kinds: Capabilities = exported.iter().map(|(k, _)| *k).collect();
    let bits = meta.info.capabilities;
    for kind in Capability::ALL {
        match (bits.contains(kind), exported_kinds.contains(kind)) {
            (true, false) => mismatches.push(Mismatch::new(
                format!("capability {kind}"),
                "at least one object of this kind (the bit is set)",
                "no such object",
            )),
            (false, true) => mismatches.push(Mismatch::new(
                format!("capability {kind}"),
                "the bit set (objects of this kind are exported)",
                "bit not set",
            )),
            _ => {}
        }
    }

    let declared: BTreeSet<(Capability, &str)> = meta
        .manifest
        .objects
        .iter()
        .map(|o| (o.kind, o.name.as_str()))
        .collect();
    for (kind, name) in &declared {
        if !seen.contains(&(*kind, *name)) {
            mismatches.push(Mismatch::new(
                format!("{kind} '{name}'"),
                "exported (declared in the manifest)",
                "not exported",
            ));
        }
    }
    for (kind, name) in &seen {
        if !declared.contains(&(*kind, *name)) {
            mismatches.push(Mismatch::new(
                format!("{kind} '{name}'"),
                "declared in the manifest",
                "exported but undeclared",
            ));
        }
    }

    if mismatches.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        meta.info.bundle_name.clone(),
        &meta.path,
        Step::Truthfulness,
        "the bundle's exports do not match its manifest",
        "make manifests/<bundle>.toml list exactly the objects the bundle exports, and rebuild",
    )
    .with_mismatches(mismatches))
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::ScalarUDF;
    use df_plugin_api::record::RecordOverrides;

    use super::{BundleObjects, check};
    use crate::metadata::fixture;

    const ONE_FUNCTION: &str = "[bundle]\nname = \"fx\"\nversion = \"1.0.0\"\n\n[[object]]\nkind = \"scalar_udf\"\nname = \"upper\"\n";
    const NOTHING: &str = "[bundle]\nname = \"fx\"\nversion = \"1.0.0\"\n";

    fn upper() -> ScalarUDF {
        (*datafusion::functions::string::upper()).clone()
    }

    fn fields(manifest: &str, objects: &BundleObjects) -> Vec<String> {
        match check(&fixture(manifest, RecordOverrides::default()), objects) {
            Ok(()) => vec![],
            Err(r) => r.mismatches.into_iter().map(|m| m.field).collect(),
        }
    }

    #[test]
    fn exports_equal_to_the_manifest_pass() {
        let objects = BundleObjects {
            scalar_udfs: vec![upper()],
            ..Default::default()
        };
        assert!(fields(ONE_FUNCTION, &objects).is_empty());
    }

    #[test]
    fn a_capability_bit_without_objects_is_refused() {
        let fields = fields(ONE_FUNCTION, &BundleObjects::default());
        assert_eq!(fields, ["capability scalar_udf", "scalar_udf 'upper'"]);
    }

    #[test]
    fn objects_without_their_bit_are_refused() {
        let objects = BundleObjects {
            scalar_udfs: vec![upper()],
            ..Default::default()
        };
        assert_eq!(
            fields(NOTHING, &objects),
            ["capability scalar_udf", "scalar_udf 'upper'"]
        );
    }

    #[test]
    fn an_object_exported_twice_is_refused() {
        let objects = BundleObjects {
            scalar_udfs: vec![upper(), upper()],
            ..Default::default()
        };
        assert_eq!(fields(ONE_FUNCTION, &objects), ["scalar_udf 'upper'"]);
    }
}
