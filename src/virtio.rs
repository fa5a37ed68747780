//! A virtio-mmio (version 2) console: the guest's batched console (`console=hvc0`).
//!
//! The emulated PL011 costs two exits per character (an FR poll and a DR write); here the
//! guest queues a whole buffer and notifies once. One port, no multiport, no indirect
//! descriptors, no event index: the transmit queue is drained synchronously in the notify exit,
//! so a driver polling its used ring (Linux's `__send_to_port`) sees it done when it resumes.
//!
//! Everything the guest controls (ring addresses, sizes, descriptor chains, indices) is checked
//! against guest RAM; a bad ring sets DEVICE_NEEDS_RESET (what the spec asks of a device that
//! meets an error it cannot recover from) and the device does nothing more until reset.
use core::fmt;

use crate::abi::GUEST_VIRTIO_CONSOLE_BASE;
use crate::mmio::MmioError;

/// Size of the register frame.
pub const FRAME: u64 = 0x200;
/// Descriptors per queue the device offers (QueueNumMax).
pub const QUEUE_MAX: u16 = 64;
/// Input bytes held while the guest has no receive buffer posted.
const INPUT_HOLD: usize = 256;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
const DEVICE_CONSOLE: u32 = 3;
const VENDOR: u32 = 0x5046_5a4c; // "LZFP"
/// VIRTIO_F_VERSION_1 (feature bit 32): the only feature offered.
const FEATURES: u64 = 1 << 32;

// Register offsets (virtio 1.2, 4.2.2).
const R_MAGIC: u64 = 0x000;
const R_VERSION: u64 = 0x004;
const R_DEVICE_ID: u64 = 0x008;
const R_VENDOR_ID: u64 = 0x00c;
const R_DEVICE_FEATURES: u64 = 0x010;
const R_DEVICE_FEATURES_SEL: u64 = 0x014;
const R_DRIVER_FEATURES: u64 = 0x020;
const R_DRIVER_FEATURES_SEL: u64 = 0x024;
const R_QUEUE_SEL: u64 = 0x030;
const R_QUEUE_NUM_MAX: u64 = 0x034;
const R_QUEUE_NUM: u64 = 0x038;
const R_QUEUE_READY: u64 = 0x044;
const R_QUEUE_NOTIFY: u64 = 0x050;
const R_INTERRUPT_STATUS: u64 = 0x060;
const R_INTERRUPT_ACK: u64 = 0x064;
const R_STATUS: u64 = 0x070;
const R_QUEUE_DESC_LOW: u64 = 0x080;
const R_QUEUE_DRIVER_LOW: u64 = 0x090;
const R_QUEUE_DEVICE_LOW: u64 = 0x0a0;
const R_QUEUE_DEVICE_HIGH: u64 = 0x0a4;
const R_CONFIG_GENERATION: u64 = 0x0fc;
const R_CONFIG: u64 = 0x100;
/// struct virtio_console_config: cols, rows (u16), max_nr_ports, emerg_wr (u32).
const CONFIG_SIZE: u64 = 12;

// Device status bits.
const S_DRIVER_OK: u32 = 4;
const S_FEATURES_OK: u32 = 8;
const S_NEEDS_RESET: u32 = 0x40;

/// InterruptStatus: used buffer notification.
const INT_USED: u32 = 1;

// Descriptor flags.
const D_NEXT: u16 = 1;
const D_WRITE: u16 = 2;
/// Avail ring flag: the driver needs no interrupt for used buffers.
const AVAIL_NO_INTERRUPT: u16 = 1;

const RX: usize = 0;
const TX: usize = 1;

/// Guest-physical memory the device reads its rings and buffers from.
pub trait GuestRam {
    /// Fills `out` from guest-physical `gpa`; false if any byte is outside RAM.
    fn read(&self, gpa: u64, out: &mut [u8]) -> bool;
    /// Writes `data` at guest-physical `gpa`; false (nothing written) if outside RAM.
    fn write(&mut self, gpa: u64, data: &[u8]) -> bool;
}

/// Guest RAM as one slice starting at guest-physical `base`.
pub struct RamSlice<'a> {
    pub base: u64,
    pub bytes: &'a mut [u8],
}

impl RamSlice<'_> {
    fn range(&self, gpa: u64, len: usize) -> Option<core::ops::Range<usize>> {
        let start = usize::try_from(gpa.checked_sub(self.base)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }
}

