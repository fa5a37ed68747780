//! The i.MX General Purpose Timer (i.MX8M reference manuals, "General Purpose Timer"): the
//! VMM's wake-up timer on boards whose kernel does not export the physical timer to user level.
//! Free-running on the 32 kHz reference clock, output compare 1 raising the interrupt.
use core::sync::atomic::{AtomicUsize, Ordering};

static BASE: AtomicUsize = AtomicUsize::new(0);

const CR: usize = 0x00;
const PR: usize = 0x04;
const SR: usize = 0x08;
const IR: usize = 0x0c;
const OCR1: usize = 0x10;
const CNT: usize = 0x24;
/// CR: EN, ENMOD (counter reset on enable), WAITEN (runs while the core waits), CLKSRC = 100
/// (ipg_clk_32k), FRR (free-run: compares do not reset the counter).
const CR_RUN: u32 = 1 | (1 << 1) | (1 << 3) | (0b100 << 6) | (1 << 9);
/// CR.SWR: software reset, self-clearing.
const CR_SWR: u32 = 1 << 15;
/// SR/IR bit of output compare 1.
const OF1: u32 = 1 << 0;
/// Every SR status bit (write one to clear).
const SR_ALL: u32 = 0x3f;
/// The nearest compare the alarm sets, in counts (two register accesses must fit in it).
const MIN_TICKS: u32 = 2;
/// The counter's rate with CLKSRC = ipg_clk_32k and no prescaler.
pub const GPT_HZ: u64 = 32_768;

/// # Safety
/// `BASE` holds a device mapping of the GPT (`use_imx_gpt`'s contract).
unsafe fn write(off: usize, v: u32) {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: the caller's contract.
    unsafe { core::ptr::write_volatile((base + off) as *mut u32, v) }
}

/// # Safety
/// As [`write`].
unsafe fn read(off: usize) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: the caller's contract.
    unsafe { core::ptr::read_volatile((base + off) as *const u32) }
}

/// Resets the GPT mapped at `vaddr` and starts it free-running at [`GPT_HZ`], interrupt off.
///
/// # Safety
/// `vaddr` must be a device mapping of an i.MX GPT's registers that stays mapped for the PD's
/// lifetime, and the timer must belong to this PD alone.
pub unsafe fn use_imx_gpt(vaddr: usize) {
    BASE.store(vaddr, Ordering::Relaxed);
    // SAFETY: `vaddr` is the GPT (the caller's contract).
    unsafe {
        write(CR, 0);
        write(IR, 0);
        write(CR, CR_SWR);
        // SWR clears itself once the reset is done (a few cycles of the ipg clock).
        let mut spins = 0u32;
        while read(CR) & CR_SWR != 0 && spins < 1_000_000 {
            spins += 1;
        }
        write(PR, 0);
        write(SR, SR_ALL);
        write(CR, CR_RUN);
    }
}

/// Raises the GPT's interrupt `ticks` counts from now, or turns it off with `None`.
pub fn set_gpt_alarm(ticks: Option<u32>) {
    if BASE.load(Ordering::Relaxed) == 0 {
        return;
    }
    // SAFETY: BASE was set by use_imx_gpt, whose caller vouched for the mapping.
    unsafe {
        match ticks {
            Some(t) => {
                // The compare is an equality with the running count: a target the count has
                // passed by the time it is written comes round again only after 2^32 counts
                // (36 hours). So the target is set first and the count read after it: only
                // if the count is still short of the target is the match sure to come
                // (a spurious early interrupt is harmless: the VMM re-checks its deadlines).
                write(IR, OF1);
                write(SR, OF1);
                let mut ahead = t.max(MIN_TICKS);
                loop {
                    let target = read(CNT).wrapping_add(ahead);
                    write(OCR1, target);
                    if (target.wrapping_sub(read(CNT)) as i32) > 0 {
                        break;
                    }
                    ahead = MIN_TICKS;
                }
            }
            None => {
                write(IR, 0);
                write(SR, OF1);
            }
        }
    }
}

/// Clears the GPT's compare flag: its level interrupt drops (call before acking the IRQ).
pub fn ack_gpt() {
    if BASE.load(Ordering::Relaxed) != 0 {
        // SAFETY: as in set_gpt_alarm.
        unsafe { write(SR, OF1) }
    }
}
