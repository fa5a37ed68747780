//! Emulation of system registers that reach the VMM as trapped accesses (EC 0x18).
//!
//! On the Microkit 2.3 kernels none do: seL4's HCR_EL2 for vCPUs sets no TID/TACR/TVM bits, and
//! these kernels export the physical timer (CNTHCTL_EL2.EL1PCEN = 1). A kernel built without
//! that export traps EL1's physical-timer accesses; for it the physical timer is emulated as
//! inert storage that never fires, as if its interrupt were never enabled (the guest's timer is
//! the virtual one, owned by seL4 and delivered as a VPPI). Anything else is reported unhandled.
use core::fmt;

use crate::esr::SysregAccess;

const CNTP_TVAL_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 0);
const CNTP_CTL_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 1);
const CNTP_CVAL_EL0: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 2);

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

/// Emulated physical timer registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerRegs {
    ctl: u64,
    cval: u64,
}

impl TimerRegs {
    /// Performs `access`; for a read returns the value for rt. `value` is rt's value for a write.
    pub fn access(&mut self, access: SysregAccess, value: u64) -> Result<Option<u64>, SysregError> {
        let key = access.key();
        if access.read {
            match key {
                // ISTATUS (bit 2) stays 0: the emulated timer never fires.
                CNTP_CTL_EL0 => Ok(Some(self.ctl & 0b11)),
                CNTP_CVAL_EL0 => Ok(Some(self.cval)),
                CNTP_TVAL_EL0 => Ok(Some(0)),
                _ => Err(SysregError::Unhandled(access)),
            }
        } else {
            match key {
                CNTP_CTL_EL0 => self.ctl = value & 0b11,
                CNTP_CVAL_EL0 => self.cval = value,
                CNTP_TVAL_EL0 => {}
                _ => return Err(SysregError::Unhandled(access)),
            }
            Ok(None)
        }
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
    fn physical_timer_is_storage() {
        let mut t = TimerRegs::default();
        assert_eq!(
            t.access(acc(CNTP_CVAL_EL0, false), 0x1234_5678_9abc),
            Ok(None)
        );
        assert_eq!(
            t.access(acc(CNTP_CVAL_EL0, true), 0),
            Ok(Some(0x1234_5678_9abc))
        );
        assert_eq!(t.access(acc(CNTP_CTL_EL0, false), 0xffff), Ok(None));
        assert_eq!(
            t.access(acc(CNTP_CTL_EL0, true), 0),
            Ok(Some(3)),
            "ISTATUS reads 0"
        );
    }

    #[test]
    fn unknown_register_is_an_error() {
        let mut t = TimerRegs::default();
        let a = acc((3, 0, 1, 0, 1), true);
        assert_eq!(t.access(a, 0), Err(SysregError::Unhandled(a)));
        assert_eq!(
            format!("{}", SysregError::Unhandled(a)),
            "mrs S3_0_C1_C0_1 (x3)"
        );
    }
}
