//! One record type both ways: what the JSON Lines writer writes, the report
//! reader reads back as the same [`Record`]. Random records of every kind, with
//! the strings the kernel can hand us (invalid UTF-8, control bytes, quotes,
//! backslashes that look like our `\xNN` escapes), go through the real writer and
//! the real reader and must come back equal; written again they must give the
//! same bytes.

use std::sync::Arc;

use super::reader::{self, Rec};
use crate::event::Comm;
use crate::output::{JsonlWriter, RunInfo};
use crate::record::{Alert, AlertExit, AlertKind, AlertProc, Body, Name, ProcId, Record, Subject};

/// Records per kind and run.
const PER_KIND: usize = 400;

/// xorshift64*: small, seedable, good enough to spread values over their ranges.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// Edge values as often as random ones: 0, the maximum, and around them.
    fn u64(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(1000),
            3 => u64::MAX - self.below(1000),
            _ => self.next(),
        }
    }

    fn u32(&mut self) -> u32 {
        match self.below(4) {
            0 => 0,
            1 => u32::MAX,
            _ => self.next() as u32,
        }
    }

    fn u8(&mut self) -> u8 {
        self.next() as u8
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.coin() { Some(f(self)) } else { None }
    }

    /// Bytes as file names and arguments come: mostly plain, sometimes anything.
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        const PIECES: [&[u8]; 12] = [
            b"/usr/bin/",
            b"\\x41",
            b"\\xZZ",
            b"\\",
            b"\"",
            b"\xff\xfe",
            b"\xc3",
            "日本".as_bytes(),
            b"\n\r\t\x08\x0c\x01\x7f",
            b"\x00",
            b"\xe2\x80\x8b",
            b"--flag=value",
        ];
        let len = self.below(max + 1);
        let mut out = Vec::new();
        while (out.len() as u64) < len {
            match self.below(4) {
                0 => out.extend_from_slice(PIECES[self.below(PIECES.len() as u64) as usize]),
                1 => out.push(self.u8()),
                _ => out.push(b'a' + self.below(26) as u8),
            }
        }
        out
    }

    /// Text (valid UTF-8): what alert messages and cgroup paths are.
    fn text(&mut self, max: u64) -> String {
        String::from_utf8_lossy(&self.bytes(max)).into_owned()
    }

    fn name(&mut self) -> Name {
        const KNOWN: [&str; 4] = [
            "fork",
            "rate_per_s",
            "parent_executable",
            "median_lifetime_ns",
        ];
        if self.coin() {
            Name::Borrowed(KNOWN[self.below(4) as usize])
        } else {
            Name::Owned(self.text(12))
        }
    }

    fn argv(&mut self) -> Vec<Vec<u8>> {
        (0..self.below(5)).map(|_| self.bytes(24)).collect()
    }

    /// A comm as the kernel keeps it: up to 15 bytes, no NUL.
    fn comm(&mut self) -> Comm {
        let len = self.below(16) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| 1 + self.below(255) as u8).collect();
        Comm::new(&bytes)
    }

    fn proc_id(&mut self, pid: u32) -> ProcId {
        ProcId {
            pid,
            start_ticks: self.u64(),
        }
    }

    fn subject(&mut self, cgroups: &[Arc<str>]) -> Subject {
        let pid = self.u32();
        Subject {
            pid,
            tid: self.u32(),
            ppid: self.u32(),
            proc_id: self.proc_id(pid),
            comm: self.comm(),
            uid: self.opt(Rng::u32),
            cgroup_id: self.u64(),
            cgroup: self.opt(|r| Arc::clone(&cgroups[r.below(cgroups.len() as u64) as usize])),
            unit: self.opt(|r| Arc::from(r.text(30))),
            container_id: self.opt(|r| Arc::from(r.text(64))),
            pod_uid: self.opt(|r| Arc::from(r.text(36))),
        }
    }

    fn alert(&mut self) -> Alert {
        let parent_pid = self.u32();
        Alert {
            kind: AlertKind::ALL[self.below(4) as usize],
            end: self.coin(),
            scope: self.name(),
            since_ns: self.u64(),
            filename: self.opt(|r| r.bytes(30)),
            argv: self.argv(),
            parent: self.opt(|r| AlertProc {
                pid: parent_pid,
                proc_id: r.proc_id(parent_pid),
                comm: r.comm(),
                filename: r.opt(|r| r.bytes(30)),
            }),
            figures: (0..self.below(5))
                .map(|_| (self.name(), self.u64()))
                .collect(),
            executables: (0..self.below(4))
                .map(|_| (self.opt(|r| r.bytes(20)), self.u64()))
                .collect(),
            exits: (0..self.below(6))
                .map(|_| AlertExit {
                    exit_code: self.opt(Rng::u8),
                    signal: self.opt(Rng::u8),
                })
                .collect(),
            errno: self.opt(Rng::u32),
            what: if self.below(5) == 0 {
                String::new()
            } else {
                self.text(60)
            },
            message: None,
        }
    }

    /// A random record of kind `kind` (0..11, one per record type).
    fn record(&mut self, kind: u64, cgroups: &[Arc<str>]) -> Record {
        let body = match kind {
            0 => Body::Process {
                filename: self.opt(|r| r.bytes(40)),
                argv: self.argv(),
                state: self.opt(|r| char::from_u32(r.below(0x11_0000) as u32).unwrap_or('R')),
                argv_redacted: self.coin(),
            },
            1 => Body::Fork {
                parent_proc_id: self.opt(|r| {
                    let pid = r.u32();
                    r.proc_id(pid)
                }),
                thread: self.coin(),
                clone_flags: self.opt(Rng::u64),
            },
            2 => Body::Exec {
                filename: self.bytes(60),
                argv: self.argv(),
                argv_truncated: self.coin(),
                argv_redacted: self.coin(),
                old_tid: self.opt(Rng::u32),
            },
            3 => Body::ExecFailed {
                filename: self.bytes(40),
                errno: self.u32(),
            },
            4 => {
                // The kernel gives one or the other (or, unknown, neither).
                let (exit_code, signal) = match self.below(3) {
                    0 => (Some(self.u8()), None),
                    1 => (None, Some(self.u8())),
                    _ => (None, None),
                };
                Body::Exit {
                    exit_code,
                    signal,
                    core_dumped: self.coin(),
                    lifetime_ns: self.opt(Rng::u64),
                    thread: self.coin(),
                }
            }
            5 => Body::Reap {
                zombie_ns: self.opt(Rng::u64),
                reaper_pid: self.opt(Rng::u32),
                reaper_comm: self.opt(Rng::comm),
                autoreap: self.coin(),
                inferred: if self.coin() {
                    Some(crate::record::ReapWindow {
                        after_ns: self.opt(Rng::u64),
                        before_ns: self.u64(),
                    })
                } else {
                    None
                },
            },
            6 => Body::ForkFailed { errno: self.u32() },
            7 | 8 => {
                let mut a = self.alert();
                a.end = kind == 8;
                // A message of another form than the writer's is kept whole (and
                // `what` is then empty: the message holds it). One of the
                // writer's own form reads back as `what`: the two say the same.
                if self.below(4) == 0 {
                    a.what.clear();
                    a.message = Some([&b"by hand: "[..], &self.bytes(40)].concat());
                }
                Body::Alert(Box::new(a))
            }
            9 => Body::Lost {
                kind: self.name(),
                count: self.u64(),
            },
            _ => Body::End {
                reason: self.name(),
                records: (0..self.below(5))
                    .map(|_| (self.name(), self.u64()))
                    .collect(),
                lost: (0..self.below(5))
                    .map(|_| (self.name(), self.u64()))
                    .collect(),
                not_written: self.u64(),
            },
        };
        let subject = match body {
            Body::Lost { .. } | Body::End { .. } => None,
            _ => Some(self.subject(cgroups)),
        };
        Record {
            // Boot time up to ~30 years: `ts` stays a date.
            ktime_ns: self.below(1 << 60),
            subject,
            body,
            uncertain: self.coin(),
        }
    }
}

