//! The kernel modules the VM needs before it can mount the host's directories (9p over
//! virtio-pci), with their dependencies, in load order. A Debian kernel package has no
//! `modules.dep` (its postinst runs depmod), so dependencies come from each module's own
//! `.modinfo` section (`depends=`, written by modpost), as depmod reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use crate::cmd;

/// What the init script loads: virtio-pci (the transport qemu's 9p device sits on), the
/// 9p virtio transport and the 9p file system. Each is skipped when built in.
pub const WANTED: [&str; 3] = ["virtio_pci", "9pnet_virtio", "9p"];

/// One module to load.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    /// The module name as `depends=` spells it (underscores).
    pub name: String,
    /// The file in the kernel package (possibly compressed).
    pub path: PathBuf,
}

/// Module names with `-` and `_` mean the same (the kernel's `module_name` uses `_`).
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file name (`9pnet_virtio.ko.xz` -> `9pnet_virtio`), or None if it is no module.
pub fn module_name(file_name: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))?;
    Some(normalize(stem))
}

/// The names listed in `modules.builtin` (`kernel/drivers/virtio/virtio_pci.ko` per line).
pub fn builtin_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.rsplit('/').next())
        .filter_map(module_name)
        .collect()
}

/// The modules in `modules_dir` (`lib/modules/<release>`), and the load order of
/// [`WANTED`] with dependencies first, leaving out built-in ones.
pub fn resolve(modules_dir: &Path) -> Result<Vec<Module>> {
    let builtin = match fs::read_to_string(modules_dir.join("modules.builtin")) {
        Ok(text) => builtin_names(&text),
        Err(err) => bail!(
            "cannot read {}: {err}; the kernel package looks incomplete",
            modules_dir.join("modules.builtin").display()
        ),
    };
    let mut files = BTreeMap::new();
    index(&modules_dir.join("kernel"), &mut files)?;
    let depends = |name: &str| -> Result<Vec<String>> {
        let path = files.get(name).ok_or_else(|| {
            anyhow!(
                "module {name} is neither built in nor in {}",
                modules_dir.display()
            )
        })?;
        let image = read_module(path)?;
        let info = modinfo(&image).with_context(|| format!("reading {}", path.display()))?;
        Ok(depends_of(&info))
    };
    let order = load_order(&WANTED, &builtin, depends)?;
    Ok(order
        .into_iter()
        .map(|name| Module {
            path: files[&name].clone(),
            name,
        })
        .collect())
}

/// Depth-first: each module after the modules it depends on, each once, built-in ones left out.
pub fn load_order(
    wanted: &[&str],
    builtin: &BTreeSet<String>,
    mut depends: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        builtin: &BTreeSet<String>,
        depends: &mut dyn FnMut(&str) -> Result<Vec<String>>,
        visiting: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        let name = normalize(name);
        if builtin.contains(&name) || order.contains(&name) {
            return Ok(());
        }
        if visiting.contains(&name) {
            bail!(
                "modules depend on each other in a cycle: {} -> {name}",
                visiting.join(" -> ")
            );
        }
        visiting.push(name.clone());
        for dep in depends(&name)? {
            visit(&dep, builtin, depends, visiting, order)?;
        }
        visiting.pop();
        order.push(name);
        Ok(())
    }
    let mut order = Vec::new();
    for name in wanted {
        visit(name, builtin, &mut depends, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

fn index(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            index(&path, files)?;
        } else if let Some(name) = module_name(&entry.file_name().to_string_lossy()) {
            files.insert(name, path);
        }
    }
    Ok(())
}

