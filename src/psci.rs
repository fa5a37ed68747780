//! PSCI 1.1 for a VM with a fixed set of vCPUs (DEN0022), answered over SMC.
use crate::abi::psci::*;

/// What the VMM does after a PSCI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciOutcome {
    /// Resume the guest with x0 = value.
    Return(u64),
    SystemOff,
    SystemReset,
    /// The calling vCPU powers itself down.
    CpuOff,
}

/// Whether `fid` is in the PSCI range (SMC32 0x8400_00xx or SMC64 0xC400_00xx).
pub const fn is_psci(fid: u64) -> bool {
    fid & !0x4000_001f == 0x8400_0000
}

const fn ret(v: i64) -> PsciOutcome {
    PsciOutcome::Return(v as u64)
}

/// Answers PSCI call `fid` with arguments x1–x3. `vcpus` are the MPIDR affinities that exist;
/// all of them are on (vCPUs start with the VM and the VMM does not park them).
pub fn handle_psci(fid: u64, args: [u64; 3], vcpus: &[u64]) -> PsciOutcome {
    match fid {
        VERSION => PsciOutcome::Return(VERSION_1_1),
        SYSTEM_OFF => PsciOutcome::SystemOff,
        SYSTEM_RESET => PsciOutcome::SystemReset,
        CPU_OFF => PsciOutcome::CpuOff,
        MIGRATE_INFO_TYPE => PsciOutcome::Return(TOS_NOT_PRESENT_MP),
        CPU_ON_64 | 0x8400_0003 => {
            if vcpus.contains(&args[0]) {
                ret(ALREADY_ON)
            } else {
                ret(INVALID_PARAMETERS)
            }
        }
        AFFINITY_INFO_64 | 0x8400_0004 => {
            // x2 = lowest affinity level; only level 0 is supported by this VMM.
            if args[1] == 0 && vcpus.contains(&args[0]) {
                ret(0) // ON
            } else {
                ret(INVALID_PARAMETERS)
            }
        }
        FEATURES => match args[0] {
            VERSION | SYSTEM_OFF | SYSTEM_RESET | CPU_OFF | CPU_ON_64 | 0x8400_0003
            | AFFINITY_INFO_64 | 0x8400_0004 | MIGRATE_INFO_TYPE | FEATURES => ret(SUCCESS),
            _ => ret(NOT_SUPPORTED),
        },
        _ => ret(NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range() {
        assert!(is_psci(VERSION) && is_psci(CPU_ON_64) && is_psci(FEATURES));
        assert!(!is_psci(0xC600_0000) && !is_psci(0x8400_0100));
    }

    #[test]
    fn answers() {
        let one = [0u64];
        assert_eq!(
            handle_psci(VERSION, [0; 3], &one),
            PsciOutcome::Return(0x10001)
        );
        assert_eq!(
            handle_psci(SYSTEM_OFF, [0; 3], &one),
            PsciOutcome::SystemOff
        );
        assert_eq!(
            handle_psci(FEATURES, [SYSTEM_OFF, 0, 0], &one),
            PsciOutcome::Return(0)
        );
        assert_eq!(
            handle_psci(FEATURES, [0x8400_00FF, 0, 0], &one),
            PsciOutcome::Return(u64::MAX)
        );
        assert_eq!(
            handle_psci(CPU_ON_64, [1, 0x4000_0000, 0], &one),
            PsciOutcome::Return(-2i64 as u64)
        );
        assert_eq!(
            handle_psci(CPU_ON_64, [0, 0x4000_0000, 0], &one),
            PsciOutcome::Return(-4i64 as u64)
        );
        assert_eq!(
            handle_psci(AFFINITY_INFO_64, [0, 0, 0], &one),
            PsciOutcome::Return(0)
        );
        assert_eq!(
            handle_psci(AFFINITY_INFO_64, [0, 1, 0], &one),
            PsciOutcome::Return(-2i64 as u64)
        );
        assert_eq!(
            handle_psci(MIGRATE_INFO_TYPE, [0; 3], &one),
            PsciOutcome::Return(2)
        );
        assert_eq!(
            handle_psci(0x8400_0011, [0; 3], &one),
            PsciOutcome::Return(u64::MAX)
        );
    }
}
