//! First layer of exit dispatch: seL4 fault message → [`Exit`].
//!
//! The second layer (exception class → handler) lives in the VMM's run loop; everything here is
//! a pure function of the fault label and message registers.
use core::fmt;

use crate::esr::{DataAbort, Ec, Esr, SysregAccess};

/// seL4 fault labels on an MCS kernel (`seL4_Fault_*`, aarch64 with hypervisor support).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultLabel {
    Null,
    CapFault,
    UnknownSyscall,
    UserException,
    DebugException,
    Timeout,
    VmFault,
    VgicMaintenance,
    VcpuFault,
    VppiEvent,
    Other(u64),
}

impl FaultLabel {
    pub const fn from_raw(label: u64) -> Self {
        match label {
            0 => Self::Null,
            label::CAP_FAULT => Self::CapFault,
            label::UNKNOWN_SYSCALL => Self::UnknownSyscall,
            3 => Self::UserException,
            4 => Self::DebugException,
            5 => Self::Timeout,
            label::VM_FAULT => Self::VmFault,
            label::VGIC_MAINTENANCE => Self::VgicMaintenance,
            label::VCPU_FAULT => Self::VcpuFault,
            label::VPPI_EVENT => Self::VppiEvent,
            other => Self::Other(other),
        }
    }
}

/// A decoded vCPU exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// HVC with x7 outside seL4's syscall numbers (UnknownSyscall): x0–x7 arrive in the message
    /// and the reply writes them back, with the PC, without any register call.
    Hvc {
        regs: [u64; 8],
        fault_ip: u64,
        x7: u64,
    },
    /// SMC (VCPUFault EC 0x17): the PC still points at the `smc`.
    Smc,
    Wfx {
        wfe: bool,
    },
    Sysreg(SysregAccess),
    /// Guest FP/SIMD use while `fpuDisabled` (VCPUFault EC 0x07).
    FpTrap,
    /// Stage-2 fault on an address without memory: MMIO.
    Mmio {
        addr: u64,
        pc: u64,
        access: DataAbort,
    },
    /// Stage-2 fault without an instruction syndrome (ISV = 0) or an instruction fetch.
    AbortNoSyndrome {
        addr: u64,
        pc: u64,
        esr: Esr,
        prefetch: bool,
    },
    /// A virtual PPI (the virtual timer) fired.
    Vppi {
        irq: u64,
    },
    /// The guest completed an interrupt in list register `lr` (None: no specific LR).
    VgicMaintenance {
        lr: Option<u8>,
    },
    /// A guest HVC with x7 in seL4's syscall range ran a real syscall that failed a cap lookup.
    CapFault {
        ip: u64,
        addr: u64,
    },
}

/// Exits the decoder cannot turn into an [`Exit`]; each carries the raw values for diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitError {
    UnknownLabel(u64),
    UnhandledEc(Esr),
    /// A fault kind that a vCPU should never raise (user exception, timeout, ...).
    UnexpectedFault(FaultLabel),
    ShortMessage {
        label: u64,
        length: usize,
    },
}

impl fmt::Display for ExitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLabel(l) => write!(f, "unknown fault label {l}"),
            Self::UnhandledEc(esr) => write!(f, "unhandled exit: {esr}"),
            Self::UnexpectedFault(l) => write!(f, "unexpected fault {l:?}"),
            Self::ShortMessage { label, length } => {
                write!(f, "fault label {label} with {length} words")
            }
        }
    }
}

/// Message words each fault label carries at least (seL4's `seL4_*_Length`), by raw label.
const MIN_LENGTH: [u8; 10] = [
    0,  // Null
    4,  // CapFault
    13, // UnknownSyscall
    0,  // UserException (refused below)
    0,  // DebugException
    0,  // Timeout
    4,  // VmFault
    1,  // VgicMaintenance
    1,  // VcpuFault
    1,  // VppiEvent
];

/// Decodes a fault message (`label`, `length`, message registers) from a vCPU.
///
/// One match on the raw label, each arm checking its own length: every exit runs this, and a
/// separate table lookup and label conversion cost as much as the decoding itself.
#[inline(always)]
pub fn decode_exit(
    label: u64,
    length: usize,
    mr: impl Fn(usize) -> u64,
) -> Result<Exit, ExitError> {
    // Called only in the arms of known labels (all below MIN_LENGTH's end), where the lookup
    // folds to a constant.
    let need = || {
        if length < MIN_LENGTH[label as usize] as usize {
            Err(ExitError::ShortMessage { label, length })
        } else {
            Ok(())
        }
    };
    match label {
        label::VCPU_FAULT => {
            need()?;
            let esr = Esr(mr(0));
            match esr.ec() {
                Ec::Smc64 => Ok(Exit::Smc),
                Ec::Wfx => Ok(Exit::Wfx {
                    wfe: esr.iss() & 1 != 0,
                }),
                Ec::FpAccess => Ok(Exit::FpTrap),
                Ec::Sysreg => Ok(Exit::Sysreg(SysregAccess::decode(esr))),
                _ => Err(ExitError::UnhandledEc(esr)),
            }
        }
        label::VM_FAULT => {
            need()?;
            let (pc, addr, prefetch, esr) = (mr(0), mr(1), mr(2) != 0, Esr(mr(3)));
            match (prefetch, DataAbort::decode(esr)) {
                (false, Some(access)) => Ok(Exit::Mmio { addr, pc, access }),
                _ => Ok(Exit::AbortNoSyndrome {
                    addr,
                    pc,
                    esr,
                    prefetch,
                }),
            }
        }
        label::UNKNOWN_SYSCALL => {
            need()?;
            Ok(Exit::Hvc {
                regs: [mr(0), mr(1), mr(2), mr(3), mr(4), mr(5), mr(6), mr(7)],
                fault_ip: mr(8),
                x7: mr(12),
            })
        }
        label::VPPI_EVENT => {
            need()?;
            Ok(Exit::Vppi { irq: mr(0) })
        }
        label::VGIC_MAINTENANCE => {
            need()?;
            let idx = mr(0);
            Ok(Exit::VgicMaintenance {
                lr: if idx < 64 { Some(idx as u8) } else { None },
            })
        }
        label::CAP_FAULT => {
            need()?;
            Ok(Exit::CapFault {
                ip: mr(0),
                addr: mr(1),
            })
        }
        _ => match FaultLabel::from_raw(label) {
            FaultLabel::Other(l) => Err(ExitError::UnknownLabel(l)),
            other => Err(ExitError::UnexpectedFault(other)),
        },
    }
}

