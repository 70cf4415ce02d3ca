//! Fills [`tracer_common::Config`], the offsets the eBPF programs read kernel
//! memory and tracepoint records with, for the running kernel: struct layouts
//! from kernel BTF, syscall tracepoint layouts from tracefs format files.
//!
//! Besides each offset, the width of each member is checked against what the
//! eBPF programs read there, so a kernel that changed a type fails loudly at
//! load time instead of producing wrong events.

use std::path::Path;

use tracer_common::{COMM_LEN, Config};

use crate::btf::{Btf, BtfError};
use crate::tracefs::{self, Format, TracefsError};

/// Kernel pointers and `long`s as the eBPF programs read them: BPF registers are
/// 64-bit, so a 32-bit kernel's 4-byte pointers would be misread.
const WORD: u32 = 8;

/// `SIGNAL_GROUP_EXIT` in include/linux/sched/signal.h ("group exit in
/// progress", set by do_group_exit and zap_process). A `#define`, so it is not
/// in BTF; its value has been 0x4 since 2.6.
const SIGNAL_GROUP_EXIT: u32 = 0x4;

/// Offset of `si_pid` in the user-space `siginfo_t` that waitid fills
/// (include/uapi/asm-generic/siginfo.h): `int si_signo, si_errno, si_code`,
/// then `union __sifields`, aligned for the pointers it holds, whose `_kill`
/// arm starts with `si_pid`. So 16 on 64-bit, 12 on 32-bit. This is user ABI,
/// not kernel layout, and not in BTF. 32-bit (compat) callers on a 64-bit
/// kernel, whose siginfo differs, are not seen: syscall tracepoints skip compat
/// syscalls (ARCH_TRACE_IGNORE_COMPAT_SYSCALLS, trace_get_syscall_nr).
const SIGINFO_PID: u32 = {
    let header = 3 * size_of::<i32>();
    let align = align_of::<usize>();
    (header.div_ceil(align) * align) as u32
};

#[derive(Debug, thiserror::Error)]
pub enum KconfigError {
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("tracepoint {event}: {error}")]
    Field { event: String, error: TracefsError },
    #[error(
        "{object} is {actual} bytes on this kernel, but tracer reads {expected}: this kernel's layout is not supported"
    )]
    Width {
        object: String,
        actual: u32,
        expected: String,
    },
    #[error(
        "syscall exit tracepoints disagree on the offset of ret ({found}): tracer reads one offset for all of them"
    )]
    RetMismatch { found: String },
}

/// How wide a member must be for the eBPF programs' reads to be right.
#[derive(Clone, Copy)]
enum Width {
    Exact(u32),
    AtLeast(u32),
}

impl Width {
    fn check(self, object: impl FnOnce() -> String, actual: u32) -> Result<(), KconfigError> {
        let (ok, expected) = match self {
            Width::Exact(n) => (actual == n, n.to_string()),
            Width::AtLeast(n) => (actual >= n, format!("at least {n}")),
        };
        if ok {
            Ok(())
        } else {
            Err(KconfigError::Width {
                object: object(),
                actual,
                expected,
            })
        }
    }
}

/// Byte offset of `struct_name.path`, checking its width.
fn member(btf: &Btf, struct_name: &str, path: &str, width: Width) -> Result<u32, KconfigError> {
    let offset = btf.member_offset(struct_name, path)?;
    let size = btf.member_size(struct_name, path)?;
    width.check(|| format!("{struct_name}.{path}"), size)?;
    Ok(offset)
}

/// A syscall tracepoint's format, read from tracefs.
struct Tracepoint {
    event: String,
    format: Format,
}

impl Tracepoint {
    fn read(root: &Path, category: &str, event: &str) -> Result<Self, KconfigError> {
        Ok(Tracepoint {
            event: format!("{category}/{event}"),
            format: tracefs::read_format(root, category, event)?,
        })
    }

    /// Offset of field `name`, checking its width.
    fn field(&self, name: &str, width: Width) -> Result<u32, KconfigError> {
        let field = self
            .format
            .field(name)
            .map_err(|error| KconfigError::Field {
                event: self.event.clone(),
                error,
            })?;
        width.check(|| format!("{}.{name}", self.event), field.size)?;
        Ok(field.offset)
    }
}

