//! Crafting hostile bundle files from real ones, for the corpus cases no honest build produces:
//! a copy of a real cdylib with one thing changed — its machine, a field of its ABI record, a
//! dynamic symbol's name, or a record in the file that the live code does not return.
//!
//! ELF only (the host's Mach-O reading is the same code path past the section lookup).

use std::path::Path;

use df_plugin_api::record::AbiRecord;
use df_plugin_api::section;
use object::{Object, ObjectSection};

/// A failure to craft a file (the source is not what was expected).
pub type Result<T> = std::result::Result<T, String>;

fn read(src: &Path) -> Result<Vec<u8>> {
    std::fs::read(src).map_err(|e| format!("cannot read {}: {e}", src.display()))
}

fn write(dst: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(dst, bytes).map_err(|e| format!("cannot write {}: {e}", dst.display()))
}

/// (file offset, size, section index) of the named section.
fn section(bytes: &[u8], name: &str) -> Result<(usize, usize, usize)> {
    let file = object::File::parse(bytes).map_err(|e| e.to_string())?;
    let section = file
        .section_by_name(name)
        .ok_or_else(|| format!("no {name} section"))?;
    let (offset, size) = section
        .file_range()
        .ok_or_else(|| format!("{name} has no file data"))?;
    Ok((offset as usize, size as usize, section.index().0))
}

/// Copies `src` to `dst` with the ELF header's machine set to `machine` (e.g.
/// `object::elf::EM_AARCH64`): a bundle "built for another architecture".
pub fn with_machine(src: &Path, dst: &Path, machine: u16) -> Result<()> {
    let mut bytes = read(src)?;
    if bytes.get(..4) != Some(b"\x7fELF") || bytes.len() < 20 {
        return Err(format!("{} is not an ELF file", src.display()));
    }
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    write(dst, &bytes)
}

/// Copies `src` to `dst` with its ABI record edited in place. The live handshake returns the
/// same static, so file and code agree: the lie is consistent (another ABI version, another
/// Arrow, capability bits without objects, ...).
pub fn with_record(src: &Path, dst: &Path, edit: impl FnOnce(&mut AbiRecord)) -> Result<()> {
    let mut bytes = read(src)?;
    let (offset, size, _) = section(&bytes, section::ELF_RECORD)?;
    let mut record = AbiRecord::read(&bytes[offset..offset + size]).map_err(|e| e.to_string())?;
    edit(&mut record);
    let new = record.as_bytes();
    bytes[offset..offset + new.len()].copy_from_slice(new);
    write(dst, &bytes)
}

/// Copies `src` to `dst` with a second, edited record appended to the file and the record
/// section pointed at it. The dynamic loader maps segments, not sections, so the live
/// handshake still returns the original record: the file and the code disagree.
pub fn with_file_record_only(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut AbiRecord),
) -> Result<()> {
    let mut bytes = read(src)?;
    let (offset, size, index) = section(&bytes, section::ELF_RECORD)?;
    let mut record = AbiRecord::read(&bytes[offset..offset + size]).map_err(|e| e.to_string())?;
    edit(&mut record);
    let appended = bytes.len() as u64;
    bytes.extend_from_slice(record.as_bytes());
    // Elf64_Ehdr: e_shoff at 0x28, e_shentsize at 0x3a; Elf64_Shdr: sh_offset at 0x18.
    let field = |at: usize, len: usize| -> Result<u64> {
        let raw = bytes
            .get(at..at + len)
            .ok_or("the ELF header is cut short")?;
        let mut buf = [0u8; 8];
        buf[..len].copy_from_slice(raw);
        Ok(u64::from_le_bytes(buf))
    };
    let shoff = field(0x28, 8)? as usize;
    let shentsize = field(0x3a, 2)? as usize;
    let at = shoff + index * shentsize + 0x18;
    bytes
        .get_mut(at..at + 8)
        .ok_or("the section header is outside the file")?
        .copy_from_slice(&appended.to_le_bytes());
    write(dst, &bytes)
}

/// Copies `src` to `dst` with the exported symbol `symbol` renamed in the dynamic string table
/// (its last letter changed), so `dlsym` no longer finds it: a bundle that lacks that export.
pub fn without_symbol(src: &Path, dst: &Path, symbol: &str) -> Result<()> {
    let mut bytes = read(src)?;
    let (offset, size, _) = section(&bytes, ".dynstr")?;
    let needle: Vec<u8> = [symbol.as_bytes(), b"\0"].concat();
    let table = &bytes[offset..offset + size];
    // A whole entry: the match starts the table or follows the previous entry's NUL.
    let at = (0..table.len().saturating_sub(needle.len()))
        .find(|&i| table[i..].starts_with(&needle) && (i == 0 || table[i - 1] == 0))
        .ok_or_else(|| format!("{symbol} is not a dynamic symbol of {}", src.display()))?;
    let table = &mut bytes[offset..offset + size];
    let last = at + symbol.len() - 1;
    table[last] = if table[last] == b'X' { b'Y' } else { b'X' };
    write(dst, &bytes)
}
