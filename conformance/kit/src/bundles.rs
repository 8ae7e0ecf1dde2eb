//! Building and collecting the bundle files a test loads.
//!
//! Bundles are cdylibs, which `cargo test` does not build for a test that loads them from
//! disk. [`built`] runs cargo once per test process with exactly the package selection of
//! `cargo test --workspace`, so that cargo's feature unification is the same and the only new
//! work is linking the cdylibs (any other selection can unify features differently and
//! rebuild DataFusion from scratch).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

/// The directory cargo puts the running test's artifacts in (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The target selection of `cargo test --workspace`, for [`built_with`].
pub const TEST_TARGETS: &[&str] = &["--lib", "--bins", "--tests", "--examples"];

/// Builds every bundle of the workspace at `workspace`, once per process, and returns the
/// directory holding them. Panics with cargo's output when the build fails.
pub fn built(workspace: &Path) -> &'static PathBuf {
    built_with(workspace, TEST_TARGETS)
}

/// [`built`] for a process cargo built with another target selection than `cargo test`.
///
/// `targets` must select the process's own target besides `--lib` (a benchmark passes
/// `["--lib", "--bins", "--bench", "NAME"]`): cargo then resolves features as it did for the
/// process, and links only the cdylibs instead of every test binary again in release mode.
/// The first call per process decides the selection.
pub fn built_with(workspace: &Path, targets: &[&str]) -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        // Cargo identifies path packages by their path: `plugins/x/../..` would be another
        // workspace to it, with every crate rebuilt from scratch.
        let workspace = workspace
            .canonicalize()
            .unwrap_or_else(|_| workspace.to_path_buf());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&workspace)
            .args(["build", "--workspace"])
            .args(targets);
        // A test process inherits what cargo sets for tests (`LD_LIBRARY_PATH` with the native
        // library dirs of *this* package's dependencies, `OUT_DIR`, `CARGO_PKG_*`, ...). Build
        // scripts that watch such variables would rerun and rebuild DataFusion each time
        // another package's tests call this; build with the environment of a plain shell.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_for_tests = key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
                || matches!(
                    key.as_ref(),
                    "LD_LIBRARY_PATH"
                        | "DYLD_FALLBACK_LIBRARY_PATH"
                        | "OUT_DIR"
                        | "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                );
            if set_for_tests {
                cmd.env_remove(key.as_ref());
            }
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd
            .output()
            .expect("cannot run cargo to build the test bundles");
        assert!(
            out.status.success(),
            "building the test bundles failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// The bundle file of crate `crate_name` in `dir` (e.g. `libdf_plugin_delta.so`).
pub fn bundle_file(dir: &Path, crate_name: &str) -> PathBuf {
    dir.join(format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    ))
}

/// A fresh plugin directory holding symlinks to the named bundles in `dir`.
pub fn plugin_dir(dir: &Path, crates: &[&str]) -> TempDir {
    populate(dir, crates, |src, dst| std::os::unix::fs::symlink(src, dst))
}

/// A fresh plugin directory holding copies of the named bundles in `dir` (for trust levels
/// that refuse symlinks leading out of the plugin directory).
pub fn copied_plugin_dir(dir: &Path, crates: &[&str]) -> TempDir {
    populate(dir, crates, |src, dst| std::fs::copy(src, dst).map(drop))
}

fn populate(
    dir: &Path,
    crates: &[&str],
    place: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> TempDir {
    let plugins = tempfile::tempdir().expect("temp dir");
    for c in crates {
        let src = bundle_file(dir, c);
        assert!(src.exists(), "{} was not built", src.display());
        let name = src.file_name().expect("file name");
        place(&src, &plugins.path().join(name)).expect("place bundle");
    }
    plugins
}
