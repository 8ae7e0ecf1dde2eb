//! Scalar UDFs.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::toolkit::panic::{BundleTag, ObjectLabel, guard, guard_or};

/// A scalar UDF whose every call is panic-guarded.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GuardedScalarUDF {
    inner: ScalarUDF,
    label: Arc<ObjectLabel>,
}

impl GuardedScalarUDF {
    pub fn wrap(inner: ScalarUDF, bundle: &BundleTag) -> ScalarUDF {
        let label = ObjectLabel::new(bundle, "scalar function", inner.name());
        ScalarUDF::new_from_impl(Self { inner, label })
    }

    pub(crate) fn imp(&self) -> &Arc<dyn ScalarUDFImpl> {
        self.inner.inner()
    }

    /// Who the function is, for its guard's errors.
    pub(crate) fn label(&self) -> &Arc<ObjectLabel> {
        &self.label
    }
}

impl ScalarUDFImpl for GuardedScalarUDF {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        guard(&self.label, "return_type", || {
            self.imp().return_type(arg_types)
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        guard(&self.label, "return_field_from_args", || {
            self.imp().return_field_from_args(args)
        })
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = guard_or(&self.label, "with_updated_config", None, || {
            self.imp().with_updated_config(config)
        })?;
        Some(ScalarUDF::new_from_impl(Self {
            inner: updated,
            label: Arc::clone(&self.label),
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        // The field's handle, not a clone of its type: this runs every batch.
        let expected = Arc::clone(&args.return_field);
        let value = guard(&self.label, "invoke", || self.imp().invoke_with_args(args))?;
        let expected = expected.data_type();
        crate::ffi::contract::check_scalar_result(&self.label, rows, expected, &value)?;
        Ok(value)
    }

    fn short_circuits(&self) -> bool {
        self.imp().short_circuits()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        guard(&self.label, "coerce_types", || {
            self.imp().coerce_types(arg_types)
        })
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        guard(&self.label, "preserves_lex_ordering", || {
            self.imp().preserves_lex_ordering(inputs)
        })
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.imp().placement(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.imp().documentation()
    }
}