impl GuestRam for RamSlice<'_> {
    fn read(&self, gpa: u64, out: &mut [u8]) -> bool {
        match self.range(gpa, out.len()) {
            Some(r) => {
                out.copy_from_slice(&self.bytes[r]);
                true
            }
            None => false,
        }
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        match self.range(gpa, data.len()) {
            Some(r) => {
                self.bytes[r].copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

/// Why the device stopped (it then sets DEVICE_NEEDS_RESET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtioError {
    /// A ring or buffer lies (partly) outside guest RAM.
    OutsideRam { queue: u8, gpa: u64 },
    /// A descriptor index beyond the queue, or a chain longer than the queue (a loop).
    BadChain { queue: u8, index: u16 },
    /// The driver made more buffers available than the queue holds.
    BadAvailIndex { queue: u8, avail: u16, seen: u16 },
}

impl fmt::Display for VirtioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutsideRam { queue, gpa } => {
                write!(
                    f,
                    "virtio console queue {queue}: {gpa:#x} is outside guest RAM"
                )
            }
            Self::BadChain { queue, index } => {
                write!(
                    f,
                    "virtio console queue {queue}: bad descriptor chain at {index}"
                )
            }
            Self::BadAvailIndex { queue, avail, seen } => write!(
                f,
                "virtio console queue {queue}: avail index {avail} is too far past {seen}"
            ),
        }
    }
}

/// What a register write asks of the VMM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Raise the device's interrupt (edge).
    pub interrupt: bool,
    /// The device stopped on this error (reported once).
    pub error: Option<VirtioError>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Queue {
    num: u16,
    ready: bool,
    desc: u64,
    avail: u64,
    used: u64,
    /// Next avail ring entry to take (also the next used index: buffers complete in order).
    next: u16,
}

/// The virtio console's state.
#[derive(Clone, Debug, Default)]
pub struct VirtioConsole {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: [Queue; 2],
    interrupt_status: u32,
    input: heapless::Deque<u8, INPUT_HOLD>,
    /// Bytes the guest wrote, for the closing counters.
    pub bytes_out: u64,
    /// Transmit notifications (exits that carried output).
    pub notifies: u64,
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

impl VirtioConsole {
    pub const BASE: u64 = GUEST_VIRTIO_CONSOLE_BASE;

    /// The offset of `addr` in the frame, if the console claims it.
    pub fn claims(addr: u64) -> Option<u64> {
        addr.checked_sub(Self::BASE).filter(|off| *off < FRAME)
    }

    /// The driver has set DRIVER_OK: input goes here rather than to the PL011.
    pub fn active(&self) -> bool {
        self.status & (S_DRIVER_OK | S_NEEDS_RESET) == S_DRIVER_OK
    }

    fn queue(&self) -> Option<&Queue> {
        self.queues.get(self.queue_sel as usize)
    }

