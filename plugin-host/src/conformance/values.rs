//! Sample values and argument types for calling a bundle's functions with what they declare.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, new_empty_array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::logical_expr::TypeSignature;
use datafusion::logical_expr::type_coercion::functions::{UDFCoercionExt, fields_with_udf};
use datafusion::scalar::ScalarValue;

/// Text samples: a URL, a word, empty, JSON, prose, non-ASCII.
const TEXT: [&str; 6] = [
    "https://user@Example.com:8080/a/b%20c?x=1&y=two#frag",
    "host",
    "",
    "{\"a\": [1, {\"b\": null}]}",
    "plain text",
    "ünïcødé ✓",
];
const INTS: [i64; 6] = [0, 1, -7, 42, 1800, 3];
const FLOATS: [f64; 6] = [1.5, 0.25, -2.25, 1e10, 0.1, 7.0];
/// 2023-11-14T22:13:20Z, then minutes and hours later.
const SECONDS: [i64; 6] = [
    1_700_000_000,
    1_700_000_060,
    1_700_000_600,
    1_700_007_200,
    1_700_007_230,
    1_700_090_000,
];

/// How many distinct samples each type has.
pub(super) const SAMPLES: usize = 6;

/// The `i`-th sample value of `t` (never NULL); `None` for types the kit has no samples for.
pub(super) fn sample(t: &DataType, i: usize) -> Option<ScalarValue> {
    let i = i % SAMPLES;
    let text = TEXT[i].to_owned();
    Some(match t {
        DataType::Null => ScalarValue::Null,
        DataType::Boolean => ScalarValue::Boolean(Some(i.is_multiple_of(2))),
        DataType::Utf8 => ScalarValue::Utf8(Some(text)),
        DataType::LargeUtf8 => ScalarValue::LargeUtf8(Some(text)),
        DataType::Utf8View => ScalarValue::Utf8View(Some(text)),
        DataType::Binary => ScalarValue::Binary(Some(text.into_bytes())),
        DataType::LargeBinary => ScalarValue::LargeBinary(Some(text.into_bytes())),
        DataType::BinaryView => ScalarValue::BinaryView(Some(text.into_bytes())),
        DataType::FixedSizeBinary(n) => {
            ScalarValue::FixedSizeBinary(*n, Some(vec![i as u8 * 17; (*n).max(0) as usize]))
        }
        t if t.is_unsigned_integer() => ScalarValue::UInt64(Some(INTS[i].unsigned_abs()))
            .cast_to(t)
            .ok()?,
        t if t.is_integer() => ScalarValue::Int64(Some(INTS[i])).cast_to(t).ok()?,
        t if t.is_floating()
            || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
        {
            ScalarValue::Float64(Some(FLOATS[i])).cast_to(t).ok()?
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            ScalarValue::TimestampSecond(Some(SECONDS[i]), None)
                .cast_to(t)
                .ok()?
        }
        DataType::List(field) => ScalarValue::List(ScalarValue::new_list_nullable(
            &[
                sample(field.data_type(), i)?,
                sample(field.data_type(), i + 1)?,
            ],
            field.data_type(),
        )),
        DataType::LargeList(field) => ScalarValue::LargeList(ScalarValue::new_large_list(
            &[
                sample(field.data_type(), i)?,
                sample(field.data_type(), i + 1)?,
            ],
            field.data_type(),
        )),
        DataType::Dictionary(_, value) => sample(value, i)?.cast_to(t).ok()?,
        _ => return None,
    })
}

/// A column of `rows` samples of `t`, starting at sample `offset`; with `nulls`, every fourth
/// value is NULL. `None` for types without samples.
pub(super) fn column(t: &DataType, rows: usize, offset: usize, nulls: bool) -> Option<ArrayRef> {
    if rows == 0 {
        return Some(new_empty_array(t));
    }
    let null = ScalarValue::try_from(t).ok()?;
    let values = (0..rows)
        .map(|r| {
            if nulls && (r + offset) % 4 == 3 {
                Some(null.clone())
            } else {
                sample(t, r + offset)
            }
        })
        .collect::<Option<Vec<_>>>()?;
    let array = ScalarValue::iter_to_array(values).ok()?;
    // A list sample's item field may differ from the declared one in name or nullability.
    (array.data_type() == t).then_some(array)
}

/// A column of `rows` NULLs of `t`.
pub(super) fn nulls(t: &DataType, rows: usize) -> ArrayRef {
    datafusion::arrow::array::new_null_array(t, rows)
}

/// Types tried for arguments a signature does not spell out (`Any`, `VariadicAny`,
/// `UserDefined`, ...): the function's own `coerce_types` decides which it takes.
fn fallback_types() -> Vec<DataType> {
    vec![
        DataType::Utf8,
        DataType::Int64,
        DataType::Float64,
        DataType::Boolean,
        DataType::Binary,
        DataType::FixedSizeBinary(16),
        DataType::Timestamp(TimeUnit::Nanosecond, None),
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
    ]
}

/// At most this many argument-type lists are tried per function.
const MAX_COMBINATIONS: usize = 8;

/// Argument-type lists `func` accepts, after DataFusion's own coercion, for calls of up to
/// `max_arity` arguments: the signature's example types first, then plain guesses.
pub(super) fn argument_types<F: UDFCoercionExt>(func: &F, max_arity: usize) -> Vec<Vec<DataType>> {
    let signature = func.signature();
    let mut candidates: Vec<Vec<DataType>> = signature.type_signature.get_example_types();
    if matches!(signature.type_signature, TypeSignature::Nullary) {
        candidates.push(vec![]);
    }
    for arity in 1..=max_arity.max(1) {
        for first in fallback_types() {
            // Same type everywhere, and "first argument, then integers" (`top_hosts(url, k)`).
            candidates.push(vec![first.clone(); arity]);
            let mut mixed = vec![DataType::Int64; arity];
            mixed[0] = first;
            candidates.push(mixed);
        }
    }
    let mut accepted: Vec<Vec<DataType>> = Vec::new();
    for types in candidates {
        if accepted.len() == MAX_COMBINATIONS {
            break;
        }
        let fields: Vec<FieldRef> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Arc::new(Field::new(format!("c{i}"), t.clone(), true)))
            .collect();
        // A signature may accept types the kit has no samples for; skip those.
        let Ok(coerced) = fields_with_udf(&fields, func) else {
            continue;
        };
        let coerced: Vec<DataType> = coerced.iter().map(|f| f.data_type().clone()).collect();
        if coerced.iter().all(|t| sample(t, 0).is_some()) && !accepted.contains(&coerced) {
            accepted.push(coerced);
        }
    }
    accepted
}

/// `name(Utf8, Int64)`, for report lines.
pub(super) fn call_text(name: &str, types: &[DataType]) -> String {
    let args: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    format!("{name}({})", args.join(", "))
}
