//! The terminal, taken and always given back: raw mode and the alternate screen
//! are left in `Drop` (on `q`, on an error, and when the run ends on SIGTERM or
//! SIGINT, which the pipeline handles) and by the panic hook that
//! `ratatui::try_init` installs, which restores first and then prints the panic.

use std::io;

use ratatui::{DefaultTerminal, layout::Rect};

use super::ui::{self, Look, Screen};

pub struct Term {
    t: DefaultTerminal,
}

impl Term {
    pub fn enter() -> io::Result<Term> {
        Ok(Term {
            t: ratatui::try_init()?,
        })
    }

    pub fn table_height(&self) -> usize {
        let size = self.t.size().unwrap_or_default();
        ui::table_height(Rect::new(0, 0, size.width, size.height))
    }

    pub fn draw(&mut self, s: &Screen, look: &Look) -> io::Result<()> {
        self.t.draw(|f| ui::draw(f, s, look)).map(|_| ())
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        // Nothing to do if even that fails: the shell's `reset` is the way out.
        let _ = self.t.show_cursor();
        let _ = ratatui::try_restore();
    }
}
