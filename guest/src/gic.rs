//! The vCPU's GIC, GICv2 or GICv3 as the CPU reports it (ID_AA64PFR0_EL1.GIC), so that one guest
//! ELF serves every board. GICv2: the emulated distributor banks the SGI and PPI registers, the
//! CPU interface is the GICV frame. GICv3: the SGI and PPI registers are in this vCPU's emulated
//! redistributor, the CPU interface is the ICC_* system registers (the hardware's virtual
//! interface, no exits), and SGIs go out through ICC_SGI1R_EL1 (trapped to the VMM).
use aarch64_cpu::registers::{Readable, ID_AA64PFR0_EL1, MPIDR_EL1};
use guest::hw::{gicc, gicd, gicr, icc, Gic};
use guest::{expect_eq, CheckResult, Failure};
use lazyfp::abi::FailReason;

use crate::arch::{self, Mmio};

/// The GIC this CPU has (a system register read, no exit).
pub fn version() -> Gic {
    Gic::from_pfr0(ID_AA64PFR0_EL1.get())
}

/// The emulated distributor, in its version's frame size.
pub fn distributor() -> Mmio {
    match version() {
        Gic::V2 => Mmio::GICD,
        Gic::V3 => Mmio::GICD_V3,
    }
}

/// Redistributor frames the guest looks through for its own (the VMM serves at most 8 vCPUs).
const MAX_REDISTRIBUTORS: usize = 8;
/// GICR_WAKER reads before the redistributor must have woken.
const WAKE_POLLS: u32 = 1000;

/// Where this vCPU's SGI and PPI registers are: the distributor (GICv2, banked per CPU) or its
/// redistributor's SGI frame (GICv3), at the same register layout.
#[derive(Clone, Copy)]
pub struct Banked {
    frame: Mmio,
    /// Offset of IGROUPR0 / ISENABLER0 / IPRIORITYR in `frame`.
    base: usize,
}

impl Banked {
    /// This vCPU's: on GICv3 the redistributor whose GICR_TYPER names its MPIDR (GicdReadback
    /// if none does).
    pub fn mine() -> Result<Self, Failure> {
        match version() {
            Gic::V2 => Ok(Self {
                frame: Mmio::GICD,
                base: 0,
            }),
            Gic::V3 => redistributor().map(|frame| Self {
                frame,
                base: gicr::SGI_FRAME,
            }),
        }
    }

    /// The redistributor's RD frame (GICv3 only).
    fn rd(self) -> Mmio {
        self.frame
    }

    pub fn enable(self, mask: u32) {
        self.frame.write32(self.base + gicd::ISENABLER0, mask);
    }

    pub fn enabled(self) -> u32 {
        self.frame.read32(self.base + gicd::ISENABLER0)
    }

    /// Puts the interrupts of `mask` into group 1 (GICv3: the group the ICC interface takes
    /// with IGRPEN1; group 0 would be signalled as FIQ).
    fn to_group1(self, mask: u32) {
        let offset = self.base + gicd::IGROUPR0;
        let groups = self.frame.read32(offset);
        self.frame.write32(offset, groups | mask);
    }

    pub fn set_priority(self, intid: u32, priority: u8) {
        self.frame
            .write8(self.base + gicd::IPRIORITYR + intid as usize, priority);
    }

    pub fn priority(self, intid: u32) -> u8 {
        self.frame
            .read8(self.base + gicd::IPRIORITYR + intid as usize)
    }
}

const _: () = assert!(gicr::ISENABLER0 - gicr::SGI_FRAME == gicd::ISENABLER0);
const _: () = assert!(gicr::IGROUPR0 - gicr::SGI_FRAME == gicd::IGROUPR0);
const _: () = assert!(gicr::IPRIORITYR - gicr::SGI_FRAME == gicd::IPRIORITYR);

