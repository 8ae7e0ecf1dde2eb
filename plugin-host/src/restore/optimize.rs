//! Optimizing a bundle's scan where DataFusion would optimize a linked provider's.
//!
//! The host sees a bundle's scan as one node ([`BundlePlan`]), so its physical optimizer
//! cannot rewrite the subtree inside; the bundle runs its own optimizer over it instead. A
//! linked provider's subtree is optimized by the session's rules in their order, and the first
//! ones may remove it: `aggregate_statistics` answers a `COUNT(*)` from the table's statistics
//! before `EnsureRequirements` would repartition the scan. A bundle that optimized its scan
//! when planning it did that work for nothing (on the Delta bench table, most of what the
//! bundle's `COUNT(*)` costs beyond native).
//!
//! So a session the host registers bundles into gets [`OptimizeBundleScans`], placed just
//! before `EnsureRequirements`. While a session has it, [`HostTableProvider`] asks a bundle
//! of plugin ABI 1.12 or later for its scans unoptimized, and the rule asks the bundle to
//! optimize each scan still in the plan when the optimizer reaches it. A session without the
//! rule (an executor's task session, an application that removed it) gets its scans optimized
//! at once, as before.
//!
//! [`HostTableProvider`]: super::plans::HostTableProvider

use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use super::plans::BundlePlan;

/// The physical optimizer rule that optimizes the bundle scans still in a plan.
#[derive(Debug, Default)]
pub struct OptimizeBundleScans;

impl OptimizeBundleScans {
    /// The rule's name, by which a session is seen to have it.
    pub const NAME: &'static str = "optimize_bundle_scans";

    /// The rule whose place this one takes just before: where a linked scan is repartitioned.
    const BEFORE: &'static str = "EnsureRequirements";

    /// Whether `session`'s physical optimizer has the rule, so a scan may be left to it.
    pub fn in_session(session: &dyn Session) -> bool {
        session
            .as_any()
            .downcast_ref::<SessionState>()
            .is_some_and(Self::in_state)
    }

    fn in_state(state: &SessionState) -> bool {
        let rules = state.physical_optimizers();
        rules.iter().any(|rule| rule.name() == Self::NAME)
    }

    /// `state` with the rule added, just before `EnsureRequirements` (first when the session
    /// has no such rule); `None` when it has the rule already.
    pub fn install(state: &SessionState) -> Option<SessionState> {
        if Self::in_state(state) {
            return None;
        }
        let mut rules = state.physical_optimizers().to_vec();
        let at = rules
            .iter()
            .position(|rule| rule.name() == Self::BEFORE)
            .unwrap_or(0);
        rules.insert(at, Arc::new(Self));
        let state = SessionStateBuilder::new_from_existing(state.clone())
            .with_session_id(state.session_id().to_owned())
            .with_physical_optimizer_rules(rules)
            .build();
        Some(state)
    }
}

impl PhysicalOptimizerRule for OptimizeBundleScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let optimized = match node.downcast_ref::<BundlePlan>() {
                Some(scan) => scan.optimized()?,
                None => None,
            };
            Ok(match optimized {
                Some(plan) => Transformed::yes(plan),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        Self::NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    #[test]
    fn goes_just_before_ensure_requirements_once_in_the_same_session() {
        let state = SessionContext::new().state();
        assert!(!OptimizeBundleScans::in_session(&state));
        let with = OptimizeBundleScans::install(&state).expect("not there yet");
        assert!(OptimizeBundleScans::in_session(&with));
        let names: Vec<&str> = with
            .physical_optimizers()
            .iter()
            .map(|r| r.name())
            .collect();
        let at = names.iter().position(|n| *n == OptimizeBundleScans::NAME);
        let next = at.and_then(|at| names.get(at + 1));
        assert_eq!(next, Some(&"EnsureRequirements"), "{names:?}");
        assert_eq!(names.len(), state.physical_optimizers().len() + 1);
        assert_eq!(with.session_id(), state.session_id());
        assert!(OptimizeBundleScans::install(&with).is_none(), "once");

        let bare = SessionStateBuilder::new()
            .with_physical_optimizer_rules(Vec::new())
            .build();
        let with = OptimizeBundleScans::install(&bare).expect("installed");
        assert_eq!(
            with.physical_optimizers().len(),
            1,
            "first, with no such rule"
        );
    }
}
