//! `tracer watch`: load the programs, seed the tree from /proc, stream events.

mod args;
mod command;
mod filter;
#[cfg(test)]
mod gone;
mod header;
mod on_alert;
mod parquet;
mod recheck;
mod sinks;
mod summary;
mod zombies;

use std::{
    io::{self, IsTerminal, Write},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};
use tracer_common::kind;

use crate::{
    cgroup::CgroupResolver,
    decode,
    error::Exit,
    live::View,
    loader::{self, LoadOptions},
    model::{Model, ModelConfig},
    output::{
        JsonlWriter, RunInfo, TextWriter, Writer,
        file::{FileOptions, OutputFile, Rotation},
        time::Zone,
    },
    procfs,
    record::{ProcId, Record},
};

pub use self::args::{
    AlertArgs, Args, ColorWhen, EventType, FileArgs, FilterArgs, Format, RedactArgs,
};
use self::{
    command::Spawned,
    sinks::{FileSink, Sinks},
    summary::Summary,
};

/// How often drop counters are read and writers are flushed at the latest.
/// The kernel programs wake the agent only once a quarter of the ring buffer is
/// unread (see `wakeup_flags` in tracer-ebpf); below that, records are drained
/// on this tick, so they reach the output within about this long.
const TICK: Duration = Duration::from_millis(50);
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// After the command's whole tree is gone, how long to wait for its last events
/// to come through the ring buffer.
const TAIL_GRACE: Duration = Duration::from_secs(2);
/// After SIGINT, SIGTERM or the end of `--duration`, how long at most to go on
/// draining for the followed processes' last events. A Ctrl-C reaches the
/// command too, but it dies a moment after tracer is told: stopping at once
/// would lose its `exit` (about one run in seven did).
const STOP_GRACE: Duration = Duration::from_secs(1);
/// Events applied per turn of the main loop at most, and for how long at most.
/// When events come in faster than they are applied (a fork bomb; a debug
/// build), the ring never empties: without a bound the drain would never
/// return, and the tick's work (drop counters, flushing, alert expiry and
/// sweeps, the /proc recheck after losses) would wait for the storm to end while
/// the alert engine's maps grow unswept and processes whose end was lost pile up.
const DRAIN_MAX: usize = 4096;
const DRAIN_TIME: Duration = Duration::from_millis(20);
/// How many of the busiest forkers the summary names.
const TOP_FORKERS: usize = 5;

pub fn run_blocking(args: &Args, verbose: u8) -> anyhow::Result<u8> {
    run_with_view(args, verbose, None)
}

/// [`run_blocking`] with a live view fed every record (`tracer top`, joined by
/// `cli`); the view is dropped when the run stops, before the summary prints.
pub fn run_with_view(args: &Args, verbose: u8, view: Option<Box<dyn View>>) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(args, verbose, view))
}

/// CLOCK_BOOTTIME now: the clock of `bpf_ktime_get_boot_ns`.
fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Opens `-o FILE`. What is at FILE is checked first, so that a recording is never
/// destroyed unasked and a wrong path gets a line saying what to give instead.
fn open_output(path: &Path, args: &Args) -> anyhow::Result<OutputFile> {
    let f = &args.file;
    let name = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Exit::usage(format!(
                "{name} is a symbolic link, and tracer does not follow one for its output: give the path of a file (`-o -` for stdout)"
            ))
            .into());
        }
        Ok(m) if m.is_dir() => {
            return Err(Exit::usage(format!(
                "{name} is a directory: give a file name, e.g. -o {}",
                path.join("events.jsonl").display()
            ))
            .into());
        }
        Ok(m) if m.is_file() && m.len() > 0 && !f.append && !f.force => {
            return Err(Exit::usage(format!(
                "{name} exists: `--append` adds to it, `--force` replaces it"
            ))
            .into());
        }
        Ok(m) if f.rotate_size.is_some() && !m.is_file() => bail!(
            "--rotate-size renames the output file, and {name} is not a regular file: give a file path"
        ),
        _ => {}
    }
    OutputFile::create(FileOptions {
        path: path.to_path_buf(),
        mode: f.file_mode,
        rotation: f.rotate_size.map(|size| Rotation {
            size,
            keep: f.rotate_keep,
            compress: f.compress,
        }),
        append: f.append,
    })
    .map_err(|e| match e.kind() {
        // Already a whole line (a link planted after the check above).
        io::ErrorKind::InvalidInput => anyhow::Error::from(e),
        io::ErrorKind::IsADirectory => anyhow!("{name} is a directory: give a file name"),
        _ => anyhow::Error::from(e).context(format!(
            "cannot write output file {name}: check the directory exists and is writable"
        )),
    })
}

