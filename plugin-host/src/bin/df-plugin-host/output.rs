//! Printing results as a table, CSV or JSON.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
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
                writer.write(b)?;
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
