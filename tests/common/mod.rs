//! Pieces the FP tests share: the model of seL4 16's FPU mechanism and the fault messages the
//! VMM receives for guest exits.
#![allow(dead_code)] // each test crate uses its own part of this module

pub mod kernel;

/// A guest exit, as the fault message seL4 sends the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitKind {
    /// An FP/SIMD instruction with `fpuDisabled` set: VCPUFault, HSR EC 0x07.
    FpTrap,
    Mmio,
    Hvc,
    Wfi,
    Sysreg,
    Vppi,
}

impl ExitKind {
    /// (fault label, message registers) of this exit.
    pub fn message(self) -> (u64, Vec<u64>) {
        match self {
            Self::FpTrap => (8, vec![0x1fe0_0000]),
            // Data abort with ISV at the UART: VmFault [pc, addr, prefetch, esr].
            Self::Mmio => (
                6,
                vec![
                    0x4008_0000,
                    0x0900_0018,
                    0,
                    (0x24 << 26) | (1 << 24) | (2 << 22),
                ],
            ),
            Self::Hvc => (2, (0..13).collect()),
            Self::Wfi => (8, vec![0x0600_0000]),
            // MSR CNTP_CTL_EL0 (EC 0x18).
            Self::Sysreg => (
                8,
                vec![(0x18 << 26) | (3 << 20) | (3 << 14) | (14 << 10) | (2 << 1)],
            ),
            Self::Vppi => (9, vec![27]),
        }
    }

    /// Decodes [`message`](Self::message) as the VMM does (`decode_exit`).
    pub fn decode(self) -> Result<lazyfp::Exit, lazyfp::ExitError> {
        let (label, msg) = self.message();
        lazyfp::decode_exit(label, msg.len(), |i| msg.get(i).copied().unwrap_or(0))
    }
}
