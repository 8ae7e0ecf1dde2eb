//! Running sqllogictest files against a DataFusion session.
//!
//! Values are rendered the way Arrow displays them, with two conventions from DataFusion's own
//! runner: `NULL` for nulls and `(empty)` for empty strings. Column types: `I` for integers,
//! `R` for floating point and decimals, `T` for everything else.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

/// An error from the session, as sqllogictest sees it (matched by `statement error <regex>`).
#[derive(Debug)]
pub struct SltError(pub String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

/// One sqllogictest connection: a shared session.
pub struct SessionDb {
    ctx: Arc<SessionContext>,
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

/// Rows as sqllogictest text (`NULL`, `(empty)`), for comparing results.
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SltError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, f)| {
                    if column.is_null(row) {
                        "NULL".to_owned()
                    } else {
                        let text = f.value(row).to_string();
                        if text.is_empty() {
                            "(empty)".to_owned()
                        } else {
                            text
                        }
                    }
                })
                .collect();
            out.push(values);
        }
    }
    Ok(out)
}

#[async_trait]
impl AsyncDB for SessionDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let err = |e: datafusion::error::DataFusionError| SltError(e.to_string());
        let df = self.ctx.sql(sql).await.map_err(err)?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await.map_err(err)?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: schema
                .fields()
                .iter()
                .map(|f| column_type(f.data_type()))
                .collect(),
            rows: rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion"
    }
}

/// Runs one `.slt` file against `ctx`; the error is sqllogictest's report of the first failure.
pub async fn run_file(ctx: Arc<SessionContext>, path: &Path) -> Result<(), String> {
    run_file_with_vars(ctx, path, &[]).await
}

/// Like [`run_file`], with variables for files that say `control substitution on` and use
/// `${NAME}` (e.g. the root of a copy of test data the file reads and writes).
pub async fn run_file_with_vars(
    ctx: Arc<SessionContext>,
    path: &Path,
    vars: &[(&str, &str)],
) -> Result<(), String> {
    let mut runner = Runner::new(move || {
        let ctx = Arc::clone(&ctx);
        async move { Ok::<_, SltError>(SessionDb { ctx }) }
    });
    for (key, value) in vars {
        runner.set_var((*key).to_string(), (*value).to_string());
    }
    runner
        .run_file_async(path)
        .await
        .map_err(|e| format!("{}: {}", path.display(), e.display(true)))
}

/// Copies the directory tree `src` to `dst` (test data that `.slt` files write to, such as
/// the Delta tables, is copied first so the checkout stays clean).
pub fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// The `.slt` files in `dir`, sorted.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    Ok(files)
}
