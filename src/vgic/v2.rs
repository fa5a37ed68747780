//! The GICv2 distributor (GICD, 4 KiB) as the guest sees it. Registers of INTIDs 0–31 are
//! banked by the accessing vCPU.
//!
//! Sizes: IPRIORITYR, ITARGETSR, CPENDSGIR and SPENDSGIR take byte and word accesses, every
//! other register words only. Choices where the architecture allows several: no security
//! extensions (one Enable bit gates both groups; NSACR is RAZ/WI); IGROUPR is stored but
//! injections use group 0 (as the VMM always did); SGIs are always enabled and their pending
//! bits change only through SGIR, SPENDSGIR and CPENDSGIR; SGI sources are not tracked (seL4's
//! list-register write carries none), so SPENDSGIR reads source CPU 0 for a pending SGI and
//! CPENDSGIR clears an SGI whatever sources it names; ITARGETSR bits of absent CPUs are RAZ/WI
//! and an SPI naming several CPUs goes to the lowest (as KVM does).
use super::{
    access_ok, bitmap_reg, read_bytes, write_bytes, Bits, Op, Vgic, BYTE, NUM_IRQS, SGIS, WORD,
    WORDS,
};
use crate::mmio::MmioError;

const FRAME: u64 = 0x1000;
const CTLR: u64 = 0x000;
const TYPER: u64 = 0x004;
const IIDR: u64 = 0x008;
const SGIR: u64 = 0xf00;
const PIDR2: u64 = 0xfe8;
/// Arm, GICv2, revision 1.
const IIDR_VALUE: u32 = 0x0200_143b;
/// ArchRev 2.
const PIDR2_VALUE: u32 = 0x2b;

/// The byte-accessible registers.
const fn bytewise(offset: u64) -> bool {
    matches!(offset, 0x400..=0xbff | 0xf10..=0xf2f)
}

pub(super) fn read(g: &Vgic, vcpu: usize, offset: u64, size: u8) -> Result<u64, MmioError> {
    // Word registers first, checked in one test: a guest's reads of them (TYPER, the bitmaps,
    // the IAR-like polls) are the common exits.
    if !bytewise(offset) {
        if size != WORD || offset >= FRAME || !offset.is_multiple_of(WORD as u64) {
            return Err(MmioError::BadRegister { offset, size });
        }
    } else if !access_ok(offset, size, BYTE | WORD) {
        return Err(MmioError::BadRegister { offset, size });
    } else {
        return Ok(read_bytes(offset, size, |o| read_byte(g, vcpu, o)));
    }
    let value = match offset {
        CTLR => g.ctlr,
        // ITLinesNumber, CPUNumber; no security extensions.
        TYPER => (WORDS as u32 - 1) | ((g.vcpus as u32 - 1) << 5),
        IIDR => IIDR_VALUE,
        0x080..=0x3ff => match bitmap_reg(offset) {
            Some((Bits::Enabled, _, 0)) => g.bits(vcpu, Bits::Enabled, 0) | SGIS,
            Some((bits, _, w)) => g.bits(vcpu, bits, w),
            None => 0,
        },
        0xc00..=0xcff => g.config(vcpu, ((offset - 0xc00) / 4) as usize),
        PIDR2 => PIDR2_VALUE,
        _ => 0,
    };
    Ok(u64::from(value))
}

