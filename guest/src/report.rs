//! Check results and how the guest reports them: a failed check carries the reason and the two
//! values the VMM sees in x2 (got) and x3 (expected) of [`hc::VERDICT`](lazyfp::abi::hc::VERDICT).

use core::fmt;

use lazyfp::abi::{FailReason, Verdict};

/// A check that went wrong: which one (for the console), why (for the VMM), and the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Short name of the check, printed on the console.
    pub check: &'static str,
    pub reason: FailReason,
    /// x2 of the verdict.
    pub got: u64,
    /// x3 of the verdict.
    pub expected: u64,
    /// What `got` and `expected` stand for, for the console ("got", "expected" by default).
    pub labels: [&'static str; 2],
}

/// Outcome of one check.
pub type CheckResult = Result<(), Failure>;

impl Failure {
    pub const fn new(check: &'static str, reason: FailReason, got: u64, expected: u64) -> Self {
        Self {
            check,
            reason,
            got,
            expected,
            labels: ["got", "expected"],
        }
    }

    /// Names x2 and x3 on the console where they are not a got/expected pair.
    pub const fn labelled(self, got: &'static str, expected: &'static str) -> Self {
        Self {
            labels: [got, expected],
            ..self
        }
    }

    /// x1, x2, x3 of the [`hc::VERDICT`](lazyfp::abi::hc::VERDICT) call reporting this failure.
    pub const fn verdict_args(&self) -> [u64; 3] {
        [
            verdict_code(Verdict::Fail(self.reason)),
            self.got,
            self.expected,
        ]
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}={:#x} {}={:#x}",
            self.check,
            self.reason.as_str(),
            self.labels[0],
            self.got,
            self.labels[1],
            self.expected
        )
    }
}

/// x1 of [`hc::VERDICT`](lazyfp::abi::hc::VERDICT): 0 for a pass, else the [`FailReason`]
/// discriminant (the inverse of [`Verdict::from_code`]).
pub const fn verdict_code(verdict: Verdict) -> u64 {
    match verdict {
        Verdict::Pass => 0,
        Verdict::Fail(reason) => reason as u64,
    }
}

/// Passes if `got == expected`.
pub fn expect_eq(check: &'static str, reason: FailReason, got: u64, expected: u64) -> CheckResult {
    if got == expected {
        Ok(())
    } else {
        Err(Failure::new(check, reason, got, expected))
    }
}

/// Passes if every bit of `bits` is set in `got` (other bits are the device's business).
pub fn expect_bits(check: &'static str, reason: FailReason, got: u64, bits: u64) -> CheckResult {
    if got & bits == bits {
        Ok(())
    } else {
        Err(Failure::new(check, reason, got, bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_codes_round_trip_through_the_abi() {
        assert_eq!(verdict_code(Verdict::Pass), 0);
        assert_eq!(
            Verdict::from_code(verdict_code(Verdict::Pass)),
            Verdict::Pass
        );
        for code in 1..=18 {
            let v = Verdict::from_code(code);
            assert_eq!(verdict_code(v), code, "FailReason code {code}");
        }
    }

    #[test]
    fn expect_eq_reports_got_and_expected_in_order() {
        assert_eq!(
            expect_eq("x", FailReason::PsciVersion, 0x10001, 0x10001),
            Ok(())
        );
        let f = expect_eq("psci-version", FailReason::PsciVersion, 0x10000, 0x10001).unwrap_err();
        assert_eq!(
            f.verdict_args(),
            [FailReason::PsciVersion as u64, 0x10000, 0x10001]
        );
        assert_eq!(f.verdict_args()[0], 1);
    }

    #[test]
    fn expect_bits_ignores_other_bits_but_not_missing_ones() {
        let bit27 = 1 << 27;
        assert_eq!(
            expect_bits("e", FailReason::GicdReadback, 0xFFFF | bit27, bit27),
            Ok(())
        );
        let f = expect_bits("e", FailReason::GicdReadback, 0xFFFF, bit27).unwrap_err();
        assert_eq!((f.got, f.expected), (0xFFFF, bit27));
    }

    #[test]
    fn failure_prints_check_reason_and_values() {
        let f = Failure::new("uart-periph-id0", FailReason::UartId, 0x12, 0x11);
        assert_eq!(
            f.to_string(),
            "uart-periph-id0 (uart-id): got=0x12 expected=0x11"
        );
        let f = f.labelled("esr", "elr");
        assert_eq!(
            f.to_string(),
            "uart-periph-id0 (uart-id): esr=0x12 elr=0x11"
        );
        assert_eq!(f.verdict_args(), [FailReason::UartId as u64, 0x12, 0x11]);
    }
}
