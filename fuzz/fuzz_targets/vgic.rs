//! The vGIC (GICv2 and GICv3, 1 to 8 vCPUs) under any sequence of distributor and
//! redistributor reads and writes (every offset and size), ICC_SGI1R_EL1 writes, hardware
//! raises and list-register completions.
//!
//! Invariants: no panic; a read-back of ISENABLER/ICENABLER and IPRIORITYR right after a write
//! gives what the GIC spec (and the vGIC's documented choices) say, banked registers of another
//! vCPU unchanged; every Injection names an existing vCPU, a list register below LIST_REGS that
//! is free, an implemented INTID and a valid group; no INTID in two list registers of one vCPU,
//! no SPI listed on two vCPUs; a completion returns exactly what was injected into that list
//! register; a vCPU with a listed interrupt has something pending.
#![no_main]

use arbitrary::Arbitrary;
use lazyfp::{GicVersion, Injections, Vgic, LIST_REGS, MAX_VCPUS, NUM_IRQS, REDIST_STRIDE};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Any distributor access (`write: None` reads), any size.
    Dist { vcpu: u8, offset: u16, size: u8, write: Option<u64> },
    /// Any redistributor access; the offset is folded into the frames (and a little beyond).
    Redist { offset: u32, size: u8, write: Option<u64> },
    /// ISENABLERn (`set`) or ICENABLERn written, then read back.
    Enable { vcpu: u8, word: u8, set: bool, value: u32, redist: bool },
    /// IPRIORITYR of `irq` written (a byte, or the whole word holding it), then read back.
    Priority { vcpu: u8, irq: u8, value: u32, word: bool },
    Sgi1r { vcpu: u8, value: u64 },
    Raise { vcpu: u8, irq: u16 },
    /// Any (vCPU, list register) completed, occupied or not.
    Complete { vcpu: u8, lr: u8 },
    /// The `pick`-th occupied list register completed (the common, well-formed case).
    CompleteListed { pick: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    v3: bool,
    vcpus: u8,
    /// Turn the distributor's groups on first, so that interrupts flow.
    enable: bool,
    ops: Vec<Op>,
}

const ISENABLER: u64 = 0x100;
const ICENABLER: u64 = 0x180;
const IPRIORITYR: u64 = 0x400;
const SGI_FRAME: u64 = 0x1_0000;

struct Model {
    n: usize,
    v3: bool,
    lrs: [[Option<u16>; LIST_REGS]; MAX_VCPUS],
}

impl Model {
    /// Checks the injections of one call and records them.
    fn take(&mut self, out: &Injections) {
        for inj in out {
            let (v, lr, irq) = (usize::from(inj.vcpu), usize::from(inj.lr), inj.irq);
            assert!(v < self.n, "{inj:?}: no such vCPU");
            assert!(lr < LIST_REGS, "{inj:?}: no such list register");
            assert!(usize::from(irq) < NUM_IRQS, "{inj:?}");
            assert!(inj.group <= u8::from(self.v3), "{inj:?}: group");
            assert_eq!(self.lrs[v][lr], None, "{inj:?}: list register still holds an interrupt");
            assert!(!self.lrs[v].contains(&Some(irq)), "{inj:?}: already listed on this vCPU");
            if irq >= 32 {
                let elsewhere = self.lrs[..self.n].iter().any(|l| l.contains(&Some(irq)));
                assert!(!elsewhere, "{inj:?}: SPI already listed on another vCPU");
            }
            self.lrs[v][lr] = Some(irq);
        }
    }
}

/// Where vCPU `v`'s copy of a banked register block starts: its redistributor's SGI frame on
/// GICv3, the distributor's base (banked by the accessing vCPU) otherwise.
fn frame(redist: bool, v: usize) -> u64 {
    if redist {
        v as u64 * REDIST_STRIDE + SGI_FRAME
    } else {
        0
    }
}

fn read(g: &mut Vgic, vcpu: usize, redist: bool, offset: u64, size: u8) -> u64 {
    let r = if redist { g.redist_read(offset, size) } else { g.dist_read(vcpu, offset, size) };
    r.unwrap_or_else(|e| panic!("read of {offset:#x} (size {size}) refused: {e}"))
}

fn write(g: &mut Vgic, vcpu: usize, redist: bool, offset: u64, size: u8, value: u64, m: &mut Model) {
    let mut out = Injections::new();
    let r = if redist {
        g.redist_write(offset, size, value, &mut out)
    } else {
        g.dist_write(vcpu, offset, size, value, &mut out)
    };
    r.unwrap_or_else(|e| panic!("write of {offset:#x} (size {size}) refused: {e}"));
    m.take(&out);
}

