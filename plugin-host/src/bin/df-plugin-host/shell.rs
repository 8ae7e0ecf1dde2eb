//! The interactive shell: statements end with `;`, `\q` quits, history is kept in
//! `~/.df_plugin_host_history`.

use std::process::ExitCode;
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::Format;
use crate::sql::run_statements;

fn history_file() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".df_plugin_host_history"))
}

pub async fn run(ctx: &Arc<SessionContext>, format: Format) -> ExitCode {
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("df-plugin-host: cannot start the shell: {e}");
            return ExitCode::from(1);
        }
    };
    let history = history_file();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "df-plugin-host {} — statements end with ';', \\q quits; LOAD PLUGIN '<path>' loads a bundle, SELECT * FROM df_plugins() lists them",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "df-plugin> "
        } else {
            "        -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
                    break;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if trimmed.ends_with(';') {
                    let _ = editor.add_history_entry(buffer.trim());
                    if let Err(e) = run_statements(ctx, &buffer, format).await {
                        eprintln!("Error: {e}");
                    }
                    buffer.clear();
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("df-plugin-host: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}
