//! What loading costs: discover + trust + metadata + compatibility + open + handshake + init +
//! truthfulness + register, per bundle, at trust level `signed`, in fresh processes.
//!
//! ```text
//! cargo bench --workspace --bench load            # [-- --runs N] [-- --json FILE]
//! ```
//!
//! Three bundles of very different sizes (the Delta and UDF bundles, and a 1-function test
//! bundle) are copied into a private plugin directory and signed with a throwaway key. Then the
//! bench starts itself as a child process `runs + 1` times against one digest-cache directory:
//! the first child verifies cold (hashes every file in full), the others start warm (the
//! cache has every hash; the files are unchanged). A warm start must cost O(metadata): the
//! target is ≤ 10 ms per bundle, whatever its size. Each child reports every step of every
//! bundle; the parent prints medians as a markdown table and writes them as JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use datafusion::prelude::SessionContext;
use df_plugin_conformance::bundles;
use df_plugin_host::trust::sign::{PublicKey, SecretKey, SignatureFile};
use df_plugin_host::{PluginHost, Step, TrustLevel};

const BUNDLES: [&str; 3] = ["df-plugin-delta", "df-plugin-udfs", "corpus-upgrade-v2"];

/// One child's measurements: bundle -> step -> µs.
type Sample = BTreeMap<String, BTreeMap<String, u64>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        child(
            Path::new(&args[1]),
            Path::new(&args[2]),
            Path::new(&args[3]),
        );
        return;
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let runs: usize = flag("--runs").and_then(|r| r.parse().ok()).unwrap_or(15);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let json_out = flag("--json")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("bench-load.json"));

    eprintln!("building the release bundles (cargo build --release --workspace ...)");
    let built = bundles::built(workspace);
    let plugins = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let key = SecretKey::generate().expect("key");
    let public = key
        .write(&scratch.path().join("bench.key"))
        .expect("write key");
    let mut sizes = BTreeMap::new();
    for c in BUNDLES {
        let src = bundles::bundle_file(built, c);
        let dst = plugins.path().join(src.file_name().expect("file name"));
        std::fs::copy(&src, &dst).expect("copy bundle");
        let facts = df_plugin_host::trust::facts_to_sign(&dst).expect("bundle facts");
        sizes.insert(
            facts.bundle.clone(),
            std::fs::metadata(&dst).expect("stat").len(),
        );
        std::fs::write(SignatureFile::path_for(&dst), key.sign(facts).to_text()).expect("sign");
    }
    let cache = scratch.path().join("cache");

    let exe = std::env::current_exe().expect("own path");
    let sample = || -> Sample {
        let out = Command::new(&exe)
            .arg("child")
            .args([plugins.path(), &cache, &public])
            .output()
            .expect("run child");
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("child JSON")
    };
    let cold = sample();
    let warm: Vec<Sample> = (0..runs).map(|_| sample()).collect();

    let median = |bundle: &str, step: &str| -> u64 {
        let mut v: Vec<u64> = warm
            .iter()
            .filter_map(|s| s.get(bundle)?.get(step).copied())
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    // Discover happens once per directory, not per bundle.
    let steps: Vec<&str> = Step::ALL[1..].iter().map(|s| s.as_str()).collect();
    println!(
        "\nLoad per bundle at trust level `signed`, fresh process each run; warm = digest cache hot, median of {runs} runs (µs).\n"
    );
    println!(
        "| bundle | size (MB) | cold trust | warm trust | {} | **warm total** | inspect |",
        steps[1..].join(" | ")
    );
    println!(
        "|---|---:|---:|---:|{}---:|---:|",
        "---:|".repeat(steps.len() - 1)
    );
    let mut json = BTreeMap::new();
    for (bundle, size) in &sizes {
        let cold_trust = cold[bundle]["trust"];
        let row: Vec<String> = steps[1..]
            .iter()
            .map(|s| median(bundle, s).to_string())
            .collect();
        let total = median(bundle, "total");
        println!(
            "| {bundle} | {:.1} | {cold_trust} | {} | {} | **{total}** ({:.2} ms) | {} |",
            *size as f64 / 1e6,
            median(bundle, "trust"),
            row.join(" | "),
            total as f64 / 1000.0,
            median(bundle, "inspect"),
        );
        let mut entry: BTreeMap<String, serde_json::Value> = steps
            .iter()
            .chain(["total", "inspect"].iter())
            .map(|s| {
                let key = format!("warm_{}_us", s.replace(' ', "_"));
                (key, median(bundle, s).into())
            })
            .collect();
        entry.insert("cold_trust_us".into(), cold_trust.into());
        entry.insert("cold_total_us".into(), cold[bundle]["total"].into());
        entry.insert("size_bytes".into(), (*size).into());
        entry.insert("target_warm_total_us".into(), 10_000.into());
        json.insert(bundle.clone(), entry);
    }
    let any = sizes.keys().next().map(String::as_str).unwrap_or_default();
    println!(
        "\nOnce per process, not per bundle: host setup (trusted key + digest cache file) {} µs warm.",
        median(any, "host setup")
    );
    let text = serde_json::to_string_pretty(&json).expect("json");
    std::fs::write(&json_out, text).expect("write JSON");
    println!("\nwritten to {}", json_out.display());
}

/// One fresh process: load the directory at trust level `signed`, register into a session,
/// and print every step's time per bundle as JSON.
fn child(dir: &Path, cache: &Path, key: &Path) {
    let start = Instant::now();
    let host = PluginHost::builder()
        .search_path(dir)
        .ignore_env(true)
        .trust_level(TrustLevel::Signed)
        .trusted_key(PublicKey::read(key).expect("public key"))
        .cache_dir(Some(cache.to_path_buf()))
        .strict(true)
        .build()
        .expect("host");
    // Reading the key and the digest cache file: once per process, not per bundle.
    let setup = start.elapsed().as_micros() as u64;
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
        let pipeline: u64 = steps.values().sum();
        steps.insert(
            "register".into(),
            record.load_time_us.saturating_sub(pipeline),
        );
        steps.insert("total".into(), record.load_time_us);
        // `inspect` after loading, so that it warms nothing the load measured.
        let t = Instant::now();
        let report = df_plugin_host::inspect::inspect_with(&host, &bundle.metadata.path, false);
        assert!(report.compatible, "{:?}", report.refusal);
        steps.insert("inspect".into(), t.elapsed().as_micros() as u64);
        steps.insert("host setup".into(), setup);
        out.insert(bundle.name().to_owned(), steps);
    }
    println!("{}", serde_json::to_string(&out).expect("json"));
}
