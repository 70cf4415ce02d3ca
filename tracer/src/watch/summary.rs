//! The end-of-run summary printed on stderr.

use std::{collections::BTreeMap, time::Duration};

use tracer_common::kind;

use crate::{
    loader::KindTotals,
    units::{duration, plural, thousands},
};

/// What the run did, gathered at the end.
pub struct Summary<'a> {
    pub elapsed: Duration,
    /// Records written, per type.
    pub records: &'a BTreeMap<&'static str, u64>,
    /// Records the filters (`--uid`, `--comm`, `--cgroup`, `--events`) held back.
    pub filtered: u64,
    /// Events the kernel could not deliver, per kind.
    pub lost: KindTotals,
    /// Events that happened in the kernel, per kind (delivered or not), if readable.
    pub seen: Option<KindTotals>,
    /// The run followed processes (`-p`, `-- COMMAND`): the records cover those
    /// only, while `seen` counts the whole machine.
    pub following: bool,
    pub decode_errors: u64,
    /// Records a writer could not take, per writer.
    pub failed: &'a BTreeMap<String, u64>,
    /// The processes that created the most processes: (`pid comm`, count).
    pub top_forkers: Vec<(String, u64)>,
    /// The highest one-second fork rates, from the alert engine.
    pub peak_rates: Option<String>,
    /// What `--on-alert` did, when given.
    pub on_alert: Option<super::on_alert::Counts>,
    /// How reaps no wait named were told.
    pub reaps: ReapCounts,
}

/// Reaps that needed more than an event naming them, and what that cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapCounts {
    /// Zombies found gone from /proc (`"inferred": true` reap records).
    pub inferred: u64,
    /// stat()s of /proc/PID spent on overdue zombies.
    pub lookups: u64,
    /// Reaps told by a waitid with a NULL `infop`: the waiter's only zombie child.
    pub only_child: u64,
}

fn join<I: IntoIterator<Item = String>>(parts: I) -> String {
    parts.into_iter().collect::<Vec<_>>().join(", ")
}

fn per_kind(totals: &KindTotals) -> String {
    join(
        (0..kind::COUNT)
            .filter(|&k| totals[k as usize] > 0)
            .map(|k| format!("{} {}", kind::name(k), totals[k as usize])),
    )
}

