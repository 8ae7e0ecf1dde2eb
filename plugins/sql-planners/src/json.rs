//! JSON operators over JSON text: `doc -> key`, `doc ->> key` and (PostgreSQL dialect)
//! `doc ? key`, with PostgreSQL's meaning.
//!
//! DataFusion parses these operators but plans none of them. [`JsonOperators`] is an expression
//! planner that rewrites them into calls of the bundle's functions `json_get`, `json_get_text`
//! and `json_has_key` when the left operand is text (or NULL); other operands are left to
//! DataFusion (and its error). Precedence is sqlparser's: in the PostgreSQL dialect `->`/`->>`
//! bind tighter than comparisons (`doc->>'a' = 'x'` is `(doc->>'a') = 'x'`); in the generic
//! dialect they bind looser, so write the parentheses.
//!
//! `key` is text (an object member) or an integer (an array element, negative counts from the
//! end). Semantics, as PostgreSQL's `json` operators:
//! - `->` returns the member as JSON text, `->>` as text (a JSON string unquoted; JSON `null`
//!   is SQL NULL); a missing member or index, or a scalar document, gives NULL;
//! - `?` is true when an object has the key, or an array has the string as an element;
//! - a NULL document or key gives NULL; text that is not JSON is an error naming the row.
//!
//! Subscripts and dots read members too, as in PostgreSQL's `jsonb` subscripting and BigQuery's
//! JSON field access: `doc['a'][0]` is `doc -> 'a' -> 0` for any text operand (DataFusion has
//! no subscript of text), and `doc.a.b` is `doc -> 'a' -> 'b'` for columns of type `JSON`
//! (the `arrow.json` extension; plain text columns keep DataFusion's meaning of the dot).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Field;
use datafusion::common::cast::{as_int64_array, as_string_array};
use datafusion::common::{Column, DFSchema, ScalarValue, TableReference, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{
    ExprPlanner, PlannerResult, RawBinaryExpr, RawFieldAccessExpr,
};
use datafusion::logical_expr::sqlparser::ast::BinaryOperator;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, GetFieldAccess, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, lit,
};
use serde_json::Value;

/// Which operator a function implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonOp {
    /// `->`: the member as JSON text.
    Get,
    /// `->>`: the member as text.
    GetText,
    /// `?`: whether the key exists.
    HasKey,
}

impl JsonOp {
    fn name(self) -> &'static str {
        match self {
            JsonOp::Get => "json_get",
            JsonOp::GetText => "json_get_text",
            JsonOp::HasKey => "json_has_key",
        }
    }

    fn of(op: &BinaryOperator) -> Option<Self> {
        match op {
            BinaryOperator::Arrow => Some(JsonOp::Get),
            BinaryOperator::LongArrow => Some(JsonOp::GetText),
            BinaryOperator::Question => Some(JsonOp::HasKey),
            _ => None,
        }
    }

    /// The function, as a `ScalarUDF`.
    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::from(JsonFunction::new(self))
    }
}

/// `json_get(json, key)`, `json_get_text(json, key)`, `json_has_key(json, key)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonFunction {
    op: JsonOp,
    signature: Signature,
}

