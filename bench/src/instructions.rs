//! Instructions per query, native and from the bundles: `<abi binary> instructions [OPTIONS]`.
//!
//! The wall clock varies between rounds (on some of this workplace's machines by more than the
//! gaps that are left: an A/A run scored 0.93–1.06 there), and the machines have no hardware
//! counters (`perf stat -e instructions` is "not supported"). Valgrind's callgrind counts the
//! instructions a run executes instead: the same binary on the same data executes the same
//! instructions whatever else the machine is doing, so a difference of a fraction of a percent
//! between the sides is work one side did and the other did not. What costs time without
//! instructions (cache misses, waiting) it does not count; with `--cache` it simulates the
//! caches too and the table adds each side's first-level instruction cache misses.
//!
//! The subcommand runs this binary under `valgrind --tool=callgrind --instr-atstart=no` with
//! `--callgrind`: setup runs uninstrumented, the query workloads instrumented, and each query
//! run is bracketed by two dumps (callgrind's `DUMP_STATS_AT` client request; a dump holds
//! what was executed since the one before, on every thread), the second named after the run
//! ([`RunLabel`]). It then reads the dumps back and prints, per query workload, each side's
//! median, their ratio and the difference, also per batch returned. The dumps stay in
//! `target/bench-callgrind/`: give one to `callgrind_annotate` to see where a side's
//! instructions went.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::median;
use crate::workloads::SIDES;

/// The subcommand of the bench binary (`<abi> instructions [OPTIONS]`).
pub const INSTRUCTIONS: &str = "instructions";

/// The bench option that makes a run dump a callgrind profile around each query run.
pub const CHILD_FLAG: &str = "--callgrind";

/// The subcommand's own option: simulate the caches too, and show each side's first-level
/// instruction cache misses.
pub const CACHE_FLAG: &str = "--cache";

/// What the subcommand runs when not told otherwise: the query workloads at 1M rows (10M
/// rows of the window workload take minutes under callgrind), three rounds after the warm-up.
const DEFAULTS: [(&str, &[&str]); 3] = [
    (
        "--only",
        &["scalar", "aggregate", "window", "table function", "delta"],
    ),
    ("--rows", &["1000000"]),
    ("--reps", &["3"]),
];

/// The label of the dump that opens a run: what it holds (the harness between two runs) is
/// not counted.
const OPENING: &str = "between runs";

/// Callgrind's client requests (valgrind/callgrind.h: `VG_USERREQ_TOOL_BASE('C','T')` + n).
const TOOL_BASE: usize = ((b'C' as usize) << 24) | ((b'T' as usize) << 16);
const DUMP_STATS_AT: usize = TOOL_BASE + 3;
const START_INSTRUMENTATION: usize = TOOL_BASE + 4;

/// Sends a client request to valgrind; outside valgrind the instructions do nothing.
#[cfg(target_arch = "x86_64")]
fn client_request(request: usize, arg: usize) {
    let args: [usize; 6] = [request, arg, 0, 0, 0, 0];
    // SAFETY: valgrind's "special instruction" sequence (valgrind.h, amd64): four rotations of
    // rdi, 128 bits in all, leave it unchanged, and rbx is exchanged with itself, so outside
    // valgrind nothing changes but the flags, which `asm!` assumes clobbered. Under valgrind
    // the core reads the request from `args`, which outlives the sequence, and writes its
    // answer to rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0usize => _,
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: usize, _arg: usize) {}

/// Turns callgrind's instrumentation on (the subcommand starts it off, so that setup runs at
/// valgrind's uninstrumented speed).
pub fn start() {
    client_request(START_INSTRUMENTATION, 0);
}

/// Dumps what was executed since the last dump, under `label`.
fn dump(label: &str) {
    // A label comes from this crate's workload names, which hold no NUL.
    if let Ok(label) = CString::new(label) {
        client_request(DUMP_STATS_AT, label.as_ptr() as usize);
    }
}

/// One query run: its workload, side, round (0 is the warm-up) and the batches it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLabel {
    pub workload: String,
    pub side: usize,
    pub round: usize,
    pub batches: usize,
}

impl RunLabel {
    fn format(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.workload, self.side, self.round, self.batches
        )
    }

    fn parse(label: &str) -> Option<Self> {
        let mut parts = label.split('\t');
        let workload = parts.next()?.to_owned();
        let side = parts.next()?.parse().ok()?;
        let round = parts.next()?.parse().ok()?;
        let batches = parts.next()?.parse().ok()?;
        Some(Self {
            workload,
            side,
            round,
            batches,
        })
    }
}

/// Runs `run` between two dumps (with `--callgrind`; plainly otherwise). `run` returns its
/// result and the batches it returned, which name its dump with `label`'s other fields.
pub fn counted<T>(on: bool, label: RunLabel, run: impl FnOnce() -> (T, usize)) -> T {
    if !on {
        return run().0;
    }
    dump(OPENING);
    let (out, batches) = run();
    dump(&RunLabel { batches, ..label }.format());
    out
}

