//! A vCPU fault message (label, length, message registers) → `decode_exit` → the second layer's
//! device decisions.
//!
//! Invariants: the decoder reads no message register at or beyond `length`; an error is the one
//! the label and length call for; a decoded exit re-encodes (as seL4 would send it) to a message
//! that decodes to the same exit, and its fields are the raw words; a data abort's syndrome gives
//! a legal access size and a load value extended as the Arm ARM says; the UART and the physical
//! timer accept exactly the accesses they model.
#![no_main]

use std::cell::Cell;

use arbitrary::Arbitrary;
use lazyfp::abi::GUEST_UART_BASE;
use lazyfp::{
    decode_exit, DataAbort, Esr, Exit, ExitError, FaultLabel, MmioDevice, MmioError, Pl011,
    SysregAccess, TimerRegs,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Small labels hit the real fault kinds; `wide` reaches every u64.
    label: u8,
    wide: Option<u64>,
    length: u8,
    words: [u64; 13],
    /// The value a load returns / the register a store writes.
    raw: u64,
}

/// seL4's message for `exit`: (label, words, length).
fn encode(exit: &Exit) -> (u64, [u64; 13], usize) {
    let mut w = [0u64; 13];
    let (label, len) = match *exit {
        Exit::Hvc { regs, fault_ip, x7 } => {
            w[..8].copy_from_slice(&regs);
            w[8] = fault_ip;
            w[12] = x7;
            (2, 13)
        }
        Exit::CapFault { ip, addr } => {
            w[0] = ip;
            w[1] = addr;
            (1, 4)
        }
        Exit::Mmio { addr, pc, access } => {
            w[..4].copy_from_slice(&[pc, addr, 0, (0x24 << 26) | abort_iss(access)]);
            (6, 4)
        }
        Exit::AbortNoSyndrome {
            addr,
            pc,
            esr,
            prefetch,
        } => {
            w[..4].copy_from_slice(&[pc, addr, prefetch as u64, esr.0]);
            (6, 4)
        }
        Exit::Vppi { irq } => {
            w[0] = irq;
            (9, 1)
        }
        Exit::VgicMaintenance { lr } => {
            w[0] = lr.map_or(u64::MAX, u64::from);
            (7, 1)
        }
        // VCPUFault: MR0 is the ESR.
        Exit::Smc => {
            w[0] = 0x17 << 26;
            (8, 1)
        }
        Exit::Wfx { wfe } => {
            w[0] = (0x01 << 26) | wfe as u64;
            (8, 1)
        }
        Exit::FpTrap => {
            w[0] = 0x07 << 26;
            (8, 1)
        }
        Exit::Sysreg(a) => {
            w[0] = (0x18 << 26) | sysreg_iss(a);
            (8, 1)
        }
    };
    (label, w, len)
}

/// ISS of a data abort with a valid syndrome (Arm ARM D17.2.40: ISV, SAS, SSE, SRT, SF, WnR).
fn abort_iss(a: DataAbort) -> u64 {
    (1 << 24)
        | ((a.size().trailing_zeros() as u64) << 22)
        | ((a.sign_extend() as u64) << 21)
        | ((a.srt() as u64) << 16)
        | ((a.sf() as u64) << 15)
        | ((a.write() as u64) << 6)
}

/// ISS of a trapped MSR/MRS (EC 0x18).
fn sysreg_iss(a: SysregAccess) -> u64 {
    ((a.op0 as u64) << 20)
        | ((a.op2 as u64) << 17)
        | ((a.op1 as u64) << 14)
        | ((a.crn as u64) << 10)
        | ((a.rt as u64) << 5)
        | ((a.crm as u64) << 1)
        | a.read as u64
}

fn min_length(label: u64) -> usize {
    match label {
        2 => 13,
        1 | 6 => 4,
        7..=9 => 1,
        _ => 0,
    }
}

fn decode(label: u64, length: usize, words: &[u64; 13]) -> Result<Exit, ExitError> {
    let highest = Cell::new(None::<usize>);
    let r = decode_exit(label, length, |i| {
        highest.set(highest.get().max(Some(i)));
        words.get(i).copied().unwrap_or(0xdead_beef_dead_beef)
    });
    if let Some(i) = highest.get() {
        assert!(i < length, "read MR{i} of a {length}-word message");
    }
    r
}

