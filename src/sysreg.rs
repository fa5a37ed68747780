//! Emulation of system registers that reach the VMM as trapped accesses (EC 0x18).
//!
//! Where the kernel exports the physical timer to user level (qemu_virt_aarch64,
//! CNTHCTL_EL2.EL1PCEN = 1) nothing traps. Where it does not (the i.MX8 boards), EL1's
//! physical-timer accesses trap, and the timer is emulated against the real counter:
//! CNTP_CTL_EL0 (ENABLE, IMASK, ISTATUS computed), CNTP_CVAL_EL0, CNTP_TVAL_EL0 (signed 32-bit
//! distance to CVAL) and CNTPCT_EL0. Its interrupt line ([`TimerRegs::asserted`]) is the VMM's to
//! raise as PPI 30 at [`TimerRegs::deadline`]. Anything else is reported unhandled.
use core::fmt;

use crate::esr::SysregAccess;

const CNTP_TVAL_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 0);
const CNTP_CTL_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 1);
const CNTP_CVAL_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 2);
const CNTPCT_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 0, 1);
const CTL_ENABLE: u64 = 1 << 0;
const CTL_IMASK: u64 = 1 << 1;
const CTL_ISTATUS: u64 = 1 << 2;

/// A system register access this VMM does not emulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysregError {
    Unhandled(SysregAccess),
}

impl fmt::Display for SysregError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self::Unhandled(a) = self;
        write!(
            f,
            "{} S{}_{}_C{}_C{}_{} (x{})",
            if a.read { "mrs" } else { "msr" },
            a.op0,
            a.op1,
            a.crn,
            a.crm,
            a.op2,
            a.rt
        )
    }
}

/// An emulated EL1 physical timer (one per vCPU), against the physical counter value `now` the
/// caller passes (the guest's physical count is the host's: no offset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerRegs {
    /// ENABLE and IMASK as written.
    ctl: u64,
    cval: u64,
}

impl TimerRegs {
    /// Performs `access`; for a read returns the value for rt. `value` is rt's value for a write.
    pub fn access(
        &mut self,
        access: SysregAccess,
        value: u64,
        now: u64,
    ) -> Result<Option<u64>, SysregError> {
        let key = access.key();
        if access.read {
            match key {
                CNTP_CTL_EL0 => Ok(Some(
                    self.ctl | if self.istatus(now) { CTL_ISTATUS } else { 0 },
                )),
                CNTP_CVAL_EL0 => Ok(Some(self.cval)),
                // TimerValue: the low 32 bits of CVAL - count (bits 63:32 are RES0).
                CNTP_TVAL_EL0 => Ok(Some(self.cval.wrapping_sub(now) & 0xffff_ffff)),
                CNTPCT_EL0 => Ok(Some(now)),
                _ => Err(SysregError::Unhandled(access)),
            }
        } else {
            match key {
                CNTP_CTL_EL0 => self.ctl = value & (CTL_ENABLE | CTL_IMASK),
                CNTP_CVAL_EL0 => self.cval = value,
                // A write sets CVAL to count + the sign-extended low 32 bits.
                CNTP_TVAL_EL0 => self.cval = now.wrapping_add(value as u32 as i32 as i64 as u64),
                _ => return Err(SysregError::Unhandled(access)),
            }
            Ok(None)
        }
    }

    /// ISTATUS: enabled and the count has reached CVAL.
    pub fn istatus(&self, now: u64) -> bool {
        self.ctl & CTL_ENABLE != 0 && now >= self.cval
    }

    /// The timer's interrupt line: ISTATUS and not masked.
    pub fn asserted(&self, now: u64) -> bool {
        self.istatus(now) && self.ctl & CTL_IMASK == 0
    }

    /// When the line asserts, if it can without another register write.
    pub fn deadline(&self) -> Option<u64> {
        (self.ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE).then_some(self.cval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(key: (u8, u8, u8, u8, u8), read: bool) -> SysregAccess {
        SysregAccess {
            op0: key.0,
            op1: key.1,
            crn: key.2,
            crm: key.3,
            op2: key.4,
            rt: 3,
            read,
        }
    }

    #[test]
    fn physical_timer_follows_the_counter() {
        let mut t = TimerRegs::default();
        let rd = |t: &mut TimerRegs, k, now| t.access(acc(k, true), 0, now).unwrap().unwrap();
        assert_eq!(t.access(acc(CNTP_CVAL_EL0, false), 1000, 10), Ok(None));
        assert_eq!(rd(&mut t, CNTP_CVAL_EL0, 10), 1000);
        assert_eq!(rd(&mut t, CNTP_TVAL_EL0, 10), 990);
        assert_eq!(
            rd(&mut t, CNTP_TVAL_EL0, 1010),
            (-10i32) as u32 as u64,
            "signed 32 bits"
        );
        assert_eq!(rd(&mut t, CNTPCT_EL0, 77), 77);
        // Disabled: no ISTATUS, no line, no deadline, even past CVAL.
        assert_eq!(rd(&mut t, CNTP_CTL_EL0, 2000), 0);
        assert!(!t.asserted(2000) && t.deadline().is_none());
        // Enabled: ISTATUS from CVAL on; the line and the deadline unless masked.
        t.access(acc(CNTP_CTL_EL0, false), 0xffff_fff9, 0).unwrap();
        assert_eq!(
            rd(&mut t, CNTP_CTL_EL0, 999),
            1,
            "only ENABLE and IMASK are kept"
        );
        assert_eq!(rd(&mut t, CNTP_CTL_EL0, 1000), 1 | 4);
        assert!(!t.asserted(999) && t.asserted(1000));
        assert_eq!(t.deadline(), Some(1000));
        t.access(acc(CNTP_CTL_EL0, false), 3, 0).unwrap();
        assert_eq!(
            rd(&mut t, CNTP_CTL_EL0, 1000),
            3 | 4,
            "ISTATUS shows through IMASK"
        );
        assert!(!t.asserted(1000) && t.deadline().is_none());
        // TVAL writes are relative to now, sign-extended.
        t.access(acc(CNTP_TVAL_EL0, false), 500, 4000).unwrap();
        assert_eq!(rd(&mut t, CNTP_CVAL_EL0, 0), 4500);
        t.access(acc(CNTP_TVAL_EL0, false), 0xffff_ff00, 4000)
            .unwrap();
        assert_eq!(rd(&mut t, CNTP_CVAL_EL0, 0), 4000 - 256);
        assert_eq!(
            t.access(acc(CNTPCT_EL0, false), 1, 0),
            Err(SysregError::Unhandled(acc(CNTPCT_EL0, false))),
            "CNTPCT is read-only"
        );
    }

    #[test]
    fn unknown_register_is_an_error() {
        let mut t = TimerRegs::default();
        let a = acc((3, 0, 1, 0, 1), true);
        assert_eq!(t.access(a, 0, 0), Err(SysregError::Unhandled(a)));
        assert_eq!(
            format!("{}", SysregError::Unhandled(a)),
            "mrs S3_0_C1_C0_1 (x3)"
        );
    }
}
