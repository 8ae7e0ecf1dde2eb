//! What loading costs: discover + trust + metadata + compatibility + open + handshake + init +
//! truthfulness + register, per bundle, at trust level `signed`, in fresh processes.
//!
//! The project's bundles and a 1-function test bundle are copied into a private plugin
//! directory and signed with a throwaway key. The harness then starts itself as a child
//! process `load_runs + 1` times against one digest-cache directory: the first child verifies
//! cold (hashes every file in full), the others start warm (the cache has every hash; the
//! files are unchanged). A warm start must cost O(metadata): ≤ 10 ms per bundle, whatever its
//! size. `inspect` is timed in the child after loading.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use datafusion::prelude::SessionContext;
use df_plugin_conformance::bundles;
use df_plugin_host::trust::sign::{PublicKey, SecretKey, SignatureFile};
use df_plugin_host::{PluginHost, TrustLevel};

use crate::Config;
use crate::measure::median;
use crate::report::{Row, Target};

const BUNDLES: [&str; 5] = [
    "df-plugin-delta",
    "df-plugin-udfs",
    "df-plugin-udtfs",
    "df-plugin-planners",
    "corpus-upgrade-v2",
];

/// The first argument that makes the harness a load child: `<exe> child DIR CACHE KEY`.
pub const CHILD: &str = "child";

/// One process's measurements: bundle -> step -> µs.
type Sample = BTreeMap<String, BTreeMap<String, u64>>;

/// Measures the bundles of `built` as [`Config::load_child`] says (fresh processes, or once
/// in this one).
pub fn measure(built: &Path, config: &Config) -> Vec<Row> {
    let plugins = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let key = SecretKey::generate().expect("key");
    let public = key
        .write(&scratch.path().join("bench.key"))
        .expect("write key");
    for c in BUNDLES {
        let src = bundles::bundle_file(built, c);
        let dst = plugins.path().join(src.file_name().expect("file name"));
        std::fs::copy(&src, &dst).expect("copy bundle");
        let facts = df_plugin_host::trust::facts_to_sign(&dst).expect("bundle facts");
        std::fs::write(SignatureFile::path_for(&dst), key.sign(facts).to_text()).expect("sign");
    }
    let cache = scratch.path().join("cache");
    let sample = || -> Sample {
        let Some(exe) = &config.load_child else {
            return sample(plugins.path(), &cache, &public);
        };
        let out = Command::new(exe)
            .arg(CHILD)
            .args([plugins.path(), &cache, &public])
            .output()
            .expect("run a load child");
        assert!(
            out.status.success(),
            "the load child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the child's JSON")
    };
    let cold = sample();
    let warm: Vec<Sample> = (0..config.load_runs).map(|_| sample()).collect();
    let warm_median = |bundle: &str, step: &str| -> f64 {
        let v = warm
            .iter()
            .filter_map(|s| s.get(bundle)?.get(step).copied());
        let us = median(v.map(std::time::Duration::from_micros).collect());
        us.as_secs_f64() * 1e3
    };
    let mut rows = Vec::new();
    for (bundle, steps) in &cold {
        rows.push(Row::value(
            "load",
            &format!("{bundle}: cold (hashes the file)"),
            "ms",
            steps["total"] as f64 / 1e3,
            Target::None,
        ));
        rows.push(Row::value(
            "load",
            &format!("{bundle}: warm, fresh process"),
            "ms",
            warm_median(bundle, "total"),
            Target::MaxValue { max: 10.0 },
        ));
        rows.push(Row::value(
            "load",
            &format!("{bundle}: inspect"),
            "ms",
            warm_median(bundle, "inspect"),
            Target::None,
        ));
    }
    rows
}

/// The load child: prints [`sample`] as JSON. `args` are the ones after [`CHILD`].
pub fn child(args: &[String]) {
    let [dir, cache, key] = args else {
        panic!("usage: <exe> {CHILD} PLUGIN_DIR CACHE_DIR PUBLIC_KEY");
    };
    let out = sample(Path::new(dir), Path::new(cache), Path::new(key));
    println!("{}", serde_json::to_string(&out).expect("json"));
}

/// Loads `dir` at trust level `signed`, registers into a session, and returns every step's
/// time per bundle, with the total and `inspect`.
fn sample(dir: &Path, cache: &Path, key: &Path) -> Sample {
    // SAFETY: the bench binary declares no `#[global_allocator]`.
    let builder = unsafe { PluginHost::builder().system_allocator() };
    let host = builder
        .search_path(dir)
        .ignore_env(true)
        .trust_level(TrustLevel::Signed)
        .trusted_key(PublicKey::read(key).expect("public key"))
        .cache_dir(Some(cache.to_path_buf()))
        .strict(true)
        .build()
        .expect("host");
    let ctx = Arc::new(SessionContext::new());
    let plugins = host.load().expect("every bundle loads");
    plugins.register_into(&ctx).expect("every bundle registers");

    let registry = df_plugin_host::PluginRegistry::of(&ctx);
    let mut out = Sample::new();
    for bundle in plugins.bundles() {
        let mut steps: BTreeMap<String, u64> = BTreeMap::new();
        for (step, d) in &bundle.timings.0 {
            *steps.entry(step.as_str().to_owned()).or_default() += d.as_micros() as u64;
        }
        let record = registry
            .records()
            .into_iter()
            .find(|r| r.name == bundle.name())
            .expect("a catalogue record");
        steps.insert("total".into(), record.load_time_us);
        // `inspect` after loading, so that it warms nothing the load measured.
        let t = Instant::now();
        let report = df_plugin_host::inspect::inspect_with(&host, &bundle.metadata.path, false);
        assert!(report.compatible, "{:?}", report.refusal);
        steps.insert("inspect".into(), t.elapsed().as_micros() as u64);
        out.insert(bundle.name().to_owned(), steps);
    }
    out
}
