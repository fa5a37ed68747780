//! GICv2 virtual interrupt controller for one vCPU: an emulated distributor (the guest's GICD)
//! and the bookkeeping of the hardware list registers, with an overflow queue.
//!
//! The CPU interface is the hardware GICV frame, mapped at the guest's GICC by system.xml; seL4
//! writes list registers (`VCPU_InjectIRQ`) and reports completions as VGIC maintenance faults.
//! Written against GICv2 offsets; a GICv3 distributor would sit beside it with the same
//! [`ListRegs`].
use core::fmt;

use crate::abi::GUEST_GICD_BASE;
use crate::mmio::{MmioDevice, MmioError};

/// Interrupt lines the distributor implements (TYPER.ITLinesNumber = 7).
pub const NUM_IRQS: usize = 256;
/// List registers of the GICv2 virtual interface on QEMU virt's Cortex-A53 (GICH_VTR.ListRegs+1).
pub const LIST_REGS: usize = 4;
const WORDS: usize = NUM_IRQS / 32;
const QUEUE: usize = 64;

/// Interrupt injection errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    BadIrq(u64),
    /// More interrupts waiting than the overflow queue holds.
    QueueFull(u16),
}

impl fmt::Display for GicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadIrq(i) => write!(f, "no interrupt {i}"),
            Self::QueueFull(i) => write!(f, "interrupt {i} dropped: injection queue full"),
        }
    }
}

/// The emulated GICv2 distributor.
#[derive(Debug)]
pub struct GicDist {
    ctlr: u32,
    group: [u32; WORDS],
    enabled: [u32; WORDS],
    pending: [u32; WORDS],
    config: [u32; NUM_IRQS / 16],
    priority: [u8; NUM_IRQS],
    targets: [u8; NUM_IRQS],
}

impl Default for GicDist {
    fn default() -> Self {
        // SGIs are always enabled on GICv2; PPIs and SPIs start disabled.
        let mut enabled = [0; WORDS];
        enabled[0] = 0xffff;
        Self {
            ctlr: 0,
            group: [0; WORDS],
            enabled,
            pending: [0; WORDS],
            config: [0; NUM_IRQS / 16],
            priority: [0; NUM_IRQS],
            targets: [0; NUM_IRQS],
        }
    }
}

const fn bit(irq: usize) -> (usize, u32) {
    (irq / 32, 1 << (irq % 32))
}

impl GicDist {
    fn is_enabled(&self, irq: usize) -> bool {
        let (w, b) = bit(irq);
        self.ctlr & 1 != 0 && self.enabled[w] & b != 0
    }

    pub fn priority(&self, irq: u16) -> u8 {
        self.priority.get(irq as usize).copied().unwrap_or(0)
    }

    /// An interrupt was raised (e.g. the virtual timer's PPI). Returns it if it can be delivered
    /// now; otherwise it stays pending until the guest enables it.
    pub fn raise(&mut self, irq: u64) -> Result<Option<u16>, GicError> {
        let i = irq as usize;
        if i >= NUM_IRQS {
            return Err(GicError::BadIrq(irq));
        }
        let (w, b) = bit(i);
        self.pending[w] |= b;
        Ok(self.is_enabled(i).then_some(irq as u16))
    }

    /// The guest completed `irq`: it is no longer pending here (a level source raises it again).
    pub fn complete(&mut self, irq: u16) {
        if let Some(w) = self.pending.get_mut(irq as usize / 32) {
            *w &= !(1 << (irq % 32));
        }
    }

    /// Pending and enabled interrupts, lowest first (after the guest enabled something).
    /// Word-wise, so a distributor with nothing pending costs eight loads.
    pub fn deliverable(&self) -> impl Iterator<Item = u16> + '_ {
        let on = self.ctlr & 1 != 0;
        (0..WORDS).flat_map(move |w| {
            let mut bits = if on {
                self.pending[w] & self.enabled[w]
            } else {
                0
            };
            core::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w * 32) as u16 + b as u16
                })
            })
        })
    }

    /// Whether a write at `offset` can make a pending interrupt deliverable.
    pub const fn may_unmask(offset: u64) -> bool {
        matches!(offset, 0x000 | 0x100..=0x17c | 0x200..=0x27c)
    }

    fn word_reg(&mut self, offset: u64, base: u64) -> Option<usize> {
        let idx = ((offset - base) / 4) as usize;
        (idx < WORDS).then_some(idx)
    }
}

impl MmioDevice for GicDist {
    fn range(&self) -> (u64, u64) {
        (GUEST_GICD_BASE, 0x1000)
    }

