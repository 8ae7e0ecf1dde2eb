//! The host's cache of what a lean path bound in the bundle.
//!
//! A lean path converts once what datafusion-ffi converts on every call (the configuration,
//! argument fields) into an object the bundle keeps, and the host reuses that object for as
//! long as the key it was bound for comes back: a query's batches and partitions share one
//! configuration `Arc`. Keys hold their `Arc`s, so pointer identity cannot be reused by a new
//! value while an entry lives.
//!
//! Every batch of every partition looks its object up, on as many threads as there are
//! partitions. The first object bound (most caches only ever bind one) is read with a plain
//! load and used in place: no lock, no reference count, so the partitions' lookups write no
//! shared cache line. A read lock, and a clone of the object, cost two atomic writes each
//! per batch on lines every partition's thread writes; on two cores each such write finds
//! the line in the other core's cache. The objects bound later take a read lock on a hit.

use std::fmt;
use std::sync::{OnceLock, RwLock};

use datafusion::error::Result;

/// How many bound objects a cache keeps besides the first (about one per live session
/// configuration or query shape); the oldest of them goes first.
pub const BOUND_ENTRIES: usize = 16;

/// Objects bound per key: the first for the cache's lifetime, the newest [`BOUND_ENTRIES`]
/// others.
pub struct BoundCache<K, V> {
    first: OnceLock<(K, V)>,
    entries: RwLock<Vec<(K, V)>>,
}

impl<K, V: Clone> BoundCache<K, V> {
    pub fn new() -> Self {
        Self {
            first: OnceLock::new(),
            entries: RwLock::new(Vec::new()),
        }
    }

    /// How many objects are bound.
    pub fn count(&self) -> usize {
        let first = usize::from(self.first.get().is_some());
        first + self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The object of the first key `matches` accepts; otherwise the one `bind` makes, kept
    /// under the key `bind` returns with it. `bind` runs under the write lock, so a key is
    /// bound once however many threads miss it together.
    pub fn get_or_bind(
        &self,
        matches: impl Fn(&K) -> bool,
        bind: impl FnOnce() -> Result<(K, V)>,
    ) -> Result<V> {
        self.with_bound(matches, bind, V::clone)
    }

    /// [`Self::get_or_bind`], handing the object to `use_it`: the first object bound is lent
    /// in place, not cloned.
    pub fn with_bound<R>(
        &self,
        matches: impl Fn(&K) -> bool,
        bind: impl FnOnce() -> Result<(K, V)>,
        use_it: impl FnOnce(&V) -> R,
    ) -> Result<R> {
        if let Some((key, value)) = self.first.get()
            && matches(key)
        {
            return Ok(use_it(value));
        }
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
            return Ok(use_it(&value));
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = find(&entries) {
            return Ok(use_it(&value));
        }
        // Another thread may have bound the first entry since. Only the write lock's holder
        // binds, so between this check and the `get_or_init` below nobody else does.
        if let Some((key, value)) = self.first.get()
            && matches(key)
        {
            return Ok(use_it(value));
        }
        let (key, value) = bind()?;
        if self.first.get().is_none() {
            let (_, value) = self.first.get_or_init(|| (key, value));
            return Ok(use_it(value));
        }
        if entries.len() >= BOUND_ENTRIES {
            entries.remove(0);
        }
        entries.push((key, value.clone()));
        Ok(use_it(&value))
    }
}

impl<K, V: Clone> Default for BoundCache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for BoundCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = usize::from(self.first.get().is_some());
        let entries = self.entries.read().map_or(0, |e| e.len());
        f.debug_struct("BoundCache")
            .field("entries", &(first + entries))
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
        // Key 0 is the first entry, kept for good; keys 1.. are the others. Two more keys: the
        // first fills the others, the second pushes their oldest, key 1, out. Asking for 1
        // binds it again, asking for 0 does not.
        for k in [BOUND_ENTRIES, BOUND_ENTRIES + 1] {
            cache
                .get_or_bind(|key| *key == k, || Ok((k, 0)))
                .expect("binds");
        }
        assert_eq!(cache.count(), BOUND_ENTRIES + 1);
        let mut rebound = Vec::new();
        for k in [1, 0] {
            cache
                .get_or_bind(
                    |key| *key == k,
                    || {
                        rebound.push(k);
                        Ok((k, 0))
                    },
                )
                .expect("binds");
        }
        assert_eq!(rebound, vec![1]);
    }

    #[test]
    fn looks_the_first_entry_up_then_the_newest() {
        let cache = BoundCache::<usize, usize>::new();
        for k in 0..3 {
            cache
                .get_or_bind(|key| *key == k, || Ok((k, k)))
                .expect("binds");
        }
        // A lookup every entry matches returns the first, having compared only it.
        let compared = std::cell::RefCell::new(Vec::new());
        let lookup = |accepts: fn(usize) -> bool| {
            compared.borrow_mut().clear();
            let v = cache
                .get_or_bind(
                    |key| {
                        compared.borrow_mut().push(*key);
                        accepts(*key)
                    },
                    || Ok((9, 9)),
                )
                .expect("found");
            (v, compared.borrow().clone())
        };
        assert_eq!(lookup(|_| true), (0, vec![0]));
        // One the first does not match returns the newest of the others it matches.
        assert_eq!(lookup(|k| k != 0), (2, vec![0, 2]));
    }

    #[test]
    fn the_first_object_is_lent_in_place_the_others_cloned() {
        use std::sync::Arc;
        let cache = BoundCache::<usize, Arc<usize>>::new();
        for k in 0..2 {
            cache
                .get_or_bind(|key| *key == k, || Ok((k, Arc::new(k))))
                .expect("binds");
        }
        let handles_while_used = |k: usize| {
            cache
                .with_bound(
                    |key| *key == k,
                    || Err(datafusion::error::DataFusionError::Internal("bound".into())),
                    Arc::strong_count,
                )
                .expect("found")
        };
        // The cache's own handle only: no reference count written per lookup.
        assert_eq!(handles_while_used(0), 1);
        // The cache's and the clone taken under the read lock.
        assert_eq!(handles_while_used(1), 2);
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
