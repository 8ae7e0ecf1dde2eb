//! Printing results as a table, CSV or JSON.

use std::io::Write;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;
use datafusion::error::{DataFusionError, Result};

use crate::Format;

pub fn print(schema: &SchemaRef, batches: &[RecordBatch], format: Format) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e: std::io::Error| DataFusionError::External(Box::new(e));
    match format {
        Format::Table => {
            if schema.fields().is_empty() {
                return Ok(());
            }
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(
                out,
                "{}",
                pretty_format_batches_with_schema(schema.clone(), batches)?
            )
            .map_err(io)?;
            writeln!(out, "{rows} row(s)").map_err(io)?;
        }
        Format::Csv => {
            if schema.fields().is_empty() {
                return Ok(());
            }
            if batches.iter().all(|b| b.num_rows() == 0) {
                let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "{}", header.join(",")).map_err(io)?;
                return Ok(());
            }
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for b in batches {
                writer.write(&nested_as_text(b)?)?;
            }
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
            let bytes = writer.into_inner();
            if bytes.is_empty() {
                writeln!(out, "[]").map_err(io)?;
            } else {
                out.write_all(&bytes).map_err(io)?;
                writeln!(out).map_err(io)?;
            }
        }
    }
    Ok(())
}

/// CSV has no nested types: lists, structs and maps are written as their display text (the same
/// text the table format shows), e.g. `[a, b]`.
fn nested_as_text(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(Arc::clone(field));
            columns.push(Arc::clone(column));
            continue;
        }
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        let mut text = StringBuilder::with_capacity(column.len(), 16 * column.len());
        for i in 0..column.len() {
            if column.is_null(i) {
                text.append_null();
            } else {
                text.append_value(formatter.value(i).to_string());
            }
        }
        fields.push(Arc::new(Field::new(field.name(), DataType::Utf8, true)));
        columns.push(Arc::new(text.finish()));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
