//! The guest's console: the VMM's emulated PL011. Every register access is one VM exit (two per
//! byte: the flag poll and the data write), so the guest prints only a handful of short lines.
//! The VMM buffers a line until `\n` and prints it prefixed with `guest: `; it ignores `\r`, so
//! none is sent.
use core::fmt;

use guest::hw::pl011;

use crate::arch::Mmio;

/// Flag polls before a byte is written anyway (an emulated FIFO should never be full).
const TXFF_POLLS: u32 = 1000;

fn put_byte(byte: u8) {
    for _ in 0..TXFF_POLLS {
        if Mmio::UART.read32(pl011::UARTFR) & pl011::UARTFR_TXFF == 0 {
            break;
        }
    }
    Mmio::UART.write32(pl011::UARTDR, u32::from(byte));
}

/// `core::fmt` sink for [`println!`](crate::println).
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(put_byte);
        Ok(())
    }
}

/// Prints formatted text followed by a newline on the guest's console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}
