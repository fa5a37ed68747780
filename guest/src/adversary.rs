//! Phase 1b: a guest that makes mistakes on purpose. One numbered step at a time, each checking
//! that the VMM answers as hardware would (docs/hostile.md lists them): accesses the VMM cannot
//! emulate come back as synchronous external aborts, unknown system registers as UNDEF, unknown
//! calls as NOT_SUPPORTED / INVALID_PARAMETERS / INVALID_ADDRESS, writes to read-only registers
//! change nothing, and the VM keeps running through all of it.
//!
//! For these steps the guest runs on its own vector table: every entry records the exception
//! (vector, ESR_EL1, FAR_EL1, ELR_EL1) in [`TAKEN`] and resumes after the faulting instruction.
//! Interrupts stay masked meanwhile, so only the steps' own exceptions reach it.
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use guest::hw::{gicd, pl011};
use guest::{expect_eq, CheckResult};
use lazyfp::abi::{self, hc, psci, FailReason};

use crate::arch::{hvc, smc, Mmio};
use crate::println;

/// The last exception the step vectors took, as they store it (layout fixed for the asm).
#[repr(C)]
struct Taken {
    vector: AtomicU64,
    esr: AtomicU64,
    far: AtomicU64,
    elr: AtomicU64,
    count: AtomicU64,
}

static TAKEN: Taken = Taken {
    vector: AtomicU64::new(0),
    esr: AtomicU64::new(0),
    far: AtomicU64::new(0),
    elr: AtomicU64::new(0),
    count: AtomicU64::new(0),
};

