//! The view's behaviour: records fold into the [`State`]; keys move, fold,
//! filter, sort, group and pause; a frame is drawn at most every
//! [`FRAME_EVERY`], on the pipeline's tick, never per record. The terminal
//! itself is [`super::term`]'s.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::rows::{self, Key, Options, Sort};
use super::state::{SPARK_SECS, State};
use super::term::Term;
use super::ui::{Look, Screen};
use crate::live::View;
use crate::record::Record;

/// At most 10 frames a second: enough to watch, cheap during a storm.
pub const FRAME_EVERY: Duration = Duration::from_millis(100);
/// With nothing new, a frame a second: the rates' second turns, ages grow.
const IDLE_FRAME_EVERY: Duration = Duration::from_secs(1);

/// What a key asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Redraw,
    Quit,
}

pub struct App {
    pub state: State,
    pub opts: Options,
    pub look: Look,
    /// The screen last built: what is shown, and what keys move over.
    pub screen: Screen,
    /// The row the selection is on, kept as rows move once the user has moved
    /// off the first line; until then the selection stays on the first line,
    /// where the busiest forker is.
    selected_key: Option<Key>,
    /// Rows the table shows (from the terminal's size).
    page: usize,
    term: Option<Term>,
    last_frame: Option<Instant>,
    /// Something to show since the last frame (a record, a key, a resize).
    dirty: bool,
}

impl App {
    pub fn new(color: bool, replay: Option<String>) -> App {
        App {
            state: State::default(),
            opts: Options::default(),
            look: Look {
                color,
                replay,
                sort: Sort::default().label(),
                ..Look::default()
            },
            screen: Screen::default(),
            selected_key: None,
            page: 10,
            term: None,
            last_frame: None,
            dirty: true,
        }
    }

    /// Rebuilds the screen from the state (not while paused), keeping the
    /// selection on the same row.
    pub fn refresh(&mut self) {
        if !self.look.paused {
            let st = &self.state;
            let now = st.now_ns;
            let rate = |b: &super::state::Buckets<SPARK_SECS>| {
                (
                    b.rate_1s(now),
                    b.rate_10s(now),
                    b.history(now, SPARK_SECS - 1),
                )
            };
            let (zombies, oldest) = st.zombies();
            self.screen = Screen {
                now_ns: now,
                rates: [rate(&st.forks), rate(&st.execs), rate(&st.exits)],
                alive: st.alive(),
                zombies,
                oldest_zombie_ns: oldest,
                lost: st.lost.clone(),
                active_alerts: st.active_alerts,
                rows: rows::rows(st, &self.opts),
                alerts: st.alerts.iter().cloned().collect(),
                tail: st.tail.iter().cloned().collect(),
            };
        }
        self.fix_selection();
    }

    fn fix_selection(&mut self) {
        let rows = &self.screen.rows;
        if self.look.selected > 0
            && let Some(k) = &self.selected_key
            && let Some(i) = rows.iter().position(|r| &r.key == k)
        {
            self.look.selected = i;
        }
        self.look.selected = self.look.selected.min(rows.len().saturating_sub(1));
        self.selected_key = rows.get(self.look.selected).map(|r| r.key.clone());
        let page = self.page.max(1);
        if self.look.selected < self.look.offset {
            self.look.offset = self.look.selected;
        } else if self.look.selected >= self.look.offset + page {
            self.look.offset = self.look.selected + 1 - page;
        }
    }

    fn select(&mut self, i: usize) {
        self.look.selected = i.min(self.screen.rows.len().saturating_sub(1));
        self.selected_key = self
            .screen
            .rows
            .get(self.look.selected)
            .map(|r| r.key.clone());
        self.fix_selection();
    }

