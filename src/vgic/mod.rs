//! A virtual GIC for up to [`MAX_VCPUS`] vCPUs, with a GICv2 or a GICv3 register front end.
//!
//! This file holds what the two versions share: the state of every interrupt as word-wise
//! bitmaps (SGIs and PPIs banked per vCPU, SPIs shared), the routing of each SPI to one vCPU, and
//! per vCPU the occupancy of its hardware list registers. `v2.rs` decodes the GICv2 distributor,
//! `v3.rs` the GICv3 distributor, its redistributors and the trapped `ICC_SGI1R_EL1`. The CPU
//! interface is hardware: seL4 writes the list registers (`VCPU_InjectIRQ`) and reports their
//! completion as VGIC maintenance faults.
//!
//! # Delivery
//! An interrupt is *ready* for vCPU v when it is pending, enabled, its group is enabled in the
//! distributor, it targets v, and it is not already in one of v's list registers (*listed*). A
//! ready interrupt goes into a free list register ([`Injection`]); while none is free it waits.
//! The overflow queue is that set of ready, unlisted interrupts, kept as bitmaps and served
//! lowest INTID first (so SGIs and PPIs, the timer among them, before SPIs) whenever a list
//! register completes. It cannot overflow, and what the guest disables meanwhile leaves it.
//!
//! # Invariants
//! - A listed interrupt is pending; it stays pending until its list register completes.
//! - An SPI is listed on at most one vCPU (`spi_listed` is shared), so retargeting an SPI in
//!   flight never injects it twice.
//! - After every call that may make something ready, a vCPU with a free list register has no
//!   ready interrupt, unless `out` was full.
//!
//! # Accesses the architecture leaves undefined
//! A register accessed with a size or alignment it does not support, and any access outside the
//! frame, is `Err(MmioError::BadRegister)`. An aligned 32-bit access to a reserved or
//! unimplemented offset inside the frame reads as zero and ignores writes (RES0). Nothing the
//! guest writes can panic.
use core::fmt;

use crate::mmio::MmioError;

mod v2;
mod v3;

/// vCPUs one [`Vgic`] serves (GICv2's limit; `Injection::vcpu` is a `u8`).
pub const MAX_VCPUS: usize = 8;
/// List registers of the virtual CPU interface per vCPU (QEMU virt's Cortex-A53: 4).
pub const LIST_REGS: usize = 4;
/// Interrupts implemented: INTIDs 0–255 (TYPER.ITLinesNumber = 7).
pub const NUM_IRQS: usize = 256;
/// Spacing of GICv3 redistributors: an RD frame and an SGI frame of 64 KiB each.
pub const REDIST_STRIDE: u64 = 0x2_0000;

const WORDS: usize = NUM_IRQS / 32;
/// SGIs 0–15, the low half of the banked word.
const SGIS: u32 = 0xffff;
/// ICFGR: only the odd bit of each 2-bit field (edge-triggered) is writable.
const CFG_EDGE_BITS: u32 = 0xaaaa_aaaa;
const NO_TARGET: u8 = u8::MAX;
/// The affinity fields of an MPIDR or IROUTER: Aff3 [39:32], Aff2–Aff0 [23:0].
const AFFINITY: u64 = 0xff_00ff_ffff;

// Access sizes as a bit set: each size is its own bit.
const BYTE: u8 = 1;
const WORD: u8 = 4;
const DWORD: u8 = 8;

/// Which GIC the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

impl GicVersion {
    /// Size of the distributor frame: 4 KiB (GICv2) or 64 KiB (GICv3).
    pub const fn dist_size(self) -> u64 {
        match self {
            Self::V2 => 0x1000,
            Self::V3 => 0x1_0000,
        }
    }
}

/// What the VMM must do: write `irq` into list register `lr` of vCPU `vcpu` (seL4
/// `VCPU_InjectIRQ` with `priority >> 3` and `group`). `priority` is the interrupt's
/// IPRIORITYR byte; `group` is 0 on GICv2 and the interrupt's IGROUPR bit on GICv3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    pub vcpu: u8,
    pub irq: u16,
    pub priority: u8,
    pub group: u8,
    pub lr: u8,
}

/// The injections one call produces. One call fills each list register at most once, so an
/// `out` that starts empty never runs out of room.
pub type Injections = heapless::Vec<Injection, { MAX_VCPUS * LIST_REGS }>;

/// Why the vGIC refused a request of the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// No interrupt with that INTID (or an SGI, which no hardware source raises).
    BadIrq(u16),
    /// No such vCPU.
    BadVcpu(usize),
    /// A vGIC needs 1 to [`MAX_VCPUS`] vCPUs.
    VcpuCount(usize),
    /// Two vCPUs with the same MPIDR affinity.
    SameAffinity(u64),
}

