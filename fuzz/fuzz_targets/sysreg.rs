//! Trapped MSR/MRS (ESR EC 0x18) in any order, decoded from the raw ISS and emulated.
//!
//! Invariants: the ISS fields decode and re-encode losslessly (bits 21:0); the physical timer
//! follows the counter value `now` of each access: CNTP_CVAL reads the last value written (or
//! set through TVAL: now + the sign-extended low 32 bits), CNTP_CTL the last ENABLE/IMASK
//! written plus ISTATUS (enabled and now >= CVAL), CNTP_TVAL the low 32 bits of CVAL - now,
//! CNTPCT now; the line is ISTATUS and not IMASK, and the deadline CVAL when enabled and
//! unmasked; a read gives a value and a write none; any other register is refused as
//! `Unhandled` with the access itself and leaves the timer as it was.
#![no_main]

use arbitrary::Arbitrary;
use lazyfp::{Esr, SysregAccess, SysregError, TimerRegs};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Access {
    /// Bits 21:0 of the ISS when `timer` is None; else the register (op2 % 3) and direction.
    iss: u32,
    timer: Option<(u8, bool)>,
    value: u64,
    now: u64,
}

const CTL: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 1);
const CVAL: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 2);
const TVAL: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 0);
const PCT: (u8, u8, u8, u8, u8) = (3, 3, 14, 0, 1);

fn iss_of(a: SysregAccess) -> u32 {
    (a.op0 as u32) << 20
        | (a.op2 as u32) << 17
        | (a.op1 as u32) << 14
        | (a.crn as u32) << 10
        | (a.rt as u32) << 5
        | (a.crm as u32) << 1
        | a.read as u32
}

fuzz_target!(|accesses: Vec<Access>| {
    let mut t = TimerRegs::default();
    let (mut ctl, mut cval) = (0u64, 0u64);
    for acc in accesses {
        let iss = match acc.timer {
            // mrs/msr xN, cntp_{tval,ctl,cval}_el0 with rt from the raw bits.
            Some((reg, read)) => {
                (3 << 20)
                    | ((reg % 3) as u32) << 17
                    | 3 << 14
                    | 14 << 10
                    | (acc.iss & 0x3e0)
                    | 2 << 1
                    | read as u32
            }
            None => acc.iss,
        };
        let esr = Esr((0x18 << 26) | (1 << 25) | iss as u64);
        let a = SysregAccess::decode(esr);
        assert_eq!(iss_of(a), esr.iss() & 0x3f_ffff, "{a:?}");
        assert!(a.op0 < 4 && a.op1 < 8 && a.op2 < 8 && a.crn < 16 && a.crm < 16 && a.rt < 32);

        let before = t;
        let now = acc.now;
        let r = t.access(a, acc.value, now);
        let istatus = ctl & 1 != 0 && now >= cval;
        match (a.key(), a.read) {
            (CTL, true) => assert_eq!(r, Ok(Some(ctl | (istatus as u64) << 2))),
            (CVAL, true) => assert_eq!(r, Ok(Some(cval))),
            (TVAL, true) => assert_eq!(r, Ok(Some(cval.wrapping_sub(now) & 0xffff_ffff))),
            (PCT, true) => assert_eq!(r, Ok(Some(now))),
            (CTL, false) => {
                assert_eq!(r, Ok(None));
                ctl = acc.value & 0b11;
            }
            (CVAL, false) => {
                assert_eq!(r, Ok(None));
                cval = acc.value;
            }
            (TVAL, false) => {
                assert_eq!(r, Ok(None));
                cval = now.wrapping_add(acc.value as u32 as i32 as i64 as u64);
            }
            _ => {
                assert_eq!(r, Err(SysregError::Unhandled(a)));
                assert_eq!(t, before, "a refused access changes nothing");
                assert!(r.unwrap_err().to_string().contains(&format!("(x{})", a.rt)));
            }
        }
        assert_eq!(t.istatus(now), ctl & 1 != 0 && now >= cval);
        assert_eq!(t.asserted(now), t.istatus(now) && ctl & 2 == 0);
        assert_eq!(t.deadline(), (ctl == 1).then_some(cval));
    }
});
