//! The PD's console: a board UART when the PD maps one (an Arm PL011, or the i.MX UART of the
//! i.MX8M boards), else `seL4_DebugPutChar` on printing kernels. Release kernels print nothing,
//! so a PD that must be heard there maps the UART.
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::kernel::PRINTING;
use crate::syscall::debug_put_char;

static UART: AtomicUsize = AtomicUsize::new(0);
/// 0: PL011, 1: i.MX UART.
static KIND: AtomicUsize = AtomicUsize::new(0);

/// The kind of UART the console drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    Pl011,
    /// The i.MX UART (i.MX8M reference manuals, "UART"): UTXD/URXD, UTS, USR2, UCR1.
    Imx,
}

// i.MX UART registers and bits.
const IMX_URXD: usize = 0x00;
const IMX_UTXD: usize = 0x40;
const IMX_UCR1: usize = 0x80;
const IMX_USR2: usize = 0x98;
const IMX_UTS: usize = 0xb4;
/// UTS.TXFULL: the transmit FIFO is full.
const IMX_UTS_TXFULL: u32 = 1 << 4;
/// USR2.RDR: receive data ready.
const IMX_USR2_RDR: u32 = 1 << 0;
/// UCR1.RRDYEN: interrupt when the receiver has data.
const IMX_UCR1_RRDYEN: u32 = 1 << 9;

const UARTDR: usize = 0x000;
const UARTFR: usize = 0x018;
const UARTIMSC: usize = 0x038;
const UARTICR: usize = 0x044;
const UARTFR_TXFF: u32 = 1 << 5;
const UARTFR_RXFE: u32 = 1 << 4;
/// Receive and receive-timeout interrupts.
const UART_RX_INTS: u32 = (1 << 4) | (1 << 6);

/// Sends console output to the PL011 mapped at `vaddr`.
///
/// # Safety
/// `vaddr` must be a device mapping of a PL011's registers that stays mapped for the PD's
/// lifetime.
pub unsafe fn set_console_uart(vaddr: usize) {
    // SAFETY: the caller's contract, passed on.
    unsafe { set_console_uart_of(vaddr, UartKind::Pl011) }
}

/// Sends console output to the UART of `kind` mapped at `vaddr`.
///
/// # Safety
/// `vaddr` must be a device mapping of that UART's registers that stays mapped for the PD's
/// lifetime.
pub unsafe fn set_console_uart_of(vaddr: usize, kind: UartKind) {
    KIND.store(kind as usize, Ordering::Relaxed);
    UART.store(vaddr, Ordering::Relaxed);
}

fn kind() -> UartKind {
    if KIND.load(Ordering::Relaxed) == UartKind::Imx as usize {
        UartKind::Imx
    } else {
        UartKind::Pl011
    }
}

/// A 32-bit register read of the console UART.
///
/// # Safety
/// `base` is the console UART's mapping (`set_console_uart_of`'s contract).
unsafe fn reg(base: usize, off: usize) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::read_volatile((base + off) as *const u32) }
}

/// # Safety
/// As for [`reg`].
unsafe fn set_reg(base: usize, off: usize, v: u32) {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::write_volatile((base + off) as *mut u32, v) }
}

fn put_byte(c: u8) {
    let base = UART.load(Ordering::Relaxed);
    if base != 0 {
        // SAFETY: `set_console_uart_of`'s contract: `base` maps that UART for the PD's lifetime.
        unsafe {
            match kind() {
                UartKind::Pl011 => {
                    while reg(base, UARTFR) & UARTFR_TXFF != 0 {}
                    set_reg(base, UARTDR, c as u32);
                }
                UartKind::Imx => {
                    while reg(base, IMX_UTS) & IMX_UTS_TXFULL != 0 {}
                    set_reg(base, IMX_UTXD, c as u32);
                }
            }
        }
    } else if PRINTING {
        debug_put_char(c);
    }
}

/// A received byte from the console UART, if one is waiting (None without a UART).
pub fn read_byte() -> Option<u8> {
    let base = UART.load(Ordering::Relaxed);
    if base == 0 {
        return None;
    }
    // SAFETY: `set_console_uart_of`'s contract: `base` maps that UART for the PD's lifetime.
    unsafe {
        match kind() {
            UartKind::Pl011 => {
                if reg(base, UARTFR) & UARTFR_RXFE != 0 {
                    return None;
                }
                Some(reg(base, UARTDR) as u8)
            }
            UartKind::Imx => {
                if reg(base, IMX_USR2) & IMX_USR2_RDR == 0 {
                    return None;
                }
                Some(reg(base, IMX_URXD) as u8)
            }
        }
    }
}

/// Makes the console UART interrupt on received input (the PD must hold its IRQ).
pub fn enable_rx_interrupt() {
    let base = UART.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: as for `read_byte`; read-modify-write of the interrupt enables (PL011: then clear
    // any stale receive interrupts; i.MX: the receive-ready interrupt clears with the data).
    unsafe {
        match kind() {
            UartKind::Pl011 => {
                set_reg(base, UARTIMSC, reg(base, UARTIMSC) | UART_RX_INTS);
                set_reg(base, UARTICR, UART_RX_INTS);
            }
            UartKind::Imx => set_reg(base, IMX_UCR1, reg(base, IMX_UCR1) | IMX_UCR1_RRDYEN),
        }
    }
}

/// Writes bytes to the console, turning `\n` into `\r\n` for serial terminals.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put_byte(b'\r');
        }
        put_byte(b);
    }
}

/// Writes a string to the console.
pub fn write_str(s: &str) {
    write_bytes(s.as_bytes());
}

/// `core::fmt` sink for [`println!`](crate::println).
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}
