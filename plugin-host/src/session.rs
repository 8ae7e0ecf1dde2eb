//! The host session a bundle's objects talk back to.
//!
//! datafusion-ffi's table providers, table functions and factories hold a *weak* reference to
//! a host `TaskContextProvider` (normally the `SessionContext`) to encode filters and arguments
//! against the host's function registry. Bundles create those objects in `init`, which runs in
//! `PluginHost::load` — before the application says which session they are for. A
//! [`SessionSlot`] is that indirection: objects are created against the slot, and
//! `register_into(&ctx)` points the slot at `ctx`. The session keeps the slot alive (as a config
//! extension) for as long as it lives, and the slot only holds a weak reference back.
//!
//! datafusion-ffi converts the slot's whole task context, every function of the session, each
//! time a bundle decodes a scan's filters or a table function's arguments: ~1 ms a scan, 2 ms
//! a table function call. The host knows which functions those expressions call, so while it
//! is inside such a call it puts a task context with only those in scope on its thread
//! ([`with_task_ctx`], [`WithTaskCtx`]), and the slot hands that one out instead.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use datafusion::execution::{TaskContext, TaskContextProvider};
use datafusion::prelude::SessionContext;
use df_plugin_api::ffi::planner::PlannerSession;

/// A late-bound, weak link to the session a bundle's objects are registered in.
#[derive(Debug, Default)]
pub struct SessionSlot {
    session: RwLock<Weak<SessionContext>>,
}

impl SessionSlot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Points the slot at `ctx`. Returns false if it already points at another live session.
    pub fn bind(&self, ctx: &Arc<SessionContext>) -> bool {
        let mut session = self.session.write().unwrap_or_else(|p| p.into_inner());
        match session.upgrade() {
            Some(current) if !Arc::ptr_eq(&current, ctx) => false,
            _ => {
                *session = Arc::downgrade(ctx);
                true
            }
        }
    }

    /// Whether the slot points at `ctx`.
    pub fn is_bound_to(&self, ctx: &Arc<SessionContext>) -> bool {
        self.live().is_some_and(|s| Arc::ptr_eq(&s, ctx))
    }

    /// The session, if bound and still alive.
    fn live(&self) -> Option<Arc<SessionContext>> {
        self.session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()
    }
}

impl TaskContextProvider for SessionSlot {
    fn task_ctx(&self) -> Arc<TaskContext> {
        if let Some(scoped) = SCOPED.with(|s| s.borrow().clone()) {
            return scoped;
        }
        match self.live() {
            Some(ctx) => ctx.task_ctx(),
            // Not registered yet (e.g. `inspect --load`): an empty context; nothing runs then.
            None => Arc::new(TaskContext::default()),
        }
    }
}

/// Planners decode their bundle's answers against the session itself, not a task context: see
/// [`PlannerSession`]. No scope applies: planning never runs inside a bundle's scan or call.
impl PlannerSession for SessionSlot {
    fn session(&self) -> Option<Arc<SessionContext>> {
        self.live()
    }
}

thread_local! {
    /// The task context a bundle's call back into a slot gets on this thread (see the module).
    static SCOPED: RefCell<Option<Arc<TaskContext>>> = const { RefCell::new(None) };
}

/// Puts a context in scope and takes it out again when dropped, also on a panic.
struct Scope(Option<Arc<TaskContext>>);

impl Scope {
    fn enter(ctx: &Arc<TaskContext>) -> Self {
        Self(SCOPED.with(|s| s.replace(Some(Arc::clone(ctx)))))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.0.take();
        SCOPED.with(|s| *s.borrow_mut() = previous);
    }
}

/// Runs `f` (a synchronous call into a bundle) with `ctx` as the task context every slot hands
/// out on this thread. `ctx` must hold every function the expressions the call sends across
/// use: the bundle decodes them against it.
pub fn with_task_ctx<T>(ctx: &Arc<TaskContext>, f: impl FnOnce() -> T) -> T {
    let _scope = Scope::enter(ctx);
    f()
}

/// A future polled with a task context in scope (see [`with_task_ctx`]): datafusion-ffi calls
/// into the bundle, which calls back into the slot, from inside a poll, on the polling thread.
pub struct WithTaskCtx<F> {
    ctx: Arc<TaskContext>,
    inner: Pin<Box<F>>,
}

impl<F: Future> WithTaskCtx<F> {
    pub fn new(ctx: Arc<TaskContext>, inner: F) -> Self {
        Self {
            ctx,
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for WithTaskCtx<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = Scope::enter(&self.ctx);
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[test]
    fn a_scoped_context_is_handed_out_only_inside_its_scope_and_nests() {
        let ctx = Arc::new(SessionContext::new());
        let slot = SessionSlot::new();
        assert!(slot.bind(&ctx));
        let full = slot.task_ctx().scalar_functions().len();
        assert!(full > 100, "the session's built-ins: {full}");

        let lean = Arc::new(TaskContext::default());
        let lean_len = |slot: &SessionSlot| slot.task_ctx().scalar_functions().len();
        with_task_ctx(&lean, || {
            assert_eq!(lean_len(&slot), 0);
            with_task_ctx(&ctx.task_ctx(), || assert_eq!(lean_len(&slot), full));
            assert_eq!(lean_len(&slot), 0);
        });
        assert_eq!(lean_len(&slot), full);

        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_task_ctx(&lean, || panic!("boom"))
        }));
        assert!(caught.is_err());
        assert_eq!(lean_len(&slot), full, "a panic leaves no scope behind");
    }

    #[test]
    fn a_future_sees_its_context_in_every_poll_and_others_do_not() {
        let ctx = Arc::new(SessionContext::new());
        let slot = SessionSlot::new();
        assert!(slot.bind(&ctx));
        let lean = Arc::new(TaskContext::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let seen = runtime.block_on(WithTaskCtx::new(lean, async {
            let before = slot.task_ctx().scalar_functions().len();
            tokio::task::yield_now().await;
            (before, slot.task_ctx().scalar_functions().len())
        }));
        assert_eq!(seen, (0, 0));
        assert!(slot.task_ctx().scalar_functions().len() > 100);
    }
}
