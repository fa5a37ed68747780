//! The tools' aarch64 code: FP/SIMD state loaded, carried across a system call and stored in
//! one asm block; a signal handler that clobbers it; the virtual counter; device loads.

use core::arch::{asm, naked_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::fpstate::{FpState, FPCR_MASK, FPSR_MASK};

/// The system call made between loading and storing the FP state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `sched_yield()`: lets the kernel switch to another process.
    Yield,
    /// `getppid()`: a plain trip through the kernel.
    Getppid,
    /// `kill(pid, SIGUSR1)` to this process: [`on_sigusr1`] runs on the way back.
    SignalSelf { pid: libc::pid_t },
}

impl Call {
    /// x8 (number), x0 and x1 of the system call.
    fn regs(self) -> (u64, u64, u64) {
        match self {
            Self::Yield => (libc::SYS_sched_yield as u64, 0, 0),
            Self::Getppid => (libc::SYS_getppid as u64, 0, 0),
            // kill(2) takes the pid in x0 as an int: sign-extension does not matter to it.
            Self::SignalSelf { pid } => (libc::SYS_kill as u64, pid as u64, libc::SIGUSR1 as u64),
        }
    }
}

/// Loads `load` into V0–V31, FPSR and FPCR, spins `spin` times, makes `call`, spins again and
/// stores V0–V31, FPSR and FPCR: all in one asm block, so nothing but the kernel (and whatever
/// runs under it) touches the registers in between. FPCR and FPSR are put back as they were
/// before the block returns.
pub fn load_call_store(load: &FpState, call: Call, spin: u64) -> FpState {
    let mut stored = FpState::ZERO;
    let (nr, a0, a1) = call.regs();
    let (fpsr, fpcr): (u64, u64);
    // SAFETY: the block reads `load` and writes `stored`, both live and 16-byte aligned
    // FpStates (V0–V31 at offsets 0–511); it declares every vector register and x0 as
    // clobbered; FPCR, which the compiler assumes unchanged, is restored from `saved` (FPSR may
    // change). The system call is sched_yield, getppid or kill(self, SIGUSR1), whose handler
    // keeps to async-signal-safe work.
    unsafe {
        asm!(
            "mrs {saved}, fpcr",
            "ldp q0, q1, [{src}, #0]",
            "ldp q2, q3, [{src}, #32]",
            "ldp q4, q5, [{src}, #64]",
            "ldp q6, q7, [{src}, #96]",
            "ldp q8, q9, [{src}, #128]",
            "ldp q10, q11, [{src}, #160]",
            "ldp q12, q13, [{src}, #192]",
            "ldp q14, q15, [{src}, #224]",
            "ldp q16, q17, [{src}, #256]",
            "ldp q18, q19, [{src}, #288]",
            "ldp q20, q21, [{src}, #320]",
            "ldp q22, q23, [{src}, #352]",
            "ldp q24, q25, [{src}, #384]",
            "ldp q26, q27, [{src}, #416]",
            "ldp q28, q29, [{src}, #448]",
            "ldp q30, q31, [{src}, #480]",
            "msr fpsr, {fpsr_in}",
            "msr fpcr, {fpcr_in}",
            // Spin: room for a timer interrupt or a signal from the parent to land here.
            "mov {n}, {spin}",
            "2: subs {n}, {n}, #1",
            "b.hi 2b",
            "svc #0",
            "mov {n}, {spin}",
            "3: subs {n}, {n}, #1",
            "b.hi 3b",
            "stp q0, q1, [{dst}, #0]",
            "stp q2, q3, [{dst}, #32]",
            "stp q4, q5, [{dst}, #64]",
            "stp q6, q7, [{dst}, #96]",
            "stp q8, q9, [{dst}, #128]",
            "stp q10, q11, [{dst}, #160]",
            "stp q12, q13, [{dst}, #192]",
            "stp q14, q15, [{dst}, #224]",
            "stp q16, q17, [{dst}, #256]",
            "stp q18, q19, [{dst}, #288]",
            "stp q20, q21, [{dst}, #320]",
            "stp q22, q23, [{dst}, #352]",
            "stp q24, q25, [{dst}, #384]",
            "stp q26, q27, [{dst}, #416]",
            "stp q28, q29, [{dst}, #448]",
            "stp q30, q31, [{dst}, #480]",
            "mrs {fpsr_out}, fpsr",
            "mrs {fpcr_out}, fpcr",
            "msr fpcr, {saved}",
            "msr fpsr, xzr",
            src = in(reg) load,
            dst = in(reg) &mut stored,
            fpsr_in = in(reg) load.fpsr,
            fpcr_in = in(reg) load.fpcr,
            spin = in(reg) spin,
            saved = out(reg) _,
            n = out(reg) _,
            fpsr_out = lateout(reg) fpsr,
            fpcr_out = lateout(reg) fpcr,
            in("x8") nr,
            inout("x0") a0 => _,
            in("x1") a1,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _,
            out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack),
        );
    }
    stored.fpsr = fpsr;
    stored.fpcr = fpcr;
    stored
}

/// SIGUSR1 handlers run in this process.
static SIGNALS: AtomicU64 = AtomicU64::new(0);

/// How many times [`on_sigusr1`] has run in this process.
pub fn signals() -> u64 {
    SIGNALS.load(Ordering::Relaxed)
}

