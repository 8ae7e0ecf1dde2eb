//! The harness links the three bundle crates as libraries, for their native baselines. Each
//! also defines the bundle entry points (`df_plugin_abi_record`, `df_plugin_init_with_planners`,
//! ...) with the same unmangled names, as every bundle must; the harness never calls them, so
//! its binaries accept the duplicates instead of failing to link. (Splitting every bundle into
//! a library crate and a one-line cdylib crate would remove the duplicates at the source.)
fn main() {
    // Every binary of this package (bench, smoke test, the library's unit-test binary).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo::rustc-link-arg=-Wl,-multiply_defined,suppress");
    } else {
        println!("cargo::rustc-link-arg=-Wl,--allow-multiple-definition");
    }
}