fn info() -> RunInfo {
    RunInfo {
        host: "web-\u{1}\"1".into(),
        boot_id: "8c0ffee0-0000-4000-8000-000000000001".into(),
        realtime_offset_ns: 1_795_000_000_000_000_000,
    }
}

fn write(records: &[Record]) -> Vec<u8> {
    let mut w = JsonlWriter::new(Vec::new(), info());
    for r in records {
        w.write(r).unwrap();
    }
    w.into_inner().unwrap()
}

/// Reads `bytes` back, in the order written (the reader orders by time).
fn read(bytes: &[u8]) -> Vec<Rec> {
    let r = reader::read_bytes(&[("roundtrip.jsonl", bytes)]).unwrap();
    assert_eq!(
        r.bad_total(),
        0,
        "lines the reader refused: {:?}",
        r.first_bad
    );
    let mut recs = r.records;
    recs.sort_by_key(|r| r.seq);
    recs
}

fn check_seed(seed: u64) {
    let mut rng = Rng(seed | 1);
    let cgroups: Vec<Arc<str>> = (0..4)
        .map(|i| Arc::from(format!("/system.slice/{}{i}.service", rng.text(10))))
        .chain([Arc::from("/")])
        .collect();
    let records: Vec<Record> = (0..11)
        .flat_map(|kind| (0..PER_KIND).map(move |_| kind))
        .map(|kind| rng.record(kind, &cgroups))
        .collect();
    let written = write(&records);
    let back = read(&written);
    assert_eq!(back.len(), records.len(), "seed {seed}");
    for (i, (got, want)) in back.iter().zip(&records).enumerate() {
        assert_eq!(got.seq, i as u64 + 1, "seed {seed}");
        assert_eq!(
            &got.record,
            want,
            "seed {seed}, line {}:\n{}",
            i + 1,
            String::from_utf8_lossy(written.split(|&b| b == b'\n').nth(i).unwrap())
        );
    }
    // And what was read writes the same bytes again.
    let again: Vec<Record> = back.into_iter().map(|r| r.record).collect();
    assert!(
        write(&again) == written,
        "seed {seed}: rewritten output differs"
    );
}

#[test]
fn every_record_kind_reads_back_as_written() {
    for seed in [1, 0x9e37_79b9_7f4a_7c15, 20_261_202] {
        check_seed(seed);
    }
}

/// The reader shares one path per distinct cgroup among records, as the agent's
/// resolver does.
#[test]
fn cgroup_paths_read_back_are_shared() {
    let mut rng = Rng(7);
    let cg: Arc<str> = Arc::from("/kubepods.slice/pod-1");
    let records: Vec<Record> = (0..3)
        .map(|_| {
            let mut r = rng.record(2, std::slice::from_ref(&cg));
            r.subject.as_mut().unwrap().cgroup = Some(Arc::clone(&cg));
            r
        })
        .collect();
    let back = read(&write(&records));
    let paths: Vec<&Arc<str>> = back
        .iter()
        .map(|r| r.record.subject.as_ref().unwrap().cgroup.as_ref().unwrap())
        .collect();
    assert_eq!(&**paths[0], "/kubepods.slice/pod-1");
    assert!(Arc::ptr_eq(paths[0], paths[1]) && Arc::ptr_eq(paths[1], paths[2]));
}