impl JsonFunction {
    pub fn new(op: JsonOp) -> Self {
        Self {
            op,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

/// A key as the functions take it.
enum Key<'a> {
    Member(&'a str),
    Index(i64),
}

fn lookup<'v>(doc: &'v Value, key: &Key<'_>) -> Option<&'v Value> {
    match (doc, key) {
        (Value::Object(map), Key::Member(k)) => map.get(*k),
        (Value::Array(items), Key::Index(i)) => {
            let len = items.len() as i64;
            let i = if *i < 0 { len + i } else { *i };
            usize::try_from(i).ok().and_then(|i| items.get(i))
        }
        _ => None,
    }
}

fn has_key(doc: &Value, key: &Key<'_>) -> bool {
    match (doc, key) {
        (Value::Object(map), Key::Member(k)) => map.contains_key(*k),
        (Value::Array(items), Key::Member(k)) => items.iter().any(|v| v.as_str() == Some(*k)),
        _ => false,
    }
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [doc, key] = arg_types else {
            return plan_err!(
                "{}(json, key) takes 2 arguments, got {}",
                self.name(),
                arg_types.len()
            );
        };
        if !is_text(doc) {
            return plan_err!("{}: the document must be JSON text, got {doc}", self.name());
        }
        let key = if is_text(key) {
            DataType::Utf8
        } else if key.is_integer() {
            DataType::Int64
        } else {
            return plan_err!(
                "{}: the key must be text or an integer, got {key}",
                self.name()
            );
        };
        Ok(vec![DataType::Utf8, key])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.op {
            JsonOp::HasKey => DataType::Boolean,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // One value per row, also when every argument is a scalar.
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let docs = cast(&arrays[0], &DataType::Utf8)?;
        let docs = as_string_array(&docs)?;
        let keys = &arrays[1];
        let members = if keys.data_type() == &DataType::Int64 {
            None
        } else {
            Some(cast(keys, &DataType::Utf8)?)
        };
        let members = members.as_ref().map(|m| as_string_array(m)).transpose()?;
        let indexes = if members.is_none() {
            Some(as_int64_array(keys)?)
        } else {
            None
        };
        let rows = args.number_rows;
        let mut text = StringBuilder::with_capacity(rows, rows * 8);
        let mut flags = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let key = match (&members, &indexes) {
                (Some(m), _) if m.is_valid(row) => Some(Key::Member(m.value(row))),
                (_, Some(i)) if i.is_valid(row) => Some(Key::Index(i.value(row))),
                _ => None,
            };
            let (Some(key), true) = (key, docs.is_valid(row)) else {
                text.append_null();
                flags.append_null();
                continue;
            };
            let doc: Value = match serde_json::from_str(docs.value(row)) {
                Ok(v) => v,
                Err(e) => {
                    return exec_err!(
                        "{}: row {} is not valid JSON ({e}): {:?}",
                        self.name(),
                        row + 1,
                        docs.value(row)
                    );
                }
            };
            match self.op {
                JsonOp::HasKey => flags.append_value(has_key(&doc, &key)),
                JsonOp::Get => match lookup(&doc, &key) {
                    Some(v) => text.append_value(v.to_string()),
                    None => text.append_null(),
                },
                JsonOp::GetText => match lookup(&doc, &key) {
                    Some(Value::String(s)) => text.append_value(s),
                    Some(Value::Null) | None => text.append_null(),
                    Some(v) => text.append_value(v.to_string()),
                },
            }
        }
        let out: ArrayRef = match self.op {
            JsonOp::HasKey => Arc::new(flags.finish()),
            _ => Arc::new(text.finish()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Plans `->`, `->>` and `?` over JSON text as calls of the JSON functions.
#[derive(Debug, Default)]
pub struct JsonOperators;

impl JsonOperators {
    /// The operators it plans.
    pub fn operators() -> Vec<BinaryOperator> {
        vec![
            BinaryOperator::Arrow,
            BinaryOperator::LongArrow,
            BinaryOperator::Question,
        ]
    }
}

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let Some(op) = JsonOp::of(&expr.op) else {
            return Ok(PlannerResult::Original(expr));
        };
        let left = expr.left.get_type(schema)?;
        let right = expr.right.get_type(schema)?;
        if !is_text(&left) || !(is_text(&right) || right.is_integer()) {
            // Not JSON text: DataFusion's (e.g. a map or struct operator of another planner).
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(call(op, expr.left, expr.right)))
    }

    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        if !is_text(&expr.expr.get_type(schema)?) {
            return Ok(PlannerResult::Original(expr));
        }
        let key = match &expr.field_access {
            GetFieldAccess::NamedStructField { name } => match name {
                ScalarValue::Utf8(Some(k))
                | ScalarValue::LargeUtf8(Some(k))
                | ScalarValue::Utf8View(Some(k)) => lit(k.as_str()),
                _ => return Ok(PlannerResult::Original(expr)),
            },
            GetFieldAccess::ListIndex { key } => {
                let t = key.get_type(schema)?;
                if !(is_text(&t) || t.is_integer()) {
                    return Ok(PlannerResult::Original(expr));
                }
                *key.clone()
            }
            // A slice of JSON text has no meaning; DataFusion reports it.
            GetFieldAccess::ListRange { .. } => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(call(JsonOp::Get, expr.expr, key)))
    }

    fn plan_compound_identifier(
        &self,
        field: &Field,
        qualifier: Option<&TableReference>,
        nested_names: &[String],
    ) -> Result<PlannerResult<Vec<Expr>>> {
        if field.extension_type_name() != Some("arrow.json") {
            return Ok(PlannerResult::Original(Vec::new()));
        }
        let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
        let planned = nested_names.iter().fold(column, |doc, name| {
            call(JsonOp::Get, doc, lit(name.as_str()))
        });
        Ok(PlannerResult::Planned(planned))
    }
}

/// `op(doc, key)` as a call of the bundle's function.
fn call(op: JsonOp, doc: Expr, key: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(op.udf()), vec![doc, key]))
}