/// A write; returns the vCPUs (as a mask) that may have something new to deliver.
pub(super) fn write(
    g: &mut Vgic,
    vcpu: usize,
    offset: u64,
    size: u8,
    value: u64,
) -> Result<u8, MmioError> {
    let sizes = if bytewise(offset) { BYTE | WORD } else { WORD };
    if offset >= FRAME || !access_ok(offset, size, sizes) {
        return Err(MmioError::BadRegister { offset, size });
    }
    let me = 1 << vcpu;
    if bytewise(offset) {
        let mut wake = 0;
        write_bytes(offset, size, value, |o, b| {
            wake |= write_byte(g, vcpu, o, b)
        });
        return Ok(wake);
    }
    let v = value as u32;
    Ok(match offset {
        CTLR => {
            g.ctlr = v & 1;
            g.all()
        }
        0x080..=0x3ff => match bitmap_reg(offset) {
            Some((bits, op, w)) => {
                // SGIs stay enabled; their pending bits are for SGIR and [SC]PENDSGIR.
                let fixed = match (bits, op, w) {
                    (Bits::Enabled, Op::Clear, 0) | (Bits::Pending, _, 0) => SGIS,
                    _ => 0,
                };
                g.write_bits(vcpu, bits, op, w, v & !fixed);
                match (op, w) {
                    (Op::Set, 0) => me,
                    (Op::Set, _) => g.all(),
                    _ => 0,
                }
            }
            None => 0,
        },
        0xc00..=0xcff => {
            g.set_config(vcpu, ((offset - 0xc00) / 4) as usize, v);
            0
        }
        SGIR => sgir(g, vcpu, v),
        _ => 0,
    })
}

/// GICD_SGIR: makes SGI [3:0] pending on the vCPUs TargetListFilter [25:24] names: 0 the
/// CPUTargetList [23:16], 1 all but the writer, 2 the writer; 3 is reserved and does nothing.
fn sgir(g: &mut Vgic, vcpu: usize, v: u32) -> u8 {
    let targets = match (v >> 24) & 3 {
        0 => (v >> 16) as u8 & g.all(),
        1 => g.all() & !(1 << vcpu),
        2 => 1 << vcpu,
        _ => 0,
    };
    for (i, cpu) in g.cpus[..g.vcpus].iter_mut().enumerate() {
        if targets & (1 << i) != 0 {
            cpu.word.pending |= 1 << (v & 0xf);
        }
    }
    targets
}

fn read_byte(g: &Vgic, vcpu: usize, offset: u64) -> u8 {
    match offset {
        0x400..=0x7ff => g.priority(vcpu, (offset - 0x400) as usize),
        // SGIs and PPIs target the reading CPU.
        0x800..=0x81f => 1 << vcpu,
        0x820..=0xbff => g
            .itargets
            .get((offset - 0x800) as usize)
            .copied()
            .unwrap_or(0),
        0xf10..=0xf2f => {
            let sgi = (offset & 0xf) as usize;
            (g.cpus[vcpu].word.pending >> sgi) as u8 & 1
        }
        _ => 0,
    }
}

