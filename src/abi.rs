//! The guest-visible interface of lazyfp's VMM: guest-physical layout, PSCI, and lazyfp's own
//! hypercalls. Shared by the VMM and the test guest so the two cannot disagree.

/// Guest RAM base, as on QEMU virt.
pub const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// The guest's console: an emulated PL011, at QEMU virt's address.
pub const GUEST_UART_BASE: u64 = 0x0900_0000;
/// Emulated GICv2 distributor, at QEMU virt's address.
pub const GUEST_GICD_BASE: u64 = 0x0800_0000;
/// GICv3 redistributors (QEMU virt's gic-version=3 layout), one 128 KiB frame pair per vCPU.
pub const GUEST_GICR_BASE: u64 = 0x080A_0000;
/// The guest's GIC CPU interface: the hardware GICV frame, mapped by system.xml.
pub const GUEST_GICC_BASE: u64 = 0x0801_0000;
/// The guest's batched console: a virtio-mmio console in QEMU virt's first virtio-mmio slot.
pub const GUEST_VIRTIO_CONSOLE_BASE: u64 = 0x0a00_0000;
/// Its interrupt: SPI 16 (INTID 48), edge-triggered, as QEMU virt's first virtio-mmio slot.
pub const VIRTIO_CONSOLE_IRQ: u16 = 48;
/// A guest-physical address where the VMM provides no device (in QEMU virt's platform-bus
/// window, empty here): an access gets a synchronous external abort.
pub const GUEST_UNCLAIMED_MMIO: u64 = 0x0c00_0000;
/// The EL1 physical timer's PPI: the VMM's wake-up timer for vCPUs halted in WFI, where the
/// kernel exports that timer (qemu_virt_aarch64).
pub const PTIMER_IRQ: u64 = 30;
/// The virtual timer's PPI (INTID 27 on GICv2).
pub const VTIMER_IRQ: u16 = 27;

/// PSCI 1.1 function ids (SMC32/SMC64 calling convention, DEN0022).
pub mod psci {
    pub const VERSION: u64 = 0x8400_0000;
    pub const CPU_SUSPEND_32: u64 = 0x8400_0001;
    pub const CPU_SUSPEND_64: u64 = 0xC400_0001;
    pub const CPU_OFF: u64 = 0x8400_0002;
    pub const CPU_ON_32: u64 = 0x8400_0003;
    pub const CPU_ON_64: u64 = 0xC400_0003;
    pub const AFFINITY_INFO_32: u64 = 0x8400_0004;
    pub const AFFINITY_INFO_64: u64 = 0xC400_0004;
    pub const MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
    pub const SYSTEM_OFF: u64 = 0x8400_0008;
    pub const SYSTEM_RESET: u64 = 0x8400_0009;
    pub const FEATURES: u64 = 0x8400_000A;
    /// Version reported: 1.1.
    pub const VERSION_1_1: u64 = 0x0001_0001;
    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const ALREADY_ON: i64 = -4;
    pub const ON_PENDING: i64 = -5;
    pub const INVALID_ADDRESS: i64 = -9;
    /// MIGRATE_INFO_TYPE: the trusted OS is not present or does not need migration.
    pub const TOS_NOT_PRESENT_MP: u64 = 2;
    /// AFFINITY_INFO results: the vCPU runs, is off, or was started and has not run yet.
    pub const AFFINITY_ON: u64 = 0;
    pub const AFFINITY_OFF: u64 = 1;
    pub const AFFINITY_ON_PENDING: u64 = 2;
}