    /// One key. Pure: the caller redraws.
    pub fn key(&mut self, k: KeyEvent) -> Action {
        if k.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            return Action::Quit;
        }
        if self.look.help {
            self.look.help = false;
            return Action::Redraw;
        }
        if self.look.editing {
            match k.code {
                KeyCode::Enter => self.look.editing = false,
                KeyCode::Esc => {
                    self.look.editing = false;
                    self.opts.filter.clear();
                }
                KeyCode::Backspace => {
                    self.opts.filter.pop();
                }
                KeyCode::Char(c) if !ctrl => self.opts.filter.push(c),
                _ => return Action::None,
            }
            self.look.filter.clone_from(&self.opts.filter);
            self.refresh_now();
            return Action::Redraw;
        }
        let sel = self.look.selected;
        match k.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Up | KeyCode::Char('k') => self.select(sel.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => self.select(sel + 1),
            KeyCode::PageUp => self.select(sel.saturating_sub(self.page)),
            KeyCode::PageDown => self.select(sel + self.page),
            KeyCode::Home => self.select(0),
            KeyCode::End => self.select(usize::MAX),
            KeyCode::Enter | KeyCode::Char(' ') => {
                match self.screen.rows.get(sel).map(|r| r.key.clone()) {
                    Some(Key::Proc(id)) => toggle(&mut self.opts.collapsed, id),
                    Some(Key::Fold(parent, name)) => {
                        toggle(&mut self.opts.unfolded, (parent, name))
                    }
                    Some(Key::Cgroup(path)) => {
                        toggle(&mut self.opts.collapsed, rows::cgroup_fold_id(&path))
                    }
                    None => return Action::None,
                }
                self.refresh_now();
            }
            KeyCode::Char('/') => {
                self.look.editing = true;
            }
            KeyCode::Esc => {
                self.opts.filter.clear();
                self.look.filter.clear();
                self.refresh_now();
            }
            KeyCode::Char('s') => {
                self.opts.sort = self.opts.sort.next();
                self.look.sort = self.opts.sort.label();
                self.refresh_now();
            }
            KeyCode::Char('g') => {
                self.opts.by_cgroup = !self.opts.by_cgroup;
                self.look.by_cgroup = self.opts.by_cgroup;
                self.refresh_now();
            }
            KeyCode::Char('p') => {
                self.look.paused = !self.look.paused;
                self.refresh();
            }
            KeyCode::Char('?') => self.look.help = true,
            _ => return Action::None,
        }
        Action::Redraw
    }

    /// A change the user made shows at once, even while paused.
    fn refresh_now(&mut self) {
        let paused = std::mem::replace(&mut self.look.paused, false);
        self.refresh();
        self.look.paused = paused;
    }

    /// Starts the terminal (on the first tick: so that a failing start-up prints
    /// its line on a normal screen).
    fn ensure_term(&mut self) -> std::io::Result<()> {
        if self.term.is_none() {
            let t = Term::enter()?;
            self.page = t.table_height();
            self.term = Some(t);
        }
        Ok(())
    }

    /// Reads pending keys without waiting, and draws a frame when one is due
    /// (or a key asked for it). Returns true to quit.
    pub fn step(&mut self, wait: Duration) -> bool {
        if self.ensure_term().is_err() {
            return true;
        }
        let mut first = true;
        // Waits (up to `wait`) for the first key only; then takes what is queued.
        while event::poll(if first { wait } else { Duration::ZERO }).unwrap_or(false) {
            first = false;
            // A key changes the screen at once; it shows with the next frame, so
            // frames stay at most 10 a second whatever is pressed or resized.
            match event::read() {
                Ok(Event::Key(k)) => {
                    if self.key(k) == Action::Quit {
                        return true;
                    }
                    self.dirty = true;
                }
                Ok(Event::Resize(..)) => self.dirty = true,
                _ => {}
            }
        }
        // A quiet machine is drawn once a second (rates and ages move on), a busy
        // one at most every FRAME_EVERY.
        let since = self.last_frame.map(|t| t.elapsed());
        if since.is_none_or(|e| e >= IDLE_FRAME_EVERY || (self.dirty && e >= FRAME_EVERY)) {
            self.dirty = false;
            self.refresh();
            self.last_frame = Some(Instant::now());
            if let Some(h) = self.term.as_ref().map(Term::table_height) {
                self.page = h;
                self.fix_selection();
            }
            if let Some(t) = self.term.as_mut()
                && t.draw(&self.screen, &self.look).is_err()
            {
                return true;
            }
        }
        false
    }
}

fn toggle<T: std::hash::Hash + Eq>(set: &mut std::collections::HashSet<T>, v: T) {
    if !set.remove(&v) {
        set.insert(v);
    }
}

impl View for App {
    fn record(&mut self, rec: &Record) {
        self.state.apply(rec);
        self.dirty = true;
    }

    fn tick(&mut self, now_ns: u64) -> bool {
        self.state.tick(now_ns);
        self.step(Duration::ZERO)
    }
}

/// Draws one frame of `app` into a test backend of `w`×`h`, as text lines.
#[cfg(test)]
pub fn render_text(app: &mut App, w: u16, h: u16) -> String {
    use super::ui;
    use ratatui::{Terminal, backend::TestBackend};
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("a test terminal");
    app.page = ui::table_height(ratatui::layout::Rect::new(0, 0, w, h));
    app.refresh();
    t.draw(|f| ui::draw(f, &app.screen, &app.look))
        .expect("drawn");
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
