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

/// Runs each of `sides` `reps + 1` times, interleaved (ABAB..., then BABA..., so that neither
/// side always goes first), drops the first (warm-up) run of each and returns the median of
/// the others per side. `run` returns the time of one run of side `i`.
pub fn interleaved(
    sides: usize,
    reps: usize,
    mut run: impl FnMut(usize) -> Duration,
) -> Vec<Duration> {
    let mut samples = vec![Vec::with_capacity(reps); sides];
    for round in 0..=reps {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..sides).collect()
        } else {
            (0..sides).rev().collect()
        };
        for side in order {
            let took = run(side);
            if round > 0 {
                samples[side].push(took);
            }
        }
    }
    samples.into_iter().map(median).collect()
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