/// The raw labels [`decode_exit`] matches on ([`FaultLabel::from_raw`] maps them too).
mod label {
    pub const CAP_FAULT: u64 = 1;
    pub const UNKNOWN_SYSCALL: u64 = 2;
    pub const VM_FAULT: u64 = 6;
    pub const VGIC_MAINTENANCE: u64 = 7;
    pub const VCPU_FAULT: u64 = 8;
    pub const VPPI_EVENT: u64 = 9;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(words: &[u64]) -> impl Fn(usize) -> u64 + '_ {
        move |i| words.get(i).copied().unwrap_or(0)
    }

    #[test]
    fn short_messages_are_refused() {
        let words = [0u64; 13];
        for (label, min) in [(1u64, 4usize), (2, 13), (6, 4), (7, 1), (8, 1), (9, 1)] {
            assert_eq!(
                decode_exit(label, min - 1, msg(&words)),
                Err(ExitError::ShortMessage {
                    label,
                    length: min - 1
                }),
                "label {label}"
            );
            assert!(
                !matches!(
                    decode_exit(label, min, msg(&words)),
                    Err(ExitError::ShortMessage { .. })
                ),
                "label {label}"
            );
        }
    }

    #[test]
    fn vcpu_faults_by_class() {
        assert_eq!(decode_exit(8, 1, msg(&[0x1fe0_0000])), Ok(Exit::FpTrap));
        assert_eq!(decode_exit(8, 1, msg(&[0x5e00_0000])), Ok(Exit::Smc));
        assert_eq!(
            decode_exit(8, 1, msg(&[0x0600_0001])),
            Ok(Exit::Wfx { wfe: true })
        );
        assert_eq!(
            decode_exit(8, 1, msg(&[0x9000_0000])),
            Err(ExitError::UnhandledEc(Esr(0x9000_0000)))
        );
    }

    #[test]
    fn vm_fault_mmio_and_no_syndrome() {
        let esr = (0x24 << 26) | (1 << 24) | (2 << 22) | (5 << 16);
        match decode_exit(6, 4, msg(&[0x4008_0000, 0x0900_0018, 0, esr])) {
            Ok(Exit::Mmio { addr, pc, access }) => {
                assert_eq!(
                    (addr, pc, access.srt(), access.size()),
                    (0x0900_0018, 0x4008_0000, 5, 4)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_exit(6, 4, msg(&[1, 2, 0, 0x24 << 26])),
            Ok(Exit::AbortNoSyndrome {
                prefetch: false,
                ..
            })
        ));
        assert!(matches!(
            decode_exit(6, 4, msg(&[1, 2, 1, 0x20 << 26])),
            Ok(Exit::AbortNoSyndrome { prefetch: true, .. })
        ));
    }

    #[test]
    fn hvc_carries_registers() {
        let words: Vec<u64> = (0..13).collect();
        match decode_exit(2, 13, msg(&words)) {
            Ok(Exit::Hvc { regs, fault_ip, x7 }) => {
                assert_eq!(regs, [0, 1, 2, 3, 4, 5, 6, 7]);
                assert_eq!((fault_ip, x7), (8, 12));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_messages() {
        assert_eq!(
            decode_exit(2, 9, msg(&[])),
            Err(ExitError::ShortMessage {
                label: 2,
                length: 9
            })
        );
        assert_eq!(
            decode_exit(6, 0, msg(&[])),
            Err(ExitError::ShortMessage {
                label: 6,
                length: 0
            })
        );
        assert_eq!(
            decode_exit(42, 0, msg(&[])),
            Err(ExitError::UnknownLabel(42))
        );
        assert_eq!(
            decode_exit(3, 5, msg(&[])),
            Err(ExitError::UnexpectedFault(FaultLabel::UserException))
        );
        assert_eq!(
            decode_exit(7, 1, msg(&[u64::MAX])),
            Ok(Exit::VgicMaintenance { lr: None })
        );
        assert_eq!(decode_exit(9, 1, msg(&[27])), Ok(Exit::Vppi { irq: 27 }));
        assert_eq!(
            decode_exit(1, 4, msg(&[0x4000_1000, 0])),
            Ok(Exit::CapFault {
                ip: 0x4000_1000,
                addr: 0
            })
        );
    }
}