impl Summary<'_> {
    /// The summary as lines, each starting with `tracer: `.
    pub fn render(&self) -> String {
        let total: u64 = self.records.values().sum();
        let elapsed = u64::try_from(self.elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut line = format!(
            "tracer: {}, {}",
            duration(elapsed),
            plural(total, "record", "records")
        );
        if !self.records.is_empty() {
            line += &format!(
                " ({})",
                join(self.records.iter().map(|(t, n)| format!("{t} {n}")))
            );
        }
        if self.filtered > 0 {
            line += &format!(", {} filtered out", self.filtered);
        }
        let lost_total: u64 = self.lost.iter().sum();
        line += &format!(", {} lost", plural(lost_total, "event", "events"));
        if lost_total > 0 {
            line += &format!(
                " ({}; a larger --ring-size rides out bigger bursts)",
                per_kind(&self.lost)
            );
        }
        if self.decode_errors > 0 {
            line += &format!(
                ", {} skipped",
                plural(self.decode_errors, "malformed record", "malformed records")
            );
        }
        for (name, n) in self.failed {
            line += &format!(
                ", {} not written to {name}",
                plural(*n, "record", "records")
            );
        }
        let mut out = line + "\n";
        if let Some(seen) = &self.seen
            && seen.iter().any(|&n| n > 0)
        {
            // Counted in the kernel for every process, followed or not: said so,
            // lest `fork 2287` beside 3 records read as 2284 lost.
            let whom = if self.following {
                "all processes on this machine, not only those followed"
            } else {
                "all processes"
            };
            out += &format!(
                "tracer: the kernel saw ({whom}; none lost from these counts): {}\n",
                per_kind(seen)
            );
        }
        if !self.top_forkers.is_empty() {
            let parts = self
                .top_forkers
                .iter()
                .map(|(who, n)| format!("{who} ({n})"));
            out += &format!("tracer: top forkers: {}\n", join(parts));
        }
        if let Some(peaks) = &self.peak_rates {
            out += &format!("tracer: peak fork rates: {peaks}\n");
        }
        if let Some(c) = &self.on_alert {
            out += &format!(
                "tracer: --on-alert ran {} {}, {} failed; {} {} dropped\n",
                c.run,
                if c.run == 1 { "time" } else { "times" },
                c.failed,
                c.dropped,
                if c.dropped == 1 { "alert" } else { "alerts" },
            );
        }
        let r = self.reaps;
        if r.inferred > 0 || r.lookups > 0 || r.only_child > 0 {
            out += &format!(
                "tracer: reaps inferred from /proc: {} ({} /proc look-ups for overdue zombies); \
                 reaps told by a waitid with a NULL infop (the only zombie child): {}\n",
                thousands(r.inferred),
                thousands(r.lookups),
                thousands(r.only_child)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_run() {
        let records = BTreeMap::from([("exec", 2), ("fork", 2)]);
        let failed = BTreeMap::new();
        let s = Summary {
            elapsed: Duration::from_millis(1500),
            records: &records,
            filtered: 0,
            lost: [0; kind::COUNT as usize],
            seen: None,
            following: false,
            decode_errors: 0,
            failed: &failed,
            top_forkers: vec![],
            peak_rates: None,
            on_alert: None,
            reaps: ReapCounts::default(),
        };
        assert_eq!(
            s.render(),
            "tracer: 1.50s, 4 records (exec 2, fork 2), 0 events lost\n"
        );
    }

    #[test]
    fn one_of_each_is_singular_and_followed_runs_say_what_the_kernel_counts_cover() {
        let records = BTreeMap::from([("fork", 1)]);
        let failed = BTreeMap::from([("out.jsonl".to_string(), 1)]);
        let mut lost = [0; kind::COUNT as usize];
        lost[kind::EXEC as usize] = 1;
        let mut seen = [0; kind::COUNT as usize];
        seen[kind::FORK as usize] = 2287;
        let s = Summary {
            elapsed: Duration::from_millis(10),
            records: &records,
            lost,
            seen: Some(seen),
            following: true,
            decode_errors: 1,
            failed: &failed,
            top_forkers: vec![],
            peak_rates: None,
            filtered: 0,
            on_alert: None,
            reaps: ReapCounts::default(),
        };
        assert_eq!(
            s.render(),
            "tracer: 10.0ms, 1 record (fork 1), 1 event lost (exec 1; a larger --ring-size rides out \
             bigger bursts), 1 malformed record skipped, 1 record not written to out.jsonl\n\
             tracer: the kernel saw (all processes on this machine, not only those followed; \
             none lost from these counts): fork 2287\n"
        );
    }

    #[test]
    fn losses_failures_counts_and_forkers_are_all_shown() {
        let records = BTreeMap::from([("lost", 1)]);
        let failed = BTreeMap::from([("out.jsonl".to_string(), 7)]);
        let mut lost = [0; kind::COUNT as usize];
        lost[kind::EXEC as usize] = 12;
        lost[kind::EXIT as usize] = 3;
        let mut seen = [0; kind::COUNT as usize];
        seen[kind::FORK as usize] = 100;
        let s = Summary {
            elapsed: Duration::from_secs(2),
            records: &records,
            filtered: 9,
            lost,
            seen: Some(seen),
            following: false,
            decode_errors: 1,
            failed: &failed,
            top_forkers: vec![("42 make".into(), 90), ("7 sh".into(), 10)],
            peak_rates: Some("by parent 42 make 80/s".into()),
            on_alert: Some(super::super::on_alert::Counts {
                run: 3,
                failed: 1,
                dropped: 1,
            }),
            reaps: ReapCounts {
                inferred: 1000,
                lookups: 1204,
                only_child: 3,
            },
        };
        assert_eq!(
            s.render(),
            "tracer: 2.00s, 1 record (lost 1), 9 filtered out, 15 events lost (exec 12, exit 3; a larger --ring-size rides out \
             bigger bursts), 1 malformed record skipped, 7 records not written to out.jsonl\n\
             tracer: the kernel saw (all processes; none lost from these counts): fork 100\n\
             tracer: top forkers: 42 make (90), 7 sh (10)\n\
             tracer: peak fork rates: by parent 42 make 80/s\n\
             tracer: --on-alert ran 3 times, 1 failed; 1 alert dropped\n\
             tracer: reaps inferred from /proc: 1,000 (1,204 /proc look-ups for overdue zombies); \
             reaps told by a waitid with a NULL infop (the only zombie child): 3\n"
        );
    }
}
