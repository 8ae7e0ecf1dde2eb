//! `url_parts(url, 'host', 'port', ...)`: the named components of a URL, as a struct whose
//! fields are the literal part names — the return type depends on the arguments' values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Builder, StringBuilder, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::as_string_array;
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::url::{UrlParts, parse};

/// The components `url_parts` knows, with their types.
const PARTS: [(&str, DataType); 7] = [
    ("scheme", DataType::Utf8),
    ("user", DataType::Utf8),
    ("host", DataType::Utf8),
    ("port", DataType::Int32),
    ("path", DataType::Utf8),
    ("query", DataType::Utf8),
    ("fragment", DataType::Utf8),
];

fn part_type(name: &str) -> Option<DataType> {
    PARTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.clone())
}

fn known() -> String {
    PARTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The `url_parts` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlPartsUdf {
    signature: Signature,
}

impl UrlPartsUdf {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for UrlPartsUdf {
    fn default() -> Self {
        Self::new()
    }
}

fn text_component<'a>(parts: Option<&UrlParts<'a>>, name: &str) -> Option<&'a str> {
    let p = parts?;
    match name {
        "scheme" => p.scheme,
        "user" => p.user,
        "host" => Some(p.host),
        "path" => Some(p.path),
        "query" => p.query,
        "fragment" => p.fragment,
        _ => None,
    }
}

impl ScalarUDFImpl for UrlPartsUdf {
    fn name(&self) -> &str {
        "url_parts"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 2 {
            return plan_err!(
                "url_parts expects a url and at least one part name ({}), got {} argument(s)",
                known(),
                arg_types.len()
            );
        }
        for t in arg_types {
            if !(t.is_null()
                || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
            {
                return plan_err!("url_parts expects string arguments, got {t}");
            }
        }
        Ok(vec![DataType::Utf8; arg_types.len()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("url_parts needs its part names: use return_field_from_args")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let mut fields = Vec::with_capacity(args.scalar_arguments.len().saturating_sub(1));
        for arg in args.scalar_arguments.iter().skip(1) {
            let name = match arg {
                Some(
                    ScalarValue::Utf8(Some(n))
                    | ScalarValue::LargeUtf8(Some(n))
                    | ScalarValue::Utf8View(Some(n)),
                ) => n,
                _ => {
                    return plan_err!(
                        "url_parts: part names must be constant strings ({})",
                        known()
                    );
                }
            };
            let Some(t) = part_type(name) else {
                return plan_err!("url_parts: unknown part '{name}'; known parts: {}", known());
            };
            if fields.iter().any(|f: &Field| f.name() == name) {
                return plan_err!("url_parts: part '{name}' is asked for twice");
            }
            fields.push(Field::new(name.as_str(), t, true));
        }
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Struct(Fields::from(fields)),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Struct(fields) = args.return_field.data_type() else {
            return exec_err!("url_parts: the planned return type is not a struct");
        };
        let urls = args.args[0].to_array(args.number_rows)?;
        let urls = as_string_array(&urls)?;
        let parsed: Vec<Option<UrlParts>> = urls.iter().map(|u| u.and_then(parse)).collect();
        let columns = fields
            .iter()
            .map(|f| -> Result<ArrayRef> {
                Ok(if f.name() == "port" {
                    let mut b = Int32Builder::with_capacity(parsed.len());
                    for p in &parsed {
                        b.append_option(p.and_then(|p| p.port).and_then(|s| s.parse().ok()));
                    }
                    Arc::new(b.finish())
                } else {
                    let mut b = StringBuilder::with_capacity(parsed.len(), 16 * parsed.len());
                    for p in &parsed {
                        b.append_option(text_component(p.as_ref(), f.name()));
                    }
                    Arc::new(b.finish())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let nulls = urls.logical_nulls();
        let result = StructArray::try_new(fields.clone(), columns, nulls)?;
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}
