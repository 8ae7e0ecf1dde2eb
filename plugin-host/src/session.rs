//! The host session a bundle's objects talk back to.
//!
//! datafusion-ffi's table providers, table functions and factories hold a *weak* reference to
//! a host `TaskContextProvider` (normally the `SessionContext`) to encode filters and arguments
//! against the host's function registry. Bundles create those objects in `init`, which runs in
//! `PluginHost::load` — before the application says which session they are for. A
//! [`SessionSlot`] is that indirection: objects are created against the slot, and
//! `register_into(&ctx)` points the slot at `ctx`. The session keeps the slot alive (as a config
//! extension) for as long as it lives, and the slot only holds a weak reference back.

use std::sync::{Arc, RwLock, Weak};

use datafusion::execution::{TaskContext, TaskContextProvider};
use datafusion::prelude::SessionContext;

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
        self.session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()
            .is_some_and(|s| Arc::ptr_eq(&s, ctx))
    }
}

impl TaskContextProvider for SessionSlot {
    fn task_ctx(&self) -> Arc<TaskContext> {
        let session = self
            .session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade();
        match session {
            Some(ctx) => ctx.task_ctx(),
            // Not registered yet (e.g. `inspect --load`): an empty context; nothing runs then.
            None => Arc::new(TaskContext::default()),
        }
    }
}
