//! Nested types in and out: `url_hosts(list of urls) -> list of hosts` and
//! `url_query_map(url) -> map<key, value>`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ListArray, MapBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::cast::{as_list_array, as_string_array};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::url::host_of;
use crate::url::query_pairs;

fn utf8_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// `url_hosts(urls)`: the lower-cased host of every URL in a list (NULL elements stay NULL).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlHosts {
    signature: Signature,
}

impl UrlHosts {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for UrlHosts {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UrlHosts {
    fn name(&self) -> &str {
        "url_hosts"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Null] => Ok(vec![utf8_list()]),
            [DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)]
                if matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
                ) =>
            {
                Ok(vec![utf8_list()])
            }
            [other] => plan_err!("url_hosts expects a list of strings, got {other}"),
            _ => plan_err!(
                "url_hosts expects 1 argument (a list of urls), got {}",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(utf8_list())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let lists = args.args[0].to_array(args.number_rows)?;
        let lists: &ListArray = as_list_array(&lists)?;
        let urls = as_string_array(lists.values())?;
        let mut hosts = StringBuilder::with_capacity(urls.len(), 16 * urls.len());
        for url in urls.iter() {
            hosts.append_option(url.and_then(host_of).map(str::to_ascii_lowercase));
        }
        // Same offsets and list-level nulls; only the values change.
        let result = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            lists.offsets().clone(),
            Arc::new(hosts.finish()),
            lists.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// `url_query_map(url)`: the query parameters as a map (the first value of a repeated key).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UrlQueryMap {
    signature: Signature,
}

impl UrlQueryMap {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
                &["url"],
            ),
        }
    }
}

impl Default for UrlQueryMap {
    fn default() -> Self {
        Self::new()
    }
}

fn map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

impl ScalarUDFImpl for UrlQueryMap {
    fn name(&self) -> &str {
        "url_query_map"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(map_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let urls = args.args[0].to_array(args.number_rows)?;
        let urls = as_string_array(&urls)?;
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for url in urls.iter() {
            let Some(url) = url else {
                map.append(false)?;
                continue;
            };
            let mut seen = std::collections::HashSet::new();
            for (k, v) in query_pairs(url) {
                if seen.insert(k.clone()) {
                    map.keys().append_value(&k);
                    map.values().append_value(&v);
                }
            }
            map.append(true)?;
        }
        let result = map.finish();
        // MapBuilder names its fields keys/values, as map_type() does.
        debug_assert_eq!(result.data_type(), &map_type());
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}
