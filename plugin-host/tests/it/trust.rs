//! Trust levels with real files. The bundle under test is the corpus's constructor bundle: its
//! load-time constructor writes a marker file, so "refused before any code runs" is a fact the
//! test checks, not a hope. Loading runs in the CLI (a new process per case), because a
//! constructor fires once per process.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use df_plugin_host::trust::digest::hash_file;
use df_plugin_host::trust::sign::SecretKey;
use df_plugin_host::{PluginStatement, TrustLevel, statement};
use tempfile::TempDir;

use crate::util::{cli, cli_ok, copied_dir, csv_rows, file_name, host, plugin_dir, session};

const CTOR: &str = "corpus-constructor";

/// A plugin directory with a copy of the constructor bundle, and a place for its marker.
struct Case {
    dir: TempDir,
    scratch: TempDir,
}

/// What one CLI run saw: the constructor bundle's `df_plugins()` row and whether it ran.
struct Seen {
    state: String,
    trust: String,
    reason: String,
    ran: bool,
    stderr: String,
}

impl Case {
    fn new() -> Self {
        Self {
            dir: copied_dir(&[CTOR]),
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join(file_name(CTOR))
    }

    fn key(&self, name: &str) -> (SecretKey, PathBuf) {
        let key = SecretKey::generate().unwrap();
        let path = self.scratch.path().join(name);
        let public = key.write(&path).unwrap();
        (key, public)
    }

    fn sign_with(&self, key: &SecretKey) {
        let sig = key.sign(df_plugin_host::trust::facts_to_sign(&self.bundle()).unwrap());
        std::fs::write(
            df_plugin_host::trust::sign::SignatureFile::path_for(&self.bundle()),
            sig.to_text(),
        )
        .unwrap();
    }

    /// `df-plugin-host <flags> sql --plugin-dir <dir>` reading `df_plugins()`.
    fn run(&self, flags: &[&str]) -> Seen {
        self.run_in(self.dir.path(), flags)
    }

    fn run_in(&self, dir: &Path, flags: &[&str]) -> Seen {
        let marker = self.scratch.path().join("constructor-ran");
        let _ = std::fs::remove_file(&marker);
        let out = cli()
            .env("DF_PLUGIN_CORPUS_MARKER", &marker)
            .args(flags)
            .args(["sql", "--format", "csv", "--plugin-dir"])
            .arg(dir)
            .args(["-e", "SELECT path, state, trust, reason FROM df_plugins()"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "the host must survive and answer: {stderr}"
        );
        let rows = csv_rows(&stdout);
        let row = rows
            .iter()
            .find(|r| r[0].ends_with(&file_name(CTOR)))
            .unwrap_or_else(|| panic!("no df_plugins() row for the bundle: {stdout}"));
        Seen {
            state: row[1].clone(),
            trust: row[2].clone(),
            reason: row[3].clone(),
            ran: marker.exists(),
            stderr,
        }
    }
}

/// Asserts a refusal at the trust step whose reason contains `why`, with none of the
/// bundle's code run.
fn assert_refused(seen: &Seen, why: &str) {
    assert_eq!(seen.state, "refused", "{}", seen.reason);
    assert!(
        seen.reason.contains("refused at step 'trust'") && seen.reason.contains(why),
        "expected a trust refusal mentioning '{why}', got: {}",
        seen.reason
    );
    assert!(seen.reason.contains("fix: "), "no fix in: {}", seen.reason);
    assert!(
        !seen.ran,
        "the bundle's constructor ran before it was refused"
    );
    assert!(seen.stderr.contains(why), "stderr: {}", seen.stderr);
}

fn assert_loaded(seen: &Seen, trust: &str) {
    assert_eq!(seen.state, "loaded", "{}", seen.reason);
    assert!(seen.trust.contains(trust), "trust column: {}", seen.trust);
    assert!(seen.ran, "a loaded bundle's constructor must have run");
}

fn lock(dir: &Path) {
    cli_ok(cli().arg("lock").arg(dir));
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn pinned_loads_a_listed_bundle() {
    let case = Case::new();
    lock(case.dir.path());
    assert_loaded(&case.run(&["--trust", "pinned"]), "pinned in");
}

#[test]
fn pinned_refuses_an_unlisted_bundle() {
    let case = Case::new();
    // A lock file that pins another bundle only.
    let other = copied_dir(&["corpus-panicking"]);
    lock(other.path());
    std::fs::copy(
        other.path().join("df-plugins.lock"),
        case.dir.path().join("df-plugins.lock"),
    )
    .unwrap();
    assert_refused(&case.run(&["--trust", "pinned"]), "is not listed in");
}

#[test]
fn pinned_refuses_a_tampered_bundle() {
    let case = Case::new();
    lock(case.dir.path());
    flip_last_byte(&case.bundle());
    let seen = case.run(&["--trust", "pinned"]);
    assert_refused(&seen, "the file changed since it was pinned");
}

#[test]
fn pinned_refuses_a_directory_without_a_lock_file() {
    let case = Case::new();
    assert_refused(&case.run(&["--trust", "pinned"]), "which does not exist");
}

#[test]
fn signed_loads_a_bundle_signed_by_a_trusted_key_named_in_the_config() {
    let case = Case::new();
    let (key, public) = case.key("release.key");
    case.sign_with(&key);
    let config = case.scratch.path().join("df-plugin-host.toml");
    std::fs::write(
        &config,
        format!(
            "trust = \"signed\"\ntrusted_keys = [\"{}\"]\n",
            public.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    let seen = case.run(&["--config", config.to_str().unwrap()]);
    assert_loaded(&seen, &format!("signed by key {}", key.public().id()));
}

#[test]
fn signed_refuses_an_unsigned_bundle() {
    let case = Case::new();
    let (_, public) = case.key("release.key");
    let seen = case.run(&[
        "--trust",
        "signed",
        "--trusted-key",
        public.to_str().unwrap(),
    ]);
    assert_refused(&seen, "unsigned");
}

#[test]
fn signed_refuses_a_bundle_signed_by_an_untrusted_key() {
    let case = Case::new();
    let (_, trusted) = case.key("release.key");
    let (stranger, _) = case.key("stranger.key");
    case.sign_with(&stranger);
    let seen = case.run(&[
        "--trust",
        "signed",
        "--trusted-key",
        trusted.to_str().unwrap(),
    ]);
    assert_refused(&seen, "which is not one of the 1 trusted key(s)");
}

#[test]
fn signed_refuses_a_bundle_modified_after_signing() {
    let case = Case::new();
    let (key, public) = case.key("release.key");
    case.sign_with(&key);
    flip_last_byte(&case.bundle());
    let seen = case.run(&[
        "--trust",
        "signed",
        "--trusted-key",
        public.to_str().unwrap(),
    ]);
    assert_refused(&seen, "the file was modified after signing");
}

#[test]
fn signed_refuses_a_signature_file_edited_to_match_a_tampered_bundle() {
    let case = Case::new();
    let (key, public) = case.key("release.key");
    case.sign_with(&key);
    flip_last_byte(&case.bundle());
    let sig_path = df_plugin_host::trust::sign::SignatureFile::path_for(&case.bundle());
    let mut sig = df_plugin_host::trust::sign::SignatureFile::read(&sig_path)
        .unwrap()
        .unwrap();
    sig.facts.sha256 = hash_file(&case.bundle()).unwrap();
    std::fs::write(&sig_path, sig.to_text()).unwrap();
    let seen = case.run(&[
        "--trust",
        "signed",
        "--trusted-key",
        public.to_str().unwrap(),
    ]);
    assert_refused(&seen, "the signature does not verify");
}

#[test]
fn a_group_writable_bundle_is_refused_at_every_level() {
    let case = Case::new();
    std::fs::set_permissions(case.bundle(), std::fs::Permissions::from_mode(0o775)).unwrap();
    let seen = case.run(&[]);
    assert_refused(&seen, "is group-writable");
    assert!(seen.reason.contains("chmod g-w"), "{}", seen.reason);
}

#[test]
fn a_world_writable_plugin_directory_is_refused() {
    let case = Case::new();
    std::fs::set_permissions(case.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(&case.run(&[]), "is world-writable");
}

#[test]
fn a_bundle_owned_by_another_user_is_refused() {
    let case = Case::new();
    let bundle = case.bundle();
    // Only root can give a file away; elsewhere this case cannot be set up.
    if std::os::unix::fs::chown(&bundle, Some(4242), None).is_err() {
        eprintln!("skipped: cannot chown (not root)");
        return;
    }
    let seen = case.run(&[]);
    assert_refused(&seen, "is owned by uid 4242");
}

#[test]
fn a_symlink_leading_out_of_the_plugin_directory_is_refused_when_pinned() {
    let case = Case::new();
    let links = plugin_dir(&[CTOR]); // symlinks to target/debug
    lock(links.path());
    let seen = case.run_in(links.path(), &["--trust", "pinned"]);
    assert_refused(&seen, "a symlink leading out of the plugin directory");
    // At the development level the link is followed, and reported.
    let seen = case.run_in(links.path(), &["--trust", "any"]);
    assert_loaded(&seen, "(symlink to ");
}

#[test]
fn a_flag_cannot_loosen_the_configured_trust_level() {
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("c.toml");
    std::fs::write(&config, "trust = \"signed\"\n").unwrap();
    let dir = copied_dir(&[CTOR]);
    let out = cli()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--trust",
            "any",
            "sql",
        ])
        .arg("--plugin-dir")
        .arg(dir.path())
        .args(["-e", "SELECT 1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("can only be tightened") && stderr.contains("c.toml"),
        "{stderr}"
    );
}

#[test]
fn a_warm_start_reuses_the_verified_hash_and_a_changed_file_is_verified_again() {
    let dir = copied_dir(&["corpus-panicking"]);
    let cache = tempfile::tempdir().unwrap();
    lock(dir.path());
    let path = dir.path().join(file_name("corpus-panicking"));
    // Each host is a fresh process as far as the cache is concerned: it reads the cache file.
    // (The trust step alone: this process cannot load a replaced file from the same path.)
    let load = || {
        let host = host(dir.path())
            .trust_level(TrustLevel::Pinned)
            .cache_dir(Some(cache.path().to_path_buf()))
            .build()
            .unwrap();
        df_plugin_host::trust::check(&path, dir.path(), host.trust_policy()).unwrap()
    };
    let cold = load();
    assert!(!cold.cached, "the first verification reads the file");
    let warm = load();
    assert!(warm.cached, "an unchanged file is not hashed again");
    assert_eq!(warm.sha256, cold.sha256);

    // Same bytes, new file (new inode and ctime): verified again, and still accepted.
    let copy = dir.path().join("copy.tmp");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    let again = load();
    assert!(!again.cached, "a replaced file must be verified again");
    assert_eq!(again.sha256, cold.sha256);
}

#[tokio::test]
async fn the_trust_level_can_be_tightened_at_run_time_but_not_loosened() {
    let ctx = session();
    let dir = copied_dir(&["corpus-panicking"]);
    let run = |sql: &str| {
        let stmt = PluginStatement::parse(sql)
            .expect("a plugin statement")
            .unwrap();
        statement::execute(&ctx, &stmt)
    };
    run("SET PLUGIN TRUST pinned").unwrap();
    let err = run("SET PLUGIN TRUST any").unwrap_err().to_string();
    assert!(err.contains("can only be tightened"), "{err}");
    // No lock file: a bundle that `any` would load is now refused.
    let bundle = dir.path().join(file_name("corpus-panicking"));
    let err = run(&format!("LOAD PLUGIN '{}'", bundle.display()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused at step 'trust'"), "{err}");
    lock(dir.path());
    run(&format!("LOAD PLUGIN '{}'", bundle.display())).unwrap();
}

#[test]
fn pinned_refuses_a_lock_file_others_can_write() {
    let case = Case::new();
    lock(case.dir.path());
    let lock_file = case.dir.path().join("df-plugins.lock");
    std::fs::set_permissions(&lock_file, std::fs::Permissions::from_mode(0o664)).unwrap();
    assert_refused(&case.run(&["--trust", "pinned"]), "the lock file:");
}

#[test]
fn a_config_file_gives_the_search_path_and_the_bundles_to_skip() {
    let dir = copied_dir(&["df-plugin-udfs", "corpus-panicking"]);
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("df-plugin-host.toml");
    std::fs::write(
        &config,
        format!(
            "search_paths = [\"{}\"]\nskip = [\"corpus-panicking\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let stdout = cli_ok(
        cli()
            .env("DF_PLUGIN_HOST_CONFIG", &config)
            .args(["sql", "--format", "csv", "-e"])
            .arg("SELECT name, state FROM df_plugins() ORDER BY name"),
    );
    assert_eq!(
        stdout,
        "name,state\ncorpus-panicking,skipped\nudfs,loaded\n"
    );
}

#[test]
fn signed_refuses_a_valid_signature_over_another_manifest() {
    let case = Case::new();
    let (key, public) = case.key("release.key");
    // A signer's mistake: the right file hash, but the facts of another manifest.
    let mut facts = df_plugin_host::trust::facts_to_sign(&case.bundle()).unwrap();
    facts.manifest_sha256 = "00".repeat(32);
    std::fs::write(
        df_plugin_host::trust::sign::SignatureFile::path_for(&case.bundle()),
        key.sign(facts).to_text(),
    )
    .unwrap();
    let r = host(case.dir.path())
        .trust_level(TrustLevel::Signed)
        .trusted_key(df_plugin_host::trust::sign::PublicKey::read(&public).unwrap())
        .build()
        .unwrap()
        .load_file(&case.bundle())
        .unwrap_err();
    assert_eq!(r.step, df_plugin_host::Step::Trust, "{r}");
    assert!(
        r.to_string().contains("other bundle facts")
            && r.mismatches.iter().any(|m| m.field == "manifest sha256"),
        "{r}"
    );
}

#[test]
fn signed_without_trusted_keys_refuses_and_says_where_to_add_one() {
    let case = Case::new();
    let (key, _) = case.key("release.key");
    case.sign_with(&key);
    let policy = df_plugin_host::TrustPolicy {
        level: TrustLevel::Signed,
        ..Default::default()
    };
    let r = df_plugin_host::trust::check(&case.bundle(), case.dir.path(), &policy).unwrap_err();
    assert!(
        r.reason.contains("no trusted keys are configured") && r.fix.contains("trusted_keys"),
        "{r}"
    );
}
