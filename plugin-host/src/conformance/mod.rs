//! The conformance kit's checks: everything `df-plugin-host verify BUNDLE` proves about one
//! bundle file, as a library ([`verify`]) for a third-party author's `cargo test`.
//!
//! The checks, in order (each named in the [`Report`]):
//!
//! - **metadata** ([`pipeline`]): readable from the file without loading it, manifest valid,
//!   versions compatible with this host, ABI record equal to the live handshake;
//! - **truthfulness** ([`pipeline`]): capability bits and exported objects agree, the manifest
//!   and the exports agree, and what registers in a session carries the manifest's names,
//!   parameters and docs;
//! - **behaviour**, one check per object: functions called with their declared types, NULLs
//!   and empty batches, results of the right length and type ([`scalar`]); aggregates and
//!   window functions equal at 1 and 4 partitions ([`grouped`]); tables and table functions
//!   returning their declared schema ([`table`]); planners declining what they did not declare
//!   ([`planner`]);
//! - **safety** ([`safety`]): a panic injected through the toolkit's test hook
//!   (`df_plugin.inject_panic`) into `init` and into each object is contained;
//! - **slt**: the bundle's own `.slt` files (the manifest's `slt` directory, or `--slt`) pass
//!   with only this bundle loaded.
//!
//! Nothing here trusts the bundle: every call that crosses may fail or panic, and a failure
//! becomes a failed check, never a crash of the verifying process.

mod grouped;
mod pipeline;
mod planner;
mod report;
mod safety;
mod scalar;
mod table;
mod values;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};

pub use report::{Check, Report, Status};

use crate::PluginHost;
use crate::metadata::BundleMetadata;

/// What to verify besides the bundle file itself.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Directories of `.slt` files to run; empty: the manifest's `slt` directory, if any.
    pub slt_dirs: Vec<PathBuf>,
    /// `${NAME}` substitutions for `.slt` files that say `control substitution on`.
    pub slt_vars: Vec<(String, String)>,
    /// Options handed to the bundle's `init` (as `PluginHost::bundle_option`).
    pub bundle_options: Vec<(String, String)>,
}

/// Runs every check on the bundle at `path` and returns the report; never panics on
/// anything the bundle does.
pub async fn verify(path: &Path, options: &VerifyOptions) -> Report {
    let mut report = Report {
        path: path.to_path_buf(),
        bundle: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        checks: Vec::new(),
    };
    let Some(meta) = pipeline::metadata(path, &mut report) else {
        return report;
    };
    report.bundle = format!(
        "{} {}",
        meta.manifest.bundle.name, meta.manifest.bundle.version
    );
    let Some(ctx) = pipeline::load(&meta, options, &mut report) else {
        return report;
    };
    pipeline::registered(&ctx, &meta, &mut report);

    let mut triggers = Vec::new();
    triggers.extend(scalar::check_all(&ctx, &meta, &mut report));
    triggers.extend(grouped::check_all(&ctx, &meta, &mut report).await);
    triggers.extend(table::check_all(&ctx, &meta, &mut report).await);
    planner::check_all(&ctx, &meta, &mut report).await;
    safety::check_all(&meta, options, &triggers, &mut report).await;
    slt(&meta, options, &mut report).await;
    report
}

/// A session like the CLI's, with `path` loaded through the whole pipeline by a host that
/// hands `bundle` the given init options. The error is the refusal, as text.
pub(crate) fn session_with(
    meta: &BundleMetadata,
    options: &[(String, String)],
) -> Result<Arc<SessionContext>, crate::HostError> {
    let ctx = fresh_session(4);
    let mut builder = PluginHost::builder().ignore_env(true).cache_dir(None);
    for (k, v) in options {
        builder = builder.bundle_option(&meta.manifest.bundle.name, k, v);
    }
    builder.build()?.attach(&ctx)?;
    crate::lifecycle::load(&ctx, &meta.path, false)?;
    Ok(ctx)
}

/// An empty session with `partitions` target partitions and information_schema on.
pub(crate) fn fresh_session(partitions: usize) -> Arc<SessionContext> {
    Arc::new(SessionContext::new_with_config(fresh_config(partitions)))
}

/// The configuration of [`fresh_session`].
pub(crate) fn fresh_config(partitions: usize) -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(partitions)
}

/// An object a behaviour check managed to call: the safety check injects a panic into it.
pub(crate) type Trigger = (df_plugin_api::record::Capability, String);

/// What one generated call of a bundle's object came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It returned a well-formed result.
    Accepted,
    /// It refused the input with an error (fine: functions may reject values).
    Declined(String),
    /// It broke its contract: wrong length or type, a schema other than declared, a panic.
    Violation(String),
}

impl Outcome {
    /// An error from the call: a decline, unless it is a caught panic.
    pub(crate) fn refused(message: String) -> Self {
        if is_panic(&message) {
            Self::Violation(format!("panicked instead of returning an error: {message}"))
        } else if message.contains("(a bug in the bundle)") {
            // The contract checks of the toolkit's guard and of the host (wrong length or type).
            Self::Violation(message)
        } else {
            Self::Declined(message)
        }
    }
}

