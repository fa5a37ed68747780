//! What each fpstress process reports to its parent through a pipe, and the parent's tally.

use crate::fpstate::{reg_name, Mismatch};

/// Size of an encoded [`ChildReport`]: eight little-endian u64 (less than PIPE_BUF, so one
/// write is atomic).
pub const REPORT_BYTES: usize = 64;
const NO_REG: u64 = u64::MAX;

/// One stress process's results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildReport {
    pub iterations: u64,
    /// Registers found differing, summed over iterations.
    pub mismatches: u64,
    /// SIGUSR1 handlers run (each clobbered the FP registers).
    pub signals: u64,
    pub first_bad: Option<Mismatch>,
}

impl ChildReport {
    pub fn encode(&self) -> [u8; REPORT_BYTES] {
        let (reg, expected, actual) = match self.first_bad {
            Some(m) => (m.reg as u64, m.expected, m.actual),
            None => (NO_REG, 0, 0),
        };
        let words = [
            self.iterations,
            self.mismatches,
            self.signals,
            reg,
            expected as u64,
            (expected >> 64) as u64,
            actual as u64,
            (actual >> 64) as u64,
        ];
        let mut out = [0; REPORT_BYTES];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// `None` unless `bytes` is exactly one encoded report.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != REPORT_BYTES {
            return None;
        }
        let mut words = [0u64; REPORT_BYTES / 8];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        let [iterations, mismatches, signals, reg, e_lo, e_hi, a_lo, a_hi] = words;
        let first_bad = match reg {
            NO_REG => None,
            reg => Some(Mismatch {
                reg: usize::try_from(reg).ok()?,
                expected: u128::from(e_hi) << 64 | u128::from(e_lo),
                actual: u128::from(a_hi) << 64 | u128::from(a_lo),
            }),
        };
        Some(Self {
            iterations,
            mismatches,
            signals,
            first_bad,
        })
    }
}

/// The parent's tally over all stress processes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub procs: u64,
    pub iterations: u64,
    pub mismatches: u64,
    pub signals: u64,
    /// The first bad register of the first process that had one.
    pub first_bad: Option<Mismatch>,
    /// Processes that died, hung or reported nothing.
    pub lost: u64,
}

impl Totals {
    pub fn add(&mut self, report: &ChildReport) {
        self.iterations += report.iterations;
        self.mismatches += report.mismatches;
        self.signals += report.signals;
        if self.first_bad.is_none() {
            self.first_bad = report.first_bad;
        }
    }

    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.first_bad.is_none() && self.lost == 0 && self.iterations > 0
    }

    /// `lazyfp: linux fpstress PASS procs=P iterations=I mismatches=0`, or FAIL with the first
    /// bad register and the processes lost.
    pub fn verdict_line(&self) -> String {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let mut line = format!(
            "lazyfp: linux fpstress {verdict} procs={} iterations={} mismatches={}",
            self.procs, self.iterations, self.mismatches
        );
        if let Some(m) = self.first_bad {
            line += &format!(
                " first_bad={} expected={:#034x} actual={:#034x}",
                reg_name(m.reg),
                m.expected,
                m.actual
            );
        }
        if self.lost > 0 {
            line += &format!(" lost_procs={}", self.lost);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let clean = ChildReport {
            iterations: 123_456,
            mismatches: 0,
            signals: 99,
            first_bad: None,
        };
        assert_eq!(ChildReport::decode(&clean.encode()), Some(clean));
        let bad = ChildReport {
            iterations: 5,
            mismatches: 3,
            signals: 0,
            first_bad: Some(Mismatch {
                reg: 33,
                expected: u128::MAX - 1,
                actual: 1 << 127 | 7,
            }),
        };
        assert_eq!(ChildReport::decode(&bad.encode()), Some(bad));
        assert_eq!(ChildReport::decode(&bad.encode()[..63]), None);
        assert_eq!(ChildReport::decode(&[]), None);
    }

    #[test]
    fn pass_line_is_exact() {
        let mut totals = Totals {
            procs: 4,
            ..Totals::default()
        };
        for _ in 0..4 {
            totals.add(&ChildReport {
                iterations: 10,
                signals: 2,
                ..ChildReport::default()
            });
        }
        assert!(totals.passed());
        assert_eq!(totals.signals, 8);
        assert_eq!(
            totals.verdict_line(),
            "lazyfp: linux fpstress PASS procs=4 iterations=40 mismatches=0"
        );
    }

    #[test]
    fn fail_line_names_the_first_bad_register() {
        let mut totals = Totals {
            procs: 2,
            ..Totals::default()
        };
        let first = Mismatch {
            reg: 7,
            expected: 0xAB,
            actual: 0xCD,
        };
        totals.add(&ChildReport {
            iterations: 10,
            mismatches: 2,
            signals: 0,
            first_bad: Some(first),
        });
        totals.add(&ChildReport {
            iterations: 10,
            mismatches: 1,
            signals: 0,
            first_bad: Some(Mismatch { reg: 1, ..first }),
        });
        assert!(!totals.passed());
        assert_eq!(
            totals.verdict_line(),
            "lazyfp: linux fpstress FAIL procs=2 iterations=20 mismatches=3 first_bad=v7 \
             expected=0x000000000000000000000000000000ab actual=0x000000000000000000000000000000cd"
        );
    }

    #[test]
    fn lost_processes_or_no_work_fail() {
        let mut totals = Totals {
            procs: 1,
            iterations: 10,
            lost: 1,
            ..Totals::default()
        };
        assert!(!totals.passed());
        assert!(totals.verdict_line().ends_with("mismatches=0 lost_procs=1"));
        totals.lost = 0;
        assert!(totals.passed());
        totals.iterations = 0;
        assert!(!totals.passed());
    }
}