/// One byte of a byte-accessible register; returns the vCPUs to refill.
fn write_byte(g: &mut Vgic, vcpu: usize, offset: u64, b: u8) -> u8 {
    match offset {
        0x400..=0x7ff => g.set_priority(vcpu, (offset - 0x400) as usize, b),
        0x820..=0xbff => {
            let irq = (offset - 0x800) as usize;
            if irq < NUM_IRQS {
                let mask = b & g.all();
                g.itargets[irq] = mask;
                let lowest = (mask != 0).then_some(mask.trailing_zeros() as usize);
                g.route(irq, lowest);
                return mask;
            }
        }
        // Any source bit names the SGI (sources are not tracked).
        0xf10..=0xf2f if b != 0 => {
            let sgi = 1 << (offset & 0xf);
            let pending = &mut g.cpus[vcpu].word.pending;
            if offset < 0xf20 {
                *pending &= !sgi;
            } else {
                *pending |= sgi;
                return 1 << vcpu;
            }
        }
        _ => {}
    }
    0
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{GicVersion, Injections};
    use super::*;

    fn v2(n: usize) -> (Vgic, Injections) {
        (gic(GicVersion::V2, n), Injections::new())
    }

    #[test]
    fn id_registers() {
        let (mut g, _) = v2(4);
        assert_eq!(g.dist_read(0, TYPER, 4), Ok(7 | 3 << 5), "256 IRQs, 4 CPUs");
        assert_eq!(v2(1).0.dist_read(0, TYPER, 4), Ok(7));
        assert_eq!(g.dist_read(1, IIDR, 4), Ok(0x0200_143b));
        assert_eq!(g.dist_read(1, PIDR2, 4), Ok(0x2b));
        assert_eq!(g.dist_read(1, 0xfe0, 4), Ok(0));
        let mut out = Injections::new();
        g.dist_write(0, TYPER, 4, 0, &mut out).unwrap();
        g.dist_write(0, PIDR2, 4, 0, &mut out).unwrap();
        assert_eq!(g.dist_read(0, TYPER, 4), Ok(7 | 3 << 5), "read-only");
        assert_eq!(g.dist_read(0, PIDR2, 4), Ok(0x2b));
    }

    #[test]
    fn registers_read_back() {
        let (mut g, mut out) = v2(2);
        g.dist_write(0, CTLR, 4, 0xffff_ffff, &mut out).unwrap();
        assert_eq!(g.dist_read(0, CTLR, 4), Ok(1));
        // IGROUPR, ISENABLER/ICENABLER, ISPENDR/ICPENDR, ISACTIVER/ICACTIVER of SPIs 32..63.
        for (set, clear) in [
            (0x084, 0x084),
            (0x104, 0x184),
            (0x204, 0x284),
            (0x304, 0x384),
        ] {
            g.dist_write(0, set, 4, 0x8000_0001, &mut out).unwrap();
            assert_eq!(g.dist_read(1, set, 4), Ok(0x8000_0001), "{set:#x}");
            assert_eq!(g.dist_read(1, clear, 4), Ok(0x8000_0001), "{clear:#x}");
            if set == clear {
                g.dist_write(0, set, 4, 1, &mut out).unwrap();
            } else {
                g.dist_write(0, set, 4, 0x10, &mut out).unwrap();
                g.dist_write(0, clear, 4, 0x8000_0000, &mut out).unwrap();
                assert_eq!(g.dist_read(0, set, 4), Ok(0x11), "{set:#x}");
                g.dist_write(0, clear, 4, 0x10, &mut out).unwrap();
            }
            assert_eq!(g.dist_read(0, set, 4), Ok(1), "{set:#x}");
        }
        // IPRIORITYR by byte and word.
        g.dist_write(0, 0x400 + 40, 1, 0xa0, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x428, 4), Ok(0xa0));
        g.dist_write(0, 0x428, 4, 0x1122_3344, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x42b, 1), Ok(0x11));
        // ITARGETSR of SPIs, absent CPUs' bits RAZ.
        g.dist_write(0, 0x820, 4, 0xff03_0201, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x820, 4), Ok(0x0303_0201));
        assert_eq!(g.dist_read(1, 0x823, 1), Ok(3));
        assert_eq!(g.dist_read(1, 0x824, 4), Ok(0x0101_0101), "reset: vCPU 0");
        // ICFGR: SGIs fixed edge, PPIs and SPIs odd bits only.
        assert_eq!(g.dist_read(0, 0xc00, 4), Ok(0xaaaa_aaaa));
        g.dist_write(0, 0xc00, 4, 0, &mut out).unwrap();
        assert_eq!(g.dist_read(0, 0xc00, 4), Ok(0xaaaa_aaaa));
        g.dist_write(0, 0xc08, 4, u64::MAX, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0xc08, 4), Ok(0xaaaa_aaaa));
        g.dist_write(0, 0xc3c, 4, 0x8, &mut out).unwrap();
        assert_eq!(g.dist_read(0, 0xc3c, 4), Ok(0x8));
        // Beyond INTID 255: RAZ/WI.
        for off in [0x0a0, 0x120, 0x220, 0x320, 0x500, 0x900, 0xc40] {
            g.dist_write(0, off, 4, u64::MAX, &mut out).unwrap();
            assert_eq!(g.dist_read(0, off, 4), Ok(0), "{off:#x}");
        }
        // Reserved and write-only: RAZ/WI.
        for off in [0x00c, 0x040, 0xd00, 0xe00, SGIR, 0xf30, 0xffc] {
            assert_eq!(g.dist_read(0, off, 4), Ok(0), "{off:#x}");
        }
    }

    #[test]
    fn banked_per_vcpu() {
        let (mut g, mut out) = v2(3);
        g.dist_write(1, 0x080, 4, 0xf0f0, &mut out).unwrap();
        g.dist_write(1, 0x100, 4, 1 << 27, &mut out).unwrap();
        g.dist_write(1, 0x300, 4, 1 << 20, &mut out).unwrap();
        g.dist_write(1, 0x400 + 27, 1, 0x80, &mut out).unwrap();
        g.dist_write(1, 0xc04, 4, 0x0080_0000, &mut out).unwrap();
        for (vcpu, group, enabled, active, prio, cfg) in [
            (1, 0xf0f0, 0xffff | 1 << 27, 1 << 20, 0x80, 0x0080_0000),
            (0, 0, 0xffff, 0, 0, 0),
            (2, 0, 0xffff, 0, 0, 0),
        ] {
            assert_eq!(g.dist_read(vcpu, 0x080, 4), Ok(group));
            assert_eq!(g.dist_read(vcpu, 0x100, 4), Ok(enabled));
            assert_eq!(g.dist_read(vcpu, 0x300, 4), Ok(active));
            assert_eq!(g.dist_read(vcpu, 0x400 + 27, 1), Ok(prio));
            assert_eq!(g.dist_read(vcpu, 0xc04, 4), Ok(cfg));
            // ITARGETSR0-7 name the reader.
            let me = 1u64 << vcpu;
            assert_eq!(g.dist_read(vcpu, 0x81c, 4), Ok(me * 0x0101_0101));
            assert_eq!(g.dist_read(vcpu, 0x805, 1), Ok(me));
        }
        g.dist_write(1, 0x81c, 4, 0, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x81c, 4), Ok(0x0202_0202), "read-only");
        // SGIs cannot be disabled, nor made pending through ISPENDR.
        g.dist_write(1, 0x180, 4, u64::MAX, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x100, 4), Ok(0xffff));
        g.dist_write(1, 0x200, 4, u64::MAX, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x200, 4), Ok(0xffff_0000));
        assert_eq!(g.dist_read(0, 0x200, 4), Ok(0));
        assert_eq!(g.dist_read(3, 0x200, 4), Err(bad(0x200, 4)), "no vCPU 3");
        assert_eq!(g.dist_write(3, 0x200, 4, 0, &mut out), Err(bad(0x200, 4)));
    }

    #[test]
    fn sgir_targets() {
        let (mut g, mut out) = v2(4);
        g.dist_write(0, CTLR, 4, 1, &mut out).unwrap();
        let sgi = |g: &mut Vgic, from: usize, v: u64| {
            let mut out = Injections::new();
            g.dist_write(from, SGIR, 4, v, &mut out).unwrap();
            for i in out.iter() {
                assert_eq!(
                    g.complete(i.vcpu.into(), i.lr, &mut Injections::new()),
                    Some(i.irq)
                );
            }
            placed(&out)
        };
        // A target list (vCPU 4 does not exist), all others, self, reserved.
        assert_eq!(sgi(&mut g, 1, 0x0015_0003), [(0, 3, 0), (2, 3, 0)]);
        assert_eq!(sgi(&mut g, 1, 0x00f0_0003), [], "vCPUs 4-7 absent");
        assert_eq!(
            sgi(&mut g, 2, 0x0100_0005),
            [(0, 5, 0), (1, 5, 0), (3, 5, 0)]
        );
        assert_eq!(sgi(&mut g, 2, 0x02ff_000f), [(2, 15, 0)], "list ignored");
        assert_eq!(sgi(&mut g, 2, 0x03ff_000f), []);
        // The SGI number is 4 bits; NSATT and others ignored.
        assert_eq!(sgi(&mut g, 0, 0x0001_80f1), [(0, 1, 0)]);
        // While the distributor is off, SGIs wait pending.
        g.dist_write(0, CTLR, 4, 0, &mut out).unwrap();
        assert_eq!(sgi(&mut g, 0, 0x0002_0007), []);
        assert_eq!(
            g.dist_read(1, 0xf24, 4),
            Ok(0x0100_0000),
            "SPENDSGIR: SGI 7"
        );
        g.dist_write(0, CTLR, 4, 1, &mut out).unwrap();
        assert_eq!(placed(&out), [(1, 7, 0)]);
    }

    #[test]
    fn sgi_pending_registers() {
        let (mut g, mut out) = v2(2);
        g.dist_write(1, 0xf20, 4, 0x0000_0400, &mut out).unwrap(); // SGI 1, source 2
        g.dist_write(1, 0xf2f, 1, 0x01, &mut out).unwrap(); // SGI 15
        assert_eq!(g.dist_read(1, 0x200, 4), Ok(1 << 1 | 1 << 15));
        assert_eq!(g.dist_read(1, 0xf10, 4), Ok(0x0000_0100));
        assert_eq!(g.dist_read(1, 0xf1f, 1), Ok(1));
        assert_eq!(g.dist_read(0, 0xf10, 4), Ok(0), "banked");
        g.dist_write(1, 0xf10, 4, 0x0000_8000, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x200, 4), Ok(1 << 15));
        g.dist_write(1, 0xf1f, 1, 0, &mut out).unwrap();
        assert_eq!(g.dist_read(1, 0x200, 4), Ok(1 << 15), "no source named");
        assert!(out.is_empty(), "distributor off");
        g.dist_write(0, CTLR, 4, 1, &mut out).unwrap();
        assert_eq!(placed(&out), [(1, 15, 0)]);
    }

    #[test]
    fn spi_routed_to_vcpu_2() {
        let (mut g, mut out) = v2(4);
        g.dist_write(0, CTLR, 4, 1, &mut out).unwrap();
        g.dist_write(0, 0x104, 4, 1 << 1, &mut out).unwrap();
        g.dist_write(0, 0x400 + 33, 1, 0xa0, &mut out).unwrap();
        g.dist_write(0, 0x821, 1, 0x0c, &mut out).unwrap(); // vCPUs 2 and 3: the lowest
        g.raise(0, 33, &mut out).unwrap();
        assert_eq!(
            out.as_slice(),
            [super::super::Injection {
                vcpu: 2,
                irq: 33,
                priority: 0xa0,
                group: 0,
                lr: 0
            }]
        );
        assert!(g.has_pending(2) && !g.has_pending(0) && !g.has_pending(3));
        out.clear();
        // Routed nowhere: stays pending until a target is set.
        g.complete(2, 0, &mut out);
        g.dist_write(0, 0x821, 1, 0xf0, &mut out).unwrap();
        g.raise(0, 33, &mut out).unwrap();
        assert!(out.is_empty());
        g.dist_write(0, 0x820, 4, 0x0000_0200, &mut out).unwrap();
        assert_eq!(placed(&out), [(1, 33, 0)]);
    }

    #[test]
    fn odd_offsets_and_sizes() {
        let (mut g, _) = v2(2);
        hammer(0..FRAME + 0x10, |off, size, value| {
            let mut out = Injections::new();
            match value {
                None => g.dist_read(1, off, size),
                Some(v) => g.dist_write(1, off, size, v, &mut out).map(|()| 0),
            }
        });
        for (off, size) in [
            (0x400, 2),
            (0x402, 2),
            (0x800, 8),
            (0x001, 4),
            (0x100, 1),
            (0xf00, 2),
        ] {
            assert_eq!(g.dist_read(0, off, size), Err(bad(off, size)));
        }
        assert_eq!(g.dist_read(0, FRAME, 4), Err(bad(FRAME, 4)));
        assert_eq!(g.dist_read(0, u64::MAX - 3, 4), Err(bad(u64::MAX - 3, 4)));
        assert_eq!(
            g.redist_read(0, 4),
            Err(bad(0, 4)),
            "no redistributors on v2"
        );
        let mut out = Injections::new();
        assert_eq!(g.redist_write(0, 4, 0, &mut out), Err(bad(0, 4)));
        g.sgi1r_write(0, 1 << 40, &mut out);
        assert!(out.is_empty(), "no ICC_SGI1R_EL1 on v2");
    }
}
