//! The binaries a server gets (`cargo xtask build --release`): the release agent split
//! from its debug info, which tools still find through the `.gnu_debuglink`; and the
//! static musl agent, which needs no loader or shared library and traces a real workload.
//!
//! Needs the binaries `cargo xtask test` builds (`TRACER_RELEASE_BIN`,
//! `TRACER_STATIC_BIN`, see `tracer_tests::tracer_static_bin`); the static test needs root.

use std::fs;
use std::path::Path;
use std::process::Command;

use object::read::elf::{Dyn, ElfFile64, ProgramHeader};
use object::{Object, ObjectSymbol, SymbolKind};
use tracer_tests::{
    DEADLINE, ensure, ensure_eq, run_dir, run_traced_by, tracer_release_bin, tracer_static_bin,
};

/// What the checks need of one ELF file.
#[derive(Debug)]
struct Elf {
    debug_info: bool,
    debuglink: Option<String>,
    interpreter: bool,
    needed: usize,
    /// Addresses of the functions of the `tracer` crate (legacy mangling `_ZN6tracer...`).
    tracer_functions: Vec<u64>,
}

fn elf(path: &Path) -> Elf {
    let data = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file = ElfFile64::<object::Endianness>::parse(&*data)
        .unwrap_or_else(|e| panic!("{} is not a 64-bit ELF file: {e}", path.display()));
    let endian = file.endian();
    let mut interpreter = false;
    let mut needed = 0;
    for header in file.elf_program_headers() {
        match header.p_type(endian) {
            object::elf::PT_INTERP => interpreter = true,
            object::elf::PT_DYNAMIC => {
                let entries = header.dynamic(endian, &*data).unwrap().unwrap_or_default();
                needed += entries
                    .iter()
                    .filter(|d| d.tag(endian) == object::elf::DT_NEEDED)
                    .count();
            }
            _ => {}
        }
    }
    let tracer_functions = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0 && s.address() != 0)
        .filter(|s| s.name().is_ok_and(|n| n.starts_with("_ZN6tracer")))
        .map(|s| s.address())
        .collect();
    Elf {
        debug_info: file.section_by_name(".debug_info").is_some(),
        debuglink: file
            .gnu_debuglink()
            .unwrap()
            .map(|(name, _crc)| String::from_utf8_lossy(name).into_owned()),
        interpreter,
        needed,
        tracer_functions,
    }
}

/// `addr2line -e BINARY ADDR...`: one `FILE:LINE` (or `??:0`) per address. binutils
/// follows `.gnu_debuglink` to the debug file beside the binary and checks its CRC.
fn addr2line(binary: &Path, addresses: &[u64]) -> Vec<String> {
    let out = Command::new("addr2line")
        .arg("-e")
        .arg(binary)
        .args(addresses.iter().map(|a| format!("{a:#x}")))
        .output()
        .expect("addr2line (binutils, installed by `cargo xtask setup`) runs");
    assert!(
        out.status.success(),
        "addr2line failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn release_binary_is_stripped_and_its_debug_file_gives_file_and_line() {
    let binary = tracer_release_bin();
    let debug = binary.with_file_name("tracer.debug");
    let bin = elf(&binary);
    assert!(
        !bin.debug_info,
        "{} still has .debug_info: `cargo xtask build --release` splits it",
        binary.display()
    );
    assert_eq!(bin.debuglink.as_deref(), Some("tracer.debug"));
    assert!(
        elf(&debug).debug_info,
        "{} has no .debug_info",
        debug.display()
    );

    // The symbol table stays in the binary: function names need no debug file.
    let mut addresses = bin.tracer_functions.clone();
    assert!(
        addresses.len() > 100,
        "only {} tracer functions in the symbol table",
        addresses.len()
    );
    addresses.truncate(50);
    let lines = addr2line(&binary, &addresses);
    assert_eq!(lines.len(), addresses.len());
    let unknown: Vec<&String> = lines.iter().filter(|l| l.starts_with("??")).collect();
    assert!(
        unknown.is_empty(),
        "addresses without file and line through {}: {unknown:?}",
        debug.display()
    );
    assert!(
        lines.iter().any(|l| l.contains("/tracer/src/")),
        "no address in tracer's sources: {lines:?}"
    );

    // The same binary without its debug file beside it has no file and line: they came
    // from tracer.debug.
    let alone = run_dir("split").join("tracer");
    fs::copy(&binary, &alone).unwrap();
    let lines = addr2line(&alone, &addresses);
    assert!(
        lines.iter().all(|l| l.starts_with("??")),
        "file and line without the debug file: {lines:?}"
    );
    fs::remove_dir_all(alone.parent().unwrap()).unwrap();
}

#[test]
fn static_binary_needs_no_loader_and_traces_a_workload() {
    let binary = tracer_static_bin();
    let facts = elf(&binary);
    assert!(
        !facts.interpreter && facts.needed == 0,
        "{} is not static: program interpreter {}, {} shared libraries needed",
        binary.display(),
        facts.interpreter,
        facts.needed
    );

    let t = run_traced_by(&binary, &["fork-exit"], &[], DEADLINE);
    t.check_workload(0);
    let me = t.workload_pid();
    let child = t.pid("child");
    let about = [me, child];
    ensure_eq!(t, about, t.fork_of(child).ppid(), Some(me), "fork ppid");
    let exit = t.process_exit(child);
    ensure_eq!(t, about, exit.u64("exit_code"), Some(7), "exit_code");
    ensure_eq!(
        t,
        about,
        t.reap_of(child).u64("reaper_pid"),
        Some(u64::from(me)),
        "reaper_pid"
    );
    ensure!(
        t,
        about,
        t.fork_of(child).seq() < exit.seq(),
        "fork after exit"
    );
}
