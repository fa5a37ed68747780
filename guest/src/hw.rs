//! Register layout of what the guest drives: the PL011 console, the GIC (the distributor and,
//! on GICv3, the redistributors emulated by the VMM; the CPU interface the hardware's virtual
//! one: the GICV frame on GICv2, the ICC_* system registers on GICv3), the generic timer's
//! control bits, and the AArch64 exception vector table.

/// Arm PL011 UART (DDI 0183).
pub mod pl011 {
    /// Data register: a write sends one byte.
    pub const UARTDR: usize = 0x000;
    /// Flag register.
    pub const UARTFR: usize = 0x018;
    /// UARTFR: transmit FIFO full.
    pub const UARTFR_TXFF: u32 = 1 << 5;
    /// UARTPeriphID0; ID1–3 follow at 4-byte steps.
    pub const PERIPH_ID0: usize = 0xFE0;
    /// UARTPCellID0; ID1–3 follow at 4-byte steps.
    pub const PCELL_ID0: usize = 0xFF0;
    /// Size of the register frame.
    pub const FRAME: usize = 0x1000;
}

/// Which GIC the guest drives, chosen at run time so that one guest ELF serves every board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    V2,
    V3,
}

impl Gic {
    /// From ID_AA64PFR0_EL1: GIC [27:24] is nonzero when the CPU has the GICv3 system register
    /// interface (QEMU virt with GICv2 shows 0; GICv3 boards 1).
    pub const fn from_pfr0(pfr0: u64) -> Self {
        match (pfr0 >> 24) & 0xF {
            0 => Self::V2,
            _ => Self::V3,
        }
    }

    /// Where the distributor's PIDR2 sits (GICv2: 4 KiB frame; GICv3: 64 KiB) and the
    /// ArchRev [7:4] it must show.
    pub const fn pidr2(self) -> (usize, u32) {
        match self {
            Self::V2 => (gicd::PIDR2_V2, 2),
            Self::V3 => (gicd::PIDR2_V3, 3),
        }
    }

    /// GICD_CTLR to write: GICv2 EnableGrp0 (the VMM injects the guest's interrupts in group 0);
    /// GICv3 (one security state) EnableGrp1 with ARE_NS, which reads as one anyway.
    pub const fn gicd_ctlr(self) -> u32 {
        match self {
            Self::V2 => gicd::CTLR_ENABLE,
            Self::V3 => gicd::CTLR_ENABLE_GRP1 | gicd::CTLR_ARE_NS,
        }
    }
}

/// GIC distributor (GICv2: IHI 0048B §4.3; GICv3: IHI 0069 §12.9).
pub mod gicd {
    pub const CTLR: usize = 0x000;
    pub const TYPER: usize = 0x004;
    /// Group bits for INTIDs 0–31.
    pub const IGROUPR0: usize = 0x080;
    /// Set-enable bits for INTIDs 0–31 (SGIs and PPIs; banked per CPU).
    pub const ISENABLER0: usize = 0x100;
    /// One priority byte per INTID (those of INTIDs 0–31 banked per CPU).
    pub const IPRIORITYR: usize = 0x400;
    /// Software Generated Interrupt Register (write-only).
    pub const SGIR: usize = 0xF00;
    pub const CTLR_ENABLE: u32 = 1;
    /// GICv3 with GICD_CTLR.DS = 1: EnableGrp1 and the affinity routing enable.
    pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
    pub const CTLR_ARE_NS: u32 = 1 << 4;
    /// Peripheral ID2 (ArchRev in bits 7:4) at the end of the GICv2 and the GICv3 frame.
    pub const PIDR2_V2: usize = 0xFE8;
    pub const PIDR2_V3: usize = 0xFFE8;
    /// GICv2's distributor frame; GICv3's is 64 KiB.
    pub const FRAME: usize = 0x1000;
    pub const FRAME_V3: usize = 0x1_0000;

    /// PIDR2's architecture revision.
    pub const fn arch_rev(pidr2: u32) -> u32 {
        (pidr2 >> 4) & 0xF
    }

    /// GICD_SGIR value sending SGI `intid` (0–15) to the CPUs in `targets` (bit n = CPU
    /// interface n): TargetListFilter 0 (use the list) in bits 25:24, CPUTargetList in 23:16,
    /// SGIINTID in 3:0.
    pub const fn sgir(targets: u8, intid: u8) -> u32 {
        (targets as u32) << 16 | (intid & 0xF) as u32
    }
}

