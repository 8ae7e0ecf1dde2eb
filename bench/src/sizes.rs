//! Bundle file sizes: the release files as built, and stripped of their symbol tables (what a
//! distribution ships; `strip` keeps the sections the host reads).

use std::path::Path;
use std::process::Command;

use df_plugin_conformance::bundles;

use crate::report::{Row, Target};
use crate::sessions::BUNDLES;

/// The largest stripped bundle the project accepts.
pub const MAX_STRIPPED_MB: f64 = 40.0;

pub fn measure(built: &Path) -> Vec<Row> {
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    for c in BUNDLES {
        let file = bundles::bundle_file(built, c);
        let mb = |p: &Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1e6);
        rows.push(Row::value(
            "size",
            &format!("{c}: as built"),
            "MB",
            mb(&file),
            Target::None,
        ));
        let stripped = scratch.path().join(file.file_name().expect("file name"));
        let status = Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(&stripped)
            .arg(&file)
            .status();
        match status {
            Ok(s) if s.success() => rows.push(Row::value(
                "size",
                &format!("{c}: stripped"),
                "MB",
                mb(&stripped),
                Target::MaxValue {
                    max: MAX_STRIPPED_MB,
                },
            )),
            _ => eprintln!("`strip` is not available: the stripped size of {c} is not measured"),
        }
    }
    rows
}
