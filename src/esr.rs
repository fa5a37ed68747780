//! ESR_EL2 (HSR) decoding for the exits seL4 forwards to a VMM.
use core::fmt;

/// Exception classes a VMM sees in VCPUFault and VMFault messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ec {
    Unknown,
    /// WFI or WFE (ISS bit 0: 1 = WFE).
    Wfx,
    /// FP/SIMD access trapped by CPTR_EL2.TFP.
    FpAccess,
    Hvc64,
    Smc64,
    /// MSR/MRS/system instruction trapped.
    Sysreg,
    InstrAbortLower,
    DataAbortLower,
    Other(u8),
}

impl Ec {
    pub const fn from_raw(ec: u8) -> Self {
        match ec {
            0x00 => Self::Unknown,
            0x01 => Self::Wfx,
            0x07 => Self::FpAccess,
            0x16 => Self::Hvc64,
            0x17 => Self::Smc64,
            0x18 => Self::Sysreg,
            0x20 => Self::InstrAbortLower,
            0x24 => Self::DataAbortLower,
            other => Self::Other(other),
        }
    }
}

/// An ESR value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    pub const fn ec_raw(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    pub const fn ec(self) -> Ec {
        Ec::from_raw(self.ec_raw())
    }

    pub const fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// IL: the trapped instruction was 32 bits (always, in AArch64).
    pub const fn il32(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// Data abort WnR (bit 6): a write. Valid with or without an instruction syndrome.
    pub const fn wnr(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Data abort CM (bit 8): the fault came from a cache maintenance instruction.
    pub const fn cm(self) -> bool {
        self.0 & (1 << 8) != 0
    }
}

impl fmt::Debug for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.ec() {
            Ec::Unknown => "unknown",
            Ec::Wfx => "wfi/wfe",
            Ec::FpAccess => "fp/simd access",
            Ec::Hvc64 => "hvc64",
            Ec::Smc64 => "smc64",
            Ec::Sysreg => "msr/mrs",
            Ec::InstrAbortLower => "instruction abort",
            Ec::DataAbortLower => "data abort",
            Ec::Other(_) => "other",
        };
        write!(
            f,
            "ESR {:#010x} (EC {:#04x} {}, ISS {:#x})",
            self.0,
            self.ec_raw(),
            name,
            self.iss()
        )
    }
}

/// A data abort's syndrome (ISS of EC 0x24), valid when ISV = 1: the ISS bits themselves, read
/// through accessors. One word rather than five fields, so an exit carrying it stays small
/// (every MMIO exit builds and matches one).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DataAbort(u32);

impl DataAbort {
    /// Decodes the ISS; `None` when ISV = 0 (no instruction syndrome, e.g. load pairs or
    /// writeback forms: the VMM cannot emulate those without decoding the instruction).
    pub const fn decode(esr: Esr) -> Option<Self> {
        let iss = esr.iss();
        if iss & (1 << 24) == 0 {
            return None;
        }
        // Only the fields the accessors read (ISV, SAS, SSE, SRT, SF, WnR), so equal accesses
        // compare equal whatever the fault status bits say.
        Some(Self(iss & Self::FIELDS))
    }

    const FIELDS: u32 = (1 << 24) | (3 << 22) | (1 << 21) | (0x1f << 16) | (1 << 15) | (1 << 6);

    /// The syndrome of an access with these fields (`size` 1, 2, 4 or 8 bytes).
    pub const fn new(write: bool, size: u8, srt: u8, sign_extend: bool, sf: bool) -> Self {
        Self(
            (1 << 24)
                | ((size.trailing_zeros() & 3) << 22)
                | ((sign_extend as u32) << 21)
                | (((srt & 0x1f) as u32) << 16)
                | ((sf as u32) << 15)
                | ((write as u32) << 6),
        )
    }

    /// WnR: a write.
    pub const fn write(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Access size in bytes (1, 2, 4, 8).
    pub const fn size(self) -> u8 {
        1 << ((self.0 >> 22) & 3)
    }

    /// Transfer register (31 = xzr/wzr).
    pub const fn srt(self) -> u8 {
        ((self.0 >> 16) & 0x1f) as u8
    }

    /// SSE: a sign-extending load.
    pub const fn sign_extend(self) -> bool {
        self.0 & (1 << 21) != 0
    }

    /// SF: a 64-bit register.
    pub const fn sf(self) -> bool {
        self.0 & (1 << 15) != 0
    }

    /// The value a load writes to the register: sign-extended if SSE, truncated to 32 bits
    /// unless SF.
    pub const fn extend(self, raw: u64) -> u64 {
        // Shift the access's bits to the top and back: arithmetic for SSE, logical otherwise
        // (no branches on the size; every MMIO load runs this).
        let shift = 64 - self.size() as u32 * 8;
        let v = if self.sign_extend() {
            (((raw << shift) as i64) >> shift) as u64
        } else {
            (raw << shift) >> shift
        };
        if self.sf() {
            v
        } else {
            v & 0xffff_ffff
        }
    }
}

impl fmt::Debug for DataAbort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataAbort")
            .field("write", &self.write())
            .field("size", &self.size())
            .field("srt", &self.srt())
            .field("sign_extend", &self.sign_extend())
            .field("sf", &self.sf())
            .finish()
    }
}