impl fmt::Display for GicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadIrq(i) => write!(f, "no interrupt source {i}"),
            Self::BadVcpu(v) => write!(f, "no vCPU {v}"),
            Self::VcpuCount(n) => write!(f, "{n} vCPUs; the vGIC serves 1 to {MAX_VCPUS}"),
            Self::SameAffinity(a) => write!(f, "two vCPUs with MPIDR affinity {a:#x}"),
        }
    }
}

/// The bitmap properties of an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bits {
    Group,
    Enabled,
    Pending,
    Active,
}

/// How a bitmap register write combines with the state: IGROUPR assigns, IS*R set, IC*R clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Assign,
    Set,
    Clear,
}

/// The bitmap registers at 0x080–0x3ff, at the same offsets in both distributors and in the
/// GICv3 SGI frame: which property, how a write applies, and which 32-interrupt word.
const fn bitmap_reg(offset: u64) -> Option<(Bits, Op, usize)> {
    let (bits, op) = match offset & !0x7f {
        0x080 => (Bits::Group, Op::Assign),
        0x100 => (Bits::Enabled, Op::Set),
        0x180 => (Bits::Enabled, Op::Clear),
        0x200 => (Bits::Pending, Op::Set),
        0x280 => (Bits::Pending, Op::Clear),
        0x300 => (Bits::Active, Op::Set),
        0x380 => (Bits::Active, Op::Clear),
        _ => return None,
    };
    Some((bits, op, ((offset & 0x7f) / 4) as usize))
}

/// Whether `size` is one of `sizes` (a bit set) and `offset` is aligned to it.
const fn access_ok(offset: u64, size: u8, sizes: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8) && sizes & size != 0 && offset.is_multiple_of(size as u64)
}

/// A read of `size` bytes of a byte-per-interrupt register, one byte at a time, little-endian.
fn read_bytes(offset: u64, size: u8, mut byte: impl FnMut(u64) -> u8) -> u64 {
    (0..u64::from(size))
        .rev()
        .fold(0, |acc, i| acc << 8 | u64::from(byte(offset + i)))
}

/// A write of `size` bytes of a byte-per-interrupt register, one byte at a time.
fn write_bytes(offset: u64, size: u8, value: u64, mut byte: impl FnMut(u64, u8)) {
    for i in 0..u64::from(size) {
        byte(offset + i, (value >> (8 * i)) as u8);
    }
}

/// The 32-bit half of a 64-bit register that a 32-bit access at `offset` names.
const fn half(value: u64, offset: u64, size: u8) -> u64 {
    if size == 8 {
        value
    } else {
        (value >> (8 * (offset & 4))) & 0xffff_ffff
    }
}

/// `old` with the bytes a `size`-byte write at `offset` of a 64-bit register names replaced.
const fn merge_half(old: u64, offset: u64, size: u8, value: u64) -> u64 {
    if size == 8 {
        value
    } else {
        let shift = 8 * (offset & 4);
        (old & !(0xffff_ffff << shift)) | ((value & 0xffff_ffff) << shift)
    }
}

const fn bit(irq: usize) -> (usize, u32) {
    (irq / 32, 1 << (irq % 32))
}

/// The four bitmaps of 32 interrupts.
#[derive(Clone, Copy, Debug, Default)]
struct Word {
    group: u32,
    enabled: u32,
    pending: u32,
    active: u32,
}

impl Word {
    fn get(&self, bits: Bits) -> u32 {
        match bits {
            Bits::Group => self.group,
            Bits::Enabled => self.enabled,
            Bits::Pending => self.pending,
            Bits::Active => self.active,
        }
    }

    fn get_mut(&mut self, bits: Bits) -> &mut u32 {
        match bits {
            Bits::Group => &mut self.group,
            Bits::Enabled => &mut self.enabled,
            Bits::Pending => &mut self.pending,
            Bits::Active => &mut self.active,
        }
    }
}

/// What one vCPU has of its own: the banked SGI/PPI state and its list registers.
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    /// INTIDs 0–31.
    word: Word,
    /// Which of INTIDs 0–31 are in a list register.
    listed: u32,
    /// ICFGR1 (PPIs); ICFGR0 (SGIs) is fixed.
    ppi_config: u32,
    priority: [u8; 32],
    lrs: [Option<u16>; LIST_REGS],
    /// GICv3 GICR_WAKER.ProcessorSleep.
    asleep: bool,
}

/// The vGIC: distributor state, routing, and the list registers of every vCPU.
#[derive(Debug)]
pub struct Vgic {
    version: GicVersion,
    vcpus: usize,
    /// Each vCPU's MPIDR affinity fields.
    affinity: [u64; MAX_VCPUS],
    /// GICD_CTLR's group enables (bit 0: group 0 on v3, everything on v2; bit 1: group 1 on v3).
    ctlr: u32,
    cpus: [Cpu; MAX_VCPUS],
    /// SPIs (word 0 is unused: INTIDs 0–31 live in [`Cpu`]).
    spi: [Word; WORDS],
    spi_listed: [u32; WORDS],
    /// ICFGR words 2.. (SPIs).
    config: [u32; 2 * WORDS],
    /// IPRIORITYR of SPIs (INTIDs 0–31 live in [`Cpu`]).
    priority: [u8; NUM_IRQS],
    /// The vCPU each SPI goes to, or `NO_TARGET`.
    target: [u8; NUM_IRQS],
    /// `target` as one bitmap per vCPU, for word-wise delivery.
    routed: [[u32; WORDS]; MAX_VCPUS],
    /// GICv2 ITARGETSR bytes of SPIs (CPU masks).
    itargets: [u8; NUM_IRQS],
    /// GICv3 IROUTER of SPIs (affinity fields only).
    irouter: [u64; NUM_IRQS],
}

