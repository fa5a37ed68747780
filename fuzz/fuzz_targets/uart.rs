//! The emulated PL011 under any sequence of guest register accesses and console input.
//!
//! Checked against a model of the PL011 TRM (r1p5): a read-write register reads back what was
//! written, masked to its implemented bits; DR reads the receive FIFO in order (0 when empty);
//! FR's RXFE/RXFF/TXFE follow the FIFO; RIS/MIS/the interrupt line follow the FIFO, the TX
//! condition and IMSC; an access to an unknown offset or wider than 32 bits is refused and
//! changes nothing.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use lazyfp::abi::{PL011_PCELL_ID, PL011_PERIPH_ID};
use lazyfp::{MmioDevice, MmioError, Pl011, UartOutput};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// `slot` * 4 is the offset, so the registers are found often; `wild` reaches any offset.
    Read {
        slot: u16,
        wild: Option<u64>,
        size: u8,
    },
    Write {
        slot: u16,
        wild: Option<u64>,
        size: u8,
        value: u64,
    },
    Input(u8),
}

/// Read-write registers: offset and implemented bits.
const RW: [(u64, u64); 7] = [
    (0x020, 0xff),   // ILPR
    (0x024, 0xffff), // IBRD
    (0x028, 0x3f),   // FBRD
    (0x02c, 0xff),   // LCR_H
    (0x030, 0xffff), // CR
    (0x034, 0x3f),   // IFLS
    (0x048, 0x7),    // DMACR
];
const IMSC: u64 = 0x038;
const RX_FIFO: usize = 32;
const INT_RX: u64 = 1 << 4;
const INT_TX: u64 = 1 << 5;
const INT_RT: u64 = 1 << 6;

struct Model {
    rx: VecDeque<u8>,
    rw: [u64; RW.len()],
    imsc: u64,
    tx: bool,
}

impl Model {
    fn ris(&self) -> u64 {
        let rx = if self.rx.is_empty() {
            0
        } else {
            INT_RX | INT_RT
        };
        rx | if self.tx { INT_TX } else { 0 }
    }

    /// What a read of `off` must return, or None for no register there.
    fn read(&mut self, off: u64) -> Option<u64> {
        if let Some(i) = RW.iter().position(|r| r.0 == off) {
            return Some(self.rw[i]);
        }
        Some(match off {
            0x000 => self.rx.pop_front().map_or(0, u64::from),
            0x004 => 0,
            0x018 => {
                let empty = if self.rx.is_empty() { 1 << 4 } else { 0 };
                let full = if self.rx.len() == RX_FIFO { 1 << 6 } else { 0 };
                (1 << 7) | empty | full
            }
            IMSC => self.imsc,
            0x03c => self.ris(),
            0x040 => self.ris() & self.imsc,
            0xfe0..=0xfec if off.is_multiple_of(4) => {
                PL011_PERIPH_ID[(off as usize - 0xfe0) / 4] as u64
            }
            0xff0..=0xffc if off.is_multiple_of(4) => {
                PL011_PCELL_ID[(off as usize - 0xff0) / 4] as u64
            }
            _ => return None,
        })
    }

    /// Applies a write; Some(byte) for DR, None for another known register, Err for no register.
    fn write(&mut self, off: u64, value: u64) -> Result<Option<u8>, ()> {
        if let Some(i) = RW.iter().position(|r| r.0 == off) {
            self.rw[i] = value & RW[i].1;
            return Ok(None);
        }
        match off {
            0x000 => {
                self.tx = true;
                return Ok(Some(value as u8));
            }
            0x004 => {}
            0x044 if value & INT_TX != 0 => self.tx = false,
            0x044 => {}
            IMSC => {
                self.imsc = value & 0x7ff;
                // TRM: with the TX FIFO empty, unmasking TXIM asserts the interrupt.
                self.tx |= value & INT_TX != 0;
            }
            _ => return Err(()),
        }
        Ok(None)
    }
}

fn offset(slot: u16, wild: Option<u64>) -> u64 {
    wild.unwrap_or((slot as u64 % 0x420) * 4)
}

fuzz_target!(|ops: Vec<Op>| {
    let mut uart = Pl011::default();
    let mut m = Model {
        rx: VecDeque::new(),
        rw: [0, 0, 0, 0, 0x300, 0x12, 0],
        imsc: 0,
        tx: true,
    };
    for op in ops {
        match op {
            Op::Read { slot, wild, size } => {
                let off = offset(slot, wild);
                let size = size % 9;
                let got = uart.read(off, size);
                if size > 4 {
                    assert_eq!(got, Err(MmioError::BadRegister { offset: off, size }));
                    continue;
                }
                match m.read(off) {
                    Some(v) => assert_eq!(got, Ok(v), "read {off:#x}"),
                    None => assert_eq!(
                        got,
                        Err(MmioError::BadRegister {
                            offset: off,
                            size: 4
                        })
                    ),
                }
            }
            Op::Write {
                slot,
                wild,
                size,
                value,
            } => {
                let off = offset(slot, wild);
                if size % 9 > 4 {
                    let r = uart.write(off, size % 9, value);
                    assert_eq!(
                        r,
                        Err(MmioError::BadRegister {
                            offset: off,
                            size: size % 9
                        })
                    );
                    continue;
                }
                let got = uart.write_reg(off, value);
                match m.write(off, value) {
                    Ok(Some(b)) => assert_eq!(got, Ok(UartOutput::Byte(b))),
                    Ok(None) => assert_eq!(got, Ok(UartOutput::Nothing), "write {off:#x}"),
                    Err(()) => assert_eq!(
                        got,
                        Err(MmioError::BadRegister {
                            offset: off,
                            size: 4
                        })
                    ),
                }
            }
            Op::Input(b) => {
                let room = m.rx.len() < RX_FIFO;
                assert_eq!(uart.push_input(b), room, "an overrun drops the byte");
                if room {
                    m.rx.push_back(b);
                }
            }
        }
        assert_eq!(uart.rx_room(), RX_FIFO - m.rx.len());
        assert_eq!(uart.irq_level(), m.ris() & m.imsc != 0);
    }
});
