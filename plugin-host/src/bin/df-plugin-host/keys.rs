//! `df-plugin-host lock`, `keygen` and `sign`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use df_plugin_host::trust::{self, sign::SecretKey, sign::SignatureFile};

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("df-plugin-host: {e}");
    ExitCode::from(1)
}

pub fn lock(dir: &Path) -> ExitCode {
    match trust::write_lock(dir) {
        Ok((path, lock, skipped)) => {
            for b in &lock.bundles {
                println!("pinned {} {} ({}) {}", b.name, b.version, b.file, b.sha256);
            }
            for r in &skipped {
                eprintln!("df-plugin-host: not pinned: {r}");
            }
            println!("wrote {} ({} bundles)", path.display(), lock.bundles.len());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn keygen(out: &Path) -> ExitCode {
    let written = SecretKey::generate().and_then(|k| k.write(out).map(|p| (k, p)));
    match written {
        Ok((key, public)) => {
            println!("secret key: {} (keep it private)", out.display());
            println!(
                "public key: {} (id {})",
                public.display(),
                key.public().id()
            );
            println!(
                "trust it with: trusted_keys = [\"{}\"] in df-plugin-host.toml",
                public.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn sign(key: &Path, files: &[PathBuf]) -> ExitCode {
    let key = match SecretKey::read(key) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    for file in files {
        let facts = match trust::facts_to_sign(file) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        let sig = key.sign(facts);
        let path = SignatureFile::path_for(file);
        if let Err(e) = std::fs::write(&path, sig.to_text()) {
            return fail(format!("{}: {e}", path.display()));
        }
        println!(
            "signed {} {} ({}) with key {}: {}",
            sig.facts.bundle,
            sig.facts.version,
            file.display(),
            key.public().id(),
            path.display()
        );
    }
    ExitCode::SUCCESS
}