/// fpstress's SIGUSR1 handler: counts itself and overwrites every V register, FPSR and FPCR,
/// and returns with them overwritten, so the state the signal interrupted is back only if the
/// kernel restores it from the signal frame on sigreturn.
///
/// Written as a naked function because it breaks the procedure-call standard on purpose (it
/// keeps neither D8–D15 nor FPCR): its only caller is the sigreturn trampoline, which goes
/// straight back to the kernel. SIGUSR1 is blocked while it runs, so the plain increment of
/// the counter is not interrupted by another one.
#[unsafe(naked)]
pub extern "C" fn on_sigusr1(_signal: libc::c_int) {
    naked_asm!(
        "adrp x9, {count}",
        "ldr x10, [x9, :lo12:{count}]",
        "add x10, x10, #1",
        "str x10, [x9, :lo12:{count}]",
        "movi v0.16b, #0xde", "movi v1.16b, #0xad", "movi v2.16b, #0xbe", "movi v3.16b, #0xef",
        "movi v4.16b, #0xde", "movi v5.16b, #0xad", "movi v6.16b, #0xbe", "movi v7.16b, #0xef",
        "movi v8.16b, #0xde", "movi v9.16b, #0xad", "movi v10.16b, #0xbe", "movi v11.16b, #0xef",
        "movi v12.16b, #0xde", "movi v13.16b, #0xad", "movi v14.16b, #0xbe", "movi v15.16b, #0xef",
        "movi v16.16b, #0xde", "movi v17.16b, #0xad", "movi v18.16b, #0xbe", "movi v19.16b, #0xef",
        "movi v20.16b, #0xde", "movi v21.16b, #0xad", "movi v22.16b, #0xbe", "movi v23.16b, #0xef",
        "movi v24.16b, #0xde", "movi v25.16b, #0xad", "movi v26.16b, #0xbe", "movi v27.16b, #0xef",
        "movi v28.16b, #0xde", "movi v29.16b, #0xad", "movi v30.16b, #0xbe", "movi v31.16b, #0xef",
        // Some FP work too, so the state is live in the FP unit and FPSR collects flags.
        "fadd v0.4s, v1.4s, v2.4s",
        "fmul v3.2d, v4.2d, v5.2d",
        "ldr x10, ={fpcr}",
        "msr fpcr, x10",
        "ldr x10, ={fpsr}",
        "msr fpsr, x10",
        "ret",
        count = sym SIGNALS,
        fpcr = const FPCR_MASK,
        fpsr = const FPSR_MASK,
    )
}

/// The virtual counter, CNTVCT_EL0, read after an ISB so that it is not read early.
#[inline(always)]
pub fn cntvct() -> u64 {
    let ticks: u64;
    // SAFETY: reads a system register Linux lets EL0 read (CNTKCTL_EL1.EL0VCTEN); no memory.
    unsafe { asm!("isb", "mrs {t}, cntvct_el0", t = out(reg) ticks, options(nomem, nostack)) };
    ticks
}

/// The counter frequency in Hz, CNTFRQ_EL0.
pub fn cntfrq() -> u64 {
    let freq: u64;
    // SAFETY: reads a system register EL0 may read; no memory.
    unsafe { asm!("mrs {f}, cntfrq_el0", f = out(reg) freq, options(nomem, nostack)) };
    freq
}

/// `getppid()` as a bare `svc`, the cheapest round trip through the kernel.
#[inline(always)]
pub fn getppid() -> u64 {
    let ppid: u64;
    // SAFETY: getppid has no arguments and no effect; the kernel preserves all registers but x0.
    unsafe {
        asm!("svc #0", in("x8") libc::SYS_getppid as u64, lateout("x0") ppid, options(nostack))
    };
    ppid
}

/// One 32-bit load from `addr` with a plain `ldr w` (no writeback, so a trapped access is
/// described fully by its ESR and an emulator can decode it).
///
/// # Safety
/// `addr` must be 4-byte aligned and mapped readable in this process; reading it must have no
/// side effects the caller has not allowed for.
#[inline(always)]
pub unsafe fn read32(addr: *const u32) -> u32 {
    let value: u32;
    // SAFETY: the caller guarantees that `addr` is mapped, aligned and safe to read.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack, readonly))
    };
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpstate::{expected, first_mismatch};

    fn fpcr() -> u64 {
        let fpcr: u64;
        // SAFETY: reads FPCR; no memory.
        unsafe { asm!("mrs {f}, fpcr", f = out(reg) fpcr, options(nomem, nostack)) };
        fpcr
    }

    #[test]
    fn state_survives_a_system_call_and_fpcr_is_put_back() {
        let before = fpcr();
        for (generation, call) in [(1, Call::Getppid), (2, Call::Yield), (3, Call::Getppid)] {
            let load = expected(std::process::id(), generation);
            let stored = load_call_store(&load, call, 10);
            assert_eq!(first_mismatch(&load, &stored), None, "{call:?}");
            assert_eq!(fpcr(), before);
        }
    }

    #[test]
    fn counter_runs() {
        assert_ne!(cntfrq(), 0);
        let a = cntvct();
        assert_eq!(getppid(), u64::from(std::os::unix::process::parent_id()));
        let b = cntvct();
        assert!(b >= a);
    }
}
