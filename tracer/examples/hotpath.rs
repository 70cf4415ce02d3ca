//! Replays synthetic storms through the agent's per-event path (decode, model,
//! redaction, alerts, JSON Lines) and prints the CPU time per operation, so the
//! userspace cost can be measured without the kernel or a noisy machine.
//!
//! `cargo run --release -p tracer --example hotpath [OPS [MODE...]]`
//! (environment: HOTPATH_STEP_NS, HOTPATH_OUT, HOTPATH_FILE, HOTPATH_NOCOPY; see below).

use std::{mem::size_of, time::Duration};

use tracer::{
    alerts::{Config, Engine},
    cgroup::CgroupResolver,
    decode,
    model::{Model, ModelConfig},
    output::{
        JsonlWriter, RunInfo,
        file::{FileOptions, OutputFile},
    },
    record::{Body, Record},
    redact::Redactor,
};
use tracer_common::{
    ExecEvent, ExitEvent, FILENAME_LEN, ForkEvent, FreeEvent, Header, WaitEvent, exit_flags, kind,
};

/// CPU time of this thread: the machine may be busy, wall time would count that.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bytes_of<T>(v: &T) -> Vec<u8> {
    // SAFETY: wire structs are plain data.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()).to_vec() }
}

fn comm(s: &[u8]) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..s.len()].copy_from_slice(s);
    c
}

struct Gen {
    t: u64,
    /// Time between two events (HOTPATH_STEP_NS; 1 µs by default).
    step: u64,
    out: Vec<Vec<u8>>,
}

impl Gen {
    fn header(&mut self, k: u32, pid: u32, tid: u32, ppid: u32, start_ns: u64, c: &[u8]) -> Header {
        self.t += self.step;
        Header {
            ktime_ns: self.t,
            start_ns,
            cgroup_id: 1,
            kind: k,
            pid,
            tid,
            ppid,
            uid: 0,
            flags: 0,
            comm: comm(c),
        }
    }
    fn fork(&mut self, pid: u32, tid: u32, ppid: u32, start: u64, pstart: u64, c: &[u8]) {
        let e = ForkEvent {
            header: self.header(kind::FORK, pid, tid, ppid, start, c),
            clone_flags: 0x1200011,
            parent_start_ns: pstart,
            creator_pid: ppid,
            creator_tid: ppid,
        };
        self.out.push(bytes_of(&e));
    }
    fn exec(&mut self, pid: u32, ppid: u32, start: u64, file: &[u8], argv: &[&[u8]]) {
        let mut filename = [0u8; FILENAME_LEN];
        filename[..file.len()].copy_from_slice(file);
        let mut area = Vec::new();
        for a in argv {
            area.extend_from_slice(a);
            area.push(0);
        }
        let name = file.rsplit(|&b| b == b'/').next().unwrap();
        let e = ExecEvent {
            header: self.header(kind::EXEC, pid, pid, ppid, start, name),
            old_tid: pid,
            flags: 0,
            argv_len: area.len() as u32,
            filename_len: file.len() as u32,
            filename,
        };
        let mut b = bytes_of(&e);
        b.extend_from_slice(&area);
        self.out.push(b);
    }
    fn exit(&mut self, pid: u32, tid: u32, ppid: u32, start: u64, c: &[u8], group_dead: bool) {
        let e = ExitEvent {
            header: self.header(kind::EXIT, pid, tid, ppid, start, c),
            status: 0,
            flags: if group_dead {
                exit_flags::GROUP_DEAD
            } else {
                0
            },
        };
        self.out.push(bytes_of(&e));
    }
    fn wait(&mut self, pid: u32, ppid: u32, start: u64, c: &[u8], child: u32) {
        let e = WaitEvent {
            header: self.header(kind::WAIT, pid, pid, ppid, start, c),
            child_pid: child,
            syscall: 1,
            ..Default::default()
        };
        self.out.push(bytes_of(&e));
    }
    fn free(&mut self, pid: u32, ppid: u32, start: u64, c: &[u8]) {
        let e = FreeEvent {
            header: self.header(kind::FREE, pid, pid, ppid, start, c),
        };
        self.out.push(bytes_of(&e));
    }
}

/// A chain of ancestors (as a shell session has), then two storm workers.
fn prologue(g: &mut Gen) -> [(u32, u64); 2] {
    let mut parent = (1u32, 10_000_000u64);
    g.fork(1, 1, 0, parent.1, 0, b"systemd");
    for i in 0..8u32 {
        let pid = 100 + i;
        let start = 20_000_000 * u64::from(i + 2);
        g.fork(pid, pid, parent.0, start, parent.1, b"bash");
        g.exec(pid, parent.0, start, b"/usr/bin/bash", &[b"bash", b"-l"]);
        parent = (pid, start);
    }
    let argv: [&[u8]; 6] = [
        b"target/release/tracer-storm",
        b"fork-exec",
        b"--count",
        b"200000",
        b"--workers",
        b"2",
    ];
    let storm = (200u32, 500_000_000u64);
    g.fork(storm.0, storm.0, parent.0, storm.1, parent.1, b"bash");
    g.exec(storm.0, parent.0, storm.1, argv[0], &argv);
    let mut workers = [(0, 0); 2];
    for (i, w) in workers.iter_mut().enumerate() {
        *w = (201 + i as u32, storm.1 + 1_000 + i as u64 * 1_000);
        g.fork(w.0, w.0, storm.0, w.1, storm.1, b"tracer-storm");
    }
    workers
}

