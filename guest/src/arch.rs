//! The guest's instructions that leave the VM or touch devices: SMC and HVC calls, MMIO, IRQ
//! masking, and the two FP asm blocks of phase 2. Everything here is a safe function around one
//! asm block; the callers are plain Rust.

use core::arch::asm;

use guest::hw::{gicc, gicd, gicr, pl011};
use guest::{ExitKind, FpState};
use lazyfp::abi::{self, hc};

/// Result registers x0–x3 of an SMC or HVC call.
pub type CallResult = [u64; 4];

/// `smc #0` with x0 = `function`, x1–x3 = `args`. The VMM (seL4 VCPUFault, EC 0x17) answers in
/// x0–x3 and resumes after the `smc`; x4–x7 are declared clobbered to be safe.
pub fn smc(function: u64, args: [u64; 3]) -> CallResult {
    let r: CallResult;
    // SAFETY: the SMC is trapped to seL4 (HCR_EL2.TSC) and answered by the VMM, which writes
    // only general-purpose registers (declared here) and no guest memory.
    unsafe {
        let (r0, r1, r2, r3);
        asm!(
            "smc #0",
            inout("x0") function => r0,
            inout("x1") args[0] => r1,
            inout("x2") args[1] => r2,
            inout("x3") args[2] => r3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            options(nostack),
        );
        r = [r0, r1, r2, r3];
    }
    r
}

/// `hvc #0` with x7 = `hc::HVC_X7`, x0 = `function`, x1–x3 = `args`: seL4 delivers it to the
/// VMM as an UnknownSyscall fault, answered in x0–x3 (the VMM's reply rewrites x0–x7).
pub fn hvc(function: u64, args: [u64; 3]) -> CallResult {
    let r: CallResult;
    // SAFETY: as for `smc`: only general-purpose registers change, all declared.
    unsafe {
        let (r0, r1, r2, r3);
        asm!(
            "hvc #0",
            inout("x0") function => r0,
            inout("x1") args[0] => r1,
            inout("x2") args[1] => r2,
            inout("x3") args[2] => r3,
            out("x4") _, out("x5") _, out("x6") _,
            inout("x7") hc::HVC_X7 => _,
            options(nostack),
        );
        r = [r0, r1, r2, r3];
    }
    r
}

/// `hvc #0` with x7 = `syscall` (an seL4 syscall number such as Recv, −7) and x0 = `x0`, x1 = 0:
/// seL4 runs the syscall from the vCPU thread. Returns x0 after the VMM resumed the guest.
pub fn hvc_sel4_syscall(syscall: i64, x0: u64) -> u64 {
    let r0;
    // SAFETY: the kernel runs the syscall on the vCPU thread's registers only (x0 = a capability
    // pointer, x1 = message info 0); the guest's memory is not involved and every register the
    // kernel or the VMM may write back (x0–x7) is declared clobbered.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") x0 => r0,
            inout("x1") 0u64 => _,
            out("x2") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _,
            inout("x7") syscall as u64 => _,
            options(nostack),
        );
    }
    r0
}

/// A device register frame in the identity-mapped device GiB (Device-nGnRnE).
#[derive(Clone, Copy)]
pub struct Mmio {
    base: usize,
    size: usize,
}

impl Mmio {
    /// The emulated PL011 console.
    pub const UART: Self = Self {
        base: abi::GUEST_UART_BASE as usize,
        size: pl011::FRAME,
    };
    /// A page where the VMM emulates nothing: accesses abort.
    pub const UNCLAIMED: Self = Self {
        base: abi::GUEST_UNCLAIMED_MMIO as usize,
        size: 0x1000,
    };
    /// The emulated GICv2 distributor.
    pub const GICD: Self = Self {
        base: abi::GUEST_GICD_BASE as usize,
        size: gicd::FRAME,
    };
    /// The emulated GICv3 distributor (64 KiB).
    pub const GICD_V3: Self = Self {
        base: abi::GUEST_GICD_BASE as usize,
        size: gicd::FRAME_V3,
    };
    /// The GIC virtual CPU interface (hardware GICV frame, no exits).
    pub const GICC: Self = Self {
        base: abi::GUEST_GICC_BASE as usize,
        size: gicc::FRAME,
    };

    /// The emulated GICv3 redistributor `index` (RD and SGI frame).
    pub const fn redistributor(index: usize) -> Self {
        Self {
            base: abi::GUEST_GICR_BASE as usize + index * gicr::STRIDE,
            size: gicr::STRIDE,
        }
    }

    /// Address of the register at `offset`, checked to lie within the frame.
    pub const fn addr(self, offset: usize, width: usize) -> usize {
        assert!(
            offset.is_multiple_of(width) && offset + width <= self.size,
            "MMIO offset outside frame"
        );
        self.base + offset
    }

