//! Sliding-window event counts, for rates.
//!
//! A [`Window`] counts events in the last `span` of time in [`SLOTS`] slots of
//! `span / SLOTS` each, so it costs a few dozen bytes whatever the rate. The
//! count covers the current (partly elapsed) slot and the `SLOTS - 1` before it:
//! between `span - span/SLOTS` and `span` of history; rates divide by the time
//! actually covered.
//!
//! Time only moves forward: an event older than the newest one seen is counted
//! in its own slot while that slot is still in the window (events from other
//! CPUs arrive slightly out of order), and ignored once it has left it.

/// Slots per window.
pub const SLOTS: usize = 10;

#[derive(Clone, Debug)]
pub struct Window {
    slot_ns: u64,
    /// Absolute slot number (`t / slot_ns`) of the newest slot.
    head: u64,
    slots: [u32; SLOTS],
    total: u64,
}

impl Window {
    /// A window `span_ns` long (at least [`SLOTS`] ns).
    pub fn new(span_ns: u64) -> Self {
        Window {
            slot_ns: (span_ns / SLOTS as u64).max(1),
            head: 0,
            slots: [0; SLOTS],
            total: 0,
        }
    }

    pub fn span_ns(&self) -> u64 {
        self.slot_ns * SLOTS as u64
    }

    /// Moves the newest slot forward to the one holding `now`, emptying the slots
    /// that fall out.
    fn advance(&mut self, now: u64) {
        let slot = now / self.slot_ns;
        if slot <= self.head {
            return;
        }
        if slot - self.head >= SLOTS as u64 {
            self.slots = [0; SLOTS];
            self.total = 0;
        } else {
            for s in self.head + 1..=slot {
                let i = (s % SLOTS as u64) as usize;
                self.total -= u64::from(self.slots[i]);
                self.slots[i] = 0;
            }
        }
        self.head = slot;
    }

    /// The slot index of time `t`, if `t` is still inside the window.
    fn index(&self, t: u64) -> Option<usize> {
        let slot = t / self.slot_ns;
        (slot <= self.head && slot + SLOTS as u64 > self.head)
            .then_some((slot % SLOTS as u64) as usize)
    }

    /// Counts `n` events at time `t`. Returns false if `t` is too old to count.
    pub fn add(&mut self, t: u64, n: u32) -> bool {
        self.advance(t);
        let Some(i) = self.index(t) else {
            return false;
        };
        self.slots[i] = self.slots[i].saturating_add(n);
        self.total += u64::from(n);
        true
    }

    /// Takes back `n` events counted at time `t` (if still in the window).
    pub fn remove(&mut self, t: u64, n: u32) {
        if let Some(i) = self.index(t) {
            let n = n.min(self.slots[i]);
            self.slots[i] -= n;
            self.total -= u64::from(n);
        }
    }

    /// Events in the window ending at `now`.
    pub fn count(&mut self, now: u64) -> u64 {
        self.advance(now);
        self.total
    }

    /// Events per second over the window ending at `now`: the count divided by
    /// the time its slots cover (the current slot only up to `now`).
    pub fn rate_per_s(&mut self, now: u64) -> u64 {
        let n = self.count(now);
        let oldest = (self.head + 1).saturating_sub(SLOTS as u64) * self.slot_ns;
        let covered = now
            .saturating_sub(oldest)
            .clamp(self.slot_ns, self.span_ns());
        (u128::from(n) * 1_000_000_000 / u128::from(covered)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn counts_slide_out() {
        let mut w = Window::new(1000 * MS);
        for i in 0..10 {
            assert!(w.add(i * 100 * MS, 1));
        }
        assert_eq!(w.count(950 * MS), 10);
        // 1.0 s: the slot of t=0 leaves.
        assert_eq!(w.count(1000 * MS), 9);
        assert_eq!(w.count(1450 * MS), 5);
        assert_eq!(w.count(5000 * MS), 0);
        assert!(w.add(5000 * MS, 3));
        // 3 events in the 901 ms the slots cover (5001 - 4100).
        assert_eq!(w.rate_per_s(5001 * MS), 3);
        assert_eq!(w.rate_per_s(5099 * MS), 3);
    }

    #[test]
    fn late_events_count_in_their_slot_or_not_at_all() {
        let mut w = Window::new(1000 * MS);
        w.add(2000 * MS, 1);
        assert!(w.add(1500 * MS, 1), "late but inside the window");
        assert!(!w.add(1000 * MS, 1), "left the window already");
        assert_eq!(w.count(2000 * MS), 2);
        // The late one leaves with its own slot.
        assert_eq!(w.count(2550 * MS), 1);
    }

    #[test]
    fn remove_takes_back_only_what_is_there() {
        let mut w = Window::new(1000 * MS);
        w.add(100 * MS, 2);
        w.remove(100 * MS, 5);
        assert_eq!(w.count(100 * MS), 0);
        w.add(200 * MS, 1);
        w.remove(5000 * MS, 1); // a future time: not in the window, nothing happens
        assert_eq!(w.count(200 * MS), 1);
    }

    #[test]
    fn rate_scales_with_span() {
        let mut w = Window::new(10_000 * MS);
        w.add(20_000 * MS, 50);
        assert_eq!(w.rate_per_s(20_999 * MS), 5);
        // 1000 events evenly over the last second, counted at its end.
        let mut w = Window::new(1000 * MS);
        for i in 0..1000 {
            w.add(10_000 * MS + i * MS, 1);
        }
        assert_eq!(w.rate_per_s(10_999 * MS), 1001);
    }
}