/// GICv3 redistributor of one CPU (IHI 0069 §12.10–12.11): an RD frame, then an SGI frame that
/// holds the SGI and PPI registers GICv2 banks in the distributor.
pub mod gicr {
    /// 64-bit; Affinity_Value [63:32], Last [4].
    pub const TYPER: usize = 0x008;
    pub const WAKER: usize = 0x014;
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
    pub const TYPER_LAST: u64 = 1 << 4;
    pub const SGI_FRAME: usize = 0x1_0000;
    /// Group bits of INTIDs 0–31 (1: group 1, which the GICv3 guest uses).
    pub const IGROUPR0: usize = SGI_FRAME + 0x080;
    pub const ISENABLER0: usize = SGI_FRAME + 0x100;
    /// One priority byte per SGI and PPI.
    pub const IPRIORITYR: usize = SGI_FRAME + 0x400;
    /// One RD and one SGI frame per CPU.
    pub const STRIDE: usize = 0x2_0000;

    /// GICR_TYPER.Affinity_Value of the CPU with `mpidr`: Aff3.Aff2.Aff1.Aff0.
    pub const fn typer_affinity(mpidr: u64) -> u64 {
        ((mpidr >> 32) & 0xFF) << 24 | (mpidr & 0xFF_FFFF)
    }

    /// Whether the redistributor whose GICR_TYPER is `typer` serves the CPU with `mpidr`.
    pub const fn serves(typer: u64, mpidr: u64) -> bool {
        typer >> 32 == typer_affinity(mpidr)
    }
}

/// GICv3 CPU interface system registers (ICC_*_EL1; here the hardware's virtual interface).
pub mod icc {
    /// ICC_SRE_EL1.SRE: the system register interface.
    pub const SRE: u64 = 1;
    /// ICC_IGRPEN1_EL1.Enable.
    pub const IGRPEN1_ENABLE: u64 = 1;
    /// ICC_IAR1_EL1 bits 23:0: the interrupt id.
    pub const IAR_INTID_MASK: u64 = 0xFF_FFFF;

    /// ICC_SGI1R_EL1 value sending SGI `intid` (0–15) to the one CPU with `mpidr`: Aff3
    /// [55:48], RS [47:44] (Aff0 / 16), Aff2 [39:32], INTID [27:24], Aff1 [23:16] and the
    /// TargetList bit Aff0 % 16; IRM [40] = 0 (use the list).
    pub const fn sgi1r(mpidr: u64, intid: u8) -> u64 {
        let aff0 = mpidr & 0xFF;
        ((mpidr >> 32) & 0xFF) << 48
            | (aff0 >> 4) << 44
            | ((mpidr >> 16) & 0xFF) << 32
            | ((intid & 0xF) as u64) << 24
            | ((mpidr >> 8) & 0xFF) << 16
            | 1 << (aff0 & 0xF)
    }
}

/// GICv2 CPU interface, here the virtual one (GICV, IHI 0048B §5.3).
pub mod gicc {
    pub const CTLR: usize = 0x000;
    pub const PMR: usize = 0x004;
    pub const IAR: usize = 0x00C;
    pub const EOIR: usize = 0x010;
    /// GICC_CTLR.EnableGrp0: the VMM injects the timer as a group 0 virtual interrupt, which
    /// is signalled as vIRQ while FIQEn is 0.
    pub const CTLR_ENABLE_GRP0: u32 = 1;
    /// Lowest priority mask: every priority below 0xFF is forwarded.
    pub const PMR_ALL: u32 = 0xFF;
    /// IAR bits 9:0: the interrupt id.
    pub const IAR_INTID_MASK: u32 = 0x3FF;
    /// IAR interrupt id when nothing is pending (nothing to end with EOIR); the same on GICv3.
    pub const INTID_SPURIOUS: u32 = 1023;
    /// GICv2 CPU interface frame: 8 KiB (GICC_DIR sits at 0x1000).
    pub const FRAME: usize = 0x2000;
}

