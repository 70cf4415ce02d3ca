//! Which hooks report reaps, failed execs and failed forks: fexit programs on
//! kernel functions where the kernel runs BPF trampolines, else syscall
//! tracepoints.
//!
//! Any syscall tracepoint, once attached, sends every syscall of every task
//! through the slow syscall entry and exit path (kernel/entry/common.c
//! syscall_trace_enter, set by SYSCALL_WORK_SYSCALL_TRACEPOINT for all tasks in
//! kernel/tracepoint.c syscall_regfunc). A trampoline costs only the calls of the
//! function it is on. So the loader checks here that every function is in the
//! running kernel's BTF with the parameters the programs read (a function
//! inlined in a build has no BTF entry and cannot be attached), then tries to
//! load and attach them; where either fails it uses the tracepoints, and says so.
//!
//! The functions are the ones present in both Debian's 6.1 and the 6.18 BTF
//! (checked in each kernel's BTF strings): kernel_wait4, kernel_waitid,
//! kernel_clone, `__x64_sys_execve{,at}`. wait_task_zombie and
//! do_execveat_common, the more direct choices, are inlined in both (no BTF entry).

use crate::btf::{Btf, BtfError};

/// The path taken, named in the `meta` record (`hooks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// fexit programs on kernel functions (BPF trampolines).
    Fexit,
    /// Tracepoints of the `syscalls` category.
    SyscallTracepoints,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Fexit => "fexit",
            Path::SyscallTracepoints => "syscall_tracepoints",
        }
    }
}

/// The syscall wrappers' prefix and the `struct pt_regs` members holding a
/// syscall's first two arguments (arch/x86/include/asm/syscall_wrapper.h,
/// arch/x86/entry/calling.h); other architectures use the tracepoint path.
#[cfg(target_arch = "x86_64")]
const SYSCALL_ABI: Option<(&str, [&str; 2])> = Some(("__x64_sys_", ["di", "si"]));
#[cfg(not(target_arch = "x86_64"))]
const SYSCALL_ABI: Option<(&str, [&str; 2])> = None;

/// One fexit program: its name in the object, the kernel function it goes on,
/// and that function's parameter names in order (the program reads arguments
/// by position, and the return value from the slot after the last).
pub struct Fexit {
    pub program: &'static str,
    pub function: String,
    params: &'static [&'static str],
}

/// The fexit programs, in the order they are loaded.
pub fn fexit_programs() -> Vec<Fexit> {
    let sys = SYSCALL_ABI.map_or("__unsupported_sys_", |(prefix, _)| prefix);
    vec![
        // kernel/exit.c
        Fexit {
            program: "fexit_kernel_wait4",
            function: "kernel_wait4".into(),
            params: &["upid", "stat_addr", "options", "ru"],
        },
        Fexit {
            program: "fexit_kernel_waitid",
            function: "kernel_waitid".into(),
            params: &["which", "upid", "infop", "options", "ru"],
        },
        // kernel/fork.c
        Fexit {
            program: "fexit_kernel_clone",
            function: "kernel_clone".into(),
            params: &["args"],
        },
        // fs/exec.c SYSCALL_DEFINE3(execve) / SYSCALL_DEFINE5(execveat)
        Fexit {
            program: "fexit_sys_execve",
            function: format!("{sys}execve"),
            params: &["regs"],
        },
        Fexit {
            program: "fexit_sys_execveat",
            function: format!("{sys}execveat"),
            params: &["regs"],
        },
    ]
}

/// The names of the fexit programs.
pub const FEXIT_PROGRAMS: &[&str] = &[
    "fexit_kernel_wait4",
    "fexit_kernel_waitid",
    "fexit_kernel_clone",
    "fexit_sys_execve",
    "fexit_sys_execveat",
];

/// What the fexit programs need from the kernel's BTF.
pub struct Plan {
    pub programs: Vec<Fexit>,
    /// `pt_regs` offsets of a syscall's first and second argument.
    pub regs_arg: [u32; 2],
    /// `struct waitid_info.pid`.
    pub waitid_info_pid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("fexit on syscall functions is only set up for x86_64")]
    Arch,
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error(
        "{function} has parameters ({found}) in this kernel, not ({expected}) as the program reads them"
    )]
    Params {
        function: String,
        found: String,
        expected: String,
    },
}

/// Checks every function and offset the fexit programs need in `btf`.
pub fn plan(btf: &Btf) -> Result<Plan, PlanError> {
    let (_, regs) = SYSCALL_ABI.ok_or(PlanError::Arch)?;
    let programs = fexit_programs();
    for p in &programs {
        let found = btf.func_params(&p.function)?;
        // A syscall wrapper's one parameter is named `regs` or `__unused` (the
        // latter where it does not use them itself); it is the pt_regs either way.
        let same = found.len() == p.params.len()
            && found
                .iter()
                .zip(p.params)
                .all(|(f, &want)| f == want || want == "regs");
        if !same {
            return Err(PlanError::Params {
                function: p.function.clone(),
                found: found.join(", "),
                expected: p.params.join(", "),
            });
        }
    }
    Ok(Plan {
        programs,
        regs_arg: [
            btf.member_offset("pt_regs", regs[0])?,
            btf.member_offset("pt_regs", regs[1])?,
        ],
        waitid_info_pid: btf.member_offset("waitid_info", "pid")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the running kernel every function is found with the parameters the
    /// programs read, whether or not this kernel then allows trampolines.
    #[test]
    fn plan_holds_on_the_running_kernel() {
        let btf = Btf::from_sys_fs().expect("this machine has kernel BTF");
        let plan = plan(&btf).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = plan.programs.iter().map(|p| p.program).collect();
        assert_eq!(names, FEXIT_PROGRAMS);
        // struct waitid_info { pid_t pid; .. } (kernel/exit.h).
        assert_eq!(plan.waitid_info_pid, 0);
        // x86_64 struct pt_regs (arch/x86/include/asm/ptrace.h): .., dx, si, di, ..
        assert_eq!(plan.regs_arg[0], plan.regs_arg[1] + 8);
    }
}
