//! The output file of `tracer watch -o FILE`: whole lines only, size-based rotation
//! with optional zstd compression of rotated files, reopening on SIGHUP, and a
//! writer that survives a full disk.
//!
//! [`OutputFile`] is the `Write` sink under the JSON Lines writer (which hands it
//! one whole line per `write`). It keeps its own buffer so that it knows where
//! lines end:
//!
//! - The file only ever holds whole lines: when a write stops part-way (disk full,
//!   quota, I/O error), the part of a line that got out is cut off again
//!   (`ftruncate`) and the line stays buffered for the next attempt. Only a crash
//!   in the middle of a `write(2)` can leave a partial last line.
//! - Once writing fails, lines are still taken into the buffer while there is room
//!   ([`BUF_CAP`]); after that `write` refuses them with the error, and the caller
//!   counts them as lost. Writing is tried again only on `flush` (the agent flushes
//!   every second), so a full disk costs one failed write a second, not one per
//!   record. Lines still buffered when the file is closed for good, rotated away or
//!   reopened while writing fails are dropped and counted ([`OutputFile::take_dropped`]).
//! - Rotation: when a line would take the file past the size limit,
//!   [`OutputFile::rotation_due`] turns true; the caller rotates between two
//!   batches of records ([`OutputFile::rotate`]), when its process model matches
//!   what the file holds, and writes the new file's header (`meta` record and
//!   `process` snapshot, [`OutputFile::header_due`]). Near the limit
//!   ([`OutputFile::rotation_near`]) the agent ends a batch after every event, so
//!   a file ends at most one event's lines past the limit.
//! - Rotated files are `FILE.1` (newest) to `FILE.N`; each rotation moves them up
//!   by one and deletes the one that would become `FILE.N+1`. With compression
//!   they are `FILE.1.zst` ...: the file is moved aside to `FILE.rotating-<pid>-<n>`
//!   and a background thread compresses it, shifts the numbered files and puts
//!   the result in place, so the writer never waits for compression.
//! - [`OutputFile::reopen`] (SIGHUP) flushes to the file it has open (which
//!   logrotate may have renamed) and opens `FILE` again without truncating it.
//!
//! - `--append` ([`FileOptions::append`]) opens an existing file as SIGHUP does:
//!   its content stays, and this run's part starts with its own header.
//!
//! Files are opened with `O_NOFOLLOW` (a symbolic link at FILE is refused, never
//! followed) and `O_APPEND`, so a cut-back partial line is overwritten
//! by the next write, and a `copytruncate` by someone else does not leave a hole.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Bytes buffered before they are written; also the most that is held while
/// writing fails.
pub const BUF_CAP: usize = 256 * 1024;

/// How close to the size limit [`OutputFile::rotation_near`] says so: more than
/// the lines of one batch of records (256 records of a few hundred bytes, up to
/// 16 KiB for one with a long argv escaped).
pub const NEAR_LIMIT: u64 = 1 << 20;

/// The 4 bytes every zstd frame starts with (RFC 8878, section 3.1.1).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// zstd level for rotated files: the library's default, fast and still ~10x on
/// JSON Lines.
const ZSTD_LEVEL: i32 = 3;

