//! Exceptions the VMM makes a guest take at its own EL1, as hardware would raise them: the
//! values of ESR_EL1 and FAR_EL1 and the vector the guest enters (Arm ARM D1.10, "Exception
//! entry"). The VMM writes ESR/FAR/ELR/SPSR_EL1 and then sets PC = VBAR_EL1 + the offset with
//! PSTATE = EL1h, DAIF masked.
//!
//! Pure: inputs are the guest's PSTATE (SPSR_EL2 as seL4 saved it) and what went wrong.

/// An exception for the guest's EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestException {
    /// An instruction that does not exist here (a trapped system register the VMM does not
    /// emulate): EC 0x00 "unknown reason".
    Undef,
    /// A synchronous external abort on a data access to `addr` (no device there, or one the
    /// VMM cannot emulate without an instruction syndrome).
    DataAbort { addr: u64, write: bool },
    /// A synchronous external abort on an instruction fetch from `addr`.
    InstrAbort { addr: u64 },
}

/// What the guest's EL1 sees on entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub esr: u64,
    /// FAR_EL1, for aborts (UNKNOWN, so left alone, for UNDEF).
    pub far: Option<u64>,
    /// Offset of the vector from VBAR_EL1.
    pub vector_offset: u64,
}

/// ESR.IL: a 32-bit instruction (always, for the exceptions here).
const IL: u64 = 1 << 25;
/// DFSC/IFSC: synchronous external abort, not on a translation table walk.
const FSC_EXTERNAL: u64 = 0x10;
const WNR: u64 = 1 << 6;
const EC_SHIFT: u32 = 26;
const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_LOWER: u64 = 0x20;
const EC_IABT_SAME: u64 = 0x21;
const EC_DABT_LOWER: u64 = 0x24;
const EC_DABT_SAME: u64 = 0x25;

/// SPSR.M[4]: the interrupted state was AArch32.
const SPSR_AARCH32: u64 = 1 << 4;
const SPSR_M: u64 = 0b1111;
const SPSR_EL1T: u64 = 0b0100;
const SPSR_EL1H: u64 = 0b0101;

/// Where the vector sits for an exception taken from the state `spsr` describes: current EL
/// with SP_EL0 +0x000, current EL with SP_ELx +0x200, lower EL in AArch64 +0x400, lower EL in
/// AArch32 +0x600 (synchronous exceptions are the first entry of each group).
pub const fn vector_offset(spsr: u64) -> u64 {
    if spsr & SPSR_AARCH32 != 0 {
        return 0x600;
    }
    match spsr & SPSR_M {
        SPSR_EL1T => 0x000,
        SPSR_EL1H => 0x200,
        // EL0t; an EL2/EL3 mode cannot be a guest's PSTATE and is taken as coming from below.
        _ => 0x400,
    }
}

/// Whether `spsr` describes EL1 (either stack pointer): aborts are then "same EL".
pub const fn from_el1(spsr: u64) -> bool {
    spsr & SPSR_AARCH32 == 0 && matches!(spsr & SPSR_M, SPSR_EL1T | SPSR_EL1H)
}

/// The entry for `exc` interrupting a guest whose PSTATE was `spsr`.
pub const fn exception_entry(exc: GuestException, spsr: u64) -> Entry {
    let same = from_el1(spsr);
    let (esr, far) = match exc {
        GuestException::Undef => (EC_UNKNOWN << EC_SHIFT | IL, None),
        GuestException::DataAbort { addr, write } => {
            let ec = if same { EC_DABT_SAME } else { EC_DABT_LOWER };
            let wnr = if write { WNR } else { 0 };
            (ec << EC_SHIFT | IL | wnr | FSC_EXTERNAL, Some(addr))
        }
        GuestException::InstrAbort { addr } => {
            let ec = if same { EC_IABT_SAME } else { EC_IABT_LOWER };
            (ec << EC_SHIFT | IL | FSC_EXTERNAL, Some(addr))
        }
    };
    Entry {
        esr,
        far,
        vector_offset: vector_offset(spsr),
    }
}

