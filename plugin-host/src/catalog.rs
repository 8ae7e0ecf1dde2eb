//! The catalogue: `df_plugins()` and `df_plugin_objects()`, PostgreSQL's
//! `pg_available_extensions` for bundles.
//!
//! Each session's [`PluginRegistry`] keeps a [`BundleRecord`] for every bundle the session
//! considered — loaded, refused (with the step and reason), skipped by the config, or
//! deregistered later — and the two table functions read it at call time:
//!
//! ```sql
//! SELECT name, version, state, reason FROM df_plugins();
//! SELECT bundle, kind, name, signature FROM df_plugin_objects() WHERE kind = 'scalar_udf';
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, ListBuilder, StringBuilder, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::error::Refusal;
use crate::metadata::BundleMetadata;
use crate::register::PluginRegistry;
use crate::trust::TrustStatus;
use crate::trust::file::FileKey;

/// The table function names the host registers into every session it registers bundles into.
pub const DF_PLUGINS: &str = "df_plugins";
pub const DF_PLUGIN_OBJECTS: &str = "df_plugin_objects";

/// Where a considered bundle ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleState {
    /// Registered and usable.
    Loaded,
    /// Refused at some step; nothing of it was registered.
    Refused,
    /// Not loaded because the config lists it under `skip`.
    Skipped,
    /// Was loaded; its objects were deregistered (the library stays mapped).
    Deregistered,
    /// Was loaded; a newer version of the same bundle replaced it.
    Upgraded,
}

impl BundleState {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleState::Loaded => "loaded",
            BundleState::Refused => "refused",
            BundleState::Skipped => "skipped",
            BundleState::Deregistered => "deregistered",
            BundleState::Upgraded => "upgraded",
        }
    }
}

/// One row of `df_plugins()`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BundleRecord {
    /// The bundle's name, or the file name when its metadata could not be read.
    pub name: String,
    pub version: Option<String>,
    pub path: PathBuf,
    /// The SHA-256 of the file. Computed at load time by the `pinned` and `signed` levels;
    /// at `any` computed (through the digest cache) when the catalogue is read.
    pub sha256: Option<String>,
    /// How the file was trusted ("signed: signed by key …").
    pub trust: Option<String>,
    pub plugin_abi: Option<String>,
    pub datafusion_version: Option<String>,
    pub datafusion_ffi_major: Option<u32>,
    pub arrow_major: Option<u32>,
    pub sqlparser_version: Option<String>,
    pub capabilities: Vec<String>,
    pub state: BundleState,
    /// Why it is not loaded (refusals carry their step and fix).
    pub reason: Option<String>,
    /// Time spent in the load pipeline for this bundle (all steps, register included), µs.
    pub load_time_us: u64,
    /// Whether the bundle allocates through the host's allocator (plugin ABI 1.9), so that its
    /// batches' columns are handed over instead of held for the host; `None` until opened.
    pub shares_allocator: Option<bool>,
    #[serde(skip)]
    pub(crate) file_key: Option<FileKey>,
    #[serde(skip)]
    pub(crate) resolved: Option<PathBuf>,
}

impl BundleRecord {
    /// A record for a file, filled in as the pipeline learns more.
    pub(crate) fn new(path: &std::path::Path) -> Self {
        Self {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            version: None,
            path: path.to_path_buf(),
            sha256: None,
            trust: None,
            plugin_abi: None,
            datafusion_version: None,
            datafusion_ffi_major: None,
            arrow_major: None,
            sqlparser_version: None,
            capabilities: Vec::new(),
            state: BundleState::Refused,
            reason: None,
            load_time_us: 0,
            shares_allocator: None,
            file_key: None,
            resolved: None,
        }
    }

    pub(crate) fn set_trust(&mut self, status: &TrustStatus) {
        self.trust = Some(status.summary());
        self.sha256.clone_from(&status.sha256);
        self.file_key = status.key;
        self.resolved = Some(status.resolved.clone());
    }

    pub(crate) fn set_metadata(&mut self, meta: &BundleMetadata) {
        let info = &meta.info;
        self.name.clone_from(&info.bundle_name);
        self.version = Some(info.bundle_version.clone());
        self.plugin_abi = Some(format!("{}.{}", info.abi_major, info.abi_minor));
        self.datafusion_version = Some(info.datafusion_version.clone());
        self.datafusion_ffi_major = Some(info.datafusion_ffi_major);
        self.arrow_major = Some(info.arrow_major);
        self.sqlparser_version = Some(info.sqlparser_version.clone());
        self.capabilities = info
            .capabilities
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
    }

    pub(crate) fn refuse(&mut self, refusal: &Refusal) {
        self.state = BundleState::Refused;
        self.reason = Some(refusal.to_string());
    }
}

/// One row of `df_plugin_objects()`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObjectRecord {
    pub bundle: String,
    pub kind: String,
    pub name: String,
    pub signature: Option<String>,
    pub doc: Option<String>,
}

