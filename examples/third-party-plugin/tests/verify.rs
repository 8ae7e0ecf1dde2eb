//! Runs the conformance kit on this crate's own bundle file, as `df-plugin-host verify` would:
//! metadata, truthfulness, every object called with its declared types, NULLs and empty
//! batches, injected panics, and the .slt files in `slt/`.

use std::path::Path;

use df_plugin_conformance::bundles;
use df_plugin_host::conformance::{VerifyOptions, verify};

#[tokio::test]
async fn the_bundle_passes_the_conformance_kit() {
    // Builds this crate's cdylib (and, inside a workspace, every other member's) once.
    let dir = bundles::built(Path::new(env!("CARGO_MANIFEST_DIR")));
    let bundle = bundles::bundle_file(dir, env!("CARGO_PKG_NAME"));
    let report = verify(&bundle, &VerifyOptions::default()).await;
    println!("{report}");
    report.assert_passed();
}
