//! The ABI record: the fixed-layout facts a host needs to decide, *without running any of a
//! bundle's code*, whether it may load the bundle.
//!
//! Every bundle carries one copy of [`AbiRecord`] in a named link section (see [`crate::section`])
//! so that `df-plugin-host inspect` can read it straight from the file, and returns a pointer to
//! the very same static from its `df_plugin_abi_record` handshake symbol once it is opened.
//!
//! The layout is plain C: integers and NUL-terminated byte arrays, no pointers (pointers would
//! need relocations, which a file reader cannot apply). It is **append-only forever**:
//! `struct_size` says how many bytes the producer wrote, so an older host reads the prefix it
//! knows and a newer host zero-fills what an older bundle did not write.

use std::fmt;

/// Major version of the plugin ABI. A host loads only bundles with the same major.
pub const ABI_MAJOR: u16 = 1;
/// Minor version of the plugin ABI. A host loads bundles whose minor is at most its own:
/// minors only append fields (to this record and to the root module's prefix type).
///
/// 1.1 added the SQL planners (`df_plugin_init_with_planners`); 1.2 the lean per-batch path
/// of scalar functions (`df_plugin_scalar_kernel`, see `ffi::scalar_kernel`); 1.3 the lean
/// execution of a bundle's plans (`df_plugin_plan_runner`, see `ffi::plan_runner`); 1.4 the
/// lean planning of its scans (`FFI_PlanRunner::scan`); 1.5 the lean per-batch path of groups
/// accumulators (`df_plugin_groups_accumulator`, see `ffi::groups_accumulator`); 1.6 scalar
/// functions' fixed-width arrays crossing as their buffers (`df_plugin_scalar_kernel_buffers`,
/// see `ffi::buffers`); 1.7 the same for the columns of a plan's batches
/// (`FFI_PlanRunner::execute_buffers`, see `ffi::batch_stream`), and table function calls
/// through the plan runner (`FFI_PlanRunner::call_table_function`); 1.8 tables' filter
/// pushdown answered by the plan runner (`FFI_PlanRunner::supports_filters_pushdown`); 1.9 the
/// host's allocator lent to the bundle (`df_plugin_share_allocator`, see `ffi::allocator`), and
/// the columns a bundle gives up handed over to the host (`ffi::buffers::HANDED_OVER`); 1.10 a
/// groups accumulator's `convert_to_state` states crossing back as their buffers, with their
/// types sent once (`FFI_LeanGroupsAccumulator::convert_to_state_buffers`); 1.11 a table's
/// schema asked through the plan runner, sent only when it changed (`FFI_PlanRunner::schema`);
/// 1.12 a scan's optimization left to the host's physical optimizer, which asks for it when it
/// reaches the scan (`FFI_PlanRunner::scan_unoptimized` and `FFI_PlanRunner::optimize`); 1.13
/// a scalar function's arguments lent for the call (`FFI_ScalarCall::invoke_lent`); 1.14 a
/// function written over values called on the arguments' values, with no array built in the
/// bundle (`FFI_ScalarCall::invoke_values`, see `ffi::values`); 1.15 table sources, table
/// functions whose tables cross as batch streams with no DataFusion plan
/// (`df_plugin_init_with_table_sources`, see `ffi::table_source`); 1.16 lean planners, which
/// get opaque operands and return plans of standard nodes calling functions by name
/// (`hooks::LEAN`, see `ffi::planner::lean`).
pub const ABI_MINOR: u16 = 16;

/// First bytes of every record; anything else is not a df-plugin record.
pub const RECORD_MAGIC: [u8; 8] = *b"DFPLUGIN";

/// Name of the handshake symbol every bundle exports: `extern "C" fn() -> *const AbiRecord`.
pub const HANDSHAKE_SYMBOL: &str = "df_plugin_abi_record";
/// Name of the symbol returning the embedded manifest: `extern "C" fn(*mut usize) -> *const u8`.
pub const MANIFEST_SYMBOL: &str = "df_plugin_manifest";

/// A NUL-terminated string stored inline in `N` bytes (at most `N - 1` bytes of UTF-8).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedStr<const N: usize>(pub [u8; N]);