/// A trapped MSR/MRS (ISS of EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysregAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    pub rt: u8,
    /// MRS (read into rt) rather than MSR.
    pub read: bool,
}

impl SysregAccess {
    pub const fn decode(esr: Esr) -> Self {
        let iss = esr.iss();
        Self {
            op0: ((iss >> 20) & 3) as u8,
            op2: ((iss >> 17) & 7) as u8,
            op1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 != 0,
        }
    }

    /// (op0, op1, CRn, CRm, op2): the register's encoding.
    pub const fn key(self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(Esr(0x1fe0_0000).ec(), Ec::FpAccess, "seL4's FP trap HSR");
        assert_eq!(Esr(0x5e00_0000).ec(), Ec::Smc64);
        assert_eq!(Esr(0x0600_0001).ec(), Ec::Wfx);
        assert_eq!(Esr(0xfc00_0000).ec(), Ec::Other(0x3f));
    }

    #[test]
    fn data_abort_syndrome() {
        // ldr w1, [x0] to device memory: ISV, SAS=2 (4 bytes), SRT=1, read.
        let esr = Esr((0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 16));
        let da = DataAbort::decode(esr).unwrap();
        assert_eq!(
            (da.write(), da.size(), da.srt(), da.sf()),
            (false, 4, 1, false)
        );
        // The fault status code (DFSC 0x06 here) is not part of the access.
        assert_eq!(
            DataAbort::decode(Esr(esr.0 | 0x06)),
            Some(DataAbort::new(false, 4, 1, false, false))
        );
        // strb w3 with ISV.
        let esr = Esr((0x24 << 26) | (1 << 24) | (3 << 16) | (1 << 6));
        let da = DataAbort::decode(esr).unwrap();
        assert_eq!((da.write(), da.size(), da.srt()), (true, 1, 3));
        assert_eq!(
            DataAbort::decode(Esr(0x24 << 26)),
            None,
            "ISV=0 has no syndrome"
        );
        // stp x1, x2, [uart] under QEMU: ISV=0, yet WnR says it was a write.
        let stp = Esr(0x9200_0046);
        assert_eq!(DataAbort::decode(stp), None);
        assert!(stp.wnr() && !stp.cm());
        assert!(!Esr(0x9200_0006).wnr());
        assert!(Esr(0x9200_0146).cm(), "dc civac of an unmapped address");
    }

    #[test]
    fn load_extension() {
        let ldrsb_x = DataAbort::new(false, 1, 0, true, true);
        assert_eq!(ldrsb_x.extend(0x80), 0xffff_ffff_ffff_ff80);
        let ldrsb_w = DataAbort::new(false, 1, 0, true, false);
        assert_eq!(ldrsb_w.extend(0x80), 0xffff_ff80);
        let ldr_w = DataAbort::new(false, 4, 0, false, false);
        assert_eq!(ldr_w.extend(0x1_2345_6789), 0x2345_6789);
        let ldr_x = DataAbort::new(false, 8, 0, false, true);
        let ldrh_x = DataAbort::new(false, 2, 0, false, true);
        assert_eq!(ldrh_x.extend(0xffff_8001), 0x8001);
        let da = DataAbort::new(true, 2, 31, false, true);
        assert_eq!(
            (da.write(), da.size(), da.srt(), da.sign_extend(), da.sf()),
            (true, 2, 31, false, true)
        );
        assert_eq!(ldr_x.extend(u64::MAX), u64::MAX);
    }

    #[test]
    fn sysreg_fields() {
        // mrs x2, cntp_ctl_el0: op0=3 op1=3 CRn=14 CRm=2 op2=1, read.
        let iss = (3 << 20) | (1 << 17) | (3 << 14) | (14 << 10) | (2 << 5) | (2 << 1) | 1;
        let a = SysregAccess::decode(Esr((0x18 << 26) | iss));
        assert_eq!(a.key(), (3, 3, 14, 2, 1));
        assert_eq!((a.rt, a.read), (2, true));
    }
}
