//! Drawing one frame of `tracer top` from a [`Screen`]: the header (rates with
//! their 60 s sparkline, processes, zombies, lost events), the process table, the
//! alerts and the last events, and the key line. No state of its own.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
};

use super::rows::Row;
use super::state::{AlertLine, SPARK_SECS};
use crate::record::{Body, Record};
use crate::units::{duration, thousands};

/// Everything one frame shows (kept as it was while paused).
#[derive(Clone, Debug, Default)]
pub struct Screen {
    pub now_ns: u64,
    /// Forks, execs and exits: last full second, mean of the last 10, and the
    /// last 60 seconds, oldest first.
    pub rates: [(u64, u64, Vec<u64>); 3],
    pub alive: u64,
    pub zombies: u64,
    pub oldest_zombie_ns: Option<u64>,
    pub lost: Vec<(String, u64)>,
    pub active_alerts: u64,
    pub rows: Vec<Row>,
    pub alerts: Vec<AlertLine>,
    pub tail: Vec<Record>,
}

/// How the user is looking at it.
#[derive(Clone, Debug, Default)]
pub struct Look {
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
    pub sort: &'static str,
    pub by_cgroup: bool,
    pub filter: String,
    /// Typing a filter after `/`.
    pub editing: bool,
    pub paused: bool,
    pub help: bool,
    /// NO_COLOR unset: colours; else only bold and reverse.
    pub color: bool,
    /// A replay: its title (the file and speed).
    pub replay: Option<String>,
}

/// Rows of the table visible in an area of `height` lines (less its header line).
pub fn table_height(total: Rect) -> usize {
    let [_, _, table, _, _] = areas(total, false);
    table.height.saturating_sub(1) as usize
}

fn areas(area: Rect, banner: bool) -> [Rect; 5] {
    let bottom = if area.height >= 30 { 9 } else { 6 };
    Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(u16::from(banner)),
        Constraint::Min(3),
        Constraint::Length(bottom),
        Constraint::Length(1),
    ])
    .areas(area)
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per second, scaled to the largest.
pub fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                SPARKS[((v * 7).div_ceil(max) as usize).min(7)]
            }
        })
        .collect()
}

/// An age to a tenth of a second (`<0.1s` below).
fn age(ns: u64) -> String {
    if ns < 100_000_000 {
        return "<0.1s".to_string();
    }
    duration(ns - ns % 100_000_000)
}

