//! Trapped MSR/MRS (ESR EC 0x18) in any order, decoded from the raw ISS and emulated.
//!
//! Invariants: the ISS fields decode and re-encode losslessly (bits 21:0); the physical timer is
//! storage: CNTP_CVAL reads the last value written, CNTP_CTL the last ENABLE/IMASK written with
//! ISTATUS 0, CNTP_TVAL reads 0; a read gives a value and a write none; any other register is
//! refused as `Unhandled` with the access itself and leaves the timer as it was.
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
}

const CTL: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 1);
const CVAL: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 2);
const TVAL: (u8, u8, u8, u8, u8) = (3, 3, 14, 2, 0);

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
        let r = t.access(a, acc.value);
        match (a.key(), a.read) {
            (CTL, true) => assert_eq!(r, Ok(Some(ctl))),
            (CVAL, true) => assert_eq!(r, Ok(Some(cval))),
            (TVAL, true) => assert_eq!(r, Ok(Some(0))),
            (CTL, false) => {
                assert_eq!(r, Ok(None));
                ctl = acc.value & 0b11;
            }
            (CVAL, false) => {
                assert_eq!(r, Ok(None));
                cval = acc.value;
            }
            (TVAL, false) => assert_eq!(r, Ok(None)),
            _ => {
                assert_eq!(r, Err(SysregError::Unhandled(a)));
                assert_eq!(t, before, "a refused access changes nothing");
                assert!(r.unwrap_err().to_string().contains(&format!("(x{})", a.rt)));
            }
        }
        assert_eq!(ctl & !0b11, 0, "ISTATUS never set");
    }
});
