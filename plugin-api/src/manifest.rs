//! The bundle manifest: the human-written source of truth for what a bundle is and exports.
//!
//! Each bundle's manifest lives in `manifests/<bundle>.toml`. Its build script validates it with
//! [`crate::build::embed_manifest`] (an invalid manifest fails the build, not the load) and
//! embeds it in the bundle, where the host reads it without running the bundle. At load time the
//! host checks the live exports against it (names and kinds), and restores from it what
//! datafusion-ffi drops on the way (documentation, parameter names).
//!
//! ```toml
//! [bundle]
//! name = "udfs"
//! version = "0.1.0"
//! description = "URL, text and sessionization functions"
//! license = "Apache-2.0"
//! requires = "^1.0"          # plugin ABI versions this bundle works with
//!
//! [[object]]
//! kind = "scalar_udf"
//! name = "url_host"
//! doc = "The host part of a URL, or NULL when the URL does not parse."
//! parameters = ["url"]
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::record::{Capabilities, Capability};

/// A parsed and validated manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub bundle: BundleInfo,
    #[serde(default, rename = "object")]
    pub objects: Vec<ObjectDecl>,
    /// Session options the bundle reads (`SET <bundle>.<name> = ...`).
    #[serde(default, rename = "option", skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionDecl>,
    /// The directory the manifest was read from when the bundle was built, written by
    /// [`crate::build`] (never by hand): `df-plugin-host verify` finds the bundle's `.slt`
    /// files from it, the way a debugger finds sources from DWARF's compilation directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dir: Option<String>,
}

/// One session option (`[[option]]`). Its key in SQL is `<bundle name>.<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: OptionKind,
    /// The value when the session has not set one, in SQL `SET` syntax.
    pub default: String,
    #[serde(default)]
    pub doc: String,
}

/// The type of a session option's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    Bool,
    Integer,
    Float,
    String,
}

impl OptionKind {
    /// Checks that `value` is a valid value of this kind.
    pub fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            OptionKind::Bool => value.parse::<bool>().is_ok(),
            OptionKind::Integer => value.parse::<i64>().is_ok(),
            OptionKind::Float => value.parse::<f64>().is_ok(),
            OptionKind::String => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{value:?} is not a valid {}", self.as_str()))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OptionKind::Bool => "bool",
            OptionKind::Integer => "integer",
            OptionKind::Float => "float",
            OptionKind::String => "string",
        }
    }
}

/// The `[bundle]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleInfo {
    /// Lower-case letters, digits, `_` and `-`; unique among the bundles a host loads.
    pub name: String,
    pub version: semver::Version,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub homepage: Option<String>,
    /// Which host plugin ABI versions (`major.minor.0`) this bundle accepts.
    #[serde(default = "default_requires")]
    pub requires: semver::VersionReq,
    /// The directory of the bundle's own `.slt` files, relative to the manifest; the
    /// conformance kit (`df-plugin-host verify`) runs them with only this bundle loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slt: Option<String>,
}

fn default_requires() -> semver::VersionReq {
    semver::VersionReq::parse("^1.0").expect("static requirement parses")
}

/// One exported object (`[[object]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectDecl {
    pub kind: Capability,
    /// The name the object registers under (for table provider factories: the `STORED AS` key).
    pub name: String,
    /// One-line documentation shown by `inspect`, `SHOW FUNCTIONS` and `information_schema`.
    #[serde(default)]
    pub doc: String,
    /// Parameter names, in order, for functions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
    /// A human-readable signature, e.g. `url_host(url: Utf8) -> Utf8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// An example call, e.g. `SELECT url_host('https://a.b/c')`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

