//! Timing: queries run to the last batch without being kept, sides interleaved, medians.

use std::time::{Duration, Instant};

use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

/// Plans and runs `sql`, pulling every batch of every partition and dropping it (nothing is
/// collected: the time is the query's, not the memory allocator's). Returns the row count.
pub async fn drain(ctx: &SessionContext, sql: &str) -> Result<usize> {
    let mut rows = 0;
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows();
    }
    Ok(rows)
}

/// The measured times of every round, per side (`by_side[side][round]`).
#[derive(Debug)]
pub struct Rounds {
    by_side: Vec<Vec<Duration>>,
}

impl Rounds {
    /// The median time of `side`.
    pub fn median(&self, side: usize) -> Duration {
        median(self.by_side[side].clone())
    }

    /// The median time of every side.
    pub fn medians(&self) -> Vec<Duration> {
        (0..self.by_side.len()).map(|s| self.median(s)).collect()
    }

    /// `a`'s time over `b`'s, round by round. A round runs the sides back to back, so a slow
    /// spell of a shared machine weighs on both terms of its ratio instead of on one side.
    pub fn ratios(&self, a: usize, b: usize) -> Vec<f64> {
        self.by_side[a]
            .iter()
            .zip(&self.by_side[b])
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
            .collect()
    }
}

/// Runs each of `sides` `reps + 1` times, interleaved (ABAB..., then BABA..., so that neither
/// side always goes first), and drops the first (warm-up) round. `run` returns the time of one
/// run of side `i`.
pub fn interleaved(sides: usize, reps: usize, mut run: impl FnMut(usize) -> Duration) -> Rounds {
    let mut by_side = vec![Vec::with_capacity(reps); sides];
    for round in 0..=reps {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..sides).collect()
        } else {
            (0..sides).rev().collect()
        };
        for side in order {
            let took = run(side);
            if round > 0 {
                by_side[side].push(took);
            }
        }
    }
    Rounds { by_side }
}

/// The median of `samples` (the upper one of an even count); zero for none.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Times `f`.
pub fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_pair_the_sides_run_for_run_after_the_warm_up() {
        let mut calls = Vec::new();
        let rounds = interleaved(2, 3, |side| {
            calls.push(side);
            // Side 0 takes 2 ms; side 1 takes 2 ms plus 1 ms per call made so far.
            Duration::from_millis(2 + side as u64 * calls.len() as u64)
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
    }
}
