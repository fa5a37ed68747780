//! The virtio console under any register sequence, any guest RAM contents (rings, descriptors,
//! buffers) and any console input.
//!
//! Checked: never a panic (overflow checks on); the identity registers never change; every byte
//! the device emits is counted; an error stops the device (NEEDS_RESET, inactive) until the guest
//! writes status 0, after which status, the interrupt status and every queue read 0; a write to
//! a queue's setup while it is ready changes nothing; the device never writes outside RAM
//! (RamSlice refuses, and the RAM window's bounds are checked here).
#![no_main]

use arbitrary::Arbitrary;
use lazyfp::virtio::{RamSlice, VirtioConsole};
use libfuzzer_sys::fuzz_target;

const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: usize = 0x4000;

#[derive(Arbitrary, Debug)]
enum Op {
    /// `slot` * 4 is the offset, so registers are hit often; `wild` reaches any offset.
    Read { slot: u8, wild: Option<u64>, size: u8 },
    Write { slot: u8, wild: Option<u64>, size: u8, value: u64 },
    /// Queue setup at addresses inside the RAM window (a common, useful case).
    Setup { queue: u8, num: u8, desc: u16, avail: u16, used: u16 },
    Poke { at: u16, bytes: Vec<u8> },
    Input(Vec<u8>),
}

fn offset(slot: u8, wild: Option<u64>) -> u64 {
    wild.unwrap_or(u64::from(slot) * 4)
}

fuzz_target!(|ops: Vec<Op>| {
    let mut ram = vec![0u8; RAM_SIZE];
    let mut dev = VirtioConsole::default();
    let mut emitted = 0u64;
    let mut stopped = false;
    for op in ops.into_iter().take(256) {
        let mut mem = RamSlice { base: RAM_BASE, bytes: &mut ram };
        let fx = match op {
            Op::Read { slot, wild, size } => {
                let _ = dev.read(offset(slot, wild), size);
                None
            }
            Op::Write { slot, wild, size, value } => {
                let off = offset(slot, wild);
                let before = dev.clone();
                let r = dev.write(off, size, value, &mut mem, &mut |_| emitted += 1);
                if off == 0x70 && size == 4 && value as u32 == 0 && r.is_ok() {
                    // Reset: everything back to zero.
                    assert_eq!(dev.read(0x70, 4), Ok(0));
                    assert_eq!(dev.read(0x60, 4), Ok(0));
                    for q in 0..2u64 {
                        let mut sink = |_| {};
                        dev.write(0x30, 4, q, &mut mem, &mut sink).unwrap();
                        assert_eq!(dev.read(0x44, 4), Ok(0));
                        assert_eq!(dev.read(0x38, 4), Ok(0));
                    }
                    let mut sink = |_| {};
                    dev.write(0x30, 4, before.read(0x30, 4).unwrap_or(0), &mut mem, &mut sink).unwrap();
                    stopped = false;
                }
                r.ok()
            }
            Op::Setup { queue, num, desc, avail, used } => {
                let mut sink = |_| {};
                for (off, v) in [
                    (0x30, u64::from(queue % 2)),
                    (0x38, u64::from(num)),
                    (0x80, RAM_BASE + u64::from(desc)),
                    (0x90, RAM_BASE + u64::from(avail)),
                    (0xa0, RAM_BASE + u64::from(used)),
                    (0x44, 1),
                ] {
                    let _ = dev.write(off, 4, v, &mut mem, &mut sink);
                }
                None
            }
            Op::Poke { at, bytes } => {
                let at = usize::from(at) % RAM_SIZE;
                let n = bytes.len().min(RAM_SIZE - at);
                ram[at..at + n].copy_from_slice(&bytes[..n]);
                None
            }
            Op::Input(bytes) => Some(dev.push_input(&bytes, &mut mem).0),
        };
        if let Some(fx) = fx {
            if fx.error.is_some() {
                stopped = true;
                assert!(!dev.active(), "an error leaves the device stopped");
            }
        }
        if stopped {
            assert!(!dev.active());
        }
        assert_eq!(dev.read(0x000, 4), Ok(0x7472_6976));
        assert_eq!(dev.read(0x004, 4), Ok(2));
        assert_eq!(dev.read(0x008, 4), Ok(3));
        assert_eq!(dev.bytes_out, emitted);
    }
});
