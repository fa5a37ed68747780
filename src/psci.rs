//! PSCI 1.1 for a VM with a fixed set of vCPUs (DEN0022), answered over SMC.
//!
//! Pure: the caller passes each vCPU's MPIDR and power state, and gets back what to do. vCPU 0
//! starts with the VM; the others are off until a CPU_ON names them.
use crate::abi::psci::*;
use crate::abi::GUEST_RAM_BASE;

/// A vCPU's PSCI power state (AFFINITY_INFO's answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
    /// CPU_ON accepted, the vCPU not yet running.
    OnPending,
}

impl Power {
    const fn affinity_info(self) -> u64 {
        match self {
            Self::On => 0,
            Self::Off => 1,
            Self::OnPending => 2,
        }
    }
}

/// What the VMM does after a PSCI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciOutcome {
    /// Resume the caller with x0 = value.
    Return(u64),
    SystemOff,
    SystemReset,
    /// The calling vCPU powers itself down.
    CpuOff,
    /// Start vCPU `target` at `entry` with x0 = `context`, then resume the caller with SUCCESS.
    CpuOn {
        target: usize,
        entry: u64,
        context: u64,
    },
    /// CPU_SUSPEND: a standby state, entered like WFI; the caller resumes with SUCCESS.
    Suspend,
}

/// Whether `fid` is in the PSCI range (SMC32 0x8400_00xx or SMC64 0xC400_00xx).
pub const fn is_psci(fid: u64) -> bool {
    fid & !0x4000_001f == 0x8400_0000
}

const fn ret(v: i64) -> PsciOutcome {
    PsciOutcome::Return(v as u64)
}

/// MPIDR bits that name a CPU (Aff3, Aff2, Aff1, Aff0).
const MPIDR_AFFINITY: u64 = 0xff_00ff_ffff;

/// The vCPUs as PSCI sees them: `mpidrs[i]` and `power[i]` describe vCPU i.
#[derive(Clone, Copy, Debug)]
pub struct Cpus<'a> {
    pub mpidrs: &'a [u64],
    pub power: &'a [Power],
    /// Guest RAM size: a CPU_ON entry point must lie in guest RAM.
    pub ram_size: u64,
}

impl Cpus<'_> {
    fn find(&self, mpidr: u64) -> Option<(usize, Power)> {
        let i = self
            .mpidrs
            .iter()
            .position(|m| m & MPIDR_AFFINITY == mpidr & MPIDR_AFFINITY)?;
        // A MPIDR with bits outside the affinity fields names no CPU.
        if mpidr & !MPIDR_AFFINITY != 0 {
            return None;
        }
        Some((i, self.power.get(i).copied().unwrap_or(Power::Off)))
    }
}

