//! `url_decode(text)`: percent-decoding as in query strings and forms (`%XX`, `+` as space).

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::url::percent_decode;

/// The `url_decode` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlDecode {
    signature: Signature,
}

impl UrlDecode {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
                &["text"],
            ),
        }
    }
}

impl Default for UrlDecode {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UrlDecode {
    fn name(&self) -> &str {
        "url_decode"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let texts = args.args[0].to_array(args.number_rows)?;
        let texts = as_string_array(&texts)?;
        let mut out = StringBuilder::with_capacity(texts.len(), texts.value_data().len());
        for t in texts.iter() {
            out.append_option(t.map(percent_decode));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
