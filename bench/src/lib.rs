//! What crossing the plugin ABI costs, measured against native code in the same run.
//!
//! ```text
//! cargo bench --workspace --bench abi                 # the whole table (release)
//! cargo bench --workspace --bench abi -- --only scalar --reps 9 --json out.json
//! ```
//!
//! Every execution workload runs the same SQL in two sessions of one process: one with the
//! project's functions and providers registered natively (the bundles' code crates linked in,
//! [`df_plugin_web::functions::register_natively`] and friends) and one with the same code
//! loaded from the release bundles through the host. The two alternate run by run (ABAB, then
//! BABA), so drift and thermal effects hit both; the table shows medians and the ratio
//! native time / bundle time (1.0 = no cost; the targets are lower bounds on it).
//!
//! Planning is compared between a session without plugins and one with the bundles loaded;
//! loading is measured in fresh processes ([`load`]); sizes are the release files, stripped.

pub mod crossing;
pub mod data;
pub mod delta_table;
pub mod instructions;
pub mod load;
pub mod machine;
pub mod measure;
pub mod planning;
pub mod profile;
pub mod report;
pub mod sessions;
pub mod sizes;
pub mod workloads;

use std::path::{Path, PathBuf};

use report::Report;

/// How big and how often. [`Config::full`] is the published table; [`Config::smoke`] is what
/// CI runs to prove the harness works (numbers meaningless, every code path taken).
#[derive(Debug, Clone)]
pub struct Config {
    /// The workspace root (where the bundles are built).
    pub workspace: PathBuf,
    /// Rows of the generated in-memory table (scalar, aggregate, window) and of the table
    /// function.
    pub rows: usize,
    /// Distinct groups of the many-groups aggregate.
    pub many_groups: usize,
    /// Window partitions.
    pub window_partitions: usize,
    /// Rows of the generated Delta table.
    pub delta_rows: usize,
    /// Measured runs per workload and side (after one warm-up run each): at least this many.
    pub reps: usize,
    /// A query workload whose `reps` rounds took less than this keeps running rounds until
    /// its rounds have taken this long, up to [`MAX_ROUNDS`]: a 25 ms query's score from 11
    /// rounds moved by ±5 % between runs on the 2-core machine, from 101 rounds by about 1 %
    /// (an A/A run scored 1.000, 1.006 and 0.999). Zero for exactly `reps` rounds.
    pub min_seconds: f64,
    /// Planning samples (each plans the query [`planning::BATCH`] times).
    pub planning_samples: usize,
    /// Fresh-process load runs (warm); the first, cold run comes on top.
    pub load_runs: usize,
    /// The executable to start as a load child (`<exe> child ...`); `None` measures loading
    /// in this process instead, once (the smoke run: a test binary cannot be its own child).
    pub load_child: Option<PathBuf>,
    /// Only the groups whose name contains one of these (all when empty).
    pub only: Vec<String>,
    /// Where generated data (the Delta table) is kept between runs.
    pub data_dir: PathBuf,
    /// The target selection this process was built with, which the bundles are built with
    /// too (see [`df_plugin_conformance::bundles::built_with`]).
    pub cargo_targets: &'static [&'static str],
    /// Run only this side of each query workload (0 native, 1 bundle; see
    /// [`workloads::SIDES`]); rows then carry that side's time and no ratio. Not the way to
    /// profile a gap: one process's times differ from the next one's by more than the gaps
    /// (see [`profile`] for splitting an interleaved run instead).
    pub side: Option<usize>,
    /// Load the bundles as if built for plugin ABI `1.N`: copies whose records say that minor,
    /// so the host takes the paths of that minor (datafusion-ffi's where a later minor added a
    /// lean one). Measures what each lean path buys, with the same code on both sides.
    pub abi_minor: Option<u16>,
    /// Rows per batch in every session (DataFusion's default, 8192, when `None`). Costs that
    /// come per batch grow as it shrinks and costs that come per row do not: running a
    /// workload at two sizes tells the two apart.
    pub batch_size: Option<usize>,
    /// Print each selected query workload's physical plan on both sides before measuring it,
    /// to check that the two sides run the same plan around the crossing.
    pub explain: bool,
    /// An A/A run: register the objects natively in the "bundle" session as well, so that
    /// both sides run the same code and the scores show the noise of the harness on this
    /// machine, the floor under which a ratio says nothing about the ABI.
    pub a_a: bool,
    /// Write every query run's window here (`--timeline FILE`), so that a `perf record` of the
    /// interleaved run can be split by side ([`profile`]).
    pub timeline: Option<PathBuf>,
    /// Running under callgrind for the `instructions` subcommand (`--callgrind`): turn the
    /// instrumentation on when the query workloads start and dump a profile per query run
    /// ([`instructions`]).
    pub callgrind: bool,
}

