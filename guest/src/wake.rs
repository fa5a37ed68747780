//! What a blocking WFI must show once it returns: woken by the virtual timer's deadline (the
//! WFI check) or by another vCPU's SGI (the SGI check), having cost the VMM only a few exits.

use lazyfp::abi::{FailReason, VTIMER_IRQ};

use crate::hw::timer;
use crate::report::{expect_bits, expect_eq, CheckResult, Failure};

/// Exits the VMM may count for one blocking WFI and its wake-up: the WFI, the timer's VPPI
/// event, the maintenance after the EOI and the COUNTERS call, with room to spare (a VMM that
/// re-runs the WFI until the deadline counts thousands).
pub const WFI_MAX_EXITS: u64 = 8;

/// The SGI vCPU 1 sends to wake vCPU 0.
pub const WAKE_SGI: u32 = 1;

/// What vCPU 0 saw around one WFI with IRQs masked and the virtual timer armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WfiWake {
    /// CNTV_CVAL_EL0 as armed.
    pub deadline: u64,
    /// CNTVCT_EL0 right after the WFI.
    pub woke_at: u64,
    /// CNTV_CTL_EL0 right after the WFI.
    pub cntv_ctl: u64,
    /// GICC_IAR's interrupt id after the WFI.
    pub intid: u32,
    /// Exits the VMM counted for this vCPU across the wait (COUNTERS after − before).
    pub exits: u64,
}

impl WfiWake {
    /// Passes if the WFI lasted until the deadline, the timer condition holds, the timer's
    /// interrupt is the one pending at the CPU interface, and the wait cost at most
    /// [`WFI_MAX_EXITS`] exits. Every failure is WfiWake.
    pub fn check(&self) -> CheckResult {
        let reason = FailReason::WfiWake;
        if self.woke_at < self.deadline {
            return Err(
                Failure::new("wfi-deadline", reason, self.woke_at, self.deadline)
                    .labelled("counter", "deadline"),
            );
        }
        expect_bits("wfi-istatus", reason, self.cntv_ctl, timer::CTL_ISTATUS)?;
        expect_eq("wfi-iar", reason, self.intid.into(), VTIMER_IRQ.into())?;
        if self.exits > WFI_MAX_EXITS {
            return Err(Failure::new("wfi-exits", reason, self.exits, WFI_MAX_EXITS)
                .labelled("exits", "limit"));
        }
        Ok(())
    }
}

/// The emulated EL1 physical timer's PPI.
pub const PTIMER_PPI: u32 = lazyfp::abi::PTIMER_IRQ as u32;

/// What vCPU 0 saw around one WFI with IRQs masked and the physical timer armed (boards where
/// the VMM emulates it: `hc::FEATURE_PTIMER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtimerFire {
    /// CNTP_CVAL_EL0 as armed through CNTP_TVAL_EL0, and the count when it was.
    pub deadline: u64,
    pub armed_at: u64,
    /// CNTP_CTL_EL0 right after arming, and right after the WFI.
    pub ctl_before: u64,
    pub ctl_after: u64,
    /// CNTPCT_EL0 and CNTP_TVAL_EL0 right after the WFI.
    pub woke_at: u64,
    pub tval_after: u64,
    /// The interrupt id the CPU interface gave after the WFI.
    pub intid: u32,
}

impl PtimerFire {
    /// Passes if TVAL set CVAL ahead of the count, the timer did not fire before its deadline
    /// and did after it (ISTATUS, TVAL negative), and PPI 30 is what was pending. PhysTimer.
    pub fn check(&self, ticks: u64) -> CheckResult {
        let reason = FailReason::PhysTimer;
        if self.deadline < self.armed_at + ticks || self.deadline > self.armed_at + 2 * ticks {
            return Err(
                Failure::new("ptimer-cval", reason, self.deadline, self.armed_at)
                    .labelled("cval", "count"),
            );
        }
        expect_eq(
            "ptimer-istatus-before",
            reason,
            self.ctl_before,
            timer::CTL_ENABLE,
        )?;
        if self.woke_at < self.deadline {
            return Err(
                Failure::new("ptimer-deadline", reason, self.woke_at, self.deadline)
                    .labelled("count", "deadline"),
            );
        }
        expect_bits("ptimer-istatus", reason, self.ctl_after, timer::CTL_ISTATUS)?;
        expect_eq("ptimer-tval-negative", reason, self.tval_after >> 31, 1)?;
        expect_eq("ptimer-iar", reason, self.intid.into(), PTIMER_PPI.into())
    }
}