/// Whether `data` starts like zstd-compressed data.
pub fn is_zstd(data: &[u8]) -> bool {
    data.starts_with(&ZSTD_MAGIC)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate when the file would grow past this many bytes.
    pub size: u64,
    /// Rotated files kept (`FILE.1` ... `FILE.keep`), at least 1.
    pub keep: u32,
    /// Compress rotated files with zstd (`FILE.1.zst` ...).
    pub compress: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOptions {
    pub path: PathBuf,
    /// Permission bits of files tracer creates (and of the output file it truncates
    /// at start-up), applied exactly: the umask does not narrow them.
    pub mode: u32,
    pub rotation: Option<Rotation>,
    /// Add to an existing file (`--append`) rather than empty it: its content and
    /// permissions are kept, and what this run writes starts with its own header.
    pub append: bool,
}

/// `FILE.n` or `FILE.n.zst`.
pub fn numbered(path: &Path, n: u32, compressed: bool) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    if compressed {
        s.push(".zst");
    }
    PathBuf::from(s)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes room for a new `FILE.1`: deletes `FILE.keep`, moves `FILE.n` to
/// `FILE.n+1` for n = keep-1 down to 1. Plain and `.zst` files are shifted alike,
/// so files left by a run with the other `--compress` setting keep their order.
pub fn shift(path: &Path, keep: u32) -> io::Result<()> {
    let keep = keep.max(1);
    for z in [false, true] {
        remove_if_exists(&numbered(path, keep, z))
            .map_err(|e| annotate(e, "removing", &numbered(path, keep, z)))?;
    }
    for n in (1..keep).rev() {
        for z in [false, true] {
            let (from, to) = (numbered(path, n, z), numbered(path, n + 1, z));
            rename_if_exists(&from, &to).map_err(|e| annotate(e, "renaming", &from))?;
        }
    }
    Ok(())
}

/// The error with what was being done to which file, for a one-line message.
fn annotate(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// Opens `path` for appending, creating it with exactly `mode` if it does not
/// exist. With `truncate`, an existing regular file is emptied and given `mode`
/// too (it is this run's output from now on); anything else (`/dev/null`, a
/// FIFO) is left as it is. Returns the file and whether it was created.
///
/// A symbolic link at `path` is not followed (`O_NOFOLLOW`): a link planted where
/// the output goes would otherwise have tracer, as root, truncate and chmod
/// whatever it points to. The error then says so.
fn open_append(path: &Path, mode: u32, truncate: bool) -> io::Result<(File, bool)> {
    // Readable too: reopening looks at the last byte of an existing file.
    let open = |create: bool| {
        let mut o = OpenOptions::new();
        o.read(true).append(true).custom_flags(libc::O_NOFOLLOW);
        if create {
            o.create_new(true).mode(mode);
        }
        o.open(path).map_err(|e| not_a_link(e, path))
    };
    let (file, created) = match open(true) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (open(false)?, false),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok((file, created));
    }
    if truncate && !created {
        file.set_len(0)?;
    }
    if created || truncate {
        // open(2) applies the umask; the mode asked for is what the file gets.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok((file, created))
}

/// open(2) with `O_NOFOLLOW` fails with ELOOP on a symbolic link
/// (fs/namei.c may_open / do_last): say that rather than "too many levels".
fn not_a_link(e: io::Error, path: &Path) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link, and tracer does not follow one for its output: give the path of a file",
                path.display()
            ),
        )
    } else {
        e
    }
}

