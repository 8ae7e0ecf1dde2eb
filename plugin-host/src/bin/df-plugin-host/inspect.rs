//! `df-plugin-host inspect`.

use std::path::PathBuf;
use std::process::ExitCode;

use df_plugin_host::discover::candidates_at;
use df_plugin_host::inspect::{InspectReport, host_requirements, inspect_with};

use crate::settings::Settings;

/// Exit 0 when every bundle is compatible, 1 otherwise, 2 when a path does not exist or the
/// settings are wrong.
pub fn run(settings: &Settings, paths: &[PathBuf], json: bool, load: bool) -> ExitCode {
    let host = match settings.builder().and_then(|b| b.ignore_env(true).build()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("df-plugin-host: {e}");
            return ExitCode::from(2);
        }
    };
    let mut files = Vec::new();
    for p in paths {
        match candidates_at(p) {
            Ok(found) if found.is_empty() => {
                eprintln!(
                    "df-plugin-host: no bundle files (*.{}) in {}",
                    df_plugin_host::discover::LIBRARY_EXTENSION,
                    p.display()
                );
                return ExitCode::from(2);
            }
            Ok(found) => files.extend(found),
            Err(e) => {
                eprintln!("df-plugin-host: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let reports: Vec<InspectReport> = files.iter().map(|f| inspect_with(&host, f, load)).collect();
    if json {
        match serde_json::to_string_pretty(&reports) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("df-plugin-host: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        println!("host: {}", host_requirements());
        println!("trust level: {}", host.trust_policy().level);
        for r in &reports {
            print_report(r);
        }
    }
    if reports.iter().all(|r| r.compatible) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_report(r: &InspectReport) {
    println!();
    println!("{}", r.path.display());
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    if let Some(name) = &r.name {
        println!("  bundle:        {name} {}", opt(&r.version));
        if let Some(d) = r.description.as_deref().filter(|d| !d.is_empty()) {
            println!("  description:   {d}");
        }
        println!(
            "  plugin ABI:    {} (requires host ABI {})",
            opt(&r.plugin_abi),
            opt(&r.requires)
        );
        println!(
            "  built with:    datafusion {}, datafusion-ffi {}, arrow {}, sqlparser {}",
            opt(&r.datafusion_version),
            r.datafusion_ffi_major.map_or("-".into(), |v| v.to_string()),
            r.arrow_major.map_or("-".into(), |v| v.to_string()),
            opt(&r.sqlparser_version)
        );
        println!(
            "  target:        {} ({})",
            opt(&r.target),
            opt(&r.rustc_version)
        );
        println!(
            "  file:          {} bytes, {} {}",
            r.file_size.unwrap_or(0),
            opt(&r.format),
            opt(&r.architecture)
        );
        println!("  sha256:        {}", opt(&r.sha256));
        println!("  trust:         {}", opt(&r.trust));
        if let Some(c) = r.capabilities {
            println!("  capabilities:  {c}");
        }
        if !r.objects.is_empty() {
            println!("  objects:");
            for o in &r.objects {
                let params = if o.parameters.is_empty() {
                    String::new()
                } else {
                    format!("({})", o.parameters.join(", "))
                };
                println!("    {:<22} {}{params}  {}", o.kind.as_str(), o.name, o.doc);
            }
        }
        if !r.options.is_empty() {
            println!("  options:");
            for o in &r.options {
                let key = format!("{}.{}", name, o.name);
                println!(
                    "    {key:<22} {} = {}  {}",
                    o.kind.as_str(),
                    o.default,
                    o.doc
                );
            }
        }
    }
    for w in &r.warnings {
        println!("  warning:       {w}");
    }
    match &r.refusal {
        None if r.loaded => {
            println!("  verdict:       compatible (loaded; exports match the manifest)")
        }
        None => println!("  verdict:       compatible (not loaded: none of its code ran)"),
        Some(refusal) => {
            println!("  verdict:       INCOMPATIBLE");
            for line in refusal.to_string().lines() {
                println!("    {line}");
            }
        }
    }
}