/// What one run executed: instructions, and first-level instruction cache misses when the
/// cache was simulated (`--cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dump {
    instructions: u64,
    i1_misses: Option<u64>,
}

/// A dump's run and what it holds; `None` for the dumps that open a run or end the process,
/// or a file that is not a callgrind dump.
fn read_dump(text: &str) -> Option<(RunLabel, Dump)> {
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix));
    let run = RunLabel::parse(line("desc: Trigger: Client Request: ")?)?;
    let events: Vec<&str> = line("events: ")?.split_whitespace().collect();
    let totals: Vec<u64> = line("totals: ")
        .or_else(|| line("summary: "))?
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let event = |name: &str| {
        let at = events.iter().position(|e| *e == name)?;
        totals.get(at).copied()
    };
    let dump = Dump {
        instructions: event("Ir")?,
        i1_misses: event("I1mr"),
    };
    Some((run, dump))
}

/// One workload's counts: instructions of every measured round, per side, and batches per run.
#[derive(Debug, Default)]
struct Counts {
    workload: String,
    by_side: [Vec<Dump>; 2],
    batches: usize,
}

/// The markdown table of the dumps' counts, workloads in the order they ran.
fn table(dumps: Vec<(RunLabel, Dump)>) -> String {
    let mut counts: Vec<Counts> = Vec::new();
    let cache = dumps.iter().any(|(_, d)| d.i1_misses.is_some());
    for (run, dump) in dumps {
        if run.round == 0 || run.side >= SIDES.len() {
            continue;
        }
        let at = match counts.iter().position(|c| c.workload == run.workload) {
            Some(at) => at,
            None => {
                counts.push(Counts {
                    workload: run.workload.clone(),
                    ..Counts::default()
                });
                counts.len() - 1
            }
        };
        counts[at].by_side[run.side].push(dump);
        counts[at].batches = counts[at].batches.max(run.batches);
    }
    let mut out = String::from(
        "| workload | native | bundle | native / bundle | bundle − native | batches returned | per batch | rounds |",
    );
    out.push_str(if cache {
        " I1 misses: native | bundle |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    } else {
        "\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    });
    for c in &counts {
        let side = |s: usize, of: fn(&Dump) -> u64| median(c.by_side[s].iter().map(of).collect());
        let [n, b] = [0, 1].map(|s| side(s, |d| d.instructions));
        if n == 0 || b == 0 {
            continue;
        }
        let more = b as f64 - n as f64;
        out.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:+.3} M | {} | {:+.0} | {} |",
            c.workload,
            millions(n),
            millions(b),
            n as f64 / b as f64,
            more / 1e6,
            c.batches,
            more / c.batches.max(1) as f64,
            c.by_side[0].len().min(c.by_side[1].len()),
        ));
        if cache {
            let [n, b] = [0, 1].map(|s| side(s, |d| d.i1_misses.unwrap_or(0)));
            out.push_str(&format!(" {n} | {b} |"));
        }
        out.push('\n');
    }
    out
}

/// Instructions in millions, to three decimals.
fn millions(n: u64) -> String {
    format!("{:.3} M", n as f64 / 1e6)
}

/// `instructions [OPTIONS]`: runs `exe` (this bench binary) under callgrind with `options`
/// (the bench's own, [`DEFAULTS`] where not given) and returns the table of its dumps.
pub fn measure(exe: &Path, workspace: &Path, options: &[String]) -> Result<String, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err(
            "instruction counts need valgrind's client requests, wired for x86_64 only".into(),
        );
    }
    let version = Command::new("valgrind").arg("--version").output();
    if !version.is_ok_and(|v| v.status.success()) {
        return Err("valgrind is not installed: apt-get install valgrind".into());
    }
    let dir = workspace.join("target").join("bench-callgrind");
    // Dumps of an earlier run would be read as this run's.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    // `--cache` is ours: callgrind simulates the caches (about twice as slow).
    let cache = options.iter().any(|o| o == CACHE_FLAG);
    let options: Vec<String> = options
        .iter()
        .filter(|o| *o != CACHE_FLAG)
        .cloned()
        .collect();
    let mut args: Vec<String> = vec![
        "--tool=callgrind".into(),
        format!("--cache-sim={}", if cache { "yes" } else { "no" }),
        "--instr-atstart=no".into(),
        "--dump-line=no".into(),
        format!(
            "--callgrind-out-file={}",
            dir.join("callgrind.out").display()
        ),
        format!("--log-file={}", dir.join("valgrind.log").display()),
    ];
    args.push(exe.display().to_string());
    args.extend(options.iter().cloned());
    for (flag, values) in DEFAULTS {
        if !options.iter().any(|o| o == flag) {
            for v in values {
                args.extend([flag.to_owned(), (*v).to_owned()]);
            }
        }
    }
    for (flag, file) in [("--json", "run.json"), ("--markdown", "run.md")] {
        args.extend([flag.to_owned(), dir.join(file).display().to_string()]);
    }
    args.push(CHILD_FLAG.into());
    eprintln!("valgrind {}", args.join(" "));
    // The run's own table (its times are valgrind's) goes to a file, not under ours.
    let out = std::fs::File::create(dir.join("run.out"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let status = Command::new("valgrind")
        .args(&args)
        .stdout(out)
        .status()
        .map_err(|e| format!("cannot start valgrind: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the run under callgrind failed ({status}); see {}",
            dir.join("valgrind.log").display()
        ));
    }
    let dumps = read_dumps(&dir)?;
    if dumps.is_empty() {
        return Err(format!(
            "no query run was dumped in {}: were the query workloads selected?",
            dir.display()
        ));
    }
    Ok(format!(
        "{}\nInstructions per query run, every thread, median of the rounds; \"per batch\" divides the difference by the batches the query returned (an aggregate returns few). Dumps in {} (`callgrind_annotate <dump>`).\n",
        table(dumps),
        dir.display()
    ))
}

