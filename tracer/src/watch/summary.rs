//! The end-of-run summary printed on stderr.

use std::{collections::BTreeMap, time::Duration};

use tracer_common::kind;

use crate::loader::KindTotals;
use crate::units::thousands;

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
        let mut line = format!(
            "tracer: {:.1} s, {total} records",
            self.elapsed.as_secs_f64()
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
        line += &format!(", {lost_total} events lost");
        if lost_total > 0 {
            line += &format!(
                " ({}; a larger --ring-size rides out bigger bursts)",
                per_kind(&self.lost)
            );
        }
        if self.decode_errors > 0 {
            line += &format!(", {} malformed records skipped", self.decode_errors);
        }
        for (name, n) in self.failed {
            line += &format!(", {n} records not written to {name}");
        }
        let mut out = line + "\n";
        if let Some(seen) = &self.seen
            && seen.iter().any(|&n| n > 0)
        {
            out += &format!(
                "tracer: the kernel saw (all processes, none lost from these counts): {}\n",
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
            decode_errors: 0,
            failed: &failed,
            top_forkers: vec![],
            peak_rates: None,
            on_alert: None,
            reaps: ReapCounts::default(),
        };
        assert_eq!(
            s.render(),
            "tracer: 1.5 s, 4 records (exec 2, fork 2), 0 events lost\n"
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
            "tracer: 2.0 s, 1 records (lost 1), 9 filtered out, 15 events lost (exec 12, exit 3; a larger --ring-size rides out \
             bigger bursts), 1 malformed records skipped, 7 records not written to out.jsonl\n\
             tracer: the kernel saw (all processes, none lost from these counts): fork 100\n\
             tracer: top forkers: 42 make (90), 7 sh (10)\n\
             tracer: peak fork rates: by parent 42 make 80/s\n\
             tracer: --on-alert ran 3 times, 1 failed; 1 alert dropped\n\
             tracer: reaps inferred from /proc: 1,000 (1,204 /proc look-ups for overdue zombies); \
             reaps told by a waitid with a NULL infop (the only zombie child): 3\n"
        );
    }
}