/// Compresses `from` into `to` (through `to.tmp`, synced, then renamed), created
/// with `mode`.
pub fn compress_file(from: &Path, to: &Path, mode: u32) -> io::Result<()> {
    let tmp = with_suffix(to, ".tmp");
    let result = (|| {
        let input = BufReader::with_capacity(256 * 1024, File::open(from)?);
        let (out, _) = open_append(&tmp, mode, true)?;
        let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
        io::copy(&mut { input }, &mut enc)?;
        let out = enc.finish()?;
        // The uncompressed file is removed next: the copy must be on disk first.
        out.sync_all()?;
        fs::rename(&tmp, to)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Compresses rotated files on a thread of its own, in the order they were
/// rotated, and shifts the numbered files as each one is done.
struct Compressor {
    tx: Option<mpsc::Sender<PathBuf>>,
    thread: Option<JoinHandle<()>>,
}

impl Compressor {
    fn start(path: PathBuf, keep: u32, mode: u32) -> io::Result<Compressor> {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let thread = std::thread::Builder::new()
            .name("tracer-zstd".into())
            .spawn(move || {
                for staged in rx {
                    compress_rotated(&path, keep, mode, &staged);
                }
            })?;
        Ok(Compressor {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn submit(&self, staged: PathBuf) {
        if let Some(tx) = &self.tx
            && let Err(mpsc::SendError(staged)) = tx.send(staged)
        {
            // Only if the thread died: keep the data where it is.
            eprintln!(
                "tracer: cannot compress {}: the compression thread is gone; the file is kept as it is",
                staged.display()
            );
        }
    }

    /// Waits for the files handed over so far.
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!(
                "tracer: the compression thread failed; rotated files may be left uncompressed"
            );
        }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One rotated file, moved aside to `staged`: compressed to `FILE.1.zst` after the
/// numbered files moved up. If compression fails it becomes `FILE.1`, uncompressed.
fn compress_rotated(path: &Path, keep: u32, mode: u32, staged: &Path) {
    let tmp = with_suffix(staged, ".zst");
    let compressed = compress_file(staged, &tmp, mode);
    if let Err(e) = shift(path, keep) {
        eprintln!(
            "tracer: rotating {} failed: {e}; older files may be overwritten",
            path.display()
        );
    }
    let (from, to, what) = match &compressed {
        Ok(()) => (&tmp, numbered(path, 1, true), "compressed file"),
        Err(e) => {
            eprintln!(
                "tracer: compressing {} failed: {e}; keeping it uncompressed",
                staged.display()
            );
            (&staged.to_path_buf(), numbered(path, 1, false), "file")
        }
    };
    if let Err(e) = fs::rename(from, &to) {
        eprintln!(
            "tracer: moving the rotated {what} {} to {} failed: {e}; it stays where it is",
            from.display(),
            to.display()
        );
        return;
    }
    if compressed.is_ok()
        && let Err(e) = fs::remove_file(staged)
    {
        eprintln!(
            "tracer: removing {} after compressing it failed: {e}",
            staged.display()
        );
    }
}

/// The output file. See the module documentation.
pub struct OutputFile {
    opts: FileOptions,
    /// `None` after opening failed (rotation, SIGHUP): lines are refused until a
    /// `flush` manages to open it again.
    file: Option<File>,
    /// Bytes in the file: where the next line goes.
    size: u64,
    /// Size of the header (meta + snapshot) of the current file; rotation waits
    /// for at least one line after it, so a header larger than the limit cannot
    /// make every batch rotate.
    header_end: u64,
    /// Size at which to rotate: `--rotate-size`, or after a rotation that could
    /// not move the file, another `--rotate-size` further on (rather than a new
    /// header after every event).
    limit: u64,
    /// Whole lines taken and not yet written.
    buf: Vec<u8>,
    /// The last write failed; set until a write gets everything out.
    failing: Option<io::Error>,
    /// Lines dropped (never to be written) since the last [`OutputFile::take_dropped`].
    dropped: u64,
    rotation_due: bool,
    header_due: bool,
    compressor: Option<Compressor>,
    /// Files moved aside for compression so far, for unique names.
    staged: u64,
}

impl OutputFile {
    /// Creates (or truncates) the file with `opts.mode`; with `opts.append`, opens
    /// it to add to what it holds.
    pub fn create(opts: FileOptions) -> io::Result<OutputFile> {
        if opts.rotation.is_some() && fs::metadata(&opts.path).is_ok_and(|m| !m.is_file()) {
            // Rotation renames the file: never a device or a FIFO.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a regular file, so it cannot be rotated",
                    opts.path.display()
                ),
            ));
        }
        let file = match opts.append {
            // Opened below as SIGHUP reopens: at its end, after a newline.
            true => None,
            false => Some(open_append(&opts.path, opts.mode, true)?.0),
        };
        let limit = opts.rotation.as_ref().map_or(u64::MAX, |r| r.size);
        let compressor = match &opts.rotation {
            Some(r) if r.compress => Some(Compressor::start(opts.path.clone(), r.keep, opts.mode)?),
            _ => None,
        };
        let mut out = OutputFile {
            opts,
            file,
            size: 0,
            header_end: 0,
            limit,
            buf: Vec::with_capacity(BUF_CAP),
            failing: None,
            dropped: 0,
            rotation_due: false,
            header_due: true,
            compressor,
            staged: 0,
        };
        if out.file.is_none() {
            out.open_again()?;
        }
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.opts.path
    }

    /// A new file was opened (at start, rotation, reopen): it needs its header.
    pub fn header_due(&self) -> bool {
        self.header_due
    }

    /// The header has been written: what follows is the body.
    pub fn header_written(&mut self) {
        self.header_due = false;
        self.header_end = self.size + self.buf.len() as u64;
    }

    /// The file has reached its size limit: rotate before the next batch.
    pub fn rotation_due(&self) -> bool {
        self.rotation_due
    }

    /// The file is within [`NEAR_LIMIT`] bytes of its size limit: batches should
    /// be one event long, so that rotation comes right after the event that
    /// reaches the limit.
    pub fn rotation_near(&self) -> bool {
        self.opts.rotation.as_ref().is_some()
            && self.size + self.buf.len() as u64 + NEAR_LIMIT > self.limit
    }

    /// Lines dropped since the last call (each one a record that is lost).
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Whether writing is failing now.
    pub fn is_failing(&self) -> bool {
        self.failing.is_some() || self.file.is_none()
    }

    /// The error to refuse lines with while writing fails.
    fn refusal(&self) -> io::Error {
        match &self.failing {
            Some(e) => io::Error::new(e.kind(), e.to_string()),
            None => io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not open", self.opts.path.display()),
            ),
        }
    }

    /// Writes out the buffer, keeping the file to whole lines.
    fn write_out(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.refusal());
        };
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            match file.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let mut whole = match &result {
            Ok(()) => done,
            Err(_) => self.buf[..done]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1),
        };
        if whole < done {
            // Part of a line got out: cut it off (O_APPEND puts the next write
            // where the cut is). Should even that fail, the part stays in the file
            // and the rest of that line is dropped rather than written twice.
            if file.set_len(self.size + whole as u64).is_err() {
                let rest = self.buf[done..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.buf.len(), |i| done + i + 1);
                self.size += (done - whole) as u64;
                self.buf.drain(whole..rest);
                self.dropped += 1;
            }
        }
        whole = whole.min(self.buf.len());
        self.size += whole as u64;
        self.buf.drain(..whole);
        match result {
            Ok(()) => {
                self.failing = None;
                Ok(())
            }
            Err(e) => {
                let refused = io::Error::new(e.kind(), e.to_string());
                self.failing = Some(e);
                Err(refused)
            }
        }
    }

    /// Writes out what can be and closes the file; lines that cannot be written
    /// are dropped (counted in [`OutputFile::take_dropped`]).
    fn close_current(&mut self) -> io::Result<()> {
        let result = if self.file.is_some() && !self.buf.is_empty() {
            self.write_out()
        } else {
            Ok(())
        };
        if !self.buf.is_empty() {
            self.dropped += lines_in(&self.buf);
            self.buf.clear();
        }
        self.file = None;
        result
    }

    /// Opens the file at its path again, appending; it is now a new file as far
    /// as headers go.
    fn open_again(&mut self) -> io::Result<()> {
        let (mut file, created) = open_append(&self.opts.path, self.opts.mode, false)?;
        let size = file.metadata()?.len();
        if !created && size > 0 {
            // Someone else's partial last line must not swallow our first one.
            let mut last = [0u8; 1];
            let read = file
                .seek(SeekFrom::Start(size - 1))
                .and_then(|_| file.read_exact(&mut last));
            if read.is_ok() && last[0] != b'\n' {
                self.buf.insert(0, b'\n');
            }
        }
        self.file = Some(file);
        self.size = size;
        self.header_end = size;
        self.failing = None;
        self.header_due = true;
        self.rotation_due = false;
        Ok(())
    }

    /// Reopens the file at its path (SIGHUP, after logrotate renamed it): what is
    /// buffered goes to the file open until now, then `FILE` is opened again,
    /// created if it is gone, appended to if not.
    pub fn reopen(&mut self) -> io::Result<()> {
        let flushed = self.close_current();
        let opened = self.open_again();
        opened.and(flushed)
    }

    /// Rotates: closes the file, moves it to `FILE.1` (shifting older ones, or
    /// handing it to the compression thread), and starts a new `FILE`. If it cannot
    /// be moved, writing goes on at the end of the same file.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.rotation_due = false;
        let Some(rot) = self.opts.rotation.clone() else {
            return Ok(());
        };
        let flushed = self.close_current();
        let path = self.opts.path.clone();
        let moved = if rot.compress {
            self.staged += 1;
            let staged = with_suffix(
                &path,
                &format!(".rotating-{}-{}", std::process::id(), self.staged),
            );
            fs::rename(&path, &staged)
                .map_err(|e| annotate(e, "renaming", &path))
                .map(|()| {
                    if let Some(c) = &self.compressor {
                        c.submit(staged);
                    }
                })
        } else {
            shift(&path, rot.keep).and_then(|()| {
                fs::rename(&path, numbered(&path, 1, false))
                    .map_err(|e| annotate(e, "renaming", &path))
            })
        };
        let opened = self.open_again();
        self.limit = match &moved {
            Ok(()) => rot.size,
            Err(_) => self.size.saturating_add(rot.size),
        };
        flushed.and(moved).and(opened)
    }

    /// Writes out what is buffered and stops the compression thread, waiting
    /// for it; lines that cannot be written are dropped and counted.
    pub fn close(&mut self) -> io::Result<()> {
        let result = self.close_current();
        if let Some(mut c) = self.compressor.take() {
            c.finish();
        }
        result
    }
}

