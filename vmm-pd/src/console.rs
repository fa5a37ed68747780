//! The board console shared by the VMM's own lines and the guest's output: guest bytes pass
//! through as they come (so an interactive shell works), each guest line prefixed with
//! `guest: `; a VMM line first ends a guest line left open, so the two never share a line.
use core::sync::atomic::{AtomicBool, Ordering};

static GUEST_MID_LINE: AtomicBool = AtomicBool::new(false);

/// One byte of guest output.
pub fn guest_byte(b: u8) {
    if !GUEST_MID_LINE.swap(b != b'\n', Ordering::Relaxed) && b != b'\n' {
        microkit_rt::write_str("guest: ");
    }
    match b {
        b'\n' => microkit_rt::write_str("\n"),
        b'\r' | 0 => {}
        b => microkit_rt::write_bytes(&[b]),
    }
}

/// The guest has written part of a line.
pub fn guest_mid_line() -> bool {
    GUEST_MID_LINE.load(Ordering::Relaxed)
}

/// Ends an open guest line before the VMM speaks.
pub fn break_guest_line() {
    if GUEST_MID_LINE.swap(false, Ordering::Relaxed) {
        microkit_rt::write_str("\n");
    }
}

/// `println!` for the VMM's own lines.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        $crate::console::break_guest_line();
        microkit_rt::println!($($arg)*);
    }};
}
