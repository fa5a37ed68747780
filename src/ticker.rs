//! Notification latency during an exit storm: the analogue of KVM's interrupts-off window.
//!
//! The ticker PD (priority above the VMM, a small MCS budget per period) wakes at each
//! replenishment, preempting whoever runs — the guest, or the VMM in the middle of an exit —
//! stamps the physical counter into the shared page and signals the VMM. The VMM takes the
//! notification only once it is back in its receive loop, so the delay it records is how long
//! an event waits behind exit handling.
use core::sync::atomic::{AtomicU64, Ordering};

/// The page the ticker writes and the VMM reads.
#[repr(C)]
#[derive(Debug, Default)]
pub struct TickerPage {
    /// Ticks sent so far.
    pub seq: AtomicU64,
    /// Physical counter when the last tick was signalled.
    pub sent_at: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<TickerPage>() <= 4096);

impl TickerPage {
    /// The ticker's side: stamps a tick.
    pub fn stamp(&self, now: u64) {
        self.sent_at.store(now, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// The VMM's side: (sequence, time sent) of the latest tick.
    pub fn latest(&self) -> (u64, u64) {
        let seq = self.seq.load(Ordering::Acquire);
        (seq, self.sent_at.load(Ordering::Relaxed))
    }
}

/// Samples kept for percentiles (the run's first ones; the count goes on).
const SAMPLES: usize = 512;

/// Latencies in counter ticks.
#[derive(Debug)]
pub struct LatencyStats {
    samples: heapless::Vec<u64, SAMPLES>,
    count: u64,
    max: u64,
    last_seq: u64,
    /// Ticks the VMM never saw separately (two signals merged into one notification).
    pub merged: u64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self {
            samples: heapless::Vec::new(),
            count: 0,
            max: 0,
            last_seq: 0,
            merged: 0,
        }
    }
}

/// Median, 90th percentile and maximum, in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    pub median_ns: u64,
    pub p90_ns: u64,
    pub max_ns: u64,
}

impl LatencyStats {
    /// A notification arrived at counter `now` for the tick `(seq, sent_at)`.
    pub fn record(&mut self, (seq, sent_at): (u64, u64), now: u64) {
        if seq == self.last_seq {
            return; // nothing new (a notification with no tick behind it)
        }
        self.merged += seq.saturating_sub(self.last_seq + 1);
        self.last_seq = seq;
        let d = now.saturating_sub(sent_at);
        self.count += 1;
        self.max = self.max.max(d);
        let _ = self.samples.push(d);
    }

    /// Summary in ns for a counter of `freq_hz` (sorts the samples in place); None before any
    /// sample.
    pub fn summary(&mut self, freq_hz: u64) -> Option<LatencySummary> {
        if self.samples.is_empty() || freq_hz == 0 {
            return None;
        }
        let s = &mut self.samples;
        s.sort_unstable();
        let ns = |t: u64| (t as u128 * 1_000_000_000 / freq_hz as u128) as u64;
        Some(LatencySummary {
            count: self.count,
            median_ns: ns(s[s.len() / 2]),
            p90_ns: ns(s[(s.len() - 1) * 9 / 10]),
            max_ns: ns(self.max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_latencies() {
        let page = TickerPage::default();
        let mut st = LatencyStats::default();
        assert_eq!(st.summary(1_000_000_000), None);
        for (i, delay) in [10u64, 30, 20, 1000].iter().enumerate() {
            let sent = 100 * i as u64;
            page.stamp(sent);
            st.record(page.latest(), sent + delay);
        }
        st.record(page.latest(), 5000); // a second notification for the same tick
        let s = st.summary(1_000_000_000).unwrap();
        assert_eq!(
            (s.count, s.median_ns, s.p90_ns, s.max_ns),
            (4, 30, 30, 1000)
        );
        page.stamp(1);
        page.stamp(2);
        st.record(page.latest(), 3);
        assert_eq!(st.merged, 1);
        // 62.5 MHz: 16 ns per tick.
        let mut st = LatencyStats::default();
        st.record((1, 0), 2);
        assert_eq!(st.summary(62_500_000).unwrap().median_ns, 32);
    }
}