fn lines_in(buf: &[u8]) -> u64 {
    let n = buf.iter().filter(|&&b| b == b'\n').count() as u64;
    // A last line without newline is a line too.
    n + u64::from(buf.last().is_some_and(|&b| b != b'\n'))
}

impl Write for OutputFile {
    /// Takes one line (the JSON Lines writer gives whole lines), or refuses it
    /// with the error writing fails with.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.file.is_none() {
            return Err(self.refusal());
        }
        let pending = self.size + self.buf.len() as u64;
        if self.opts.rotation.is_some()
            && !self.header_due
            && pending > self.header_end
            && pending + data.len() as u64 > self.limit
        {
            self.rotation_due = true;
        }
        if self.buf.len() + data.len() > BUF_CAP && !self.buf.is_empty() {
            if self.failing.is_none() {
                // A failure here keeps what is left buffered; room is checked next.
                let _ = self.write_out();
            }
            if !self.buf.is_empty() && self.buf.len() + data.len() > BUF_CAP {
                return Err(self.refusal());
            }
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    /// Writes out the buffer; after a failure, this is the retry. A file that
    /// could not be opened is tried again here.
    fn flush(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.open_again()?;
        }
        self.write_out()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tracer-file-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn line(i: usize, len: usize) -> Vec<u8> {
        let mut l = format!("{{\"n\":{i},\"pad\":\"").into_bytes();
        while l.len() < len - 3 {
            l.push(b'x');
        }
        l.extend_from_slice(b"\"}\n");
        l
    }

    fn opts(path: &Path, rotation: Option<Rotation>) -> FileOptions {
        FileOptions {
            path: path.to_path_buf(),
            mode: 0o600,
            rotation,
            append: false,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn numbered_names() {
        let p = Path::new("/var/log/t.jsonl");
        assert_eq!(numbered(p, 1, false), Path::new("/var/log/t.jsonl.1"));
        assert_eq!(numbered(p, 12, true), Path::new("/var/log/t.jsonl.12.zst"));
    }

    #[test]
    fn shift_moves_up_and_drops_the_oldest() {
        let d = tmpdir("shift");
        let p = d.join("f");
        for (name, body) in [("f.1", "one"), ("f.2.zst", "two"), ("f.3", "three")] {
            fs::write(d.join(name), body).unwrap();
        }
        shift(&p, 3).unwrap();
        assert_eq!(names(&d), ["f.2", "f.3.zst"]);
        assert_eq!(fs::read_to_string(d.join("f.2")).unwrap(), "one");
        assert_eq!(fs::read_to_string(d.join("f.3.zst")).unwrap(), "two");
        // keep 1: FILE.1 goes, nothing else moves.
        shift(&p, 1).unwrap();
        assert_eq!(names(&d), ["f.2", "f.3.zst"]);
        fs::write(d.join("f.1"), "x").unwrap();
        shift(&p, 1).unwrap();
        assert_eq!(names(&d), ["f.2", "f.3.zst"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn zstd_is_detected_by_its_magic() {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.write_all(b"{\"seq\":1}\n").unwrap();
        let z = enc.finish().unwrap();
        assert!(is_zstd(&z));
        assert!(!is_zstd(b"{\"seq\":1}\n"));
        assert!(!is_zstd(&[0x1f, 0x8b, 8, 0]));
        assert!(!is_zstd(&ZSTD_MAGIC[..3]));
    }

    /// Writes `n` lines of `len` bytes, each followed by the batch boundary the
    /// agent would do: rotate when due, then write a one-line header.
    fn write_lines(f: &mut OutputFile, n: usize, len: usize, headers: &mut u32) {
        for i in 0..n {
            if f.rotation_due() {
                f.rotate().unwrap();
            }
            if f.header_due() {
                *headers += 1;
                f.write_all(format!("header {headers}\n").as_bytes())
                    .unwrap();
                f.header_written();
            }
            f.write_all(&line(i, len)).unwrap();
        }
        f.flush().unwrap();
    }

    #[test]
    fn rotation_keeps_n_files_each_with_its_header_and_under_the_limit() {
        let d = tmpdir("rotate");
        let p = d.join("t.jsonl");
        let rot = Rotation {
            size: 1000,
            keep: 3,
            compress: false,
        };
        let mut f = OutputFile::create(opts(&p, Some(rot))).unwrap();
        let mut headers = 0;
        // 100-byte lines after a 9-byte header: the 10th reaches the limit, so
        // each file holds 10 and 60 lines make 6 files.
        write_lines(&mut f, 60, 100, &mut headers);
        f.close().unwrap();
        assert_eq!(
            names(&d),
            ["t.jsonl", "t.jsonl.1", "t.jsonl.2", "t.jsonl.3"]
        );
        let mut all = Vec::new();
        for name in ["t.jsonl.3", "t.jsonl.2", "t.jsonl.1", "t.jsonl"] {
            let text = fs::read_to_string(d.join(name)).unwrap();
            // Rotation comes after the line that reaches the limit.
            assert!(text.len() <= 1000 + 100, "{name} has {} bytes", text.len());
            assert!(
                text.len() > 1000 - 100 || name == "t.jsonl",
                "{name} has {} bytes",
                text.len()
            );
            assert!(text.starts_with("header "), "{name}: {text}");
            assert!(text.ends_with('\n'));
            all.extend(text.lines().skip(1).map(str::to_string));
        }
        // The files kept hold the last lines, in order and complete.
        let last: Vec<String> = (60 - all.len()..60)
            .map(|i| {
                String::from_utf8(line(i, 100))
                    .unwrap()
                    .trim_end()
                    .to_string()
            })
            .collect();
        assert_eq!(all, last);
        assert_eq!(headers, 6, "one header per file written");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_moved_is_written_on_and_rotated_a_size_later() {
        let d = tmpdir("stuck");
        let p = d.join("t");
        // FILE.1 is a directory with something in it: it cannot be replaced.
        fs::create_dir_all(d.join("t.1/x")).unwrap();
        let rot = Rotation {
            size: 1000,
            keep: 1,
            compress: false,
        };
        let mut f = OutputFile::create(opts(&p, Some(rot))).unwrap();
        f.write_all(b"h\n").unwrap();
        f.header_written();
        for i in 0..10 {
            f.write_all(&line(i, 100)).unwrap();
        }
        assert!(f.rotation_due());
        let e = f.rotate().unwrap_err();
        assert!(e.to_string().contains("t.1"), "{e}");
        assert!(f.header_due(), "the file goes on, with a header");
        f.write_all(b"h\n").unwrap();
        f.header_written();
        for i in 10..19 {
            f.write_all(&line(i, 100)).unwrap();
            assert!(!f.rotation_due(), "not again before another 1000 bytes");
        }
        for i in 19..21 {
            f.write_all(&line(i, 100)).unwrap();
        }
        assert!(f.rotation_due());
        f.close().unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 23, "nothing lost: {text}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_header_larger_than_the_limit_does_not_rotate_every_batch() {
        let d = tmpdir("bighead");
        let p = d.join("t");
        let rot = Rotation {
            size: 100,
            keep: 2,
            compress: false,
        };
        let mut f = OutputFile::create(opts(&p, Some(rot))).unwrap();
        f.write_all(&line(0, 500)).unwrap();
        f.header_written();
        assert!(!f.rotation_due());
        f.write_all(&line(1, 50)).unwrap();
        assert!(!f.rotation_due(), "the first line after the header stays");
        f.write_all(&line(2, 50)).unwrap();
        assert!(f.rotation_due());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn compressed_rotation_gives_zst_files_with_the_same_lines() {
        let d = tmpdir("zst");
        let p = d.join("t.jsonl");
        let rot = Rotation {
            size: 2000,
            keep: 2,
            compress: true,
        };
        let mut f = OutputFile::create(opts(&p, Some(rot))).unwrap();
        let mut headers = 0;
        write_lines(&mut f, 50, 100, &mut headers);
        f.close().unwrap();
        assert_eq!(names(&d), ["t.jsonl", "t.jsonl.1.zst", "t.jsonl.2.zst"]);
        let mut prev_last: Option<usize> = None;
        for name in ["t.jsonl.2.zst", "t.jsonl.1.zst"] {
            let raw = fs::read(d.join(name)).unwrap();
            assert!(is_zstd(&raw));
            let mode = fs::metadata(d.join(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
            let text = String::from_utf8(zstd::decode_all(&raw[..]).unwrap()).unwrap();
            assert!(text.starts_with("header "));
            let first: usize = text.lines().nth(1).unwrap()[5..]
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            if let Some(p) = prev_last {
                assert_eq!(first, p + 1, "{name} continues the previous file");
            }
            prev_last = text.lines().last().unwrap()[5..]
                .split(',')
                .next()
                .unwrap()
                .parse()
                .ok();
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mode_is_applied_exactly_and_an_existing_file_is_truncated() {
        let d = tmpdir("mode");
        let p = d.join("t");
        fs::write(&p, "old content\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let mut o = opts(&p, None);
        o.mode = 0o640;
        let mut f = OutputFile::create(o).unwrap();
        f.write_all(b"new\n").unwrap();
        f.close().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn append_keeps_the_file_and_its_mode_and_starts_on_a_new_line() {
        let d = tmpdir("append");
        let p = d.join("t");
        fs::write(&p, "old 1\nold 2 cut sho").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let mut o = opts(&p, None);
        o.append = true;
        let mut f = OutputFile::create(o).unwrap();
        assert!(f.header_due(), "the appended part starts with its header");
        f.write_all(b"meta\n").unwrap();
        f.header_written();
        f.write_all(b"new\n").unwrap();
        f.close().unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "old 1\nold 2 cut sho\nmeta\nnew\n"
        );
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "an appended file keeps its mode");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let d = tmpdir("link");
        let target = d.join("precious");
        fs::write(&target, "keep me\n").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.join("t.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for append in [false, true] {
            let mut o = opts(&link, None);
            o.append = append;
            let e = OutputFile::create(o).err().expect("refused");
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me\n");
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn devices_are_neither_truncated_nor_chmodded_nor_rotated() {
        let null = Path::new("/dev/null");
        let before = fs::metadata(null).unwrap().permissions().mode();
        let mut f = OutputFile::create(opts(null, None)).unwrap();
        f.write_all(b"x\n").unwrap();
        f.reopen().unwrap();
        f.close().unwrap();
        assert_eq!(fs::metadata(null).unwrap().permissions().mode(), before);
        let rot = Rotation {
            size: 4096,
            keep: 1,
            compress: false,
        };
        let e = OutputFile::create(opts(null, Some(rot))).err().unwrap();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(null.exists() && !Path::new("/dev/null.1").exists());
    }

    #[test]
    fn reopen_after_a_rename_writes_the_rest_to_the_old_file_and_starts_a_new_one() {
        let d = tmpdir("reopen");
        let p = d.join("t");
        let mut f = OutputFile::create(opts(&p, None)).unwrap();
        f.header_written();
        f.write_all(b"a\n").unwrap();
        fs::rename(&p, d.join("t.old")).unwrap();
        f.write_all(b"b\n").unwrap();
        f.reopen().unwrap();
        assert!(f.header_due());
        f.write_all(b"h\n").unwrap();
        f.header_written();
        f.write_all(b"c\n").unwrap();
        f.close().unwrap();
        assert_eq!(fs::read_to_string(d.join("t.old")).unwrap(), "a\nb\n");
        assert_eq!(fs::read_to_string(&p).unwrap(), "h\nc\n");
        // Reopen without a rename appends, after a newline if the file lacks one.
        fs::write(&p, "partial").unwrap();
        let mut f = OutputFile::create(opts(&d.join("other"), None)).unwrap();
        f.opts.path = p.clone();
        f.reopen().unwrap();
        f.write_all(b"x\n").unwrap();
        f.close().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "partial\nx\n");
        fs::remove_dir_all(&d).unwrap();
    }

    /// Partial writes on a really full file system are tested in
    /// tests/tests/files.rs (a small tmpfs); here /dev/full fails every write.
    #[test]
    fn lines_are_held_then_refused_while_the_disk_is_full() {
        let d = tmpdir("full");
        let p = d.join("t");
        let mut f = OutputFile::create(opts(&p, None)).unwrap();
        // Swap in /dev/full as the open file: every write fails.
        let full = OpenOptions::new().append(true).open("/dev/full");
        let Ok(full) = full else {
            return;
        };
        f.file = Some(full);
        let mut refused = 0;
        let mut taken = 0;
        for i in 0..10_000 {
            match f.write_all(&line(i, 100)) {
                Ok(()) => taken += 1,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), None, "a copy of the error, kind kept");
                    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                    refused += 1;
                }
            }
        }
        assert!(f.is_failing());
        assert_eq!(taken + refused, 10_000);
        assert!(taken * 100 <= BUF_CAP + 100, "at most the buffer is held");
        assert!(f.flush().is_err());
        f.close().unwrap_err();
        assert_eq!(
            f.take_dropped(),
            taken as u64,
            "buffered lines are counted when dropped"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lines_in_counts_a_partial_last_line() {
        assert_eq!(lines_in(b""), 0);
        assert_eq!(lines_in(b"a\nb\n"), 2);
        assert_eq!(lines_in(b"a\nb"), 2);
    }
}
