//! Aggregates with a nested state: `top_hosts(url, k)` and `distinct_hosts(url)`.
//!
//! Both count hosts per group. The partial state is a `List<Struct<host, count>>`, so merging
//! partial states from several partitions (`target_partitions > 1`) exercises a nested state
//! across the boundary.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, ListArray, StringArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::{as_int64_array, as_list_array, as_string_array, as_struct_array};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use crate::url::host_of;

fn entry_fields() -> Fields {
    vec![
        Field::new("host", DataType::Utf8, true),
        Field::new("count", DataType::Int64, true),
    ]
    .into()
}

/// `List<Struct<host: Utf8, count: Int64>>`.
fn entries_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(entry_fields()),
        true,
    )))
}

fn hosts_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// A one-row list of (host, count) entries, as a `ScalarValue`.
fn entries_scalar(entries: &[(&str, i64)]) -> Result<ScalarValue> {
    let hosts: StringArray = entries.iter().map(|(h, _)| Some(*h)).collect();
    let counts: Int64Array = entries.iter().map(|(_, c)| Some(*c)).collect();
    let structs = StructArray::try_new(
        entry_fields(),
        vec![Arc::new(hosts) as ArrayRef, Arc::new(counts)],
        None,
    )?;
    let list = ListArray::try_new(
        Arc::new(Field::new_list_field(
            DataType::Struct(entry_fields()),
            true,
        )),
        OffsetBuffer::from_lengths([entries.len()]),
        Arc::new(structs),
        None,
    )?;
    Ok(ScalarValue::List(Arc::new(list)))
}

/// Counts hosts. `ranked` accumulators (`top_hosts`) return the `top` most frequent hosts with
/// their counts (`top` comes from the constant second argument); the others
/// (`distinct_hosts`) return every host name, sorted.
#[derive(Debug, Default)]
struct HostCounts {
    counts: HashMap<String, i64>,
    ranked: bool,
    top: Option<usize>,
}

impl HostCounts {
    /// Hosts by descending count, then name.
    fn ranked(&self) -> Vec<(&str, i64)> {
        let mut v: Vec<(&str, i64)> = self.counts.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

impl Accumulator for HostCounts {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let urls = as_string_array(&values[0])?;
        if self.top.is_none() && values.len() > 1 {
            let k = as_int64_array(&values[1])?;
            if let Some(k) = k.iter().flatten().next() {
                if k < 0 {
                    return exec_err!("top_hosts: k must be >= 0, got {k}");
                }
                self.top = Some(k as usize);
            }
        }
        let mut lowered = String::new();
        for url in urls.iter().flatten() {
            if let Some(host) = host_of(url) {
                lowered.clear();
                lowered.push_str(host);
                lowered.make_ascii_lowercase();
                match self.counts.get_mut(lowered.as_str()) {
                    Some(c) => *c += 1,
                    None => {
                        self.counts.insert(lowered.clone(), 1);
                    }
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        // No host at all gives NULL, as array_agg over no rows does.
        if self.counts.is_empty() {
            let t = if self.ranked {
                entries_type()
            } else {
                hosts_type()
            };
            return ScalarValue::try_from(&t);
        }
        let ranked = self.ranked();
        if self.ranked {
            let k = self.top.unwrap_or(0).min(ranked.len());
            return entries_scalar(&ranked[..k]);
        }
        let mut hosts: Vec<&str> = ranked.into_iter().map(|(h, _)| h).collect();
        hosts.sort_unstable();
        let hosts: StringArray = hosts.into_iter().map(Some).collect();
        Ok(ScalarValue::List(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            OffsetBuffer::from_lengths([hosts.len()]),
            Arc::new(hosts),
            None,
        )?)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.counts.keys().map(|k| k.capacity() + 24).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let entries: Vec<(&str, i64)> = self.counts.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        let k = self.top.map(|k| k as i64);
        Ok(vec![entries_scalar(&entries)?, ScalarValue::Int64(k)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = as_list_array(&states[0])?;
        let ks = as_int64_array(&states[1])?;
        if self.top.is_none()
            && let Some(k) = ks.iter().flatten().next()
        {
            self.top = Some(k.max(0) as usize);
        }
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let entries = lists.value(row);
            let entries = as_struct_array(&entries)?;
            let hosts = as_string_array(entries.column(0))?;
            let counts = as_int64_array(entries.column(1))?;
            for i in 0..entries.len() {
                if hosts.is_valid(i) && counts.is_valid(i) {
                    *self.counts.entry(hosts.value(i).to_owned()).or_default() += counts.value(i);
                }
            }
        }
        Ok(())
    }
}

fn state_fields(args: &StateFieldsArgs) -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new(
            format_state_name(args.name, "hosts"),
            entries_type(),
            true,
        )),
        Arc::new(Field::new(
            format_state_name(args.name, "k"),
            DataType::Int64,
            true,
        )),
    ]
}

/// `top_hosts(url, k)`: the `k` most frequent hosts with their counts, most frequent first.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TopHosts {
    signature: Signature,
}

impl TopHosts {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(vec![DataType::Utf8, DataType::Int64], Volatility::Immutable),
                &["url", "k"],
            ),
        }
    }
}

impl Default for TopHosts {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for TopHosts {
    fn name(&self) -> &str {
        "top_hosts"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(entries_type())
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HostCounts {
            ranked: true,
            ..HostCounts::default()
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(&args))
    }
}

/// `distinct_hosts(url)`: every host seen, lower-cased, sorted.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DistinctHosts {
    signature: Signature,
}

impl DistinctHosts {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
                &["url"],
            ),
        }
    }
}

impl Default for DistinctHosts {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for DistinctHosts {
    fn name(&self) -> &str {
        "distinct_hosts"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(hosts_type())
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HostCounts::default()))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(&args))
    }
}
