//! The result: one row per measurement, printed as a markdown table and written as JSON.

use serde::Serialize;

use crate::Config;
use crate::machine::Machine;

/// What a row is held to.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// native time / bundle time must be at least this.
    MinRatio { min: f64 },
    /// (bundle time - plain time) / plain time must be at most this.
    MaxOverhead { max: f64 },
    /// The measured value must be at most this (in the row's unit).
    MaxValue { max: f64 },
    /// Shown, not held to a target.
    None,
}

impl Target {
    fn describe(&self, unit: &str) -> String {
        match self {
            Target::MinRatio { min } => format!("≥ {min:.2}"),
            Target::MaxOverhead { max } => format!("≤ {:.0} %", max * 100.0),
            Target::MaxValue { max } => format!("≤ {max} {unit}"),
            Target::None => "—".into(),
        }
    }
}

/// One measurement. `baseline` is the native (or plugin-free) value, `measured` the bundle's.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub group: String,
    pub name: String,
    pub unit: &'static str,
    pub baseline: Option<f64>,
    pub measured: f64,
    pub target: Target,
    /// Rows the query produced (both sides must agree), where it is a query.
    pub rows: Option<usize>,
    /// The row's score round by round (native/bundle time for a query, the bundles' planning
    /// overhead for planning); its median is the row's score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// A query's median CPU time per side (native, bundle), every thread of the process: more
    /// CPU on the bundle side is work the crossing added, the same CPU for more wall time is
    /// waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<[f64; 2]>,
    /// The rounds a query ran (at least [`crate::Config::reps`]; more, up to
    /// [`crate::MAX_ROUNDS`], to fill [`crate::Config::min_seconds`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
}

/// The median and quartiles of a comparison's round-by-round scores (native time / bundle
/// time of one round, or one round's overhead), and the 95 % confidence interval of that
/// median. Scoring by the median of paired rounds instead of comparing the two medians cancels
/// the machine's slow spells, which on a shared 2-core machine move a workload's time by more
/// than the crossing costs; the quartiles say how far one round strays, the interval how far
/// the score itself may be from what more rounds would find.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Spread {
    /// `None` for no ratios.
    pub fn of(mut ratios: Vec<f64>) -> Option<Self> {
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        let (low, high) = median_interval(ratios.len());
        Some(Self {
            median: at(0.5),
            q1: at(0.25),
            q3: at(0.75),
            ci_low: ratios[low],
            ci_high: ratios[high],
        })
    }

    /// Whether `target` lies inside the interval: this run cannot tell on which side of it
    /// the score is.
    pub fn holds(&self, target: f64) -> bool {
        (self.ci_low..=self.ci_high).contains(&target)
    }
}

/// The indices, into `n` sorted samples, of a 95 % confidence interval of their median. It
/// assumes nothing of the samples' distribution (the ratios of a noisy machine's rounds have
/// long tails): the median lies between the order statistics of ranks `n/2 ± 1.96·√n/2`
/// (normal approximation of the binomial; with 101 rounds, ranks 41 and 61). A handful of
/// samples gives their whole range.
fn median_interval(n: usize) -> (usize, usize) {
    let half = 1.96 * (n as f64).sqrt() / 2.0;
    let middle = n as f64 / 2.0;
    // Ranks from 1, as the textbook interval has them.
    let low_rank = (middle - half).round().max(1.0) as usize;
    let high_rank = (middle + 1.0 + half).round() as usize;
    (low_rank - 1, high_rank.min(n) - 1)
}

impl Row {
    /// A query run natively and from the bundle; times in ms.
    pub fn ratio(group: &str, name: &str, native_ms: f64, bundle_ms: f64, min: f64) -> Self {
        Self {
            group: group.into(),
            name: name.into(),
            unit: "ms",
            baseline: Some(native_ms),
            measured: bundle_ms,
            target: Target::MinRatio { min },
            rows: None,
            spread: None,
            cpu_ms: None,
            rounds: None,
        }
    }

    /// A value without a native counterpart (a load time, a size).
    pub fn value(group: &str, name: &str, unit: &'static str, value: f64, target: Target) -> Self {
        Self {
            group: group.into(),
            name: name.into(),
            unit,
            baseline: None,
            measured: value,
            target,
            rows: None,
            spread: None,
            cpu_ms: None,
            rounds: None,
        }
    }

    /// The score the target is about: native/bundle for ratios, the overhead for overheads;
    /// the median round's where the rounds were kept. A value with a baseline (a size and its
    /// floor) is scored by how much it adds to the baseline; its target is still its value.
    pub fn score(&self) -> Option<f64> {
        if let Some(spread) = self.spread {
            return Some(spread.median);
        }
        let base = self.baseline?;
        Some(if self.scored_as_excess() {
            (self.measured - base) / base
        } else {
            base / self.measured
        })
    }

