//! ELF entry, the symbols the Microkit tool patches, and the panic handler.

use crate::handler::Handler;

// The tool sets SP to the top of the PD's stack and jumps to the ELF entry, `_start`.
#[cfg(not(test))]
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    ".type _start, %function",
    "_start:",
    "    b __microkit_rt_pd_main",
);

// Symbols every PD ELF must have, with their C sizes: the tool patches them and panics when one
// is missing. `static mut` + `#[used]` keep them; `.data` because zero-initialised statics would
// otherwise land in `.bss`.
#[no_mangle]
#[used]
#[link_section = ".data"]
static mut microkit_name: [u8; 64] = [0; 64];
#[no_mangle]
#[used]
#[link_section = ".data"]
static mut microkit_passive: u8 = 0;
#[no_mangle]
#[used]
#[link_section = ".data"]
static mut microkit_irqs: u64 = 0;
#[no_mangle]
#[used]
#[link_section = ".data"]
static mut microkit_notifications: u64 = 0;
#[no_mangle]
#[used]
#[link_section = ".data"]
static mut microkit_pps: u64 = 0;
#[no_mangle]
#[used]
#[link_section = ".data"]
static mut microkit_ioports: u64 = 0;

pub(crate) fn passive() -> bool {
    // SAFETY: patched by the tool before the PD starts, never written at run time.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(microkit_passive)) != 0 }
}

pub(crate) fn irqs() -> u64 {
    // SAFETY: as for `passive`.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(microkit_irqs)) }
}

/// The PD's name from the SDF (`microkit_name`).
pub fn pd_name() -> &'static str {
    // SAFETY: as for `passive`; the array is only read from here on.
    let name: &'static [u8; 64] = unsafe { &*core::ptr::addr_of!(microkit_name) };
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    core::str::from_utf8(&name[..len]).unwrap_or("?")
}

/// Runs the PD's event loop with `handler`; never returns.
pub fn run_main<H: Handler>(handler: H) -> ! {
    crate::handler::event_loop(handler, passive(), irqs())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::println!("{}: panic: {}", pd_name(), info);
    loop {
        // SAFETY: `brk` raises a debug exception; the monitor reports it and stops this thread.
        unsafe { core::arch::asm!("brk #1") };
    }
}
