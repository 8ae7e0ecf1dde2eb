//! Timing: queries run to the last batch without being kept, sides interleaved, medians.
//!
//! Each run is timed by the wall clock, which the score is about, and by the process's CPU
//! time (every thread), which says whether a gap is work done or time spent waiting.

use std::time::{Duration, Instant};

use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

/// What a query returned: rows, and the batches they came in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Drained {
    pub rows: usize,
    pub batches: usize,
}

/// Plans and runs `sql`, pulling every batch of every partition and dropping it (nothing is
/// collected: the time is the query's, not the memory allocator's).
pub async fn drain(ctx: &SessionContext, sql: &str) -> Result<Drained> {
    let mut drained = Drained::default();
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        drained.rows += batch?.num_rows();
        drained.batches += 1;
    }
    Ok(drained)
}

/// What one run took: wall-clock time and the CPU time of the whole process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Took {
    pub wall: Duration,
    pub cpu: Duration,
}

/// The measured times of every round, per side (`by_side[side][round]`).
#[derive(Debug)]
pub struct Rounds {
    by_side: Vec<Vec<Took>>,
}

impl Rounds {
    /// The median wall time of `side`.
    pub fn median(&self, side: usize) -> Duration {
        median(self.by_side[side].iter().map(|t| t.wall).collect())
    }

    /// The median CPU time of `side`.
    pub fn cpu_median(&self, side: usize) -> Duration {
        median(self.by_side[side].iter().map(|t| t.cpu).collect())
    }

    /// How many rounds were measured (the warm-up not counted).
    pub fn count(&self) -> usize {
        self.by_side.first().map_or(0, Vec::len)
    }

    /// The median time of every side.
    pub fn medians(&self) -> Vec<Duration> {
        (0..self.by_side.len()).map(|s| self.median(s)).collect()
    }

    /// `a`'s wall time over `b`'s, round by round. A round runs the sides back to back, so a
    /// slow spell of a shared machine weighs on both terms of its ratio instead of on one side.
    pub fn ratios(&self, a: usize, b: usize) -> Vec<f64> {
        self.by_side[a]
            .iter()
            .zip(&self.by_side[b])
            .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64())
            .collect()
    }
}

/// Runs each of `sides` `reps + 1` times, interleaved (ABAB..., then BABA..., so that neither
/// side always goes first), and drops the first (warm-up) round. `run` returns what one run of
/// side `i` took.
pub fn interleaved(sides: usize, reps: usize, run: impl FnMut(usize) -> Took) -> Rounds {
    interleaved_for(sides, reps, Duration::ZERO, reps, run)
}

/// [`interleaved`], with rounds added after the first `reps` until the measured rounds have
/// taken `budget` of wall time altogether, or `max_reps` rounds have run.
pub fn interleaved_for(
    sides: usize,
    reps: usize,
    budget: Duration,
    max_reps: usize,
    mut run: impl FnMut(usize) -> Took,
) -> Rounds {
    let mut by_side = vec![Vec::with_capacity(reps); sides];
    let mut spent = Duration::ZERO;
    let mut round = 0;
    while round <= reps || (spent < budget && round <= max_reps) {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..sides).collect()
        } else {
            (0..sides).rev().collect()
        };
        for side in order {
            let took = run(side);
            if round > 0 {
                spent += took.wall;
                by_side[side].push(took);
            }
        }
        round += 1;
    }
    Rounds { by_side }
}

/// The median of `samples` (the upper one of an even count); zero for none.
pub fn median<T: Ord + Copy + Default>(mut samples: Vec<T>) -> T {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Times `f` by the wall clock and by the process's CPU time.
pub fn time<T>(f: impl FnOnce() -> T) -> (T, Took) {
    let cpu = process_cpu();
    let start = Instant::now();
    let out = f();
    let wall = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu);
    (out, Took { wall, cpu })
}

/// The CPU time every thread of this process has used so far (zero where the clock is
/// missing: the CPU times then say nothing, the scores are unaffected).
pub fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock `perf record -k CLOCK_MONOTONIC` stamps its
/// samples with: run windows in it let a profile of an interleaved run be split by side.
pub fn monotonic_ns() -> u64 {
    clock(libc::CLOCK_MONOTONIC).as_nanos() as u64
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the call writes nothing else.
    if unsafe { libc::clock_gettime(id, &mut t) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_workload_runs_rounds_until_its_budget_is_spent() {
        let ms = |n| Took {
            wall: Duration::from_millis(n),
            cpu: Duration::from_millis(n),
        };
        // 10 ms a run, 20 ms a round: 100 ms take five measured rounds past the warm-up.
        let rounds = interleaved_for(2, 3, Duration::from_millis(100), 50, |_| ms(10));
        assert_eq!(rounds.by_side[1].len(), 5);
        // Rounds of 1 s: the three asked for are already over the budget.
        let rounds = interleaved_for(2, 3, Duration::from_millis(100), 50, |_| ms(500));
        assert_eq!(rounds.by_side[0].len(), 3);
        // No more than the cap, however short the runs.
        let rounds = interleaved_for(2, 3, Duration::from_secs(100), 7, |_| ms(1));
        assert_eq!(rounds.by_side[0].len(), 7);
    }

    #[test]
    fn rounds_pair_the_sides_run_for_run_after_the_warm_up() {
        let mut calls = Vec::new();
        let rounds = interleaved(2, 3, |side| {
            calls.push(side);
            // Side 0 takes 2 ms; side 1 takes 2 ms plus 1 ms per call made so far, and twice
            // that of CPU time.
            let wall = Duration::from_millis(2 + side as u64 * calls.len() as u64);
            Took {
                wall,
                cpu: wall * 2,
            }
        });
        // ABAB, then BABA: neither side always goes first.
        assert_eq!(calls, [0, 1, 1, 0, 0, 1, 1, 0]);
        assert_eq!(rounds.by_side[0].len(), 3, "the warm-up round is dropped");
        let ratios = rounds.ratios(0, 1);
        assert_eq!(ratios.len(), 3);
        // Round 1 ran B third (5 ms), round 2 sixth (8 ms), round 3 seventh (9 ms).
        for (got, want) in ratios.iter().zip([2.0 / 5.0, 2.0 / 8.0, 2.0 / 9.0]) {
            assert!((got - want).abs() < 1e-9, "{ratios:?}");
        }
        assert_eq!(rounds.median(0), Duration::from_millis(2));
        assert_eq!(rounds.cpu_median(1), Duration::from_millis(16));
    }

    #[test]
    fn the_process_cpu_clock_counts_work() {
        let before = process_cpu();
        let (_, took) = time(|| {
            (0..5_000_000u64).fold(0u64, |a, x| std::hint::black_box(a ^ x.wrapping_mul(31)))
        });
        assert!(process_cpu() > before, "the CPU clock advanced");
        assert!(
            took.cpu > Duration::ZERO && took.wall > Duration::ZERO,
            "{took:?}"
        );
        assert!(monotonic_ns() > 0);
    }
}