/// Resolves every field of [`Config`] for the running kernel. `tracefs` is the
/// tracefs root (from [`tracefs::ensure_mounted`]); `threads` asks the programs
/// for per-thread fork/exit records too.
pub fn resolve(btf: &Btf, tracefs: &Path, threads: bool) -> Result<Config, KconfigError> {
    use Width::{AtLeast, Exact};
    let task = |path, width| member(btf, "task_struct", path, width);
    let signal = |path, width| member(btf, "signal_struct", path, width);

    let (subreaper_byte, subreaper_mask) =
        btf.bitfield_byte_mask("signal_struct", "is_child_subreaper")?;
    let k_sigaction_size = btf.struct_size("k_sigaction")?;
    // The programs index sighand->action[SIGCHLD - 1] (do_notify_parent's
    // autoreap test): the array must reach that far.
    let sighand_action = member(
        btf,
        "sighand_struct",
        "action",
        AtLeast(k_sigaction_size * libc::SIGCHLD as u32),
    )?;

    let syscall = |event| Tracepoint::read(tracefs, "syscalls", event);
    let enter_execve = syscall("sys_enter_execve")?;
    let enter_execveat = syscall("sys_enter_execveat")?;
    let enter_waitid = syscall("sys_enter_waitid")?;
    let sys_exit_ret = exit_ret_offset(&[
        syscall("sys_exit_wait4")?,
        syscall("sys_exit_waitid")?,
        syscall("sys_exit_execve")?,
        syscall("sys_exit_execveat")?,
        syscall("sys_exit_clone")?,
        syscall("sys_exit_clone3")?,
        syscall("sys_exit_fork")?,
        syscall("sys_exit_vfork")?,
    ])?;

    Ok(Config {
        task_pid: task("pid", Exact(4))?,
        task_tgid: task("tgid", Exact(4))?,
        task_real_parent: task("real_parent", Exact(WORD))?,
        task_group_leader: task("group_leader", Exact(WORD))?,
        task_start_boottime: task("start_boottime", Exact(8))?,
        task_comm: task("comm", AtLeast(COMM_LEN as u32))?,
        task_exit_code: task("exit_code", Exact(4))?,
        task_exit_signal: task("exit_signal", Exact(4))?,
        task_signal: task("signal", Exact(WORD))?,
        task_sighand: task("sighand", Exact(WORD))?,
        task_mm: task("mm", Exact(WORD))?,
        // atomic_t { int counter; }: the counter sits at the member's offset.
        signal_live: signal("live.counter", Exact(4))?,
        signal_flags: signal("flags", Exact(4))?,
        signal_group_exit_code: signal("group_exit_code", Exact(4))?,
        signal_subreaper_byte: subreaper_byte,
        signal_subreaper_mask: u32::from(subreaper_mask),
        sighand_action,
        k_sigaction_size,
        sigaction_handler: member(btf, "k_sigaction", "sa.sa_handler", Exact(WORD))?,
        sigaction_flags: member(btf, "k_sigaction", "sa.sa_flags", Exact(WORD))?,
        // Inside an anonymous struct in mm_struct since 4.19; member() descends.
        mm_arg_start: member(btf, "mm_struct", "arg_start", Exact(WORD))?,
        mm_arg_end: member(btf, "mm_struct", "arg_end", Exact(WORD))?,
        bprm_filename: member(btf, "linux_binprm", "filename", Exact(WORD))?,
        // Syscall tracepoint arguments are stored as unsigned long each
        // (syscall_enter_define_fields in kernel/trace/trace_syscalls.c).
        execve_filename: enter_execve.field("filename", Exact(WORD))?,
        execveat_filename: enter_execveat.field("filename", Exact(WORD))?,
        sys_exit_ret,
        waitid_infop: enter_waitid.field("infop", Exact(WORD))?,
        waitid_options: enter_waitid.field("options", AtLeast(4))?,
        siginfo_pid: SIGINFO_PID,
        // Set by the loader when it takes the fexit path (crate::hooks).
        regs_arg0: 0,
        regs_arg1: 0,
        waitid_info_pid: 0,
        signal_group_exit_flag: SIGNAL_GROUP_EXIT,
        threads: u32::from(threads),
        // A setting, not a layout: the loader sets it from the ring size.
        wakeup_bytes: 0,
        ready: 1,
        // A feature of the running kernel, not a layout: the loader probes it.
        task_btf: 0,
    })
}