/// Registers the two catalogue functions into `ctx` (once; they read `registry` live).
pub(crate) fn install(ctx: &SessionContext, registry: &Arc<PluginRegistry>) {
    let state = ctx.state();
    if state.table_functions().contains_key(DF_PLUGINS) {
        return;
    }
    ctx.register_udtf(
        DF_PLUGINS,
        Arc::new(CatalogFunction {
            registry: Arc::downgrade(registry),
            kind: Kind::Plugins,
        }),
    );
    ctx.register_udtf(
        DF_PLUGIN_OBJECTS,
        Arc::new(CatalogFunction {
            registry: Arc::downgrade(registry),
            kind: Kind::Objects,
        }),
    );
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Plugins,
    Objects,
}

/// `df_plugins()` / `df_plugin_objects()`. Holds the registry weakly: the registry lives in
/// the session's config, and the session owns this function.
#[derive(Debug)]
struct CatalogFunction {
    registry: Weak<PluginRegistry>,
    kind: Kind,
}

impl TableFunctionImpl for CatalogFunction {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let name = match self.kind {
            Kind::Plugins => DF_PLUGINS,
            Kind::Objects => DF_PLUGIN_OBJECTS,
        };
        if !args.is_empty() {
            return Err(DataFusionError::Plan(format!(
                "{name}() takes no arguments"
            )));
        }
        let registry = self.registry.upgrade().ok_or_else(|| {
            DataFusionError::Execution(format!("{name}(): the session's plugin registry is gone"))
        })?;
        Ok(Arc::new(CatalogTable {
            registry,
            kind: self.kind,
        }))
    }
}

/// The catalogue as a table: built when scanned, so that the SHA-256 of bundles loaded at
/// trust level `any` is only computed when a query reads that column.
#[derive(Debug)]
struct CatalogTable {
    registry: Arc<PluginRegistry>,
    kind: Kind,
}

#[async_trait::async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        match self.kind {
            Kind::Plugins => plugins_schema(),
            Kind::Objects => objects_schema(),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = match self.kind {
            Kind::Plugins => {
                let sha256 = plugins_schema().index_of("sha256")?;
                let records = if projection.is_none_or(|p| p.contains(&sha256)) {
                    self.registry.records_with_hashes()
                } else {
                    self.registry.records()
                };
                plugins_batch(&records)?
            }
            Kind::Objects => objects_batch(&self.registry.objects())?,
        };
        MemTable::try_new(batch.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// The schema of `df_plugins()`.
pub fn plugins_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("name", false),
        utf8("version", true),
        utf8("path", false),
        utf8("sha256", true),
        utf8("trust", true),
        utf8("plugin_abi", true),
        utf8("datafusion_version", true),
        Field::new("datafusion_ffi_major", DataType::UInt32, true),
        Field::new("arrow_major", DataType::UInt32, true),
        utf8("sqlparser_version", true),
        Field::new(
            "capabilities",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
        utf8("state", false),
        utf8("reason", true),
        Field::new("load_time_us", DataType::UInt64, false),
        Field::new("shares_allocator", DataType::Boolean, true),
    ]))
}

fn plugins_batch(records: &[BundleRecord]) -> Result<RecordBatch> {
    let col = |f: fn(&BundleRecord) -> Option<&str>| strings(records.iter().map(f));
    let mut caps = ListBuilder::new(StringBuilder::new());
    for r in records {
        for c in &r.capabilities {
            caps.values().append_value(c);
        }
        caps.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        col(|r| Some(&r.name)),
        col(|r| r.version.as_deref()),
        strings(records.iter().map(|r| r.path.to_str())),
        col(|r| r.sha256.as_deref()),
        col(|r| r.trust.as_deref()),
        col(|r| r.plugin_abi.as_deref()),
        col(|r| r.datafusion_version.as_deref()),
        Arc::new(UInt32Array::from_iter(
            records.iter().map(|r| r.datafusion_ffi_major),
        )),
        Arc::new(UInt32Array::from_iter(
            records.iter().map(|r| r.arrow_major),
        )),
        col(|r| r.sqlparser_version.as_deref()),
        Arc::new(caps.finish()),
        col(|r| Some(r.state.as_str())),
        col(|r| r.reason.as_deref()),
        Arc::new(UInt64Array::from_iter_values(
            records.iter().map(|r| r.load_time_us),
        )),
        Arc::new(BooleanArray::from_iter(
            records.iter().map(|r| r.shares_allocator),
        )),
    ];
    Ok(RecordBatch::try_new(plugins_schema(), columns)?)
}

/// The schema of `df_plugin_objects()`.
pub fn objects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("bundle", false),
        utf8("kind", false),
        utf8("name", false),
        utf8("signature", true),
        utf8("doc", true),
    ]))
}

fn objects_batch(objects: &[ObjectRecord]) -> Result<RecordBatch> {
    let col = |f: fn(&ObjectRecord) -> Option<&str>| strings(objects.iter().map(f));
    let columns = vec![
        col(|o| Some(&o.bundle)),
        col(|o| Some(&o.kind)),
        col(|o| Some(&o.name)),
        col(|o| o.signature.as_deref()),
        col(|o| o.doc.as_deref()),
    ];
    Ok(RecordBatch::try_new(objects_schema(), columns)?)
}
