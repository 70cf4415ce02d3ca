//! `cargo xtask run -- ARGS`: build, then run the agent as root.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::{Result, bail};

use crate::{build, cmd, ebpf, setup};

/// Builds the agent, mounts tracefs if needed and runs `tracer ARGS`, through
/// `sudo -E` when not root. Returns the agent's exit code.
pub fn run(release: bool, args: &[String]) -> Result<ExitCode> {
    // Known before building, so a run that cannot work fails before minutes of building.
    let sudo = if cmd::is_root() {
        None
    } else {
        match cmd::find_in_path("sudo", &cmd::tool_path()) {
            Some(sudo) => Some(sudo),
            None => bail!(
                "tracer loads eBPF programs and needs root, and sudo is not installed: run as root"
            ),
        }
    };
    let object = ebpf::build()?;
    build::agent(release, &object, &["tracer"])?;
    setup::tracefs(sudo.is_some())?;
    let binary = build::binary(release);
    let mut tracer = match sudo {
        Some(sudo) => {
            let mut command = Command::new(sudo);
            command.arg("-E").arg(&binary);
            command
        }
        None => Command::new(&binary),
    };
    tracer.args(args);
    forward_interrupts();
    let status = cmd::status(&mut tracer)?;
    Ok(exit_code(status))
}

/// Ctrl-C reaches the whole foreground process group: tracer stops cleanly on it,
/// and xtask must outlive it to pass on its exit code. A do-nothing handler (unlike
/// SIG_IGN) is reset to the default in the exec'd child, so tracer still gets the signal.
fn forward_interrupts() {
    extern "C" fn wait_for_child(_signal: libc::c_int) {}
    let handler = wait_for_child as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT] {
        // SAFETY: the handler is async-signal-safe (it does nothing).
        unsafe { libc::signal(signal, handler) };
    }
}

/// The child's exit code; 128 + signal number when a signal ended it, as a shell reports it.
fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(255)),
        (None, None) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_on_exit_codes_and_signals_like_a_shell() {
        // Wait statuses as waitpid reports them: code << 8 for an exit, the signal number for a kill.
        assert_eq!(exit_code(ExitStatus::from_raw(0)), ExitCode::SUCCESS);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), ExitCode::from(3));
        assert_eq!(
            exit_code(ExitStatus::from_raw(libc::SIGINT)),
            ExitCode::from(130)
        );
        assert_eq!(
            exit_code(ExitStatus::from_raw(libc::SIGKILL)),
            ExitCode::from(137)
        );
    }
}
