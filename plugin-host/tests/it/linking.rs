//! A bundle links only what the kinds it exports need: the toolkit converts tables and planners
//! where a bundle adds them, so a bundle of functions or table sources leaves DataFusion's
//! table machinery to the linker to drop (about 70 MB of a release bundle; see the README's
//! bundle sizes).
//!
//! Read from the bundles' symbol tables, as built for the tests.

use object::{Object, ObjectSymbol};

use crate::util::bundle;

/// The names in the symbol table of bundle crate `crate_name` that contain every part of one
/// of `patterns`.
fn symbols_matching(crate_name: &str, patterns: &[&[&str]]) -> Vec<String> {
    let path = bundle(crate_name);
    let data = std::fs::read(&path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert!(
        file.symbols().next().is_some(),
        "{} has no symbol table to read",
        path.display()
    );
    file.symbols()
        .filter_map(|s| s.name().ok())
        .filter(|name| {
            patterns
                .iter()
                .any(|p| p.iter().all(|part| name.contains(part)))
        })
        .map(str::to_owned)
        .collect()
}

/// Code a bundle links only to export a table, a table function or a planner: the plan runner,
/// the datafusion-ffi constructors of tables and table functions, the toolkit's table guard.
/// (The drop glue of the export vectors stays: it only calls a `release` pointer.)
const TABLE_MACHINERY: [&[&str]; 4] = [
    &["export_plan_runner"],
    &["FFI_TableProvider", "new_with_ffi_codec"],
    &["FFI_TableFunction", "new_with_ffi_codec"],
    &["GuardedTableProvider"],
];

/// The bundle side of a table source (plugin ABI 1.15): its call wrapper.
const TABLE_SOURCE_EXPORT: [&[&str]; 1] = [&["table_source", "call_fn_wrapper"]];

#[test]
fn a_bundle_of_functions_links_no_table_machinery() {
    let found = symbols_matching("df-plugin-udfs", &TABLE_MACHINERY);
    assert!(found.is_empty(), "{found:#?}");
    let found = symbols_matching("df-plugin-udfs", &TABLE_SOURCE_EXPORT);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_bundle_of_table_sources_links_no_table_machinery() {
    // The udtfs bundle's table functions are table sources: they cross as batch streams, so
    // none of DataFusion's plans is linked for them.
    let found = symbols_matching("df-plugin-udtfs", &TABLE_MACHINERY);
    assert!(found.is_empty(), "{found:#?}");
    let found = symbols_matching("df-plugin-udtfs", &TABLE_SOURCE_EXPORT);
    assert!(
        !found.is_empty(),
        "no table source export in the udtfs bundle"
    );
}

#[test]
fn a_bundle_of_table_providers_links_the_table_machinery() {
    // The other side of the tests above: what they look for is there when a bundle needs it.
    for pattern in TABLE_MACHINERY {
        assert!(
            !symbols_matching("df-plugin-delta", &[pattern]).is_empty(),
            "no {pattern:?} in the Delta bundle"
        );
    }
}

/// What a general planner (plugin ABI 1.1) links: the codec that reads host expressions with the
/// host's functions, and datafusion-proto's expression reader and writer, which reach its whole
/// plan codec (and every table provider and file format) through subqueries.
const GENERAL_PLANNER_CODEC: [&[&str]; 4] = [
    &["GeneralCodec"],
    &["TaskContextCache"],
    &["datafusion_proto", "from_proto", "parse_expr"],
    &["datafusion_proto", "to_proto", "serialize_expr"],
];

/// The bundle side of a lean planner (plugin ABI 1.16).
const LEAN_PLANNER_CODEC: [&[&str]; 1] = [&["LeanCodec"]];

#[test]
fn a_bundle_of_lean_planners_links_neither_tables_nor_the_general_codec() {
    let found = symbols_matching("df-plugin-planners", &TABLE_MACHINERY);
    assert!(found.is_empty(), "{found:#?}");
    let found = symbols_matching("df-plugin-planners", &GENERAL_PLANNER_CODEC);
    assert!(found.is_empty(), "{found:#?}");
    let found = symbols_matching("df-plugin-planners", &LEAN_PLANNER_CODEC);
    assert!(
        !found.is_empty(),
        "no lean planner codec in the planners bundle"
    );
}

#[test]
fn a_bundle_of_general_planners_links_the_general_codec() {
    // The other side: the corpus bundle's planners are general ones.
    for pattern in GENERAL_PLANNER_CODEC {
        assert!(
            !symbols_matching("corpus-panicking", &[pattern]).is_empty(),
            "no {pattern:?} in the corpus-panicking bundle"
        );
    }
}
