//! The FP torture's schedule (which VM exit each iteration provokes) and its tally, and the
//! idle-FP check of phase 2b.

use lazyfp::abi::{FailReason, NO_BAD_REGISTER};

use crate::pattern::{first_register, FpState};
use crate::report::{CheckResult, Failure};

/// The exit an iteration provokes while Q0–Q31, FPSR and FPCR hold its pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// `smc #0`, x0 = `hc::NOP`: a VCPUFault (EC 0x17) answered by the VMM.
    Smc,
    /// `hvc #0`, x0 = `hc::NOP`, x7 = `hc::HVC_X7`: an UnknownSyscall fault.
    Hvc,
    /// `ldr w1, [UART + UARTFR]`: a VMFault on the emulated PL011.
    MmioRead,
    /// `strb w1, [GICD + IPRIORITYR + 40]`: a VMFault on the emulated distributor.
    MmioWrite,
    /// `wfi` with the virtual timer armed 0.1 ms ahead: a VCPUFault (EC 0x01) that the VMM
    /// blocks until the timer's VPPI event; the guest then ends the interrupt (a VGIC
    /// maintenance exit).
    Wfi,
    /// `ldr w1, [GICD + TYPER]`: a VMFault on the emulated distributor. (No system register
    /// traps here: seL4's HCR_EL2 for vCPUs has no TID/TACR/TVM bits and Microkit's kernel
    /// exports the physical timer, so EL1 system register accesses never reach the VMM.)
    MmioReadGicd,
    /// `hvc #0`, x0 = `hc::NEON_INTERFERE`: another PD uses NEON on this core before the guest
    /// resumes, so under the lazy policy the guest's registers are saved back and reloaded on
    /// its next FP instruction.
    NeonInterfere,
}

impl ExitKind {
    /// The rotation of ordinary exits, by `iteration % 6`.
    pub const ROTATION: [Self; 6] = [
        Self::Smc,
        Self::Hvc,
        Self::MmioRead,
        Self::MmioWrite,
        Self::Wfi,
        Self::MmioReadGicd,
    ];
    /// Every 64th iteration (at offset 32) asks for NEON interference instead.
    pub const INTERFERE_PERIOD: u64 = 64;
    pub const INTERFERE_PHASE: u64 = 32;

    pub const fn for_iteration(iteration: u64) -> Self {
        if iteration % Self::INTERFERE_PERIOD == Self::INTERFERE_PHASE {
            Self::NeonInterfere
        } else {
            Self::ROTATION[(iteration % Self::ROTATION.len() as u64) as usize]
        }
    }
}

/// What the torture found so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Iterations recorded.
    pub iterations: u64,
    /// Iterations in which at least one register differed from the pattern.
    pub mismatches: u64,
    /// The first mismatch: (register number, iteration).
    pub first: Option<(u64, u64)>,
    /// Union of the per-iteration mismatch masks (bit n = register n, as in
    /// [`FpState::mismatch_mask`]).
    pub bad_registers: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub const fn new() -> Self {
        Self {
            iterations: 0,
            mismatches: 0,
            first: None,
            bad_registers: 0,
        }
    }

    /// Records one iteration: what was loaded and what came back.
    pub fn record(&mut self, iteration: u64, loaded: &FpState, stored: &FpState) {
        self.iterations += 1;
        let mask = loaded.mismatch_mask(stored);
        if let Some(reg) = first_register(mask) {
            self.mismatches += 1;
            self.bad_registers |= mask;
            if self.first.is_none() {
                self.first = Some((reg, iteration));
            }
        }
    }

    /// x3 of `hc::TORTURE_RESULT`: the first bad register, or [`NO_BAD_REGISTER`].
    pub fn first_bad_register(&self) -> u64 {
        self.first.map_or(NO_BAD_REGISTER, |(reg, _)| reg)
    }

    /// x1, x2, x3 of `hc::TORTURE_RESULT`.
    pub fn result_args(&self) -> [u64; 3] {
        [self.iterations, self.mismatches, self.first_bad_register()]
    }

    /// Fails with FpMismatch (got = first bad register, expected = its iteration) if any
    /// iteration mismatched.
    pub fn check(&self) -> CheckResult {
        match self.first {
            None => Ok(()),
            Some((reg, iteration)) => {
                Err(
                    Failure::new("fp-torture", FailReason::FpMismatch, reg, iteration)
                        .labelled("register", "iteration"),
                )
            }
        }
    }
}

