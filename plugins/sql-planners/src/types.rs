//! SQL types DataFusion lacks: `UUID` and `JSON` / `JSONB`.
//!
//! - `UUID` is `FixedSizeBinary(16)` with the canonical `arrow.uuid` extension type;
//! - `JSON` and `JSONB` are `Utf8` with the canonical `arrow.json` extension type.
//!
//! Usable wherever SQL names a type: `CAST`, `CREATE TABLE` columns, `CREATE EXTERNAL TABLE`
//! schemas; the metadata shows in the result schema. DataFusion 55 casts with Arrow's kernels,
//! which cast binary to `UUID` but not text, and a type planner cannot change how a cast runs:
//! text becomes a UUID with `uuid_parse(text)`, and a UUID text with `uuid_text(uuid)`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, FixedSizeBinaryBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_binary_array, as_string_array};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::sqlparser::ast;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

const EXTENSION_NAME: &str = "ARROW:extension:name";

/// The SQL type names [`SqlTypes`] plans.
pub const TYPE_NAMES: [&str; 3] = ["UUID", "JSON", "JSONB"];

/// The field of a `UUID` value.
pub fn uuid_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::FixedSizeBinary(16), nullable).with_metadata(HashMap::from([(
        EXTENSION_NAME.to_owned(),
        "arrow.uuid".to_owned(),
    )]))
}

fn json_field() -> Field {
    Field::new("", DataType::Utf8, true).with_metadata(HashMap::from([(
        EXTENSION_NAME.to_owned(),
        "arrow.json".to_owned(),
    )]))
}

/// The type planner for `UUID`, `JSON` and `JSONB`.
#[derive(Debug, Default)]
pub struct SqlTypes;

impl TypePlanner for SqlTypes {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        Ok(match sql_type {
            ast::DataType::Uuid => Some(Arc::new(uuid_field("", true))),
            ast::DataType::JSON | ast::DataType::JSONB => Some(Arc::new(json_field())),
            _ => None,
        })
    }
}

/// `uuid_parse(text)`: a UUID from its text form (hyphens optional, any case).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UuidParse {
    signature: Signature,
}

impl UuidParse {
    pub fn new() -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for UuidParse {
    fn default() -> Self {
        Self::new()
    }
}

/// The 16 bytes of a UUID's text form.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    let valid_dashes = match text.len() {
        32 => !text.contains('-'),
        36 => [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-'),
        _ => false,
    };
    if !valid_dashes || hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl ScalarUDFImpl for UuidParse {
    fn name(&self) -> &str {
        "uuid_parse"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::FixedSizeBinary(16))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let nullable = args.arg_fields.first().is_none_or(|f| f.is_nullable());
        Ok(Arc::new(uuid_field(self.name(), nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // One value per row, also for a scalar argument.
        let arrays = [args.args[0].to_array(args.number_rows)?];
        let text = cast(&arrays[0], &DataType::Utf8)?;
        let text = as_string_array(&text)?;
        let mut out = FixedSizeBinaryBuilder::with_capacity(text.len(), 16);
        for row in 0..text.len() {
            if text.is_null(row) {
                out.append_null();
                continue;
            }
            match parse_uuid(text.value(row)) {
                Some(bytes) => out.append_value(bytes)?,
                None => {
                    return exec_err!(
                        "uuid_parse: {:?} is not a UUID (32 hex digits, optionally as 8-4-4-4-12)",
                        text.value(row)
                    );
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// `uuid_text(uuid)`: the canonical text form (`8-4-4-4-12`, lower case) of a UUID or of
/// 16 bytes of binary.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UuidText {
    signature: Signature,
}

impl UuidText {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for UuidText {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UuidText {
    fn name(&self) -> &str {
        "uuid_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::FixedSizeBinary(16) | DataType::Null] => Ok(arg_types.to_vec()),
            [DataType::Binary | DataType::LargeBinary | DataType::BinaryView] => {
                Ok(vec![DataType::Binary])
            }
            _ => {
                plan_err!("uuid_text(uuid) takes a UUID (or 16 bytes of binary), got {arg_types:?}")
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // One value per row, also for a scalar argument.
        let arrays = [args.args[0].to_array(args.number_rows)?];
        let bytes = cast(&arrays[0], &DataType::Binary)?;
        let bytes = as_binary_array(&bytes)?;
        let mut out = StringBuilder::with_capacity(bytes.len(), bytes.len() * 36);
        for row in 0..bytes.len() {
            if bytes.is_null(row) {
                out.append_null();
                continue;
            }
            let b = bytes.value(row);
            if b.len() != 16 {
                return exec_err!("uuid_text: a UUID has 16 bytes, got {}", b.len());
            }
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            out.append_value(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            ));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_uuid;

    #[test]
    fn parses_uuid_text() {
        let a = parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(a[0], 0xa0);
        assert_eq!(a[15], 0x11);
        assert_eq!(parse_uuid("A0EEBC999C0B4EF8BB6D6BB9BD380A11"), Some(a));
        assert_eq!(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), None);
        assert_eq!(parse_uuid("a0eebc999-c0b-4ef8-bb6d-6bb9bd380a11"), None);
        assert_eq!(parse_uuid("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None);
    }
}
