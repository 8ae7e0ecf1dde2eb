//! Step 4: is the bundle compatible with this host? Decided from the metadata alone.
//!
//! - plugin ABI: same major, minor not newer than the host's, and the manifest's `requires`
//!   range accepts the host's ABI version;
//! - DataFusion: the exact version (config keys and protobuf encodings drift within a major,
//!   and datafusion-ffi's structs carry no version of their own);
//! - datafusion-ffi and Arrow majors, target triple, architecture and byte order;
//! - sqlparser: the exact version, when the bundle exports planners (SQL AST nodes cross as sqlparser's JSON);
//! - capability bits this host does not know.
//!
//! Every difference is reported, not just the first.

use df_plugin_api::record::{ABI_MAJOR, ABI_MINOR, Capability};
use df_plugin_api::toolkit::BUILD_FACTS;

use crate::error::{Mismatch, Refusal, Step};
use crate::metadata::{BundleMetadata, host_architecture};

/// The plugin ABI version of this host as a semver version, for `requires`.
pub fn host_abi_version() -> semver::Version {
    semver::Version::new(ABI_MAJOR.into(), ABI_MINOR.into(), 0)
}

/// Non-fatal differences worth showing (e.g. another rustc).
pub fn warnings(meta: &BundleMetadata) -> Vec<String> {
    let mut w = Vec::new();
    if meta.info.rustc_version != BUILD_FACTS.rustc_version {
        w.push(format!(
            "built with {}, the host with {}; datafusion-ffi passes some Rust tuples, whose layout is only guaranteed for the same compiler",
            meta.info.rustc_version, BUILD_FACTS.rustc_version
        ));
    }
    w
}

/// Checks compatibility; on failure the refusal lists every mismatch and the fix.
pub fn check(meta: &BundleMetadata) -> Result<(), Refusal> {
    let info = &meta.info;
    let mut m = Vec::new();
    let mut fixes: Vec<String> = Vec::new();

    if meta.architecture != host_architecture() {
        m.push(Mismatch::new(
            "architecture",
            host_architecture(),
            &meta.architecture,
        ));
        fixes.push(format!("build the bundle for {}", BUILD_FACTS.target));
    }
    if meta.little_endian != cfg!(target_endian = "little") {
        let e = |little: bool| {
            if little {
                "little-endian"
            } else {
                "big-endian"
            }
        };
        m.push(Mismatch::new(
            "byte order",
            e(cfg!(target_endian = "little")),
            e(meta.little_endian),
        ));
    }
    if info.target != BUILD_FACTS.target && meta.architecture == host_architecture() {
        m.push(Mismatch::new("target", BUILD_FACTS.target, &info.target));
        fixes.push(format!(
            "build the bundle with --target {}",
            BUILD_FACTS.target
        ));
    }
    if info.abi_major != ABI_MAJOR {
        m.push(Mismatch::new("plugin ABI major", ABI_MAJOR, info.abi_major));
        fixes.push(format!(
            "rebuild the bundle with a df-plugin-api release for plugin ABI {ABI_MAJOR}.x (this host is df-plugin-host {})",
            env!("CARGO_PKG_VERSION")
        ));
    } else if info.abi_minor > ABI_MINOR {
        m.push(Mismatch::new(
            "plugin ABI minor",
            format!("<= {ABI_MINOR}"),
            info.abi_minor,
        ));
        fixes.push(format!(
            "upgrade df-plugin-host to one that speaks plugin ABI {}.{}, or rebuild the bundle against ABI {ABI_MAJOR}.{ABI_MINOR}",
            info.abi_major, info.abi_minor
        ));
    }
    if !meta.manifest.bundle.requires.matches(&host_abi_version()) {
        m.push(Mismatch::new(
            "manifest `requires` (plugin ABI range)",
            format!("a range containing {}", host_abi_version()),
            &meta.manifest.bundle.requires,
        ));
        fixes.push(
            "use a host whose plugin ABI the bundle requires, or widen `requires` and rebuild"
                .into(),
        );
    }
    if info.datafusion_version != BUILD_FACTS.datafusion_version {
        m.push(Mismatch::new(
            "datafusion version",
            BUILD_FACTS.datafusion_version,
            &info.datafusion_version,
        ));
        fixes.push(format!(
            "rebuild the bundle against datafusion {} (df-plugin-api pins it)",
            BUILD_FACTS.datafusion_version
        ));
    }
    if info.datafusion_ffi_major != BUILD_FACTS.datafusion_ffi_major {
        m.push(Mismatch::new(
            "datafusion-ffi major",
            BUILD_FACTS.datafusion_ffi_major,
            info.datafusion_ffi_major,
        ));
        fixes.push(format!(
            "rebuild the bundle against datafusion-ffi {}.x",
            BUILD_FACTS.datafusion_ffi_major
        ));
    }
    if info.arrow_major != BUILD_FACTS.arrow_major {
        m.push(Mismatch::new(
            "arrow major",
            BUILD_FACTS.arrow_major,
            info.arrow_major,
        ));
        fixes.push(format!(
            "rebuild the bundle against arrow {}.x",
            BUILD_FACTS.arrow_major
        ));
    }
    let has_planners = [
        Capability::ExprPlanner,
        Capability::RelationPlanner,
        Capability::TypePlanner,
    ]
    .into_iter()
    .any(|c| info.capabilities.contains(c));
    if has_planners && info.sqlparser_version != BUILD_FACTS.sqlparser_version {
        m.push(Mismatch::new(
            "sqlparser version (the bundle exports planners)",
            BUILD_FACTS.sqlparser_version,
            &info.sqlparser_version,
        ));
        fixes.push(format!(
            "rebuild the bundle against sqlparser {}",
            BUILD_FACTS.sqlparser_version
        ));
    }
    if info.capabilities.unknown_bits() != 0 {
        m.push(Mismatch::new(
            "capability bits",
            "only bits this host knows",
            format!("unknown bits {:#x}", info.capabilities.unknown_bits()),
        ));
        fixes.push("upgrade df-plugin-host to one that knows these kinds of object".into());
    }
    let declared = meta.manifest.capabilities();
    if declared != info.capabilities && info.capabilities.unknown_bits() == 0 {
        m.push(Mismatch::new(
            "capabilities (manifest vs record)",
            declared,
            info.capabilities,
        ));
        fixes.push("rebuild the bundle so its record is generated from its manifest".into());
    }

    if m.is_empty() {
        return Ok(());
    }
    fixes.dedup();
    Err(Refusal::new(
        info.bundle_name.clone(),
        &meta.path,
        Step::Compatibility,
        format!("incompatible with this host ({} field(s) differ)", m.len()),
        fixes.join("; "),
    )
    .with_mismatches(m))
}