    fn read(&mut self, offset: u64, size: u8) -> Result<u64, MmioError> {
        let bad = MmioError::BadRegister { offset, size };
        // Byte-accessible arrays: priorities and targets.
        match offset {
            0x400..=0x7fb => return read_bytes(&self.priority, offset - 0x400, size).ok_or(bad),
            // SGIs/PPIs target the reading CPU (cpu 0).
            0x800..=0x81f => return read_bytes(&[1; 32], offset - 0x800, size).ok_or(bad),
            0x820..=0xbfb => return read_bytes(&self.targets, offset - 0x800, size).ok_or(bad),
            _ => {}
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(bad);
        }
        let v = match offset {
            0x000 => self.ctlr,
            0x004 => (WORDS as u32) - 1, // ITLinesNumber, one CPU, no security extensions
            0x008 => 0x0200_143b,        // IIDR: Arm, GICv2
            0x080..=0x0bc => self.word_reg(offset, 0x080).map_or(0, |i| self.group[i]),
            0x100..=0x17c | 0x180..=0x1fc => {
                let base = if offset < 0x180 { 0x100 } else { 0x180 };
                self.word_reg(offset, base).map_or(0, |i| self.enabled[i])
            }
            0x200..=0x27c | 0x280..=0x2fc => {
                let base = if offset < 0x280 { 0x200 } else { 0x280 };
                self.word_reg(offset, base).map_or(0, |i| self.pending[i])
            }
            0x300..=0x3fc => 0, // active state lives in the list registers
            0xc00..=0xcfc => self
                .config
                .get(((offset - 0xc00) / 4) as usize)
                .copied()
                .unwrap_or(0),
            0xf00 => 0,
            0xfe8 => 0x2b, // PIDR2: ArchRev 2 (GICv2)
            0xfd0..=0xffc => 0,
            _ => return Err(bad),
        };
        Ok(v as u64)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), MmioError> {
        let bad = MmioError::BadRegister { offset, size };
        match offset {
            0x400..=0x7fb => {
                return write_bytes(&mut self.priority, offset - 0x400, size, value).ok_or(bad)
            }
            0x820..=0xbfb => {
                return write_bytes(&mut self.targets, offset - 0x800, size, value).ok_or(bad)
            }
            0x800..=0x81f => return Ok(()), // SGI/PPI targets are read-only
            _ => {}
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(bad);
        }
        let v = value as u32;
        match offset {
            0x000 => self.ctlr = v & 1,
            0x004 | 0x008 => {}
            0x080..=0x0bc => {
                if let Some(i) = self.word_reg(offset, 0x080) {
                    self.group[i] = v;
                }
            }
            0x100..=0x17c => {
                if let Some(i) = self.word_reg(offset, 0x100) {
                    self.enabled[i] |= v;
                }
            }
            0x180..=0x1fc => {
                if let Some(i) = self.word_reg(offset, 0x180) {
                    // SGIs cannot be disabled on GICv2.
                    let keep = if i == 0 { 0xffff } else { 0 };
                    self.enabled[i] &= !(v & !keep);
                }
            }
            0x200..=0x27c => {
                if let Some(i) = self.word_reg(offset, 0x200) {
                    self.pending[i] |= v;
                }
            }
            0x280..=0x2fc => {
                if let Some(i) = self.word_reg(offset, 0x280) {
                    self.pending[i] &= !v;
                }
            }
            0x300..=0x3fc => {}
            0xc00..=0xcfc => {
                if let Some(c) = self.config.get_mut(((offset - 0xc00) / 4) as usize) {
                    *c = v;
                }
            }
            0xf00 => {} // SGIR: one vCPU, nobody to signal
            _ => return Err(bad),
        }
        Ok(())
    }
}

/// A byte or word read of a byte-per-interrupt array at `off`.
fn read_bytes(arr: &[u8], off: u64, size: u8) -> Option<u64> {
    if !matches!(size, 1 | 4) || !off.is_multiple_of(size as u64) {
        return None;
    }
    let off = off as usize;
    let bytes = arr.get(off..off + size as usize)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | *b as u64),
    )
}

/// A byte or word write of a byte-per-interrupt array at `off`.
fn write_bytes(arr: &mut [u8], off: u64, size: u8, value: u64) -> Option<()> {
    if !matches!(size, 1 | 4) || !off.is_multiple_of(size as u64) {
        return None;
    }
    let off = off as usize;
    let bytes = arr.get_mut(off..off + size as usize)?;
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (value >> (8 * i)) as u8;
    }
    Some(())
}

/// Occupancy of the list registers and the interrupts waiting for one.
#[derive(Debug, Default)]
pub struct ListRegs {
    slots: [Option<u16>; LIST_REGS],
    queue: heapless::Deque<u16, QUEUE>,
}

