//! Forwarding a bundle's `log` and `tracing` events to the host's logger.
//!
//! Each cdylib has its own copy of `log` and `tracing`, with its own (empty) global logger and
//! subscriber: without this bridge, everything a bundle and the DataFusion copy inside it log is
//! lost. The host produces an [`FFI_LogSink`] per bundle; the bundle installs a
//! [`ForeignLogSink`] as its `log` logger and `tracing` subscriber, so one `RUST_LOG` in the host
//! controls everything.
//!
//! Levels travel as `u8`: 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace.

use std::ffi::c_void;
use std::fmt::Write as _;

use abi_stable::StableAbi;
use abi_stable::std_types::RStr;

/// A log destination in the host. It is `Copy`: `private_data` points at data the host keeps
/// for the life of the process (like the bundle's image, it is never freed), so there is
/// nothing to clone or release.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct FFI_LogSink {
    /// The most verbose level the host wants from any target; cheaper than asking.
    pub max_level: u8,
    pub enabled: extern "C" fn(private_data: *const c_void, level: u8, target: RStr<'_>) -> bool,
    pub log:
        extern "C" fn(private_data: *const c_void, level: u8, target: RStr<'_>, message: RStr<'_>),
    pub private_data: *const c_void,
}

// SAFETY: the host's private data is immutable and lives for the process; the callbacks only
// read it and call the host's (thread-safe) global logger.
unsafe impl Send for FFI_LogSink {}
unsafe impl Sync for FFI_LogSink {}

struct HostSinkData {
    bundle: String,
}

fn to_level(level: u8) -> Option<log::Level> {
    match level {
        1 => Some(log::Level::Error),
        2 => Some(log::Level::Warn),
        3 => Some(log::Level::Info),
        4 => Some(log::Level::Debug),
        5 => Some(log::Level::Trace),
        _ => None,
    }
}

fn from_level(level: log::Level) -> u8 {
    level as usize as u8
}

extern "C" fn host_enabled(_data: *const c_void, level: u8, target: RStr<'_>) -> bool {
    let Some(level) = to_level(level) else {
        return false;
    };
    std::panic::catch_unwind(|| {
        log::logger().enabled(
            &log::Metadata::builder()
                .level(level)
                .target(target.as_str())
                .build(),
        )
    })
    .unwrap_or(false)
}

extern "C" fn host_log(data: *const c_void, level: u8, target: RStr<'_>, message: RStr<'_>) {
    let Some(level) = to_level(level) else {
        return;
    };
    // SAFETY: `data` is the leaked `HostSinkData` created by `FFI_LogSink::new`.
    let data = unsafe { &*(data as *const HostSinkData) };
    let _ = std::panic::catch_unwind(|| {
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(target.as_str())
                .args(format_args!(
                    "[bundle {}] {}",
                    data.bundle,
                    message.as_str()
                ))
                .build(),
        )
    });
}

impl FFI_LogSink {
    /// Producer (host side): a sink that forwards to the host process's `log` logger, tagging
    /// each message with the bundle's name. Leaks one small allocation per bundle, on purpose.
    pub fn new(bundle: &str) -> Self {
        let data = Box::leak(Box::new(HostSinkData {
            bundle: bundle.to_owned(),
        }));
        Self {
            max_level: log::max_level().to_level().map(from_level).unwrap_or(0),
            enabled: host_enabled,
            log: host_log,
            private_data: data as *const HostSinkData as *const c_void,
        }
    }
}

/// Consumer (bundle side): a `log::Log` and a `tracing::Subscriber` that forward to the host.
/// Spans are not forwarded, only events (with their fields formatted into the message).
#[derive(Clone, Copy)]
pub struct ForeignLogSink(pub FFI_LogSink);

impl ForeignLogSink {
    fn wants(&self, level: u8, target: &str) -> bool {
        level <= self.0.max_level && (self.0.enabled)(self.0.private_data, level, target.into())
    }

    fn send(&self, level: u8, target: &str, message: &str) {
        (self.0.log)(self.0.private_data, level, target.into(), message.into());
    }

    /// The `log` level filter matching the host's.
    pub fn max_level_filter(&self) -> log::LevelFilter {
        to_level(self.0.max_level)
            .map(|l| l.to_level_filter())
            .unwrap_or(log::LevelFilter::Off)
    }
}

impl log::Log for ForeignLogSink {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.wants(from_level(metadata.level()), metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = from_level(record.level());
        if self.wants(level, record.target()) {
            self.send(level, record.target(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn tracing_level(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 1,
        tracing::Level::WARN => 2,
        tracing::Level::INFO => 3,
        tracing::Level::DEBUG => 4,
        tracing::Level::TRACE => 5,
    }
}

/// Formats an event's fields as `message key=value ...`.
#[derive(Default)]
struct FieldFormatter(String);

impl tracing::field::Visit for FieldFormatter {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for ForeignLogSink {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event() && self.wants(tracing_level(metadata.level()), metadata.target())
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(match self.0.max_level {
            0 => tracing::level_filters::LevelFilter::OFF,
            1 => tracing::level_filters::LevelFilter::ERROR,
            2 => tracing::level_filters::LevelFilter::WARN,
            3 => tracing::level_filters::LevelFilter::INFO,
            4 => tracing::level_filters::LevelFilter::DEBUG,
            _ => tracing::level_filters::LevelFilter::TRACE,
        })
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        let mut fields = FieldFormatter::default();
        event.record(&mut fields);
        self.send(tracing_level(meta.level()), meta.target(), &fields.0);
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}