/// Every call a behaviour check made of one object.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    calls: Vec<(String, Outcome)>,
    /// Why nothing could be called at all.
    none_accepted: Option<String>,
}

impl Outcomes {
    pub(crate) fn push(&mut self, what: impl Into<String>, outcome: Outcome) {
        self.calls.push((what.into(), outcome));
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.calls.iter().filter(|(_, o)| f(o)).count()
    }

    /// At least one call got through, so a panic injected into the object is reachable.
    pub(crate) fn reachable(&self) -> bool {
        self.count(|o| matches!(o, Outcome::Accepted)) > 0
    }

    /// Whether any call failed with a message containing `needle`.
    pub(crate) fn failed_with(&self, needle: &str) -> bool {
        self.calls.iter().any(|(_, o)| match o {
            Outcome::Declined(m) | Outcome::Violation(m) => m.contains(needle),
            Outcome::Accepted => false,
        })
    }

    /// Pass when no call broke the contract and at least one was accepted.
    pub(crate) fn verdict(&self, noun: &str) -> Result<String, String> {
        let detail = self.verdict_allowing_declines(noun)?;
        if self.reachable() {
            return Ok(detail);
        }
        let first = self.calls.iter().find_map(|(what, o)| match o {
            Outcome::Declined(m) => Some(format!("{what}: {m}")),
            _ => None,
        });
        Err(format!(
            "no generated {noun} was accepted, so nothing was proven: {}",
            first
                .or_else(|| self.none_accepted.clone())
                .unwrap_or_else(|| "nothing to call".into())
        ))
    }

    /// Pass when no call broke the contract, even if every call was declined (tables and
    /// table functions whose arguments the kit cannot guess, e.g. a path to a Delta table).
    pub(crate) fn verdict_allowing_declines(&self, noun: &str) -> Result<String, String> {
        let violations: Vec<String> = self
            .calls
            .iter()
            .filter_map(|(what, o)| match o {
                Outcome::Violation(m) => Some(format!("{what}: {m}")),
                _ => None,
            })
            .collect();
        if !violations.is_empty() {
            let more = violations.len().saturating_sub(5);
            let mut text = violations
                .into_iter()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n");
            if more > 0 {
                text.push_str(&format!("\n... and {more} more"));
            }
            return Err(text);
        }
        let accepted = self.count(|o| matches!(o, Outcome::Accepted));
        let declined = self.count(|o| matches!(o, Outcome::Declined(_)));
        let mut detail =
            format!("{accepted} {noun}(s) well-formed, {declined} declined with an error");
        if let (0, Some((what, Outcome::Declined(m)))) = (accepted, self.calls.first()) {
            detail.push_str(&format!(" (e.g. {what}: {m})"));
        }
        Ok(detail)
    }
}

/// True when an error message says a panic was caught (by the toolkit's guards or the
/// host's): a panic is never an acceptable way to decline a call.
pub(crate) fn is_panic(message: &str) -> bool {
    message.contains("panicked")
}

/// The bundle's own `.slt` files, each in a fresh session with only this bundle loaded.
async fn slt(meta: &BundleMetadata, options: &VerifyOptions, report: &mut Report) {
    let dirs = if options.slt_dirs.is_empty() {
        match meta.manifest.slt_dir() {
            Some(dir) if dir.is_dir() => vec![dir],
            Some(dir) => {
                report.skip(
                    "slt",
                    format!(
                        "the manifest's slt directory {} is not on this machine; pass --slt DIR",
                        dir.display()
                    ),
                );
                return;
            }
            None => {
                report.skip(
                    "slt",
                    "the manifest declares no slt directory and none was given (--slt DIR)",
                );
                return;
            }
        }
    } else {
        options.slt_dirs.clone()
    };
    let vars: Vec<(&str, &str)> = options
        .slt_vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for dir in dirs {
        let files = match df_plugin_conformance::slt::files_in(&dir) {
            Ok(files) if !files.is_empty() => files,
            Ok(_) => {
                report.fail(
                    format!("slt {}", dir.display()),
                    "no .slt files in this directory",
                );
                continue;
            }
            Err(e) => {
                report.fail(
                    format!("slt {}", dir.display()),
                    format!("cannot read the directory: {e}"),
                );
                continue;
            }
        };
        for file in files {
            let name = format!(
                "slt.{}",
                file.file_name().unwrap_or_default().to_string_lossy()
            );
            let ctx = match session_with(meta, &options.bundle_options) {
                Ok(ctx) => ctx,
                Err(e) => {
                    report.fail(name, format!("cannot load the bundle: {e}"));
                    continue;
                }
            };
            let result = df_plugin_conformance::slt::run_file_with_vars(ctx, &file, &vars).await;
            report.outcome(name, result.map(|()| format!("{} passed", file.display())));
        }
    }
}