/// Generic timer control registers (CNTV_CTL_EL0 / CNTP_CTL_EL0).
pub mod timer {
    pub const CTL_ENABLE: u64 = 1 << 0;
    pub const CTL_IMASK: u64 = 1 << 1;
    /// The timer condition is met (read-only).
    pub const CTL_ISTATUS: u64 = 1 << 2;
    /// Ticks of 0.1 ms when CNTFRQ_EL0 reads as zero: QEMU virt counts at 62.5 MHz.
    pub const TICKS_100US_AT_62_5_MHZ: u64 = 6250;

    /// Ticks of 0.1 ms at `cntfrq` Hz (falls back to QEMU virt's frequency if the register
    /// was never programmed).
    pub const fn ticks_100us(cntfrq: u64) -> u64 {
        match cntfrq / 10_000 {
            0 => TICKS_100US_AT_62_5_MHZ,
            t => t,
        }
    }

    /// Ticks of `ms` milliseconds at `cntfrq` Hz (with the fallback of [`ticks_100us`]).
    pub const fn ticks_ms(cntfrq: u64, ms: u64) -> u64 {
        ticks_100us(cntfrq).saturating_mul(10).saturating_mul(ms)
    }
}

const _: () = assert!(pl011::PCELL_ID0 + 16 <= pl011::FRAME);
const _: () = assert!(gicd::IPRIORITYR + 32 <= gicd::FRAME);
const _: () = assert!(gicd::SGIR + 4 <= gicd::FRAME);
const _: () = assert!(gicc::EOIR + 4 <= gicc::FRAME);
const _: () = assert!(gicd::PIDR2_V2 + 4 <= gicd::FRAME);
const _: () = assert!(gicd::PIDR2_V3 + 4 <= gicd::FRAME_V3);
const _: () = assert!(gicr::IPRIORITYR + 32 <= gicr::STRIDE);

/// Where an exception came from, by the quarter of the vector table it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Current EL, using SP_EL0.
    CurrentSp0,
    /// Current EL, using SP_ELx (the guest always runs on SP_EL1).
    CurrentSpx,
    /// Lower EL in AArch64.
    LowerA64,
    /// Lower EL in AArch32.
    LowerA32,
}

/// Exception class, by the entry within a quarter of the vector table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Sync,
    Irq,
    Fiq,
    SError,
}

/// One of the 16 entries (0x80 bytes each) of an AArch64 vector table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector {
    pub origin: Origin,
    pub class: Class,
}

impl Vector {
    /// Entries in a vector table.
    pub const COUNT: u64 = 16;

    /// The entry at `index` (offset / 0x80); only the low four bits count.
    pub const fn from_index(index: u64) -> Self {
        let origin = match (index >> 2) & 3 {
            0 => Origin::CurrentSp0,
            1 => Origin::CurrentSpx,
            2 => Origin::LowerA64,
            _ => Origin::LowerA32,
        };
        let class = match index & 3 {
            0 => Class::Sync,
            1 => Class::Irq,
            2 => Class::Fiq,
            _ => Class::SError,
        };
        Self { origin, class }
    }

    /// A synchronous exception taken at EL1 on SP_EL1.
    pub const fn is_current_sync(self) -> bool {
        matches!((self.origin, self.class), (Origin::CurrentSpx, Class::Sync))
    }

