//! `safety.*`: a panic injected through the toolkit's test hook (the `df_plugin.inject_panic`
//! init option, see `df_plugin_api::toolkit::panic`) into `init` and into each object the
//! behaviour checks could call must come back as an error naming the object — never abort the
//! process — and the session must go on working. Bundles that do not use the toolkit do not
//! offer the hook; for them these checks are skipped.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use df_plugin_api::record::Capability;
use df_plugin_api::toolkit::panic::{INJECT_PANIC_OPTION, INJECTED_PANIC};

use super::report::Report;
use super::{Outcomes, Trigger, VerifyOptions, grouped, scalar, table};
use crate::metadata::BundleMetadata;
use crate::{HostError, Step};

pub(super) async fn check_all(
    meta: &BundleMetadata,
    options: &VerifyOptions,
    triggers: &[Trigger],
    report: &mut Report,
) {
    let injected = |target: &str| {
        let mut o = options.bundle_options.clone();
        o.push((INJECT_PANIC_OPTION.to_owned(), target.to_owned()));
        o
    };
    match super::session_with(meta, &injected("init")) {
        Ok(_) => {
            report.skip(
                "safety",
                "the bundle does not offer the toolkit's panic-injection test hook (it ignored df_plugin.inject_panic); export it with df_plugin_api::export_bundle! to get it",
            );
            return;
        }
        Err(HostError::Refused(r))
            if r.first().is_some_and(|r| {
                r.step == Step::RootModule && r.reason.contains(INJECTED_PANIC)
            }) =>
        {
            report.pass(
                "safety.init",
                "a panic injected into init became a refusal at step 'root module'; nothing was registered",
            );
        }
        Err(e) => report.fail(
            "safety.init",
            format!("a panic injected into init did not come back as a refusal naming it: {e}"),
        ),
    }
    for (kind, name) in triggers {
        let check = format!("safety.{}.{name}", kind_label(*kind));
        let ctx = match super::session_with(meta, &injected(name)) {
            Ok(ctx) => ctx,
            Err(e) => {
                report.fail(
                    check,
                    format!("cannot load the bundle with the hook armed: {e}"),
                );
                continue;
            }
        };
        let parameters = meta
            .manifest
            .object(*kind, name)
            .map_or(0, |d| d.parameters.len());
        let outcomes = exercise(&ctx, *kind, name, parameters).await;
        let alive = df_plugin_conformance::query::query_csv(&ctx, "SELECT 1 AS one").await;
        let verdict = if !outcomes.failed_with(INJECTED_PANIC) {
            Err("the injected panic did not come back as an error of the call".to_owned())
        } else if !outcomes.failed_with(&format!("'{name}'")) {
            Err("the error of the injected panic does not name the object".to_owned())
        } else if let Err(e) = alive {
            Err(format!("the session stopped working after the panic: {e}"))
        } else {
            Ok(
                "the injected panic became an error naming the object; the session went on working"
                    .to_owned(),
            )
        };
        report.outcome(check, verdict);
    }
}

/// Calls the object the way its behaviour check did.
async fn exercise(
    ctx: &Arc<SessionContext>,
    kind: Capability,
    name: &str,
    parameters: usize,
) -> Outcomes {
    let state = ctx.state();
    match kind {
        Capability::ScalarUdf => match state.scalar_functions().get(name) {
            Some(udf) => scalar::exercise(udf, parameters),
            None => Outcomes::default(),
        },
        Capability::AggregateUdf => match state.aggregate_functions().get(name) {
            Some(udaf) => grouped::exercise_aggregate(udaf, parameters).await,
            None => Outcomes::default(),
        },
        Capability::WindowUdf => match state.window_functions().get(name) {
            Some(udwf) => grouped::exercise_window(udwf, parameters).await,
            None => Outcomes::default(),
        },
        Capability::TableFunction => table::exercise_table_function(ctx, name, parameters).await,
        Capability::TableProvider => table::exercise_table(ctx, name).await,
        Capability::TableProviderFactory => table::exercise_factory(ctx, name).await,
        _ => Outcomes::default(),
    }
}

/// The word used in check names for a kind.
pub(super) fn kind_label(kind: Capability) -> &'static str {
    match kind {
        Capability::ScalarUdf => "scalar",
        Capability::AggregateUdf => "aggregate",
        Capability::WindowUdf => "window",
        Capability::TableFunction => "table_function",
        Capability::TableProvider => "table",
        Capability::TableProviderFactory => "factory",
        _ => "planner",
    }
}