impl Vgic {
    /// `mpidrs[i]` is vCPU i's MPIDR (only its affinity fields count; Aff0 = i on QEMU virt).
    ///
    /// Reset state: everything disabled, not pending, group 0, priority 0, and every SPI routed
    /// to vCPU 0 (ITARGETSR 0x01 / IROUTER = vCPU 0's affinity; architecturally UNKNOWN, and a
    /// guest that never routes its SPIs, like the bare-metal test guest, still gets them). GICv2
    /// SGIs are always enabled.
    pub fn new(version: GicVersion, mpidrs: &[u64]) -> Result<Self, GicError> {
        let vcpus = mpidrs.len();
        if vcpus == 0 || vcpus > MAX_VCPUS {
            return Err(GicError::VcpuCount(vcpus));
        }
        let mut affinity = [0; MAX_VCPUS];
        for (i, mpidr) in mpidrs.iter().enumerate() {
            let aff = mpidr & AFFINITY;
            if affinity[..i].contains(&aff) {
                return Err(GicError::SameAffinity(aff));
            }
            affinity[i] = aff;
        }
        // GICR_WAKER resets with ProcessorSleep set.
        let mut cpu = Cpu {
            asleep: true,
            ..Cpu::default()
        };
        if version == GicVersion::V2 {
            cpu.word.enabled = SGIS;
        }
        let mut routed = [[0; WORDS]; MAX_VCPUS];
        routed[0] = [u32::MAX; WORDS];
        routed[0][0] = 0;
        Ok(Self {
            version,
            vcpus,
            affinity,
            ctlr: 0,
            cpus: [cpu; MAX_VCPUS],
            spi: [Word::default(); WORDS],
            spi_listed: [0; WORDS],
            config: [0; 2 * WORDS],
            priority: [0; NUM_IRQS],
            target: [0; NUM_IRQS],
            routed,
            itargets: [1; NUM_IRQS],
            irouter: [affinity[0]; NUM_IRQS],
        })
    }

    pub fn version(&self) -> GicVersion {
        self.version
    }

    /// Size of the GICv3 redistributor region (one [`REDIST_STRIDE`] per vCPU); 0 on GICv2.
    pub fn redist_size(&self) -> u64 {
        match self.version {
            GicVersion::V2 => 0,
            GicVersion::V3 => self.vcpus as u64 * REDIST_STRIDE,
        }
    }

    /// Distributor MMIO (offset from the GICD base) by vCPU `vcpu` (banked registers need it).
    /// An unknown `vcpu` is `Err(BadRegister)`.
    pub fn dist_read(&mut self, vcpu: usize, offset: u64, size: u8) -> Result<u64, MmioError> {
        if vcpu >= self.vcpus {
            return Err(MmioError::BadRegister { offset, size });
        }
        match self.version {
            GicVersion::V2 => v2::read(self, vcpu, offset, size),
            GicVersion::V3 => v3::dist_read(self, offset, size),
        }
    }