pub fn draw(f: &mut Frame, s: &Screen, look: &Look) {
    let area = f.area();
    let lost: u64 = s.lost.iter().map(|(_, n)| n).sum();
    let [head, banner, table, bottom, keys] = areas(area, lost > 0);
    let st = |c: Color| {
        if look.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);

    // Header.
    let mut lines = Vec::new();
    for (i, name) in ["forks/s", "execs/s", "exits/s"].iter().enumerate() {
        let (now, ten, hist) = &s.rates[i];
        let text = format!(
            "{name:<8}{:>8}  10s {:>8}  ",
            thousands(*now),
            thousands(*ten)
        );
        let room = (head.width as usize).saturating_sub(text.chars().count() + 6);
        let hist = &hist[hist.len().saturating_sub(room.min(SPARK_SECS - 1))..];
        lines.push(Line::from(vec![
            Span::styled(text, bold),
            Span::styled(sparkline(hist), st(Color::Cyan)),
            Span::raw(if hist.is_empty() { "" } else { " 60s" }),
        ]));
    }
    let zombies = match s.oldest_zombie_ns {
        Some(a) if s.zombies > 0 => format!("{} (oldest {})", thousands(s.zombies), age(a)),
        _ => "0".to_string(),
    };
    let mut status = Vec::new();
    if let Some(r) = &look.replay {
        status.push(Span::styled(
            format!("{r}  "),
            bold.add_modifier(Modifier::REVERSED),
        ));
    }
    status.extend([
        Span::raw(format!("procs {}  zombies ", thousands(s.alive))),
        Span::styled(
            zombies,
            if s.zombies > 0 {
                st(Color::Yellow)
            } else {
                Style::default()
            },
        ),
        Span::raw("  lost "),
        Span::styled(
            thousands(lost),
            if lost > 0 {
                st(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            },
        ),
        Span::raw(format!("  alerts {}", s.active_alerts)),
    ]);
    if look.paused {
        status.push(Span::styled(
            "  PAUSED",
            bold.add_modifier(Modifier::REVERSED),
        ));
    }
    lines.push(Line::from(status));
    f.render_widget(Paragraph::new(lines), head);

    if lost > 0 {
        let kinds: Vec<String> = s
            .lost
            .iter()
            .map(|(k, n)| format!("{k} {}", thousands(*n)))
            .collect();
        let text = format!(
            " {} EVENTS LOST ({}): the tree and the rates may be incomplete ",
            thousands(lost),
            kinds.join(", ")
        );
        let style = if look.color {
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            bold.add_modifier(Modifier::REVERSED)
        };
        f.render_widget(Paragraph::new(Line::styled(text, style)), banner);
    }

    // Table.
    let header = format!(
        "{:>7} {:>6} {:>6} {:>5} {:>4} {:>6} {:>6} {:>5}  COMMAND  (sort: {}{})",
        "PID",
        "F/1s",
        "F/10s",
        "KIDS",
        "ZOMB",
        "Z-AGE",
        "EXITS",
        "CRASH",
        look.sort,
        if look.by_cgroup { ", by cgroup" } else { "" }
    );
    let mut lines = vec![Line::styled(header, bold.add_modifier(Modifier::REVERSED))];
    let height = table.height.saturating_sub(1) as usize;
    for (i, r) in s.rows.iter().enumerate().skip(look.offset).take(height) {
        let mut style = if r.zombie {
            st(Color::DarkGray)
        } else if r.rate_1s > 0 {
            st(Color::Red)
        } else {
            Style::default()
        };
        if i == look.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::styled(row_text(r), style));
    }
    if s.rows.is_empty() {
        lines.push(Line::raw(if look.filter.is_empty() {
            "  (no processes yet)".to_string()
        } else {
            format!("  (nothing matches /{})", look.filter)
        }));
    }
    f.render_widget(Paragraph::new(lines), table);

    // Alerts and recent events, side by side.
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let n = bottom.height.saturating_sub(1) as usize;
    let alerts: Vec<Line> = s
        .alerts
        .iter()
        .rev()
        .take(n)
        .map(|a| {
            let style = if a.end {
                Style::default()
            } else {
                st(Color::Red)
            };
            Line::styled(
                format!("{} {}", ago(s.now_ns, a.ktime_ns), a.message),
                style,
            )
        })
        .collect();
    let title = format!(" alerts ({} active) ", s.active_alerts);
    f.render_widget(
        Paragraph::new(alerts)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP).title(title)),
        left,
    );
    let events: Vec<Line> = s
        .tail
        .iter()
        .rev()
        .take(n)
        .map(|r| Line::raw(format!("{} {}", ago(s.now_ns, r.ktime_ns), event_text(r))))
        .collect();
    f.render_widget(
        Paragraph::new(events).block(
            Block::default()
                .borders(Borders::LEFT | Borders::TOP)
                .title(" events "),
        ),
        right,
    );

    // Keys, or the filter being typed.
    let line = if look.editing {
        Line::from(vec![
            Span::styled("/", bold),
            Span::raw(look.filter.clone()),
            Span::raw("█"),
        ])
    } else if !look.filter.is_empty() {
        Line::raw(format!(
            "filter /{}   Esc clears   ? help  q quit",
            look.filter
        ))
    } else {
        Line::raw("↑↓ move  ⏎ fold  / filter  s sort  g cgroup  p pause  ? help  q quit")
    };
    f.render_widget(Paragraph::new(line), keys);

    if look.help {
        let text = vec![
            Line::styled("tracer top: keys", bold),
            Line::raw(""),
            Line::raw("↑ ↓  j k     move (PgUp PgDn, Home End)"),
            Line::raw("Enter Space  fold or unfold the row's children"),
            Line::raw("             (on N*[name]: show them one by one)"),
            Line::raw("/            filter by name or pid (Esc clears)"),
            Line::raw("s            sort by the next column"),
            Line::raw("g            group by cgroup (unit)"),
            Line::raw("p            pause the view (tracing goes on)"),
            Line::raw("q  Ctrl-C    quit"),
            Line::raw(""),
            Line::raw("F/1s F/10s: forks per second, last 1 s and 10 s"),
            Line::raw("KIDS ZOMB Z-AGE: children alive, zombies held,"),
            Line::raw("the oldest one's age; EXITS CRASH: children that"),
            Line::raw("exited, and that a signal ended. A line `x ← p N`"),
            Line::raw("is a forker lifted to the top; p N its parent."),
        ];
        let w = 56.min(area.width);
        let h = (text.len() as u16 + 2).min(area.height);
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(text).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" help (any key closes) "),
            ),
            r,
        );
    }
}