    fn queue_mut(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Back to the state after power-on (status 0), keeping held input.
    fn reset(&mut self) {
        let input = core::mem::take(&mut self.input);
        let (bytes_out, notifies) = (self.bytes_out, self.notifies);
        *self = Self {
            input,
            bytes_out,
            notifies,
            ..Self::default()
        };
    }

    pub fn read(&self, offset: u64, size: u8) -> Result<u64, MmioError> {
        let bad = MmioError::BadRegister { offset, size };
        if offset >= R_CONFIG {
            // Config space: any size, within the struct; max_nr_ports = 1, the rest 0.
            let end = offset.checked_add(u64::from(size));
            if !matches!(size, 1 | 2 | 4) || end.is_none_or(|e| e > R_CONFIG + CONFIG_SIZE) {
                return Err(bad);
            }
            let config: [u8; CONFIG_SIZE as usize] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
            let at = (offset - R_CONFIG) as usize;
            let mut v = 0u64;
            for (i, b) in config[at..at + size as usize].iter().enumerate() {
                v |= u64::from(*b) << (8 * i);
            }
            return Ok(v);
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(bad);
        }
        let q = self.queue();
        let v = match offset {
            R_MAGIC => MAGIC,
            R_VERSION => VERSION,
            R_DEVICE_ID => DEVICE_CONSOLE,
            R_VENDOR_ID => VENDOR,
            R_DEVICE_FEATURES => match self.device_features_sel {
                0 => FEATURES as u32,
                1 => (FEATURES >> 32) as u32,
                _ => 0,
            },
            R_QUEUE_NUM_MAX => q.map_or(0, |_| QUEUE_MAX.into()),
            R_QUEUE_NUM => q.map_or(0, |q| q.num.into()),
            R_QUEUE_READY => q.map_or(0, |q| q.ready.into()),
            R_INTERRUPT_STATUS => self.interrupt_status,
            R_STATUS => self.status,
            R_CONFIG_GENERATION => 0,
            R_QUEUE_DESC_LOW..=R_QUEUE_DEVICE_HIGH => {
                let q = q.copied().unwrap_or_default();
                let addr = match offset & !4 {
                    R_QUEUE_DESC_LOW => q.desc,
                    R_QUEUE_DRIVER_LOW => q.avail,
                    R_QUEUE_DEVICE_LOW => q.used,
                    _ => return Ok(0),
                };
                (if offset & 4 == 0 { addr } else { addr >> 32 }) as u32
            }
            // Write-only and reserved registers read as zero.
            _ => 0,
        };
        Ok(v.into())
    }

    /// A register write. `out` takes the bytes the guest transmits.
    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        ram: &mut impl GuestRam,
        out: &mut impl FnMut(u8),
    ) -> Result<Effects, MmioError> {
        if offset >= R_CONFIG {
            // The console's config fields the device offers are read-only.
            return self.read(offset, size).map(|_| Effects::default());
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(MmioError::BadRegister { offset, size });
        }
        let v = value as u32;
        let mut fx = Effects::default();
        match offset {
            R_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            R_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            R_DRIVER_FEATURES if self.status & S_FEATURES_OK == 0 => {
                let shift = match self.driver_features_sel {
                    0 => 0,
                    1 => 32,
                    _ => return Ok(fx),
                };
                self.driver_features =
                    self.driver_features & !(0xffff_ffff << shift) | u64::from(v) << shift;
            }
            R_QUEUE_SEL => self.queue_sel = v,
            R_QUEUE_NUM => {
                if let Some(q) = self.queue_mut().filter(|q| !q.ready) {
                    // Split rings need a power of two no larger than the maximum.
                    if v.is_power_of_two() && v <= u32::from(QUEUE_MAX) {
                        q.num = v as u16;
                    }
                }
            }
            R_QUEUE_READY => {
                if let Some(q) = self.queue_mut() {
                    q.ready = v & 1 == 1 && q.num != 0;
                    if !q.ready {
                        q.next = 0;
                    }
                }
            }
            R_QUEUE_DESC_LOW..=R_QUEUE_DEVICE_HIGH => {
                if let Some(q) = self.queue_mut().filter(|q| !q.ready) {
                    let field = match offset & !4 {
                        R_QUEUE_DESC_LOW => &mut q.desc,
                        R_QUEUE_DRIVER_LOW => &mut q.avail,
                        R_QUEUE_DEVICE_LOW => &mut q.used,
                        _ => return Ok(fx),
                    };
                    let shift = if offset & 4 == 0 { 0 } else { 32 };
                    *field = *field & !(0xffff_ffff << shift) | u64::from(v) << shift;
                }
            }
            R_QUEUE_NOTIFY if self.active() => {
                let done = match v {
                    1 => self.transmit(ram, out),
                    0 => self.receive(ram),
                    _ => Ok(false),
                };
                fx = self.settle(done);
            }
            R_INTERRUPT_ACK => self.interrupt_status &= !v,
            R_STATUS => {
                if v == 0 {
                    self.reset();
                } else {
                    let mut s = v & !S_NEEDS_RESET | self.status & S_NEEDS_RESET;
                    // FEATURES_OK holds only for a subset of ours that includes VERSION_1.
                    let ok = self.driver_features & !FEATURES == 0
                        && self.driver_features & FEATURES == FEATURES;
                    if s & S_FEATURES_OK != 0 && !ok {
                        s &= !S_FEATURES_OK;
                    }
                    self.status = s;
                    if self.active() && !self.input.is_empty() {
                        let done = self.receive(ram);
                        fx = self.settle(done);
                    }
                }
            }
            // Read-only registers: writes ignored.
            _ => {}
        }
        Ok(fx)
    }

    /// Input from the board's console; returns what to raise. Bytes beyond what the device
    /// holds are dropped (as a full UART FIFO drops them); `held` says how many it kept.
    pub fn push_input(&mut self, bytes: &[u8], ram: &mut impl GuestRam) -> (Effects, usize) {
        let mut held = 0;
        for &b in bytes {
            if self.input.push_back(b).is_ok() {
                held += 1;
            }
        }
        let fx = if self.active() {
            let done = self.receive(ram);
            self.settle(done)
        } else {
            Effects::default()
        };
        (fx, held)
    }

    /// Room for input bytes.
    pub fn input_room(&self) -> usize {
        INPUT_HOLD - self.input.len()
    }

