//! Benchmark bookkeeping: which round trips are timed and how the samples are summarised.

/// A timed exit kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchKind {
    /// HVC fast path (`hc::NOP`, x7 = `hc::HVC_X7`): one fault IPC, no register calls.
    Hvc,
    /// SMC (`hc::NOP`): the VMM reads and writes registers.
    Smc,
    /// MMIO read of GICD_TYPER.
    MmioRead,
    /// MMIO byte write to GICD_IPRIORITYR.
    MmioWrite,
    Wfi,
}

impl BenchKind {
    pub const ALL: [Self; 5] = [
        Self::Hvc,
        Self::Smc,
        Self::MmioRead,
        Self::MmioWrite,
        Self::Wfi,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Hvc => "hvc",
            Self::Smc => "smc",
            Self::MmioRead => "mmio_read",
            Self::MmioWrite => "mmio_write",
            Self::Wfi => "wfi",
        }
    }
}

/// Median and 10th/90th percentiles of `samples` (sorted in place); `None` when empty.
pub fn summarise(samples: &mut [u64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() - 1) * q / 100];
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    Some(Summary {
        median,
        p10: at(10),
        p90: at(90),
        p99: at(99),
    })
}

/// A summary of per-exit times in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub median: u64,
    pub p10: u64,
    pub p90: u64,
    pub p99: u64,
}

/// Counter ticks of a batch of `per_batch` round trips → ns per round trip.
pub const fn ticks_to_ns(ticks: u64, freq_hz: u64, per_batch: u64) -> u64 {
    if freq_hz == 0 || per_batch == 0 {
        return 0;
    }
    (ticks as u128 * 1_000_000_000 / (freq_hz as u128 * per_batch as u128)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_samples() {
        let mut s = [5, 1, 4, 2, 3];
        assert_eq!(
            summarise(&mut s),
            Some(Summary {
                median: 3,
                p10: 1,
                p90: 4,
                p99: 4
            })
        );
        let mut even = [4, 1, 3, 2];
        assert_eq!(summarise(&mut even).unwrap().median, 2);
        assert_eq!(summarise(&mut []), None);
        let mut many: Vec<u64> = (0..=100).rev().collect();
        assert_eq!(
            summarise(&mut many),
            Some(Summary {
                median: 50,
                p10: 10,
                p90: 90,
                p99: 99
            })
        );
    }

    #[test]
    fn tick_conversion() {
        // 62.5 MHz: one tick is 16 ns; a batch of 8 exits taking 1500 ticks is 3000 ns each.
        assert_eq!(ticks_to_ns(1500, 62_500_000, 8), 3000);
        assert_eq!(ticks_to_ns(10, 0, 8), 0);
        assert_eq!(ticks_to_ns(10, 62_500_000, 0), 0);
    }

    #[test]
    fn kinds_have_distinct_names() {
        let names: Vec<_> = BenchKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["hvc", "smc", "mmio_read", "mmio_write", "wfi"]);
    }
}
