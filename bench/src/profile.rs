//! A profile of an interleaved run, split by side.
//!
//! Profiling one side per process (`--side`) is no way to find a gap of a few percent here: the
//! same build's native side alone took 37.5 ms in one process and 49.9 ms in the next (where
//! the heap and the code land differs from process to process). In one interleaved process
//! the two sides are compared on the same footing, so that is the run to profile:
//!
//! ```text
//! cargo bench --workspace --bench abi --no-run        # prints the bench binary's path
//! perf record -g -k CLOCK_MONOTONIC -o perf.data -- <abi binary> --bench --only 'time_bucket(ts, w)' --timeline runs.tsv
//! perf script -i perf.data -F comm,time,ip,sym,dso --ns | <abi binary> split-perf runs.tsv
//! ```
//!
//! `--timeline` writes the window of every run ([`Timeline`]); `split-perf` assigns each sample
//! to the run whose window holds its time stamp and prints, per side, where the samples went
//! ([`split`]). A sample taken in the kernel is charged to the kernel entry it came through and
//! the user function that entered it (with `-g`), so page faults and futex waits show whose
//! they are.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use crate::workloads::SIDES;

/// The subcommand of the bench binary that splits a profile (`<abi> split-perf TIMELINE`).
pub const SPLIT: &str = "split-perf";

/// Where the run windows go (`--timeline FILE`): one line per run, `side start_ns end_ns
/// workload`, tab-separated, times on `CLOCK_MONOTONIC`. Records nothing when off.
pub struct Timeline(Option<BufWriter<File>>);

impl Timeline {
    pub fn open(path: Option<&Path>) -> Self {
        Self(path.map(|p| {
            let file = File::create(p)
                .unwrap_or_else(|e| panic!("cannot write the timeline {}: {e}", p.display()));
            BufWriter::new(file)
        }))
    }

    pub fn record(&mut self, workload: &str, side: usize, start_ns: u64, end_ns: u64) {
        if let Some(out) = &mut self.0 {
            writeln!(out, "{}\t{start_ns}\t{end_ns}\t{workload}", SIDES[side])
                .and_then(|()| out.flush())
                .expect("write the timeline");
        }
    }
}

/// One run's window.
#[derive(Debug)]
struct Window {
    start: u64,
    end: u64,
    side: usize,
}

fn parse_timeline(text: &str) -> Result<Vec<Window>, String> {
    let mut windows = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || {
            format!(
                "timeline line {}: expected `side start_ns end_ns workload`, got {line:?}",
                n + 1
            )
        };
        let mut fields = line.split('\t');
        let side = fields
            .next()
            .and_then(|s| SIDES.iter().position(|x| *x == s));
        let start = fields.next().and_then(|s| s.parse().ok());
        let end = fields.next().and_then(|s| s.parse().ok());
        match (side, start, end) {
            (Some(side), Some(start), Some(end)) => windows.push(Window { start, end, side }),
            _ => return Err(bad()),
        }
    }
    windows.sort_by_key(|w| w.start);
    Ok(windows)
}

/// The side whose run window holds `t`, if any (samples between runs are not either side's).
fn side_at(windows: &[Window], t: u64) -> Option<usize> {
    let i = windows.partition_point(|w| w.start <= t).checked_sub(1)?;
    (t <= windows[i].end).then_some(windows[i].side)
}

/// One sample of `perf script -F comm,time,ip,sym,dso --ns`: its time and its frames (symbol,
/// object), leaf first. Without `-g` a sample is one line; with it, a header line and one
/// indented line per frame.
#[derive(Debug, Default)]
struct Sample {
    time_ns: u64,
    frames: Vec<(String, String)>,
}

/// How far into a line a header's time stamp may be: the command name (which may hold a
/// space), then the time.
const HEADER_FIELDS: usize = 4;