    /// Turns a queue operation's outcome into effects: an interrupt for used buffers the
    /// driver wants to hear about, or the device stopped on an error.
    fn settle(&mut self, done: Result<bool, VirtioError>) -> Effects {
        match done {
            Ok(true) => {
                self.interrupt_status |= INT_USED;
                Effects {
                    interrupt: true,
                    error: None,
                }
            }
            Ok(false) => Effects::default(),
            Err(e) => {
                self.status |= S_NEEDS_RESET;
                Effects {
                    interrupt: false,
                    error: Some(e),
                }
            }
        }
    }

    /// Takes the next available chain of queue `qi`, if any: its head index.
    fn next_avail(&self, qi: usize, ram: &impl GuestRam) -> Result<Option<u16>, VirtioError> {
        let q = &self.queues[qi];
        let queue = qi as u8;
        let mut idx = [0u8; 2];
        if !ram.read(q.avail.wrapping_add(2), &mut idx) {
            return Err(VirtioError::OutsideRam {
                queue,
                gpa: q.avail,
            });
        }
        let avail = le16(&idx);
        let pending = avail.wrapping_sub(q.next);
        if pending == 0 {
            return Ok(None);
        }
        if pending > q.num {
            return Err(VirtioError::BadAvailIndex {
                queue,
                avail,
                seen: q.next,
            });
        }
        let slot = q.avail.wrapping_add(4 + 2 * u64::from(q.next % q.num));
        let mut head = [0u8; 2];
        if !ram.read(slot, &mut head) {
            return Err(VirtioError::OutsideRam { queue, gpa: slot });
        }
        Ok(Some(le16(&head)))
    }

    /// Reads descriptor `index` of queue `qi`: (addr, len, flags, next).
    fn descriptor(
        &self,
        qi: usize,
        index: u16,
        ram: &impl GuestRam,
    ) -> Result<(u64, u32, u16, u16), VirtioError> {
        let q = &self.queues[qi];
        let queue = qi as u8;
        if index >= q.num {
            return Err(VirtioError::BadChain { queue, index });
        }
        let at = q.desc.wrapping_add(16 * u64::from(index));
        let mut d = [0u8; 16];
        if !ram.read(at, &mut d) {
            return Err(VirtioError::OutsideRam { queue, gpa: at });
        }
        let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let len = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
        Ok((addr, len, le16(&d[12..]), le16(&d[14..])))
    }

    /// Completes chain `head` of queue `qi` with `len` bytes written by the device; true if
    /// the driver wants an interrupt for it.
    fn complete(
        &mut self,
        qi: usize,
        head: u16,
        len: u32,
        ram: &mut impl GuestRam,
    ) -> Result<bool, VirtioError> {
        let q = self.queues[qi];
        let queue = qi as u8;
        let slot = q.used.wrapping_add(4 + 8 * u64::from(q.next % q.num));
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        if !ram.write(slot, &elem) {
            return Err(VirtioError::OutsideRam { queue, gpa: slot });
        }
        let next = q.next.wrapping_add(1);
        // The element before the index that publishes it (the guest may poll from another core).
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        if !ram.write(q.used.wrapping_add(2), &next.to_le_bytes()) {
            return Err(VirtioError::OutsideRam { queue, gpa: q.used });
        }
        self.queues[qi].next = next;
        let mut flags = [0u8; 2];
        if !ram.read(q.avail, &mut flags) {
            return Err(VirtioError::OutsideRam {
                queue,
                gpa: q.avail,
            });
        }
        Ok(le16(&flags) & AVAIL_NO_INTERRUPT == 0)
    }

    fn ready(&self, qi: usize) -> bool {
        let q = &self.queues[qi];
        q.ready && q.num != 0
    }

    /// Drains the transmit queue into `out`; true if an interrupt is wanted.
    fn transmit(
        &mut self,
        ram: &mut impl GuestRam,
        out: &mut impl FnMut(u8),
    ) -> Result<bool, VirtioError> {
        if !self.ready(TX) {
            return Ok(false);
        }
        self.notifies += 1;
        let mut interrupt = false;
        while let Some(head) = self.next_avail(TX, ram)? {
            let mut index = head;
            for _ in 0..self.queues[TX].num {
                let (addr, len, flags, next) = self.descriptor(TX, index, ram)?;
                if flags & D_WRITE == 0 {
                    self.emit(addr, len, ram, out)?;
                }
                if flags & D_NEXT == 0 {
                    index = u16::MAX;
                    break;
                }
                index = next;
            }
            if index != u16::MAX {
                return Err(VirtioError::BadChain {
                    queue: TX as u8,
                    index: head,
                });
            }
            interrupt |= self.complete(TX, head, 0, ram)?;
        }
        Ok(interrupt)
    }