/// Phase 2b: `fp_traps` read with `hc::COUNTERS` before and after a run of NEON_INTERFERE/NOP
/// hypercalls that used no FP must be equal (under the lazy policy the guest's saved-back
/// state is not reloaded while the guest does not use FP; under the eager one it stays 0).
/// A failure carries x2 = before, x3 = after.
pub fn idle_check(fp_traps_before: u64, fp_traps_after: u64) -> CheckResult {
    if fp_traps_after == fp_traps_before {
        Ok(())
    } else {
        Err(Failure::new(
            "fp-idle",
            FailReason::FpReloadedWhileIdle,
            fp_traps_before,
            fp_traps_after,
        )
        .labelled("fp_traps_before", "fp_traps_after"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lazyfp::abi::{REG_FPCR, REG_FPSR};

    #[test]
    fn schedule_rotates_through_six_exits_and_interferes_every_64th() {
        let kinds: Vec<ExitKind> = (0..6).map(ExitKind::for_iteration).collect();
        assert_eq!(kinds, ExitKind::ROTATION);
        assert_eq!(ExitKind::for_iteration(32), ExitKind::NeonInterfere);
        assert_eq!(ExitKind::for_iteration(96), ExitKind::NeonInterfere);
        assert_eq!(ExitKind::for_iteration(33), ExitKind::ROTATION[33 % 6]);
        let interferences =
            (0..6400).filter(|&i| ExitKind::for_iteration(i) == ExitKind::NeonInterfere);
        assert_eq!(interferences.count(), 100);
    }

    #[test]
    fn every_exit_kind_occurs_in_the_default_run() {
        let mut seen = [false; 7];
        for i in 0..128 {
            let k = ExitKind::for_iteration(i);
            let idx = ExitKind::ROTATION.iter().position(|&r| r == k).unwrap_or(6);
            seen[idx] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn clean_run_reports_no_bad_register_and_passes() {
        let mut t = Tally::new();
        for i in 0..10 {
            let s = FpState::pattern(0, i);
            t.record(i, &s, &s);
        }
        assert_eq!(t.result_args(), [10, 0, NO_BAD_REGISTER]);
        assert_eq!(t.check(), Ok(()));
    }

    #[test]
    fn tally_keeps_the_first_mismatch_and_counts_bad_iterations() {
        let mut t = Tally::new();
        for i in 0..100 {
            let want = FpState::pattern(0, i);
            let mut got = want;
            if i == 40 {
                got.fpcr = 0;
                got.q[9] = 0;
            }
            if i == 70 {
                got.q[2] ^= 1 << 127;
                got.fpsr ^= 1;
            }
            t.record(i, &want, &got);
        }
        assert_eq!(t.mismatches, 2);
        assert_eq!(t.first, Some((9, 40)));
        assert_eq!(t.result_args(), [100, 2, 9]);
        assert_eq!(
            t.bad_registers,
            1 << 2 | 1 << 9 | 1 << REG_FPSR | 1 << REG_FPCR
        );
        let f = t.check().unwrap_err();
        assert_eq!(f.verdict_args(), [FailReason::FpMismatch as u64, 9, 40]);
    }

    #[test]
    fn fpcr_only_mismatch_reports_register_33() {
        let mut t = Tally::new();
        let want = FpState::pattern(0, 5);
        let got = FpState {
            fpcr: want.fpcr ^ (1 << 22),
            ..want
        };
        t.record(5, &want, &got);
        assert_eq!(t.first_bad_register(), REG_FPCR);
    }

    #[test]
    fn idle_check_passes_on_equal_counts_and_reports_before_after() {
        assert_eq!(idle_check(0, 0), Ok(()));
        assert_eq!(idle_check(17, 17), Ok(()));
        let f = idle_check(17, 18).unwrap_err();
        assert_eq!(
            f.verdict_args(),
            [FailReason::FpReloadedWhileIdle as u64, 17, 18]
        );
    }
}
