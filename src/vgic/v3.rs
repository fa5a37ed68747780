//! The GICv3 distributor (64 KiB), the redistributors (one RD frame and one SGI frame of
//! 64 KiB per vCPU) and the trapped `ICC_SGI1R_EL1`, as the guest sees them.
//!
//! Choices where the architecture allows several: one security state (GICD_CTLR.DS = 1) with
//! affinity routing always on (ARE reads 1, so the distributor's SGI/PPI registers, ITARGETSR,
//! SGIR and [SC]PENDSGIR are RAZ/WI); no LPIs, no message-based SPIs, no 1-of-N routing
//! (TYPER.No1N = 1, IROUTER.IRM is RAZ/WI); register writes complete at once (RWP reads 0);
//! IGRPMODR and NSACR are RAZ/WI; GICR_CTLR, STATUSR, PROPBASER and PENDBASER are RAZ/WI;
//! GICR_WAKER.ChildrenAsleep follows ProcessorSleep at once and does not gate delivery.
//!
//! Sizes: IPRIORITYR (and the RAZ/WI ITARGETSR) take byte and word accesses; IROUTER,
//! GICR_TYPER, PROPBASER and PENDBASER 64-bit and 32-bit halves; all others words only.
use super::{
    access_ok, bit, bitmap_reg, half, merge_half, read_bytes, write_bytes, Op, Vgic, AFFINITY,
    BYTE, DWORD, NUM_IRQS, REDIST_STRIDE, WORD,
};
use crate::mmio::MmioError;

const DIST_FRAME: u64 = 0x1_0000;
const SGI_FRAME: u64 = 0x1_0000;
const CTLR: u64 = 0x0000;
const TYPER: u64 = 0x0004;
const IIDR: u64 = 0x0008;
const GICR_IIDR: u64 = 0x0004;
const WAKER: u64 = 0x0014;
const PIDR2: u64 = 0xffe8;
const IROUTER: u64 = 0x6000;
/// IROUTER of INTID 1019, the last.
const IROUTER_END: u64 = IROUTER + 8 * 1019;

const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;
/// EnableGrp0 and EnableGrp1 (DS = 1 layout).
const CTLR_ENABLES: u32 = 3;
/// ITLinesNumber 7 (256 INTIDs), IDbits 9 (10 bits, as KVM), No1N.
const TYPER_VALUE: u32 = 7 | 9 << 19 | 1 << 25;
/// Arm, GICv3, revision 1.
const IIDR_VALUE: u32 = 0x0300_143b;
/// ArchRev 3.
const PIDR2_VALUE: u32 = 0x3b;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const GICR_TYPER_LAST: u64 = 1 << 4;

fn refuse<T>(offset: u64, size: u8) -> Result<T, MmioError> {
    Err(MmioError::BadRegister { offset, size })
}

/// The sizes a distributor register takes.
const fn dist_sizes(offset: u64) -> u8 {
    match offset {
        0x400..=0xbff => BYTE | WORD,
        IROUTER..=IROUTER_END => WORD | DWORD,
        _ => WORD,
    }
}

pub(super) fn dist_read(g: &Vgic, offset: u64, size: u8) -> Result<u64, MmioError> {
    if offset >= DIST_FRAME || !access_ok(offset, size, dist_sizes(offset)) {
        return refuse(offset, size);
    }
    let value = match offset {
        CTLR => g.ctlr | CTLR_ARE | CTLR_DS,
        TYPER => TYPER_VALUE,
        IIDR => IIDR_VALUE,
        // Word 0 (SGIs, PPIs) is the redistributors' with ARE.
        0x080..=0x3ff => match bitmap_reg(offset) {
            Some((bits, _, w)) if w > 0 => g.bits(0, bits, w),
            _ => 0,
        },
        0x400..=0x7ff => {
            let prio = |o: u64| match (o - 0x400) as usize {
                0..32 => 0,
                irq => g.priority(0, irq),
            };
            return Ok(read_bytes(offset, size, prio));
        }
        0xc00..=0xcff => match ((offset - 0xc00) / 4) as usize {
            0 | 1 => 0,
            w => g.config(0, w),
        },
        IROUTER..=IROUTER_END => {
            let irq = ((offset - IROUTER) / 8) as usize;
            let route = match irq {
                32..NUM_IRQS => g.irouter[irq],
                _ => 0,
            };
            return Ok(half(route, offset, size));
        }
        PIDR2 => PIDR2_VALUE,
        _ => 0,
    };
    Ok(u64::from(value))
}

