//! Hostile-bundle corpus: a perfectly good shared library that is not a df-plugin bundle.

/// Something to export, so the library is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn corpus_not_a_plugin() -> i32 {
    42
}
