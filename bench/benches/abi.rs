//! The benchmark table: `cargo bench --workspace --bench abi [-- OPTIONS]`.
//!
//! Options: `--only GROUP` (repeatable: scalar, aggregate, window, table function, delta,
//! planning, load, size; or part of a query workload's name), `--reps N` (rounds at least),
//! `--min-seconds S` (a query keeps running rounds until they have taken S seconds, up to
//! `MAX_ROUNDS`; 5 by default, 0 for exactly `--reps`), `--rows N`, `--side
//! native|bundle` (run one side of the query workloads only; its times vary between processes
//! by more than the gaps, so profile an interleaved run with `--timeline` instead), `--abi-minor
//! N` (load the bundles as if built for plugin ABI 1.N, to measure what a later minor's lean
//! path buys), `--batch-size N` (rows per batch in every session and in the generated table:
//! per-batch costs grow as it shrinks, per-row costs do not), `--explain` (print each workload's
//! physical plan on both sides first), `--a-a` (the native objects on both sides: the scores
//! are then the harness's noise on this machine), `--timeline FILE` (write each query run's
//! time window, to split a `perf record` of the run by side with `split-perf`; see
//! `df_plugin_bench::profile`), `--json FILE` (default `target/bench-abi.json`), `--markdown
//! FILE` (default `target/bench-abi.md`). Relative output paths are taken from the workspace
//! root (cargo runs a bench in `bench/`).
//!
//! Builds the release bundles first (`cargo build --release --workspace --lib --bins --bench abi`,
//! the selection this binary was built with, so nothing but the cdylibs is linked), then prints the
//! markdown table and writes it and the JSON. Exits with 0 even when a target is missed: the
//! misses are listed, a benchmark is not a test.
//!
//! `<bench binary> instructions [OPTIONS]` runs the query workloads under callgrind and prints
//! the instructions each side executes per query (see `df_plugin_bench::instructions`): a count
//! that does not vary with the machine's load, as the times do.
//!
//! `<bench binary> crossing [ROWS]` times one batch's crossing alone, in a loop, both ways a
//! stream can send it, then what it adds when another thread drops the batches, as in a query
//! (see `df_plugin_bench::crossing`): costs per batch too small for the query rows' noise to
//! show.

use std::path::{Path, PathBuf};

use df_plugin_bench::{Config, crossing, instructions, load, profile, run, workloads};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(load::CHILD) {
        load::child(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some(profile::SPLIT) {
        split_perf(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some(crossing::CROSSING) {
        let rows = match args.get(1) {
            None => 8192,
            Some(n) => n
                .parse()
                .unwrap_or_else(|_| usage(&format!("crossing: not a number of rows: {n}"))),
        };
        print!("{}", crossing::table(rows));
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    if args.first().map(String::as_str) == Some(instructions::INSTRUCTIONS) {
        let exe = std::env::current_exe().expect("own path");
        match instructions::measure(&exe, workspace, &args[1..]) {
            Ok(table) => print!("{table}"),
            Err(e) => usage(&e),
        }
        return;
    }
    let mut config = Config::full(workspace);
    config.load_child = Some(std::env::current_exe().expect("own path"));
    let mut json = workspace.join("target").join("bench-abi.json");
    let mut markdown = workspace.join("target").join("bench-abi.md");
    let mut it = args.iter().filter(|a| *a != "--bench");
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--only" => config.only.push(value()),
            "--reps" => config.reps = number(value()),
            "--min-seconds" => {
                let seconds = value();
                config.min_seconds = seconds
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .unwrap_or_else(|| usage(&format!("--min-seconds: seconds, not {seconds}")));
            }
            "--rows" => config.rows = number(value()),
            "--side" => {
                let side = value();
                config.side = Some(
                    workloads::SIDES
                        .iter()
                        .position(|s| *s == side)
                        .unwrap_or_else(|| usage(&format!("--side: native or bundle, not {side}"))),
                );
            }
            "--abi-minor" => {
                let minor = value();
                config.abi_minor = Some(minor.parse().unwrap_or_else(|_| {
                    usage(&format!("--abi-minor: a plugin ABI minor, not {minor}"))
                }));
            }
            "--explain" => config.explain = true,
            // Under callgrind a run takes a hundred times longer: exactly `--reps` rounds.
            instructions::CHILD_FLAG => {
                config.callgrind = true;
                config.min_seconds = 0.0;
            }
            "--a-a" => config.a_a = true,
            "--batch-size" => match number(value()) {
                0 => usage("--batch-size: at least one row per batch"),
                rows => config.batch_size = Some(rows),
            },
            "--timeline" => config.timeline = Some(output(workspace, value())),
            "--json" => json = output(workspace, value()),
            "--markdown" => markdown = output(workspace, value()),
            other => usage(&format!("unknown option {other}")),
        }
    }
    let report = run(&config);
    let table = report.to_markdown();
    println!("\n{table}");
    for (path, text) in [(&markdown, table.clone()), (&json, report.to_json())] {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    println!("written to {} and {}", markdown.display(), json.display());
    let missed = report.missed();
    if !missed.is_empty() {
        println!("\n{} row(s) miss their target:", missed.len());
        for r in missed {
            let close = match r.too_close_to_call() {
                true => " (the target is inside its score's confidence interval)",
                false => "",
            };
            println!("- {} / {}{close}", r.group, r.name);
        }
    }
}

/// An output file's path: a relative one is taken from the workspace root, because cargo runs
/// a bench in its package's directory (`bench/`), not where it was started. Its directory must
/// exist: a run takes minutes, so the mistake is refused before it.
fn output(workspace: &Path, path: String) -> PathBuf {
    let path = workspace.join(path);
    match path.parent() {
        Some(dir) if dir.is_dir() => path,
        _ => usage(&format!(
            "{}: no such directory to write into",
            path.display()
        )),
    }
}

/// `split-perf TIMELINE [TOP]`: a `perf script` on standard input, split by the run windows of
/// a `--timeline` file (see [`profile`]).
fn split_perf(args: &[String]) {
    let Some(path) = args.first() else {
        usage("split-perf needs the timeline a --timeline run wrote");
    };
    let top = match args.get(1) {
        None => 40,
        Some(n) => n
            .parse()
            .unwrap_or_else(|_| usage(&format!("split-perf: not a number of rows: {n}"))),
    };
    let timeline = std::fs::read_to_string(path)
        .unwrap_or_else(|e| usage(&format!("cannot read the timeline {path}: {e}")));
    match profile::split(&timeline, std::io::stdin().lock(), top) {
        Ok(table) => print!("{table}"),
        Err(e) => usage(&e),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: cargo bench --workspace --bench abi [-- --only GROUP]... [--reps N] [--min-seconds S] [--rows N] [--side native|bundle] [--abi-minor N] [--batch-size N] [--explain] [--a-a] [--timeline FILE] [--json FILE] [--markdown FILE]\n       <bench binary> split-perf TIMELINE [TOP] < perf-script-output\n       <bench binary> crossing [ROWS]\n       <bench binary> instructions [--cache] [--only GROUP]... [--rows N] [--reps N] [--batch-size N] [--abi-minor N] [--a-a]"
    );
    std::process::exit(2)
}