/// The most rounds a query workload runs to fill [`Config::min_seconds`].
pub const MAX_ROUNDS: usize = 101;

impl Config {
    /// The sizes the issue asks for: 10M rows, 1M groups, 1K partitions, a 5M-row Delta table.
    pub fn full(workspace: &Path) -> Self {
        Self {
            workspace: workspace.to_path_buf(),
            rows: 10_000_000,
            many_groups: 1_000_000,
            window_partitions: 1_000,
            delta_rows: 5_000_000,
            reps: 11,
            min_seconds: 5.0,
            planning_samples: 41,
            load_runs: 15,
            load_child: None,
            only: Vec::new(),
            data_dir: workspace.join("target").join("bench-data"),
            cargo_targets: &["--lib", "--bins", "--bench", "abi"],
            side: None,
            abi_minor: None,
            batch_size: None,
            explain: false,
            a_a: false,
            timeline: None,
            callgrind: false,
        }
    }

    /// Tiny sizes, one repetition: proves every workload still runs.
    pub fn smoke(workspace: &Path, data_dir: &Path) -> Self {
        Self {
            rows: 20_000,
            many_groups: 2_000,
            window_partitions: 10,
            delta_rows: 20_000,
            reps: 1,
            min_seconds: 0.0,
            planning_samples: 1,
            load_runs: 1,
            data_dir: data_dir.to_path_buf(),
            cargo_targets: df_plugin_conformance::bundles::TEST_TARGETS,
            ..Self::full(workspace)
        }
    }

    /// Whether `what` is selected: a group, or a query workload's name (so that `--only
    /// 'time_bucket(ts, w)'` runs that query alone, e.g. under a profiler).
    pub fn selected(&self, what: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| what.contains(o.as_str()))
    }
}

/// Runs every selected workload and returns the report.
pub fn run(config: &Config) -> Report {
    let bundles =
        df_plugin_conformance::bundles::built_with(&config.workspace, config.cargo_targets);
    let mut report = Report::new(machine::Machine::describe(), config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sessions = sessions::Sessions::new(bundles, config, &runtime);
    let mut timeline = profile::Timeline::open(config.timeline.as_deref());
    if config.callgrind {
        instructions::start();
    }
    for workload in workloads::all(config) {
        if config.selected(workload.group) || config.selected(workload.name) {
            eprintln!("{} / {}", workload.group, workload.name);
            if config.explain {
                eprintln!("{}", workload.explain(&sessions, &runtime));
            }
            report.push(workload.measure(&sessions, config, &runtime, &mut timeline));
        }
    }
    if config.selected("planning") {
        eprintln!("planning");
        report.extend(planning::measure(
            &sessions,
            config.planning_samples,
            &runtime,
        ));
    }
    if config.selected("load") {
        eprintln!("load");
        report.extend(load::measure(bundles, config));
    }
    if config.selected("size") {
        report.extend(sizes::measure(bundles));
    }
    report
}
