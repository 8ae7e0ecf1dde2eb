//! `df-plugin-host`: inspect bundles, and run SQL with them loaded.

mod cluster;
mod inspect;
mod keys;
mod output;
mod settings;
mod shell;
mod sql;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "df-plugin-host",
    version,
    about = "Load and inspect DataFusion plugin bundles"
)]
struct Cli {
    /// The host config file (default: $DF_PLUGIN_HOST_CONFIG, else
    /// ~/.config/df-plugin-host/config.toml, else /etc/df-plugin-host.toml, if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The trust level: any, pinned or signed. Can tighten the config's level, not lower it.
    #[arg(long, global = true, value_name = "LEVEL")]
    trust: Option<String>,
    /// A public key file whose signatures are trusted (repeatable; adds to the config's).
    #[arg(long = "trusted-key", global = true, value_name = "FILE")]
    trusted_keys: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a bundle's metadata and whether this host can load it, without running its code.
    Inspect {
        /// Bundle files, or directories of bundles.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also open each compatible bundle and check its exports against its manifest
        /// (this runs the bundle's code).
        #[arg(long)]
        load: bool,
    },
    /// Run SQL with every compatible bundle loaded.
    Sql {
        /// A plugin directory or bundle file (repeatable). Without one, `DF_PLUGIN_PATH`, then
        /// the bundles next to this executable.
        #[arg(long = "plugin-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        /// SQL to run: one or more `;`-separated statements.
        #[arg(
            short = 'e',
            long = "execute",
            value_name = "SQL",
            conflicts_with = "file"
        )]
        execute: Option<String>,
        /// A file of `;`-separated statements to run.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// What to do when two bundles (or a bundle and a built-in) export the same name
        /// (default: the config's `on_conflict`, else error).
        #[arg(long, value_enum)]
        on_conflict: Option<Conflict>,
        /// Run queries on the Ballista cluster whose scheduler is at URL (`df://host:port`).
        /// The scheduler and every executor must load the same bundles (see `scheduler` and
        /// `executor`).
        #[arg(long, value_name = "URL")]
        ballista: Option<String>,
    },
    /// Run a Ballista scheduler that plans queries with the bundles of its plugin directory.
    Scheduler {
        /// A plugin directory or bundle file (repeatable); every node needs the same bundles.
        #[arg(long = "plugin-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// The gRPC port clients and executors connect to.
        #[arg(long, default_value_t = 50050)]
        port: u16,
        /// The host name others reach it by (default: --bind-host).
        #[arg(long)]
        external_host: Option<String>,
    },
    /// Run a Ballista executor that runs plugin functions and scans with the bundles of its
    /// plugin directory.
    Executor {
        /// A plugin directory or bundle file (repeatable); every node needs the same bundles.
        #[arg(long = "plugin-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        /// The scheduler to join, as HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// The Arrow Flight port (shuffle data).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// The gRPC port (tasks).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Where shuffle files go (default: a temporary directory).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Concurrent task slots (0: one per core).
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// The host name others reach it by (default: --bind-host).
        #[arg(long)]
        external_host: Option<String>,
    },
    /// Run the conformance kit on bundle files: metadata, truthfulness, behaviour of every
    /// object, injected panics, and the bundle's own .slt files (this runs the bundle's code).
    /// Exit code 0 only if every check passed.
    Verify {
        /// Bundle files.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// A directory of .slt files to run with the bundle loaded (repeatable); default: the
        /// manifest's `slt` directory.
        #[arg(long, value_name = "DIR")]
        slt: Vec<PathBuf>,
        /// `${KEY}` substitution for .slt files (repeatable).
        #[arg(long = "slt-var", value_name = "KEY=VALUE")]
        slt_vars: Vec<String>,
        /// An option handed to the bundle's init (repeatable).
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pin the bundles in a directory: write DIR/df-plugins.lock with their SHA-256, for
    /// `trust = "pinned"`.
    Lock {
        /// The plugin directory.
        dir: PathBuf,
    },
    /// Make an ed25519 key pair for signing bundles: FILE (secret, 0600) and FILE.pub.
    Keygen {
        /// Where to write the secret key (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign bundle files: writes <bundle>.sig next to each, for `trust = "signed"`.
    Sign {
        /// The secret key written by `keygen`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Bundle files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Conflict {
    Error,
    Skip,
    Replace,
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `f` on a new multi-threaded tokio runtime.
fn block_on<F: std::future::Future<Output = ExitCode>>(f: impl FnOnce() -> F) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eprintln!("df-plugin-host: cannot start the tokio runtime: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let settings = settings::Settings {
        config: cli.config,
        trust: cli.trust,
        trusted_keys: cli.trusted_keys,
    };
    match cli.command {
        Command::Inspect { paths, json, load } => inspect::run(&settings, &paths, json, load),
        Command::Lock { dir } => keys::lock(&dir),
        Command::Verify {
            bundles,
            slt,
            slt_vars,
            options,
            json,
        } => block_on(|| {
            verify::run(verify::VerifyArgs {
                bundles,
                slt,
                vars: slt_vars,
                options,
                json,
            })
        }),
        Command::Keygen { out } => keys::keygen(&out),
        Command::Sign { key, files } => keys::sign(&key, &files),
        Command::Sql {
            plugin_dirs,
            execute,
            file,
            format,
            on_conflict,
            ballista,
        } => {
            let policy = on_conflict.map(|c| match c {
                Conflict::Error => df_plugin_host::ConflictPolicy::Error,
                Conflict::Skip => df_plugin_host::ConflictPolicy::Skip,
                Conflict::Replace => df_plugin_host::ConflictPolicy::Replace,
            });
            block_on(|| {
                sql::run(sql::SqlArgs {
                    settings,
                    plugin_dirs,
                    execute,
                    file,
                    format,
                    policy,
                    ballista,
                })
            })
        }
        Command::Scheduler {
            plugin_dirs,
            bind_host,
            port,
            external_host,
        } => {
            let opts = cluster::SchedulerOptions {
                bind_host,
                port,
                external_host,
            };
            block_on(|| cluster::scheduler(settings, plugin_dirs, opts))
        }
        Command::Executor {
            plugin_dirs,
            scheduler,
            bind_host,
            port,
            grpc_port,
            work_dir,
            concurrent_tasks,
            external_host,
        } => {
            let Some((scheduler_host, scheduler_port)) = cluster::host_port(&scheduler) else {
                eprintln!("df-plugin-host: --scheduler {scheduler}: expected HOST:PORT");
                return ExitCode::from(2);
            };
            let opts = cluster::ExecutorOptions {
                bind_host,
                port,
                grpc_port,
                scheduler_host,
                scheduler_port,
                work_dir,
                vcores: concurrent_tasks,
                external_host,
            };
            block_on(|| cluster::executor(settings, plugin_dirs, opts))
        }
    }
}
