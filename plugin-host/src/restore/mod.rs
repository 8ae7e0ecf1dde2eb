//! Restoring, from the manifest, what datafusion-ffi drops on the way across the boundary.
//!
//! A `ForeignScalarUDF` (likewise aggregate and window) has no documentation and a
//! `Signature::user_defined` without parameter names, so a plugin function is invisible in
//! `information_schema.routines` descriptions and cannot be called with named arguments
//! (`f(a => 1)`). The host wraps each foreign function once, at load time, with:
//!
//! - `documentation()` built from the manifest's `doc`, `signature`/`parameters` and `example`;
//! - the function's real signature, which the bundle sends alongside
//!   (`df_plugin_api::ffi::signature`), so the host coerces arguments and words planning errors
//!   exactly as for a built-in, and `information_schema` / `SHOW FUNCTIONS` list its types;
//! - the manifest's `parameters` as parameter names, so named arguments resolve;
//! - for aggregates, a `return_type` computed through `return_field` (datafusion-ffi's is
//!   `unimplemented!()` and would panic in the host);
//! - errors worded as DataFusion words them, instead of prefixed by `FFI error:` ([`errors`]).
//!
//! Everything else is delegated unchanged.

use std::sync::Arc;

mod errors;
mod memo;
pub mod optimize;
pub mod plans;
mod scan_session;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::TypeSignature;
use datafusion::logical_expr::function::{
    AccumulatorArgs, PartitionEvaluatorArgs, StateFieldsArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, DocSection, Documentation,
    ExpressionPlacement, GroupsAccumulator, PartitionEvaluator, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, WindowUDF, WindowUDFImpl,
};
use df_plugin_api::ffi::groups_accumulator::{ForeignLeanGroupsAccumulator, GroupsAccumulatorFn};
use df_plugin_api::ffi::scalar_kernel::ForeignScalarKernel;
use df_plugin_api::ffi::signature::FunctionSignature;
use df_plugin_api::manifest::ObjectDecl;
use df_plugin_api::record::Capability;

use crate::distributed::origin::{BundleRef, Origin, Source};
use crate::error::{Mismatch, Refusal, Step};
use crate::metadata::BundleMetadata;
use crate::truth::{BundleObjects, Signatures};
use errors::{
    NativeAccumulator, NativeEvaluator, NativeGroupsAccumulator, NativeTableFunction, natively,
};

const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Plugin functions",
    description: Some("Functions loaded from df-plugin bundles"),
};

/// What the manifest and the bundle's real signature add to one function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Restored {
    signature: Signature,
    documentation: Documentation,
}

impl Restored {
    /// `real` is the signature the bundle sent, when it could be sent; otherwise the function
    /// keeps datafusion-ffi's user-defined one. Parameter names come from the manifest and
    /// must agree with the real signature's own names and arity.
    fn new(
        kind: Capability,
        decl: &ObjectDecl,
        foreign: &Signature,
        real: Option<&(FunctionSignature, TypeSignature)>,
    ) -> Result<Self, Mismatch> {
        let field = || format!("{kind} '{}' parameters", decl.name);
        let base = match real {
            Some((_, ts)) => Signature::new(ts.clone(), foreign.volatility),
            None => foreign.clone(),
        };
        let real_names = real.and_then(|(s, _)| s.parameter_names.clone());
        if let Some(real_names) = &real_names
            && !decl.parameters.is_empty()
            && real_names != &decl.parameters
        {
            return Err(Mismatch::new(
                field(),
                format!("the function's own names {real_names:?}"),
                format!("{:?} in the manifest", decl.parameters),
            ));
        }
        let names = (!decl.parameters.is_empty())
            .then(|| decl.parameters.clone())
            .or(real_names);
        let signature = match names {
            Some(names) => base.with_parameter_names(names).map_err(|e| {
                Mismatch::new(field(), "names that fit the function's signature", e)
            })?,
            None => base,
        };
        let syntax = decl
            .signature
            .clone()
            .unwrap_or_else(|| format!("{}({})", decl.name, decl.parameters.join(", ")));
        let arguments = (!decl.parameters.is_empty()).then(|| {
            decl.parameters
                .iter()
                .map(|p| (p.clone(), String::new()))
                .collect()
        });
        Ok(Self {
            signature,
            documentation: Documentation {
                doc_section: DOC_SECTION,
                // Verbatim: a plugin function should read like a built-in one. Which bundle
                // it came from is the catalogue's business.
                description: decl.doc.clone(),
                syntax_example: syntax,
                sql_example: decl.example.clone(),
                arguments,
                alternative_syntax: None,
                related_udfs: None,
            },
        })
    }
}