/// A distributor write; returns the vCPUs (as a mask) that may have something new to deliver.
pub(super) fn dist_write(g: &mut Vgic, offset: u64, size: u8, value: u64) -> Result<u8, MmioError> {
    if offset >= DIST_FRAME || !access_ok(offset, size, dist_sizes(offset)) {
        return refuse(offset, size);
    }
    let v = value as u32;
    Ok(match offset {
        CTLR => {
            g.ctlr = v & CTLR_ENABLES;
            g.all()
        }
        0x080..=0x3ff => match bitmap_reg(offset) {
            Some((bits, op, w)) if w > 0 => {
                g.write_bits(0, bits, op, w, v);
                // A group change can move an interrupt to an enabled group.
                match op {
                    Op::Assign | Op::Set => g.all(),
                    Op::Clear => 0,
                }
            }
            _ => 0,
        },
        0x400..=0x7ff => {
            write_bytes(offset, size, value, |o, b| {
                if let irq @ 32.. = (o - 0x400) as usize {
                    g.set_priority(0, irq, b);
                }
            });
            0
        }
        0xc00..=0xcff => {
            if let w @ 2.. = ((offset - 0xc00) / 4) as usize {
                g.set_config(0, w, v);
            }
            0
        }
        IROUTER..=IROUTER_END => {
            let irq = ((offset - IROUTER) / 8) as usize;
            if !(32..NUM_IRQS).contains(&irq) {
                return Ok(0);
            }
            let route = merge_half(g.irouter[irq], offset, size, value) & AFFINITY;
            g.irouter[irq] = route;
            let to = g.affinity[..g.vcpus].iter().position(|&a| a == route);
            g.route(irq, to);
            g.all()
        }
        _ => 0,
    })
}

/// The redistributor `offset` is in, and the offset inside its 128 KiB.
fn redist(g: &Vgic, offset: u64) -> Option<(usize, u64)> {
    let cpu = usize::try_from(offset / REDIST_STRIDE).ok()?;
    (cpu < g.vcpus).then_some((cpu, offset % REDIST_STRIDE))
}

/// The sizes a redistributor register takes (`off` inside the 128 KiB).
const fn redist_sizes(off: u64) -> u8 {
    match off {
        // TYPER, PROPBASER, PENDBASER.
        0x0008..=0x000f | 0x0070..=0x007f => WORD | DWORD,
        // SGI frame IPRIORITYR0-7.
        0x1_0400..=0x1_041f => BYTE | WORD,
        _ => WORD,
    }
}

/// GICR_TYPER: affinity [63:32] as Aff3.Aff2.Aff1.Aff0, Processor_Number [23:8], Last [4].
fn gicr_typer(g: &Vgic, cpu: usize) -> u64 {
    let aff = g.affinity[cpu];
    let packed = (aff >> 32) << 24 | (aff & 0xff_ffff);
    let last = if cpu + 1 == g.vcpus {
        GICR_TYPER_LAST
    } else {
        0
    };
    packed << 32 | (cpu as u64) << 8 | last
}

pub(super) fn redist_read(g: &Vgic, offset: u64, size: u8) -> Result<u64, MmioError> {
    let Some((cpu, off)) = redist(g, offset) else {
        return refuse(offset, size);
    };
    if !access_ok(off, size, redist_sizes(off)) {
        return refuse(offset, size);
    }
    let value = match off {
        GICR_IIDR => IIDR_VALUE,
        0x0008..=0x000f => return Ok(half(gicr_typer(g, cpu), off, size)),
        WAKER if g.cpus[cpu].asleep => WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP,
        PIDR2 => PIDR2_VALUE,
        0x1_0000.. => {
            let sgi = off - SGI_FRAME;
            match sgi {
                0x080..=0x3ff => match bitmap_reg(sgi) {
                    Some((bits, _, 0)) => g.bits(cpu, bits, 0),
                    _ => 0,
                },
                0x400..=0x41f => {
                    let prio = |o: u64| g.priority(cpu, (o - 0x400) as usize);
                    return Ok(read_bytes(sgi, size, prio));
                }
                0xc00 | 0xc04 => g.config(cpu, ((sgi - 0xc00) / 4) as usize),
                PIDR2 => PIDR2_VALUE,
                _ => 0,
            }
        }
        _ => 0,
    };
    Ok(u64::from(value))
}

