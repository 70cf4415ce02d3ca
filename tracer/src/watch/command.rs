//! `watch -- COMMAND`: running the command and reaping its process tree.

use std::{
    ffi::{OsStr, OsString},
    io,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::error::Exit;

/// The search path when PATH is unset, as glibc's execvp uses (posix/execvpe.c).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Finds the file `prog` names as execvp(3) would: as given if it holds a `/`,
/// else in the directories of `path`, the first executable regular file winning.
/// Resolving here, before the fork, keeps tracer's own PATH search out of the
/// recording (each miss of execvp in the child would be an `exec_failed`), and
/// tells a missing command (127) from one that cannot be run (126), as env and
/// shells do.
pub fn resolve(prog: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, Exit> {
    let name = Path::new(prog).display().to_string();
    let not_executable = |p: &Path| Exit {
        code: Exit::NOT_EXECUTABLE,
        message: format!(
            "cannot run {}: it is {}: give a program (chmod +x it if it is one)",
            p.display(),
            if p.is_dir() {
                "a directory"
            } else {
                "not executable"
            }
        ),
    };
    if prog.is_empty() {
        return Err(Exit::usage("the command after -- is empty: give a program"));
    }
    if prog.as_bytes().contains(&b'/') {
        let p = Path::new(prog);
        return match std::fs::metadata(p) {
            Err(_) => Err(Exit {
                code: Exit::NOT_FOUND,
                message: format!("cannot run {name}: no such file"),
            }),
            Ok(m) if is_executable(&m) => Ok(p.to_path_buf()),
            Ok(_) => Err(not_executable(p)),
        };
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut found_but_not_executable = None;
    for dir in path.as_bytes().split(|&b| b == b':') {
        // An empty entry is the current directory (execvp does the same).
        let dir = if dir.is_empty() { b"." } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(prog);
        match std::fs::metadata(&candidate) {
            Ok(m) if is_executable(&m) => return Ok(candidate),
            Ok(_) => {
                found_but_not_executable.get_or_insert(candidate);
            }
            Err(_) => {}
        }
    }
    Err(match found_but_not_executable {
        Some(p) => not_executable(&p),
        None => Exit {
            code: Exit::NOT_FOUND,
            message: format!(
                "cannot run {name}: command not found in PATH: check the name, or give its path"
            ),
        },
    })
}

/// A regular file with an execute bit. (Root may run a file with any x bit;
/// access(X_OK) would say the same for root and more for ACLs, but a file with no
/// x bit at all is refused by execve even to root: fs/exec.c do_open_execat.)
fn is_executable(m: &std::fs::Metadata) -> bool {
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

/// The command tracer started, and how it ended.
pub struct Spawned {
    pub pid: u32,
    /// Wait status once reaped.
    pub status: Option<i32>,
    /// waitpid(-1) said there are no children left: the command and every orphan
    /// of its tree (all reparented to us, the subreaper) are gone.
    pub tree_gone: bool,
}

/// Makes this process the child subreaper of everything it starts, then starts
/// `argv`. Orphans of the command's tree are then reparented to tracer rather
/// than to init (kernel/exit.c find_new_reaper), so tracer can tell when the
/// last of them is gone and they are reaped even where pid 1 does not reap.
/// `file` is `argv[0]` resolved ([`resolve`]).
pub fn spawn(argv: &[OsString], file: &Path) -> anyhow::Result<Spawned> {
    let Some((prog, args)) = argv.split_first() else {
        bail!("no command given after --")
    };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error()).context("prctl(PR_SET_CHILD_SUBREAPER)");
    }
    let mut cmd = Command::new(file);
    // argv[0] stays as typed; the file is the one found on PATH.
    cmd.arg0(prog).args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // The child should get default SIGINT/SIGTERM handling, not tokio's.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        // Found and executable, yet refused: not a program for this machine (ENOEXEC),
        // or it went away meanwhile.
        let code = match e.kind() {
            io::ErrorKind::NotFound => Exit::NOT_FOUND,
            _ => Exit::NOT_EXECUTABLE,
        };
        Exit {
            code,
            message: format!("cannot run {}: {e}", file.display()),
        }
    })?;
    let pid = child.id();
    // We reap by waitpid(-1) ourselves (see `reap`); the std handle is not needed.
    drop(child);
    Ok(Spawned {
        pid,
        status: None,
        tree_gone: false,
    })
}

impl Spawned {
    /// Reaps every child that has ended (the command and adopted orphans), without
    /// blocking. Each reap is also seen by the kernel programs as a wait4.
    pub fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: plain syscall with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                if pid as u32 == self.pid {
                    self.status = Some(status);
                }
                continue;
            }
            if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                self.tree_gone = true;
            }
            return;
        }
    }

    /// The command was reaped, killed by `sig`.
    pub fn killed_by(&self, sig: i32) -> bool {
        self.status
            .is_some_and(|s| libc::WIFSIGNALED(s) && libc::WTERMSIG(s) == sig)
    }

    /// tracer's exit code for the command's wait status: its code, or 128 + signal as shells do.
    pub fn exit_code(&self) -> Option<u8> {
        let s = self.status?;
        if libc::WIFEXITED(s) {
            Some(libc::WEXITSTATUS(s) as u8)
        } else if libc::WIFSIGNALED(s) {
            Some(128u8.wrapping_add(libc::WTERMSIG(s) as u8))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_finds_programs_as_execvp_does() {
        let d = std::env::temp_dir().join(format!("tracer-resolve-{}", std::process::id()));
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let write = |p: &Path, mode: u32| {
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        // A non-executable `tool` first on PATH, an executable one later: the later wins.
        write(&a.join("tool"), 0o644);
        write(&b.join("tool"), 0o755);
        write(&a.join("plain"), 0o644);
        std::fs::create_dir_all(b.join("dir")).unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        let path = Some(path.as_os_str());
        assert_eq!(resolve(OsStr::new("tool"), path).unwrap(), b.join("tool"));
        let e = resolve(OsStr::new("plain"), path).unwrap_err();
        assert_eq!(e.code, 126, "{}", e.message);
        assert!(e.message.contains("not executable"), "{}", e.message);
        let e = resolve(OsStr::new("dir"), path).unwrap_err();
        assert_eq!(e.code, 126, "{}", e.message);
        let e = resolve(OsStr::new("no-such-tool"), path).unwrap_err();
        assert_eq!(e.code, 127, "{}", e.message);
        assert!(e.message.contains("not found"), "{}", e.message);
        // With a slash, the path as given.
        let given = a.join("plain");
        assert_eq!(resolve(given.as_os_str(), path).unwrap_err().code, 126);
        let given = b.join("tool");
        assert_eq!(resolve(given.as_os_str(), None).unwrap(), given);
        assert_eq!(resolve(OsStr::new("./nope"), path).unwrap_err().code, 127);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