/// Remembers up to `N` keys so that each is reported once; past `N` distinct keys nothing more
/// is reported (a hostile guest cannot flood the console), and [`LogOnce::dropped`] counts them.
#[derive(Clone, Copy, Debug)]
pub struct LogOnce<T: Copy + PartialEq, const N: usize> {
    seen: [Option<T>; N],
    dropped: u64,
}

impl<T: Copy + PartialEq, const N: usize> Default for LogOnce<T, N> {
    fn default() -> Self {
        Self {
            seen: [None; N],
            dropped: 0,
        }
    }
}

impl<T: Copy + PartialEq, const N: usize> LogOnce<T, N> {
    /// True the first time `key` is offered while there is room to remember it.
    pub fn first(&mut self, key: T) -> bool {
        if self.seen.contains(&Some(key)) {
            return false;
        }
        match self.seen.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(key);
                true
            }
            None => {
                self.dropped += 1;
                false
            }
        }
    }

    /// Occurrences of keys beyond the first `N` (not reported).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EL1H_MASKED: u64 = 0x3c5;
    const EL1T: u64 = 0x3c4;
    const EL0T: u64 = 0x0;
    const AARCH32_USR: u64 = 0x10;

    #[test]
    fn vector_offsets_follow_the_interrupted_state() {
        assert_eq!(vector_offset(EL1T), 0x000);
        assert_eq!(vector_offset(EL1H_MASKED), 0x200);
        assert_eq!(vector_offset(0x5), 0x200, "DAIF does not matter");
        assert_eq!(vector_offset(EL0T), 0x400);
        assert_eq!(vector_offset(AARCH32_USR), 0x600);
        assert_eq!(vector_offset(0x13), 0x600, "AArch32 SVC is still AArch32");
        assert_eq!(vector_offset(0x9), 0x400, "an EL2 mode counts as lower");
    }

    #[test]
    fn undef_is_ec_zero_with_il() {
        let e = exception_entry(GuestException::Undef, EL1H_MASKED);
        assert_eq!(e.esr, 0x0200_0000);
        assert_eq!(e.far, None);
        assert_eq!(e.vector_offset, 0x200);
        let e = exception_entry(GuestException::Undef, EL0T);
        assert_eq!((e.esr, e.vector_offset), (0x0200_0000, 0x400));
    }

    #[test]
    fn data_aborts_same_and_lower_el() {
        let read = GuestException::DataAbort {
            addr: 0x0a00_1000,
            write: false,
        };
        let e = exception_entry(read, EL1H_MASKED);
        // EC 0x25, IL, DFSC 0x10: what the guest's checks expect from an unclaimed load.
        assert_eq!(e.esr, 0x9600_0010);
        assert_eq!(e.far, Some(0x0a00_1000));
        let write = GuestException::DataAbort {
            addr: 8,
            write: true,
        };
        let e = exception_entry(write, EL0T);
        assert_eq!(e.esr, 0x9200_0050, "EC 0x24 from EL0, WnR");
        assert_eq!(e.vector_offset, 0x400);
    }

    #[test]
    fn instruction_aborts() {
        let e = exception_entry(GuestException::InstrAbort { addr: 0x200 }, EL1T);
        assert_eq!(e.esr, 0x8600_0010);
        assert_eq!((e.far, e.vector_offset), (Some(0x200), 0));
        let e = exception_entry(GuestException::InstrAbort { addr: 4 }, AARCH32_USR);
        assert_eq!(e.esr, 0x8200_0010);
        assert_eq!(e.vector_offset, 0x600);
    }

    #[test]
    fn log_once_per_key_and_bounded() {
        let mut log = LogOnce::<u64, 2>::default();
        assert!(log.first(1));
        assert!(!log.first(1));
        assert!(log.first(2));
        assert!(!log.first(3), "full: not reported");
        assert!(!log.first(4));
        assert!(!log.first(2), "still remembered");
        assert_eq!(log.dropped(), 2);
    }
}