/// A redistributor write; returns the vCPUs (as a mask) that may have something new to deliver.
pub(super) fn redist_write(
    g: &mut Vgic,
    offset: u64,
    size: u8,
    value: u64,
) -> Result<u8, MmioError> {
    let Some((cpu, off)) = redist(g, offset) else {
        return refuse(offset, size);
    };
    if !access_ok(off, size, redist_sizes(off)) {
        return refuse(offset, size);
    }
    let v = value as u32;
    let me = 1 << cpu;
    Ok(match off {
        WAKER => {
            g.cpus[cpu].asleep = v & WAKER_PROCESSOR_SLEEP != 0;
            0
        }
        0x1_0000.. => {
            let sgi = off - SGI_FRAME;
            match sgi {
                0x080..=0x3ff => match bitmap_reg(sgi) {
                    Some((bits, op, 0)) => {
                        g.write_bits(cpu, bits, op, 0, v);
                        if op == Op::Clear {
                            0
                        } else {
                            me
                        }
                    }
                    _ => 0,
                },
                0x400..=0x41f => {
                    write_bytes(sgi, size, value, |o, b| {
                        g.set_priority(cpu, (o - 0x400) as usize, b)
                    });
                    0
                }
                0xc00 | 0xc04 => {
                    g.set_config(cpu, ((sgi - 0xc00) / 4) as usize, v);
                    0
                }
                _ => 0,
            }
        }
        _ => 0,
    })
}

