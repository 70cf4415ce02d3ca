//! Embeds the eBPF object built by `cargo xtask build-ebpf` as `$OUT_DIR/tracer.bpf.o`.
//!
//! The object comes from `TRACER_EBPF_OBJ` (set by xtask), else from where xtask puts it.
//! Without it an empty file is embedded, so `cargo clippy` and the unit tests work on a
//! machine without the BPF toolchain; the agent refuses to start with an empty object.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=TRACER_EBPF_OBJ");
    let given = env::var_os("TRACER_EBPF_OBJ").filter(|path| !path.is_empty());
    let object = given.clone().map_or_else(default_object, PathBuf::from);
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let embedded = out_dir.join("tracer.bpf.o");
    if object.is_file() {
        println!("cargo:rerun-if-changed={}", object.display());
        fs::copy(&object, &embedded).unwrap_or_else(|err| {
            panic!(
                "copying the eBPF object {} to {}: {err}",
                object.display(),
                embedded.display()
            )
        });
        return;
    }
    fs::write(&embedded, []).unwrap_or_else(|err| panic!("writing {}: {err}", embedded.display()));
    println!("cargo:warning=eBPF object not built; run cargo xtask build");
    // Cargo reruns a build script on every build while a file it watches is missing,
    // and then recompiles the crate. Watching the object's directory instead (cargo
    // scans a watched directory recursively) reruns only when the eBPF build writes
    // there. The directory is created for the default location only; it is inside
    // the workspace's target directory, which cargo owns.
    let dir = object
        .parent()
        .filter(|dir| given.is_none() && fs::create_dir_all(dir).is_ok());
    match dir {
        Some(dir) => println!("cargo:rerun-if-changed={}", dir.display()),
        None => println!("cargo:rerun-if-changed={}", object.display()),
    }
}

/// `<workspace>/target/ebpf/bpfel-unknown-none/release/tracer`, where xtask builds it.
fn default_object() -> PathBuf {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(Path::new(".."))
        .join("target/ebpf/bpfel-unknown-none/release/tracer")
}
