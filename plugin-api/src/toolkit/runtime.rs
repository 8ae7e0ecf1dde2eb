//! The bundle's own tokio runtime.
//!
//! A cdylib has its own copy of tokio, so the host's runtime is invisible inside it: any tokio
//! use (timers, object-store IO) outside a runtime entered *by the bundle* panics with "there is
//! no reactor running". Each bundle therefore owns one multi-threaded runtime, created at `init`
//! and never shut down, and the toolkit enters it wherever datafusion-ffi does not: table
//! function calls, `scan`, `insert_into`, factory `create` (datafusion-ffi itself enters it in
//! `execute` and `poll_next` when given the handle).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Creates the runtime on first use; later calls return the same one.
pub fn runtime(bundle: &str) -> std::io::Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(format!("df-plugin-{bundle}"))
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// The handle of the bundle's runtime, once `init` has created it.
pub fn handle() -> Option<Handle> {
    RUNTIME.get().map(|rt| rt.handle().clone())
}

/// Runs `fut` on the bundle runtime and blocks the calling thread until it is done.
///
/// For synchronous calls that need IO, such as a table function opening a table to learn its
/// schema. The caller is a host thread (possibly a worker of the host's own runtime, which is
/// another tokio copy), so blocking here never starves the bundle runtime. A panic inside
/// `fut` resumes in the caller, where the toolkit's guard turns it into an error.
pub fn block_on<F, T>(fut: F) -> datafusion::error::Result<T>
where
    F: Future<Output = datafusion::error::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    // Linked natively (no `init`), the objects still need a runtime of their own.
    let handle = match handle() {
        Some(handle) => handle,
        None => runtime("native")
            .map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!(
                    "cannot start a tokio runtime: {e}"
                ))
            })?
            .handle()
            .clone(),
    };
    match futures::executor::block_on(handle.spawn(fut)) {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(datafusion::error::DataFusionError::Execution(format!(
            "the bundle's runtime cancelled a task: {e}"
        ))),
    }
}

/// A future that enters the bundle runtime every time it is polled.
pub struct InRuntime<F> {
    handle: Option<Handle>,
    inner: Pin<Box<F>>,
}

impl<F: Future> InRuntime<F> {
    pub fn new(inner: F) -> Self {
        Self {
            handle: handle(),
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _guard = this.handle.as_ref().map(Handle::enter);
        this.inner.as_mut().poll(cx)
    }
}