fn events(mode: &str, ops: u32) -> Vec<Vec<u8>> {
    let mut g = Gen {
        t: 1_000_000_000,
        step: std::env::var("HOTPATH_STEP_NS").map_or(1_000, |s| s.parse().expect("a number")),
        out: Vec::new(),
    };
    let workers = prologue(&mut g);
    let mut next = 1000u32;
    for i in 0..ops {
        let (wpid, wstart) = workers[(i % 2) as usize];
        let c = b"tracer-storm";
        // pids wrap like the kernel's do.
        next = if next >= 4_000_000 { 1000 } else { next + 1 };
        let pid = next;
        let start = g.t + 1;
        match mode {
            "threads" => {
                g.fork(wpid, pid, 200, wstart, wstart, c);
                g.exit(wpid, pid, 200, wstart, c, false);
            }
            _ => {
                g.fork(pid, pid, wpid, start, wstart, c);
                if mode == "fork-exec" {
                    g.exec(pid, wpid, start, b"/bin/true", &[b"/bin/true"]);
                    g.exit(pid, pid, wpid, start, b"true", true);
                } else {
                    g.exit(pid, pid, wpid, start, c, true);
                }
                g.wait(wpid, 200, wstart, c, pid);
                g.free(pid, wpid, start, c);
            }
        }
    }
    g.out
}

/// The measured part: what `tracer watch` does per ring buffer record. Not
/// inlined, so that `valgrind --tool=callgrind --toggle-collect=*run_pipeline*`
/// counts just this.
#[inline(never)]
fn run_pipeline(evs: &[Vec<u8>], threads: bool) -> (u64, usize) {
    let mut model = Model::new(ModelConfig { threads });
    let mut alerts = Engine::new(Config::default());
    let redactor = Redactor::new(&[], true).unwrap();
    let mut cgroups = CgroupResolver::new();
    let info = RunInfo {
        host: "host".into(),
        boot_id: "00000000-0000-0000-0000-000000000000".into(),
        realtime_offset_ns: 1_700_000_000_000_000_000,
    };
    // HOTPATH_OUT=FILE keeps the output, to compare two builds byte for byte.
    // HOTPATH_FILE=FILE writes it as `watch -o FILE` does (through OutputFile, each
    // line copied into its buffer); HOTPATH_NOCOPY=1 hands each line to io::sink()
    // with no buffer in between: the two bound what handing lines on without a
    // copy (`bytes`) could save (docs/bench.md).
    let mut w = if let Some(path) = std::env::var_os("HOTPATH_FILE") {
        let file = OutputFile::create(FileOptions {
            path: path.into(),
            mode: 0o600,
            rotation: None,
            append: false,
        })
        .expect("HOTPATH_FILE is writable");
        JsonlWriter::unbuffered(Box::new(file) as Box<dyn std::io::Write>, info)
    } else if std::env::var_os("HOTPATH_NOCOPY").is_some() {
        JsonlWriter::unbuffered(Box::new(std::io::sink()) as Box<dyn std::io::Write>, info)
    } else {
        let sink: Box<dyn std::io::Write> = match std::env::var_os("HOTPATH_OUT") {
            Some(path) => Box::new(std::fs::File::create(path).expect("HOTPATH_OUT is writable")),
            None => Box::new(std::io::sink()),
        };
        JsonlWriter::new(sink, info)
    };
    let mut recs: Vec<Record> = Vec::with_capacity(256);
    let mut raised = Vec::new();
    let mut n = 0u64;
    for (i, b) in evs.iter().enumerate() {
        let ev = decode::decode(b).unwrap();
        model.apply(ev, &mut recs);
        if recs.len() >= 256 || i + 1 == evs.len() {
            for mut r in recs.drain(..) {
                if let Body::Exec {
                    argv,
                    argv_redacted,
                    ..
                } = &mut r.body
                {
                    *argv_redacted |= redactor.redact_argv(argv);
                }
                cgroups.fill(&mut r);
                w.write(&r).unwrap();
                n += 1;
                alerts.observe(&r, &mut raised);
                for mut a in raised.drain(..) {
                    cgroups.fill(&mut a);
                    w.write(&a).unwrap();
                }
            }
        }
    }
    (n, model.len())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ops: u32 = args
        .next()
        .map_or(200_000, |s| s.parse().expect("OPS is a number"));
    let modes: Vec<String> = args.collect();
    for (mode, threads) in [
        ("fork-exec", false),
        ("fork-exit", false),
        ("threads", true),
    ] {
        if !modes.is_empty() && !modes.iter().any(|m| m == mode) {
            continue;
        }
        let evs = events(mode, ops);
        let start = cpu_now();
        let (n, held) = run_pipeline(&evs, threads);
        let el = cpu_now() - start;
        println!(
            "{mode:10} {:7.1} ns/op  {:6.1} ns/record  ({n} records, {} events, model holds {held})",
            el.as_nanos() as f64 / f64::from(ops),
            el.as_nanos() as f64 / n as f64,
            evs.len(),
        );
    }
}
