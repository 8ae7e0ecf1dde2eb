//! A third-party df-plugin bundle with one scalar function, `word_count(text)`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringViewArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_view_array;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use df_plugin_api::toolkit::Bundle;

/// `word_count(text)`: the number of whitespace-separated words.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WordCount {
    signature: Signature,
}

impl Default for WordCount {
    fn default() -> Self {
        Self {
            // Every string type is coerced to Utf8View, so the body handles one type.
            signature: Signature::exact(vec![DataType::Utf8View], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for WordCount {
    fn name(&self) -> &str {
        "word_count"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        Ok(vec![DataType::Utf8View; args.len()])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let text = args.args[0].to_array(args.number_rows)?;
        let text: &StringViewArray = as_string_view_array(&text)?;
        let counts: Int64Array = text
            .iter()
            .map(|t| t.map(|t| t.split_whitespace().count() as i64))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(counts) as ArrayRef))
    }
}

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle.scalar_udf(WordCount::default());
    Ok(())
}

df_plugin_api::export_bundle!(exports);