/// One `ret` offset serves every syscall exit program, so all must agree.
fn exit_ret_offset(exits: &[Tracepoint]) -> Result<u32, KconfigError> {
    let offsets = exits
        .iter()
        .map(|t| t.field("ret", Width::Exact(WORD)))
        .collect::<Result<Vec<_>, _>>()?;
    if offsets.windows(2).all(|w| w[0] == w[1]) {
        Ok(offsets[0])
    } else {
        let found = exits
            .iter()
            .zip(&offsets)
            .map(|(t, o)| format!("{} at {o}", t.event))
            .collect::<Vec<_>>()
            .join(", ");
        Err(KconfigError::RetMismatch { found })
    }
}

/// A multi-line listing of a resolved [`Config`], for `-v` output.
pub fn describe(config: &Config) -> String {
    // Destructured so that a field added to Config cannot be left out here.
    let Config {
        task_pid,
        task_tgid,
        task_real_parent,
        task_group_leader,
        task_start_boottime,
        task_comm,
        task_exit_code,
        task_exit_signal,
        task_signal,
        task_sighand,
        task_mm,
        signal_live,
        signal_flags,
        signal_group_exit_code,
        signal_subreaper_byte,
        signal_subreaper_mask,
        sighand_action,
        k_sigaction_size,
        sigaction_handler,
        sigaction_flags,
        mm_arg_start,
        mm_arg_end,
        bprm_filename,
        execve_filename,
        execveat_filename,
        sys_exit_ret,
        waitid_infop,
        waitid_options,
        siginfo_pid,
        regs_arg0,
        regs_arg1,
        waitid_info_pid,
        signal_group_exit_flag,
        threads,
        wakeup_bytes,
        ready,
        task_btf,
    } = *config;
    [
        "kernel layout (byte offsets):".to_owned(),
        format!(
            "  task_struct: pid={task_pid} tgid={task_tgid} real_parent={task_real_parent} \
             group_leader={task_group_leader} start_boottime={task_start_boottime} comm={task_comm} \
             exit_code={task_exit_code} exit_signal={task_exit_signal} signal={task_signal} \
             sighand={task_sighand} mm={task_mm}"
        ),
        format!(
            "  signal_struct: live={signal_live} flags={signal_flags} \
             group_exit_code={signal_group_exit_code} \
             is_child_subreaper=byte {signal_subreaper_byte} mask {signal_subreaper_mask:#04x}"
        ),
        format!(
            "  sighand_struct: action={sighand_action}; k_sigaction: size={k_sigaction_size} \
             sa.sa_handler={sigaction_handler} sa.sa_flags={sigaction_flags}"
        ),
        format!("  mm_struct: arg_start={mm_arg_start} arg_end={mm_arg_end}"),
        format!("  linux_binprm: filename={bprm_filename}"),
        format!(
            "  syscall tracepoints: sys_enter_execve.filename={execve_filename} \
             sys_enter_execveat.filename={execveat_filename} sys_exit_*.ret={sys_exit_ret} \
             sys_enter_waitid.infop={waitid_infop} sys_enter_waitid.options={waitid_options}"
        ),
        format!(
            "  fexit: pt_regs args 0,1 = {regs_arg0},{regs_arg1} waitid_info.pid={waitid_info_pid}"
        ),
        format!(
            "  abi: siginfo_t.si_pid={siginfo_pid} SIGNAL_GROUP_EXIT={signal_group_exit_flag:#x}"
        ),
        format!("  settings: threads={threads} wakeup_bytes={wakeup_bytes} ready={ready}"),
        format!(
            "  programs: {}",
            if task_btf != 0 {
                "kernel memory read with BTF-checked loads (bpf_get_current_task_btf)"
            } else {
                "kernel memory read with bpf_probe_read_kernel (the path for kernels without bpf_get_current_task_btf)"
            }
        ),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::builder::{Builder, kind};
    use std::path::PathBuf;
    use std::sync::OnceLock;

    fn kernel() -> &'static Btf {
        static BTF: OnceLock<Btf> = OnceLock::new();
        BTF.get_or_init(|| Btf::from_sys_fs().expect("this machine has kernel BTF"))
    }

    #[test]
    fn resolves_running_kernel() {
        let btf = kernel();
        let root = tracefs::ensure_mounted().unwrap();
        let c = resolve(btf, &root, true).unwrap();
        assert_eq!((c.threads, c.ready), (1, 1));
        assert_eq!(resolve(btf, &root, false).unwrap().threads, 0);

        // Every struct offset, with its struct and width, lies inside the struct.
        let size = |s| btf.struct_size(s).unwrap();
        let in_struct = [
            ("task_struct", c.task_pid, 4),
            ("task_struct", c.task_tgid, 4),
            ("task_struct", c.task_real_parent, 8),
            ("task_struct", c.task_group_leader, 8),
            ("task_struct", c.task_start_boottime, 8),
            ("task_struct", c.task_comm, 16),
            ("task_struct", c.task_exit_code, 4),
            ("task_struct", c.task_exit_signal, 4),
            ("task_struct", c.task_signal, 8),
            ("task_struct", c.task_sighand, 8),
            ("task_struct", c.task_mm, 8),
            ("signal_struct", c.signal_live, 4),
            ("signal_struct", c.signal_flags, 4),
            ("signal_struct", c.signal_group_exit_code, 4),
            ("signal_struct", c.signal_subreaper_byte, 1),
            ("sighand_struct", c.sighand_action, c.k_sigaction_size),
            ("k_sigaction", c.sigaction_handler, 8),
            ("k_sigaction", c.sigaction_flags, 8),
            ("mm_struct", c.mm_arg_start, 8),
            ("mm_struct", c.mm_arg_end, 8),
            ("linux_binprm", c.bprm_filename, 8),
        ];
        for (s, offset, width) in in_struct {
            assert!(
                offset + width <= size(s),
                "{s} offset {offset} + {width} > {}",
                size(s)
            );
        }
        // None of these is the first member of its struct on any kernel.
        for offset in [
            c.task_pid,
            c.task_tgid,
            c.task_real_parent,
            c.task_group_leader,
            c.task_start_boottime,
            c.task_comm,
            c.task_exit_code,
            c.task_exit_signal,
            c.task_signal,
            c.task_sighand,
            c.task_mm,
            c.signal_live,
            c.signal_flags,
            c.signal_group_exit_code,
            c.sighand_action,
            c.k_sigaction_size,
            c.sigaction_flags,
            c.mm_arg_start,
            c.mm_arg_end,
            c.bprm_filename,
            c.execve_filename,
            c.execveat_filename,
            c.sys_exit_ret,
            c.waitid_infop,
            c.waitid_options,
            c.siginfo_pid,
        ] {
            assert_ne!(offset, 0, "{c:?}");
        }
        // Relations that hold on every kernel the tracer supports.
        assert_eq!(c.task_pid + 4, c.task_tgid);
        assert_eq!(c.mm_arg_start + 8, c.mm_arg_end);
        assert_eq!(c.task_exit_code + 4, c.task_exit_signal);
        assert_eq!(c.signal_subreaper_mask.count_ones(), 1);
        assert!(c.signal_subreaper_mask <= 0xff);
        // Syscall arguments are 8-byte slots after __syscall_nr (offset 8, padded):
        // execveat's filename is its second argument, waitid's infop the third.
        assert_eq!(c.execveat_filename, c.execve_filename + 8);
        assert_eq!(c.waitid_infop, c.execve_filename + 16);
        assert_eq!(c.waitid_options, c.waitid_infop + 8);
        assert_eq!(c.sys_exit_ret, c.execve_filename);
        if std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .starts_with("6.18.")
        {
            // Shared TOOLCHAIN.md, measured on this machine kind.
            assert_eq!(
                (c.task_pid, c.task_real_parent, c.task_exit_code),
                (1264, 1280, 1164)
            );
        }

        let text = describe(&c);
        assert!(
            text.contains(&format!("pid={} tgid={}", c.task_pid, c.task_tgid)),
            "{text}"
        );
        assert!(text.contains("SIGNAL_GROUP_EXIT=0x4"), "{text}");
        assert!(text.contains("threads=1 wakeup_bytes=0 ready=1"), "{text}");
    }

    #[test]
    fn siginfo_pid_matches_libc() {
        // Word i of the siginfo_t holds i; si_pid() then tells which word it reads.
        // SAFETY: siginfo_t is plain data, valid for any bytes.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let words = size_of::<libc::siginfo_t>() / 4;
        let p = (&raw mut si).cast::<i32>();
        for i in 0..words {
            // SAFETY: i < words keeps the write inside `si`.
            unsafe { p.add(i).write(i as i32) };
        }
        // SAFETY: reads the _kill arm of the union, initialised above.
        let word = unsafe { si.si_pid() };
        assert_eq!(word as u32 * 4, SIGINFO_PID);
    }

    /// A temporary tracefs-like tree holding the syscall formats resolve() reads.
    struct FakeTracefs(PathBuf);

    impl FakeTracefs {
        /// `ret_offsets` gives the `ret` offset of sys_exit_{wait4,waitid,execve,execveat}.
        fn new(tag: &str, ret_offsets: [u32; 4], skip: Option<&str>) -> Self {
            let root =
                std::env::temp_dir().join(format!("tracer-kconfig-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            let header = "format:\n\
                \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
                \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
                \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n";
            let args = |names: &[&str]| {
                let mut text = header.to_owned();
                for (i, n) in names.iter().enumerate() {
                    text += &format!(
                        "\tfield:long {n};\toffset:{};\tsize:8;\tsigned:0;\n",
                        16 + 8 * i
                    );
                }
                text
            };
            let ret = |offset: u32| {
                format!("{header}\tfield:long ret;\toffset:{offset};\tsize:8;\tsigned:1;\n")
            };
            let files = [
                ("sys_enter_execve", args(&["filename", "argv", "envp"])),
                (
                    "sys_enter_execveat",
                    args(&["fd", "filename", "argv", "envp", "flags"]),
                ),
                (
                    "sys_enter_waitid",
                    args(&["which", "upid", "infop", "options", "ru"]),
                ),
                ("sys_exit_wait4", ret(ret_offsets[0])),
                ("sys_exit_waitid", ret(ret_offsets[1])),
                ("sys_exit_execve", ret(ret_offsets[2])),
                ("sys_exit_execveat", ret(ret_offsets[3])),
                // The fork-family exits share the execveat offset in these fixtures.
                ("sys_exit_clone", ret(ret_offsets[3])),
                ("sys_exit_clone3", ret(ret_offsets[3])),
                ("sys_exit_fork", ret(ret_offsets[3])),
                ("sys_exit_vfork", ret(ret_offsets[3])),
            ];
            for (event, text) in files {
                if Some(event) == skip {
                    continue;
                }
                let dir = root.join("events/syscalls").join(event);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("format"), text).unwrap();
            }
            FakeTracefs(root)
        }
    }

    impl Drop for FakeTracefs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A kernel in miniature: every struct resolve() reads, with made-up offsets.
    /// `pid_size` lets a test give task_struct.pid a width the programs cannot read;
    /// `omit` leaves one task_struct member out.
    fn fake_kernel(pid_size: u32, omit: &str) -> Btf {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let long = b.int("long", 8);
        let ch = b.int("char", 1);
        let wide_pid = b.int("wide", pid_size);
        let void_ptr = b.ptr(0);
        let comm = b.array(ch, int, 16);
        let task_members: Vec<(&str, u32, u32, u32)> = [
            ("pid", wide_pid),
            ("tgid", int),
            ("real_parent", void_ptr),
            ("group_leader", void_ptr),
            ("start_boottime", long),
            ("comm", comm),
            ("exit_code", int),
            ("exit_signal", int),
            ("signal", void_ptr),
            ("sighand", void_ptr),
            ("mm", void_ptr),
        ]
        .into_iter()
        .filter(|(name, _)| *name != omit)
        .enumerate()
        .map(|(i, (name, ty))| (name, ty, 64 + 64 * i as u32, 0))
        .collect();
        b.composite(kind::STRUCT, "task_struct", 1024, false, &task_members);
        let atomic = b.composite(kind::STRUCT, "", 4, false, &[("counter", int, 0, 0)]);
        let atomic_t = b.modifier(kind::TYPEDEF, "atomic_t", atomic);
        let uint = b.int("unsigned int", 4);
        b.composite(
            kind::STRUCT,
            "signal_struct",
            64,
            true,
            &[
                ("live", atomic_t, 32, 0),
                ("flags", uint, 64, 0),
                ("group_exit_code", int, 96, 0),
                ("is_child_subreaper", uint, 130, 1),
            ],
        );
        let sigaction = b.composite(
            kind::STRUCT,
            "sigaction",
            32,
            false,
            &[("sa_handler", void_ptr, 0, 0), ("sa_flags", long, 64, 0)],
        );
        let k_sigaction = b.composite(
            kind::STRUCT,
            "k_sigaction",
            32,
            false,
            &[("sa", sigaction, 0, 0)],
        );
        let actions = b.array(k_sigaction, int, 64);
        b.composite(
            kind::STRUCT,
            "sighand_struct",
            2056,
            false,
            &[("action", actions, 64, 0)],
        );
        let inner = b.composite(
            kind::STRUCT,
            "",
            32,
            false,
            &[("arg_start", long, 128, 0), ("arg_end", long, 192, 0)],
        );
        b.composite(kind::STRUCT, "mm_struct", 32, false, &[("", inner, 0, 0)]);
        b.composite(
            kind::STRUCT,
            "linux_binprm",
            64,
            false,
            &[("filename", void_ptr, 256, 0)],
        );
        Btf::parse(&b.build()).unwrap()
    }

    #[test]
    fn resolves_a_fake_kernel() {
        let fs = FakeTracefs::new("ok", [16; 4], None);
        let c = resolve(&fake_kernel(4, ""), &fs.0, false).unwrap();
        let expected = Config {
            task_pid: 8,
            task_tgid: 16,
            task_real_parent: 24,
            task_group_leader: 32,
            task_start_boottime: 40,
            task_comm: 48,
            task_exit_code: 56,
            task_exit_signal: 64,
            task_signal: 72,
            task_sighand: 80,
            task_mm: 88,
            signal_live: 4,
            signal_flags: 8,
            signal_group_exit_code: 12,
            signal_subreaper_byte: 16,
            signal_subreaper_mask: 0x04,
            sighand_action: 8,
            k_sigaction_size: 32,
            sigaction_handler: 0,
            sigaction_flags: 8,
            mm_arg_start: 16,
            mm_arg_end: 24,
            bprm_filename: 32,
            execve_filename: 16,
            execveat_filename: 24,
            sys_exit_ret: 16,
            waitid_infop: 32,
            waitid_options: 40,
            siginfo_pid: 16,
            regs_arg0: 0,
            regs_arg1: 0,
            waitid_info_pid: 0,
            signal_group_exit_flag: 4,
            threads: 0,
            wakeup_bytes: 0,
            ready: 1,
            task_btf: 0,
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn fake_kernel_errors() {
        let fs = FakeTracefs::new("errors", [16; 4], None);
        let e = resolve(&fake_kernel(4, "start_boottime"), &fs.0, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task_struct has no member start_boottime in BTF data"
        );
        let e = resolve(&fake_kernel(8, ""), &fs.0, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task_struct.pid is 8 bytes on this kernel, but tracer reads 4: this kernel's layout is not supported"
        );
    }

    #[test]
    fn tracepoint_errors() {
        let btf = fake_kernel(4, "");
        let fs = FakeTracefs::new("ret", [16, 16, 24, 16], None);
        let e = resolve(&btf, &fs.0, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "syscall exit tracepoints disagree on the offset of ret (syscalls/sys_exit_wait4 at 16, \
             syscalls/sys_exit_waitid at 16, syscalls/sys_exit_execve at 24, \
             syscalls/sys_exit_execveat at 16, syscalls/sys_exit_clone at 16, \
             syscalls/sys_exit_clone3 at 16, syscalls/sys_exit_fork at 16, \
             syscalls/sys_exit_vfork at 16): tracer reads one offset for all of them"
        );
        drop(fs);

        let fs = FakeTracefs::new("missing", [16; 4], Some("sys_enter_execveat"));
        let e = resolve(&btf, &fs.0, false).unwrap_err();
        assert!(
            matches!(&e, KconfigError::Tracefs(TracefsError::NoEvent { event, .. }) if event == "sys_enter_execveat"),
            "{e}"
        );
        drop(fs);

        let fs = FakeTracefs::new("field", [16; 4], None);
        let waitid = fs.0.join("events/syscalls/sys_enter_waitid/format");
        let text = std::fs::read_to_string(&waitid)
            .unwrap()
            .replace("infop", "info");
        std::fs::write(&waitid, text).unwrap();
        let e = resolve(&btf, &fs.0, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("tracepoint syscalls/sys_enter_waitid: tracepoint format has no field infop (it has: "),
            "{e}"
        );
    }
}