    fn emit(
        &mut self,
        addr: u64,
        len: u32,
        ram: &impl GuestRam,
        out: &mut impl FnMut(u8),
    ) -> Result<(), VirtioError> {
        let mut chunk = [0u8; 64];
        let mut done = 0u64;
        while done < u64::from(len) {
            let n = (u64::from(len) - done).min(chunk.len() as u64) as usize;
            let gpa = addr.wrapping_add(done);
            if !ram.read(gpa, &mut chunk[..n]) {
                return Err(VirtioError::OutsideRam {
                    queue: TX as u8,
                    gpa,
                });
            }
            chunk[..n].iter().for_each(|b| out(*b));
            done += n as u64;
        }
        self.bytes_out += u64::from(len);
        Ok(())
    }

    /// Moves held input into the guest's receive buffers; true if an interrupt is wanted.
    fn receive(&mut self, ram: &mut impl GuestRam) -> Result<bool, VirtioError> {
        if !self.ready(RX) {
            return Ok(false);
        }
        let mut interrupt = false;
        while !self.input.is_empty() {
            let Some(head) = self.next_avail(RX, ram)? else {
                break;
            };
            let mut index = head;
            let mut written = 0u32;
            let mut end = false;
            for _ in 0..self.queues[RX].num {
                let (addr, len, flags, next) = self.descriptor(RX, index, ram)?;
                if flags & D_WRITE != 0 {
                    let mut at = 0u32;
                    while at < len {
                        let Some(&b) = self.input.front() else {
                            break;
                        };
                        let gpa = addr.wrapping_add(at.into());
                        if !ram.write(gpa, &[b]) {
                            return Err(VirtioError::OutsideRam {
                                queue: RX as u8,
                                gpa,
                            });
                        }
                        self.input.pop_front();
                        at += 1;
                    }
                    written += at;
                }
                if flags & D_NEXT == 0 || self.input.is_empty() {
                    end = true;
                    break;
                }
                index = next;
            }
            if !end {
                return Err(VirtioError::BadChain {
                    queue: RX as u8,
                    index: head,
                });
            }
            interrupt |= self.complete(RX, head, written, ram)?;
        }
        Ok(interrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const BASE: u64 = 0x4000_0000;
    const DESC: [u64; 2] = [BASE + 0x1000, BASE + 0x4000];
    const AVAIL: [u64; 2] = [BASE + 0x2000, BASE + 0x5000];
    const USED: [u64; 2] = [BASE + 0x3000, BASE + 0x6000];

    struct Mem(Vec<u8>);

    impl Mem {
        fn new() -> Self {
            Self(vec![0; 0x10000])
        }
        fn slice(&mut self) -> RamSlice<'_> {
            RamSlice {
                base: BASE,
                bytes: &mut self.0,
            }
        }
        fn put(&mut self, gpa: u64, data: &[u8]) {
            assert!(self.slice().write(gpa, data));
        }
        fn get16(&mut self, gpa: u64) -> u16 {
            let mut b = [0; 2];
            assert!(self.slice().read(gpa, &mut b));
            u16::from_le_bytes(b)
        }
        fn get32(&mut self, gpa: u64) -> u32 {
            let mut b = [0; 4];
            assert!(self.slice().read(gpa, &mut b));
            u32::from_le_bytes(b)
        }
        fn desc(&mut self, q: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
            let mut d = Vec::new();
            d.extend_from_slice(&addr.to_le_bytes());
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&next.to_le_bytes());
            self.put(DESC[q] + 16 * u64::from(i), &d);
        }
        /// Makes chain `head` available in slot `slot` and publishes avail index `idx`.
        fn offer(&mut self, q: usize, slot: u16, head: u16, idx: u16) {
            self.put(AVAIL[q] + 4 + 2 * u64::from(slot), &head.to_le_bytes());
            self.put(AVAIL[q] + 2, &idx.to_le_bytes());
        }
    }

    fn w(c: &mut VirtioConsole, mem: &mut Mem, off: u64, v: u64) -> Effects {
        let mut sink = |_b: u8| {};
        c.write(off, 4, v, &mut mem.slice(), &mut sink).unwrap()
    }

    fn r(c: &VirtioConsole, off: u64) -> u64 {
        c.read(off, 4).unwrap()
    }

