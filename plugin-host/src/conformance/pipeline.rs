//! The metadata and truthfulness checks: the load pipeline run one step at a time, each step
//! reported as its own check.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use df_plugin_api::record::Capability;

use super::report::Report;
use crate::metadata::{self, BundleMetadata};
use crate::{HostError, PluginRegistry, Refusal, Step, verify};

/// `metadata.readable`, `metadata.manifest` and `metadata.versions`: everything that is decided
/// from the file alone. `None` when the bundle cannot go further.
pub(super) fn metadata(path: &std::path::Path, report: &mut Report) -> Option<BundleMetadata> {
    let meta = match metadata::read(path) {
        Ok(meta) => meta,
        Err(r) => {
            let check = if r.reason.starts_with("the embedded manifest") {
                report.pass("metadata.readable", "the sections were read from the file");
                "metadata.manifest"
            } else {
                "metadata.readable"
            };
            report.fail(check, refusal_text(&r));
            return None;
        }
    };
    report.pass(
        "metadata.readable",
        format!(
            "ABI record and manifest read from the file without loading it ({} {}, {} bytes)",
            meta.format, meta.architecture, meta.file_size
        ),
    );
    report.pass(
        "metadata.manifest",
        format!(
            "valid: {} object(s), {} option(s), requires plugin ABI {}",
            meta.manifest.objects.len(),
            meta.manifest.options.len(),
            meta.manifest.bundle.requires
        ),
    );
    match verify::check(&meta) {
        Ok(()) => report.pass(
            "metadata.versions",
            format!(
                "plugin ABI {}.{}, datafusion {}, datafusion-ffi {}, arrow {}, sqlparser {}, {}",
                meta.info.abi_major,
                meta.info.abi_minor,
                meta.info.datafusion_version,
                meta.info.datafusion_ffi_major,
                meta.info.arrow_major,
                meta.info.sqlparser_version,
                meta.info.target
            ),
        ),
        Err(r) => {
            report.fail("metadata.versions", refusal_text(&r));
            return None;
        }
    }
    Some(meta)
}

/// Loads the bundle into a fresh session through the whole pipeline: `load.open`,
/// `metadata.handshake`, `load.init`, `truth.capabilities`, `truth.exports`, `load.register`.
pub(super) fn load(
    meta: &BundleMetadata,
    options: &super::VerifyOptions,
    report: &mut Report,
) -> Option<Arc<SessionContext>> {
    const STEPS: [(Step, &str, &str); 5] = [
        (
            Step::Open,
            "load.open",
            "opened (dlopen RTLD_NOW | RTLD_LOCAL)",
        ),
        (
            Step::Handshake,
            "metadata.handshake",
            "the live ABI record and manifest equal the file's",
        ),
        (
            Step::RootModule,
            "load.init",
            "abi_stable layout check and init passed",
        ),
        (
            Step::Truthfulness,
            "truth.exports",
            "the exports match the manifest (names, kinds, parameters)",
        ),
        (
            Step::Register,
            "load.register",
            "registered into a fresh session",
        ),
    ];
    let refusal = match super::session_with(meta, &options.bundle_options) {
        Ok(ctx) => {
            report.pass(
                "truth.capabilities",
                format!(
                    "every capability bit has objects and every object its bit ({})",
                    meta.info.capabilities
                ),
            );
            for (_, name, detail) in STEPS {
                report.pass(name, detail);
            }
            return Some(ctx);
        }
        Err(HostError::Refused(mut refusals)) if !refusals.is_empty() => refusals.remove(0),
        Err(e) => {
            report.fail("load.open", e.to_string());
            return None;
        }
    };
    for (step, name, detail) in STEPS {
        if step == refusal.step && step == Step::Truthfulness {
            truthfulness(&refusal, report);
            return None;
        }
        if step == refusal.step {
            report.fail(name, refusal_text(&refusal));
            return None;
        }
        report.pass(name, detail);
    }
    report.fail(
        format!("load.{}", refusal.step.as_str().replace(' ', "_")),
        refusal_text(&refusal),
    );
    None
}