/// A load's register value (Arm ARM: SSE sign-extends to the register width, SF picks X or W).
fn check_extend(a: DataAbort, raw: u64) {
    let bits = a.size() as u32 * 8;
    let mask = |n: u32| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let width = if a.sf() { 64 } else { 32 };
    let v = a.extend(raw);
    assert_eq!(v & !mask(width), 0, "{a:?}: {v:#x} wider than the register");
    let kept = bits.min(width);
    assert_eq!(
        v & mask(kept),
        raw & mask(kept),
        "{a:?}: low bits of {raw:#x}"
    );
    if kept < width {
        let high = (v & mask(width)) >> kept;
        let sign = raw >> (bits - 1) & 1 == 1;
        let expect = if a.sign_extend() && sign {
            mask(width - kept)
        } else {
            0
        };
        assert_eq!(high, expect, "{a:?}: upper bits of {raw:#x} -> {v:#x}");
    }
}

fuzz_target!(|input: Input| {
    let label = input.wide.unwrap_or(input.label as u64 % 12);
    let length = input.length as usize % 16;
    let words = &input.words;
    let result = decode(label, length, words);

    let Ok(exit) = result else {
        let expect = if label > 9 {
            ExitError::UnknownLabel(label)
        } else if length < min_length(label) {
            ExitError::ShortMessage { label, length }
        } else if label == 8 {
            ExitError::UnhandledEc(Esr(words[0]))
        } else {
            ExitError::UnexpectedFault(FaultLabel::from_raw(label))
        };
        assert_eq!(result, Err(expect));
        let _ = expect.to_string();
        if let ExitError::UnhandledEc(esr) = expect {
            assert!(![0x01, 0x07, 0x17, 0x18].contains(&esr.ec_raw()), "{esr}");
        }
        return;
    };
    assert!(length >= min_length(label));

    // The raw words are what the exit says.
    match exit {
        Exit::Hvc { regs, fault_ip, x7 } => {
            assert_eq!(
                (&regs[..], fault_ip, x7),
                (&words[..8], words[8], words[12])
            )
        }
        Exit::Mmio { addr, pc, .. } => assert_eq!((pc, addr, words[2]), (words[0], words[1], 0)),
        Exit::AbortNoSyndrome {
            addr,
            pc,
            esr,
            prefetch,
        } => {
            assert_eq!((pc, addr, prefetch), (words[0], words[1], words[2] != 0));
            assert!(prefetch || DataAbort::decode(esr).is_none());
        }
        Exit::CapFault { ip, addr } => assert_eq!((ip, addr), (words[0], words[1])),
        Exit::Vppi { irq } => assert_eq!(irq, words[0]),
        Exit::VgicMaintenance { lr } => {
            assert_eq!(lr.map(u64::from), (words[0] < 64).then_some(words[0]))
        }
        Exit::Smc | Exit::Wfx { .. } | Exit::FpTrap | Exit::Sysreg(_) => assert_eq!(label, 8),
    }

    // Re-encoded as seL4 would send it, the exit decodes to itself.
    let (label2, words2, len2) = encode(&exit);
    assert_eq!(label2, label);
    assert_eq!(
        decode(label2, len2, &words2),
        Ok(exit),
        "re-encoded {words2:x?}"
    );

    // Second layer: the device decisions the VMM's dispatch takes for this exit.
    match exit {
        Exit::Mmio { addr, access, .. } => {
            assert!(matches!(access.size(), 1 | 2 | 4 | 8) && access.srt() < 32);
            check_extend(access, input.raw);
            let mut uart = Pl011::default();
            if let Some(off) = uart.claims(addr) {
                assert_eq!(off, addr - GUEST_UART_BASE);
                let r = if access.write() {
                    uart.write(off, access.size(), input.raw)
                } else {
                    uart.read(off, access.size()).map(drop)
                };
                if access.size() > 4 {
                    assert_eq!(
                        r,
                        Err(MmioError::BadRegister {
                            offset: off,
                            size: access.size()
                        })
                    );
                }
            } else {
                assert!(!(GUEST_UART_BASE..GUEST_UART_BASE + 0x1000).contains(&addr));
            }
        }
        Exit::Sysreg(a) => {
            assert_eq!(sysreg_iss(a), Esr(words[0]).iss() as u64 & 0x3f_ffff);
            let k = a.key();
            // CNTP_{TVAL,CTL,CVAL}_EL0 both ways, CNTPCT_EL0 read-only.
            let timer = (k.0, k.1, k.2) == (3, 3, 14)
                && ((k.3 == 2 && k.4 <= 2) || ((k.3, k.4) == (0, 1) && a.read));
            let r = TimerRegs::default().access(a, input.raw, words[0]);
            assert_eq!(r.is_ok(), timer, "{a:?} -> {r:?}");
            assert_eq!(r.is_ok_and(|v| v.is_some()), timer && a.read);
        }
        _ => {}
    }
});
