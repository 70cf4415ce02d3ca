//! Debian packages for the VM: qemu installed with apt-get; the kernel and busybox
//! downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into `target/vm/`,
//! so the host gets no kernel installed (no postinst hooks, no initramfs-tools, no
//! bootloader update) and busybox-static does not replace a host's busybox.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use super::modules;
use crate::cmd;

/// Installed on the host: the emulator, and xz for Debian's xz-compressed modules (6.12 on).
pub const HOST_PACKAGES: [&str; 2] = ["qemu-system-x86", "xz-utils"];

/// A kernel unpacked and reduced to what the VM needs, in `target/vm/<package>/`.
#[derive(Debug)]
pub struct Kernel {
    /// `uname -r` of the kernel, e.g. `6.1.0-56-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// The kernel's `.config`, for what it lacks.
    pub config: PathBuf,
    /// Modules to load, in order, uncompressed.
    pub modules: Vec<PathBuf>,
}

/// Installs [`HOST_PACKAGES`] that are missing (apt-get), one line per package.
pub fn host_packages() -> Result<()> {
    for tool in ["dpkg-query", "apt-get", "apt-cache", "dpkg-deb"] {
        if cmd::find_in_path(tool, &cmd::tool_path()).is_none() {
            bail!(
                "{tool} not found: --kernel takes the kernel, qemu and busybox from Debian's \
                 packages and needs a Debian (or Ubuntu) host"
            );
        }
    }
    let missing: Vec<&str> = HOST_PACKAGES
        .into_iter()
        .filter(|package| !installed(package))
        .collect();
    for package in HOST_PACKAGES {
        if !missing.contains(&package) {
            println!("xtask: {package} present");
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let packages = missing.join(" ");
    println!("xtask: installing {packages} (apt-get)");
    let install = |apt: &mut Command| {
        cmd::run(
            apt.args(["install", "-y", "--no-install-recommends"])
                .args(&missing),
        )
    };
    if install(&mut apt_get()).is_err() {
        // Stale package lists name versions the mirror no longer has.
        cmd::run(apt_get().arg("update"))?;
        install(&mut apt_get())?;
    }
    let still: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if !still.is_empty() {
        bail!(
            "apt-get finished but dpkg does not list {} as installed: check the apt sources",
            still.join(" ")
        );
    }
    Ok(())
}

fn installed(package: &str) -> bool {
    cmd::probe(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

fn apt_get() -> Command {
    let mut apt = Command::new("apt-get");
    // `apt-get download` as root into a directory the `_apt` user cannot write
    // otherwise warns that it downloads unsandboxed.
    apt.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-o", "APT::Sandbox::User=root"]);
    apt
}

/// A Debian release whose kernels the host's own apt sources do not offer, with apt
/// options that point apt at it for a kernel download only: its own sources list, lists
/// and cache under `target/vm/apt/<suite>/`, so the host's sources, lists and package
/// choices are never touched (`Dir::Etc::sourcelist`, `Dir::State::Lists`, `Dir::Cache`
/// in apt.conf(5)).
struct Archive {
    /// The suite, also the directory name: `bullseye`.
    suite: &'static str,
    /// Kernel series taken from this archive ("5.10").
    series: &'static [&'static str],
    /// Its sources.list lines. Signed with the keys of debian-archive-keyring, which
    /// Debian 12 ships for bullseye too (/etc/apt/trusted.gpg.d).
    sources: &'static str,
}

/// Debian 11 (bullseye) has 5.10, the kernel of Debian 11 and Amazon Linux 2; its newest
/// builds are in bullseye-security.
const ARCHIVES: [Archive; 1] = [Archive {
    suite: "bullseye",
    series: &["5.10"],
    sources: "deb http://deb.debian.org/debian bullseye main\n\
              deb http://deb.debian.org/debian-security bullseye-security main\n",
}];

/// The archive a kernel series comes from, None for the host's own apt sources.
fn archive_for(version: &str) -> Option<&'static Archive> {
    let series = series_of(version);
    ARCHIVES
        .iter()
        .find(|a| a.series.contains(&series.as_str()))
}

impl Archive {
    fn dir(&self) -> PathBuf {
        vm_dir().join("apt").join(self.suite)
    }

    /// The apt options that make apt-get and apt-cache see this archive only; writes
    /// its sources list and creates its directories.
    fn options(&self) -> Result<Vec<String>> {
        let dir = self.dir();
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let list = dir.join("sources.list");
        fs::write(&list, self.sources)
            .with_context(|| format!("cannot write {}", list.display()))?;
        let opts = [
            ("Dir::Etc::sourcelist", list),
            // An empty directory: no host sources.list.d entry joins in.
            ("Dir::Etc::sourceparts", dir.join("sources.list.d")),
            ("Dir::State::Lists", dir.join("lists")),
            ("Dir::Cache", dir.join("cache")),
        ];
        let mut args = Vec::new();
        for (key, path) in opts {
            args.push("-o".to_string());
            args.push(format!("{key}={}", path.display()));
        }
        Ok(args)
    }
}

/// apt-get, on the host's sources or on `archive`'s only.
fn apt_get_in(archive: Option<&Archive>) -> Result<Command> {
    let mut apt = apt_get();
    if let Some(archive) = archive {
        apt.args(archive.options()?);
    }
    Ok(apt)
}

/// The newest generic amd64 kernel package of the series `version` ("6.1", "6.12",
/// or more precise: "6.1.0-56") that apt knows of; a series in [`ARCHIVES`] is looked
/// up in that archive instead of the host's sources.
pub fn kernel_package(version: &str) -> Result<String> {
    let archive = archive_for(version);
    // The archive's own lists start empty: read them in first.
    if let Some(archive) = archive
        && !archive.dir().join("lists").read_dir().is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains("_Packages")))
        })
    {
        println!("xtask: reading Debian {}'s package lists", archive.suite);
        cmd::run(apt_get_in(Some(archive))?.arg("update"))?;
    }
    let names = |update: bool| -> Result<Vec<String>> {
        if update {
            cmd::run(apt_get_in(archive)?.arg("update"))?;
        }
        let mut search = Command::new("apt-cache");
        if let Some(archive) = archive {
            search.args(archive.options()?);
        }
        let out = cmd::probe(search.args([
            "search",
            "--names-only",
            r"^linux-image-[0-9].*-amd64-unsigned$",
        ]))
        .ok_or_else(|| anyhow!("`apt-cache search` failed: is this a Debian system?"))?;
        Ok(out
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_string)
            .collect())
    };
    let mut all = names(false)?;
    if newest(version, &all).is_none() {
        all = names(true)?;
    }
    newest(version, &all).ok_or_else(|| {
        let mut series: Vec<String> = all
            .iter()
            .filter_map(|n| abi_of(n))
            .map(series_of)
            .collect();
        series.sort();
        series.dedup();
        let sources = match archive {
            Some(a) => format!("Debian {}'s archive", a.suite),
            None => "the apt sources".to_string(),
        };
        anyhow!(
            "no Debian package linux-image-{version}*-amd64-unsigned in {sources}; \
             kernels offered there: {}",
            if series.is_empty() {
                "none".to_string()
            } else {
                series.join(", ")
            }
        )
    })
}