impl<const N: usize> FixedStr<N> {
    /// Copies `s` into a fixed array; fails the build (in const context) when `s` does not fit.
    pub const fn new(s: &str) -> Self {
        let bytes = s.as_bytes();
        assert!(
            bytes.len() < N,
            "string does not fit in the ABI record field"
        );
        let mut out = [0u8; N];
        let mut i = 0;
        while i < bytes.len() {
            assert!(bytes[i] != 0, "ABI record strings cannot contain NUL");
            out[i] = bytes[i];
            i += 1;
        }
        Self(out)
    }

    /// The text up to the first NUL. A field without a terminating NUL, or with invalid UTF-8,
    /// is an error: it means the record was not written by this crate.
    pub fn to_str(&self) -> Result<&str, RecordError> {
        let end = self
            .0
            .iter()
            .position(|b| *b == 0)
            .ok_or(RecordError::UnterminatedString)?;
        std::str::from_utf8(&self.0[..end]).map_err(|_| RecordError::InvalidUtf8)
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_str() {
            Ok(s) => write!(f, "{s:?}"),
            Err(e) => write!(f, "<{e}>"),
        }
    }
}

/// The record itself. Field order is frozen; new fields go at the end with a minor bump.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiRecord {
    /// [`RECORD_MAGIC`].
    pub magic: [u8; 8],
    /// `size_of::<AbiRecord>()` of the producer.
    pub struct_size: u32,
    /// Plugin ABI major of the producer.
    pub abi_major: u16,
    /// Plugin ABI minor of the producer.
    pub abi_minor: u16,
    /// One bit per kind of object the bundle exports, see [`Capability`].
    pub capabilities: u64,
    /// `datafusion_ffi::version()` of the producer.
    pub datafusion_ffi_major: u32,
    /// Major version of the `arrow` crate the producer was built with.
    pub arrow_major: u32,
    /// `datafusion::DATAFUSION_VERSION` of the producer (exact match required).
    pub datafusion_version: FixedStr<32>,
    /// Version of the `sqlparser` crate (matters for the planner ABI: SQL AST nodes cross as sqlparser's serde JSON).
    pub sqlparser_version: FixedStr<32>,
    /// Target triple the bundle was compiled for.
    pub target: FixedStr<64>,
    /// `rustc --version` of the producer (informational; datafusion-ffi layouts depend on it).
    pub rustc_version: FixedStr<96>,
    /// Bundle name, equal to the manifest's.
    pub bundle_name: FixedStr<64>,
    /// Bundle version, equal to the manifest's.
    pub bundle_version: FixedStr<64>,
}

/// Size of the first (1.0) record layout: the least a host accepts.
pub const RECORD_V1_SIZE: usize = std::mem::size_of::<AbiRecord>();

impl AbiRecord {
    /// Reads a record from raw bytes, as found in a file's link section or behind the handshake
    /// pointer. Accepts records longer than this crate's (a newer minor appended fields) and
    /// refuses anything shorter than the 1.0 layout.
    pub fn read(bytes: &[u8]) -> Result<Self, RecordError> {
        const HEADER: usize = 12;
        if bytes.len() < HEADER {
            return Err(RecordError::TooShort {
                found: bytes.len(),
                expected: RECORD_V1_SIZE,
            });
        }
        if bytes[..8] != RECORD_MAGIC {
            return Err(RecordError::BadMagic);
        }
        let declared = u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if declared < RECORD_V1_SIZE || bytes.len() < RECORD_V1_SIZE {
            return Err(RecordError::TooShort {
                found: declared.min(bytes.len()),
                expected: RECORD_V1_SIZE,
            });
        }
        // SAFETY: `AbiRecord` is `repr(C)` plain old data (integers and byte arrays), every bit
        // pattern is valid, and `bytes` holds at least `size_of::<AbiRecord>()` bytes.
        let record = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<AbiRecord>()) };
        record.decode()?;
        Ok(record)
    }

    /// The record as bytes, exactly as it is laid out in memory and in the link section.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: plain old data without padding-sensitive invariants; we only read it.
        unsafe {
            std::slice::from_raw_parts(
                (self as *const AbiRecord).cast::<u8>(),
                std::mem::size_of::<AbiRecord>(),
            )
        }
    }

    /// Decodes the string fields, failing on the first malformed one.
    pub fn decode(&self) -> Result<RecordInfo, RecordError> {
        Ok(RecordInfo {
            abi_major: self.abi_major,
            abi_minor: self.abi_minor,
            capabilities: Capabilities(self.capabilities),
            datafusion_ffi_major: self.datafusion_ffi_major,
            arrow_major: self.arrow_major,
            datafusion_version: self.datafusion_version.to_str()?.to_owned(),
            sqlparser_version: self.sqlparser_version.to_str()?.to_owned(),
            target: self.target.to_str()?.to_owned(),
            rustc_version: self.rustc_version.to_str()?.to_owned(),
            bundle_name: self.bundle_name.to_str()?.to_owned(),
            bundle_version: self.bundle_version.to_str()?.to_owned(),
        })
    }
}