/// The time stamp in a sample's header (`12345.678901234:`), in ns.
fn header_time(fields: &[&str]) -> Option<(usize, u64)> {
    fields.iter().enumerate().find_map(|(i, f)| {
        let (secs, frac) = f.strip_suffix(':')?.split_once('.')?;
        let ns = format!("{frac:0<9}");
        Some((
            i,
            secs.parse::<u64>().ok()? * 1_000_000_000 + ns.get(..9)?.parse::<u64>().ok()?,
        ))
    })
}

/// `ip symbol (object)` → (symbol, object).
fn frame(fields: &[&str]) -> Option<(String, String)> {
    let text = fields.get(1..)?.join(" ");
    let open = text.rfind(" (")?;
    let object = text[open + 2..].trim_end_matches(')');
    let object = object.rsplit('/').next().unwrap_or(object);
    Some((text[..open].to_owned(), object.to_owned()))
}

fn parse_samples(input: impl BufRead) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut current: Option<Sample> = None;
    for line in input.lines().map_while(Result::ok) {
        if line.trim().is_empty() {
            samples.extend(current.take());
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A header is told by its time stamp, not by its first column: perf right-aligns the
        // command name, so a header whose name is shorter than 16 characters starts with
        // spaces, as a call-chain line does. A frame line (`ip symbol (object)`) has no
        // `secs.frac:` among its first fields.
        if let Some((i, time_ns)) = header_time(&fields[..fields.len().min(HEADER_FIELDS)]) {
            samples.extend(current.take());
            let mut sample = Sample {
                time_ns,
                frames: Vec::new(),
            };
            sample.frames.extend(frame(&fields[i + 1..]));
            current = Some(sample);
        } else if let Some(sample) = &mut current {
            sample.frames.extend(frame(&fields));
        }
    }
    samples.extend(current);
    samples
}

/// Where a sample goes: its leaf function, and the object it ran in; for a kernel leaf, the
/// kernel's entry (the outermost kernel frame) and the user function it was entered from. The
/// function is the key, so that the host's and the bundle's copies of one function (each
/// side runs its own) line up in one row.
fn charge(sample: &Sample) -> Option<(String, &str)> {
    let (sym, object) = sample.frames.first()?;
    let kernel = |o: &str| o.contains("kernel");
    if !kernel(object) {
        return Some((sym.clone(), object));
    }
    let entry = sample
        .frames
        .iter()
        .take_while(|(_, o)| kernel(o))
        .last()
        .map_or("?", |(s, _)| s);
    let from = sample.frames.iter().find(|(_, o)| !kernel(o));
    let place = match from {
        Some((s, _)) => format!("[kernel] {entry} <- {s}"),
        None => format!("[kernel] {entry}"),
    };
    Some((place, "kernel"))
}

/// Sample counts per side.
#[derive(Default)]
struct Counts {
    by_side: [usize; 2],
    objects: BTreeSet<String>,
}