/// `6.1.0-56` of `linux-image-6.1.0-56-amd64-unsigned`; None for other flavours
/// (`-cloud-amd64`, `-rt-amd64`) and other packages.
fn abi_of(package: &str) -> Option<&str> {
    let abi = package
        .strip_prefix("linux-image-")?
        .strip_suffix("-amd64-unsigned")?;
    let last = abi.rsplit(['-', '+']).next()?;
    // A flavour is a word (cloud, rt); versions end in a number (56, deb12).
    let flavoured = last.chars().all(|c| c.is_ascii_alphabetic());
    (!flavoured && abi.starts_with(|c: char| c.is_ascii_digit())).then_some(abi)
}

/// "6.1" of "6.1.0-56", "6.12" of "6.12.117+deb12".
fn series_of(abi: &str) -> String {
    abi.split(['.', '-', '+'])
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

/// The numbers in an ABI string, for ordering: 6.1.0-56 -> [6, 1, 0, 56].
fn version_key(abi: &str) -> Vec<u64> {
    abi.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The package of the newest kernel whose version is `version` or starts with it
/// followed by a separator (so "6.1" matches 6.1.0-56 but not 6.12.117).
pub fn newest(version: &str, packages: &[String]) -> Option<String> {
    packages
        .iter()
        .filter_map(|name| Some((name, abi_of(name)?)))
        .filter(|(_, abi)| {
            abi.strip_prefix(version)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-', '+']))
        })
        .max_by_key(|(_, abi)| version_key(abi))
        .map(|(name, _)| name.clone())
}

/// `target/vm/`.
pub fn vm_dir() -> PathBuf {
    cmd::target_dir().join("vm")
}

/// The kernel of `package`, from `target/vm/<package>/` when it was prepared before,
/// else downloaded and unpacked now.
pub fn kernel(package: &str) -> Result<Kernel> {
    let dir = vm_dir().join(package);
    let ready = dir.join("ready");
    if let Ok(text) = fs::read_to_string(&ready)
        && let Some(kernel) = parse_ready(&dir, &text)
    {
        println!("xtask: {package} present ({})", dir.display());
        return Ok(kernel);
    }
    println!("xtask: preparing {package} in {}", dir.display());
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let archive = abi_of(package).and_then(archive_for);
    let unpacked = download_and_unpack(package, archive)?;
    let result = reduce(&unpacked, &dir);
    fs::remove_dir_all(&unpacked)
        .with_context(|| format!("cannot remove {}", unpacked.display()))?;
    let kernel = result?;
    let modules: Vec<String> = kernel
        .modules
        .iter()
        .map(|m| {
            m.file_name()
                .expect("module file")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    fs::write(
        &ready,
        format!("{}\n{}\n", kernel.release, modules.join(" ")),
    )
    .with_context(|| format!("cannot write {}", ready.display()))?;
    Ok(kernel)
}

/// The kernel described by a `ready` file: release on the first line, module files in
/// load order on the second. None if anything it names is missing.
fn parse_ready(dir: &Path, text: &str) -> Option<Kernel> {
    let mut lines = text.lines();
    let release = lines.next()?.trim().to_string();
    let modules: Vec<PathBuf> = lines
        .next()?
        .split_whitespace()
        .map(|m| dir.join("modules").join(m))
        .collect();
    let kernel = Kernel {
        vmlinuz: dir.join("vmlinuz"),
        config: dir.join("config"),
        release,
        modules,
    };
    let all_there = kernel.vmlinuz.is_file()
        && kernel.config.is_file()
        && kernel.modules.iter().all(|m| m.is_file());
    all_there.then_some(kernel)
}

/// `apt-get download` then `dpkg-deb -x` into `target/vm/unpack-<package>`; the .deb is removed.
fn download_and_unpack(package: &str, archive: Option<&Archive>) -> Result<PathBuf> {
    let downloads = vm_dir().join("downloads");
    fs::create_dir_all(&downloads)
        .with_context(|| format!("cannot create {}", downloads.display()))?;
    let download = || -> Result<()> {
        cmd::run(
            apt_get_in(archive)?
                .current_dir(&downloads)
                .args(["download", package]),
        )
    };
    if download().is_err() {
        println!("xtask: the download failed; updating the package lists and trying again");
        cmd::run(apt_get_in(archive)?.arg("update"))?;
        download()?;
    }
    // apt names it <package>_<version>_<arch>.deb, with ':' of an epoch as %3a.
    let prefix = format!("{package}_");
    let deb = fs::read_dir(&downloads)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .ok_or_else(|| {
            anyhow!(
                "apt-get download left no {prefix}*.deb in {}",
                downloads.display()
            )
        })?;
    let unpacked = vm_dir().join(format!("unpack-{package}"));
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)?;
    }
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;
    Ok(unpacked)
}

/// Copies the kernel image, its config and the modules the VM loads (decompressed) from
/// an unpacked package into `dir`.
fn reduce(unpacked: &Path, dir: &Path) -> Result<Kernel> {
    // Bookworm's packages put modules in /lib/modules, later ones in /usr/lib/modules.
    let modules_root = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|p| unpacked.join(p))
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            anyhow!(
                "no lib/modules in the kernel package ({})",
                unpacked.display()
            )
        })?;
    let releases: Vec<String> = fs::read_dir(&modules_root)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let [release] = releases.as_slice() else {
        bail!(
            "expected one kernel in {}, found {releases:?}",
            modules_root.display()
        );
    };
    let boot = unpacked.join("boot");
    let vmlinuz_src = boot.join(format!("vmlinuz-{release}"));
    let config_src = boot.join(format!("config-{release}"));
    fs::create_dir_all(dir.join("modules"))?;
    let kernel = Kernel {
        release: release.clone(),
        vmlinuz: dir.join("vmlinuz"),
        config: dir.join("config"),
        modules: Vec::new(),
    };
    fs::copy(&vmlinuz_src, &kernel.vmlinuz)
        .with_context(|| format!("cannot copy {}", vmlinuz_src.display()))?;
    fs::copy(&config_src, &kernel.config)
        .with_context(|| format!("cannot copy {}", config_src.display()))?;
    let mut modules = Vec::new();
    for module in modules::resolve(&modules_root.join(release))? {
        let target = dir.join("modules").join(format!("{}.ko", module.name));
        fs::write(&target, modules::read_module(&module.path)?)
            .with_context(|| format!("cannot write {}", target.display()))?;
        modules.push(target);
    }
    Ok(Kernel { modules, ..kernel })
}