fuzz_target!(|input: Input| {
    let n = usize::from(input.vcpus) % MAX_VCPUS + 1;
    let version = if input.v3 { GicVersion::V3 } else { GicVersion::V2 };
    // QEMU virt numbering (Aff0 = index); on v3 every other vCPU in another cluster.
    let mpidrs: Vec<u64> =
        (0..n as u64).map(|i| if input.v3 && i % 2 == 1 { i | 1 << 8 } else { i }).collect();
    let mut g = Vgic::new(version, &mpidrs).expect("1 to 8 distinct vCPUs");
    let mut m = Model { n, v3: input.v3, lrs: [[None; LIST_REGS]; MAX_VCPUS] };
    if input.enable {
        write(&mut g, 0, false, 0, 4, 3, &mut m);
    }
    let redist_size = g.redist_size();
    assert_eq!(redist_size, if input.v3 { n as u64 * REDIST_STRIDE } else { 0 });
    for op in input.ops.iter().take(256) {
        let mut out = Injections::new();
        match *op {
            Op::Dist { vcpu, offset, size, write } => {
                let offset = u64::from(offset);
                let v = usize::from(vcpu) % (n + 1); // n: no such vCPU, always refused
                let ok = match write {
                    Some(val) => g.dist_write(v, offset, size, val, &mut out).is_ok(),
                    None => g.dist_read(v, offset, size).is_ok(),
                };
                if ok {
                    assert!(v < n && offset < version.dist_size(), "{op:?} accepted");
                    assert!(matches!(size, 1 | 2 | 4 | 8) && offset % u64::from(size) == 0);
                }
            }
            Op::Redist { offset, size, write } => {
                let offset = u64::from(offset) % (redist_size + 0x100);
                let ok = match write {
                    Some(val) => g.redist_write(offset, size, val, &mut out).is_ok(),
                    None => g.redist_read(offset, size).is_ok(),
                };
                if ok {
                    assert!(input.v3 && offset < redist_size, "{op:?} accepted");
                }
            }
            Op::Enable { vcpu, word, set, value, redist } => {
                let v = usize::from(vcpu) % n;
                let other = (v + 1) % n;
                // GICv3: word 0 lives in the vCPU's redistributor (SGI frame).
                let redist = input.v3 && redist;
                let w = if redist { 0 } else { u64::from(word) % 8 };
                let set_at = |v| frame(redist, v) + ISENABLER + 4 * w;
                let reg = frame(redist, v) + if set { ISENABLER } else { ICENABLER } + 4 * w;
                let old = read(&mut g, v, redist, set_at(v), 4) as u32;
                let old_other = read(&mut g, other, redist, set_at(other), 4) as u32;
                write(&mut g, v, redist, reg, 4, u64::from(value), &mut m);
                let new = read(&mut g, v, redist, set_at(v), 4) as u32;
                let want = match (input.v3, redist, w) {
                    // ARE = 1: the distributor's SGI/PPI word is RAZ/WI.
                    (true, false, 0) => 0,
                    // GICv2 here: SGIs are always enabled.
                    (false, _, 0) if !set => (old & !value) | 0xffff,
                    _ if set => old | value,
                    _ => old & !value,
                };
                assert_eq!(new, want, "{op:?}: enable read-back (was {old:#x})");
                let new_other = read(&mut g, other, redist, set_at(other), 4) as u32;
                if w == 0 && other != v {
                    assert_eq!(new_other, old_other, "{op:?}: another vCPU's banked word changed");
                } else if !redist {
                    assert_eq!(new_other, new, "{op:?}: SPI enables are shared");
                }
            }
            Op::Priority { vcpu, irq, value, word } => {
                let v = usize::from(vcpu) % n;
                let other = (v + 1) % n;
                let irq = u64::from(irq);
                // GICv3: INTIDs 0-31 in the redistributor's SGI frame, the rest in the distributor.
                let redist = input.v3 && irq < 32;
                let at = |v| frame(redist, v) + IPRIORITYR + irq;
                let before_other = read(&mut g, other, redist, at(other), 1);
                let at = at(v);
                let (woff, size, wval) = if word {
                    (at & !3, 4, u64::from(value))
                } else {
                    (at, 1, u64::from(value as u8))
                };
                write(&mut g, v, redist, woff, size, wval, &mut m);
                let got = read(&mut g, v, redist, woff, size);
                assert_eq!(got, wval, "{op:?}: priority read-back");
                let after_other = read(&mut g, other, redist, frame(redist, other) + IPRIORITYR + irq, 1);
                if irq < 32 && other != v {
                    assert_eq!(before_other, after_other, "{op:?}: banked priority of another vCPU");
                } else if !redist {
                    assert_eq!(after_other, read(&mut g, v, redist, at, 1), "{op:?}: shared priority");
                }
            }
            Op::Sgi1r { vcpu, value } => g.sgi1r_write(usize::from(vcpu) % (n + 1), value, &mut out),
            Op::Raise { vcpu, irq } => {
                let v = usize::from(vcpu) % (n + 1);
                let bad = !(16..NUM_IRQS as u16).contains(&irq) || (irq < 32 && v >= n);
                assert_eq!(g.raise(v, irq, &mut out).is_err(), bad, "{op:?}");
            }
            Op::Complete { vcpu, lr } => {
                let (v, lr) = (usize::from(vcpu) % (n + 1), lr % (LIST_REGS as u8 + 1));
                let want = m.lrs.get(v).filter(|_| v < n).and_then(|l| l.get(usize::from(lr)).copied().flatten());
                assert_eq!(g.complete(v, lr, &mut out), want, "{op:?}");
                if want.is_some() {
                    m.lrs[v][usize::from(lr)] = None;
                }
            }
            Op::CompleteListed { pick } => {
                let listed: Vec<(usize, usize)> = (0..n)
                    .flat_map(|v| (0..LIST_REGS).map(move |l| (v, l)))
                    .filter(|&(v, l)| m.lrs[v][l].is_some())
                    .collect();
                if let Some(&(v, l)) = listed.get(usize::from(pick) % listed.len().max(1)) {
                    let want = m.lrs[v][l].take();
                    assert_eq!(g.complete(v, l as u8, &mut out), want, "{op:?}");
                }
            }
        }
        m.take(&out);
        for v in 0..n {
            if m.lrs[v].iter().any(Option::is_some) {
                assert!(g.has_pending(v), "vcpu{v} has a listed interrupt but nothing pending");
            }
        }
        assert!(!g.has_pending(n), "a vCPU that does not exist has something pending");
    }
});
