//! `behaviour.scalar.*`: each scalar function called directly with its declared argument types
//! — sample values with NULLs, all NULLs, an empty batch, all literals — must return exactly
//! one value per row, of the type it declared for those arguments.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use df_plugin_api::record::Capability;

use super::report::Report;
use super::values::{self, SAMPLES};
use super::{Outcome, Outcomes, Trigger};
use crate::metadata::BundleMetadata;

pub(super) fn check_all(
    ctx: &SessionContext,
    meta: &BundleMetadata,
    report: &mut Report,
) -> Vec<Trigger> {
    let mut triggers = Vec::new();
    for decl in meta.manifest.objects_of(Capability::ScalarUdf) {
        let check = format!("behaviour.scalar.{}", decl.name);
        let Some(udf) = ctx.state().scalar_functions().get(&decl.name).cloned() else {
            report.skip(check, "not registered (see truth.registered)");
            continue;
        };
        let outcomes = exercise(&udf, decl.parameters.len());
        if outcomes.reachable() {
            triggers.push((Capability::ScalarUdf, decl.name.clone()));
        }
        report.outcome(check, outcomes.verdict("call"));
    }
    triggers
}

/// Every generated call of `udf`.
pub(super) fn exercise(udf: &ScalarUDF, parameters: usize) -> Outcomes {
    let mut out = Outcomes::default();
    let signatures = values::argument_types(udf, parameters.max(3));
    if signatures.is_empty() {
        out.none_accepted = Some(format!(
            "the kit found no argument types {} accepts ({:?})",
            udf.name(),
            udf.signature().type_signature
        ));
    }
    for types in &signatures {
        let what = values::call_text(udf.name(), types);
        let columns = |rows: usize, nulls: bool| -> Option<Vec<ColumnarValue>> {
            types
                .iter()
                .enumerate()
                .map(|(i, t)| values::column(t, rows, i, nulls).map(ColumnarValue::Array))
                .collect()
        };
        let none = vec![None; types.len()];
        if let Some(args) = columns(5, true) {
            out.push(
                format!("{what} over 5 rows with NULLs"),
                call(udf, types, args, &none, 5),
            );
        }
        let all_null = types
            .iter()
            .map(|t| ColumnarValue::Array(values::nulls(t, 3)))
            .collect();
        out.push(
            format!("{what} over 3 NULL rows"),
            call(udf, types, all_null, &none, 3),
        );
        if let Some(args) = columns(0, false) {
            out.push(
                format!("{what} over an empty batch"),
                call(udf, types, args, &none, 0),
            );
        }
        for i in 0..SAMPLES {
            let Some(literals) = types
                .iter()
                .map(|t| values::sample(t, i))
                .collect::<Option<Vec<ScalarValue>>>()
            else {
                continue;
            };
            let args = literals
                .iter()
                .cloned()
                .map(ColumnarValue::Scalar)
                .collect();
            let known: Vec<Option<ScalarValue>> = literals.into_iter().map(Some).collect();
            out.push(
                format!("{what} with literal sample {i}"),
                call(udf, types, args, &known, 2),
            );
        }
    }
    out
}

fn call(
    udf: &ScalarUDF,
    types: &[DataType],
    args: Vec<ColumnarValue>,
    literals: &[Option<ScalarValue>],
    rows: usize,
) -> Outcome {
    let arg_fields: Vec<FieldRef> = types
        .iter()
        .enumerate()
        .map(|(i, t)| Arc::new(Field::new(format!("c{i}"), t.clone(), true)))
        .collect();
    let scalar_arguments: Vec<Option<&ScalarValue>> = literals.iter().map(Option::as_ref).collect();
    let return_field = match udf.return_field_from_args(ReturnFieldArgs {
        arg_fields: &arg_fields,
        scalar_arguments: &scalar_arguments,
    }) {
        Ok(f) => f,
        Err(e) => return Outcome::refused(e.to_string()),
    };
    let result = udf.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: rows,
        return_field: Arc::clone(&return_field),
        config_options: Arc::new(ConfigOptions::default()),
    });
    let expected = return_field.data_type();
    match result {
        Err(e) => Outcome::refused(e.to_string()),
        Ok(ColumnarValue::Array(a)) if a.len() != rows => {
            Outcome::Violation(format!("returned {} value(s) for {rows} row(s)", a.len()))
        }
        Ok(ColumnarValue::Array(a)) if a.data_type() != expected => Outcome::Violation(format!(
            "returned {} where its return type says {expected}",
            a.data_type()
        )),
        Ok(ColumnarValue::Scalar(s)) if &s.data_type() != expected => Outcome::Violation(format!(
            "returned a {} literal where its return type says {expected}",
            s.data_type()
        )),
        Ok(_) => Outcome::Accepted,
    }
}