    /// A distributor write; whatever it makes ready is placed, the injections into `out`.
    pub fn dist_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: u8,
        value: u64,
        out: &mut Injections,
    ) -> Result<(), MmioError> {
        if vcpu >= self.vcpus {
            return Err(MmioError::BadRegister { offset, size });
        }
        let wake = match self.version {
            GicVersion::V2 => v2::write(self, vcpu, offset, size, value)?,
            GicVersion::V3 => v3::dist_write(self, offset, size, value)?,
        };
        self.refill(wake, out);
        Ok(())
    }

    /// GICv3: the redistributor region (vCPU i's RD frame at i * 0x20000, its SGI frame at
    /// + 0x10000); any vCPU may access any redistributor. On GICv2: `Err(BadRegister)`.
    pub fn redist_read(&mut self, offset: u64, size: u8) -> Result<u64, MmioError> {
        match self.version {
            GicVersion::V2 => Err(MmioError::BadRegister { offset, size }),
            GicVersion::V3 => v3::redist_read(self, offset, size),
        }
    }

    /// A redistributor write; see [`Vgic::redist_read`] and [`Vgic::dist_write`].
    pub fn redist_write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        out: &mut Injections,
    ) -> Result<(), MmioError> {
        let wake = match self.version {
            GicVersion::V2 => return Err(MmioError::BadRegister { offset, size }),
            GicVersion::V3 => v3::redist_write(self, offset, size, value)?,
        };
        self.refill(wake, out);
        Ok(())
    }

    /// GICv3: a trapped write of `ICC_SGI1R_EL1` by `vcpu` (a target list and affinity, or
    /// IRM = 1 for all other vCPUs). The SGI becomes pending only on targets where it is group 1
    /// (as KVM does). Ignored on GICv2 (which has no ICC registers) and for an unknown `vcpu`.
    pub fn sgi1r_write(&mut self, vcpu: usize, value: u64, out: &mut Injections) {
        if self.version == GicVersion::V3 && vcpu < self.vcpus {
            let wake = v3::sgi1r(self, vcpu, value);
            self.refill(wake, out);
        }
    }

    /// A hardware source: PPI `irq` (16..32) of `vcpu` (its virtual timer, INTID 27), or an SPI
    /// (32..256) routed by ITARGETSR (v2) / IROUTER (v3); `vcpu` is ignored for SPIs. The
    /// interrupt becomes pending, and goes into a list register if it is ready and one is free.
    pub fn raise(&mut self, vcpu: usize, irq: u16, out: &mut Injections) -> Result<(), GicError> {
        let i = usize::from(irq);
        if !(16..NUM_IRQS).contains(&i) {
            return Err(GicError::BadIrq(irq));
        }
        let (w, b) = bit(i);
        let to = if w == 0 {
            if vcpu >= self.vcpus {
                return Err(GicError::BadVcpu(vcpu));
            }
            self.cpus[vcpu].word.pending |= b;
            vcpu
        } else {
            self.spi[w].pending |= b;
            match self.target[i] {
                NO_TARGET => return Ok(()),
                t => usize::from(t),
            }
        };
        if self.ready(to, w, self.gates()) & b != 0 {
            self.place(to, i, out);
        }
        Ok(())
    }

    /// seL4 reported completion of list register `lr` of `vcpu` (VGIC maintenance). Returns the
    /// interrupt that was there (no longer pending: the VMM acks a VPPI or re-raises a level
    /// source), and fills the free list registers of that vCPU from its queue into `out`.
    pub fn complete(&mut self, vcpu: usize, lr: u8, out: &mut Injections) -> Option<u16> {
        let cpu = self.cpus[..self.vcpus].get_mut(vcpu)?;
        let done = cpu.lrs.get_mut(usize::from(lr))?.take();
        if let Some(irq) = done {
            let (w, b) = bit(usize::from(irq));
            if w == 0 {
                cpu.listed &= !b;
                cpu.word.pending &= !b;
            } else if let (Some(listed), Some(word)) =
                (self.spi_listed.get_mut(w), self.spi.get_mut(w))
            {
                *listed &= !b;
                word.pending &= !b;
            }
        }
        self.fill(vcpu, out);
        done
    }

    /// vCPU `vcpu` has an interrupt in a list register or queued for it (for a blocking WFI:
    /// wake it).
    pub fn has_pending(&self, vcpu: usize) -> bool {
        self.first_pending(vcpu).is_some()
    }

    /// The first interrupt that makes `has_pending` true, and whether it sits in a list
    /// register (`true`) or waits in the distributor's state (`false`).
    pub fn first_pending(&self, vcpu: usize) -> Option<(u16, bool)> {
        let cpu = self.cpus[..self.vcpus].get(vcpu)?;
        if let Some(irq) = cpu.lrs.iter().flatten().next() {
            return Some((*irq, true));
        }
        let gates = self.gates();
        (0..WORDS).find_map(|w| {
            let r = self.ready(vcpu, w, gates);
            (r != 0).then(|| ((w * 32) as u16 + r.trailing_zeros() as u16, false))
        })
    }

    /// Fills the free list registers of `vcpu` from its queue. The calls above do this already;
    /// this is for a VMM that passed them an `out` without room.
    pub fn deliver(&mut self, vcpu: usize, out: &mut Injections) {
        if vcpu < self.vcpus {
            self.fill(vcpu, out);
        }
    }

    // --- Shared register state, by INTID or 32-interrupt word. `vcpu` is valid here. ---

    fn bits(&self, vcpu: usize, bits: Bits, word: usize) -> u32 {
        match word {
            0 => self.cpus[vcpu].word.get(bits),
            w => self.spi.get(w).map_or(0, |s| s.get(bits)),
        }
    }

    /// Applies a bitmap register write to word `word`, `value` already masked by the front end.
    fn write_bits(&mut self, vcpu: usize, bits: Bits, op: Op, word: usize, value: u32) {
        let state = match word {
            0 => self.cpus[vcpu].word.get_mut(bits),
            w => match self.spi.get_mut(w) {
                Some(s) => s.get_mut(bits),
                None => return,
            },
        };
        *state = match op {
            Op::Assign => value,
            Op::Set => *state | value,
            Op::Clear => *state & !value,
        };
    }

    fn priority(&self, vcpu: usize, irq: usize) -> u8 {
        match irq {
            0..32 => self.cpus[vcpu].priority[irq],
            _ => self.priority.get(irq).copied().unwrap_or(0),
        }
    }

    fn set_priority(&mut self, vcpu: usize, irq: usize, value: u8) {
        let p = match irq {
            0..32 => &mut self.cpus[vcpu].priority[irq],
            _ => match self.priority.get_mut(irq) {
                Some(p) => p,
                None => return,
            },
        };
        *p = value;
    }

    /// ICFGR word `word`: SGIs are edge-triggered and fixed.
    fn config(&self, vcpu: usize, word: usize) -> u32 {
        match word {
            0 => CFG_EDGE_BITS,
            1 => self.cpus[vcpu].ppi_config,
            w => self.config.get(w).copied().unwrap_or(0),
        }
    }

    fn set_config(&mut self, vcpu: usize, word: usize, value: u32) {
        let c = match word {
            0 => return,
            1 => &mut self.cpus[vcpu].ppi_config,
            w => match self.config.get_mut(w) {
                Some(c) => c,
                None => return,
            },
        };
        *c = value & CFG_EDGE_BITS;
    }

    /// Routes SPI `irq` to `to` (or nowhere).
    fn route(&mut self, irq: usize, to: Option<usize>) {
        let Some(target) = self.target.get_mut(irq) else {
            return;
        };
        let (w, b) = bit(irq);
        if let Some(old) = self.routed.get_mut(usize::from(*target)) {
            old[w] &= !b;
        }
        *target = match to {
            Some(v) if v < self.vcpus => {
                self.routed[v][w] |= b;
                v as u8
            }
            _ => NO_TARGET,
        };
    }

    /// All vCPUs as a mask.
    fn all(&self) -> u8 {
        ((1u16 << self.vcpus) - 1) as u8
    }

    // --- Delivery. ---

    /// The distributor's group enables as masks over a group bitmap: (group 0, group 1).
    fn gates(&self) -> (u32, u32) {
        let on = |b: u32| if self.ctlr & b != 0 { u32::MAX } else { 0 };
        match self.version {
            // Without security extensions one Enable bit gates both groups.
            GicVersion::V2 => (on(1), on(1)),
            GicVersion::V3 => (on(1), on(2)),
        }
    }

    /// The ready interrupts of word `w` for `vcpu` (see the module docs).
    fn ready(&self, vcpu: usize, w: usize, (g0, g1): (u32, u32)) -> u32 {
        let (word, mine) = match w {
            0 => (&self.cpus[vcpu].word, !self.cpus[vcpu].listed),
            _ => match (
                self.spi.get(w),
                self.routed[vcpu].get(w),
                self.spi_listed.get(w),
            ) {
                (Some(word), Some(routed), Some(listed)) => (word, routed & !listed),
                _ => return 0,
            },
        };
        word.pending & word.enabled & mine & ((word.group & g1) | (!word.group & g0))
    }

    /// Puts ready interrupt `irq` into a free list register of `vcpu`. False if none is free
    /// or `out` is full (it then waits in the queue).
    fn place(&mut self, vcpu: usize, irq: usize, out: &mut Injections) -> bool {
        let cpu = &mut self.cpus[vcpu];
        let Some(lr) = cpu.lrs.iter().position(Option::is_none) else {
            return false;
        };
        if out.is_full() {
            return false;
        }
        let (w, b) = bit(irq);
        let group = match self.version {
            GicVersion::V2 => 0,
            GicVersion::V3 => u8::from(self.bits(vcpu, Bits::Group, w) & b != 0),
        };
        let cpu = &mut self.cpus[vcpu];
        cpu.lrs[lr] = Some(irq as u16);
        match w {
            0 => cpu.listed |= b,
            _ => self.spi_listed[w] |= b,
        }
        // Cannot fail: checked above.
        let _ = out.push(Injection {
            vcpu: vcpu as u8,
            irq: irq as u16,
            priority: self.priority(vcpu, irq),
            group,
            lr: lr as u8,
        });
        true
    }

    /// Fills the free list registers of `vcpu` with its ready interrupts, lowest INTID first.
    fn fill(&mut self, vcpu: usize, out: &mut Injections) {
        if self.cpus[vcpu].lrs.iter().all(Option::is_some) {
            return;
        }
        let gates = self.gates();
        for w in 0..WORDS {
            let mut bits = self.ready(vcpu, w, gates);
            while bits != 0 {
                if !self.place(vcpu, w * 32 + bits.trailing_zeros() as usize, out) {
                    return;
                }
                bits &= bits - 1;
            }
        }
    }

    /// Fills the vCPUs in `mask` (bit i = vCPU i).
    fn refill(&mut self, mask: u8, out: &mut Injections) {
        for vcpu in 0..self.vcpus {
            if mask & (1 << vcpu) != 0 {
                self.fill(vcpu, out);
            }
        }
    }
}