    /// Whether [`Row::score`] is an excess over the baseline (shown in percent).
    fn scored_as_excess(&self) -> bool {
        matches!(
            self.target,
            Target::MaxOverhead { .. } | Target::MaxValue { .. }
        )
    }

    /// Whether the row's target lies inside its score's confidence interval (see [`Spread`]),
    /// so that [`Row::met`] says which side of it this run's median fell on, not more.
    pub fn too_close_to_call(&self) -> bool {
        let target = match self.target {
            Target::MinRatio { min } => min,
            Target::MaxOverhead { max } => max,
            Target::MaxValue { .. } | Target::None => return false,
        };
        self.spread.is_some_and(|q| q.holds(target))
    }

    /// Whether the row meets its target (`None` when it has none).
    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::MinRatio { min } => self.score().map(|s| s >= min),
            Target::MaxOverhead { max } => self.score().map(|s| s <= max),
            Target::MaxValue { max } => Some(self.measured <= max),
            Target::None => None,
        }
    }
}

#[derive(Debug, Serialize)]
struct Sizes {
    rows: usize,
    many_groups: usize,
    window_partitions: usize,
    delta_rows: usize,
    reps: usize,
    min_seconds: f64,
}

/// Every row of a run, with the machine and the sizes it ran with.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    sizes: Sizes,
    pub rows: Vec<Row>,
    /// The plugin ABI minor the bundles were re-stamped to (`--abi-minor`), if they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    as_abi_minor: Option<u16>,
    /// Both sessions had the objects linked in natively (`--a-a`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    a_a: bool,
    /// Rows per batch when not DataFusion's default (`--batch-size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
}

