//! What the release build checks in the binaries it makes: whether an ELF file still
//! carries its debug info, which debug file it links to, and whether it is static.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use object::Object;
use object::read::elf::{Dyn, ElfFile64, ProgramHeader};

/// The facts of one ELF file that the release build and its checks need.
#[derive(Debug, PartialEq, Eq)]
pub struct Facts {
    /// It has a `.debug_info` section (DWARF), i.e. it has not been split yet.
    pub debug_info: bool,
    /// The file name in `.gnu_debuglink`, if it has one.
    pub debuglink: Option<String>,
    /// It asks for a program interpreter (`PT_INTERP`, the dynamic loader).
    pub interpreter: bool,
    /// The shared libraries it needs (`DT_NEEDED`); empty for a static binary.
    pub needed: usize,
}

impl Facts {
    /// Runs on any x86_64 Linux without a loader or shared libraries: neither a
    /// `PT_INTERP` (the kernel's `load_elf_binary` then maps no loader) nor a `DT_NEEDED`.
    /// A static-pie binary still has a `PT_DYNAMIC` for relocating itself, so that alone
    /// proves nothing.
    pub fn is_static(&self) -> bool {
        !self.interpreter && self.needed == 0
    }
}

/// Reads the facts of the 64-bit ELF file at `path`.
pub fn facts(path: &Path) -> Result<Facts> {
    let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let elf = ElfFile64::<object::Endianness>::parse(&*data)
        .map_err(|e| anyhow!("{} is not a 64-bit ELF file: {e}", path.display()))?;
    let endian = elf.endian();
    let mut interpreter = false;
    let mut needed = 0;
    for header in elf.elf_program_headers() {
        match header.p_type(endian) {
            object::elf::PT_INTERP => interpreter = true,
            object::elf::PT_DYNAMIC => {
                let entries = header
                    .dynamic(endian, &*data)
                    .map_err(|e| anyhow!("{}: bad PT_DYNAMIC: {e}", path.display()))?
                    .unwrap_or_default();
                needed += entries
                    .iter()
                    .filter(|d| d.tag(endian) == object::elf::DT_NEEDED)
                    .count();
            }
            _ => {}
        }
    }
    let debuglink = elf
        .gnu_debuglink()
        .map_err(|e| anyhow!("{}: bad .gnu_debuglink: {e}", path.display()))?
        .map(|(name, _crc)| String::from_utf8_lossy(name).into_owned());
    Ok(Facts {
        debug_info: elf.section_by_name(".debug_info").is_some(),
        debuglink,
        interpreter,
        needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The xtask binary running this test: a glibc, dynamically linked debug build.
    #[test]
    fn a_debug_build_on_glibc_is_dynamic_and_unsplit() {
        let me = std::env::current_exe().unwrap();
        let facts = facts(&me).unwrap();
        assert!(facts.debug_info, "{facts:?}");
        assert_eq!(facts.debuglink, None);
        assert!(facts.interpreter && facts.needed > 0, "{facts:?}");
        assert!(!facts.is_static());
    }

    #[test]
    fn not_elf_is_an_error_naming_the_file() {
        let toml = crate::cmd::workspace_root().join("Cargo.toml");
        let err = facts(&toml).unwrap_err();
        assert!(err.to_string().contains("Cargo.toml"), "{err}");
    }
}