/// Wraps every function of `objects` with what the manifest declares about it and the real
/// signature the bundle sent; a manifest whose parameters do not fit is a truthfulness refusal.
pub fn apply(meta: &BundleMetadata, objects: BundleObjects) -> Result<BundleObjects, Refusal> {
    // Wraps each function that has a declaration; a declaration that does not fit is recorded.
    fn restore_all<U: Clone>(
        functions: &[U],
        kind: Capability,
        meta: &BundleMetadata,
        signatures: &Signatures,
        mismatches: &mut Vec<Mismatch>,
        parts: impl Fn(&U) -> (&str, &Signature),
        wrap: impl Fn(U, Restored) -> U,
    ) -> Vec<U> {
        functions
            .iter()
            .map(|f| {
                let (name, foreign) = parts(f);
                let Some(decl) = meta.manifest.object(kind, name) else {
                    return f.clone();
                };
                let real = signatures.get(&(kind, name.to_owned()));
                match Restored::new(kind, decl, foreign, real) {
                    Ok(restored) => wrap(f.clone(), restored),
                    Err(m) => {
                        mismatches.push(m);
                        f.clone()
                    }
                }
            })
            .collect()
    }
    let mut mismatches = Vec::new();
    let sigs = &objects.signatures;
    let scalar_udfs = restore_all(
        &objects.scalar_udfs,
        Capability::ScalarUdf,
        meta,
        sigs,
        &mut mismatches,
        |u| (u.name(), u.signature()),
        |inner, restored| {
            let kernel = Kernel(objects.scalar_kernels.get(inner.name()).cloned());
            ScalarUDF::new_from_impl(RestoredScalarUDF {
                inner,
                restored,
                kernel,
                answers: memo::Answers::default(),
            })
        },
    );
    let aggregate_udfs = restore_all(
        &objects.aggregate_udfs,
        Capability::AggregateUdf,
        meta,
        sigs,
        &mut mismatches,
        |u| (u.name(), u.signature()),
        |inner, restored| {
            AggregateUDF::new_from_impl(RestoredAggregateUDF {
                inner,
                restored,
                lean: LeanGroups {
                    lean_of: objects.groups_accumulator,
                    abi_minor: meta.info.abi_minor,
                },
            })
        },
    );
    let window_udfs = restore_all(
        &objects.window_udfs,
        Capability::WindowUdf,
        meta,
        sigs,
        &mut mismatches,
        |u| (u.name(), u.signature()),
        |inner, restored| WindowUDF::new_from_impl(RestoredWindowUDF { inner, restored }),
    );
    if !mismatches.is_empty() {
        return Err(Refusal::new(
            meta.info.bundle_name.clone(),
            &meta.path,
            Step::Truthfulness,
            "the manifest's parameter names do not fit the functions' signatures",
            "list each function's parameters in the manifest exactly as its signature takes them",
        )
        .with_mismatches(mismatches));
    }
    let bundle = BundleRef {
        name: meta.info.bundle_name.clone(),
        version: meta.info.bundle_version.clone(),
    };
    let table_functions = objects
        .table_functions
        .iter()
        .map(|(name, f)| {
            let f: Arc<dyn datafusion::catalog::TableFunctionImpl> =
                Arc::new(NativeTableFunction {
                    inner: Arc::clone(f),
                    bundle: bundle.clone(),
                    name: name.clone(),
                    runner: objects.plan_runner.clone(),
                });
            (name.clone(), f)
        })
        .collect();
    let table_providers = objects
        .table_providers
        .iter()
        .map(|(name, p)| {
            let origin = Origin {
                bundle: bundle.clone(),
                source: Source::Table { name: name.clone() },
            };
            (
                name.clone(),
                plans::HostTableProvider::wrap(Arc::clone(p), origin, objects.plan_runner.clone()),
            )
        })
        .collect();
    let table_provider_factories = objects
        .table_provider_factories
        .iter()
        .map(|(name, f)| {
            let f: Arc<dyn datafusion::catalog::TableProviderFactory> =
                Arc::new(plans::HostTableProviderFactory {
                    inner: Arc::clone(f),
                    bundle: bundle.clone(),
                    name: name.clone(),
                    runner: objects.plan_runner.clone(),
                });
            (name.clone(), f)
        })
        .collect();
    Ok(BundleObjects {
        scalar_udfs,
        aggregate_udfs,
        window_udfs,
        table_functions,
        table_providers,
        table_provider_factories,
        ..objects
    })
}

/// A foreign scalar UDF with its documentation and parameter names restored, invoked through
/// its bundle's kernel when it has one (ABI 1.2, [`ForeignScalarKernel`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct RestoredScalarUDF {
    inner: ScalarUDF,
    restored: Restored,
    kernel: Kernel,
    /// What the function answered at planning ([`memo`]).
    answers: memo::Answers,
}

/// The kernel of a function, part of the function's identity only in that two functions with
/// different kernels are different.
#[derive(Debug, Clone)]
struct Kernel(Option<Arc<ForeignScalarKernel>>);

impl Kernel {
    /// Its identity: kernels are compared and hashed by address, as datafusion-ffi's
    /// foreign functions are.
    fn id(&self) -> Option<*const ForeignScalarKernel> {
        self.0.as_ref().map(Arc::as_ptr)
    }
}

