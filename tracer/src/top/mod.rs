//! `tracer top`: a live full-screen view of the process tree, its fork rates,
//! zombies, alerts and latest events. It is fed by the same pipeline as `watch`
//! (which `cli` hands in as a function taking a [`View`]), or by a recording
//! (`--replay`, read by `cli` with report's reader): top imports neither.
//!
//! state (records → what is known) and rows (the table) are pure; ui draws a
//! frame; term takes and gives back the terminal; app ties keys, ticks and frames.

mod app;
mod rows;
mod state;
mod term;
#[cfg(test)]
mod tests;
mod ui;

use std::{
    io::{self, IsTerminal},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use crate::{error::Exit, live::View, record::Record};

pub use app::App;

/// `tracer top`'s own options; what to trace and where to record are `watch`'s,
/// composed beside these by `cli`.
#[derive(Debug, clap::Args)]
// Not `Args`: that group name is watch's, flattened beside this one.
#[group(id = "TopOptions")]
pub struct Args {
    /// Play a recording (JSON Lines written by `watch -o` or `top -o`) in the view
    /// instead of tracing; `q` quits.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pids", "command", "threads", "output"])]
    pub replay: Option<PathBuf>,
    /// With --replay: play N times as fast as recorded (0.5 is half speed).
    #[arg(long, value_name = "N", default_value_t = 1.0, requires = "replay",
          value_parser = parse_speed)]
    pub speed: f64,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a speed: give a number above 0, e.g. 2 for twice as fast"
        )),
    }
}

/// NO_COLOR (no-color.org): set and not empty means no colours.
fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// top draws on a terminal and reads keys from one; anything else gets a line
/// pointing at `watch`, before anything is loaded or drawn.
fn check_terminal() -> anyhow::Result<()> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(Exit::usage(
            "tracer top needs a terminal (stdin and stdout), and this is not one: use `tracer watch` (e.g. `tracer watch -o FILE`, `tracer watch --format jsonl`) to trace into a file or a pipe",
        )
        .into());
    }
    Ok(())
}

/// Runs `tracer top`: `live` is the `watch` pipeline, fed the view; `read`
/// reads a recording for `--replay`.
pub fn run(
    args: &Args,
    live: impl FnOnce(Box<dyn View>) -> anyhow::Result<u8>,
    read: impl FnOnce(&Path) -> anyhow::Result<Vec<Record>>,
) -> anyhow::Result<u8> {
    check_terminal()?;
    match &args.replay {
        Some(path) => {
            let records = read(path)?;
            replay(path, args.speed, &records)
        }
        None => live(Box::new(App::new(color(), None))),
    }
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERMINATED.store(true, Ordering::Relaxed);
}

/// Plays `records` at their recorded pace times `speed`, then holds the last
/// frame until `q`. SIGTERM (and SIGINT, when not in raw mode) end it too.
/// Once the terminal is back, says how much of the recording was played.
fn replay(path: &Path, speed: f64, records: &[Record]) -> anyhow::Result<u8> {
    let mut app = App::new(color(), None);
    let played = play(&mut app, path, speed, records);
    // The terminal first, then the line.
    drop(app);
    eprintln!(
        "tracer: replayed {} of {} records from {}",
        crate::units::thousands(played?),
        crate::units::thousands(records.len() as u64),
        path.display()
    );
    Ok(0)
}

/// Returns how many records were played.
fn play(app: &mut App, path: &Path, speed: f64, records: &[Record]) -> anyhow::Result<u64> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
    }
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    let title = format!("REPLAY {name} ×{speed}");
    app.look.replay = Some(title.clone());
    let stop = || TERMINATED.load(Ordering::Relaxed);
    let Some(first) = records.first() else {
        return Err(Exit::usage(format!(
            "{} holds no records: give a recording made by `tracer watch -o FILE`",
            path.display()
        ))
        .into());
    };
    // The recording's clock as played: `base` (ktime) at `started`.
    let (mut base, mut started) = (first.ktime_ns, Instant::now());
    let clock =
        |base: u64, started: Instant| base + (started.elapsed().as_nanos() as f64 * speed) as u64;
    for (i, rec) in records.iter().enumerate() {
        if rec.ktime_ns < base {
            // Another run (or boot) of the recording: its clock starts anew.
            (base, started) = (rec.ktime_ns, Instant::now());
        }
        loop {
            let now = clock(base, started);
            if now >= rec.ktime_ns {
                break;
            }
            app.state.tick(now);
            let wait = Duration::from_nanos(((rec.ktime_ns - now) as f64 / speed) as u64);
            if app.step(wait.min(Duration::from_millis(50))) || stop() {
                return Ok(i as u64);
            }
        }
        app.record(rec);
        if i % 256 == 0 && (app.step(Duration::ZERO) || stop()) {
            return Ok(i as u64 + 1);
        }
    }
    app.look.replay = Some(format!("{title}: end of recording"));
    app.state
        .tick(clock(base, started).min(records.last().map_or(0, |r| r.ktime_ns)));
    while !stop() {
        if app.step(Duration::from_millis(100)) {
            break;
        }
    }
    Ok(records.len() as u64)
}