    /// 32-bit read: one `ldr w, [xN]` (no writeback, so a stage-2 fault has ESR.ISV = 1).
    pub fn read32(self, offset: usize) -> u32 {
        let addr = self.addr(offset, 4);
        let v: u32;
        // SAFETY: `addr` is inside a device frame that the boot map covers with Device memory;
        // no Rust object lives there.
        unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack)) };
        v
    }

    /// 32-bit write: one `str w, [xN]`.
    pub fn write32(self, offset: usize, value: u32) {
        let addr = self.addr(offset, 4);
        // SAFETY: as for `read32`.
        unsafe { asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack)) };
    }

    /// 8-bit read: one `ldrb w, [xN]`.
    pub fn read8(self, offset: usize) -> u8 {
        let addr = self.addr(offset, 1);
        let v: u32;
        // SAFETY: as for `read32`.
        unsafe { asm!("ldrb {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack)) };
        v as u8
    }

    /// 8-bit write: one `strb w, [xN]`.
    pub fn write8(self, offset: usize, value: u8) {
        let addr = self.addr(offset, 1);
        // SAFETY: as for `read32`.
        unsafe {
            asm!("strb {v:w}, [{a}]", a = in(reg) addr, v = in(reg) u32::from(value), options(nostack))
        };
    }
}

/// Reads a GICv3 CPU interface register (the hardware's virtual one: no exit).
macro_rules! icc_read {
    ($(#[$doc:meta])* $name:ident, $reg:literal) => {
        $(#[$doc])*
        pub fn $name() -> u64 {
            let v: u64;
            // SAFETY: reads an ICC system register, which the guest's GICv3 has; reading
            // IAR1 acknowledges an interrupt, which is the point and touches no memory.
            unsafe { asm!(concat!("mrs {v}, ", $reg), v = out(reg) v, options(nostack)) };
            v
        }
    };
}

/// Writes a GICv3 CPU interface register, then `isb` so that later instructions see it.
macro_rules! icc_write {
    ($(#[$doc:meta])* $name:ident, $reg:literal) => {
        $(#[$doc])*
        pub fn $name(value: u64) {
            // SAFETY: writes an ICC system register of the guest's own GICv3 CPU interface
            // (or, for SGI1R, traps to the VMM); no memory is involved.
            unsafe { asm!(concat!("msr ", $reg, ", {v}"), "isb", v = in(reg) value, options(nostack)) };
        }
    };
}

icc_read!(
    /// ICC_SRE_EL1.
    icc_sre,
    "icc_sre_el1"
);
icc_write!(icc_sre_set, "icc_sre_el1");
icc_write!(
    /// ICC_PMR_EL1: the priority mask.
    icc_pmr_set,
    "icc_pmr_el1"
);
icc_write!(
    /// ICC_IGRPEN1_EL1: group 1 interrupts on.
    icc_igrpen1_set,
    "icc_igrpen1_el1"
);
icc_read!(
    /// ICC_IAR1_EL1: acknowledges the highest-priority pending group 1 interrupt.
    icc_iar1,
    "icc_iar1_el1"
);
icc_write!(
    /// ICC_EOIR1_EL1: ends the interrupt acknowledged with that IAR1 value.
    icc_eoir1_set,
    "icc_eoir1_el1"
);
icc_write!(
    /// ICC_SGI1R_EL1: sends a group 1 SGI (trapped to the VMM, EC 0x18).
    icc_sgi1r_set,
    "icc_sgi1r_el1"
);

/// Waits for an interrupt with IRQs masked, then unmasks them for an instant so that a pending
/// one is taken. (A pending interrupt wakes `wfi` even while masked, so no wake-up is lost
/// between the caller's check of its flag and the `wfi`.)
pub fn wait_for_irq() {
    // SAFETY: unmasking IRQs lets the vector table's IRQ entry run, which saves and restores
    // every register it uses; the `memory` effect (no `nomem`) makes the caller reload the
    // flags the handler writes.
    unsafe {
        asm!(
            "wfi",
            "msr daifclr, #2",
            "isb",
            "msr daifset, #2",
            options(nostack)
        )
    };
}

/// The exit instruction of a torture iteration, as the asm block below dispatches it.
struct TortureExit {
    /// 0 smc, 1 hvc, 2 MMIO read, 3 MMIO write, 4 wfi.
    selector: u64,
    /// x0 of the call (SMC and HVC).
    function: u64,
    /// Register address (MMIO).
    mmio: usize,
}

/// Value the torture's MMIO write stores into GICD_IPRIORITYR[40].
const TORTURE_PRIORITY: u64 = 0x80;
/// Interrupt whose priority byte the torture's MMIO write targets.
const TORTURE_PRIORITY_INTID: usize = 40;

impl TortureExit {
    const fn of(kind: ExitKind) -> Self {
        let uartfr = Mmio::UART.addr(pl011::UARTFR, 4);
        match kind {
            ExitKind::Smc => Self {
                selector: 0,
                function: hc::NOP,
                mmio: uartfr,
            },
            ExitKind::Hvc => Self {
                selector: 1,
                function: hc::NOP,
                mmio: uartfr,
            },
            ExitKind::NeonInterfere => Self {
                selector: 1,
                function: hc::NEON_INTERFERE,
                mmio: uartfr,
            },
            ExitKind::MmioRead => Self {
                selector: 2,
                function: 0,
                mmio: uartfr,
            },
            ExitKind::MmioWrite => Self {
                selector: 3,
                function: 0,
                mmio: Mmio::GICD.addr(gicd::IPRIORITYR + TORTURE_PRIORITY_INTID, 1),
            },
            ExitKind::Wfi => Self {
                selector: 4,
                function: 0,
                mmio: uartfr,
            },
            ExitKind::MmioReadGicd => Self {
                selector: 2,
                function: 0,
                mmio: Mmio::GICD.addr(gicd::TYPER, 4),
            },
        }
    }
}

/// One torture iteration in one asm block: loads Q0–Q31 from `load.q`, FPCR and FPSR from
/// `load`, provokes the exit `kind`, stores Q0–Q31 to `store.q` and FPSR/FPCR to `store`, and
/// resets FPCR and FPSR to 0 before returning to Rust.
pub fn torture_step(kind: ExitKind, load: &FpState, store: &mut FpState) {
    let exit = TortureExit::of(kind);
    let (fpsr, fpcr): (u64, u64);
    // SAFETY: `load.q` and `store.q` are 512-byte arrays of 16-byte-aligned u128 (the offsets
    // below stay inside them); every vector register and x0–x7 is declared clobbered; the MMIO
    // address is a device register (UARTFR, GICD_TYPER or GICD_IPRIORITYR byte 40); the calls only change
    // general-purpose registers; FPCR and FPSR are left at 0, Rust's default modes.
    unsafe {
        asm!(
            "ldp q0, q1, [{load}, #0]",
            "ldp q2, q3, [{load}, #32]",
            "ldp q4, q5, [{load}, #64]",
            "ldp q6, q7, [{load}, #96]",
            "ldp q8, q9, [{load}, #128]",
            "ldp q10, q11, [{load}, #160]",
            "ldp q12, q13, [{load}, #192]",
            "ldp q14, q15, [{load}, #224]",
            "ldp q16, q17, [{load}, #256]",
            "ldp q18, q19, [{load}, #288]",
            "ldp q20, q21, [{load}, #320]",
            "ldp q22, q23, [{load}, #352]",
            "ldp q24, q25, [{load}, #384]",
            "ldp q26, q27, [{load}, #416]",
            "ldp q28, q29, [{load}, #448]",
            "ldp q30, q31, [{load}, #480]",
            "msr fpcr, {fpcr_in}",
            "msr fpsr, {fpsr_in}",
            "cmp {sel}, #1",
            "b.lo 20f",
            "b.eq 21f",
            "cmp {sel}, #3",
            "b.lo 22f",
            "b.eq 23f",
            "b 24f",
            "20: smc #0",
            "b 29f",
            "21: hvc #0",
            "b 29f",
            "22: ldr w1, [{mmio}]",
            "b 29f",
            "23: strb w1, [{mmio}]",
            "b 29f",
            "24: wfi",
            "29:",
            "stp q0, q1, [{store}, #0]",
            "stp q2, q3, [{store}, #32]",
            "stp q4, q5, [{store}, #64]",
            "stp q6, q7, [{store}, #96]",
            "stp q8, q9, [{store}, #128]",
            "stp q10, q11, [{store}, #160]",
            "stp q12, q13, [{store}, #192]",
            "stp q14, q15, [{store}, #224]",
            "stp q16, q17, [{store}, #256]",
            "stp q18, q19, [{store}, #288]",
            "stp q20, q21, [{store}, #320]",
            "stp q22, q23, [{store}, #352]",
            "stp q24, q25, [{store}, #384]",
            "stp q26, q27, [{store}, #416]",
            "stp q28, q29, [{store}, #448]",
            "stp q30, q31, [{store}, #480]",
            "mrs {fpsr_out}, fpsr",
            "mrs {fpcr_out}, fpcr",
            "msr fpcr, xzr",
            "msr fpsr, xzr",
            load = in(reg) load.q.as_ptr(),
            store = in(reg) store.q.as_mut_ptr(),
            fpcr_in = in(reg) load.fpcr,
            fpsr_in = in(reg) load.fpsr,
            sel = in(reg) exit.selector,
            mmio = in(reg) exit.mmio,
            fpsr_out = lateout(reg) fpsr,
            fpcr_out = lateout(reg) fpcr,
            inout("x0") exit.function => _,
            inout("x1") TORTURE_PRIORITY => _,
            out("x2") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _,
            inout("x7") hc::HVC_X7 => _,
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
    store.fpsr = fpsr;
    store.fpcr = fpcr;
}

/// HVCs of the idle-FP block, NEON_INTERFERE and NOP alternating.
pub const IDLE_HVCS: u64 = 1000;
const _: () = assert!(IDLE_HVCS >= 2 && IDLE_HVCS.is_multiple_of(2));

/// Phase 2b in one asm block that uses general-purpose registers only: `hc::COUNTERS`, then
/// [`IDLE_HVCS`] HVCs alternating `hc::NEON_INTERFERE` and `hc::NOP`, then `hc::COUNTERS` again.
/// Returns fp_traps (x1 of COUNTERS) before and after.
pub fn idle_fp_hypercalls() -> (u64, u64) {
    let (before, after): (u64, u64);
    // SAFETY: HVCs only change general-purpose registers, all of x0–x7 are declared clobbered;
    // no memory is accessed.
    unsafe {
        asm!(
            "mov x0, {counters}",
            "mov x7, {tag}",
            "hvc #0",
            "mov {before}, x1",
            "2:",
            "mov x0, {interfere}",
            "mov x7, {tag}",
            "hvc #0",
            "mov x0, {nop}",
            "mov x7, {tag}",
            "hvc #0",
            "subs {pairs}, {pairs}, #1",
            "b.ne 2b",
            "mov x0, {counters}",
            "mov x7, {tag}",
            "hvc #0",
            "mov {after}, x1",
            counters = in(reg) hc::COUNTERS,
            interfere = in(reg) hc::NEON_INTERFERE,
            nop = in(reg) hc::NOP,
            tag = in(reg) hc::HVC_X7,
            pairs = inout(reg) IDLE_HVCS / 2 => _,
            before = out(reg) before,
            after = lateout(reg) after,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            options(nostack),
        );
    }
    (before, after)
}

#[cfg(feature = "bench")]
/// Times `n` round trips of one exit kind (selector as in the bench guest: 0 hvc, 1 smc, 2 MMIO
/// read, 3 MMIO write, 4 wfi), each preceded by an FP instruction when `fp`. Returns the virtual
/// counter ticks the batch took. One asm block, so only the exits and the loop are timed.
pub fn bench_batch(selector: u64, fp: bool, n: u64, mmio: usize) -> u64 {
    let (t0, t1): (u64, u64);
    // SAFETY: the calls change only general-purpose registers (declared clobbered); the MMIO
    // address is a device register of the emulated GIC distributor; `fmov d16` writes a vector
    // register declared clobbered.
    unsafe {
        asm!(
            "isb",
            "mrs {t0}, cntvct_el0",
            "2:",
            "cbz {fp}, 3f",
            "fmov d16, {n}",
            "3:",
            "cmp {sel}, #1",
            "b.lo 10f",
            "b.eq 11f",
            "cmp {sel}, #3",
            "b.lo 12f",
            "b.eq 13f",
            "wfi",
            "b 19f",
            "10: mov x0, {nop}", "mov x7, {x7}", "hvc #0", "b 19f",
            "11: mov x0, {nop}", "smc #0", "b 19f",
            "12: ldr w1, [{mmio}]", "b 19f",
            "13: strb wzr, [{mmio}]",
            "19:",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            "isb",
            "mrs {t1}, cntvct_el0",
            t0 = out(reg) t0,
            t1 = out(reg) t1,
            n = inout(reg) n.max(1) => _,
            fp = in(reg) fp as u64,
            sel = in(reg) selector,
            mmio = in(reg) mmio,
            nop = in(reg) hc::NOP,
            x7 = in(reg) hc::HVC_X7,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
            out("x6") _, out("x7") _, out("v16") _,
            options(nostack),
        );
    }
    t1.wrapping_sub(t0)
}

/// The virtual counter's frequency.
#[cfg(feature = "bench")]
pub fn counter_hz() -> u64 {
    let f: u64;
    // SAFETY: reads a system register; no side effects.
    unsafe { asm!("mrs {f}, cntfrq_el0", f = out(reg) f, options(nomem, nostack)) };
    f
}