impl PartialEq for Kernel {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Kernel {}

impl std::hash::Hash for Kernel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl ScalarUDFImpl for RestoredScalarUDF {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.restored.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.answers.return_field(args, |args| {
            natively(self.inner.inner().return_field_from_args(args))
        })
    }
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Self {
            inner: updated,
            restored: self.restored.clone(),
            // The bundle made a new function for this configuration; the kernel belongs to
            // the old one, so the new one takes datafusion-ffi's path.
            kernel: Kernel(None),
            answers: memo::Answers::default(),
        }))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        // Named lazily: the check runs per batch, the message only on a broken contract.
        let who = PluginFunction(self.inner.name());
        let check = |value: &ColumnarValue, expected: &DataType| {
            df_plugin_api::ffi::contract::check_scalar_result(&who, rows, expected, value)
        };
        match &self.kernel.0 {
            // The kernel borrows the arguments: their return field is still there to check.
            Some(kernel) => {
                let value = natively(kernel.invoke(&args))?;
                check(&value, args.return_field.data_type())?;
                Ok(value)
            }
            None => {
                let expected = args.return_field.data_type().clone();
                let value = natively(self.inner.inner().invoke_with_args(args))?;
                check(&value, &expected)?;
                Ok(value)
            }
        }
    }
    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        natively(self.inner.inner().coerce_types(arg_types))
    }
    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.answers
            .preserves_lex_ordering(inputs, || self.inner.inner().preserves_lex_ordering(inputs))
    }
    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.inner().placement(args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.restored.documentation)
    }
}

/// "plugin function 'name'", formatted only when shown.
struct PluginFunction<'a>(&'a str);

impl std::fmt::Display for PluginFunction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin function '{}'", self.0)
    }
}

/// A foreign aggregate UDF with its documentation, parameter names and `return_type` restored,
/// whose groups accumulators take its bundle's lean path when it has one (ABI 1.5,
/// [`ForeignLeanGroupsAccumulator`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct RestoredAggregateUDF {
    inner: AggregateUDF,
    restored: Restored,
    lean: LeanGroups,
}

/// A bundle's groups accumulator entry point, compared and hashed by address, and the bundle's
/// plugin ABI minor (which calls its lean accumulators have).
#[derive(Debug, Clone, Copy)]
struct LeanGroups {
    lean_of: Option<GroupsAccumulatorFn>,
    abi_minor: u16,
}

impl LeanGroups {
    fn id(&self) -> Option<usize> {
        self.lean_of.map(|f| f as usize)
    }
}

impl PartialEq for LeanGroups {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for LeanGroups {}

impl std::hash::Hash for LeanGroups {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl AggregateUDFImpl for RestoredAggregateUDF {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.restored.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let fields: Vec<FieldRef> = arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| Arc::new(Field::new(format!("arg_{i}"), t.clone(), true)))
            .collect();
        Ok(self.return_field(&fields)?.data_type().clone())
    }
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.inner().return_field(arg_fields)
    }
    fn is_nullable(&self) -> bool {
        self.inner.inner().is_nullable()
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let acc = natively(self.inner.inner().accumulator(acc_args))?;
        Ok(Box::new(NativeAccumulator(acc)))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.inner().state_fields(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.inner().groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let acc = natively(self.inner.inner().create_groups_accumulator(args))?;
        let acc: Box<dyn GroupsAccumulator> = match self.lean.lean_of {
            Some(lean_of) => Box::new(natively(ForeignLeanGroupsAccumulator::new(
                lean_of,
                acc,
                self.lean.abi_minor,
            ))?),
            None => acc,
        };
        Ok(Box::new(NativeGroupsAccumulator(acc)))
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let acc = natively(self.inner.inner().create_sliding_accumulator(args))?;
        Ok(Box::new(NativeAccumulator(acc)))
    }
    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let reordered =
            Arc::clone(self.inner.inner()).with_beneficial_ordering(beneficial_ordering)?;
        Ok(reordered.map(|imp| {
            Arc::new(Self {
                inner: AggregateUDF::new_from_shared_impl(imp),
                restored: self.restored.clone(),
                lean: self.lean,
            }) as Arc<dyn AggregateUDFImpl>
        }))
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }
    fn supports_null_handling_clause(&self) -> bool {
        self.inner.inner().supports_null_handling_clause()
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.restored.documentation)
    }
}

/// A foreign window UDF with its documentation and parameter names restored.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RestoredWindowUDF {
    inner: WindowUDF,
    restored: Restored,
}

impl WindowUDFImpl for RestoredWindowUDF {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.restored.signature
    }
    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let evaluator = natively(self.inner.inner().partition_evaluator(args))?;
        Ok(Box::new(NativeEvaluator(evaluator)))
    }
    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        self.inner.inner().field(field_args)
    }
    fn sort_options(&self) -> Option<datafusion::arrow::compute::SortOptions> {
        self.inner.inner().sort_options()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }
    fn limit_effect(
        &self,
        args: &[Arc<dyn datafusion::physical_plan::PhysicalExpr>],
    ) -> datafusion::logical_expr::LimitEffect {
        self.inner.inner().limit_effect(args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.restored.documentation)
    }
}