/// Answers PSCI call `fid` with arguments x1–x3 from the vCPU that made it.
pub fn handle_psci(fid: u64, args: [u64; 3], cpus: &Cpus) -> PsciOutcome {
    match fid {
        VERSION => PsciOutcome::Return(VERSION_1_1),
        SYSTEM_OFF => PsciOutcome::SystemOff,
        SYSTEM_RESET => PsciOutcome::SystemReset,
        CPU_OFF => PsciOutcome::CpuOff,
        CPU_SUSPEND_64 | CPU_SUSPEND_32 => PsciOutcome::Suspend,
        MIGRATE_INFO_TYPE => PsciOutcome::Return(TOS_NOT_PRESENT_MP),
        CPU_ON_64 | CPU_ON_32 => {
            let [mpidr, entry, context] = args;
            // SMC32 callers pass 32-bit values.
            let (entry, context) = if fid == CPU_ON_32 {
                (entry & 0xffff_ffff, context & 0xffff_ffff)
            } else {
                (entry, context)
            };
            match cpus.find(mpidr) {
                None => ret(INVALID_PARAMETERS),
                Some((_, Power::On)) => ret(ALREADY_ON),
                Some((_, Power::OnPending)) => ret(ON_PENDING),
                Some((target, Power::Off)) => {
                    let in_ram = entry
                        .checked_sub(GUEST_RAM_BASE)
                        .is_some_and(|off| off < cpus.ram_size);
                    if !in_ram || entry % 4 != 0 {
                        ret(INVALID_ADDRESS)
                    } else {
                        PsciOutcome::CpuOn {
                            target,
                            entry,
                            context,
                        }
                    }
                }
            }
        }
        AFFINITY_INFO_64 | AFFINITY_INFO_32 => {
            // x2 = lowest affinity level; only level 0 is supported by this VMM.
            match cpus.find(args[0]) {
                Some((_, power)) if args[1] == 0 => PsciOutcome::Return(power.affinity_info()),
                _ => ret(INVALID_PARAMETERS),
            }
        }
        FEATURES => match args[0] {
            VERSION | SYSTEM_OFF | SYSTEM_RESET | CPU_OFF | CPU_ON_64 | CPU_ON_32
            | CPU_SUSPEND_64 | CPU_SUSPEND_32 | AFFINITY_INFO_64 | AFFINITY_INFO_32
            | MIGRATE_INFO_TYPE | FEATURES => ret(SUCCESS),
            _ => ret(NOT_SUPPORTED),
        },
        _ => ret(NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x1000_0000;

    fn cpus<'a>(mpidrs: &'a [u64], power: &'a [Power]) -> Cpus<'a> {
        Cpus {
            mpidrs,
            power,
            ram_size: RAM,
        }
    }

    #[test]
    fn range() {
        assert!(is_psci(VERSION) && is_psci(CPU_ON_64) && is_psci(FEATURES));
        assert!(!is_psci(0xC600_0000) && !is_psci(0x8400_0100));
    }

    #[test]
    fn answers() {
        let one = cpus(&[0], &[Power::On]);
        assert_eq!(
            handle_psci(VERSION, [0; 3], &one),
            PsciOutcome::Return(0x10001)
        );
        assert_eq!(
            handle_psci(SYSTEM_OFF, [0; 3], &one),
            PsciOutcome::SystemOff
        );
        assert_eq!(
            handle_psci(SYSTEM_RESET, [0; 3], &one),
            PsciOutcome::SystemReset
        );
        assert_eq!(handle_psci(CPU_OFF, [0; 3], &one), PsciOutcome::CpuOff);
        assert_eq!(
            handle_psci(CPU_SUSPEND_64, [0; 3], &one),
            PsciOutcome::Suspend
        );
        for f in [SYSTEM_OFF, CPU_ON_64, CPU_SUSPEND_64, AFFINITY_INFO_32] {
            assert_eq!(
                handle_psci(FEATURES, [f, 0, 0], &one),
                PsciOutcome::Return(0)
            );
        }
        assert_eq!(
            handle_psci(FEATURES, [0x8400_00FF, 0, 0], &one),
            PsciOutcome::Return(u64::MAX)
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

    #[test]
    fn cpu_on_starts_an_off_vcpu_and_refuses_the_rest() {
        let mpidrs = [0, 1, 2, 3];
        let power = [Power::On, Power::Off, Power::On, Power::OnPending];
        let c = cpus(&mpidrs, &power);
        let entry = GUEST_RAM_BASE + 0x1000;
        assert_eq!(
            handle_psci(CPU_ON_64, [1, entry, 0xfeed], &c),
            PsciOutcome::CpuOn {
                target: 1,
                entry,
                context: 0xfeed
            }
        );
        assert_eq!(handle_psci(CPU_ON_64, [2, entry, 0], &c), ret(ALREADY_ON));
        assert_eq!(handle_psci(CPU_ON_64, [0, entry, 0], &c), ret(ALREADY_ON));
        assert_eq!(handle_psci(CPU_ON_64, [3, entry, 0], &c), ret(ON_PENDING));
        assert_eq!(
            handle_psci(CPU_ON_64, [4, entry, 0], &c),
            ret(INVALID_PARAMETERS)
        );
        assert_eq!(
            handle_psci(CPU_ON_64, [1 << 8, entry, 0], &c),
            ret(INVALID_PARAMETERS)
        );
        assert_eq!(
            handle_psci(CPU_ON_64, [1 | 1 << 31, entry, 0], &c),
            ret(INVALID_PARAMETERS)
        );
        // Entry points outside guest RAM or misaligned.
        for bad in [
            0,
            GUEST_RAM_BASE - 4,
            GUEST_RAM_BASE + RAM,
            entry + 2,
            u64::MAX,
        ] {
            assert_eq!(
                handle_psci(CPU_ON_64, [1, bad, 0], &c),
                ret(INVALID_ADDRESS),
                "{bad:#x}"
            );
        }
        // SMC32: the upper halves are ignored.
        assert_eq!(
            handle_psci(
                CPU_ON_32,
                [1, 0xdead_0000_0000_0000 | entry, 0xffff_ffff_0000_0007],
                &c
            ),
            PsciOutcome::CpuOn {
                target: 1,
                entry,
                context: 7
            }
        );
    }

    #[test]
    fn affinity_info_reports_each_vcpu() {
        let mpidrs = [0, 1, 2];
        let power = [Power::On, Power::Off, Power::OnPending];
        let c = cpus(&mpidrs, &power);
        let info = |m, level| handle_psci(AFFINITY_INFO_64, [m, level, 0], &c);
        assert_eq!(
            (info(0, 0), info(1, 0), info(2, 0)),
            (
                PsciOutcome::Return(0),
                PsciOutcome::Return(1),
                PsciOutcome::Return(2)
            )
        );
        assert_eq!(info(3, 0), ret(INVALID_PARAMETERS));
        assert_eq!(info(0, 1), ret(INVALID_PARAMETERS));
    }
}