#[cfg(test)]
mod tests {
    use df_plugin_api::record::RecordOverrides;

    use super::check;
    use crate::metadata::{BundleMetadata, fixture};

    const MANIFEST: &str = "[bundle]\nname = \"fx\"\nversion = \"1.0.0\"\n\n[[object]]\nkind = \"scalar_udf\"\nname = \"f\"\n";
    const PLANNER: &str = "\n[[object]]\nkind = \"expr_planner\"\nname = \"p\"\n";

    /// The fields a refusal names, or none when the bundle is compatible.
    fn refused_fields(meta: &BundleMetadata) -> Vec<String> {
        match check(meta) {
            Ok(()) => vec![],
            Err(r) => r.mismatches.into_iter().map(|m| m.field).collect(),
        }
    }

    fn with(overrides: RecordOverrides) -> Vec<String> {
        refused_fields(&fixture(MANIFEST, overrides))
    }

    #[test]
    fn a_bundle_built_like_the_host_is_compatible() {
        assert!(with(RecordOverrides::default()).is_empty());
    }

    #[test]
    fn every_engine_field_is_checked() {
        let cases: [(RecordOverrides, &str); 6] = [
            (
                RecordOverrides {
                    abi_minor: Some(super::ABI_MINOR + 1),
                    ..Default::default()
                },
                "plugin ABI minor",
            ),
            (
                RecordOverrides {
                    abi_major: Some(0),
                    ..Default::default()
                },
                "plugin ABI major",
            ),
            (
                RecordOverrides {
                    datafusion_ffi_major: Some(54),
                    ..Default::default()
                },
                "datafusion-ffi major",
            ),
            (
                RecordOverrides {
                    arrow_major: Some(58),
                    ..Default::default()
                },
                "arrow major",
            ),
            (
                RecordOverrides {
                    datafusion_version: Some("55.1.0"),
                    ..Default::default()
                },
                "datafusion version",
            ),
            (
                RecordOverrides {
                    target: Some("aarch64-apple-darwin"),
                    ..Default::default()
                },
                "target",
            ),
        ];
        for (overrides, field) in cases {
            assert_eq!(with(overrides), vec![field.to_owned()], "{field}");
        }
    }

    #[test]
    fn all_differences_are_reported_together() {
        let fields = with(RecordOverrides {
            arrow_major: Some(58),
            datafusion_version: Some("54.0.0"),
            ..Default::default()
        });
        assert_eq!(fields, ["datafusion version", "arrow major"]);
    }

    #[test]
    fn sqlparser_matters_only_for_planner_bundles() {
        let odd_parser = RecordOverrides {
            sqlparser_version: Some("0.61.0"),
            ..Default::default()
        };
        assert!(with(odd_parser).is_empty());
        let planners = format!("{MANIFEST}{PLANNER}");
        let fields = refused_fields(&fixture(&planners, odd_parser));
        assert_eq!(fields, ["sqlparser version (the bundle exports planners)"]);
    }

    #[test]
    fn unknown_capability_bits_and_disagreeing_bits_are_refused() {
        let unknown = with(RecordOverrides {
            capabilities: Some(1 | 1 << 40),
            ..Default::default()
        });
        assert_eq!(unknown, ["capability bits"]);
        let disagree = with(RecordOverrides {
            capabilities: Some(1 << 1),
            ..Default::default()
        });
        assert_eq!(disagree, ["capabilities (manifest vs record)"]);
    }

    #[test]
    fn the_manifest_requires_range_is_honoured() {
        let manifest = MANIFEST.replace(
            "version = \"1.0.0\"",
            "version = \"1.0.0\"\nrequires = \"^2\"",
        );
        let fields = refused_fields(&fixture(&manifest, RecordOverrides::default()));
        assert_eq!(fields, ["manifest `requires` (plugin ABI range)"]);
    }

    #[test]
    fn another_architecture_is_refused_before_anything_else_matters() {
        let mut meta = fixture(MANIFEST, RecordOverrides::default());
        meta.architecture = "Riscv64".into();
        assert_eq!(refused_fields(&meta), ["architecture"]);
    }
}
