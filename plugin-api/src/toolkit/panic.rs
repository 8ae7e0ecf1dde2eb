//! Turning panics into errors.
//!
//! datafusion-ffi's `extern "C"` wrappers do not catch unwinding, so a panic in a bundle's UDF,
//! accumulator or stream would abort the host. Every object the toolkit exports is wrapped so
//! that each call runs under `catch_unwind` and a panic becomes an error that names the bundle
//! and the object. This works because bundles are built with `panic = "unwind"`.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};

/// Who an exported object is, for error messages: "scalar function 'f' of bundle 'udfs'".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectLabel {
    pub bundle: Arc<str>,
    pub kind: &'static str,
    pub name: String,
}

impl ObjectLabel {
    pub fn new(bundle: &Arc<str>, kind: &'static str, name: &str) -> Arc<Self> {
        Arc::new(Self {
            bundle: Arc::clone(bundle),
            kind,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for ObjectLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} '{}' of plugin bundle '{}'",
            self.kind, self.name, self.bundle
        )
    }
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(panic payload is not a string)".to_owned()
    }
}

/// The error a contained panic becomes.
pub fn panic_error(label: &ObjectLabel, call: &str, payload: &(dyn Any + Send)) -> DataFusionError {
    DataFusionError::Execution(format!(
        "{label} panicked in {call}: {}",
        panic_message(payload)
    ))
}

/// Runs `f`, turning a panic into an error naming `label` and `call`.
pub fn guard<T>(label: &ObjectLabel, call: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(panic_error(label, call, payload.as_ref())),
    }
}

/// Runs an infallible `f`; on panic logs the panic and returns `fallback`.
pub fn guard_or<T>(label: &ObjectLabel, call: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            log::error!("{}", panic_error(label, call, payload.as_ref()));
            fallback
        }
    }
}