fn row_text(r: &Row) -> String {
    let num = |n: u64| {
        if n == 0 {
            "·".to_string()
        } else {
            thousands(n)
        }
    };
    let pid = match r.pid {
        Some(p) => p.to_string(),
        None => String::new(),
    };
    let mark = match r.fold {
        Some(true) => "+ ",
        Some(false) => "- ",
        None => "  ",
    };
    format!(
        "{pid:>7} {:>6} {:>6} {:>5} {:>4} {:>6} {:>6} {:>5}  {}{mark}{}{}",
        num(r.rate_1s),
        num(r.rate_10s),
        num(r.children),
        num(r.zombies),
        r.oldest_zombie_ns.map_or("·".to_string(), age),
        num(r.exits),
        num(r.crashes),
        "  ".repeat(r.depth.min(20)),
        r.label,
        if r.zombie { " <zombie>" } else { "" },
    )
}

fn ago(now: u64, t: u64) -> String {
    let d = now.saturating_sub(t);
    if d < 100_000_000 {
        return format!("{:>6}", "now");
    }
    format!("{:>6}", format!("-{}", duration(d - d % 100_000_000)))
}

/// One short line for the event tail.
pub fn event_text(r: &Record) -> String {
    let (pid, comm) = r.subject.as_ref().map_or((0, String::new()), |s| {
        (
            s.pid,
            String::from_utf8_lossy(s.comm.as_bytes()).into_owned(),
        )
    });
    match &r.body {
        Body::Fork { thread: true, .. } => {
            let tid = r.subject.as_ref().map_or(0, |s| s.tid);
            format!("thread {comm} {pid} +{tid}")
        }
        Body::Fork { .. } => {
            let ppid = r.subject.as_ref().map_or(0, |s| s.ppid);
            format!("fork {comm} {ppid} → {pid}")
        }
        Body::Exec { filename, .. } => {
            format!("exec {pid} {}", String::from_utf8_lossy(filename))
        }
        Body::ExecFailed { filename, errno } => format!(
            "exec failed {pid} {} (errno {errno})",
            String::from_utf8_lossy(filename)
        ),
        Body::Exit {
            exit_code,
            signal,
            thread,
            ..
        } => {
            let how = match (signal, exit_code) {
                (Some(s), _) => format!("signal {s}"),
                (None, Some(c)) => format!("code {c}"),
                (None, None) => "?".to_string(),
            };
            let what = if *thread { "thread exit" } else { "exit" };
            format!("{what} {comm} {pid} {how}")
        }
        Body::Reap {
            reaper_pid,
            zombie_ns,
            ..
        } => {
            let by = reaper_pid.map_or(String::new(), |p| format!(" by {p}"));
            let z = zombie_ns.map_or(String::new(), |z| format!(" after {}", duration(z)));
            format!("reap {comm} {pid}{by}{z}")
        }
        Body::ForkFailed { errno } => format!("fork failed {comm} {pid} (errno {errno})"),
        Body::Alert(a) => format!(
            "{} {} {pid}",
            if a.end { "alert end" } else { "alert" },
            a.kind.title()
        ),
        Body::Lost { kind, count } => format!("LOST {} {kind}", thousands(*count)),
        Body::Process { .. } => format!("process {comm} {pid}"),
        Body::End { reason, .. } => format!("end ({reason})"),
    }
}
