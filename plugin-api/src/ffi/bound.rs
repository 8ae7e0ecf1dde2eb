//! The host's cache of what a lean path bound in the bundle.
//!
//! A lean path converts once what datafusion-ffi converts on every call (the configuration,
//! argument fields) into an object the bundle keeps, and the host reuses that object for as
//! long as the key it was bound for comes back: a query's batches and partitions share one
//! configuration `Arc`. Keys hold their `Arc`s, so pointer identity cannot be reused by a new
//! value while an entry lives.
//!
//! Every batch of every partition looks its object up, on as many threads as there are
//! partitions, so a hit takes only a read lock and partitions do not queue behind each other.

use std::fmt;
use std::sync::RwLock;

use datafusion::error::Result;

/// How many bound objects a cache keeps (about one per live session configuration or query
/// shape); the oldest goes first.
pub const BOUND_ENTRIES: usize = 16;

/// Objects bound per key, the newest [`BOUND_ENTRIES`] kept.
pub struct BoundCache<K, V> {
    entries: RwLock<Vec<(K, V)>>,
}

impl<K, V: Clone> BoundCache<K, V> {
    pub fn new() -> Self {
        Self {
            entries: RwLock::new(Vec::new()),
        }
    }

    /// How many objects are bound.
    pub fn count(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The object of the first key `matches` accepts; otherwise the one `bind` makes, kept
    /// under the key `bind` returns with it. `bind` runs under the write lock, so a key is
    /// bound once however many threads miss it together.
    pub fn get_or_bind(
        &self,
        matches: impl Fn(&K) -> bool,
        bind: impl FnOnce() -> Result<(K, V)>,
    ) -> Result<V> {
        // Newest first: the shapes bound last are the likeliest to be running, and a miss
        // costs a comparison of argument fields per entry, per batch.
        let find = |entries: &[(K, V)]| {
            entries
                .iter()
                .rev()
                .find(|(key, _)| matches(key))
                .map(|(_, value)| value.clone())
        };
        if let Some(value) = find(&self.entries.read().unwrap_or_else(|e| e.into_inner())) {
            return Ok(value);
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = find(&entries) {
            return Ok(value);
        }
        let (key, value) = bind()?;
        if entries.len() >= BOUND_ENTRIES {
            entries.remove(0);
        }
        entries.push((key, value.clone()));
        Ok(value)
    }
}

impl<K, V: Clone> Default for BoundCache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for BoundCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.read().map_or(0, |e| e.len());
        f.debug_struct("BoundCache")
            .field("entries", &entries)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_a_key_once_and_drops_the_oldest_when_full() {
        let cache = BoundCache::<usize, usize>::new();
        let mut binds = 0;
        for round in 0..2 {
            for k in 0..BOUND_ENTRIES {
                let v = cache
                    .get_or_bind(
                        |key| *key == k,
                        || {
                            binds += 1;
                            Ok((k, k * 10))
                        },
                    )
                    .expect("binds");
                assert_eq!(v, k * 10, "round {round}");
            }
        }
        assert_eq!(binds, BOUND_ENTRIES, "the second round found every key");
        // One more key pushes key 0 out; asking for 0 binds it again.
        cache
            .get_or_bind(|k| *k == BOUND_ENTRIES, || Ok((BOUND_ENTRIES, 0)))
            .expect("binds");
        let mut rebound = false;
        cache
            .get_or_bind(
                |k| *k == 0,
                || {
                    rebound = true;
                    Ok((0, 0))
                },
            )
            .expect("binds");
        assert!(rebound);
    }

    #[test]
    fn looks_the_newest_entries_up_first() {
        let cache = BoundCache::<usize, usize>::new();
        for k in 0..3 {
            cache
                .get_or_bind(|key| *key == k, || Ok((k, k)))
                .expect("binds");
        }
        // A lookup every entry matches returns the one bound last, having compared only it.
        let compared = std::cell::RefCell::new(Vec::new());
        let v = cache
            .get_or_bind(
                |key| {
                    compared.borrow_mut().push(*key);
                    true
                },
                || Ok((9, 9)),
            )
            .expect("found");
        assert_eq!((v, compared.into_inner()), (2, vec![2]));
    }

    #[test]
    fn threads_that_miss_together_bind_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = BoundCache::<usize, usize>::new();
        let binds = AtomicUsize::new(0);
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..1000 {
                        let v = cache.get_or_bind(
                            |k| *k == 7,
                            || {
                                binds.fetch_add(1, Ordering::SeqCst);
                                Ok((7, 70))
                            },
                        );
                        assert_eq!(v.expect("binds"), 70);
                    }
                });
            }
        });
        assert_eq!(binds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_bind_keeps_nothing() {
        let cache = BoundCache::<usize, usize>::new();
        let e = cache.get_or_bind(
            |_| true,
            || Err(datafusion::error::DataFusionError::Execution("no".into())),
        );
        assert!(e.is_err());
        let v = cache.get_or_bind(|_| true, || Ok((1, 2))).expect("binds");
        assert_eq!(v, 2);
    }
}
