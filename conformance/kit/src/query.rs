//! Running a statement and reading its result as text, for assertions in tests.

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// Runs one statement and returns its result as CSV text with a header line.
pub async fn query_csv(ctx: &SessionContext, sql: &str) -> Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    {
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        for b in &batches {
            w.write(b)?;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