    /// The only exception the guest expects: an IRQ taken at EL1 on SP_EL1.
    pub const fn is_expected_irq(self) -> bool {
        matches!((self.origin, self.class), (Origin::CurrentSpx, Class::Irq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_index_decodes_like_the_architecture() {
        // VBAR + 0x280 is "current EL with SPx, IRQ".
        assert_eq!(
            Vector::from_index(0x280 / 0x80),
            Vector {
                origin: Origin::CurrentSpx,
                class: Class::Irq
            }
        );
        assert_eq!(
            Vector::from_index(0x200 / 0x80),
            Vector {
                origin: Origin::CurrentSpx,
                class: Class::Sync
            }
        );
        assert_eq!(
            Vector::from_index(0),
            Vector {
                origin: Origin::CurrentSp0,
                class: Class::Sync
            }
        );
        assert_eq!(
            Vector::from_index(0x780 / 0x80),
            Vector {
                origin: Origin::LowerA32,
                class: Class::SError
            }
        );
        assert_eq!(
            Vector::from_index(0x500 / 0x80),
            Vector {
                origin: Origin::LowerA64,
                class: Class::Fiq
            }
        );
    }

    #[test]
    fn only_the_current_el_spx_irq_is_expected() {
        let expected: Vec<u64> = (0..Vector::COUNT)
            .filter(|&i| Vector::from_index(i).is_expected_irq())
            .collect();
        assert_eq!(expected, [5]);
    }

    #[test]
    fn timer_ticks_follow_cntfrq() {
        assert_eq!(timer::ticks_100us(62_500_000), 6250);
        assert_eq!(timer::ticks_100us(100_000_000), 10_000);
        assert_eq!(timer::ticks_100us(0), timer::TICKS_100US_AT_62_5_MHZ);
        assert_eq!(timer::ticks_ms(62_500_000, 5), 312_500);
        assert_eq!(timer::ticks_ms(0, 1), 62_500);
        assert_eq!(timer::ticks_ms(1_000_000_000, u64::MAX), u64::MAX);
    }

    #[test]
    fn the_gic_follows_id_aa64pfr0() {
        // QEMU virt's Cortex-A53 with GICv2: EL0-EL3 AArch64 only, no GIC field.
        assert_eq!(Gic::from_pfr0(0x0000_2222), Gic::V2);
        // The same CPU with a GICv3 CPU interface (imx8mp-evk).
        assert_eq!(Gic::from_pfr0(0x0100_2222), Gic::V3);
        // GICv4.1's system registers are GICv3's.
        assert_eq!(Gic::from_pfr0(0x0300_2222), Gic::V3);
        // Fields around GIC do not count.
        assert_eq!(Gic::from_pfr0(0xF0FF_FFFF), Gic::V2);
    }

    #[test]
    fn each_gic_has_its_pidr2_and_enable() {
        // What the VMM's distributors answer (src/vgic: 0x2b at 0xfe8, 0x3b at 0xffe8).
        assert_eq!(Gic::V2.pidr2(), (0xFE8, gicd::arch_rev(0x2b)));
        assert_eq!(Gic::V3.pidr2(), (0xFFE8, gicd::arch_rev(0x3b)));
        assert_eq!(Gic::V2.gicd_ctlr(), 1);
        assert_eq!(
            Gic::V3.gicd_ctlr(),
            0x12,
            "EnableGrp1 | ARE_NS, as Linux writes"
        );
    }

    #[test]
    fn a_redistributor_is_found_by_its_affinity() {
        assert_eq!(
            gicr::typer_affinity(0x8000_0001),
            1,
            "MPIDR.U/MT/RES1 are not affinity"
        );
        assert_eq!(gicr::typer_affinity(0x12_0034_5678), 0x1234_5678);
        // GICR_TYPER of vCPU 2, the last of three: affinity 2, Processor_Number 2, Last.
        let typer = 2 << 32 | 2 << 8 | gicr::TYPER_LAST;
        assert!(gicr::serves(typer, 0x8000_0002));
        assert!(!gicr::serves(typer, 0x8000_0000));
        assert!(!gicr::serves(typer, 0x1_0000_0002), "Aff3 differs");
    }

    #[test]
    fn sgi1r_names_one_cpu_by_affinity() {
        // SGI 1 to vCPU 0 (MPIDR Aff0 = 0): TargetList bit 0.
        assert_eq!(icc::sgi1r(0x8000_0000, 1), 0x0100_0001);
        assert_eq!(icc::sgi1r(3, 15), 0x0F00_0008);
        // Aff3.Aff2.Aff1 = 4.3.2, Aff0 = 0x21: RS 2, TargetList bit 1.
        assert_eq!(icc::sgi1r(0x04_0003_0221, 7), 0x0004_2003_0702_0002);
        // An INTID above 15 cannot spill into Aff1 or IRM.
        assert_eq!(icc::sgi1r(0, 0x1F), 0x0F00_0001);
    }

    #[test]
    fn sgir_targets_a_cpu_list() {
        // SGI 1 to CPU interface 0 only: the guest's wake-up SGI.
        assert_eq!(gicd::sgir(1, 1), 0x0001_0001);
        assert_eq!(gicd::sgir(0b1010, 15), 0x000A_000F);
        // An INTID above 15 cannot spill into the reserved bits or the filter.
        assert_eq!(gicd::sgir(0xFF, 0x1F), 0x00FF_000F);
    }
}