/// ICC_SGI1R_EL1 written by `vcpu`: SGI INTID [27:24] to the vCPUs with affinity
/// Aff3 [55:48].Aff2 [39:32].Aff1 [23:16] and Aff0 = RS [47:44] * 16 + a bit of TargetList
/// [15:0], or with IRM [40] to every vCPU but the writer. Returns the vCPUs it made pending on.
pub(super) fn sgi1r(g: &mut Vgic, vcpu: usize, value: u64) -> u8 {
    let sgi = ((value >> 24) & 0xf) as usize;
    let targets = if value & (1 << 40) != 0 {
        g.all() & !(1 << vcpu)
    } else {
        let upper = ((value >> 48) & 0xff) << 32
            | ((value >> 32) & 0xff) << 16
            | ((value >> 16) & 0xff) << 8;
        let base = ((value >> 44) & 0xf) * 16;
        g.affinity[..g.vcpus]
            .iter()
            .enumerate()
            .filter(|&(_, &a)| {
                let aff0 = a & 0xff;
                a & !0xff == upper
                    && (base..base + 16).contains(&aff0)
                    && value & (1 << (aff0 - base)) != 0
            })
            .fold(0, |mask, (i, _)| mask | 1 << i)
    };
    let (_, b) = bit(sgi);
    let mut made = 0;
    for (i, cpu) in g.cpus[..g.vcpus].iter_mut().enumerate() {
        // A group 1 SGI: only where the target has it in group 1.
        if targets & (1 << i) != 0 && cpu.word.group & b != 0 {
            cpu.word.pending |= b;
            made |= 1 << i;
        }
    }
    made
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{GicVersion, Injection, Injections};
    use super::*;

    fn v3(n: usize) -> (Vgic, Injections) {
        (gic(GicVersion::V3, n), Injections::new())
    }

    fn sgi_frame(cpu: u64) -> u64 {
        cpu * REDIST_STRIDE + SGI_FRAME
    }

    #[test]
    fn distributor_id_and_control() {
        let (mut g, mut out) = v3(4);
        assert_eq!(g.dist_read(0, CTLR, 4), Ok(0x50), "ARE and DS, RWP 0");
        g.dist_write(0, CTLR, 4, u64::MAX, &mut out).unwrap();
        assert_eq!(g.dist_read(2, CTLR, 4), Ok(0x53));
        g.dist_write(0, CTLR, 4, 0x12, &mut out).unwrap(); // Linux: ARE_NS | G1A
        assert_eq!(g.dist_read(0, CTLR, 4), Ok(0x52));
        let typer = g.dist_read(0, TYPER, 4).unwrap();
        assert_eq!(typer & 0x1f, 7, "ITLinesNumber: 256 INTIDs");
        assert_eq!((typer >> 19) & 0x1f, 9, "IDbits");
        assert_eq!(typer & (1 << 17), 0, "no LPIs");
        assert_ne!(typer & (1 << 25), 0, "No1N");
        assert_eq!(g.dist_read(0, IIDR, 4), Ok(0x0300_143b));
        assert_eq!(g.dist_read(0, PIDR2, 4).map(|v| (v >> 4) & 0xf), Ok(3));
        g.dist_write(0, TYPER, 4, 0, &mut out).unwrap();
        g.dist_write(0, PIDR2, 4, 0, &mut out).unwrap();
        assert_eq!(g.dist_read(0, TYPER, 4), Ok(typer), "read-only");
        assert_eq!(g.dist_read(0, PIDR2, 4), Ok(0x3b));
    }

    #[test]
    fn distributor_registers_read_back() {
        let (mut g, mut out) = v3(2);
        for (set, clear) in [
            (0x088, 0x088),
            (0x108, 0x188),
            (0x208, 0x288),
            (0x308, 0x388),
        ] {
            g.dist_write(0, set, 4, 0x8000_0001, &mut out).unwrap();
            assert_eq!(g.dist_read(1, set, 4), Ok(0x8000_0001), "{set:#x}");
            assert_eq!(g.dist_read(1, clear, 4), Ok(0x8000_0001), "{clear:#x}");
            if set != clear {
                g.dist_write(0, clear, 4, 1, &mut out).unwrap();
                assert_eq!(g.dist_read(0, set, 4), Ok(0x8000_0000), "{set:#x}");
            }
        }
        g.dist_write(0, 0x440, 4, 0xa0b0_c0d0, &mut out).unwrap();
        assert_eq!(g.dist_read(0, 0x443, 1), Ok(0xa0));
        g.dist_write(0, 0x441, 1, 0x11, &mut out).unwrap();
        assert_eq!(g.dist_read(0, 0x440, 4), Ok(0xa0b0_11d0));
        g.dist_write(0, 0xc10, 4, u64::MAX, &mut out).unwrap();
        assert_eq!(g.dist_read(0, 0xc10, 4), Ok(0xaaaa_aaaa));
        // IROUTER of SPI 40: 64-bit, and both halves; IRM and reserved bits RAZ/WI.
        let r40 = IROUTER + 8 * 40;
        assert_eq!(g.dist_read(0, r40, 8), Ok(0), "reset: vCPU 0's affinity");
        g.dist_write(0, r40, 8, u64::MAX, &mut out).unwrap();
        assert_eq!(g.dist_read(0, r40, 8), Ok(0xff_00ff_ffff));
        g.dist_write(0, r40 + 4, 4, 0x12, &mut out).unwrap();
        g.dist_write(0, r40, 4, 0x8003_0201, &mut out).unwrap();
        assert_eq!(g.dist_read(0, r40, 8), Ok(0x12_0003_0201));
        assert_eq!(g.dist_read(0, r40, 4), Ok(0x0003_0201));
        assert_eq!(g.dist_read(0, r40 + 4, 4), Ok(0x12));
        // SGI/PPI registers, ITARGETSR, SGIR and IROUTER of INTIDs < 32 or > 255: RAZ/WI.
        for (off, size) in [
            (0x080, 4),
            (0x100, 4),
            (0x200, 4),
            (0x300, 4),
            (0x400, 4),
            (0x41f, 1),
            (0x820, 4),
            (0xc00, 4),
            (0xc04, 4),
            (0xf00, 4),
            (0xf20, 4),
            (0x0a0, 4),
            (0x500, 4),
            (0xc40, 4),
            (IROUTER + 8 * 31, 8),
            (IROUTER + 8 * 256, 8),
            (IROUTER_END, 4),
            (0xd00, 4),
            (0xe00, 4),
            (0x0040, 4),
            (0x8000, 4),
        ] {
            g.dist_write(0, off, size, u64::MAX, &mut out).unwrap();
            assert_eq!(g.dist_read(0, off, size), Ok(0), "{off:#x}");
        }
        assert_eq!(g.redist_read(sgi_frame(0) + 0x100, 4), Ok(0));
    }

    #[test]
    fn redistributor_rd_frame() {
        let mpidrs = [
            0x8000_0000,
            0x8000_0001,
            0x8000_0102,
            0x8000_0000 | 0x12_0003_0405,
        ];
        let mut g = Vgic::new(GicVersion::V3, &mpidrs).unwrap();
        let mut out = Injections::new();
        for cpu in 0..4u64 {
            let rd = cpu * REDIST_STRIDE;
            let typer = g.redist_read(rd + 8, 8).unwrap();
            assert_eq!((typer >> 8) & 0xffff, cpu, "Processor_Number");
            assert_eq!(typer & GICR_TYPER_LAST != 0, cpu == 3, "Last");
            assert_eq!(typer & 1, 0, "no physical LPIs");
            assert_eq!(g.redist_read(rd + 8, 4), Ok(typer & 0xffff_ffff));
            assert_eq!(g.redist_read(rd + 0xc, 4), Ok(typer >> 32));
            assert_eq!(g.redist_read(rd + GICR_IIDR, 4), Ok(0x0300_143b));
            assert_eq!(g.redist_read(rd + PIDR2, 4), Ok(0x3b));
            assert_eq!(g.redist_read(rd + SGI_FRAME + PIDR2, 4), Ok(0x3b));
            assert_eq!(g.redist_read(rd + CTLR, 4), Ok(0));
        }
        let mut aff = |cpu: u64| g.redist_read(cpu * REDIST_STRIDE + 8, 8).unwrap() >> 32;
        assert_eq!([aff(0), aff(1), aff(2), aff(3)], [0, 1, 0x102, 0x1203_0405]);
        // WAKER: asleep out of reset; ChildrenAsleep follows ProcessorSleep.
        let waker = REDIST_STRIDE + WAKER;
        assert_eq!(g.redist_read(waker, 4), Ok(6));
        g.redist_write(waker, 4, 0, &mut out).unwrap();
        assert_eq!(g.redist_read(waker, 4), Ok(0));
        assert_eq!(g.redist_read(WAKER, 4), Ok(6), "banked per redistributor");
        g.redist_write(waker, 4, 2, &mut out).unwrap();
        assert_eq!(g.redist_read(waker, 4), Ok(6));
        // CTLR, PROPBASER, PENDBASER, TYPER: RAZ/WI or read-only.
        for (off, size) in [
            (CTLR, 4),
            (0x70, 8),
            (0x78, 8),
            (0x7c, 4),
            (0x8, 8),
            (0x40, 4),
        ] {
            let before = g.redist_read(off, size).unwrap();
            g.redist_write(off, size, u64::MAX, &mut out).unwrap();
            assert_eq!(g.redist_read(off, size), Ok(before), "{off:#x}");
        }
        assert!(out.is_empty());
    }

    #[test]
    fn redistributor_sgi_frame_read_back_and_banking() {
        let (mut g, mut out) = v3(3);
        let f = sgi_frame(1);
        for (set, clear) in [
            (0x080, 0x080),
            (0x100, 0x180),
            (0x200, 0x280),
            (0x300, 0x380),
        ] {
            g.redist_write(f + set, 4, 0x8000_0002, &mut out).unwrap();
            assert_eq!(g.redist_read(f + set, 4), Ok(0x8000_0002), "{set:#x}");
            assert_eq!(g.redist_read(f + clear, 4), Ok(0x8000_0002), "{clear:#x}");
            assert_eq!(
                g.redist_read(sgi_frame(0) + set, 4),
                Ok(0),
                "banked {set:#x}"
            );
            assert_eq!(
                g.redist_read(sgi_frame(2) + set, 4),
                Ok(0),
                "banked {set:#x}"
            );
            if set != clear {
                g.redist_write(f + clear, 4, 2, &mut out).unwrap();
                assert_eq!(g.redist_read(f + set, 4), Ok(0x8000_0000));
            }
        }
        g.redist_write(f + 0x41b, 1, 0xc0, &mut out).unwrap();
        assert_eq!(g.redist_read(f + 0x418, 4), Ok(0xc000_0000));
        g.redist_write(f + 0x400, 4, 0x0403_0201, &mut out).unwrap();
        assert_eq!(g.redist_read(f + 0x402, 1), Ok(3));
        assert_eq!(g.redist_read(sgi_frame(0) + 0x400, 4), Ok(0));
        assert_eq!(g.redist_read(f + 0xc00, 4), Ok(0xaaaa_aaaa), "SGIs edge");
        g.redist_write(f + 0xc00, 4, 0, &mut out).unwrap();
        assert_eq!(g.redist_read(f + 0xc00, 4), Ok(0xaaaa_aaaa));
        g.redist_write(f + 0xc04, 4, u64::MAX, &mut out).unwrap();
        assert_eq!(g.redist_read(f + 0xc04, 4), Ok(0xaaaa_aaaa));
        assert_eq!(g.redist_read(sgi_frame(2) + 0xc04, 4), Ok(0));
        // Words beyond 0 (extended PPIs), IPRIORITYR8+, IGRPMODR0, NSACR: RAZ/WI.
        for off in [0x084, 0x104, 0x420, 0xc08, 0xd00, 0xe00] {
            g.redist_write(f + off, 4, u64::MAX, &mut out).unwrap();
            assert_eq!(g.redist_read(f + off, 4), Ok(0), "{off:#x}");
        }
        // SGIs can be disabled on v3.
        g.redist_write(f + 0x100, 4, 0xffff, &mut out).unwrap();
        g.redist_write(f + 0x180, 4, 0x00ff, &mut out).unwrap();
        assert_eq!(g.redist_read(f + 0x100, 4), Ok(0x8000_ff00));
    }

    #[test]
    fn group_decides_delivery_and_injection() {
        let (mut g, mut out) = v3(1);
        let f = sgi_frame(0);
        g.redist_write(f + 0x100, 4, 1 << 27 | 1 << 26, &mut out)
            .unwrap();
        g.redist_write(f + 0x080, 4, 1 << 27, &mut out).unwrap();
        g.redist_write(f + 0x400 + 26, 1, 0x50, &mut out).unwrap();
        g.raise(0, 27, &mut out).unwrap();
        g.raise(0, 26, &mut out).unwrap();
        g.dist_write(0, CTLR, 4, 0x12, &mut out).unwrap(); // group 1 only
        assert_eq!(
            out.as_slice(),
            [Injection {
                vcpu: 0,
                irq: 27,
                priority: 0,
                group: 1,
                lr: 0
            }]
        );
        out.clear();
        g.dist_write(0, CTLR, 4, 0x1, &mut out).unwrap(); // group 0 only: 27 stays listed
        assert_eq!(
            out.as_slice(),
            [Injection {
                vcpu: 0,
                irq: 26,
                priority: 0x50,
                group: 0,
                lr: 1
            }]
        );
    }

    #[test]
    fn spi_routed_to_vcpu_2() {
        let (mut g, mut out) = v3(4);
        g.dist_write(0, CTLR, 4, 0x12, &mut out).unwrap();
        g.dist_write(0, 0x084, 4, u64::MAX, &mut out).unwrap();
        g.dist_write(0, 0x104, 4, 1 << 1, &mut out).unwrap();
        g.dist_write(0, IROUTER + 8 * 33, 8, 2, &mut out).unwrap();
        g.raise(0, 33, &mut out).unwrap();
        assert_eq!(placed(&out), [(2, 33, 0)]);
        assert_eq!(out[0].group, 1);
        assert!(g.has_pending(2) && !g.has_pending(0));
        out.clear();
        g.complete(2, 0, &mut out);
        // An affinity that names no vCPU: pending, not delivered, until routed again.
        g.dist_write(0, IROUTER + 8 * 33, 4, 0x100, &mut out)
            .unwrap();
        g.raise(0, 33, &mut out).unwrap();
        assert!(out.is_empty() && !(0..4).any(|v| g.has_pending(v)));
        g.dist_write(0, IROUTER + 8 * 33, 4, 3, &mut out).unwrap();
        assert_eq!(placed(&out), [(3, 33, 0)]);
    }

    #[test]
    fn sgi1r_targets() {
        let mpidrs = [0, 1, 2, 0x100];
        let mut g = Vgic::new(GicVersion::V3, &mpidrs).unwrap();
        let mut out = Injections::new();
        g.dist_write(0, CTLR, 4, 0x12, &mut out).unwrap();
        for cpu in 0..4 {
            g.redist_write(sgi_frame(cpu) + 0x080, 4, u64::MAX, &mut out)
                .unwrap();
            g.redist_write(sgi_frame(cpu) + 0x100, 4, 0xffff, &mut out)
                .unwrap();
        }
        fn send(g: &mut Vgic, from: usize, v: u64) -> Vec<(u8, u16, u8)> {
            let mut out = Injections::new();
            g.sgi1r_write(from, v, &mut out);
            for i in out.iter() {
                assert_eq!(
                    g.complete(i.vcpu.into(), i.lr, &mut Injections::new()),
                    Some(i.irq)
                );
            }
            placed(&out)
        }
        let mut sgi = |from: usize, v: u64| send(&mut g, from, v);
        let intid = |i: u64| i << 24;
        // Self, a list, others (IRM), Aff1 = 1, and affinities that name no vCPU.
        assert_eq!(sgi(1, intid(3) | 0b10), [(1, 3, 0)]);
        assert_eq!(sgi(0, intid(4) | 0b101), [(0, 4, 0), (2, 4, 0)]);
        assert_eq!(
            sgi(2, intid(5) | 1 << 40 | 0xffff),
            [(0, 5, 0), (1, 5, 0), (3, 5, 0)]
        );
        assert_eq!(sgi(0, intid(6) | 1 << 16 | 1), [(3, 6, 0)]);
        assert_eq!(sgi(0, intid(6) | 1 << 16 | 0b10), [], "1.1 absent");
        assert_eq!(sgi(0, intid(7) | 0b1000), [], "0.3 absent");
        assert_eq!(sgi(0, intid(7) | 1 << 44 | 1), [], "RS 1: Aff0 16 absent");
        assert_eq!(sgi(0, intid(7) | 1 << 32 | 1), [], "Aff2 1 absent");
        assert_eq!(sgi(0, intid(7) | 1 << 48 | 1), [], "Aff3 1 absent");
        assert_eq!(sgi(0, intid(7)), [], "empty list");
        assert_eq!(sgi(9, intid(7) | 1), [], "no vCPU 9");
        // Group 0 at the target: not forwarded by SGI1R.
        g.redist_write(sgi_frame(2) + 0x080, 4, 0, &mut out)
            .unwrap();
        assert_eq!(send(&mut g, 0, intid(8) | 1 << 40), [(1, 8, 0), (3, 8, 0)]);
    }

    #[test]
    fn sgi1r_with_rs_reaches_aff0_above_15() {
        let mut g = Vgic::new(GicVersion::V3, &[0, 17]).unwrap();
        let mut out = Injections::new();
        g.dist_write(0, CTLR, 4, 0x2, &mut out).unwrap();
        let f = sgi_frame(1);
        g.redist_write(f + 0x080, 4, 1, &mut out).unwrap();
        g.redist_write(f + 0x100, 4, 1, &mut out).unwrap();
        g.sgi1r_write(0, 1 << 44 | 0b10, &mut out);
        assert_eq!(placed(&out), [(1, 0, 0)]);
    }

    #[test]
    fn odd_offsets_and_sizes() {
        let (mut g, _) = v3(2);
        hammer(0..DIST_FRAME + 0x10, |off, size, value| {
            let mut out = Injections::new();
            match value {
                None => g.dist_read(1, off, size),
                Some(v) => g.dist_write(1, off, size, v, &mut out).map(|()| 0),
            }
        });
        hammer(0..2 * REDIST_STRIDE + 0x10, |off, size, value| {
            let mut out = Injections::new();
            match value {
                None => g.redist_read(off, size),
                Some(v) => g.redist_write(off, size, v, &mut out).map(|()| 0),
            }
        });
        for (off, size) in [
            (0x400, 2),
            (0x100, 8),
            (0x100, 1),
            (IROUTER + 8 * 40, 2),
            (IROUTER + 2, 4),
        ] {
            assert_eq!(g.dist_read(0, off, size), Err(bad(off, size)));
        }
        for (off, size) in [(0x14, 8), (0x8, 2), (0xc, 8), (0x1_0100, 1), (0x1_0420, 1)] {
            assert_eq!(g.redist_read(off, size), Err(bad(off, size)));
        }
        let beyond = 2 * REDIST_STRIDE;
        assert_eq!(g.redist_read(beyond, 4), Err(bad(beyond, 4)));
        assert_eq!(g.redist_read(u64::MAX - 7, 8), Err(bad(u64::MAX - 7, 8)));
        assert_eq!(g.dist_read(0, DIST_FRAME, 4), Err(bad(DIST_FRAME, 4)));
    }
}