/// Splits `perf_script` by the run windows of `timeline` and returns two markdown tables of
/// samples per run and side: by object (the bench binary is the host, a `libdf_plugin_*` the
/// bundle), then the `top` functions whose counts differ most between the sides.
pub fn split(timeline: &str, perf_script: impl BufRead, top: usize) -> Result<String, String> {
    let windows = parse_timeline(timeline)?;
    if windows.is_empty() {
        return Err("the timeline is empty: run the bench with --timeline FILE".into());
    }
    let mut runs = [0usize; 2];
    for w in &windows {
        runs[w.side] += 1;
    }
    let mut by_place: HashMap<String, Counts> = HashMap::new();
    let mut by_object: HashMap<String, Counts> = HashMap::new();
    let mut totals = Counts::default();
    for sample in parse_samples(perf_script) {
        let Some(side) = side_at(&windows, sample.time_ns) else {
            continue;
        };
        let Some((place, object)) = charge(&sample) else {
            continue;
        };
        let place = by_place.entry(place).or_default();
        place.by_side[side] += 1;
        place.objects.insert(object.to_owned());
        by_object.entry(object.to_owned()).or_default().by_side[side] += 1;
        totals.by_side[side] += 1;
    }
    if totals.by_side == [0, 0] {
        return Err("no sample falls in a run window: record with `perf record -k CLOCK_MONOTONIC` and script with `--ns`".into());
    }
    let per_run = |c: &Counts| {
        let [n, b] = [0, 1].map(|s| c.by_side[s] as f64 / runs[s].max(1) as f64);
        (n, b, b - n)
    };
    let sorted = |map: HashMap<String, Counts>| {
        let mut rows: Vec<_> = map.into_iter().collect();
        rows.sort_by(|a, b| {
            let (da, db) = (per_run(&a.1).2.abs(), per_run(&b.1).2.abs());
            db.total_cmp(&da).then_with(|| a.0.cmp(&b.0))
        });
        rows
    };
    let line = |c: &Counts, place: &str| {
        let (n, b, d) = per_run(c);
        format!(
            "| {n:.1} | {b:.1} | {d:+.1} | {} |\n",
            place.replace('|', "\\|")
        )
    };
    let table = |what: &str| {
        format!(
            "| native | bundle | bundle − native | {what} (samples per run) |\n|---:|---:|---:|---|\n{}",
            line(
                &totals,
                &format!("all ({} native runs, {} bundle runs)", runs[0], runs[1])
            )
        )
    };
    let mut out = table("object");
    for (object, c) in sorted(by_object) {
        out.push_str(&line(&c, &object));
    }
    out.push('\n');
    out.push_str(&table("function"));
    for (place, c) in sorted(by_place).into_iter().take(top) {
        let objects: Vec<_> = c.objects.iter().map(String::as_str).collect();
        out.push_str(&line(&c, &format!("{place} ({})", objects.join(", "))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMELINE: &str = "native\t1000000000\t1500000000\tq\nbundle\t2000000000\t2500000000\tq\n";

    #[test]
    fn samples_are_charged_to_the_side_whose_run_holds_them() {
        let script = "\
  tokio-rt-worker 1.100000000: 	 1000 kern_loop (/x/abi-123)
tokio-rt-worker  2.100000000: 	 2000 kern_loop (/x/libdf_plugin_udfs.so)
tokio-rt-worker  2.200000000: 	 2000 kern_loop (/x/libdf_plugin_udfs.so)
main 1.700000000: 	 3000 between_runs (/x/abi-123)

tokio-rt-worker 2.300000000:
\tffffffff81000000 asm_exc_page_fault ([kernel.kallsyms])
\tffffffff81000001 entry_x ([kernel.kallsyms])
\t5000 memset (/usr/lib/libc.so.6)
\t6000 export (/x/abi-123)
";
        let table = split(TIMELINE, script.as_bytes(), 10).expect("splits");
        assert!(
            table.contains("| 1.0 | 3.0 | +2.0 | all (1 native runs, 1 bundle runs) |"),
            "{table}"
        );
        // By object: the host's copy ran natively, the bundle's from the bundle.
        assert!(
            table.contains("| 0.0 | 2.0 | +2.0 | libdf_plugin_udfs.so |"),
            "{table}"
        );
        assert!(table.contains("| 1.0 | 0.0 | -1.0 | abi-123 |"), "{table}");
        // By function: both copies in one row; a kernel sample under the user function that
        // entered the kernel.
        let both = "| 1.0 | 2.0 | +1.0 | kern_loop (abi-123, libdf_plugin_udfs.so) |";
        assert!(table.contains(both), "{table}");
        let fault = "| 0.0 | 1.0 | +1.0 | [kernel] entry_x <- memset (kernel) |";
        assert!(table.contains(fault), "{table}");
        assert!(!table.contains("between_runs"), "{table}");
    }

    #[test]
    fn a_bad_timeline_or_an_unstamped_profile_is_refused_with_the_fix() {
        let e = split("sideways\t1\t2\tq\n", &b""[..], 5).expect_err("refused");
        assert!(e.contains("timeline line 1"), "{e}");
        let e = split(TIMELINE, &b"x 9.0: 1 f (o)\n"[..], 5).expect_err("refused");
        assert!(e.contains("CLOCK_MONOTONIC"), "{e}");
    }
}