/// Why a manifest is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    Toml(String),
    BadName(String),
    EmptyObjectName { kind: Capability },
    DuplicateObject { kind: Capability, name: String },
    ParametersOnNonFunction { kind: Capability, name: String },
    BadOption { name: String, reason: String },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Toml(e) => {
                write!(f, "manifest is not valid TOML for a bundle manifest: {e}")
            }
            ManifestError::BadName(n) => write!(
                f,
                "bundle name {n:?} is not valid: use 1 to 63 lower-case letters, digits, '_' or '-'"
            ),
            ManifestError::EmptyObjectName { kind } => {
                write!(f, "a {kind} object has an empty name")
            }
            ManifestError::DuplicateObject { kind, name } => {
                write!(f, "the {kind} {name:?} is declared twice")
            }
            ManifestError::BadOption { name, reason } => {
                write!(f, "option {name:?} is not valid: {reason}")
            }
            ManifestError::ParametersOnNonFunction { kind, name } => write!(
                f,
                "{kind} {name:?} declares parameters, but only functions have parameters"
            ),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Toml(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let name = &self.bundle.name;
        let valid_name = !name.is_empty()
            && name.len() < 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(ManifestError::BadName(name.clone()));
        }
        let mut seen = BTreeSet::new();
        for o in &self.objects {
            if o.name.is_empty() {
                return Err(ManifestError::EmptyObjectName { kind: o.kind });
            }
            if !seen.insert((o.kind, o.name.as_str())) {
                return Err(ManifestError::DuplicateObject {
                    kind: o.kind,
                    name: o.name.clone(),
                });
            }
            let is_function = matches!(
                o.kind,
                Capability::ScalarUdf
                    | Capability::AggregateUdf
                    | Capability::WindowUdf
                    | Capability::TableFunction
            );
            if !is_function && !o.parameters.is_empty() {
                return Err(ManifestError::ParametersOnNonFunction {
                    kind: o.kind,
                    name: o.name.clone(),
                });
            }
        }
        let mut option_names = BTreeSet::new();
        for o in &self.options {
            let bad = |reason: String| ManifestError::BadOption {
                name: o.name.clone(),
                reason,
            };
            let valid = !o.name.is_empty()
                && o.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(bad("use lower-case letters, digits and '_'".into()));
            }
            if !option_names.insert(o.name.as_str()) {
                return Err(bad("declared twice".into()));
            }
            o.kind
                .check(&o.default)
                .map_err(|e| bad(format!("default {e}")))?;
        }
        Ok(())
    }

    /// The bundle's `.slt` directory ([`BundleInfo::slt`]) as a path: relative to
    /// [`Manifest::source_dir`] when the build recorded one.
    pub fn slt_dir(&self) -> Option<std::path::PathBuf> {
        let slt = std::path::Path::new(self.bundle.slt.as_deref()?);
        Some(match &self.source_dir {
            Some(dir) if slt.is_relative() => std::path::Path::new(dir).join(slt),
            _ => slt.to_path_buf(),
        })
    }

    /// The full SQL key of an option: `<bundle>.<option>`.
    pub fn option_key(&self, option: &OptionDecl) -> String {
        format!("{}.{}", self.bundle.name, option.name)
    }

    /// The capability bits implied by the declared objects.
    pub fn capabilities(&self) -> Capabilities {
        self.objects.iter().map(|o| o.kind).collect()
    }

    /// The declared objects of one kind.
    pub fn objects_of(&self, kind: Capability) -> impl Iterator<Item = &ObjectDecl> {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    /// The declaration of one object, if any.
    pub fn object(&self, kind: Capability, name: &str) -> Option<&ObjectDecl> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [bundle]
        name = "demo"
        version = "0.3.1"
        description = "demo bundle"

        [[object]]
        kind = "scalar_udf"
        name = "f"
        doc = "does f"
        parameters = ["x", "y"]

        [[object]]
        kind = "table_provider_factory"
        name = "DEMO"
    "#;

    #[test]
    fn parses_and_derives_capabilities() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.bundle.version, semver::Version::new(0, 3, 1));
        assert!(m.bundle.requires.matches(&semver::Version::new(1, 0, 0)));
        let caps = m.capabilities();
        assert!(caps.contains(Capability::ScalarUdf));
        assert!(caps.contains(Capability::TableProviderFactory));
        assert!(!caps.contains(Capability::WindowUdf));
        assert_eq!(
            m.object(Capability::ScalarUdf, "f").unwrap().parameters,
            ["x", "y"]
        );
    }

    #[test]
    fn options_are_typed_and_validated() {
        let with_option = format!(
            "{GOOD}\n[[option]]\nname = \"strip_www\"\ntype = \"bool\"\ndefault = \"false\"\n"
        );
        let m = Manifest::parse(&with_option).unwrap();
        assert_eq!(m.option_key(&m.options[0]), "demo.strip_www");
        let bad_default = with_option.replace("default = \"false\"", "default = \"maybe\"");
        assert!(matches!(
            Manifest::parse(&bad_default),
            Err(ManifestError::BadOption { .. })
        ));
        assert_eq!(OptionKind::Integer.check("12"), Ok(()));
        assert!(OptionKind::Float.check("x").is_err());
    }

    #[test]
    fn refuses_invalid_manifests() {
        let dup = format!("{GOOD}\n[[object]]\nkind = \"scalar_udf\"\nname = \"f\"\n");
        assert!(matches!(
            Manifest::parse(&dup),
            Err(ManifestError::DuplicateObject { .. })
        ));
        let bad_name = GOOD.replace("name = \"demo\"", "name = \"Demo Bundle\"");
        assert!(matches!(
            Manifest::parse(&bad_name),
            Err(ManifestError::BadName(_))
        ));
        let unknown_kind = GOOD.replace("table_provider_factory", "teapot");
        assert!(matches!(
            Manifest::parse(&unknown_kind),
            Err(ManifestError::Toml(_))
        ));
        let params = GOOD.replace("name = \"DEMO\"", "name = \"DEMO\"\nparameters = [\"a\"]");
        assert!(matches!(
            Manifest::parse(&params),
            Err(ManifestError::ParametersOnNonFunction { .. })
        ));
    }
}