/// Every run's dump in `dir`, in the order they were written.
fn read_dumps(dir: &Path) -> Result<Vec<(RunLabel, Dump)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            // callgrind.out.N: the N-th dump.
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("callgrind.out.")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    files.sort();
    Ok(files
        .iter()
        .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
        .filter_map(|text| read_dump(&text))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump_text(label: &str, total: u64) -> String {
        format!(
            "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npart: 2\ndesc: Timerange: Basic block 1 - 2\ndesc: Trigger: Client Request: {label}\npositions: line\nevents: Ir\nsummary: {total}\n\nfn=(1) main\n0 {total}\n\ntotals: {total}\n"
        )
    }

    fn ir(instructions: u64) -> Dump {
        Dump {
            instructions,
            i1_misses: None,
        }
    }

    fn run(workload: &str, side: usize, round: usize, batches: usize) -> RunLabel {
        RunLabel {
            workload: workload.into(),
            side,
            round,
            batches,
        }
    }

    #[test]
    fn a_run_dump_is_read_and_the_opening_one_is_not() {
        let label = run("time_bucket(ts, 300): a constant argument", 1, 2, 123);
        let text = dump_text(&label.format(), 4_567_890);
        assert_eq!(read_dump(&text), Some((label, ir(4_567_890))));
        assert_eq!(read_dump(&dump_text(OPENING, 10)), None);
        assert_eq!(read_dump("not a dump"), None);
        // Fewer totals than events: not read, and no panic.
        let short = format!(
            "desc: Trigger: Client Request: {}\nevents: Ir I1mr\ntotals: 10\n",
            run("q", 0, 1, 1).format()
        );
        assert_eq!(
            read_dump(&short),
            Some((run("q", 0, 1, 1), ir(10))),
            "Ir is there, I1mr is not"
        );
    }

    #[test]
    fn the_table_drops_the_warm_up_and_takes_each_sides_median() {
        let dumps = vec![
            (run("q", 0, 0, 10), ir(1)),
            (run("q", 1, 0, 10), ir(1)),
            (run("q", 0, 1, 10), ir(1_000_000)),
            (run("q", 1, 1, 10), ir(1_100_000)),
            (run("q", 1, 2, 10), ir(1_010_000)),
            (run("q", 0, 2, 10), ir(1_000_200)),
            (run("q", 0, 3, 10), ir(999_000)),
            (run("q", 1, 3, 10), ir(1_020_000)),
        ];
        let table = table(dumps);
        let row = table.lines().nth(2).expect("one row");
        // Medians 1,000,000 and 1,020,000: a ratio of 0.9804, +2,000 instructions per batch.
        assert_eq!(
            row, "| q | 1.000 M | 1.020 M | 0.9804 | +0.020 M | 10 | +2000 | 3 |",
            "{table}"
        );
    }

    #[test]
    fn a_cache_simulation_adds_each_sides_instruction_cache_misses() {
        let label = run("q", 1, 1, 10);
        let text = format!(
            "desc: Trigger: Client Request: {}\nevents: Ir Dr Dw I1mr D1mr\ntotals: 1000 300 200 70 9\n",
            label.format()
        );
        let (read, dump) = read_dump(&text).expect("a dump");
        assert_eq!(read, label);
        assert_eq!(
            dump,
            Dump {
                instructions: 1000,
                i1_misses: Some(70)
            }
        );
        let native = Dump {
            instructions: 900,
            i1_misses: Some(20),
        };
        let table = table(vec![(run("q", 0, 1, 10), native), (label, dump)]);
        let row = table.lines().nth(2).expect("one row");
        assert!(row.ends_with("| 20 | 70 |"), "{table}");
    }

    #[test]
    fn client_requests_do_nothing_outside_valgrind() {
        start();
        let out = counted(true, run("q", 0, 1, 0), || ("done", 3));
        assert_eq!(out, "done");
    }
}
