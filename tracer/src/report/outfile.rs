//! The files `tracer report` writes (`--perfetto`, `--flamegraph`): checked against
//! the inputs before anything is read, written under a temporary name in the same
//! directory, synced and renamed into place, with the mode asked for; `-` is stdout.
//!
//! A recording is evidence: `tracer report --perfetto events.jsonl*` (a glob whose
//! first match lands on the flag) must not replace `events.jsonl` by a trace.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::Exit;
use crate::output::file::is_zstd;

/// One output file as given on the command line.
pub struct Output<'a> {
    /// The flag, for messages (`--perfetto`).
    pub flag: &'static str,
    pub path: &'a Path,
}

impl Output<'_> {
    pub fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// Refuses (exit 2, one line) outputs that would destroy an input or a recording,
/// and two outputs on stdout. Run before any input is read.
pub fn check(outputs: &[Output], inputs: &[PathBuf]) -> Result<(), Exit> {
    let on_stdout: Vec<&str> = outputs
        .iter()
        .filter(|o| o.is_stdout())
        .map(|o| o.flag)
        .collect();
    if on_stdout.len() > 1 {
        return Err(Exit::usage(format!(
            "{} all ask for stdout (`-`): give all but one of them a file name",
            on_stdout.join(" and ")
        )));
    }
    let inputs: Vec<(&Path, Option<fs::Metadata>)> = inputs
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .map(|p| (p.as_path(), fs::metadata(p).ok()))
        .collect();
    for o in outputs.iter().filter(|o| !o.is_stdout()) {
        let name = o.path.display();
        let meta = fs::metadata(o.path).ok();
        let same = |(p, m): &(&Path, Option<fs::Metadata>)| {
            *p == o.path
                || matches!((m, &meta), (Some(a), Some(b)) if a.dev() == b.dev() && a.ino() == b.ino())
        };
        if let Some((input, _)) = inputs.iter().find(|i| same(i)) {
            return Err(Exit::usage(format!(
                "{} {name} is also an input ({}): give the output a name of its own",
                o.flag,
                input.display()
            )));
        }
        if meta.as_ref().is_some_and(fs::Metadata::is_file) && holds_a_recording(o.path) {
            return Err(Exit::usage(format!(
                "{} {name} holds a tracer recording, which it would replace: give a new file name \
                 (a glob such as events.jsonl* puts its first match right after the flag)",
                o.flag
            )));
        }
    }
    Ok(())
}

/// Whether the file starts as a recording does: a JSON Lines record (`{"seq":`,
/// docs/events.md) or zstd (a compressed rotated file).
fn holds_a_recording(path: &Path) -> bool {
    let mut head = [0u8; 8];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    is_zstd(head) || head.starts_with(br#"{"seq":"#)
}

/// Writes `o` with `write`: to stdout for `-`, straight into a device or FIFO that is
/// already there, and otherwise to `.NAME.tmp-PID` beside it, created with exactly
/// `mode`, synced, then renamed over NAME (a symbolic link at NAME is replaced, not
/// followed). A failure leaves NAME as it was.
pub fn write<T>(
    o: &Output,
    what: &str,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> anyhow::Result<T> {
    let fail = || format!("cannot write the {what} to {}", o.path.display());
    if o.is_stdout() {
        let mut w = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        let value = write(&mut w).with_context(fail)?;
        w.flush().with_context(fail)?;
        return Ok(value);
    }
    if let Ok(m) = fs::metadata(o.path) {
        if m.is_dir() {
            return Err(Exit::usage(format!(
                "{} {} is a directory: give a file name",
                o.flag,
                o.path.display()
            ))
            .into());
        }
        if !m.is_file() {
            // /dev/null, a FIFO: renaming over it would replace the device node.
            let file = OpenOptions::new()
                .write(true)
                .open(o.path)
                .with_context(fail)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let value = write(&mut w).with_context(fail)?;
            w.flush().with_context(fail)?;
            return Ok(value);
        }
    }
    let tmp = temp_name(o.path);
    let result: io::Result<T> = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        // open(2) applies the umask; the mode asked for is what the file gets.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let value = write(&mut w)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        // The rename must not put a file in place whose data is not on disk yet.
        file.sync_all()?;
        fs::rename(&tmp, o.path)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(fail)
}

/// `DIR/.NAME.tmp-PID`: in NAME's directory (rename does not cross file systems),
/// hidden, and unique to this process.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(label: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tracer-outfile-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn an_input_or_a_recording_is_never_an_output() {
        let d = tmpdir("check");
        let rec = d.join("events.jsonl");
        let rotated = d.join("events.jsonl.1");
        fs::write(&rec, "{\"seq\":7,\"type\":\"meta\"}\n").unwrap();
        fs::write(&rotated, "{\"seq\":1,\"type\":\"meta\"}\n").unwrap();
        let link = d.join("link.json");
        std::os::unix::fs::symlink(&rotated, &link).unwrap();
        let out = |flag, path| Output { flag, path };
        // The README's glob: `--perfetto events.jsonl*` makes events.jsonl the output.
        let e = check(&[out("--perfetto", &rec)], std::slice::from_ref(&rotated)).unwrap_err();
        assert!(
            e.message.contains("holds a tracer recording"),
            "{}",
            e.message
        );
        assert_eq!(e.code, 2);
        // The same path, or the same file under another name.
        for p in [&rotated, &link] {
            let e = check(&[out("--flamegraph", p)], std::slice::from_ref(&rotated)).unwrap_err();
            assert!(e.message.contains("is also an input"), "{}", e.message);
        }
        let e = check(
            &[
                out("--perfetto", Path::new("-")),
                out("--flamegraph", Path::new("-")),
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("stdout"), "{}", e.message);
        // A new name, or an old trace (not a recording), is fine.
        let old = d.join("old.json");
        fs::write(&old, "{\"traceEvents\":[]}").unwrap();
        check(
            &[
                out("--perfetto", &old),
                out("--flamegraph", &d.join("f.svg")),
            ],
            std::slice::from_ref(&rec),
        )
        .unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn written_through_a_temporary_file_with_the_mode_asked_for() {
        let d = tmpdir("write");
        let p = d.join("t.json");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let o = Output {
            flag: "--perfetto",
            path: &p,
        };
        let n = write(&o, "trace", 0o600, |w| w.write_all(b"new").map(|()| 3)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A failing writer leaves the old file and no temporary one.
        let e = write(&o, "trace", 0o600, |w| {
            w.write_all(b"half")?;
            Err::<(), _>(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert!(
            crate::error::anyhow_line(&e).contains("disk on fire"),
            "{e:#}"
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["t.json"]);
        fs::remove_dir_all(&d).unwrap();
    }
}