/// lazyfp hypercalls: SMCCC fast calls in the vendor-specific hypervisor range (OEN 6).
///
/// Reachable by `smc #0` (x0 = function id), or by `hvc #0` with x7 = [`HVC_X7`] for guests
/// that cooperate: seL4 delivers such an HVC as an UnknownSyscall fault, which the VMM answers
/// in the fault reply without register calls.
pub mod hc {
    /// x7 value that marks a lazyfp HVC (outside seL4's syscall numbers −17…−1).
    pub const HVC_X7: u64 = 0x4C46_5000;
    /// x0 = lazyfp ABI version, x1 = feature bits (`FEATURE_*`).
    pub const VERSION: u64 = 0xC600_0000;
    /// x1 of [`VERSION`]: a WFI blocks until an interrupt is pending or the virtual timer's
    /// deadline passes (without it, the VMM steps over WFI: boards with no wake-up timer).
    pub const FEATURE_WFI_BLOCKS: u64 = 1 << 0;
    /// x1 of [`VERSION`]: the EL1 physical timer traps and is emulated against the real counter,
    /// its interrupt (PPI 30) raised at its deadline (boards whose kernel does not export that
    /// timer). Without it the guest must leave the physical timer alone: it is the VMM's.
    pub const FEATURE_PTIMER: u64 = 1 << 1;
    /// Does nothing; for round-trip benchmarks.
    pub const NOP: u64 = 0xC600_0001;
    /// Ask for NEON use by another PD on this vCPU's core before the guest runs again.
    pub const NEON_INTERFERE: u64 = 0xC600_0002;
    /// x1 = fp_traps, x2 = savebacks, x3 = exits, as counted by the VMM so far.
    pub const COUNTERS: u64 = 0xC600_0003;
    /// Report the guest's verdict: x1 = [`Verdict`] code, x2, x3 = details.
    pub const VERDICT: u64 = 0xC600_0004;
    /// Report torture figures: x1 = iterations, x2 = mismatches, x3 = first bad register.
    pub const TORTURE_RESULT: u64 = 0xC600_0005;
    /// ABI version returned by [`VERSION`].
    pub const ABI_VERSION: u64 = 1;
    /// Return value of an unknown function (SMCCC NOT_SUPPORTED).
    pub const NOT_SUPPORTED: u64 = u64::MAX;
}

/// Torture: "no register differed".
pub const NO_BAD_REGISTER: u64 = u64::MAX;
/// Register numbers used in torture reports beyond Q0–Q31.
pub const REG_FPSR: u64 = 32;
pub const REG_FPCR: u64 = 33;

/// The guest's verdict, as reported with [`hc::VERDICT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(FailReason),
}

/// Why the test guest failed (x1 of [`hc::VERDICT`]; x2/x3 carry the values involved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum FailReason {
    PsciVersion = 1,
    PsciFeatures = 2,
    HypercallVersion = 3,
    HvcHypercall = 4,
    UartId = 5,
    GicdReadback = 6,
    SysregRead = 7,
    TimerIrq = 8,
    FpMismatch = 9,
    FpReloadedWhileIdle = 10,
    NoSaveback = 11,
    CapFaultRecovery = 12,
    UnexpectedException = 13,
    Other = 14,
    UnclaimedMmio = 15,
    /// A WFI with IRQs masked did not wait for the virtual timer's deadline.
    WfiWake = 16,
    /// vCPU 0's WFI was not woken by vCPU 1's SGI 1, or the SGI was not pending.
    SgiWake = 17,
    /// A secondary vCPU did not start, stop or report as PSCI CPU_ON/AFFINITY_INFO say.
    SmpBringUp = 18,
    /// The emulated EL1 physical timer did not fire at its deadline as PPI 30.
    PhysTimer = 19,
}

impl FailReason {
    pub const fn from_code(code: u64) -> Self {
        match code {
            1 => Self::PsciVersion,
            2 => Self::PsciFeatures,
            3 => Self::HypercallVersion,
            4 => Self::HvcHypercall,
            5 => Self::UartId,
            6 => Self::GicdReadback,
            7 => Self::SysregRead,
            8 => Self::TimerIrq,
            9 => Self::FpMismatch,
            10 => Self::FpReloadedWhileIdle,
            11 => Self::NoSaveback,
            12 => Self::CapFaultRecovery,
            13 => Self::UnexpectedException,
            15 => Self::UnclaimedMmio,
            16 => Self::WfiWake,
            17 => Self::SgiWake,
            18 => Self::SmpBringUp,
            19 => Self::PhysTimer,
            _ => Self::Other,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PsciVersion => "psci-version",
            Self::PsciFeatures => "psci-features",
            Self::HypercallVersion => "hypercall-version",
            Self::HvcHypercall => "hvc-hypercall",
            Self::UartId => "uart-id",
            Self::GicdReadback => "gicd-readback",
            Self::SysregRead => "sysreg-read",
            Self::TimerIrq => "timer-irq",
            Self::FpMismatch => "fp-mismatch",
            Self::FpReloadedWhileIdle => "fp-reloaded-while-idle",
            Self::NoSaveback => "no-saveback",
            Self::CapFaultRecovery => "capfault-recovery",
            Self::UnexpectedException => "unexpected-exception",
            Self::Other => "other",
            Self::UnclaimedMmio => "unclaimed-mmio-abort",
            Self::WfiWake => "wfi-wake",
            Self::SgiWake => "sgi-wake",
            Self::SmpBringUp => "smp-bring-up",
            Self::PhysTimer => "phys-timer",
        }
    }
}

