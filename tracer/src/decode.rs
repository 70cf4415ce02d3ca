//! Decoding of ring-buffer records: the one place kernel bytes become [`Event`]s.
//!
//! Every record is length-checked against its kind before it is read, and read
//! with `read_unaligned` into an owned value, so nothing borrows the ring buffer
//! after the item is released.

use std::mem::size_of;

use tracer_common::{
    ARGV_LEN, ExecEvent, ExecFailedEvent, ExitEvent, FILENAME_LEN, ForkEvent, ForkFailedEvent,
    FreeEvent, Header, WaitEvent, exec_flags, exit_flags, header_flags, kind,
};

use crate::event::{Comm, Event, EventKind, Exec, ExecFailed, Exit, Fork, ForkFailed, Task, Wait};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("ring buffer record of {len} bytes is shorter than a header ({need} bytes)")]
    TooShortForHeader { len: usize, need: usize },
    #[error("ring buffer record of kind {kind} ({name}) has {len} bytes, needs at least {need}")]
    TooShort {
        kind: u32,
        name: &'static str,
        len: usize,
        need: usize,
    },
    #[error("ring buffer record has unknown kind {0}: the eBPF object and the agent do not match")]
    UnknownKind(u32),
    #[error("exec record claims {claimed} argument bytes but carries {carried}")]
    BadArgvLength { claimed: usize, carried: usize },
}

/// Reads a `T` from the start of `bytes`, which the caller checked is long enough.
fn read<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= size_of::<T>());
    // SAFETY: length checked above; T is a plain-data wire struct from
    // tracer-common (integers and byte arrays), valid for any bit pattern.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}

fn need<T>(bytes: &[u8], k: u32) -> Result<(), DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::TooShort {
            kind: k,
            name: kind::name(k),
            len: bytes.len(),
            need: size_of::<T>(),
        });
    }
    Ok(())
}

fn task(h: &Header) -> Task {
    Task {
        pid: h.pid,
        tid: h.tid,
        ppid: h.ppid,
        start_ns: h.start_ns,
        uid: h.uid,
        cgroup_id: h.cgroup_id,
        comm: Comm(h.comm),
        subreaper: h.flags & header_flags::SUBREAPER != 0,
    }
}

/// The bytes before the first NUL, at most `len` of them.
fn cstr(buf: &[u8], len: u32) -> Vec<u8> {
    let buf = &buf[..(len as usize).min(buf.len())];
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf[..end].to_vec()
}