/// Splits a truthfulness refusal into the capability-bit check and the manifest check.
fn truthfulness(r: &Refusal, report: &mut Report) {
    let (bits, rest): (Vec<_>, Vec<_>) = r
        .mismatches
        .iter()
        .partition(|m| m.field.starts_with("capability "));
    let lines = |ms: &[&crate::Mismatch]| {
        ms.iter()
            .map(|m| mismatch_text(m))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if bits.is_empty() {
        report.pass(
            "truth.capabilities",
            "every capability bit has objects and every object its bit",
        );
    } else {
        report.fail(
            "truth.capabilities",
            format!("{}\nfix: {}", lines(&bits), r.fix),
        );
    }
    if rest.is_empty() && !bits.is_empty() {
        report.pass("truth.exports", "the exports match the manifest");
    } else if !rest.is_empty() {
        report.fail("truth.exports", format!("{}\nfix: {}", lines(&rest), r.fix));
    } else {
        report.fail("truth.exports", refusal_text(r));
    }
}

/// `truth.registered`: every manifest object is in the session under its name, with the
/// manifest's doc and parameter names, and the catalogue attributes it to this bundle.
pub(super) fn registered(ctx: &SessionContext, meta: &BundleMetadata, report: &mut Report) {
    let state = ctx.state();
    let registry = PluginRegistry::of(ctx);
    let catalogue = registry.objects();
    let bundle = &meta.manifest.bundle.name;
    let mut problems = Vec::new();
    for decl in &meta.manifest.objects {
        let name = decl.name.as_str();
        let (present, doc, params) = match decl.kind {
            Capability::ScalarUdf => {
                let f = state.scalar_functions().get(name);
                (
                    f.is_some(),
                    f.and_then(|f| f.documentation())
                        .map(|d| d.description.clone()),
                    f.and_then(|f| f.signature().parameter_names.clone()),
                )
            }
            Capability::AggregateUdf => {
                let f = state.aggregate_functions().get(name);
                (
                    f.is_some(),
                    f.and_then(|f| f.documentation())
                        .map(|d| d.description.clone()),
                    f.and_then(|f| f.signature().parameter_names.clone()),
                )
            }
            Capability::WindowUdf => {
                let f = state.window_functions().get(name);
                (
                    f.is_some(),
                    f.and_then(|f| f.documentation())
                        .map(|d| d.description.clone()),
                    f.and_then(|f| f.signature().parameter_names.clone()),
                )
            }
            Capability::TableFunction => (state.table_functions().contains_key(name), None, None),
            Capability::TableProviderFactory => (
                state
                    .table_factories()
                    .contains_key(&name.to_ascii_uppercase()),
                None,
                None,
            ),
            Capability::TableProvider => (ctx.table_exist(name).unwrap_or(false), None, None),
            // Planners have no entry of their own in a session; the catalogue lists them.
            _ => (true, None, None),
        };
        if !present {
            problems.push(format!("{} '{name}' is not in the session", decl.kind));
            continue;
        }
        if !catalogue
            .iter()
            .any(|o| o.name == name && o.bundle == *bundle)
        {
            problems.push(format!(
                "{} '{name}' is missing from df_plugin_objects()",
                decl.kind
            ));
        }
        if !decl.doc.is_empty() && doc.as_ref().is_some_and(|d| d.trim() != decl.doc.trim()) {
            problems.push(format!(
                "{} '{name}': the session's doc {:?} is not the manifest's {:?}",
                decl.kind,
                doc.unwrap_or_default(),
                decl.doc
            ));
        }
        if !decl.parameters.is_empty() && params.as_ref().is_some_and(|p| *p != decl.parameters) {
            problems.push(format!(
                "{} '{name}': parameter names {:?} are not the manifest's {:?}",
                decl.kind,
                params.unwrap_or_default(),
                decl.parameters
            ));
        }
    }
    if problems.is_empty() {
        report.pass(
            "truth.registered",
            format!(
                "all {} object(s) registered under their manifest names, with its docs and parameter names",
                meta.manifest.objects.len()
            ),
        );
    } else {
        report.fail("truth.registered", problems.join("\n"));
    }
}

/// A refusal as report text: reason, each mismatch, and the fix.
pub(super) fn refusal_text(r: &Refusal) -> String {
    let mut out = format!("refused at step '{}': {}", r.step, r.reason);
    for m in &r.mismatches {
        out.push_str(&format!("\n{}", mismatch_text(m)));
    }
    out.push_str(&format!("\nfix: {}", r.fix));
    out
}

fn mismatch_text(m: &crate::Mismatch) -> String {
    format!("{}: expected {}, found {}", m.field, m.expected, m.found)
}