impl Verdict {
    pub const fn from_code(code: u64) -> Self {
        if code == 0 {
            Self::Pass
        } else {
            Self::Fail(FailReason::from_code(code))
        }
    }
}

/// PL011 peripheral id registers 0xFE0..0xFEC of an Arm PL011 r1p5, and PrimeCell ids.
pub const PL011_PERIPH_ID: [u8; 4] = [0x11, 0x10, 0x14, 0x00];
pub const PL011_PCELL_ID: [u8; 4] = [0x0d, 0xf0, 0x05, 0xb1];

/// How many of x0–x3 an SMC/HVC call with function id `fid` reads or writes (1 to 4): the VMM
/// fetches and writes back only those (each further word of the vCPU's context costs the
/// kernel's register copy twice). Results go in x0 and, where a call's doc says so, x1–x3;
/// other registers come back as they went. An unknown function answers NOT_SUPPORTED in x0.
pub const fn call_registers(fid: u64) -> usize {
    // lazyfp's own calls (the hot ones: a benchmark or guest storm runs them) by table.
    if fid >> 4 == hc::VERSION >> 4 {
        const HC: [u8; 16] = {
            let mut t = [1; 16];
            t[(hc::VERSION & 0xf) as usize] = 2;
            t[(hc::COUNTERS & 0xf) as usize] = 4;
            t[(hc::VERDICT & 0xf) as usize] = 4;
            t[(hc::TORTURE_RESULT & 0xf) as usize] = 4;
            t
        };
        return HC[(fid & 0xf) as usize] as usize;
    }
    match fid {
        psci::FEATURES => 2,
        psci::AFFINITY_INFO_32 | psci::AFFINITY_INFO_64 => 3,
        psci::CPU_ON_32 | psci::CPU_ON_64 => 4,
        // VERSION, CPU_SUSPEND (a WFI: its arguments are not needed), CPU_OFF,
        // MIGRATE_INFO_TYPE, SYSTEM_OFF, SYSTEM_RESET and every unknown function.
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_name_the_registers_they_use() {
        // Arguments in x1–x3.
        assert_eq!(call_registers(psci::CPU_ON_64), 4);
        assert_eq!(call_registers(psci::AFFINITY_INFO_32), 3);
        assert_eq!(call_registers(psci::FEATURES), 2);
        assert_eq!(call_registers(hc::VERDICT), 4);
        // Results in x1–x3.
        assert_eq!(call_registers(hc::VERSION), 2);
        assert_eq!(call_registers(hc::COUNTERS), 4);
        assert_eq!(call_registers(hc::TORTURE_RESULT), 4);
        assert_eq!(call_registers(hc::NOP), 1);
        assert_eq!(call_registers(hc::NEON_INTERFERE), 1);
        assert_eq!(call_registers(hc::VERSION + 6), 1, "unknown lazyfp call");
        assert_eq!(call_registers(hc::VERSION + 0x10), 1, "outside the table");
        // x0 only.
        for fid in [
            hc::NOP,
            psci::VERSION,
            psci::CPU_SUSPEND_64,
            psci::SYSTEM_OFF,
            0xdead,
        ] {
            assert_eq!(call_registers(fid), 1, "{fid:#x}");
        }
    }
}
