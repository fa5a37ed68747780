//! An emulated PL011: the guest's console. Output is collected a line at a time so the VMM can
//! print guest lines whole, with a prefix, between its own lines.
use crate::abi::{GUEST_UART_BASE, PL011_PCELL_ID, PL011_PERIPH_ID};
use crate::mmio::{MmioDevice, MmioError};

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const FR_RXFE: u64 = 1 << 4;
const FR_TXFE: u64 = 1 << 7;
const LINE_MAX: usize = 200;

/// What a write did to the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartOutput {
    Nothing,
    Buffered,
    /// A line is complete: read it with [`Pl011::line`], then [`Pl011::clear_line`].
    LineReady,
}

/// The emulated PL011.
#[derive(Debug)]
pub struct Pl011 {
    line: heapless::Vec<u8, LINE_MAX>,
    ready: bool,
    ibrd: u64,
    fbrd: u64,
    lcr_h: u64,
    cr: u64,
    ifls: u64,
    imsc: u64,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self { line: heapless::Vec::new(), ready: false, ibrd: 0, fbrd: 0, lcr_h: 0, cr: 0x300, ifls: 0x12, imsc: 0 }
    }
}

impl Pl011 {
    /// The line written so far (complete after [`UartOutput::LineReady`]).
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// Output not yet ended by a newline (to flush at the end of a run).
    pub fn unfinished_line(&self) -> Option<&[u8]> {
        (!self.ready && !self.line.is_empty()).then_some(&self.line[..])
    }

    pub fn clear_line(&mut self) {
        self.line.clear();
        self.ready = false;
    }

    /// Takes one byte of guest output.
    pub fn put(&mut self, byte: u8) -> UartOutput {
        if self.ready {
            self.clear_line();
        }
        match byte {
            b'\n' => {
                self.ready = true;
                UartOutput::LineReady
            }
            b'\r' => UartOutput::Nothing,
            b => {
                // A full buffer is emitted as a line of its own rather than dropping output.
                if self.line.push(b).is_err() {
                    self.ready = true;
                    return UartOutput::LineReady;
                }
                UartOutput::Buffered
            }
        }
    }

    /// Writes register `offset`; a DR write says what became of the byte.
    pub fn write_reg(&mut self, offset: u64, value: u64) -> Result<UartOutput, MmioError> {
        match offset {
            DR => return Ok(self.put(value as u8)),
            RSR | ICR => {}
            IBRD => self.ibrd = value & 0xffff,
            FBRD => self.fbrd = value & 0x3f,
            LCR_H => self.lcr_h = value & 0xff,
            CR => self.cr = value & 0xffff,
            IFLS => self.ifls = value & 0x3f,
            IMSC => self.imsc = value & 0x7ff,
            _ => return Err(MmioError::BadRegister { offset, size: 4 }),
        }
        Ok(UartOutput::Nothing)
    }
}

impl MmioDevice for Pl011 {
    fn range(&self) -> (u64, u64) {
        (GUEST_UART_BASE, 0x1000)
    }

    fn read(&mut self, offset: u64, size: u8) -> Result<u64, MmioError> {
        if size > 4 {
            return Err(MmioError::BadRegister { offset, size });
        }
        Ok(match offset {
            // No input: the receive FIFO is always empty.
            DR | RSR | RIS | MIS => 0,
            FR => FR_TXFE | FR_RXFE,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            0xfe0..=0xfec if offset.is_multiple_of(4) => PL011_PERIPH_ID[((offset - 0xfe0) / 4) as usize] as u64,
            0xff0..=0xffc if offset.is_multiple_of(4) => PL011_PCELL_ID[((offset - 0xff0) / 4) as usize] as u64,
            _ => return Err(MmioError::BadRegister { offset, size }),
        })
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), MmioError> {
        if size > 4 {
            return Err(MmioError::BadRegister { offset, size });
        }
        self.write_reg(offset, value).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_collected() {
        let mut u = Pl011::default();
        for b in b"hi\r" {
            assert_ne!(u.write_reg(DR, *b as u64).unwrap(), UartOutput::LineReady);
        }
        assert_eq!(u.write_reg(DR, b'\n' as u64), Ok(UartOutput::LineReady));
        assert_eq!(u.line(), b"hi");
        assert_eq!(u.unfinished_line(), None, "a finished line is not pending");
        assert_eq!(u.put(b'x'), UartOutput::Buffered);
        assert_eq!(u.unfinished_line(), Some(&b"x"[..]));
        assert_eq!(u.line(), b"x", "a new line starts after a completed one");
    }

    #[test]
    fn long_lines_are_split_not_dropped() {
        let mut u = Pl011::default();
        let mut ready = 0;
        for _ in 0..LINE_MAX + 5 {
            if u.put(b'a') == UartOutput::LineReady {
                assert_eq!(u.line().len(), LINE_MAX);
                ready += 1;
            }
        }
        assert_eq!(ready, 1);
    }

    #[test]
    fn id_and_flag_registers() {
        let mut u = Pl011::default();
        let ids: Vec<u64> = (0..4).map(|i| u.read(0xfe0 + 4 * i, 4).unwrap()).collect();
        assert_eq!(ids, vec![0x11, 0x10, 0x14, 0x00]);
        assert_eq!(u.read(0xff0, 4), Ok(0x0d));
        assert_eq!(u.read(FR, 4), Ok(FR_TXFE | FR_RXFE));
        assert_eq!(u.read(0x800, 4), Err(MmioError::BadRegister { offset: 0x800, size: 4 }));
        assert_eq!(u.read(DR, 8), Err(MmioError::BadRegister { offset: 0, size: 8 }));
        u.write(IBRD, 4, 0x1_0027).unwrap();
        assert_eq!(u.read(IBRD, 4), Ok(0x27));
        assert_eq!(u.claims(GUEST_UART_BASE + 0x18), Some(0x18));
        assert_eq!(u.claims(GUEST_UART_BASE + 0x1000), None);
    }
}