/// The decoded, owned view of an [`AbiRecord`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordInfo {
    pub abi_major: u16,
    pub abi_minor: u16,
    pub capabilities: Capabilities,
    pub datafusion_ffi_major: u32,
    pub arrow_major: u32,
    pub datafusion_version: String,
    pub sqlparser_version: String,
    pub target: String,
    pub rustc_version: String,
    pub bundle_name: String,
    pub bundle_version: String,
}

/// Why bytes could not be read as an [`AbiRecord`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    TooShort { found: usize, expected: usize },
    BadMagic,
    UnterminatedString,
    InvalidUtf8,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::TooShort { found, expected } => write!(
                f,
                "ABI record is {found} bytes, at least {expected} expected (truncated or not a df-plugin record)"
            ),
            RecordError::BadMagic => write!(f, "ABI record does not start with \"DFPLUGIN\""),
            RecordError::UnterminatedString => {
                write!(f, "ABI record has a string field without a terminating NUL")
            }
            RecordError::InvalidUtf8 => {
                write!(f, "ABI record has a string field that is not UTF-8")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// The kinds of object a bundle can export. Each kind has one capability bit.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    ScalarUdf,
    AggregateUdf,
    WindowUdf,
    TableFunction,
    TableProvider,
    TableProviderFactory,
    ExprPlanner,
    RelationPlanner,
    TypePlanner,
}

impl Capability {
    /// Every kind, in bit order. Bits 9..64 are reserved for kinds added by later minors.
    pub const ALL: [Capability; 9] = [
        Capability::ScalarUdf,
        Capability::AggregateUdf,
        Capability::WindowUdf,
        Capability::TableFunction,
        Capability::TableProvider,
        Capability::TableProviderFactory,
        Capability::ExprPlanner,
        Capability::RelationPlanner,
        Capability::TypePlanner,
    ];

    pub const fn bit(self) -> u64 {
        1u64 << (self as u32)
    }

