//! `df-plugin-host sql`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParserBuilder;
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use df_plugin_host::statement::{self, PluginStatement};
use df_plugin_host::{ConflictPolicy, HostError};

use crate::Format;
use crate::output;
use crate::settings::Settings;
use crate::shell;

pub struct SqlArgs {
    pub settings: Settings,
    pub plugin_dirs: Vec<PathBuf>,
    pub execute: Option<String>,
    pub file: Option<PathBuf>,
    pub format: Format,
    pub policy: Option<ConflictPolicy>,
    /// The Ballista scheduler to run queries on (`df://host:port`).
    pub ballista: Option<String>,
}

/// A session with `information_schema` on and every compatible bundle registered. Refused
/// bundles are reported on stderr (and in `df_plugins()`); they never stop the shell. Wrong
/// settings (a bad config file, a key that cannot be read) do: they are an error.
pub fn session_with_plugins(
    settings: &Settings,
    dirs: &[PathBuf],
    policy: Option<ConflictPolicy>,
) -> Result<Arc<SessionContext>, HostError> {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = Arc::new(SessionContext::new_with_config(config));
    register_plugins(&ctx, settings, dirs, policy)?;
    Ok(ctx)
}

/// Loads the bundles of `dirs` (and the settings' search path) into `ctx`.
pub fn register_plugins(
    ctx: &Arc<SessionContext>,
    settings: &Settings,
    dirs: &[PathBuf],
    policy: Option<ConflictPolicy>,
) -> Result<(), HostError> {
    let mut builder = settings.builder()?;
    if let Some(policy) = policy {
        builder = builder.conflict_policy(policy);
    }
    for d in dirs {
        builder = builder.search_path(d);
    }
    let host = builder.build()?;
    // Later `LOAD PLUGIN`s use these settings even when no bundle is found now.
    host.attach(ctx)?;
    match host.load() {
        Ok(plugins) => {
            for r in plugins.refused() {
                eprintln!("df-plugin-host: {r}");
            }
            match plugins.register_into(ctx) {
                Ok(registration) => {
                    for r in &registration.refused {
                        eprintln!("df-plugin-host: {r}");
                    }
                }
                Err(e) => eprintln!("df-plugin-host: {e}"),
            }
        }
        Err(e @ HostError::NotFound { .. }) => eprintln!("df-plugin-host: warning: {e}"),
        Err(e) => eprintln!("df-plugin-host: {e}"),
    }
    Ok(())
}

/// Splits `sql` into statements and runs them in order, printing each result: plugin
/// statements (`LOAD PLUGIN`, ...) through the host, the rest parsed with the session's
/// dialect. Stops at the first error.
pub async fn run_statements(ctx: &Arc<SessionContext>, sql: &str, format: Format) -> Result<()> {
    for text in statement::split(sql) {
        if let Some(parsed) = PluginStatement::parse(text) {
            let batch = parsed
                .and_then(|s| statement::execute(ctx, &s))
                .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
            output::print(&batch.schema(), &[batch], format)?;
            continue;
        }
        let state = ctx.state();
        let dialect_name = state.config().options().sql_parser.dialect.to_string();
        let dialect = dialect_from_str(&dialect_name).ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(format!(
                "unsupported SQL dialect: {dialect_name}"
            ))
        })?;
        let statements = DFParserBuilder::new(text)
            .with_dialect(dialect.as_ref())
            .build()?
            .parse_statements()?;
        for statement in statements {
            let plan = ctx.state().statement_to_plan(statement).await?;
            let df = ctx.execute_logical_plan(plan).await?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            output::print(&schema, &batches, format)?;
        }
    }
    Ok(())
}

/// A session whose queries run on the Ballista cluster at `url`, with the bundles loaded.
async fn cluster_session_with_plugins(
    url: &str,
    settings: &Settings,
    dirs: &[PathBuf],
    policy: Option<ConflictPolicy>,
) -> Result<Arc<SessionContext>, HostError> {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = df_plugin_host::distributed::client::remote_session(url, config).await?;
    register_plugins(&ctx, settings, dirs, policy)?;
    Ok(ctx)
}

pub async fn run(args: SqlArgs) -> ExitCode {
    let ctx = match &args.ballista {
        Some(url) => {
            cluster_session_with_plugins(url, &args.settings, &args.plugin_dirs, args.policy).await
        }
        None => session_with_plugins(&args.settings, &args.plugin_dirs, args.policy),
    };
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("df-plugin-host: {e}");
            return ExitCode::from(2);
        }
    };
    let sql = match (&args.execute, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("df-plugin-host: cannot read {}: {e}", file.display());
                return ExitCode::from(2);
            }
        },
        (None, None) => return shell::run(&ctx, args.format).await,
    };
    match run_statements(&ctx, &sql, args.format).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}
