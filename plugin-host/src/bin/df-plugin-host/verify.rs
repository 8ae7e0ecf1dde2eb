//! `df-plugin-host verify BUNDLE [--slt DIR]`: the conformance kit's report for bundle files.

use std::path::PathBuf;
use std::process::ExitCode;

use df_plugin_host::conformance::{self, VerifyOptions};

pub struct VerifyArgs {
    pub bundles: Vec<PathBuf>,
    pub slt: Vec<PathBuf>,
    pub vars: Vec<String>,
    pub options: Vec<String>,
    pub json: bool,
}

/// Splits `KEY=VALUE`.
fn pair(text: &str, flag: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{flag} takes KEY=VALUE, got {text:?}"))
}

/// Exit code 0 when every bundle verified, 1 when one did not, 2 on usage errors.
pub async fn run(args: VerifyArgs) -> ExitCode {
    let parsed = (|| -> Result<VerifyOptions, String> {
        Ok(VerifyOptions {
            slt_dirs: args.slt.clone(),
            slt_vars: args
                .vars
                .iter()
                .map(|v| pair(v, "--slt-var"))
                .collect::<Result<_, _>>()?,
            bundle_options: args
                .options
                .iter()
                .map(|v| pair(v, "--option"))
                .collect::<Result<_, _>>()?,
        })
    })();
    let options = match parsed {
        Ok(o) => o,
        Err(e) => {
            eprintln!("df-plugin-host: {e}");
            return ExitCode::from(2);
        }
    };
    let mut reports = Vec::new();
    for bundle in &args.bundles {
        reports.push(conformance::verify(bundle, &options).await);
    }
    if args.json {
        match serde_json::to_string_pretty(&reports) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("df-plugin-host: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        for report in &reports {
            println!("{report}\n");
        }
    }
    if reports.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
