//! Register layout of what the guest drives: the PL011 console, the GICv2 distributor (emulated
//! by the VMM) and CPU interface (the hardware GICV frame), the generic timer's control bits, and
//! the AArch64 exception vector table.

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

/// GICv2 distributor (IHI 0048B §4.3).
pub mod gicd {
    pub const CTLR: usize = 0x000;
    pub const TYPER: usize = 0x004;
    /// Set-enable bits for INTIDs 0–31 (SGIs and PPIs; banked per CPU).
    pub const ISENABLER0: usize = 0x100;
    /// One priority byte per INTID (those of INTIDs 0–31 banked per CPU).
    pub const IPRIORITYR: usize = 0x400;
    /// Software Generated Interrupt Register (write-only).
    pub const SGIR: usize = 0xF00;
    pub const CTLR_ENABLE: u32 = 1;
    pub const FRAME: usize = 0x1000;

    /// GICD_SGIR value sending SGI `intid` (0–15) to the CPUs in `targets` (bit n = CPU
    /// interface n): TargetListFilter 0 (use the list) in bits 25:24, CPUTargetList in 23:16,
    /// SGIINTID in 3:0.
    pub const fn sgir(targets: u8, intid: u8) -> u32 {
        (targets as u32) << 16 | (intid & 0xF) as u32
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
    /// IAR interrupt id when nothing is pending (nothing to end with EOIR).
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
    fn sgir_targets_a_cpu_list() {
        // SGI 1 to CPU interface 0 only: the guest's wake-up SGI.
        assert_eq!(gicd::sgir(1, 1), 0x0001_0001);
        assert_eq!(gicd::sgir(0b1010, 15), 0x000A_000F);
        // An INTID above 15 cannot spill into the reserved bits or the filter.
        assert_eq!(gicd::sgir(0xFF, 0x1F), 0x00FF_000F);
    }
}