    /// What Linux's virtio_mmio + virtio_console do at probe, with `num` descriptors.
    fn probe(mem: &mut Mem, num: u32) -> VirtioConsole {
        let mut c = VirtioConsole::default();
        w(&mut c, mem, R_STATUS, 0);
        w(&mut c, mem, R_STATUS, 1 | 2);
        w(&mut c, mem, R_DEVICE_FEATURES_SEL, 1);
        assert_eq!(r(&c, R_DEVICE_FEATURES), 1);
        w(&mut c, mem, R_DRIVER_FEATURES_SEL, 1);
        w(&mut c, mem, R_DRIVER_FEATURES, 1);
        w(&mut c, mem, R_DRIVER_FEATURES_SEL, 0);
        w(&mut c, mem, R_DRIVER_FEATURES, 0);
        w(&mut c, mem, R_STATUS, 1 | 2 | S_FEATURES_OK as u64);
        assert_eq!(r(&c, R_STATUS) as u32 & S_FEATURES_OK, S_FEATURES_OK);
        for q in 0..2 {
            w(&mut c, mem, R_QUEUE_SEL, q as u64);
            assert_eq!(r(&c, R_QUEUE_NUM_MAX), u64::from(QUEUE_MAX));
            w(&mut c, mem, R_QUEUE_NUM, num.into());
            for (reg, a) in [
                (R_QUEUE_DESC_LOW, DESC[q]),
                (R_QUEUE_DRIVER_LOW, AVAIL[q]),
                (R_QUEUE_DEVICE_LOW, USED[q]),
            ] {
                w(&mut c, mem, reg, a & 0xffff_ffff);
                w(&mut c, mem, reg + 4, a >> 32);
            }
            w(&mut c, mem, R_QUEUE_READY, 1);
        }
        w(&mut c, mem, R_STATUS, 1 | 2 | 4 | S_FEATURES_OK as u64);
        assert!(c.active());
        c
    }

    fn notify_tx(c: &mut VirtioConsole, mem: &mut Mem) -> (Effects, Vec<u8>) {
        let mut got = Vec::new();
        let fx = c
            .write(R_QUEUE_NOTIFY, 4, 1, &mut mem.slice(), &mut |b| got.push(b))
            .unwrap();
        (fx, got)
    }

    #[test]
    fn identifies_as_a_version_2_console_with_one_port() {
        let c = VirtioConsole::default();
        assert_eq!(r(&c, R_MAGIC), 0x7472_6976);
        assert_eq!(r(&c, R_VERSION), 2);
        assert_eq!(r(&c, R_DEVICE_ID), 3);
        assert_eq!(c.read(R_CONFIG + 4, 4), Ok(1));
        assert_eq!(c.read(R_CONFIG, 2), Ok(0));
        assert!(c.read(R_CONFIG + 10, 4).is_err());
        assert!(c.read(R_MAGIC, 2).is_err());
        assert!(c.read(R_MAGIC + 1, 4).is_err());
        assert_eq!(
            VirtioConsole::claims(VirtioConsole::BASE + 0x1ff),
            Some(0x1ff)
        );
        assert_eq!(VirtioConsole::claims(VirtioConsole::BASE + FRAME), None);
    }

    #[test]
    fn features_beyond_ours_or_without_version_1_are_refused() {
        let mut mem = Mem::new();
        let mut c = VirtioConsole::default();
        w(&mut c, &mut mem, R_DRIVER_FEATURES_SEL, 0);
        w(&mut c, &mut mem, R_DRIVER_FEATURES, 1 << 1); // MULTIPORT: not offered
        w(&mut c, &mut mem, R_DRIVER_FEATURES_SEL, 1);
        w(&mut c, &mut mem, R_DRIVER_FEATURES, 1);
        w(&mut c, &mut mem, R_STATUS, 3 | S_FEATURES_OK as u64);
        assert_eq!(r(&c, R_STATUS) as u32 & S_FEATURES_OK, 0);
        let mut legacy = VirtioConsole::default();
        w(&mut legacy, &mut mem, R_STATUS, 3 | S_FEATURES_OK as u64);
        assert_eq!(r(&legacy, R_STATUS) as u32 & S_FEATURES_OK, 0);
    }