impl Report {
    pub fn new(machine: Machine, config: &Config) -> Self {
        Self {
            machine,
            sizes: Sizes {
                rows: config.rows,
                many_groups: config.many_groups,
                window_partitions: config.window_partitions,
                delta_rows: config.delta_rows,
                reps: config.reps,
                min_seconds: config.min_seconds,
            },
            rows: Vec::new(),
            as_abi_minor: config.abi_minor,
            batch_size: config.batch_size,
            a_a: config.a_a,
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        self.rows.extend(rows);
    }

    /// The rows that miss their target.
    pub fn missed(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.met() == Some(false))
            .collect()
    }

    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a report serialises");
        // The derived scores, so that a reader of the JSON need not recompute them.
        if let Some(rows) = value.get_mut("rows").and_then(|r| r.as_array_mut()) {
            for (json, row) in rows.iter_mut().zip(&self.rows) {
                json["score"] = row.score().into();
                json["met"] = row.met().into();
                json["too_close_to_call"] = row.too_close_to_call().into();
            }
        }
        serde_json::to_string_pretty(&value).expect("a report serialises")
    }

    pub fn to_markdown(&self) -> String {
        let m = &self.machine;
        let s = &self.sizes;
        let mut out = format!(
            "Machine: {} ({} cores, {} GiB), {}, {}.\nSizes: {} rows, {} groups, {} window partitions, a {}-row Delta table; {} rounds at least, each running both sides back to back (interleaved), and more for a query whose rounds took under {} s, until they have, up to {} (`rounds` in the JSON); times are each side's median, a query's score is the median round's native/bundle ratio, with that median's 95 % confidence interval in brackets (the rounds' quartiles are in the JSON), and a ? after the mark when the interval holds the target: this run cannot tell which side of it the score is on; a size's baseline is the smallest datafusion-ffi bundle built in the same run (`bench/floor/`), its score what the bundle adds to it.\n\n",
            m.cpu,
            m.cores,
            m.memory_gib,
            m.os,
            m.rustc,
            s.rows,
            s.many_groups,
            s.window_partitions,
            s.delta_rows,
            s.reps,
            s.min_seconds,
            crate::MAX_ROUNDS
        );
        if let Some(minor) = self.as_abi_minor {
            out.push_str(&format!(
                "Bundles loaded as plugin ABI 1.{minor} (`--abi-minor`): the host took that minor's paths.\n\n"
            ));
        }
        if self.a_a {
            out.push_str("A/A run (`--a-a`): the \"bundle\" session has the objects linked in natively too, so the scores show this machine's noise, not the ABI.\n\n");
        }
        if let Some(rows) = self.batch_size {
            out.push_str(&format!(
                "Batches of {rows} rows (`--batch-size`), not DataFusion's default.\n\n"
            ));
        }
        out.push_str("| group | workload | native / plain | bundle | score | target | |\n");
        out.push_str("|---|---|---:|---:|---:|---|---|\n");
        for r in &self.rows {
            let fmt = |v: f64| match r.unit {
                "ms" if v < 10.0 => format!("{v:.2} ms"),
                "ms" => format!("{v:.1} ms"),
                "µs" => format!("{v:.1} µs"),
                "MB" => format!("{v:.1} MB"),
                unit => format!("{v:.2} {unit}"),
            };
            let score = match r.score() {
                Some(s) if r.scored_as_excess() => match r.spread {
                    Some(q) => format!(
                        "{:+.1} % ({:+.1} to {:+.1})",
                        s * 100.0,
                        q.ci_low * 100.0,
                        q.ci_high * 100.0
                    ),
                    None => format!("{:+.1} %", s * 100.0),
                },
                Some(s) => match r.spread {
                    Some(q) => format!("{s:.3} ({:.3}–{:.3})", q.ci_low, q.ci_high),
                    None => format!("{s:.3}"),
                },
                None => "—".into(),
            };
            let unsure = if r.too_close_to_call() { "?" } else { "" };
            let met = match r.met() {
                Some(true) => format!("✓{unsure}"),
                Some(false) => format!("✗{unsure}"),
                None => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.group,
                r.name,
                r.baseline.map(fmt).unwrap_or_else(|| "—".into()),
                fmt(r.measured),
                score,
                r.target.describe(r.unit),
                met
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_of(rows: Vec<Row>) -> Report {
        let machine = Machine {
            cpu: "cpu".into(),
            cores: 2,
            memory_gib: 24,
            os: "os".into(),
            rustc: "rustc".into(),
        };
        let mut report = Report::new(machine, &Config::full(std::path::Path::new(".")));
        report.extend(rows);
        report
    }

    #[test]
    fn spread_is_the_median_and_quartiles_of_the_ratios() {
        let q = Spread::of(vec![1.2, 0.8, 1.0, 0.9, 1.1]).expect("ratios");
        assert_eq!((q.q1, q.median, q.q3), (0.9, 1.0, 1.1));
        assert!(Spread::of(Vec::new()).is_none());
    }

    #[test]
    fn the_interval_of_a_median_narrows_with_more_rounds_and_covers_a_few() {
        assert_eq!(median_interval(1), (0, 0));
        assert_eq!(median_interval(3), (0, 2));
        assert_eq!(median_interval(11), (1, 9));
        assert_eq!(median_interval(101), (40, 60));
        let rounds: Vec<f64> = (0..101).map(|i| 0.9 + f64::from(i) * 0.002).collect();
        let q = Spread::of(rounds).expect("ratios");
        assert_eq!(q.median, 1.0);
        assert!((q.ci_low - 0.98).abs() < 1e-9 && (q.ci_high - 1.02).abs() < 1e-9);
        assert!(q.holds(0.99) && !q.holds(0.97));
    }

    #[test]
    fn a_miss_inside_the_interval_is_marked_too_close_to_call() {
        let mut row = Row::ratio("g", "w", 10.0, 10.0, 0.97);
        let rounds: Vec<f64> = (0..101).map(|i| 0.9 + f64::from(i) * 0.0014).collect();
        row.spread = Spread::of(rounds);
        // Median 0.970 (met), interval 0.956–0.984: the target is inside it.
        assert_eq!(row.met(), Some(true));
        assert!(row.too_close_to_call());
        let md = report_of(vec![row]).to_markdown();
        assert!(md.contains("| 0.970 (0.956–0.984) | ≥ 0.97 | ✓? |"), "{md}");
        // A narrower spread around a lower median: a clear miss.
        let mut row = Row::ratio("g", "w", 10.0, 10.0, 0.97);
        row.spread = Spread::of((0..101).map(|i| 0.9 + f64::from(i) * 0.0002).collect());
        assert_eq!(row.met(), Some(false));
        assert!(!row.too_close_to_call());
        assert!(report_of(vec![row]).to_markdown().contains("| ✗ |"));
    }

    #[test]
    fn a_query_row_is_scored_by_its_median_round() {
        // The medians' ratio is 1.0; the rounds say the bundle was slower in most of them.
        let mut row = Row::ratio("g", "w", 10.0, 10.0, 0.97);
        row.spread = Spread::of(vec![0.9, 0.92, 1.3]);
        assert_eq!(row.score(), Some(0.92));
        assert_eq!(row.met(), Some(false));
    }

    #[test]
    fn a_size_is_scored_by_its_excess_over_the_floor_and_held_to_its_value() {
        let mut row = Row::value("size", "b", "MB", 50.0, Target::MaxValue { max: 60.0 });
        assert_eq!(row.score(), None);
        row.baseline = Some(40.0);
        assert_eq!(row.score(), Some(0.25));
        assert_eq!(row.met(), Some(true));
        row.measured = 61.0;
        assert_eq!(row.met(), Some(false));
        let md = report_of(vec![row]).to_markdown();
        assert!(
            md.contains("| size | b | 40.0 MB | 61.0 MB | +52.5 % | ≤ 60 MB | ✗ |"),
            "{md}"
        );
    }
}
