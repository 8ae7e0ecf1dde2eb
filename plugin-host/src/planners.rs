//! Step 9 for SQL planners: installing bundles' expression, relation and type planners into a
//! session, and taking them out again.
//!
//! DataFusion's own registration calls do not give the order a plugin system needs, so the host
//! rebuilds the session state with the lists it wants (the same `SessionState` is swapped
//! under the session's lock; the session and its id stay):
//! - expression planners: every bundle's before DataFusion's defaults (so a bundle can plan
//!   `->` or `@>`), bundles in load order;
//! - relation planners: bundles' first, in load order (DataFusion's own
//!   `register_relation_planner` puts the newest first);
//! - type planners: a session has exactly one, so the host installs one [`CompositeTypePlanner`]
//!   that asks each bundle's in load order and then the planner the application had set.

use std::sync::Arc;

use datafusion::arrow::datatypes::FieldRef;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::planner::{ExprPlanner, RelationPlanner, TypePlanner};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast;
use df_plugin_api::ffi::planner::{
    ForeignExprPlanner, ForeignRelationPlanner, ForeignTypePlanner, PlannerSession,
};

use crate::session::SessionSlot;
use crate::truth::BundleObjects;

/// One bundle's planners, wrapped for one session.
#[derive(Debug, Clone, Default)]
struct Installed {
    bundle: String,
    expr: Vec<Arc<ForeignExprPlanner>>,
    relation: Vec<Arc<ForeignRelationPlanner>>,
    types: Vec<Arc<ForeignTypePlanner>>,
}

/// The planners the host installed in a session (part of its plugin registry).
#[derive(Debug, Default)]
pub(crate) struct SessionPlanners {
    installed: Vec<Installed>,
    /// The type planner the application had before the host installed its composite.
    app_type_planner: Option<Arc<dyn TypePlanner>>,
    /// The composite the host installed last, to recognise it.
    composite: Option<Arc<dyn TypePlanner>>,
}

/// Asks each bundle's type planner in load order, then the application's.
#[derive(Debug)]
struct CompositeTypePlanner {
    planners: Vec<Arc<ForeignTypePlanner>>,
    fallback: Option<Arc<dyn TypePlanner>>,
}

impl TypePlanner for CompositeTypePlanner {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        for planner in &self.planners {
            if let Some(field) = planner.plan_type_field(sql_type)? {
                return Ok(Some(field));
            }
        }
        match &self.fallback {
            Some(f) => f.plan_type_field(sql_type),
            None => Ok(None),
        }
    }
}

fn same<A: ?Sized, B: ?Sized>(a: &Arc<A>, b: &Arc<B>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl SessionPlanners {
    /// Installs `objects`' planners for `bundle` (nothing to do if it has none).
    pub(crate) fn install(
        &mut self,
        ctx: &SessionContext,
        bundle: &str,
        objects: &BundleObjects,
        slot: &Arc<SessionSlot>,
    ) {
        if objects.expr_planners.is_empty()
            && objects.relation_planners.is_empty()
            && objects.type_planners.is_empty()
        {
            return;
        }
        let session = Arc::clone(slot) as Arc<dyn PlannerSession>;
        let installed = Installed {
            bundle: bundle.to_owned(),
            expr: objects
                .expr_planners
                .iter()
                .map(|p| {
                    Arc::new(ForeignExprPlanner::new(
                        p.clone(),
                        bundle,
                        Arc::clone(&session),
                    ))
                })
                .collect(),
            relation: objects
                .relation_planners
                .iter()
                .map(|p| {
                    Arc::new(ForeignRelationPlanner::new(
                        p.clone(),
                        bundle,
                        Arc::clone(&session),
                    ))
                })
                .collect(),
            types: objects
                .type_planners
                .iter()
                .map(|p| Arc::new(ForeignTypePlanner::new(p.clone(), bundle)))
                .collect(),
        };
        self.apply(ctx, Some(installed), None);
    }

    /// Takes `bundle`'s planners out of the session.
    pub(crate) fn remove(&mut self, ctx: &SessionContext, bundle: &str) {
        if self.installed.iter().any(|i| i.bundle == bundle) {
            self.apply(ctx, None, Some(bundle));
        }
    }

    /// Rebuilds the session's planner lists: ours (after adding / removing) first, in load
    /// order, then everything else the session had.
    fn apply(&mut self, ctx: &SessionContext, add: Option<Installed>, remove: Option<&str>) {
        let before: Vec<Installed> = self.installed.clone();
        if let Some(name) = remove {
            self.installed.retain(|i| i.bundle != name);
        }
        self.installed.extend(add);

        let is_ours_expr =
            |p: &Arc<dyn ExprPlanner>| before.iter().flat_map(|i| &i.expr).any(|o| same(o, p));
        let is_ours_rel = |p: &Arc<dyn RelationPlanner>| {
            before.iter().flat_map(|i| &i.relation).any(|o| same(o, p))
        };

        let state_ref = ctx.state_ref();
        let mut state = state_ref.write();
        let session_id = state.session_id().to_owned();
        let mut builder =
            SessionStateBuilder::new_from_existing(state.clone()).with_session_id(session_id);

        let mut expr: Vec<Arc<dyn ExprPlanner>> = self
            .installed
            .iter()
            .flat_map(|i| i.expr.iter().map(|p| Arc::clone(p) as Arc<dyn ExprPlanner>))
            .collect();
        let others = builder.expr_planners().take().unwrap_or_default();
        expr.extend(others.into_iter().filter(|p| !is_ours_expr(p)));
        *builder.expr_planners() = Some(expr);

        let mut relation: Vec<Arc<dyn RelationPlanner>> = self
            .installed
            .iter()
            .flat_map(|i| {
                i.relation
                    .iter()
                    .map(|p| Arc::clone(p) as Arc<dyn RelationPlanner>)
            })
            .collect();
        let others = builder.relation_planners().take().unwrap_or_default();
        relation.extend(others.into_iter().filter(|p| !is_ours_rel(p)));
        *builder.relation_planners() = Some(relation);

        // The session's type planner is ours unless the application set another since.
        let current = builder.type_planner().take();
        let ours = match (&current, &self.composite) {
            (Some(c), Some(o)) => same(c, o),
            _ => false,
        };
        if !ours {
            self.app_type_planner = current;
        }
        let types: Vec<Arc<ForeignTypePlanner>> = self
            .installed
            .iter()
            .flat_map(|i| i.types.iter().cloned())
            .collect();
        self.composite = if types.is_empty() {
            None
        } else {
            Some(Arc::new(CompositeTypePlanner {
                planners: types,
                fallback: self.app_type_planner.clone(),
            }) as Arc<dyn TypePlanner>)
        };
        *builder.type_planner() = self
            .composite
            .clone()
            .or_else(|| self.app_type_planner.clone());
        *state = builder.build();
    }
}
