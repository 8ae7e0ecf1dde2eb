//! What a run ran on, for the table's caption.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: u64,
    pub os: String,
    pub rustc: String,
}

impl Machine {
    /// Reads `/proc` and asks `rustc -V`; anything unreadable is "unknown".
    pub fn describe() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':').or_else(|| l.split_once('=')))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        };
        let cpuinfo = read("/proc/cpuinfo");
        let memory_kib: u64 = field(&read("/proc/meminfo"), "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|v| !v.is_empty());
        Self {
            cpu: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (memory_kib + (1 << 19)) >> 20,
            os: field(&read("/etc/os-release"), "PRETTY_NAME")
                .unwrap_or_else(|| std::env::consts::OS.into()),
            rustc: rustc.unwrap_or_else(|| "rustc (unknown version)".into()),
        }
    }
}