    #[test]
    fn a_notify_drains_every_chain_in_order_and_completes_them() {
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        mem.put(BASE + 0x8000, b"hello, ");
        mem.put(BASE + 0x8100, b"world\n");
        mem.put(BASE + 0x8200, b"!");
        // Chain 0 → 1 (two buffers), then chain 2 alone.
        mem.desc(TX, 0, BASE + 0x8000, 7, D_NEXT, 1);
        mem.desc(TX, 1, BASE + 0x8100, 6, 0, 0);
        mem.desc(TX, 2, BASE + 0x8200, 1, 0, 0);
        mem.offer(TX, 0, 0, 1);
        mem.offer(TX, 1, 2, 2);
        let (fx, got) = notify_tx(&mut c, &mut mem);
        assert_eq!(got, b"hello, world\n!");
        assert!(fx.interrupt);
        assert_eq!(fx.error, None);
        assert_eq!(mem.get16(USED[TX] + 2), 2);
        assert_eq!(mem.get32(USED[TX] + 4), 0);
        assert_eq!(mem.get32(USED[TX] + 12), 2);
        assert_eq!(r(&c, R_INTERRUPT_STATUS), 1);
        w(&mut c, &mut mem, R_INTERRUPT_ACK, 1);
        assert_eq!(r(&c, R_INTERRUPT_STATUS), 0);
        // Nothing new: no output, no interrupt; the ring wraps past num.
        assert_eq!(
            notify_tx(&mut c, &mut mem),
            (Effects::default(), Vec::new())
        );
        for i in 2..7u16 {
            mem.offer(TX, i % 4, 2, i + 1);
            assert_eq!(notify_tx(&mut c, &mut mem).1, b"!");
        }
        assert_eq!(mem.get16(USED[TX] + 2), 7);
        assert_eq!(c.bytes_out, 14 + 5);
    }

    #[test]
    fn no_interrupt_when_the_driver_suppresses_it() {
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        mem.put(AVAIL[TX], &AVAIL_NO_INTERRUPT.to_le_bytes());
        mem.desc(TX, 0, BASE + 0x8000, 1, 0, 0);
        mem.offer(TX, 0, 0, 1);
        let (fx, got) = notify_tx(&mut c, &mut mem);
        assert_eq!((fx.interrupt, got.len()), (false, 1));
        assert_eq!(mem.get16(USED[TX] + 2), 1);
    }

    #[test]
    fn hostile_rings_stop_the_device_not_the_vmm() {
        // A buffer outside RAM.
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        mem.desc(TX, 0, 0x1000, 4, 0, 0);
        mem.offer(TX, 0, 0, 1);
        let (fx, _) = notify_tx(&mut c, &mut mem);
        assert_eq!(
            fx.error,
            Some(VirtioError::OutsideRam {
                queue: 1,
                gpa: 0x1000
            })
        );
        assert!(!c.active());
        assert_eq!(r(&c, R_STATUS) as u32 & S_NEEDS_RESET, S_NEEDS_RESET);
        // Stopped: a further notify does nothing; a reset brings it back.
        assert_eq!(notify_tx(&mut c, &mut mem).0, Effects::default());
        w(&mut c, &mut mem, R_STATUS, 0);
        assert_eq!(r(&c, R_STATUS), 0);

        // A chain that loops.
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        mem.desc(TX, 0, BASE + 0x8000, 1, D_NEXT, 1);
        mem.desc(TX, 1, BASE + 0x8000, 1, D_NEXT, 0);
        mem.offer(TX, 0, 0, 1);
        assert_eq!(
            notify_tx(&mut c, &mut mem).0.error,
            Some(VirtioError::BadChain { queue: 1, index: 0 })
        );

        // A descriptor index beyond the queue, and an avail index too far ahead.
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        mem.offer(TX, 0, 9, 1);
        assert_eq!(
            notify_tx(&mut c, &mut mem).0.error,
            Some(VirtioError::BadChain { queue: 1, index: 9 })
        );
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        mem.offer(TX, 0, 0, 5);
        assert_eq!(
            notify_tx(&mut c, &mut mem).0.error,
            Some(VirtioError::BadAvailIndex {
                queue: 1,
                avail: 5,
                seen: 0
            })
        );

        // Rings placed outside RAM.
        let mut mem = Mem::new();
        let mut c = probe(&mut mem, 4);
        w(&mut c, &mut mem, R_QUEUE_SEL, 1);
        w(&mut c, &mut mem, R_QUEUE_READY, 0);
        w(&mut c, &mut mem, R_QUEUE_DRIVER_LOW, 0xffff_fff0);
        w(&mut c, &mut mem, R_QUEUE_DRIVER_LOW + 4, 0xffff_ffff);
        w(&mut c, &mut mem, R_QUEUE_READY, 1);
        assert!(matches!(
            notify_tx(&mut c, &mut mem).0.error,
            Some(VirtioError::OutsideRam { queue: 1, .. })
        ));
    }