/// The module's ELF image, decompressed. busybox's insmod passes the file to init_module
/// as it is, and only kernels with CONFIG_MODULE_DECOMPRESS unpack modules themselves
/// (through finit_module), so the initramfs holds them uncompressed.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool: &[&str] = if name.ends_with(".ko.xz") {
        &["xz", "-dc"]
    } else if name.ends_with(".ko.zst") {
        &["zstd", "-dcq"]
    } else if name.ends_with(".ko.gz") {
        &["gzip", "-dc"]
    } else {
        return fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    };
    if cmd::find_in_path(tool[0], &cmd::tool_path()).is_none() {
        bail!(
            "{} is compressed and `{}` is not installed: apt-get install {}",
            path.display(),
            tool[0],
            if tool[0] == "xz" { "xz-utils" } else { tool[0] }
        );
    }
    let output = Command::new(tool[0])
        .args(&tool[1..])
        .arg(path)
        .output()
        .with_context(|| format!("could not start {}", tool[0]))?;
    if !output.status.success() {
        bail!(
            "`{} {}` failed: {}",
            tool.join(" "),
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// The `key=value` strings of a module's `.modinfo` section.
pub fn modinfo(image: &[u8]) -> Result<Vec<String>> {
    let section = elf_section(image, ".modinfo")?.ok_or_else(|| anyhow!("no .modinfo section"))?;
    Ok(section
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// The module names of the `depends=` entry (empty when there is none or it is empty).
pub fn depends_of(info: &[String]) -> Vec<String> {
    info.iter()
        .filter_map(|entry| entry.strip_prefix("depends="))
        .flat_map(|list| list.split(','))
        .filter(|name| !name.is_empty())
        .map(normalize)
        .collect()
}

/// The bytes of the named section of a little-endian ELF64 file (what x86_64 modules are).
pub fn elf_section<'a>(image: &'a [u8], wanted: &str) -> Result<Option<&'a [u8]>> {
    let bytes = |at: usize, len: usize| {
        image
            .get(at..at + len)
            .ok_or_else(|| anyhow!("ELF file truncated at byte {at}"))
    };
    let u16_at = |at| bytes(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at =
        |at| bytes(at, 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    let u64_at =
        |at| bytes(at, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    if bytes(0, 6)? != b"\x7fELF\x02\x01" {
        bail!("not a little-endian 64-bit ELF file");
    }
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    // Section header: sh_name (u32) at 0, sh_offset (u64) at 24, sh_size (u64) at 32.
    let section = |index: usize| -> Result<(usize, &'a [u8])> {
        let header = shoff + index * shentsize;
        let (name, offset, size) = (u32_at(header)?, u64_at(header + 24)?, u64_at(header + 32)?);
        Ok((name, bytes(offset, size)?))
    };
    let (_, names) = section(shstrndx)?;
    for index in 0..shnum {
        let (name_at, data) = section(index)?;
        let name = names.get(name_at..).unwrap_or_default();
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name == wanted.as_bytes() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_modules_by_file_with_underscores() {
        assert_eq!(
            module_name("9pnet_virtio.ko.xz").as_deref(),
            Some("9pnet_virtio")
        );
        assert_eq!(module_name("virtio-rng.ko").as_deref(), Some("virtio_rng"));
        assert_eq!(module_name("modules.order"), None);
        let builtin =
            builtin_names("kernel/drivers/virtio/virtio.ko\nkernel/fs/fuse/virtiofs.ko\n");
        assert_eq!(
            builtin.into_iter().collect::<Vec<_>>(),
            ["virtio", "virtiofs"]
        );
    }

    #[test]
    fn loads_dependencies_first_once_and_skips_built_in_ones() {
        // As in Debian's 6.1 kernel: everything 9p-related is a module.
        let deps = BTreeMap::from([
            (
                "virtio_pci",
                vec!["virtio_ring", "virtio_pci_modern_dev", "virtio"],
            ),
            ("virtio", vec!["virtio_ring"]),
            ("virtio_ring", vec![]),
            ("virtio_pci_modern_dev", vec![]),
            ("9pnet_virtio", vec!["virtio", "9pnet", "virtio_ring"]),
            ("9pnet", vec![]),
            ("9p", vec!["9pnet", "fscache", "netfs"]),
            ("fscache", vec!["netfs"]),
            ("netfs", vec![]),
        ]);
        let lookup = |name: &str| -> Result<Vec<String>> {
            Ok(deps[name].iter().map(|d| d.to_string()).collect())
        };
        let order = load_order(&WANTED, &BTreeSet::new(), lookup).unwrap();
        assert_eq!(
            order,
            [
                "virtio_ring",
                "virtio_pci_modern_dev",
                "virtio",
                "virtio_pci",
                "9pnet",
                "9pnet_virtio",
                "netfs",
                "fscache",
                "9p"
            ]
        );
        // As in Debian's 6.12: virtio and virtio_pci built in.
        let builtin = BTreeSet::from([
            "virtio_pci".to_string(),
            "virtio".into(),
            "virtio_ring".into(),
        ]);
        let order = load_order(&WANTED, &builtin, lookup).unwrap();
        assert_eq!(order, ["9pnet", "9pnet_virtio", "netfs", "fscache", "9p"]);
    }

    #[test]
    fn a_dependency_cycle_or_a_missing_module_is_an_error() {
        let cycle = |name: &str| -> Result<Vec<String>> {
            Ok(vec![if name == "9p" {
                "a".into()
            } else {
                "9p".into()
            }])
        };
        let err = load_order(&["9p"], &BTreeSet::new(), cycle).unwrap_err();
        assert!(err.to_string().contains("cycle: 9p -> a -> 9p"), "{err}");
        let missing = |name: &str| -> Result<Vec<String>> { bail!("module {name} missing") };
        assert!(load_order(&["9p"], &BTreeSet::new(), missing).is_err());
    }

    /// A minimal ELF64 file: header, a .modinfo section and the section name table.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.modinfo\0.shstrtab\0";
        let mut image = vec![0u8; 64];
        image[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let modinfo_at = image.len();
        image.extend_from_slice(modinfo);
        let names_at = image.len();
        image.extend_from_slice(names);
        while !image.len().is_multiple_of(8) {
            image.push(0);
        }
        let shoff = image.len();
        // Section 0 is the null section.
        let headers = [
            (0u32, 0usize, 0usize),
            (1, modinfo_at, modinfo.len()),
            (10, names_at, names.len()),
        ];
        for (name, offset, size) in headers {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            image.extend_from_slice(&header);
        }
        image[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        image[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        image[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        image[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        image
    }

    #[test]
    fn reads_depends_from_the_modinfo_section() {
        let image = elf_with_modinfo(b"license=GPL\0depends=9pnet,fs-cache,netfs\0\0name=9p\0");
        let info = modinfo(&image).unwrap();
        assert_eq!(
            info,
            ["license=GPL", "depends=9pnet,fs-cache,netfs", "name=9p"]
        );
        assert_eq!(depends_of(&info), ["9pnet", "fs_cache", "netfs"]);
        let none = modinfo(&elf_with_modinfo(b"depends=\0")).unwrap();
        assert!(depends_of(&none).is_empty());
        let mut truncated = elf_with_modinfo(b"depends=\0");
        truncated.truncate(100);
        assert!(modinfo(&truncated).is_err());
        assert!(modinfo(b"#!/bin/sh\n").is_err());
    }
}
