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

/// The host option that arms the conformance kit's panic injection for one `init`: its value
/// is `init` (the bundle's `exports` function) or the name of one exported object, whose work
/// calls then panic inside their guard. Every toolkit bundle offers this test hook, so
/// `df-plugin-host verify` can prove its guards hold without the author writing a panicking
/// object. Objects of other `init`s (other sessions) are unaffected.
pub const INJECT_PANIC_OPTION: &str = "df_plugin.inject_panic";

/// The message of an injected panic.
pub const INJECTED_PANIC: &str = "panic injected by the conformance kit (df_plugin.inject_panic)";

/// The calls an injected panic fires in: the ones that do an object's work (planning-time
/// queries such as `return_type` stay well-behaved, so the panic surfaces where a real bug in
/// the object's body would).
const WORK_CALLS: [&str; 8] = [
    "invoke",
    "update_batch",
    "partition_evaluator",
    "scan",
    "execute",
    "call",
    "create",
    "evaluate_all",
];

/// The bundle one `init` exports objects for, as every guard of that `init` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleTag {
    pub name: Arc<str>,
    /// [`INJECT_PANIC_OPTION`]'s value for this `init`, if the host set it.
    pub inject_panic: Option<Arc<str>>,
}

impl BundleTag {
    pub fn new(name: &str, inject_panic: Option<&str>) -> Self {
        Self {
            name: Arc::from(name),
            inject_panic: inject_panic.map(Arc::from),
        }
    }
}

/// Who an exported object is, for error messages: "scalar function 'f' of bundle 'udfs'".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectLabel {
    pub bundle: Arc<str>,
    pub kind: &'static str,
    pub name: String,
    /// Whether the conformance kit asked this object's work calls to panic.
    pub inject_panic: bool,
}

impl ObjectLabel {
    pub fn new(bundle: &BundleTag, kind: &'static str, name: &str) -> Arc<Self> {
        Arc::new(Self {
            bundle: Arc::clone(&bundle.name),
            kind,
            name: name.to_owned(),
            inject_panic: bundle.inject_panic.as_deref() == Some(name),
        })
    }

    /// Panics if the conformance kit armed this object and `call` does its work; called inside
    /// every guard, so the panic is caught exactly where one from the object's body would be.
    pub fn injected_panic(&self, call: &str) {
        if self.inject_panic && WORK_CALLS.contains(&call) {
            panic!("{INJECTED_PANIC}");
        }
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
    match catch_unwind(AssertUnwindSafe(|| {
        label.injected_panic(call);
        f()
    })) {
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
