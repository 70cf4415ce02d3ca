//! A pseudo-terminal for the `top` conditions: `tracer top` refuses to run
//! without a terminal, and in a tmux pane it would not be the bench's child (whose
//! CPU time, RSS and exit the bench reads). Its screen is read and thrown away on
//! a thread, as a terminal would take it, so its writes never block.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use anyhow::{Result, bail};

/// The size the view is drawn at: a common terminal's.
const COLS: u16 = 120;
const ROWS: u16 = 40;

pub struct Pty {
    slave: OwnedFd,
}

impl Pty {
    pub fn open() -> Result<Pty> {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: out pointers to two ints; no name buffer; termios defaults.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        if r != 0 {
            bail!("openpty: {}", std::io::Error::last_os_error());
        }
        // SAFETY: openpty returned two open descriptors that nothing else owns.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut master = File::from(master);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1 << 16];
            // Ends with EIO once every descriptor of the slave side is closed.
            while matches!(master.read(&mut buf), Ok(n) if n > 0) {}
        });
        Ok(Pty { slave })
    }

    /// The terminal side, for the child's stdin or stdout.
    pub fn stdio(&self) -> Result<Stdio> {
        Ok(Stdio::from(self.slave.try_clone()?))
    }
}