/// busybox from Debian's busybox-static, in `target/vm/busybox` (downloaded once).
pub fn busybox() -> Result<PathBuf> {
    let binary = vm_dir().join("busybox");
    if binary.is_file() {
        println!("xtask: busybox present ({})", binary.display());
        return Ok(binary);
    }
    let unpacked = download_and_unpack("busybox-static", None)?;
    let source = unpacked.join("bin/busybox");
    fs::copy(&source, &binary).with_context(|| format!("cannot copy {}", source.display()))?;
    fs::remove_dir_all(&unpacked)?;
    Ok(binary)
}

/// Kernel features the tracer or the VM relies on, and whether the config has them;
/// for the README's table and to explain a failing boot.
pub fn config_value<'a>(config: &'a str, option: &str) -> Option<&'a str> {
    config.lines().find_map(|line| {
        line.strip_prefix(option)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn picks_the_newest_generic_kernel_of_a_series() {
        let all = names(&[
            "linux-image-6.1.0-47-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-amd64-unsigned",
            "linux-image-6.1.0-9-amd64-unsigned",
            "linux-image-6.1.0-56-rt-amd64-unsigned",
            "linux-image-6.12.107+deb12-amd64-unsigned",
            "linux-image-6.12.117+deb12-amd64-unsigned",
            "linux-image-6.12.117+deb12-rt-amd64-unsigned",
            "linux-image-6.12.99+deb12-amd64-unsigned",
            "linux-image-amd64-signed-template",
        ]);
        assert_eq!(
            newest("6.1", &all).as_deref(),
            Some("linux-image-6.1.0-56-amd64-unsigned")
        );
        assert_eq!(
            newest("6.12", &all).as_deref(),
            Some("linux-image-6.12.117+deb12-amd64-unsigned")
        );
        assert_eq!(
            newest("6.1.0-47", &all).as_deref(),
            Some("linux-image-6.1.0-47-amd64-unsigned")
        );
        assert_eq!(newest("6.2", &all), None);
        assert_eq!(
            newest("6", &all).as_deref(),
            Some("linux-image-6.12.117+deb12-amd64-unsigned"),
            "a bare major means its newest kernel"
        );
        assert_eq!(newest("6.1.0-5", &all), None, "not a prefix of 6.1.0-56");
    }

    #[test]
    fn takes_5_10_from_bullseye_and_the_rest_from_the_host() {
        assert_eq!(archive_for("5.10").map(|a| a.suite), Some("bullseye"));
        assert_eq!(archive_for("5.10.0-35").map(|a| a.suite), Some("bullseye"));
        let package = "linux-image-5.10.0-35-amd64-unsigned";
        assert_eq!(
            abi_of(package).and_then(archive_for).map(|a| a.suite),
            Some("bullseye")
        );
        assert!(archive_for("6.1").is_none());
        assert!(archive_for("6.12").is_none());
        assert!(
            archive_for("5.1").is_none(),
            "5.1 is not a prefix of the 5.10 series"
        );
    }

    #[test]
    fn names_series_for_the_error_message() {
        assert_eq!(series_of("6.1.0-56"), "6.1");
        assert_eq!(series_of("6.12.117+deb12"), "6.12");
        assert_eq!(abi_of("linux-image-6.1.0-56-cloud-amd64-unsigned"), None);
        assert_eq!(
            abi_of("linux-image-6.12.117+deb12-amd64-unsigned"),
            Some("6.12.117+deb12")
        );
    }

    #[test]
    fn a_ready_file_counts_only_when_what_it_names_exists() {
        let dir = std::env::temp_dir().join(format!("xtask-vm-ready-{}", std::process::id()));
        fs::create_dir_all(dir.join("modules")).unwrap();
        let text = "6.1.0-56-amd64\nvirtio.ko 9p.ko\n";
        assert!(parse_ready(&dir, text).is_none());
        for file in ["vmlinuz", "config", "modules/virtio.ko", "modules/9p.ko"] {
            fs::write(dir.join(file), b"x").unwrap();
        }
        let kernel = parse_ready(&dir, text).expect("all files there");
        assert_eq!(kernel.release, "6.1.0-56-amd64");
        assert_eq!(
            kernel.modules,
            [dir.join("modules/virtio.ko"), dir.join("modules/9p.ko")]
        );
        assert!(parse_ready(&dir, "").is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_config_values() {
        let config = "CONFIG_9P_FS=m\n# CONFIG_FOO is not set\nCONFIG_9P_FS_SECURITY=y\n";
        assert_eq!(config_value(config, "CONFIG_9P_FS"), Some("m"));
        assert_eq!(config_value(config, "CONFIG_FOO"), None);
    }
}
