//! Records the compiler and target so that every bundle's ABI record states them truthfully.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=DF_PLUGIN_RUSTC_VERSION={version}");
    println!("cargo:rustc-env=DF_PLUGIN_TARGET={target}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
