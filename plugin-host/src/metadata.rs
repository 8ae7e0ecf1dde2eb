//! Steps 2 and 3: checking the file and reading a bundle's embedded metadata *without running
//! it*: the file is parsed as ELF / Mach-O with the `object` crate (reading only headers and
//! the two metadata sections), never `dlopen`ed, so no constructor of the bundle runs.

use std::fs::File;
use std::path::{Path, PathBuf};

use df_plugin_api::manifest::Manifest;
use df_plugin_api::record::{AbiRecord, RecordInfo};
use df_plugin_api::section;
use object::read::ReadCache;
use object::{Endian, Object, ObjectKind, ObjectSection, ReadRef};

use crate::error::{Mismatch, Refusal, Step};

/// What a bundle file says about itself.
#[derive(Clone, Debug)]
pub struct BundleMetadata {
    pub path: PathBuf,
    pub file_size: u64,
    /// `elf` or `macho`.
    pub format: String,
    /// The machine the file was built for, as `object` names it (e.g. `X86_64`).
    pub architecture: String,
    pub little_endian: bool,
    pub record: AbiRecord,
    pub info: RecordInfo,
    pub manifest: Manifest,
    pub manifest_text: String,
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Step 2 (the part that needs no policy): the path must be a regular file after resolving
/// symlinks. Ownership, permissions and hashes are the trust policy's business.
pub fn check_file(path: &Path) -> Result<u64, Refusal> {
    let refuse =
        |reason: String, fix: &str| Refusal::new(file_label(path), path, Step::Trust, reason, fix);
    let meta = std::fs::metadata(path).map_err(|e| {
        refuse(
            format!("cannot read the file: {e}"),
            "check the path and its permissions",
        )
    })?;
    if !meta.is_file() {
        return Err(refuse(
            "not a regular file".into(),
            "point the host at a bundle file (.so / .dylib) or a directory of them",
        ));
    }
    Ok(meta.len())
}

/// Step 3: parse the file and read the ABI record and manifest sections.
pub fn read(path: &Path) -> Result<BundleMetadata, Refusal> {
    let file_size = check_file(path)?;
    let refuse = |reason: String, fix: &str| {
        Refusal::new(file_label(path), path, Step::Metadata, reason, fix)
    };
    let file = File::open(path).map_err(|e| {
        refuse(
            format!("cannot open the file: {e}"),
            "check the file's permissions",
        )
    })?;
    let cache = ReadCache::new(file);
    let raw = raw_object(&cache).map_err(|e| {
        refuse(
            format!("not a shared library this host can read ({e}); the file is truncated, corrupt, or not ELF / Mach-O"),
            "replace it with a complete bundle built by `cargo build` (crate-type = [\"cdylib\"])",
        )
    })?;
    let format = match raw.format {
        object::BinaryFormat::Elf => "elf",
        object::BinaryFormat::MachO => "macho",
        other => {
            return Err(refuse(
                format!("{other:?} files are not supported"),
                "build the bundle for Linux (ELF) or macOS (Mach-O)",
            ));
        }
    };
    if raw.kind != ObjectKind::Dynamic {
        return Err(refuse(
            format!("the file is a {:?} object, not a shared library", raw.kind),
            "build the bundle with crate-type = [\"cdylib\"]",
        ));
    }
    let section_data =
        |(name, data): &(&str, Option<Result<Vec<u8>, String>>)| -> Result<Vec<u8>, Refusal> {
            match data {
                None => Err(refuse(
                    format!(
                        "a shared library, but not a df-plugin bundle: it has no {name} section"
                    ),
                    "export the bundle with df_plugin_api::export_bundle! and embed its manifest from build.rs",
                )),
                Some(Err(e)) => Err(refuse(
                    format!(
                        "section {name} cannot be read ({e}); the file is truncated or corrupt"
                    ),
                    "rebuild the bundle",
                )),
                Some(Ok(bytes)) => Ok(bytes.clone()),
            }
        };
    let record_bytes = section_data(&raw.record)?;
    let record = AbiRecord::read(&record_bytes).map_err(|e| {
        refuse(
            format!("the ABI record is not valid: {e}"),
            "rebuild the bundle with df-plugin-api",
        )
    })?;
    let info = record
        .decode()
        .map_err(|e| refuse(e.to_string(), "rebuild the bundle"))?;
    let manifest_bytes = section_data(&raw.manifest)?;
    let manifest_text = String::from_utf8(manifest_bytes).map_err(|_| {
        refuse(
            "the embedded manifest is not UTF-8".into(),
            "rebuild the bundle",
        )
    })?;
    let manifest = Manifest::parse(&manifest_text).map_err(|e| {
        Refusal::new(
            info.bundle_name.clone(),
            path,
            Step::Metadata,
            format!("the embedded manifest is not valid: {e}"),
            "fix the manifest and rebuild the bundle",
        )
    })?;

    // The record is derived from the manifest at build time; disagreement means tampering or a
    // hand-made record.
    let mut mismatches = Vec::new();
    if info.bundle_name != manifest.bundle.name {
        mismatches.push(Mismatch::new(
            "bundle name (record vs manifest)",
            &manifest.bundle.name,
            &info.bundle_name,
        ));
    }
    if info.bundle_version != manifest.bundle.version.to_string() {
        mismatches.push(Mismatch::new(
            "bundle version (record vs manifest)",
            &manifest.bundle.version,
            &info.bundle_version,
        ));
    }
    if !mismatches.is_empty() {
        return Err(Refusal::new(
            info.bundle_name.clone(),
            path,
            Step::Metadata,
            "the ABI record and the manifest describe different bundles",
            "rebuild the bundle so that its record is generated from its manifest",
        )
        .with_mismatches(mismatches));
    }

    Ok(BundleMetadata {
        path: path.to_path_buf(),
        file_size,
        format: format.to_owned(),
        architecture: format!("{:?}", raw.architecture),
        little_endian: raw.little_endian,
        record,
        info,
        manifest,
        manifest_text,
    })
}

/// What step 3 needs of an object file: its format, kind, machine and the two sections.
struct RawObject {
    format: object::BinaryFormat,
    kind: ObjectKind,
    architecture: object::Architecture,
    little_endian: bool,
    /// (section name, its bytes): `None` when the section is absent.
    record: (&'static str, Option<Result<Vec<u8>, String>>),
    manifest: (&'static str, Option<Result<Vec<u8>, String>>),
}

/// Parses just enough of the file. ELF files take a short path that reads only the file
/// header, the section headers and their names: `object::File::parse` also reads the symbol
/// tables, which in an unstripped 200 MB bundle are most of the cost of the metadata step.
fn raw_object(data: &ReadCache<File>) -> Result<RawObject, String> {
    let magic = data
        .read_bytes_at(0, 5)
        .map_err(|()| "the file is too short".to_owned())?;
    match (magic.get(..4), magic.get(4)) {
        (Some(b"\x7fELF"), Some(&object::elf::ELFCLASS64)) => {
            elf_object::<object::elf::FileHeader64<object::Endianness>>(data)
        }
        (Some(b"\x7fELF"), _) => elf_object::<object::elf::FileHeader32<object::Endianness>>(data),
        _ => generic_object(data),
    }
}

fn elf_object<Elf: object::read::elf::FileHeader<Endian = object::Endianness>>(
    data: &ReadCache<File>,
) -> Result<RawObject, String> {
    use object::read::elf::SectionHeader;
    let header = Elf::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let section = |name: &'static str| {
        let data = sections
            .section_by_name(endian, name.as_bytes())
            .map(|(_, s)| {
                s.data(endian, data)
                    .map(<[u8]>::to_vec)
                    .map_err(|e| e.to_string())
            });
        (name, data)
    };
    let kind = match header.e_type(endian) {
        object::elf::ET_DYN => ObjectKind::Dynamic,
        object::elf::ET_EXEC => ObjectKind::Executable,
        object::elf::ET_REL => ObjectKind::Relocatable,
        object::elf::ET_CORE => ObjectKind::Core,
        _ => ObjectKind::Unknown,
    };
    let architecture = match (header.e_machine(endian), header.is_class_64()) {
        (object::elf::EM_X86_64, _) => object::Architecture::X86_64,
        (object::elf::EM_AARCH64, _) => object::Architecture::Aarch64,
        (object::elf::EM_386, _) => object::Architecture::I386,
        (object::elf::EM_ARM, _) => object::Architecture::Arm,
        (object::elf::EM_RISCV, true) => object::Architecture::Riscv64,
        (object::elf::EM_RISCV, false) => object::Architecture::Riscv32,
        (object::elf::EM_PPC64, _) => object::Architecture::PowerPc64,
        (object::elf::EM_S390, _) => object::Architecture::S390x,
        _ => object::Architecture::Unknown,
    };
    Ok(RawObject {
        format: object::BinaryFormat::Elf,
        kind,
        architecture,
        little_endian: endian.is_little_endian(),
        record: section(section::ELF_RECORD),
        manifest: section(section::ELF_MANIFEST),
    })
}

fn generic_object(data: &ReadCache<File>) -> Result<RawObject, String> {
    let object = object::File::parse(data).map_err(|e| e.to_string())?;
    let section = |name: &'static str| {
        let data = object
            .section_by_name(name)
            .map(|s| s.data().map(<[u8]>::to_vec).map_err(|e| e.to_string()));
        (name, data)
    };
    let (record, manifest) = match object.format() {
        object::BinaryFormat::MachO => (section::MACHO_RECORD.1, section::MACHO_MANIFEST.1),
        _ => (section::ELF_RECORD, section::ELF_MANIFEST),
    };
    Ok(RawObject {
        format: object.format(),
        kind: object.kind(),
        architecture: object.architecture(),
        little_endian: object.is_little_endian(),
        record: section(record),
        manifest: section(manifest),
    })
}

/// The architecture name `object` uses for the machine this host runs on.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X86_64",
        "aarch64" => "Aarch64",
        "x86" => "I386",
        "arm" => "Arm",
        "riscv64" => "Riscv64",
        "powerpc64" => "PowerPc64",
        "s390x" => "S390x",
        other => other,
    }
}

/// Metadata as `read` would return it, built from a manifest and record overrides, for unit
/// tests of the checks that only look at metadata.
#[cfg(test)]
pub(crate) fn fixture(
    manifest: &str,
    overrides: df_plugin_api::record::RecordOverrides,
) -> BundleMetadata {
    let manifest_text = manifest.to_owned();
    let manifest = Manifest::parse(manifest).expect("fixture manifest parses");
    let name: &'static str = Box::leak(manifest.bundle.name.clone().into_boxed_str());
    let version: &'static str = Box::leak(manifest.bundle.version.to_string().into_boxed_str());
    let record = AbiRecord::for_bundle(
        name,
        version,
        manifest.capabilities().0,
        df_plugin_api::toolkit::BUILD_FACTS,
        overrides,
    );
    BundleMetadata {
        path: PathBuf::from(format!("/fixture/lib{name}.so")),
        file_size: 0,
        format: "elf".into(),
        architecture: host_architecture().into(),
        little_endian: cfg!(target_endian = "little"),
        info: record.decode().expect("fixture record decodes"),
        record,
        manifest,
        manifest_text,
    }
}
