//! The host's one error type.
//!
//! Refusals are modelled on PostgreSQL's "incompatible library" error and ADBC's driver
//! manager: they name the bundle, the pipeline step, every field that differs (expected vs
//! found) and what to do about it.

use std::fmt;
use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// A step of the load pipeline (DESIGN.md, "Load pipeline").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Discover,
    Trust,
    Metadata,
    Compatibility,
    Open,
    Handshake,
    RootModule,
    Truthfulness,
    Register,
}

impl Step {
    /// Every step, in pipeline order.
    pub const ALL: [Step; 9] = [
        Step::Discover,
        Step::Trust,
        Step::Metadata,
        Step::Compatibility,
        Step::Open,
        Step::Handshake,
        Step::RootModule,
        Step::Truthfulness,
        Step::Register,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Discover => "discover",
            Step::Trust => "trust",
            Step::Metadata => "metadata",
            Step::Compatibility => "compatibility",
            Step::Open => "open",
            Step::Handshake => "handshake",
            Step::RootModule => "root module",
            Step::Truthfulness => "truthfulness",
            Step::Register => "register",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field that differs between what the host needs and what the bundle has.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl Mismatch {
    pub fn new(
        field: impl Into<String>,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Self {
            field: field.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// Why one bundle was not loaded. Nothing of it was registered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// The bundle's name when known (from its metadata), else the file name.
    pub bundle: String,
    pub path: PathBuf,
    pub step: Step,
    pub reason: String,
    pub mismatches: Vec<Mismatch>,
    pub fix: String,
}

impl Refusal {
    pub fn new(
        bundle: impl Into<String>,
        path: impl Into<PathBuf>,
        step: Step,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            bundle: bundle.into(),
            path: path.into(),
            step,
            reason: reason.into(),
            mismatches: Vec::new(),
            fix: fix.into(),
        }
    }

    pub fn with_mismatches(mut self, mismatches: Vec<Mismatch>) -> Self {
        self.mismatches = mismatches;
        self
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bundle '{}' ({}) refused at step '{}': {}",
            self.bundle,
            self.path.display(),
            self.step,
            self.reason
        )?;
        for m in &self.mismatches {
            write!(
                f,
                "\n  {}: expected {}, found {}",
                m.field, m.expected, m.found
            )?;
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the host.
#[derive(Debug)]
pub enum HostError {
    /// A path given to the host does not exist, or no bundle was found anywhere.
    NotFound {
        what: String,
        searched: Vec<PathBuf>,
    },
    /// One or more bundles were refused (strict mode, or a single-bundle operation).
    Refused(Vec<Refusal>),
    /// Reading a file or directory failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// DataFusion failed while registering or querying.
    DataFusion(DataFusionError),
    /// The caller asked for something that cannot be done.
    Usage(String),
    /// A Ballista scheduler, executor or client connection failed (see [`crate::distributed`]).
    Cluster { node: String, message: String },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NotFound { what, searched } => {
                write!(f, "{what}; searched:")?;
                if searched.is_empty() {
                    write!(
                        f,
                        " (no paths: pass a plugin directory or set DF_PLUGIN_PATH)"
                    )?;
                }
                for p in searched {
                    write!(f, "\n  {}", p.display())?;
                }
                Ok(())
            }
            HostError::Refused(refusals) => {
                for (i, r) in refusals.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
            HostError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            HostError::DataFusion(e) => write!(f, "{e}"),
            HostError::Cluster { node, message } => write!(f, "{node}: {message}"),
            HostError::Usage(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Io { source, .. } => Some(source),
            HostError::DataFusion(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DataFusionError> for HostError {
    fn from(e: DataFusionError) -> Self {
        HostError::DataFusion(e)
    }
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;
