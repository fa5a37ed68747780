//! An emulated PL011 (Arm PrimeCell UART r1p5): the guest's console.
//!
//! Transmission is instantaneous (the TX FIFO is always empty), received bytes wait in a FIFO
//! the VMM fills from the board's UART, and the interrupt line follows the masked status as on
//! the real device: level-triggered, high while any unmasked status bit is set.
use crate::abi::{GUEST_UART_BASE, PL011_PCELL_ID, PL011_PERIPH_ID};
use crate::mmio::{MmioDevice, MmioError};

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const FR_RXFE: u64 = 1 << 4;
const FR_RXFF: u64 = 1 << 6;
const FR_TXFE: u64 = 1 << 7;
/// RIS/IMSC bits: receive, transmit, receive timeout.
const INT_RX: u64 = 1 << 4;
const INT_TX: u64 = 1 << 5;
const INT_RT: u64 = 1 << 6;
const RX_FIFO: usize = 32;

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartOutput {
    Nothing,
    /// The guest transmitted this byte.
    Byte(u8),
}

/// The emulated PL011.
#[derive(Debug)]
pub struct Pl011 {
    rx: heapless::Deque<u8, RX_FIFO>,
    ilpr: u64,
    ibrd: u64,
    fbrd: u64,
    lcr_h: u64,
    cr: u64,
    ifls: u64,
    imsc: u64,
    dmacr: u64,
    /// TX interrupt condition, cleared by ICR until the next transmission (as when the FIFO
    /// stays above its trigger level).
    tx_pending: bool,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self {
            rx: heapless::Deque::new(),
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: 0x300,
            ifls: 0x12,
            imsc: 0,
            dmacr: 0,
            tx_pending: true,
        }
    }
}

impl Pl011 {
    /// Raw interrupt status.
    fn ris(&self) -> u64 {
        let rx = if self.rx.is_empty() {
            0
        } else {
            INT_RX | INT_RT
        };
        rx | if self.tx_pending { INT_TX } else { 0 }
    }

    /// The interrupt line: high while an unmasked status bit is set.
    pub fn irq_level(&self) -> bool {
        self.ris() & self.imsc != 0
    }

    /// A byte from the outside world for the guest; false (dropped) when the FIFO is full, as
    /// an overrun on the real device.
    pub fn push_input(&mut self, byte: u8) -> bool {
        self.rx.push_back(byte).is_ok()
    }

    pub fn rx_room(&self) -> usize {
        RX_FIFO - self.rx.len()
    }

    /// Writes register `offset`; a DR write says which byte the guest sent.
    pub fn write_reg(&mut self, offset: u64, value: u64) -> Result<UartOutput, MmioError> {
        match offset {
            DR => {
                self.tx_pending = true;
                return Ok(UartOutput::Byte(value as u8));
            }
            RSR => {}
            ICR => {
                if value & INT_TX != 0 {
                    self.tx_pending = false;
                }
            }
            ILPR => self.ilpr = value & 0xff,
            IBRD => self.ibrd = value & 0xffff,
            FBRD => self.fbrd = value & 0x3f,
            LCR_H => self.lcr_h = value & 0xff,
            CR => self.cr = value & 0xffff,
            IFLS => self.ifls = value & 0x3f,
            IMSC => {
                self.imsc = value & 0x7ff;
                // Unmasking TX with an empty FIFO raises the interrupt at once.
                if value & INT_TX != 0 {
                    self.tx_pending = true;
                }
            }
            DMACR => self.dmacr = value & 0x7,
            _ => return Err(MmioError::BadRegister { offset, size: 4 }),
        }
        Ok(UartOutput::Nothing)
    }

    /// Reads register `offset`.
    pub fn read_reg(&mut self, offset: u64) -> Result<u64, MmioError> {
        Ok(match offset {
            DR => self.rx.pop_front().map_or(0, u64::from),
            RSR => 0,
            FR => {
                let rx = if self.rx.is_empty() { FR_RXFE } else { 0 };
                let full = if self.rx.len() == RX_FIFO { FR_RXFF } else { 0 };
                FR_TXFE | rx | full
            }
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris(),
            MIS => self.ris() & self.imsc,
            DMACR => self.dmacr,
            0xfe0..=0xfec if offset.is_multiple_of(4) => {
                PL011_PERIPH_ID[((offset - 0xfe0) / 4) as usize] as u64
            }
            0xff0..=0xffc if offset.is_multiple_of(4) => {
                PL011_PCELL_ID[((offset - 0xff0) / 4) as usize] as u64
            }
            _ => return Err(MmioError::BadRegister { offset, size: 4 }),
        })
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
        self.read_reg(offset)
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
    fn transmit_reports_bytes() {
        let mut u = Pl011::default();
        assert_eq!(u.write_reg(DR, b'h' as u64), Ok(UartOutput::Byte(b'h')));
        assert_eq!(u.write_reg(IBRD, 0x1_0027), Ok(UartOutput::Nothing));
        assert_eq!(u.read(IBRD, 4), Ok(0x27));
    }

    #[test]
    fn receive_fifo_and_flags() {
        let mut u = Pl011::default();
        assert_eq!(u.read(FR, 4), Ok(FR_TXFE | FR_RXFE));
        assert!(u.push_input(b'a') && u.push_input(b'b'));
        assert_eq!(u.read(FR, 4), Ok(FR_TXFE));
        assert_eq!(u.read(DR, 4), Ok(b'a' as u64));
        assert_eq!(u.read(DR, 4), Ok(b'b' as u64));
        assert_eq!(u.read(DR, 4), Ok(0), "empty FIFO reads 0");
        for _ in 0..RX_FIFO {
            assert!(u.push_input(b'x'));
        }
        assert!(!u.push_input(b'y'), "overrun drops");
        assert_eq!(u.read(FR, 4), Ok(FR_TXFE | FR_RXFF));
        assert_eq!(u.rx_room(), 0);
    }

    #[test]
    fn interrupt_line_follows_masked_status() {
        let mut u = Pl011::default();
        assert!(!u.irq_level(), "everything masked at reset");
        u.write(IMSC, 4, INT_RX | INT_RT).unwrap();
        assert!(!u.irq_level());
        u.push_input(b'z');
        assert!(u.irq_level());
        assert_eq!(u.read(MIS, 4), Ok(INT_RX | INT_RT));
        u.read(DR, 4).unwrap();
        assert!(!u.irq_level(), "drained");
        u.write(IMSC, 4, INT_TX).unwrap();
        assert!(u.irq_level(), "TX FIFO empty and unmasked");
        u.write(ICR, 4, INT_TX).unwrap();
        assert!(!u.irq_level());
        u.write(DR, 4, b'q' as u64).unwrap();
        assert!(u.irq_level(), "a transmission raises TX again");
    }

    #[test]
    fn id_registers_and_bad_accesses() {
        let mut u = Pl011::default();
        let ids: Vec<u64> = (0..4).map(|i| u.read(0xfe0 + 4 * i, 4).unwrap()).collect();
        assert_eq!(ids, vec![0x11, 0x10, 0x14, 0x00]);
        assert_eq!(u.read(0xff0, 4), Ok(0x0d));
        assert_eq!(
            u.read(0x800, 4),
            Err(MmioError::BadRegister {
                offset: 0x800,
                size: 4
            })
        );
        assert_eq!(
            u.read(DR, 8),
            Err(MmioError::BadRegister { offset: 0, size: 8 })
        );
        assert_eq!(u.claims(GUEST_UART_BASE + 0x18), Some(0x18));
        assert_eq!(u.claims(GUEST_UART_BASE + 0x1000), None);
    }
}