impl ListRegs {
    fn queued(&self, irq: u16) -> bool {
        self.slots.contains(&Some(irq)) || self.queue.iter().any(|&q| q == irq)
    }

    /// Places `irq`: `Some(lr)` to write into list register `lr` now, `None` if it is already in
    /// flight or waits in the queue.
    pub fn inject(&mut self, irq: u16) -> Result<Option<u8>, GicError> {
        if self.queued(irq) {
            return Ok(None);
        }
        if let Some(lr) = self.slots.iter().position(Option::is_none) {
            self.slots[lr] = Some(irq);
            return Ok(Some(lr as u8));
        }
        self.queue.push_back(irq).map_err(GicError::QueueFull)?;
        Ok(None)
    }

    /// List register `lr` was completed (maintenance). Returns the interrupt that was in it and
    /// the next queued one now placed in it.
    pub fn complete(&mut self, lr: u8) -> (Option<u16>, Option<(u16, u8)>) {
        let Some(slot) = self.slots.get_mut(lr as usize) else {
            return (None, None);
        };
        let done = slot.take();
        let next = self.queue.pop_front().map(|irq| {
            *slot = Some(irq);
            (irq, lr)
        });
        (done, next)
    }

    pub fn in_flight(&self) -> usize {
        self.slots.iter().flatten().count() + self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_ppi_waits_for_enable() {
        let mut d = GicDist::default();
        assert_eq!(d.raise(27), Ok(None), "distributor off");
        d.write(0x000, 4, 1).unwrap();
        assert_eq!(d.deliverable().count(), 0, "PPI still disabled");
        d.write(0x100, 4, 1 << 27).unwrap();
        assert_eq!(d.read(0x100, 4), Ok(0xffff | 1 << 27));
        assert_eq!(d.deliverable().collect::<Vec<_>>(), vec![27]);
        d.write(0x104, 4, 1 << 3).unwrap();
        d.raise(35).unwrap();
        d.raise(36).unwrap();
        assert_eq!(
            d.deliverable().collect::<Vec<_>>(),
            vec![27, 35],
            "36 is not enabled"
        );
        assert!(
            GicDist::may_unmask(0x100) && GicDist::may_unmask(0) && !GicDist::may_unmask(0x41b)
        );
        d.complete(27);
        assert_eq!(d.raise(27), Ok(Some(27)));
        assert_eq!(d.raise(256), Err(GicError::BadIrq(256)));
    }

    #[test]
    fn registers_read_back() {
        let mut d = GicDist::default();
        d.write(0x400 + 27, 1, 0xa0).unwrap();
        assert_eq!(d.read(0x400 + 27, 1), Ok(0xa0));
        assert_eq!(d.read(0x418, 4), Ok(0xa000_0000));
        assert_eq!(d.priority(27), 0xa0);
        d.write(0x180, 4, 0xffff_ffff).unwrap();
        assert_eq!(d.read(0x100, 4), Ok(0xffff), "SGIs stay enabled");
        assert_eq!(d.read(0x004, 4), Ok(7));
        assert_eq!(d.read(0x800, 1), Ok(1));
        assert_eq!(d.read(0x81c, 4), Ok(0x0101_0101));
        d.write(0x820, 4, 0x0101_0101).unwrap();
        assert_eq!(d.read(0x820, 4), Ok(0x0101_0101));
        assert_eq!(
            d.read(0x001, 4),
            Err(MmioError::BadRegister { offset: 1, size: 4 })
        );
        assert_eq!(
            d.write(0xe00, 4, 0),
            Err(MmioError::BadRegister {
                offset: 0xe00,
                size: 4
            })
        );
        assert_eq!(
            d.read(0x400, 2),
            Err(MmioError::BadRegister {
                offset: 0x400,
                size: 2
            })
        );
    }

    #[test]
    fn list_registers_overflow_into_queue() {
        let mut l = ListRegs::default();
        for i in 0..LIST_REGS as u16 {
            assert_eq!(l.inject(32 + i), Ok(Some(i as u8)));
        }
        assert_eq!(l.inject(32), Ok(None), "already in flight");
        assert_eq!(l.inject(40), Ok(None), "queued");
        assert_eq!(l.in_flight(), LIST_REGS + 1);
        assert_eq!(l.complete(2), (Some(34), Some((40, 2))));
        assert_eq!(l.complete(2), (Some(40), None));
        assert_eq!(l.complete(9), (None, None));
        // One list register is free again, then the queue fills.
        for i in 0..=QUEUE as u16 {
            l.inject(100 + i).unwrap();
        }
        assert_eq!(l.inject(255), Err(GicError::QueueFull(255)));
    }
}