// 16 entries of 0x80 bytes; each saves x0/x1, passes its index and records the exception.
// ELR_EL1 + 4: every step's exception is a synchronous one on a 32-bit instruction.
global_asm!(
    r#"
    .macro lazyfp_adversary_vector index
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x0, #\index
    b       lazyfp_adversary_record
    .endm

    .pushsection .text.adversary_vectors, "ax"
    .balign 2048
    .global lazyfp_adversary_vectors
lazyfp_adversary_vectors:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    lazyfp_adversary_vector \i
    .endr

lazyfp_adversary_record:
    stp     x2, x3, [sp, #-16]!
    adrp    x1, {taken}
    add     x1, x1, :lo12:{taken}
    str     x0, [x1, #0]
    mrs     x2, esr_el1
    str     x2, [x1, #8]
    mrs     x2, far_el1
    str     x2, [x1, #16]
    mrs     x2, elr_el1
    str     x2, [x1, #24]
    ldr     x3, [x1, #32]
    add     x3, x3, #1
    str     x3, [x1, #32]
    add     x2, x2, #4
    msr     elr_el1, x2
    ldp     x2, x3, [sp], #16
    ldp     x0, x1, [sp], #16
    eret
    .popsection
"#,
    taken = sym TAKEN,
);

extern "C" {
    static lazyfp_adversary_vectors: u8;
}

/// What a step's exception looked like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Exception {
    vector: u64,
    esr: u64,
    far: u64,
    elr: u64,
}

/// The exception taken since the last call, if exactly one was (`u64::MAX` fields: several).
fn taken() -> Option<Exception> {
    let count = TAKEN.count.swap(0, Ordering::SeqCst);
    let e = Exception {
        vector: TAKEN.vector.load(Ordering::SeqCst),
        esr: TAKEN.esr.load(Ordering::SeqCst),
        far: TAKEN.far.load(Ordering::SeqCst),
        elr: TAKEN.elr.load(Ordering::SeqCst),
    };
    match count {
        0 => None,
        1 => Some(e),
        _ => Some(Exception {
            vector: u64::MAX,
            ..e
        }),
    }
}

/// Vector index of "current EL with SP_ELx, synchronous" (VBAR + 0x200).
const CURRENT_SPX_SYNC: u64 = 4;
/// ESR_EL1 of an injected synchronous external abort at EL1 (EC 0x25, IL, DFSC 0x10); WnR for
/// writes.
const DABT_SAME_EL: u64 = 0x9600_0010;
const WNR: u64 = 1 << 6;
/// ESR_EL1 of UNDEF (EC 0x00 "unknown reason", IL).
const UNDEF: u64 = 0x0200_0000;
/// First address past guest RAM: stage 1 maps it (the RAM GiB), stage 2 does not.
const RAM_END: u64 = abi::GUEST_RAM_BASE + lazyfp::sdf::vmm::map::GUEST_RAM.size;
const _: () = assert!(lazyfp::sdf::vmm::map::GUEST_RAM.size < 1 << 30);

/// Expects exactly one exception: a synchronous one at EL1 with `esr`, and FAR_EL1 = `far` when
/// given, ELR_EL1 = `elr` (the faulting instruction).
fn expect_exception(
    step: &'static str,
    reason: FailReason,
    esr: u64,
    far: Option<u64>,
    elr: u64,
) -> CheckResult {
    let e = taken();
    expect_eq(step, reason, e.map_or(0, |_| 1), 1)?;
    let e = e.unwrap_or(Exception {
        vector: 0,
        esr: 0,
        far: 0,
        elr: 0,
    });
    expect_eq(step, reason, e.vector, CURRENT_SPX_SYNC)?;
    expect_eq(step, reason, e.esr, esr)?;
    if let Some(far) = far {
        expect_eq(step, reason, e.far, far)?;
    }
    expect_eq(step, reason, e.elr, elr)
}

fn expect_no_exception(step: &'static str, reason: FailReason) -> CheckResult {
    let e = taken();
    expect_eq(step, reason, e.map_or(0, |e| e.esr | 1 << 63), 0)
}

/// `stp x, x, [addr]`, ISV = 0. Returns the address of the `stp`.
fn store_pair(addr: u64) -> u64 {
    let at: u64;
    // SAFETY: `addr` is a device or unbacked address where no Rust object lives; the access
    // aborts and the step vectors resume after it, restoring every register they use.
    unsafe {
        asm!("adr {at}, 2f", "2: stp {v}, {v}, [{p}]", at = out(reg) at, p = in(reg) addr, v = in(reg) 0x4141_4141_4141_4141u64)
    };
    at
}

/// `ldp w, w, [addr]`, ISV = 0. Returns the address of the `ldp`.
fn load_pair(addr: u64) -> u64 {
    let at: u64;
    // SAFETY: as for `store_pair`; the loaded registers are discarded.
    unsafe {
        asm!("adr {at}, 2f", "2: ldp {a:w}, {b:w}, [{p}]", at = out(reg) at, p = in(reg) addr, a = out(reg) _, b = out(reg) _)
    };
    at
}

/// `ldr x, [p], #8` (post-index: ISV = 0). Returns the `ldr`'s address and p afterwards.
fn load_post_index(addr: u64) -> (u64, u64) {
    let (at, p): (u64, u64);
    // SAFETY: as for `store_pair`.
    unsafe {
        asm!("adr {at}, 2f", "2: ldr {v}, [{p}], #8", at = out(reg) at, p = inout(reg) addr => p, v = out(reg) _)
    };
    (at, p)
}

/// `ldr x, [addr]` (ISV = 1). Returns the `ldr`'s address.
fn load(addr: u64) -> u64 {
    let at: u64;
    // SAFETY: as for `store_pair`.
    unsafe {
        asm!("adr {at}, 2f", "2: ldr {v}, [{p}]", at = out(reg) at, p = in(reg) addr, v = out(reg) _)
    };
    at
}

/// `msr ICC_SGI0R_EL1, xzr`: trapped to the VMM on GICv3 (HCR_EL2.FMO), which does not emulate
/// it; absent (UNDEF from the CPU itself) on a GICv2 system. UNDEF either way. Returns the
/// `msr`'s address.
fn write_icc_sgi0r() -> u64 {
    let at: u64;
    // SAFETY: the write UNDEFs (or, were it emulated, would send SGI 0 to an empty target
    // list); the step vectors resume after it.
    unsafe { asm!("adr {at}, 2f", "2: msr S3_0_C12_C11_7, xzr", at = out(reg) at) };
    at
}

/// A read-only register written with the complement of its value: no exception, unchanged.
fn read_only(name: &'static str, reason: FailReason, frame: Mmio, offset: usize) -> CheckResult {
    let before = frame.read32(offset);
    frame.write32(offset, !before);
    let after = frame.read32(offset);
    expect_no_exception(name, reason)?;
    expect_eq(name, reason, after.into(), before.into())
}

const UART: u64 = abi::GUEST_UART_BASE;
const GICD: u64 = abi::GUEST_GICD_BASE;
const NOT_SUPPORTED: u64 = psci::NOT_SUPPORTED as u64;
const INVALID_PARAMETERS: u64 = psci::INVALID_PARAMETERS as u64;
const INVALID_ADDRESS: u64 = psci::INVALID_ADDRESS as u64;
/// Function ids no one implements: an SMC64 SiP call and a vendor-hypervisor id past lazyfp's.
const UNKNOWN_SMC: u64 = 0xC200_FF00;
const UNKNOWN_HVC: u64 = 0xC600_FF00;

const MMIO: FailReason = FailReason::UnclaimedMmio;

/// One numbered step: its name (for the console and its failure) and its check.
struct Step {
    name: &'static str,
    check: fn(&'static str) -> CheckResult,
}

impl Step {
    const fn new(name: &'static str, check: fn(&'static str) -> CheckResult) -> Self {
        Self { name, check }
    }
}

/// The steps, in order.
const STEPS: [Step; 14] = [
    Step::new("stp-pl011", |name| {
        let at = store_pair(UART + pl011::UARTDR as u64);
        expect_exception(name, MMIO, DABT_SAME_EL | WNR, Some(UART), at)
    }),
    Step::new("ldp-gicd", |name| {
        let at = load_pair(GICD);
        expect_exception(name, MMIO, DABT_SAME_EL, Some(GICD), at)
    }),
    Step::new("ldr-post-index-pl011", |name| {
        let addr = UART + pl011::UARTFR as u64;
        let (at, after) = load_post_index(addr);
        expect_exception(name, MMIO, DABT_SAME_EL, Some(addr), at)?;
        // The aborted load did no writeback.
        expect_eq("ldr-post-index-writeback", MMIO, after, addr)
    }),
    Step::new("ldr-beyond-ram", |name| {
        let at = load(RAM_END);
        expect_exception(name, MMIO, DABT_SAME_EL, Some(RAM_END), at)
    }),
    Step::new("ldp-beyond-ram", |name| {
        let at = load_pair(RAM_END + 0x40);
        expect_exception(name, MMIO, DABT_SAME_EL, Some(RAM_END + 0x40), at)
    }),
    Step::new("stp-unclaimed", |name| {
        let addr = abi::GUEST_UNCLAIMED_MMIO + 0x10;
        let at = store_pair(addr);
        expect_exception(name, MMIO, DABT_SAME_EL | WNR, Some(addr), at)
    }),
    Step::new("smc-unknown", |name| {
        let [r, ..] = smc(UNKNOWN_SMC, [1, 2, 3]);
        expect_no_exception(name, FailReason::HypercallVersion)?;
        expect_eq(name, FailReason::HypercallVersion, r, hc::NOT_SUPPORTED)
    }),
    Step::new("hvc-unknown", |name| {
        let [r, ..] = hvc(UNKNOWN_HVC, [1, 2, 3]);
        expect_no_exception(name, FailReason::HvcHypercall)?;
        expect_eq(name, FailReason::HvcHypercall, r, hc::NOT_SUPPORTED)
    }),
    Step::new("msr-unknown-sysreg", |name| {
        let at = write_icc_sgi0r();
        expect_exception(name, FailReason::SysregRead, UNDEF, None, at)
    }),
    Step::new("gicd-typer-read-only", |name| {
        read_only(name, FailReason::GicdReadback, Mmio::GICD, gicd::TYPER)
    }),
    Step::new("uartfr-read-only", |name| {
        read_only(name, FailReason::UartId, Mmio::UART, pl011::UARTFR)
    }),
    Step::new("cpu-on-bad-target", |name| {
        // Aff1 = 0x7f: no vCPU of any lazyfp VM.
        let [r, ..] = smc(psci::CPU_ON_64, [0x7f00, abi::GUEST_RAM_BASE, 0]);
        expect_eq(name, FailReason::PsciFeatures, r, INVALID_PARAMETERS)
    }),
    Step::new("cpu-on-bad-entry", |name| {
        // vCPU 1 if it exists (off until phase 2): an entry outside RAM, then a misaligned one.
        let [state, ..] = smc(psci::AFFINITY_INFO_64, [1, 0, 0]);
        let want = if state == psci::AFFINITY_OFF {
            INVALID_ADDRESS
        } else {
            INVALID_PARAMETERS
        };
        for entry in [0x1000, abi::GUEST_RAM_BASE + 2, RAM_END] {
            let [r, ..] = smc(psci::CPU_ON_64, [1, entry, 0]);
            expect_eq(name, FailReason::PsciFeatures, r, want)?;
        }
        let [after, ..] = smc(psci::AFFINITY_INFO_64, [1, 0, 0]);
        expect_eq(
            "cpu-on-bad-entry-still-off",
            FailReason::PsciFeatures,
            after,
            state,
        )
    }),
    Step::new("psci-unknown", |name| {
        let [r, ..] = smc(0x8400_001F, [0; 3]);
        expect_eq(name, FailReason::PsciFeatures, r, NOT_SUPPORTED)
    }),
];

/// Runs every step on the step vectors with interrupts masked; the first failure ends the
/// phase. The guest's own vectors and interrupt mask are back afterwards.
pub fn run() -> CheckResult {
    let (vbar, daif): (u64, u64);
    // SAFETY: reads VBAR_EL1 and DAIF, masks all exceptions that are maskable, and installs
    // the step vectors (2 KiB aligned, in .text, mapped executable by the boot map).
    unsafe {
        asm!(
            "mrs {vbar}, vbar_el1",
            "mrs {daif}, daif",
            "msr daifset, #0xf",
            "msr vbar_el1, {new}",
            "isb",
            vbar = out(reg) vbar,
            daif = out(reg) daif,
            new = in(reg) core::ptr::addr_of!(lazyfp_adversary_vectors) as u64,
        )
    };
    let _ = taken();
    let mut result = Ok(());
    for (n, step) in STEPS.iter().enumerate() {
        result = (step.check)(step.name);
        match result {
            Ok(()) => println!("hostile step {}/{}: {} ok", n + 1, STEPS.len(), step.name),
            Err(_) => break,
        }
    }
    // SAFETY: puts back the guest's vector table and interrupt mask as they were.
    unsafe {
        asm!("msr vbar_el1, {vbar}", "isb", "msr daif, {daif}", vbar = in(reg) vbar, daif = in(reg) daif)
    };
    result
}