fn make_sinks(args: &Args, info: &RunInfo, view: Option<Box<dyn View>>) -> anyhow::Result<Sinks> {
    // Before any file is created: a bad pattern leaves nothing behind.
    let redactor = args.redact.redactor()?;
    let mut writers = Vec::new();
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && args.file.rotate_size.is_some() {
        bail!("--rotate-size needs -o FILE: stdout (`-o -`) cannot be rotated");
    }
    if to_stdout && args.format == Some(Format::Text) {
        return Err(Exit::usage(
            "`-o -` writes JSON Lines to stdout, so `--format text` cannot go there too: drop one of them",
        )
        .into());
    }
    if to_stdout && args.file.parquet_dir.is_some() {
        bail!(
            "--parquet-dir needs -o FILE: it holds the output file's records, and stdout (`-o -`) is no file"
        );
    }
    if let Some(dir) = &args.file.parquet_dir {
        if dir.exists() && !dir.is_dir() {
            bail!(
                "{}: not a directory; give --parquet-dir a directory to write the Parquet files under",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --parquet-dir {}", dir.display()))?;
    }
    let mut file = None;
    if let Some(path) = args.output.as_deref().filter(|_| !to_stdout) {
        let meta = header::meta_fields(args);
        let parquet = (args.file.parquet_dir.as_deref()).map(|dir| {
            parquet::ParquetOut::new(dir, path, args.file.file_mode, info.clone(), &meta)
        });
        file = Some(FileSink {
            name: path.display().to_string(),
            w: JsonlWriter::unbuffered(open_output(path, args)?, info.clone()),
            meta,
            parquet,
        });
    }
    if to_stdout || !args.quiet {
        let out: Box<dyn Write> = Box::new(io::stdout());
        let w = if args.format() == Format::Jsonl {
            Writer::Jsonl(JsonlWriter::new(out, info.clone()))
        } else {
            let color = match args.color {
                ColorWhen::Always => true,
                ColorWhen::Never => false,
                ColorWhen::Auto => io::stdout().is_terminal(),
            };
            let zone = if args.utc { Zone::Utc } else { Zone::local() };
            Writer::Text(TextWriter::new(out, info.clone(), color).terminal(zone))
        };
        writers.push(("stdout".to_string(), w));
    }
    // A live view shows alerts itself: lines on stderr would tear its screen.
    let quiet_alerts = writers.is_empty() && args.alerts.config().is_some() && view.is_none();
    Ok(Sinks {
        writers,
        redactor,
        file,
        failing: Default::default(),
        cgroups: CgroupResolver::new(),
        counts: Default::default(),
        failed: Default::default(),
        fork_parents: None,
        alerts: args.alerts.config().map(crate::alerts::Engine::new),
        lost: [0; kind::COUNT as usize],
        // `--quiet` silences event lines, not alerts: without a stdout writer they
        // go to stderr (for a systemd unit, the journal).
        alert_lines: quiet_alerts.then(|| {
            let color = match args.color {
                ColorWhen::Always => true,
                ColorWhen::Never => false,
                ColorWhen::Auto => io::stderr().is_terminal(),
            };
            TextWriter::new(
                Box::new(io::stderr()) as Box<dyn Write>,
                info.clone(),
                color,
            )
        }),
        stdout_closed: false,
        on_alert: match &args.alerts.on_alert {
            Some(cmd) => Some(sinks::OnAlertSink {
                runner: on_alert::OnAlert::start(cmd, args.alerts.on_alert_timeout)
                    .context("starting --on-alert")?,
                line: JsonlWriter::new(io::sink(), info.clone()),
                own_pid: std::process::id(),
                command_pid: None,
                procs: Default::default(),
            }),
            None => None,
        },
        filter: filter::RecordFilter::new(args.filter.procs(), &args.filter.events),
        view,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Signal(i32),
    Duration,
    FollowedGone,
    /// The reader of stdout went away (`tracer watch | head`).
    StdoutClosed,
    /// Waiting on the ring buffer failed.
    Error,
    /// The live view's user quit (`tracer top`, `q`).
    Quit,
}

impl End {
    /// The `reason` of the `end` record (docs/events.md).
    fn reason(self, command: bool) -> &'static str {
        match self {
            End::Signal(_) => "signal",
            End::Duration => "duration",
            End::FollowedGone if command => "command",
            End::FollowedGone => "pid-gone",
            End::StdoutClosed => "stdout-closed",
            End::Error => "error",
            End::Quit => "quit",
        }
    }
}

/// tracer's exit status when records or events were lost (README, Exit status):
/// the run went on, but the recording is not whole.
pub const EXIT_DATA_LOST: u8 = 3;

async fn run(args: &Args, verbose: u8, view: Option<Box<dyn View>>) -> anyhow::Result<u8> {
    let started = Instant::now();
    let info = RunInfo::current().context("reading the host name, boot id and clocks")?;
    // Find the command and open outputs before loading anything, so a bad name
    // or path fails fast and leaves no file behind.
    let program = match args.command.first() {
        Some(prog) => Some(command::resolve(prog, std::env::var_os("PATH").as_deref())?),
        None => None,
    };
    let mut sinks = make_sinks(args, &info, view)?;
    if !args.pids.is_empty() || !args.command.is_empty() {
        sinks.fork_parents = Some(Default::default());
    }

    let loaded = loader::load(&LoadOptions {
        ring_size: args.ring_size,
        threads: args.threads,
        diagnostics: verbose >= 2,
        verifier_log: verbose >= 1,
    })?;
    if let Some(f) = sinks.file.as_mut() {
        f.meta.extend(header::hooks_field(
            loaded.hooks,
            loaded.fexit_refused.as_deref(),
        ));
    }
    if verbose > 0 {
        eprintln!(
            "tracer: reaps, failed execs and failed forks from {}{}",
            loaded.hooks.name(),
            loaded
                .fexit_refused
                .as_deref()
                .map_or(String::new(), |why| format!(" (fexit not used: {why})"))
        );
        eprintln!("tracer: tracefs at {}", loaded.tracefs.display());
        eprintln!(
            "tracer: kernel layout: {}",
            crate::kconfig::describe(&loaded.config)
        );
    }
    let loader::Loaded {
        ring,
        lost,
        counters,
        ebpf: programs,
        kernel_log,
        ..
    } = loaded;
    let mut kernel_log = match kernel_log {
        // SAFETY: the log ring's fd stays open and unchanged while owned by the AsyncFd.
        Some(log) => Some(
            unsafe { AsyncFd::register_with_interest(log, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)
                .context("watching the eBPF programs' diagnostics")?,
        ),
        None => None,
    };
    let lost_reader = LostReader {
        map: lost,
        seen: [0; kind::COUNT as usize],
    };
    // SAFETY: the ring buffer map's fd stays open and unchanged while owned by the AsyncFd.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
        .context("watching the ring buffer")?;

    let mut model = Model::new(ModelConfig {
        threads: args.threads,
    });
    let mut records: Vec<Record> = Vec::with_capacity(256);

    // Programs are attached: anything that starts from now on is seen. Seed what
    // already exists, so the tree is whole from the first second.
    let snap = procfs::snapshot_counted(Path::new("/proc"), &mut sinks.cgroups)
        .context("reading /proc")?;
    if let Some(first) = snap.errors.first() {
        eprintln!(
            "tracer: {} in /proc could not be read at start-up (first: {first}); they join the tree at their next event",
            crate::units::plural(snap.errors.len() as u64, "process", "processes")
        );
    }
    model.seed(snap.procs, boottime_ns(), &mut records);
    if !args.pids.is_empty() {
        for &pid in &args.pids {
            if !model.follow_pid(pid) {
                bail!("no process with pid {pid}: check it with `ps -p {pid}`");
            }
        }
        // Of the start-up snapshot, show only the followed trees.
        records.retain(|r| {
            r.subject
                .as_ref()
                .is_some_and(|s| model.is_followed_pid(s.pid))
        });
    }
    if !args.command.is_empty() {
        // The command does not exist yet: nothing in the snapshot belongs to its tree.
        records.clear();
    }
    sinks.start(&mut records);

    let mut spawned: Option<Spawned> = None;
    if let Some(program) = &program {
        let s = command::spawn(&args.command, program)?;
        model.follow_spawned(s.pid);
        if let Some(o) = sinks.on_alert.as_mut() {
            o.command_pid = Some(s.pid);
        }
        spawned = Some(s);
    }

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigchld = signal(SignalKind::child()).context("installing the SIGCHLD handler")?;
    // SIGHUP reopens the output file (logrotate renames it, then signals). Without
    // one, SIGHUP keeps its default: a closed terminal ends tracer.
    let mut sighup = match sinks.file {
        Some(_) => Some(signal(SignalKind::hangup()).context("installing the SIGHUP handler")?),
        None => None,
    };
    let mut tick = tokio::time::interval(TICK);
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut last_flush = Instant::now();
    let mut decode_errors = 0u64;
    let mut lost_reader = lost_reader;
    let mut tree_gone_at: Option<Instant> = None;
    let mut recheck = recheck::Recheck::new();
    let mut zombies = zombies::Zombies::new();
    // When the ring was last found empty (boottime): every event stamped before
    // then has been applied.
    let mut caught_up = 0u64;
    // The last drain stopped at its bound: the ring may hold more.
    let mut backlog = false;

    // Set when a stop was asked for: why, and when. The loop goes on draining
    // until the followed processes are gone or STOP_GRACE has passed.
    let mut stopping: Option<(End, Instant)> = None;
    let mut failure = None;
    let end = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = match guard.context("waiting on the ring buffer") {
                    Ok(g) => g,
                    Err(e) => {
                        failure = Some(e);
                        break End::Error;
                    }
                };
                let t0 = boottime_ns();
                backlog = drain(guard.get_inner_mut(), &mut model, &mut records, &mut sinks, &mut decode_errors);
                if !backlog {
                    caught_up = t0;
                }
                guard.clear_ready();
            }
            // The ring held more than one drain takes. A full ring wakes nobody (no
            // event gets in to signal it), so go on draining here, yielding first: a
            // task that never waits never lets the runtime's driver run, and timers
            // (the tick with its drop counters, flushing, alert expiry and recheck)
            // and signals would not fire while a storm lasts.
            _ = tokio::task::yield_now(), if backlog => {
                let t0 = boottime_ns();
                backlog = drain(ring.get_mut(), &mut model, &mut records, &mut sinks, &mut decode_errors);
                if !backlog {
                    caught_up = t0;
                }
            }
            guard = async { kernel_log.as_mut().expect("checked").readable_mut().await }, if kernel_log.is_some() => {
                let mut guard = guard.context("waiting on the eBPF programs' diagnostics")?;
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            // A second signal while stopping ends the wait at once.
            _ = sigint.recv() => match stopping {
                Some((why, _)) => break why,
                None => stopping = Some(stop(End::Signal(libc::SIGINT), &spawned)),
            },
            _ = sigterm.recv() => match stopping {
                Some((why, _)) => break why,
                None => stopping = Some(stop(End::Signal(libc::SIGTERM), &spawned)),
            },
            _ = sigchld.recv(), if spawned.is_some() => {
                if let Some(s) = spawned.as_mut() { s.reap(); }
            }
            _ = async { sighup.as_mut().expect("checked").recv().await }, if sighup.is_some() => {
                sinks.reopen();
                sinks.end_batch(&model);
            }
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() && stopping.is_none() => {
                stopping = Some(stop(End::Duration, &spawned));
            }
            _ = tick.tick() => {
                let t0 = boottime_ns();
                backlog = drain(ring.get_mut(), &mut model, &mut records, &mut sinks, &mut decode_errors);
                if !backlog {
                    caught_up = t0;
                }
                lost_reader.poll(&mut model, &mut records);
                let applied = model.applied_upto().max(caught_up);
                zombies.run(&mut model, boottime_ns(), applied, &mut records);
                sinks.lost = lost_reader.seen;
                sinks.write_all(&mut records);
                sinks.tick(boottime_ns());
                if sinks.view.as_mut().is_some_and(|v| v.tick(boottime_ns())) && stopping.is_none() {
                    stopping = Some(stop(End::Quit, &spawned));
                }
                if let Some(s) = spawned.as_mut() { s.reap(); }
                if last_flush.elapsed() >= FLUSH_EVERY {
                    sinks.flush();
                    last_flush = Instant::now();
                    let lost_now: u64 = lost_reader.seen.iter().sum();
                    let applied = model.applied_upto().max(caught_up);
                    recheck.run(&mut model, lost_now, boottime_ns(), applied, &mut records);
                    sinks.write_all(&mut records);
                }
                // After the flush too: it may have reopened a file that was gone.
                sinks.end_batch(&model);
            }
        }
        if sinks.stdout_closed && stopping.is_none() {
            stopping = Some(stop(End::StdoutClosed, &spawned));
        }
        if let Some((why, at)) = stopping
            && (!model.is_following()
                || model.followed_remaining() == 0
                || at.elapsed() >= STOP_GRACE)
        {
            break why;
        }
        if model.is_following() && model.followed_remaining() == 0 {
            break End::FollowedGone;
        }
        // With a command, waitpid(-1) returning ECHILD is the authority that the
        // tree is gone; give the ring buffer a moment to deliver the last events.
        if let Some(s) = &spawned
            && s.tree_gone
        {
            let at = *tree_gone_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= TAIL_GRACE {
                break End::FollowedGone;
            }
        }
    };

    // The live view gives the terminal back at once (detaching and the last
    // drain take a moment), before anything more is printed.
    sinks.view = None;
    // Detach the programs first (dropping `Ebpf` drops its links; the maps were
    // taken out of it and stay open): nothing is counted or sent after this, so
    // the drain below reaches the true end of the ring and the kernel's counts in
    // the summary are exactly the records plus the events reported lost.
    drop(programs);
    // Take what is still in the ring, then the final drop counts. At most a
    // ring's worth (every event is larger than 64 bytes): what a storm adds
    // meanwhile happened after the end.
    let mut rounds = args.ring_size as usize / 64 / DRAIN_MAX + 1;
    while drain(
        ring.get_mut(),
        &mut model,
        &mut records,
        &mut sinks,
        &mut decode_errors,
    ) && rounds > 0
    {
        rounds -= 1;
    }
    lost_reader.poll(&mut model, &mut records);
    sinks.lost = lost_reader.seen;
    sinks.write_all(&mut records);
    // Zombies /proc no longer has, checked once more whatever their age: found
    // gone at `v`, they are released once the ring is drained past `v` and the
    // reordering slack, so a reap event still in the ring is taken first.
    let v = boottime_ns();
    if zombies.check_all(&model, v) > 0 {
        tokio::time::sleep(Duration::from_nanos(recheck::REORDER_SLACK_NS)).await;
        let mut rounds = args.ring_size as usize / 64 / DRAIN_MAX + 1;
        let applied = loop {
            let t0 = boottime_ns();
            if !drain(
                ring.get_mut(),
                &mut model,
                &mut records,
                &mut sinks,
                &mut decode_errors,
            ) {
                // Found empty: everything stamped before t0 is applied.
                break t0;
            }
            if rounds == 0 {
                // Not caught up: only what the events applied vouch for.
                break model.applied_upto();
            }
            rounds -= 1;
        };
        zombies.finish(&mut model, applied, &mut records);
        sinks.write_all(&mut records);
        sinks.end_batch(&model);
    }
    // Diagnostics logged up to the end, before the summary.
    if let Some(log) = kernel_log.as_mut() {
        log.get_mut().flush();
    }
    // Episodes whose quiet period has passed by now end in this recording: the run
    // may stop (tree gone, signal) before the next tick would have said so.
    sinks.tick(boottime_ns());
    sinks.write_end(end.reason(spawned.is_some()));
    sinks.finish();
    // Alerts raised up to the end are still delivered, within a bound.
    let on_alert = sinks.on_alert.take().map(|o| {
        let pending = o.runner.pending();
        if pending > 0 {
            eprintln!(
                "tracer: waiting for --on-alert to deliver {pending} {} (at most {})",
                if pending == 1 { "alert" } else { "alerts" },
                crate::units::duration(
                    u64::try_from(o.runner.timeout().as_nanos()).unwrap_or(u64::MAX)
                )
            );
        }
        o.runner.finish()
    });

    let forkers = counters.forkers();
    // One name per pid in every summary line: the kernel's, at its last fork.
    let names: std::collections::HashMap<u32, String> = forkers
        .iter()
        .map(|f| {
            (
                f.key.pid,
                String::from_utf8_lossy(f.comm.as_bytes()).into_owned(),
            )
        })
        .collect();
    let top_forkers = forkers
        .iter()
        // Following a tree: only its members count.
        .filter(|f| {
            sinks
                .fork_parents
                .as_ref()
                .is_none_or(|set| set.contains(&ProcId::from_start_ns(f.key.pid, f.key.start_ns)))
        })
        .take(TOP_FORKERS)
        .map(|f| (format!("{} {}", f.key.pid, names[&f.key.pid]), f.count))
        .collect();
    let peak_rates = sinks.peak_rates(3, &names);
    let text = Summary {
        elapsed: started.elapsed(),
        records: &sinks.counts,
        filtered: sinks.filter.as_ref().map_or(0, |f| f.filtered),
        lost: lost_reader.seen,
        seen: counters.seen_totals().ok(),
        following: sinks.fork_parents.is_some(),
        decode_errors,
        failed: &sinks.failed,
        top_forkers,
        peak_rates,
        on_alert,
        reaps: summary::ReapCounts {
            inferred: model.stats().inferred_reaps,
            lookups: zombies.lookups,
            only_child: model.stats().only_child_reaps,
        },
    }
    .render();
    eprint!("{text}");

    if let Some(e) = failure {
        return Err(e);
    }
    let code = match (end, &spawned) {
        // We ended it with SIGTERM (`stop`): the run did what it was asked.
        (End::Duration | End::StdoutClosed | End::Quit, Some(s)) if s.killed_by(libc::SIGTERM) => 0,
        (_, Some(s)) if s.status.is_some() => s.exit_code().unwrap_or(1),
        (End::Signal(sig), Some(_)) => 128 + sig as u8,
        _ => 0,
    };
    // COMMAND's own failure says more than ours; otherwise say that the
    // recording is not whole ("Nothing lost silently"): records not written,
    // events the kernel could not deliver, ring records that did not decode.
    let data_lost = sinks.failed.values().sum::<u64>() > 0
        || lost_reader.seen.iter().sum::<u64>() > 0
        || decode_errors > 0;
    Ok(if code == 0 && data_lost {
        EXIT_DATA_LOST
    } else {
        code
    })
}

/// A stop was asked for (`why`). Stopped by SIGTERM or --duration while the
/// command runs: pass the stop on to it, as `timeout` does, rather than leave it
/// running untraced. (Ctrl-C reaches it from the terminal already.)
fn stop(why: End, spawned: &Option<Spawned>) -> (End, Instant) {
    if let Some(s) = spawned
        && s.status.is_none()
        && matches!(
            why,
            End::Duration | End::StdoutClosed | End::Quit | End::Signal(libc::SIGTERM)
        )
    {
        // SAFETY: kill with a pid we spawned and have not reaped.
        unsafe { libc::kill(s.pid as libc::pid_t, libc::SIGTERM) };
    }
    (why, Instant::now())
}

/// Applies what the ring buffer holds, at most [`DRAIN_MAX`] events; returns true
/// if it stopped at that bound (the ring may hold more).
fn drain(
    ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
    model: &mut Model,
    records: &mut Vec<Record>,
    sinks: &mut Sinks,
    decode_errors: &mut u64,
) -> bool {
    let started = Instant::now();
    let mut left = DRAIN_MAX;
    let more = loop {
        if left == 0 || (left.is_multiple_of(64) && started.elapsed() >= DRAIN_TIME) {
            break true;
        }
        left -= 1;
        let Some(item) = ring.next() else {
            break false;
        };
        match decode::decode(&item) {
            Ok(ev) => model.apply(ev, records),
            Err(e) => {
                if *decode_errors == 0 {
                    eprintln!("tracer: skipped a malformed ring buffer record: {e}");
                }
                *decode_errors += 1;
            }
        }
        drop(item);
        // Near the output file's size limit, each event is a batch of its own, so
        // the file rotates right after the event that reaches the limit.
        if records.len() >= 256 || (!records.is_empty() && sinks.rotation_near()) {
            sinks.write_all(records);
            sinks.end_batch(model);
        }
    };
    sinks.write_all(records);
    sinks.end_batch(model);
    more
}

/// Turns the per-CPU drop counters into `lost` records as they grow.
struct LostReader {
    map: aya::maps::PerCpuArray<aya::maps::MapData, u64>,
    seen: [u64; kind::COUNT as usize],
}

impl LostReader {
    fn poll(&mut self, model: &mut Model, records: &mut Vec<Record>) {
        let Ok(totals) = loader::kind_totals(&self.map) else {
            return;
        };
        for (k, (&total, seen)) in totals.iter().zip(self.seen.iter_mut()).enumerate() {
            if total > *seen {
                model.lost(k as u32, total - *seen, boottime_ns(), records);
                *seen = total;
            }
        }
    }
}