/// Splits the argument area (NUL-terminated strings laid end to end, as
/// fs/exec.c copy_strings left them) into arguments. A cut-off last argument is
/// kept as far as it goes.
pub fn split_argv(area: &[u8]) -> Vec<Vec<u8>> {
    let area = area.strip_suffix(&[0]).unwrap_or(area);
    if area.is_empty() {
        return Vec::new();
    }
    area.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    if bytes.len() < size_of::<Header>() {
        return Err(DecodeError::TooShortForHeader {
            len: bytes.len(),
            need: size_of::<Header>(),
        });
    }
    let h: Header = read(bytes);
    let kind = match h.kind {
        kind::FORK => {
            need::<ForkEvent>(bytes, h.kind)?;
            let e: ForkEvent = read(bytes);
            EventKind::Fork(Fork {
                clone_flags: e.clone_flags,
                parent_start_ns: e.parent_start_ns,
                creator_pid: e.creator_pid,
                creator_tid: e.creator_tid,
            })
        }
        kind::EXEC => {
            need::<ExecEvent>(bytes, h.kind)?;
            let e: ExecEvent = read(bytes);
            let carried = bytes.len() - size_of::<ExecEvent>();
            let claimed = e.argv_len as usize;
            if claimed > carried || claimed > ARGV_LEN {
                return Err(DecodeError::BadArgvLength { claimed, carried });
            }
            let area = &bytes[size_of::<ExecEvent>()..size_of::<ExecEvent>() + claimed];
            EventKind::Exec(Exec {
                old_tid: e.old_tid,
                filename: cstr(&e.filename, e.filename_len.min(FILENAME_LEN as u32)),
                argv: split_argv(area),
                argv_truncated: e.flags & exec_flags::ARGV_TRUNCATED != 0,
            })
        }
        kind::EXEC_FAILED => {
            need::<ExecFailedEvent>(bytes, h.kind)?;
            let e: ExecFailedEvent = read(bytes);
            EventKind::ExecFailed(ExecFailed {
                filename: cstr(&e.filename, e.filename_len.min(FILENAME_LEN as u32)),
                errno: e.errno,
            })
        }
        kind::EXIT => {
            need::<ExitEvent>(bytes, h.kind)?;
            let e: ExitEvent = read(bytes);
            EventKind::Exit(Exit {
                status: e.status,
                group_dead: e.flags & exit_flags::GROUP_DEAD != 0,
                autoreap: e.flags & exit_flags::AUTOREAP != 0,
            })
        }
        kind::WAIT => {
            need::<WaitEvent>(bytes, h.kind)?;
            let e: WaitEvent = read(bytes);
            EventKind::Wait(Wait {
                child_pid: e.child_pid,
                options: e.options,
            })
        }
        kind::FREE => {
            need::<FreeEvent>(bytes, h.kind)?;
            EventKind::Free
        }
        kind::FORK_FAILED => {
            need::<ForkFailedEvent>(bytes, h.kind)?;
            let e: ForkFailedEvent = read(bytes);
            EventKind::ForkFailed(ForkFailed { errno: e.errno })
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Event {
        ktime_ns: h.ktime_ns,
        task: task(&h),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: wire structs are plain data without padding.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()).to_vec() }
    }

    fn header(k: u32) -> Header {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"bash");
        Header {
            ktime_ns: 5,
            start_ns: 7,
            cgroup_id: 9,
            kind: k,
            pid: 100,
            tid: 101,
            ppid: 1,
            uid: 1000,
            flags: header_flags::SUBREAPER,
            comm,
        }
    }

    #[test]
    fn fork_round_trip() {
        let e = ForkEvent {
            header: header(kind::FORK),
            clone_flags: 0x11,
            parent_start_ns: 3,
            creator_pid: 1,
            creator_tid: 2,
        };
        let ev = decode(&bytes_of(&e)).unwrap();
        assert_eq!(ev.ktime_ns, 5);
        assert_eq!(ev.task.pid, 100);
        assert_eq!(ev.task.tid, 101);
        assert_eq!(ev.task.comm.as_bytes(), b"bash");
        assert!(ev.task.subreaper);
        assert_eq!(
            ev.kind,
            EventKind::Fork(Fork {
                clone_flags: 0x11,
                parent_start_ns: 3,
                creator_pid: 1,
                creator_tid: 2
            })
        );
    }

    fn exec_bytes(area: &[u8], argv_len: u32, flags: u32) -> Vec<u8> {
        let mut filename = [0u8; FILENAME_LEN];
        filename[..8].copy_from_slice(b"/bin/ls\0");
        let e = ExecEvent {
            header: header(kind::EXEC),
            old_tid: 101,
            flags,
            argv_len,
            filename_len: 7,
            filename,
        };
        let mut b = bytes_of(&e);
        b.extend_from_slice(area);
        b
    }

    #[test]
    fn exec_splits_argv_and_keeps_a_cut_last_argument() {
        let ev = decode(&exec_bytes(b"ls\0-la\0/tm", 10, exec_flags::ARGV_TRUNCATED)).unwrap();
        let EventKind::Exec(x) = ev.kind else {
            panic!("not exec: {ev:?}")
        };
        assert_eq!(x.filename, b"/bin/ls");
        assert_eq!(
            x.argv,
            vec![b"ls".to_vec(), b"-la".to_vec(), b"/tm".to_vec()]
        );
        assert!(x.argv_truncated);
    }

    #[test]
    fn exec_keeps_empty_arguments() {
        let ev = decode(&exec_bytes(b"a\0\0b\0", 5, 0)).unwrap();
        let EventKind::Exec(x) = ev.kind else {
            panic!()
        };
        assert_eq!(x.argv, vec![b"a".to_vec(), b"".to_vec(), b"b".to_vec()]);
        assert!(!x.argv_truncated);
    }

    #[test]
    fn exec_with_argv_length_beyond_record_is_rejected() {
        let err = decode(&exec_bytes(b"ls\0", 100, 0)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::BadArgvLength {
                claimed: 100,
                carried: 3
            }
        );
    }

    #[test]
    fn short_and_unknown_records_are_rejected() {
        assert!(matches!(
            decode(&[0u8; 10]),
            Err(DecodeError::TooShortForHeader { len: 10, .. })
        ));
        let b = bytes_of(&header(kind::EXIT));
        assert!(matches!(
            decode(&b),
            Err(DecodeError::TooShort {
                kind: kind::EXIT,
                ..
            })
        ));
        let b = bytes_of(&header(99));
        assert_eq!(decode(&b).unwrap_err(), DecodeError::UnknownKind(99));
    }

    #[test]
    fn exit_flags_decode() {
        let e = ExitEvent {
            header: header(kind::EXIT),
            status: 9,
            flags: exit_flags::GROUP_DEAD | exit_flags::AUTOREAP,
        };
        let EventKind::Exit(x) = decode(&bytes_of(&e)).unwrap().kind else {
            panic!()
        };
        assert_eq!(
            x,
            Exit {
                status: 9,
                group_dead: true,
                autoreap: true
            }
        );
    }

    #[test]
    fn failed_exec_and_wait_and_free_decode() {
        let mut filename = [0u8; FILENAME_LEN];
        filename[..3].copy_from_slice(b"/no");
        let e = ExecFailedEvent {
            header: header(kind::EXEC_FAILED),
            errno: 2,
            filename_len: 3,
            filename,
        };
        let EventKind::ExecFailed(x) = decode(&bytes_of(&e)).unwrap().kind else {
            panic!()
        };
        assert_eq!(
            x,
            ExecFailed {
                filename: b"/no".to_vec(),
                errno: 2
            }
        );
        let w = WaitEvent {
            header: header(kind::WAIT),
            child_pid: 55,
            syscall: 1,
            ..Default::default()
        };
        assert_eq!(
            decode(&bytes_of(&w)).unwrap().kind,
            EventKind::Wait(Wait {
                child_pid: 55,
                options: 0
            })
        );
        let f = FreeEvent {
            header: header(kind::FREE),
        };
        assert_eq!(decode(&bytes_of(&f)).unwrap().kind, EventKind::Free);
    }
}