/// Test helpers shared by the front ends' tests.
#[cfg(test)]
mod testing {
    use super::*;

    /// QEMU virt's MPIDRs for `n` vCPUs.
    pub(super) fn gic(version: GicVersion, n: usize) -> Vgic {
        let mpidrs: Vec<u64> = (0..n as u64).map(|i| 0x8000_0000 | i).collect();
        Vgic::new(version, &mpidrs).expect("a vGIC")
    }

    pub(super) fn bad(offset: u64, size: u8) -> MmioError {
        MmioError::BadRegister { offset, size }
    }

    /// The (vCPU, INTID, LR) of each injection.
    pub(super) fn placed(out: &Injections) -> Vec<(u8, u16, u8)> {
        out.iter().map(|i| (i.vcpu, i.irq, i.lr)).collect()
    }

    /// Every offset in `range` with every size, read and written with all-ones and zero: no
    /// panic, and only sizes 1, 2, 4 and 8 can succeed.
    pub(super) fn hammer(
        range: core::ops::Range<u64>,
        mut access: impl FnMut(u64, u8, Option<u64>) -> Result<u64, MmioError>,
    ) {
        for offset in range {
            for size in [0u8, 1, 2, 3, 4, 5, 8, 16, 255] {
                for op in [None, Some(u64::MAX), Some(0), None] {
                    let r = access(offset, size, op);
                    if !matches!(size, 1 | 2 | 4 | 8) || offset % u64::from(size) != 0 {
                        assert_eq!(r, Err(bad(offset, size)), "{offset:#x}/{size}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::testing::*;
    use super::*;

    #[test]
    fn new_checks_the_vcpus() {
        assert_eq!(
            Vgic::new(GicVersion::V2, &[]).err(),
            Some(GicError::VcpuCount(0))
        );
        assert_eq!(
            Vgic::new(GicVersion::V3, &[0; 9]).err(),
            Some(GicError::VcpuCount(9))
        );
        // Bit 31 (RES1) and MT do not count: these are the same affinity.
        assert_eq!(
            Vgic::new(GicVersion::V3, &[0x8000_0001, 0x0100_0001]).err(),
            Some(GicError::SameAffinity(1))
        );
        let g = gic(GicVersion::V3, 4);
        assert_eq!(g.version(), GicVersion::V3);
        assert_eq!(g.redist_size(), 4 * REDIST_STRIDE);
        assert_eq!(gic(GicVersion::V2, 2).redist_size(), 0);
        assert_eq!(GicVersion::V2.dist_size(), 0x1000);
        assert_eq!(GicVersion::V3.dist_size(), 0x10000);
        assert_eq!(GicError::BadIrq(300).to_string(), "no interrupt source 300");
        assert_eq!(
            GicError::VcpuCount(9).to_string(),
            "9 vCPUs; the vGIC serves 1 to 8"
        );
    }

    #[test]
    fn raise_checks_its_arguments() {
        let mut g = gic(GicVersion::V2, 2);
        let mut out = Injections::new();
        assert_eq!(g.raise(0, 256, &mut out), Err(GicError::BadIrq(256)));
        assert_eq!(g.raise(0, 3, &mut out), Err(GicError::BadIrq(3)));
        assert_eq!(g.raise(2, 27, &mut out), Err(GicError::BadVcpu(2)));
        // vCPU is ignored for SPIs.
        assert_eq!(g.raise(7, 40, &mut out), Ok(()));
        assert!(out.is_empty(), "nothing enabled");
        assert_eq!(g.complete(2, 0, &mut out), None);
        assert_eq!(g.complete(0, LIST_REGS as u8, &mut out), None);
        assert!(!g.has_pending(9));
    }

    /// The timer PPI waits for the distributor and its enable, then goes to its own vCPU only.
    fn timer_flow(
        version: GicVersion,
        ctlr: u64,
        enable: impl Fn(&mut Vgic, usize, &mut Injections),
    ) {
        let mut g = gic(version, 2);
        let mut out = Injections::new();
        g.raise(1, 27, &mut out).unwrap();
        assert!(out.is_empty() && !g.has_pending(1), "not enabled");
        enable(&mut g, 1, &mut out);
        assert!(out.is_empty() && !g.has_pending(1), "distributor off");
        g.dist_write(0, 0, 4, ctlr, &mut out).unwrap();
        let group = u8::from(version == GicVersion::V3);
        assert_eq!(
            out.as_slice(),
            [Injection {
                vcpu: 1,
                irq: 27,
                priority: 0,
                group,
                lr: 0
            }]
        );
        assert!(g.has_pending(1) && !g.has_pending(0));
        out.clear();
        // Raised again while listed: not injected twice.
        g.raise(1, 27, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(g.complete(1, 0, &mut out), Some(27));
        assert!(
            out.is_empty() && !g.has_pending(1),
            "completed: no longer pending"
        );
        assert_eq!(g.complete(1, 0, &mut out), None, "spurious maintenance");
        g.raise(1, 27, &mut out).unwrap();
        assert_eq!(placed(&out), [(1, 27, 0)]);
    }

    #[test]
    fn timer_ppi_v2() {
        timer_flow(GicVersion::V2, 1, |g, v, out| {
            g.dist_write(v, 0x100, 4, 1 << 27, out).unwrap()
        });
    }

    #[test]
    fn timer_ppi_v3() {
        timer_flow(GicVersion::V3, 0x13, |g, v, out| {
            let sgi = v as u64 * REDIST_STRIDE + 0x1_0000;
            g.redist_write(sgi + 0x80, 4, u64::MAX, out).unwrap();
            g.redist_write(sgi + 0x100, 4, 1 << 27, out).unwrap();
        });
    }

    #[test]
    fn overflow_queue_is_per_vcpu() {
        let mut g = gic(GicVersion::V2, 2);
        let mut out = Injections::new();
        g.dist_write(0, 0, 4, 1, &mut out).unwrap();
        g.dist_write(0, 0x104, 4, u64::MAX, &mut out).unwrap(); // SPIs 32..63
                                                                // SPIs 32..38 to vCPU 0 (the reset routing), 40 and 41 to vCPU 1.
        g.dist_write(0, 0x828, 4, 0x0101_0202, &mut out).unwrap();
        for irq in (32..39).chain([40, 41]) {
            g.raise(0, irq, &mut out).unwrap();
        }
        assert_eq!(
            placed(&out),
            [
                (0, 32, 0),
                (0, 33, 1),
                (0, 34, 2),
                (0, 35, 3),
                (1, 40, 0),
                (1, 41, 1)
            ]
        );
        out.clear();
        // vCPU 1 has free list registers; its queue is empty. vCPU 0 has 36..38 waiting.
        assert!(g.has_pending(0) && g.has_pending(1));
        assert_eq!(g.complete(1, 0, &mut out), Some(40));
        assert!(out.is_empty());
        assert_eq!(g.complete(0, 2, &mut out), Some(34));
        assert_eq!(placed(&out), [(0, 36, 2)]);
        out.clear();
        // Disabled while queued: leaves the queue.
        g.dist_write(0, 0x184, 4, 1 << 5, &mut out).unwrap(); // SPI 37
        assert_eq!(g.complete(0, 0, &mut out), Some(32));
        assert_eq!(placed(&out), [(0, 38, 0)]);
        out.clear();
        for lr in [1, 2, 3, 0] {
            g.complete(0, lr, &mut out);
        }
        assert!(
            out.is_empty() && !g.has_pending(0),
            "37 stays pending but disabled"
        );
        assert_eq!(g.dist_read(0, 0x204, 4), Ok(1 << 5 | 1 << 9));
        g.dist_write(0, 0x104, 4, 1 << 5, &mut out).unwrap();
        assert_eq!(placed(&out), [(0, 37, 0)]);
    }

    #[test]
    fn full_out_leaves_interrupts_queued() {
        let mut g = gic(GicVersion::V2, 1);
        let mut out = Injections::new();
        g.dist_write(0, 0x104, 4, 0xf, &mut out).unwrap();
        for irq in 32..36 {
            g.raise(0, irq, &mut out).unwrap();
        }
        while !out.is_full() {
            out.push(Injection {
                vcpu: 0,
                irq: 0,
                priority: 0,
                group: 0,
                lr: 0,
            })
            .unwrap();
        }
        g.dist_write(0, 0, 4, 1, &mut out).unwrap();
        assert!(g.has_pending(0), "ready, waiting for room");
        out.clear();
        g.deliver(0, &mut out);
        assert_eq!(
            placed(&out),
            [(0, 32, 0), (0, 33, 1), (0, 34, 2), (0, 35, 3)]
        );
        g.deliver(9, &mut out);
    }

    #[test]
    fn listed_spi_is_not_injected_twice_after_retargeting() {
        let mut g = gic(GicVersion::V2, 3);
        let mut out = Injections::new();
        g.dist_write(0, 0, 4, 1, &mut out).unwrap();
        g.dist_write(0, 0x104, 4, 1, &mut out).unwrap();
        g.raise(0, 32, &mut out).unwrap();
        assert_eq!(placed(&out), [(0, 32, 0)]);
        out.clear();
        g.dist_write(0, 0x820, 1, 4, &mut out).unwrap();
        assert!(out.is_empty(), "still in vCPU 0's list register");
        assert_eq!(g.complete(0, 0, &mut out), Some(32));
        g.raise(0, 32, &mut out).unwrap();
        assert_eq!(placed(&out), [(2, 32, 0)]);
    }

    #[derive(Clone, Debug)]
    enum Call {
        Dist(usize, u64, u8, u64),
        Redist(u64, u8, u64),
        Sgi1r(usize, u64),
        Raise(usize, u16),
        Complete(usize, u8),
    }

    fn call() -> impl Strategy<Value = Call> {
        let vcpu = 0..4usize;
        // Mostly word registers that change delivery, sometimes anything.
        let dist_off = prop_oneof![
            Just(0u64),
            (0x20u64..0x100).prop_map(|w| w * 4),
            (0x6100u64..0x6800).prop_map(|o| o & !7),
            Just(0xf00u64),
            0u64..0x1_0010,
        ];
        let redist_off =
            (0..4u64, 0x20u64..0x110).prop_map(|(c, w)| c * REDIST_STRIDE + 0x1_0000 + w * 4);
        let size = prop_oneof![4 => Just(4u8), 1 => Just(8u8), 1 => Just(1u8), 1 => any::<u8>()];
        prop_oneof![
            (vcpu.clone(), dist_off, size.clone(), any::<u64>())
                .prop_map(|(v, o, s, x)| Call::Dist(v, o, s, x)),
            (redist_off, size, any::<u64>()).prop_map(|(o, s, x)| Call::Redist(o, s, x)),
            (vcpu.clone(), any::<u64>()).prop_map(|(v, x)| Call::Sgi1r(v, x)),
            (vcpu.clone(), 16u16..64).prop_map(|(v, i)| Call::Raise(v, i)),
            (vcpu, 0..LIST_REGS as u8).prop_map(|(v, lr)| Call::Complete(v, lr)),
        ]
    }

    proptest! {
        /// Whatever the guest writes, the VMM's view holds: an injection only goes into a list
        /// register the VMM sees free, completion returns what was injected there, an
        /// interrupt is never in two list registers at once, and has_pending agrees.
        #[test]
        fn injections_keep_list_registers_consistent(
            v3 in any::<bool>(),
            calls in proptest::collection::vec(call(), 1..200),
        ) {
            let version = if v3 { GicVersion::V3 } else { GicVersion::V2 };
            let mut g = gic(version, 4);
            let mut lrs = [[None::<u16>; LIST_REGS]; 4];
            for c in calls {
                let mut out = Injections::new();
                match c {
                    Call::Dist(v, o, s, x) => { let _ = g.dist_write(v, o, s, x, &mut out); }
                    Call::Redist(o, s, x) => { let _ = g.redist_write(o, s, x, &mut out); }
                    Call::Sgi1r(v, x) => g.sgi1r_write(v, x, &mut out),
                    Call::Raise(v, i) => { let _ = g.raise(v, i, &mut out); }
                    Call::Complete(v, lr) => {
                        let got = g.complete(v, lr, &mut out);
                        prop_assert_eq!(got, lrs[v][usize::from(lr)]);
                        lrs[v][usize::from(lr)] = None;
                    }
                }
                for i in out.iter() {
                    let slot = &mut lrs[usize::from(i.vcpu)][usize::from(i.lr)];
                    prop_assert_eq!(*slot, None, "{:?} into a full list register", i);
                    *slot = Some(i.irq);
                    prop_assert_eq!(i.group, if v3 { i.group & 1 } else { 0 });
                }
                let mut seen = std::collections::HashSet::new();
                for (v, cpu) in lrs.iter().enumerate() {
                    for irq in cpu.iter().flatten() {
                        // SGIs and PPIs are per vCPU; an SPI is in one list register at most.
                        let key = if *irq < 32 { (v, *irq) } else { (usize::MAX, *irq) };
                        prop_assert!(seen.insert(key), "{} listed twice", irq);
                    }
                    if cpu.iter().any(Option::is_some) {
                        prop_assert!(g.has_pending(v));
                    }
                }
            }
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(bitmap_reg(0x084), Some((Bits::Group, Op::Assign, 1)));
        assert_eq!(bitmap_reg(0x3fc), Some((Bits::Active, Op::Clear, 31)));
        assert_eq!(bitmap_reg(0x400), None);
        assert_eq!(bitmap_reg(0x07c), None);
        assert!(access_ok(4, 4, WORD) && !access_ok(2, 4, WORD) && !access_ok(4, 2, WORD));
        assert!(access_ok(1, 1, BYTE | WORD) && !access_ok(0, 8, BYTE | WORD));
        assert!(!access_ok(0, 3, 0xff) && !access_ok(0, 0, 0xff));
        assert_eq!(half(0x1122_3344_5566_7788, 4, 4), 0x1122_3344);
        assert_eq!(half(0x1122_3344_5566_7788, 0, 4), 0x5566_7788);
        assert_eq!(
            merge_half(0x1122_3344_5566_7788, 4, 4, 0xaa),
            0xaa_5566_7788
        );
        assert_eq!(
            merge_half(0x1122_3344_5566_7788, 0, 4, !0),
            0x1122_3344_ffff_ffff
        );
        assert_eq!(merge_half(1, 0, 8, 2), 2);
        assert_eq!(read_bytes(0x10, 4, |o| o as u8), 0x1312_1110);
        let mut seen = Vec::new();
        write_bytes(8, 2, 0xbbaa, |o, b| seen.push((o, b)));
        assert_eq!(seen, [(8, 0xaa), (9, 0xbb)]);
    }
}
