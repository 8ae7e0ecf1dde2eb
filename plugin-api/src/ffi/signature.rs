//! The real signature of an exported function.
//!
//! datafusion-ffi replaces every function's signature by `Signature::user_defined` and routes
//! coercion through the bundle. That hides the argument types from `information_schema` (so
//! `SHOW FUNCTIONS` does not list the function), drops parameter names and changes the planning
//! error messages. The toolkit therefore sends each function's real [`TypeSignature`] along, as
//! JSON, and the host gives it back to the function: coercion then happens in the host exactly
//! as for a built-in. Signatures this encoding cannot express (`Coercible`, array signatures)
//! are not sent; those functions keep datafusion-ffi's user-defined signature.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Signature, TypeSignature};
use serde::{Deserialize, Serialize};
use stabby::string::String as SString;

/// A [`TypeSignature`] with its data types as text (Arrow parses its own display form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeSignatureRepr {
    Variadic { types: Vec<String> },
    UserDefined,
    VariadicAny,
    Uniform { count: usize, types: Vec<String> },
    Exact { types: Vec<String> },
    Comparable { count: usize },
    Any { count: usize },
    OneOf { signatures: Vec<TypeSignatureRepr> },
    Numeric { count: usize },
    String { count: usize },
    Nullary,
}

fn types_to_text(types: &[DataType]) -> Vec<String> {
    types.iter().map(ToString::to_string).collect()
}

fn types_from_text(types: &[String]) -> Option<Vec<DataType>> {
    types.iter().map(|t| t.parse().ok()).collect()
}

impl TypeSignatureRepr {
    /// The transportable form of `ts`, or `None` if it uses a variant this encoding lacks.
    pub fn encode(ts: &TypeSignature) -> Option<Self> {
        Some(match ts {
            TypeSignature::Variadic(t) => Self::Variadic {
                types: types_to_text(t),
            },
            TypeSignature::UserDefined => Self::UserDefined,
            TypeSignature::VariadicAny => Self::VariadicAny,
            TypeSignature::Uniform(n, t) => Self::Uniform {
                count: *n,
                types: types_to_text(t),
            },
            TypeSignature::Exact(t) => Self::Exact {
                types: types_to_text(t),
            },
            TypeSignature::Comparable(n) => Self::Comparable { count: *n },
            TypeSignature::Any(n) => Self::Any { count: *n },
            TypeSignature::OneOf(v) => Self::OneOf {
                signatures: v.iter().map(Self::encode).collect::<Option<_>>()?,
            },
            TypeSignature::Numeric(n) => Self::Numeric { count: *n },
            TypeSignature::String(n) => Self::String { count: *n },
            TypeSignature::Nullary => Self::Nullary,
            TypeSignature::Coercible(_) | TypeSignature::ArraySignature(_) => return None,
        })
    }

    /// The [`TypeSignature`] again, or `None` if a data type does not parse.
    pub fn decode(&self) -> Option<TypeSignature> {
        Some(match self {
            Self::Variadic { types } => TypeSignature::Variadic(types_from_text(types)?),
            Self::UserDefined => TypeSignature::UserDefined,
            Self::VariadicAny => TypeSignature::VariadicAny,
            Self::Uniform { count, types } => {
                TypeSignature::Uniform(*count, types_from_text(types)?)
            }
            Self::Exact { types } => TypeSignature::Exact(types_from_text(types)?),
            Self::Comparable { count } => TypeSignature::Comparable(*count),
            Self::Any { count } => TypeSignature::Any(*count),
            Self::OneOf { signatures } => {
                TypeSignature::OneOf(signatures.iter().map(Self::decode).collect::<Option<_>>()?)
            }
            Self::Numeric { count } => TypeSignature::Numeric(*count),
            Self::String { count } => TypeSignature::String(*count),
            Self::Nullary => TypeSignature::Nullary,
        })
    }
}

/// What crosses for one function besides datafusion-ffi's struct.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSignature {
    pub type_signature: TypeSignatureRepr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_names: Option<Vec<String>>,
}

impl FunctionSignature {
    pub fn encode(signature: &Signature) -> Option<Self> {
        Some(Self {
            type_signature: TypeSignatureRepr::encode(&signature.type_signature)?,
            parameter_names: signature.parameter_names.clone(),
        })
    }
}

/// One function's signature, keyed by its capability bit and name.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct FFI_FunctionSignature {
    /// The [`crate::record::Capability`] bit of the function's kind.
    pub kind: u64,
    pub name: SString,
    /// [`FunctionSignature`] as JSON.
    pub json: SString,
}

impl FFI_FunctionSignature {
    /// Producer: `None` when the signature cannot be expressed (see the module docs).
    pub fn new(kind: crate::record::Capability, name: &str, signature: &Signature) -> Option<Self> {
        let json = serde_json::to_string(&FunctionSignature::encode(signature)?).ok()?;
        Some(Self {
            kind: kind.bit(),
            name: name.into(),
            json: json.as_str().into(),
        })
    }

    /// Consumer: the decoded signature, or `None` if it does not parse on this side.
    pub fn decode(&self) -> Option<(FunctionSignature, TypeSignature)> {
        let sig: FunctionSignature = serde_json::from_str(self.json.as_str()).ok()?;
        let ts = sig.type_signature.decode()?;
        Some((sig, ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::Volatility;

    #[test]
    fn signatures_round_trip() {
        let sig = Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64]),
                TypeSignature::Uniform(
                    2,
                    vec![DataType::List(std::sync::Arc::new(
                        datafusion::arrow::datatypes::Field::new_list_field(
                            DataType::Float64,
                            true,
                        ),
                    ))],
                ),
                TypeSignature::Nullary,
            ],
            Volatility::Immutable,
        )
        .with_parameter_names(vec!["a", "b"]);
        // one_of with mixed arities cannot take names; use the plain signature.
        let sig = sig.unwrap_or_else(|_| {
            Signature::exact(vec![DataType::Utf8, DataType::Int64], Volatility::Immutable)
        });
        let ffi =
            FFI_FunctionSignature::new(crate::record::Capability::ScalarUdf, "f", &sig).unwrap();
        let (decoded, ts) = ffi.decode().unwrap();
        assert_eq!(ts, sig.type_signature);
        assert_eq!(decoded.parameter_names, sig.parameter_names);
    }

    #[test]
    fn nested_types_survive_the_text_form() {
        let ts = TypeSignature::Exact(vec![DataType::Map(
            std::sync::Arc::new(datafusion::arrow::datatypes::Field::new(
                "entries",
                DataType::Struct(
                    vec![
                        datafusion::arrow::datatypes::Field::new("key", DataType::Utf8, false),
                        datafusion::arrow::datatypes::Field::new("value", DataType::Int32, true),
                    ]
                    .into(),
                ),
                false,
            )),
            false,
        )]);
        let repr = TypeSignatureRepr::encode(&ts).unwrap();
        assert_eq!(repr.decode(), Some(ts));
    }
}
