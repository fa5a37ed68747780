//! Median and spread of timing samples, and counter ticks to nanoseconds.

/// Order statistics of a set of samples: the median and, for the spread, the 10th and 90th
/// percentiles (nearest rank) and the extremes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    pub min: u64,
    pub p10: u64,
    pub median: u64,
    pub p90: u64,
    pub max: u64,
}

impl Spread {
    /// `None` for no samples. Sorts `samples`. An even count's median is the mean of the two
    /// middle samples, rounded down.
    pub fn of(samples: &mut [u64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            let (a, b) = (samples[n / 2 - 1], samples[n / 2]);
            a / 2 + b / 2 + (a % 2 + b % 2) / 2
        };
        // Nearest rank: the smallest sample with at least p% of the samples at or below it.
        let rank = |p: usize| samples[(n * p).div_ceil(100).max(1) - 1];
        Some(Self {
            min: samples[0],
            p10: rank(10),
            median,
            p90: rank(90),
            max: samples[n - 1],
        })
    }

    /// Each statistic mapped through `f` (for example ticks per batch to ns per operation).
    pub fn map(self, f: impl Fn(u64) -> u64) -> Self {
        Self {
            min: f(self.min),
            p10: f(self.p10),
            median: f(self.median),
            p90: f(self.p90),
            max: f(self.max),
        }
    }
}

/// Nanoseconds per operation for `ticks` of a counter running at `freq` Hz over `ops`
/// operations, rounded to nearest. 0 when `freq` or `ops` is 0.
pub fn per_op_ns(ticks: u64, ops: u64, freq: u64) -> u64 {
    let den = u128::from(freq) * u128::from(ops);
    if den == 0 {
        return 0;
    }
    let ns = (u128::from(ticks) * 1_000_000_000 + den / 2) / den;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_and_even_medians() {
        assert_eq!(Spread::of(&mut []), None);
        let one = Spread::of(&mut [5]).expect("one sample");
        assert_eq!(
            (one.min, one.p10, one.median, one.p90, one.max),
            (5, 5, 5, 5, 5)
        );
        assert_eq!(Spread::of(&mut [9, 1, 5]).map(|s| s.median), Some(5));
        assert_eq!(Spread::of(&mut [4, 1, 3, 2]).map(|s| s.median), Some(2));
        assert_eq!(Spread::of(&mut [3, 5]).map(|s| s.median), Some(4));
        // No overflow on huge samples.
        assert_eq!(
            Spread::of(&mut [u64::MAX, u64::MAX]).map(|s| s.median),
            Some(u64::MAX)
        );
    }

    #[test]
    fn percentiles_and_extremes() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let s = Spread::of(&mut samples).expect("samples");
        assert_eq!(
            s,
            Spread {
                min: 1,
                p10: 10,
                median: 50,
                p90: 90,
                max: 100
            }
        );
        // An outlier moves the max, not the median or the 90th percentile.
        let mut samples: Vec<u64> = (1..=99).chain([1_000_000]).collect();
        let s = Spread::of(&mut samples).expect("samples");
        assert_eq!((s.median, s.p90, s.max), (50, 90, 1_000_000));
    }

    #[test]
    fn map_applies_to_every_statistic() {
        let s = Spread::of(&mut [10, 20, 30])
            .expect("samples")
            .map(|t| t * 2);
        assert_eq!((s.min, s.median, s.max), (20, 40, 60));
    }

    #[test]
    fn ticks_to_ns() {
        // 62.5 MHz (QEMU virt): 16 ns a tick.
        assert_eq!(per_op_ns(1, 1, 62_500_000), 16);
        assert_eq!(per_op_ns(625, 10, 62_500_000), 1000);
        // 1 tick over 3 ops at 1 GHz: 0.33 ns rounds to 0; 2 ticks: 0.67 rounds to 1.
        assert_eq!(per_op_ns(1, 3, 1_000_000_000), 0);
        assert_eq!(per_op_ns(2, 3, 1_000_000_000), 1);
        assert_eq!(per_op_ns(u64::MAX, 1, 1), u64::MAX);
        assert_eq!(per_op_ns(100, 0, 62_500_000), 0);
        assert_eq!(per_op_ns(100, 1, 0), 0);
    }
}