    /// The spelling used in manifests, JSON output and error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::ScalarUdf => "scalar_udf",
            Capability::AggregateUdf => "aggregate_udf",
            Capability::WindowUdf => "window_udf",
            Capability::TableFunction => "table_function",
            Capability::TableProvider => "table_provider",
            Capability::TableProviderFactory => "table_provider_factory",
            Capability::ExprPlanner => "expr_planner",
            Capability::RelationPlanner => "relation_planner",
            Capability::TypePlanner => "type_planner",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Capability`] bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(pub u64);

impl Capabilities {
    pub const fn empty() -> Self {
        Self(0)
    }

    pub const fn with(self, c: Capability) -> Self {
        Self(self.0 | c.bit())
    }

    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// The known kinds in this set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }

    /// Bits this version of the ABI does not know (a newer bundle, or garbage).
    pub const fn unknown_bits(self) -> u64 {
        let mut known = 0u64;
        let mut i = 0;
        while i < Capability::ALL.len() {
            known |= Capability::ALL[i].bit();
            i += 1;
        }
        self.0 & !known
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Capability::as_str).collect();
        if names.is_empty() {
            f.write_str("(none)")?;
        } else {
            f.write_str(&names.join(", "))?;
        }
        if self.unknown_bits() != 0 {
            write!(f, " + unknown bits {:#x}", self.unknown_bits())?;
        }
        Ok(())
    }
}

impl serde::Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Capability::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AbiRecord {
        AbiRecord {
            magic: RECORD_MAGIC,
            struct_size: RECORD_V1_SIZE as u32,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            capabilities: Capabilities::empty().with(Capability::ScalarUdf).0,
            datafusion_ffi_major: 55,
            arrow_major: 59,
            datafusion_version: FixedStr::new("55.2.0"),
            sqlparser_version: FixedStr::new("0.62.0"),
            target: FixedStr::new("x86_64-unknown-linux-gnu"),
            rustc_version: FixedStr::new("rustc 1.95.0"),
            bundle_name: FixedStr::new("demo"),
            bundle_version: FixedStr::new("1.2.3"),
        }
    }

    #[test]
    fn round_trips_through_bytes() {
        let r = sample();
        assert_eq!(AbiRecord::read(r.as_bytes()).unwrap(), r);
    }

    #[test]
    fn accepts_a_longer_record_from_a_newer_minor() {
        let r = sample();
        let mut bytes = r.as_bytes().to_vec();
        bytes.extend_from_slice(&[7u8; 24]);
        let len = bytes.len() as u32;
        bytes[8..12].copy_from_slice(&len.to_ne_bytes());
        let read = AbiRecord::read(&bytes).unwrap();
        assert_eq!(read.bundle_name, r.bundle_name);
    }

    #[test]
    fn refuses_truncated_and_foreign_bytes() {
        let r = sample();
        assert!(matches!(
            AbiRecord::read(&r.as_bytes()[..40]),
            Err(RecordError::TooShort { .. })
        ));
        let mut bad = r.as_bytes().to_vec();
        bad[0] = b'X';
        assert_eq!(AbiRecord::read(&bad), Err(RecordError::BadMagic));
        let mut unterminated = r;
        unterminated.bundle_name = FixedStr([b'a'; 64]);
        assert_eq!(
            AbiRecord::read(unterminated.as_bytes()),
            Err(RecordError::UnterminatedString)
        );
    }

    #[test]
    fn capability_bits_are_stable() {
        // These values are part of the ABI: never renumber.
        assert_eq!(Capability::ScalarUdf.bit(), 1);
        assert_eq!(Capability::TableProviderFactory.bit(), 1 << 5);
        assert_eq!(Capability::TypePlanner.bit(), 1 << 8);
        let caps = Capabilities(Capability::WindowUdf.bit() | 1 << 40);
        assert_eq!(caps.unknown_bits(), 1 << 40);
        assert_eq!(caps.to_string(), "window_udf + unknown bits 0x10000000000");
    }
}

/// Values a test bundle can force into its record, to prove that the host refuses records that
/// disagree with it. Real bundles never set these; `build::Embed::override_record` does.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordOverrides {
    pub abi_major: Option<u16>,
    pub abi_minor: Option<u16>,
    pub capabilities: Option<u64>,
    pub datafusion_ffi_major: Option<u32>,
    pub arrow_major: Option<u32>,
    pub datafusion_version: Option<&'static str>,
    pub sqlparser_version: Option<&'static str>,
    pub target: Option<&'static str>,
}

/// What the producing build was compiled against: filled in by the author toolkit from the
/// crates it links, so a bundle cannot state versions it was not built with.
#[derive(Clone, Copy, Debug)]
pub struct BuildFacts {
    pub datafusion_ffi_major: u32,
    pub arrow_major: u32,
    pub datafusion_version: &'static str,
    pub sqlparser_version: &'static str,
    pub target: &'static str,
    pub rustc_version: &'static str,
}

impl AbiRecord {
    /// Builds a bundle's record at compile time.
    pub const fn for_bundle(
        name: &str,
        version: &str,
        capabilities: u64,
        facts: BuildFacts,
        overrides: RecordOverrides,
    ) -> Self {
        const fn pick<T: Copy>(o: Option<T>, v: T) -> T {
            match o {
                Some(x) => x,
                None => v,
            }
        }
        AbiRecord {
            magic: RECORD_MAGIC,
            struct_size: std::mem::size_of::<AbiRecord>() as u32,
            abi_major: pick(overrides.abi_major, ABI_MAJOR),
            abi_minor: pick(overrides.abi_minor, ABI_MINOR),
            capabilities: pick(overrides.capabilities, capabilities),
            datafusion_ffi_major: pick(overrides.datafusion_ffi_major, facts.datafusion_ffi_major),
            arrow_major: pick(overrides.arrow_major, facts.arrow_major),
            datafusion_version: FixedStr::new(pick(
                overrides.datafusion_version,
                facts.datafusion_version,
            )),
            sqlparser_version: FixedStr::new(pick(
                overrides.sqlparser_version,
                facts.sqlparser_version,
            )),
            target: FixedStr::new(pick(overrides.target, facts.target)),
            rustc_version: FixedStr::new(facts.rustc_version),
            bundle_name: FixedStr::new(name),
            bundle_version: FixedStr::new(version),
        }
    }
}
