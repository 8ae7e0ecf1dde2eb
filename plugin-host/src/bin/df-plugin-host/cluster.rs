//! `df-plugin-host scheduler` and `df-plugin-host executor`: Ballista nodes with the bundles.

use std::path::PathBuf;
use std::process::ExitCode;

pub use df_plugin_host::distributed::executor::ExecutorOptions;
pub use df_plugin_host::distributed::scheduler::SchedulerOptions;
use df_plugin_host::distributed::{executor, scheduler};
use df_plugin_host::{HostError, PluginHost};

use crate::settings::Settings;

fn host(settings: &Settings, dirs: Vec<PathBuf>) -> Result<PluginHost, HostError> {
    let mut builder = settings.builder()?;
    for d in dirs {
        builder = builder.search_path(d);
    }
    builder.build()
}

fn exit(result: Result<(), HostError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("df-plugin-host: {e}");
            ExitCode::from(1)
        }
    }
}

pub async fn scheduler(settings: Settings, dirs: Vec<PathBuf>, opts: SchedulerOptions) -> ExitCode {
    let run = async { scheduler::run(&host(&settings, dirs)?, opts).await };
    exit(run.await)
}

pub async fn executor(settings: Settings, dirs: Vec<PathBuf>, opts: ExecutorOptions) -> ExitCode {
    let run = async { executor::run(&host(&settings, dirs)?, opts).await };
    exit(run.await)
}

/// `HOST:PORT` split at the last colon.
pub fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn splits_host_and_port_at_the_last_colon() {
        assert_eq!(
            host_port("127.0.0.1:50050"),
            Some(("127.0.0.1".into(), 50050))
        );
        assert_eq!(host_port("[::1]:7"), Some(("[::1]".into(), 7)));
        assert_eq!(host_port("localhost"), None);
        assert_eq!(host_port("localhost:http"), None);
    }
}