/// GICv3: the redistributor serving this vCPU, found as Linux does by GICR_TYPER's affinity.
fn redistributor() -> Result<Mmio, Failure> {
    let mpidr = MPIDR_EL1.get();
    for index in 0..MAX_REDISTRIBUTORS {
        let rd = Mmio::redistributor(index);
        let typer = u64::from(rd.read32(gicr::TYPER)) | u64::from(rd.read32(gicr::TYPER + 4)) << 32;
        if gicr::serves(typer, mpidr) {
            return Ok(rd);
        }
        if typer & gicr::TYPER_LAST != 0 {
            break;
        }
    }
    Err(Failure::new("gicr-affinity", FailReason::GicdReadback, mpidr, 0).labelled("mpidr", "none"))
}

/// Sets this vCPU's GIC up to take the interrupts of `mask` (INTIDs 0–31) with the given
/// priorities: the distributor on; on GICv3 also the redistributor woken (GICR_WAKER
/// handshake), the interrupts in group 1, and the system register interface on; then the CPU
/// interface forwards every priority.
pub fn cpu_setup(mask: u32, priorities: &[(u32, u8)]) -> CheckResult {
    let gic = version();
    distributor().write32(gicd::CTLR, gic.gicd_ctlr());
    let banked = Banked::mine()?;
    if gic == Gic::V3 {
        wake(banked.rd())?;
        banked.to_group1(mask);
    }
    for &(intid, priority) in priorities {
        banked.set_priority(intid, priority);
    }
    banked.enable(mask);
    match gic {
        Gic::V2 => {
            Mmio::GICC.write32(gicc::PMR, gicc::PMR_ALL);
            Mmio::GICC.write32(gicc::CTLR, gicc::CTLR_ENABLE_GRP0);
        }
        Gic::V3 => {
            arch::icc_sre_set(arch::icc_sre() | icc::SRE);
            arch::icc_pmr_set(u64::from(gicc::PMR_ALL));
            arch::icc_igrpen1_set(icc::IGRPEN1_ENABLE);
        }
    }
    Ok(())
}

/// Clears GICR_WAKER.ProcessorSleep and waits for ChildrenAsleep to follow.
fn wake(rd: Mmio) -> CheckResult {
    let waker = rd.read32(gicr::WAKER);
    rd.write32(gicr::WAKER, waker & !gicr::WAKER_PROCESSOR_SLEEP);
    let mut now = rd.read32(gicr::WAKER);
    for _ in 0..WAKE_POLLS {
        if now & gicr::WAKER_CHILDREN_ASLEEP == 0 {
            break;
        }
        now = rd.read32(gicr::WAKER);
    }
    expect_eq(
        "gicr-waker",
        FailReason::GicdReadback,
        u64::from(now & gicr::WAKER_CHILDREN_ASLEEP),
        0,
    )
}

/// Acknowledges the highest-priority pending interrupt (GICC_IAR / ICC_IAR1_EL1): its
/// interrupt id and the raw value to end it with, or `None` if nothing was pending.
pub fn acknowledge() -> Option<(u32, u64)> {
    let (iar, intid) = match version() {
        Gic::V2 => {
            let iar = Mmio::GICC.read32(gicc::IAR);
            (u64::from(iar), iar & gicc::IAR_INTID_MASK)
        }
        Gic::V3 => {
            let iar = arch::icc_iar1();
            (iar, (iar & icc::IAR_INTID_MASK) as u32)
        }
    };
    (intid != gicc::INTID_SPURIOUS).then_some((intid, iar))
}

/// Ends (priority drop and deactivation) the interrupt `iar` of [`acknowledge`].
pub fn end(iar: u64) {
    match version() {
        Gic::V2 => Mmio::GICC.write32(gicc::EOIR, iar as u32),
        Gic::V3 => arch::icc_eoir1_set(iar),
    }
}

/// Sends SGI `intid` to the vCPU with MPIDR `mpidr` (Aff0 = its index, as the VMM assigns):
/// GICD_SGIR (an MMIO exit) on GICv2, ICC_SGI1R_EL1 (a trapped system register) on GICv3.
pub fn send_sgi(mpidr: u64, intid: u8) {
    match version() {
        Gic::V2 => Mmio::GICD.write32(gicd::SGIR, gicd::sgir(1 << (mpidr & 7), intid)),
        Gic::V3 => arch::icc_sgi1r_set(icc::sgi1r(mpidr, intid)),
    }
}
