//! The report `verify` prints: one line per check, pass / fail / skip, with its reason.

use std::fmt;
use std::path::PathBuf;

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not run: an earlier check failed, or the bundle offers nothing this check could use.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One named check (`metadata.versions`, `behaviour.scalar.url_host`, `slt.url_host.slt`, ...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    /// What was proven, or what was wrong and how to fix it.
    pub detail: String,
}

/// Everything `verify` found out about one bundle file.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub path: PathBuf,
    /// `name version` once the metadata was read, else the file name.
    pub bundle: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub(crate) fn push(
        &mut self,
        name: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
        });
    }

    pub(crate) fn pass(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Status::Pass, detail);
    }

    pub(crate) fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Status::Fail, detail);
    }

    pub(crate) fn skip(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name, Status::Skip, detail);
    }

    /// Adds a pass or a fail.
    pub(crate) fn outcome(&mut self, name: impl Into<String>, result: Result<String, String>) {
        match result {
            Ok(detail) => self.pass(name, detail),
            Err(detail) => self.fail(name, detail),
        }
    }

    /// True when no check failed and at least one passed (`verify` exits 0 only then).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
            && self.checks.iter().any(|c| c.status == Status::Pass)
    }

    /// The check of that name.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// Panics with the whole report unless it [`passed`](Self::passed): the one-line assertion
    /// for a third-party bundle's `cargo test`.
    pub fn assert_passed(&self) {
        assert!(self.passed(), "the bundle failed verification:\n{self}");
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verify {} ({})", self.bundle, self.path.display())?;
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let mut lines = c.detail.lines();
            writeln!(
                f,
                "  {}  {:width$}  {}",
                c.status.label(),
                c.name,
                lines.next().unwrap_or_default()
            )?;
            for line in lines {
                writeln!(f, "  {:4}  {:width$}  {line}", "", "")?;
            }
        }
        write!(
            f,
            "result: {} — {} passed, {} failed, {} skipped",
            if self.passed() {
                "verified"
            } else {
                "NOT verified"
            },
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip)
        )
    }
}
