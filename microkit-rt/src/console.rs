//! The PD's console: a PL011 UART when the PD maps one, else `seL4_DebugPutChar` on printing
//! kernels. Release kernels print nothing, so a PD that must be heard there maps the UART.
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::kernel::PRINTING;
use crate::syscall::debug_put_char;

static UART: AtomicUsize = AtomicUsize::new(0);

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
    UART.store(vaddr, Ordering::Relaxed);
}

fn put_byte(c: u8) {
    let base = UART.load(Ordering::Relaxed);
    if base != 0 {
        // SAFETY: `set_console_uart`'s contract: `base` maps a PL011 for the PD's lifetime.
        unsafe {
            while core::ptr::read_volatile((base + UARTFR) as *const u32) & UARTFR_TXFF != 0 {}
            core::ptr::write_volatile((base + UARTDR) as *mut u32, c as u32);
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
    // SAFETY: `set_console_uart`'s contract: `base` maps a PL011 for the PD's lifetime.
    unsafe {
        if core::ptr::read_volatile((base + UARTFR) as *const u32) & UARTFR_RXFE != 0 {
            return None;
        }
        Some(core::ptr::read_volatile((base + UARTDR) as *const u32) as u8)
    }
}

/// Makes the console UART interrupt on received input (the PD must hold its IRQ).
pub fn enable_rx_interrupt() {
    let base = UART.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: as for `read_byte`; read-modify-write of the interrupt mask, then clear any stale
    // receive interrupts.
    unsafe {
        let imsc = (base + UARTIMSC) as *mut u32;
        core::ptr::write_volatile(imsc, core::ptr::read_volatile(imsc) | UART_RX_INTS);
        core::ptr::write_volatile((base + UARTICR) as *mut u32, UART_RX_INTS);
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
