//! Panic-containing wrappers, one module per kind of exported object.
//!
//! Each wrapper delegates every trait method datafusion-ffi forwards across the boundary and
//! runs it under [`super::panic::guard`]. Objects created by a wrapped object (accumulators,
//! evaluators, plans, streams, providers) are wrapped in turn.

pub mod aggregate;
pub mod scalar;
pub mod table;
pub mod window;