/// The SGI check: `intid` (from GICC_IAR after vCPU 0's WFI) must be [`WAKE_SGI`]; x2 = the
/// interrupt id seen (1023 if none), x3 = whether vCPU 1 said it sent the SGI.
pub fn sgi_wake_check(intid: u32, sent: bool) -> CheckResult {
    if intid == WAKE_SGI {
        Ok(())
    } else {
        Err(
            Failure::new("sgi-wake", FailReason::SgiWake, intid.into(), sent.into())
                .labelled("intid", "sent"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: WfiWake = WfiWake {
        deadline: 1_000_000,
        woke_at: 1_000_050,
        cntv_ctl: timer::CTL_ENABLE | timer::CTL_ISTATUS,
        intid: 27,
        exits: 4,
    };

    const FIRED: PtimerFire = PtimerFire {
        deadline: 10_100,
        armed_at: 10_000,
        ctl_before: timer::CTL_ENABLE,
        ctl_after: timer::CTL_ENABLE | timer::CTL_ISTATUS,
        woke_at: 10_150,
        tval_after: (-50i32) as u32 as u64,
        intid: PTIMER_PPI,
    };

    #[test]
    fn ptimer_fire_passes_only_when_on_time_and_pending() {
        assert_eq!(FIRED.check(100), Ok(()));
        let name = |p: PtimerFire| p.check(100).unwrap_err().check;
        assert_eq!(
            name(PtimerFire {
                deadline: 10_050,
                ..FIRED
            }),
            "ptimer-cval"
        );
        assert_eq!(
            name(PtimerFire {
                ctl_before: 5,
                ..FIRED
            }),
            "ptimer-istatus-before"
        );
        assert_eq!(
            name(PtimerFire {
                woke_at: 10_099,
                ..FIRED
            }),
            "ptimer-deadline"
        );
        assert_eq!(
            name(PtimerFire {
                ctl_after: 1,
                ..FIRED
            }),
            "ptimer-istatus"
        );
        assert_eq!(
            name(PtimerFire {
                tval_after: 5,
                ..FIRED
            }),
            "ptimer-tval-negative"
        );
        assert_eq!(name(PtimerFire { intid: 27, ..FIRED }), "ptimer-iar");
    }

    fn failed(w: WfiWake) -> (&'static str, [u64; 3]) {
        let f = w.check().unwrap_err();
        (f.check, f.verdict_args())
    }

    #[test]
    fn a_blocking_wfi_woken_by_the_timer_passes() {
        assert_eq!(GOOD.check(), Ok(()));
        let exact = WfiWake {
            woke_at: GOOD.deadline,
            exits: WFI_MAX_EXITS,
            ..GOOD
        };
        assert_eq!(exact.check(), Ok(()));
    }

    #[test]
    fn a_wfi_that_returned_early_fails_on_the_deadline() {
        // Today's VMM steps over the WFI at once.
        let early = WfiWake {
            woke_at: 400,
            cntv_ctl: timer::CTL_ENABLE,
            intid: 1023,
            exits: 2,
            ..GOOD
        };
        let code = FailReason::WfiWake as u64;
        assert_eq!(failed(early), ("wfi-deadline", [code, 400, 1_000_000]));
    }

    #[test]
    fn each_missing_sign_of_the_wake_up_fails_wfi_wake() {
        let code = FailReason::WfiWake as u64;
        let no_istatus = WfiWake {
            cntv_ctl: timer::CTL_ENABLE,
            ..GOOD
        };
        assert_eq!(failed(no_istatus), ("wfi-istatus", [code, 1, 4]));
        let not_pending = WfiWake {
            intid: 1023,
            ..GOOD
        };
        assert_eq!(failed(not_pending), ("wfi-iar", [code, 1023, 27]));
        let trap_loop = WfiWake {
            exits: 5000,
            ..GOOD
        };
        assert_eq!(
            failed(trap_loop),
            ("wfi-exits", [code, 5000, WFI_MAX_EXITS])
        );
    }

    #[test]
    fn only_sgi_1_counts_as_the_wake_up() {
        assert_eq!(sgi_wake_check(1, true), Ok(()));
        let code = FailReason::SgiWake as u64;
        let f = sgi_wake_check(1023, true).unwrap_err();
        assert_eq!(f.verdict_args(), [code, 1023, 1]);
        // The backstop timer instead of the SGI.
        let f = sgi_wake_check(27, false).unwrap_err();
        assert_eq!(f.verdict_args(), [code, 27, 0]);
    }
}