    #[test]
    fn queue_setup_follows_the_rules() {
        let mut mem = Mem::new();
        let mut c = VirtioConsole::default();
        w(&mut c, &mut mem, R_QUEUE_SEL, 0);
        w(&mut c, &mut mem, R_QUEUE_NUM, 48); // not a power of two
        assert_eq!(r(&c, R_QUEUE_NUM), 0);
        w(&mut c, &mut mem, R_QUEUE_NUM, 128); // above the maximum
        assert_eq!(r(&c, R_QUEUE_NUM), 0);
        w(&mut c, &mut mem, R_QUEUE_READY, 1); // no size: not ready
        assert_eq!(r(&c, R_QUEUE_READY), 0);
        w(&mut c, &mut mem, R_QUEUE_NUM, 16);
        w(&mut c, &mut mem, R_QUEUE_DESC_LOW, 0x1234_5000);
        w(&mut c, &mut mem, R_QUEUE_DESC_LOW + 4, 0x1);
        assert_eq!(r(&c, R_QUEUE_DESC_LOW), 0x1234_5000);
        assert_eq!(r(&c, R_QUEUE_DESC_LOW + 4), 1);
        w(&mut c, &mut mem, R_QUEUE_READY, 1);
        // A ready queue's setup is frozen.
        w(&mut c, &mut mem, R_QUEUE_DESC_LOW, 0);
        assert_eq!(r(&c, R_QUEUE_DESC_LOW), 0x1234_5000);
        // Queues beyond the two: nothing there.
        w(&mut c, &mut mem, R_QUEUE_SEL, 2);
        assert_eq!(r(&c, R_QUEUE_NUM_MAX), 0);
        w(&mut c, &mut mem, R_QUEUE_NUM, 4);
        assert_eq!(r(&c, R_QUEUE_NUM), 0);
        // Read-only registers ignore writes.
        w(&mut c, &mut mem, R_MAGIC, 0);
        assert_eq!(r(&c, R_MAGIC), u64::from(MAGIC));
    }

    #[test]
    fn input_fills_posted_buffers_and_waits_for_more() {
        let mut mem = Mem::new();
        // Input before the driver is up is held.
        let mut c = VirtioConsole::default();
        let (fx, held) = c.push_input(b"ab", &mut mem.slice());
        assert_eq!((fx, held), (Effects::default(), 2));
        let mut c2 = probe(&mut mem, 4);
        c2.input = c.input.clone();
        // A 4-byte receive buffer posted: the held bytes go in.
        mem.desc(RX, 0, BASE + 0x9000, 4, D_WRITE, 0);
        mem.offer(RX, 0, 0, 1);
        let fx = w(&mut c2, &mut mem, R_QUEUE_NOTIFY, 0);
        assert!(fx.interrupt);
        assert_eq!(mem.get16(USED[RX] + 2), 1);
        assert_eq!(mem.get32(USED[RX] + 4), 0); // id
        assert_eq!(mem.get32(USED[RX] + 8), 2); // len
        assert_eq!(&mem.0[0x9000..0x9002], b"ab");
        // No buffer left: input is held until the driver posts one.
        let (fx, held) = c2.push_input(b"xyz", &mut mem.slice());
        assert_eq!((fx.interrupt, held), (false, 3));
        mem.desc(RX, 1, BASE + 0x9100, 2, D_WRITE, 0);
        mem.offer(RX, 1, 1, 2);
        assert!(w(&mut c2, &mut mem, R_QUEUE_NOTIFY, 0).interrupt);
        assert_eq!(&mem.0[0x9100..0x9102], b"xy");
        assert_eq!(mem.get32(USED[RX] + 16), 2);
        assert_eq!(c2.input_room(), INPUT_HOLD - 1);
        // A read-only descriptor takes no input; the chain still completes with length 0.
        mem.desc(RX, 2, BASE + 0x9200, 8, 0, 0);
        mem.offer(RX, 2, 2, 3);
        assert!(w(&mut c2, &mut mem, R_QUEUE_NOTIFY, 0).interrupt);
        assert_eq!(mem.get32(USED[RX] + 24), 0);
    }

    #[test]
    fn a_full_input_hold_drops_the_rest() {
        let mut mem = Mem::new();
        let mut c = VirtioConsole::default();
        let big = [b'x'; INPUT_HOLD + 10];
        assert_eq!(c.push_input(&big, &mut mem.slice()).1, INPUT_HOLD);
        assert_eq!(c.input_room(), 0);
    }
}
