//! Bundle file sizes: the release files as built, and stripped of their symbol tables (what a
//! distribution ships; `strip` keeps the sections the host reads).
//!
//! A stripped size has a baseline like a query does: the *floor*, the smallest bundle
//! datafusion-ffi allows, built in the same cargo run with the same features (`bench/floor/`).
//! `size-floor-functions` exports one built-in scalar, aggregate and window function and
//! nothing else; `size-floor-ffi` adds a table function and a table provider; `size-floor-delta`
//! exports delta-rs's own `DeltaTableFactory` the same way; `size-floor-planners` calls the
//! planners bundle's own planners directly and exports their functions. The floor is
//! what any datafusion-ffi bundle of this DataFusion weighs; the difference is what this
//! project adds.
//!
//! One more row is a floor of a design not built: `size-floor-delta-kernel`, a Delta table
//! source on delta-kernel alone, what a Delta bundle whose Delta code links no DataFusion would
//! start from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use df_plugin_conformance::bundles;

use crate::report::{Row, Target};
use crate::sessions::BUNDLES;

/// The largest stripped bundle the project accepts.
pub const MAX_STRIPPED_MB: f64 = 40.0;

/// The floor each bundle is compared with: the one with the kinds it exports.
fn floor_of(bundle: &str) -> &'static str {
    match bundle {
        "df-plugin-delta" => "size-floor-delta",
        // Scalar, aggregate and window functions only; table sources (plugin ABI 1.15), which
        // cross with no DataFusion plan.
        "df-plugin-udfs" | "df-plugin-udtfs" => "size-floor-functions",
        // Lean planners (plugin ABI 1.16): the planners themselves, linked in.
        "df-plugin-planners" => "size-floor-planners",
        _ => "size-floor-ffi",
    }
}

pub fn measure(built: &Path) -> Vec<Row> {
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    // Bundles share a floor: each is stripped once.
    let mut floors: HashMap<&str, Option<f64>> = HashMap::new();
    for c in BUNDLES {
        let file = bundles::bundle_file(built, c);
        let Some(as_built) = megabytes(&file) else {
            eprintln!("{} is missing: its size is not measured", file.display());
            continue;
        };
        rows.push(Row::value(
            "size",
            &format!("{c}: as built"),
            "MB",
            as_built,
            Target::None,
        ));
        let Some(stripped) = strip(&file, scratch.path()) else {
            eprintln!("`strip` is not available: the stripped size of {c} is not measured");
            continue;
        };
        let mut row = Row::value(
            "size",
            &format!("{c}: stripped"),
            "MB",
            stripped,
            Target::MaxValue {
                max: MAX_STRIPPED_MB,
            },
        );
        let floor = floor_of(c);
        row.baseline = *floors
            .entry(floor)
            .or_insert_with(|| strip(&bundles::bundle_file(built, floor), scratch.path()));
        rows.push(row);
    }
    let kernel = bundles::bundle_file(built, KERNEL_ROUTE);
    if let Some(stripped) = strip(&kernel, scratch.path()) {
        rows.push(Row::value(
            "size",
            &format!("{KERNEL_ROUTE} (a Delta table source on delta-kernel alone): stripped"),
            "MB",
            stripped,
            Target::None,
        ));
    }
    rows
}

/// The floor of a Delta bundle whose Delta code would use delta-kernel and no DataFusion.
pub const KERNEL_ROUTE: &str = "size-floor-delta-kernel";

fn megabytes(file: &Path) -> Option<f64> {
    std::fs::metadata(file).ok().map(|m| m.len() as f64 / 1e6)
}

/// The size of `file` stripped into `scratch`, if `strip` runs.
fn strip(file: &Path, scratch: &Path) -> Option<f64> {
    let out: PathBuf = scratch.join(file.file_name()?);
    let status = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&out)
        .arg(file)
        .status()
        .ok()?;
    status.success().then(|| megabytes(&out)).flatten()
}
