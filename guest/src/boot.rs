//! Entries, exception vectors and the boot-time identity map.
//!
//! `_start` runs at EL1h with the MMU off (the VMM enters with x0 = 0): it sets SP_EL1 to the top
//! of the 64 KiB stack in .bss, zeroes .bss, enables FP/SIMD, installs the vector table, turns on
//! the MMU with a 1 GiB-block identity map and calls [`rust_main`](crate::rust_main)(x0, x1).
//! A secondary vCPU enters at [`secondary_entry`] (PSCI CPU_ON, x0 = its vCPU index as the
//! context id, MMU off): it takes its own stack from [`SECONDARY_STACKS`], does the same CPU set-up
//! with vCPU 0's page tables and calls [`secondary_main`](crate::cpus::secondary_main)(index).

use core::arch::global_asm;
use core::mem::{offset_of, size_of};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use aarch64_cpu::asm::wfi;
#[cfg(not(feature = "bench"))]
use aarch64_cpu::registers::FAR_EL1;
use aarch64_cpu::registers::{Readable, CPACR_EL1, ESR_EL1, MAIR_EL1, SCTLR_EL1, TCR_EL1};
use guest::hw::Vector;
#[cfg(not(feature = "bench"))]
use guest::smp::MAX_VCPUS;
use guest::Failure;
use lazyfp::abi::{FailReason, GUEST_RAM_BASE};

use crate::{println, vmm};

/// MAIR_EL1: index 0 Device-nGnRnE, index 1 Normal write-back read/write-allocate.
const MAIR: u64 = MAIR_EL1::Attr0_Device::nonGathering_nonReordering_noEarlyWriteAck.value
    | MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc.value
    | MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc.value;
const MAIR_IDX_DEVICE: u64 = 0;
const MAIR_IDX_NORMAL: u64 = 1;
const _: () = assert!(MAIR == 0xFF00);

/// TCR_EL1: TTBR0 covers 4 GiB (T0SZ = 32, walks start at level 1) with 4 KiB pages and
/// write-back inner-shareable walks; TTBR1 walks are off; 40-bit physical addresses.
const TCR: u64 = TCR_EL1::T0SZ.val(32).value
    | TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable.value
    | TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable.value
    | TCR_EL1::SH0::Inner.value
    | TCR_EL1::TG0::KiB_4.value
    | TCR_EL1::EPD1::DisableTTBR1Walks.value
    | TCR_EL1::TG1::KiB_4.value
    | TCR_EL1::IPS::Bits_40.value;

/// SCTLR_EL1 bits set: MMU, data and instruction caches.
const SCTLR_SET: u64 =
    SCTLR_EL1::M::Enable.value | SCTLR_EL1::C::Cacheable.value | SCTLR_EL1::I::Cacheable.value;
/// SCTLR_EL1 bits cleared: alignment checking (Rust code may do unaligned accesses to normal
/// memory) and write-implies-execute-never.
const SCTLR_CLEAR: u64 = SCTLR_EL1::A::Enable.value | SCTLR_EL1::WXN::Enable.value;

/// CPACR_EL1: no FP/SIMD traps at EL1 or EL0.
const CPACR_FP_ON: u64 = CPACR_EL1::FPEN::TrapNothing.value;

/// Level-1 block descriptor fields (4 KiB granule, 1 GiB blocks).
const DESC_BLOCK: u64 = 0b01;
const DESC_ATTR_IDX_SHIFT: u64 = 2;
const DESC_SH_INNER: u64 = 0b11 << 8;
const DESC_AF: u64 = 1 << 10;
const DESC_PXN: u64 = 1 << 53;
const DESC_UXN: u64 = 1 << 54;
const GIB: u64 = 1 << 30;

const fn device_block(pa: u64) -> u64 {
    pa | MAIR_IDX_DEVICE << DESC_ATTR_IDX_SHIFT | DESC_AF | DESC_PXN | DESC_UXN | DESC_BLOCK
}

const fn normal_block(pa: u64) -> u64 {
    pa | MAIR_IDX_NORMAL << DESC_ATTR_IDX_SHIFT | DESC_SH_INNER | DESC_AF | DESC_UXN | DESC_BLOCK
}

/// The level-1 table of a 4 GiB input address space: four 1 GiB entries.
#[repr(C, align(4096))]
struct L1Table([u64; 4]);

/// Identity map: the device GiB (GIC, PL011 at 0x0800_0000..) and the GiB holding guest RAM.
static BOOT_L1: L1Table = L1Table([device_block(0), normal_block(GUEST_RAM_BASE), 0, 0]);
const _: () = assert!(GUEST_RAM_BASE.is_multiple_of(GIB) && GUEST_RAM_BASE / GIB == 1);

/// Registers saved by the vector stubs, in the order `lazyfp_guest_trap_common` stores them.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pub fpsr: u64,
    pub fpcr: u64,
    _pad: u64,
    pub q: [u128; 32],
}

const TRAP_FRAME_SIZE: usize = 800;
const _: () = assert!(size_of::<TrapFrame>() == TRAP_FRAME_SIZE);
const _: () = assert!(offset_of!(TrapFrame, elr) == 248);
const _: () = assert!(offset_of!(TrapFrame, fpsr) == 264);
const _: () = assert!(offset_of!(TrapFrame, q) == 288);

global_asm!(
    r#"
    .pushsection .text._start, "ax"
    .global _start
    .type _start, %function
_start:
    msr     daifset, #0xf
    msr     spsel, #1
    adrp    x9, __stack_top
    add     x9, x9, :lo12:__stack_top
    mov     sp, x9

    // Zero .bss (the stack included: nothing is on it yet). x0 and x1 are kept for rust_main.
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
2:  cmp     x9, x10
    b.hs    3f
    stp     xzr, xzr, [x9], #16
    b       2b
3:  bl      lazyfp_guest_cpu_init
    bl      {main}
4:  wfi
    b       4b
    .size _start, . - _start
    .popsection

    // Per-CPU set-up, shared by every vCPU: FP on, vectors, MMU with the boot identity map.
    // Uses x9 and x10 only and no stack (the MMU is still off).
    .pushsection .text.cpu_init, "ax"
lazyfp_guest_cpu_init:
    // FP/SIMD on before anything can trap: the vectors save the FP registers.
    ldr     x9, ={cpacr}
    msr     cpacr_el1, x9
    isb
    msr     fpcr, xzr
    msr     fpsr, xzr

    adrp    x9, lazyfp_guest_vectors
    add     x9, x9, :lo12:lazyfp_guest_vectors
    msr     vbar_el1, x9

    // Identity map, then MMU and caches on.
    ldr     x9, ={mair}
    msr     mair_el1, x9
    ldr     x9, ={tcr}
    msr     tcr_el1, x9
    adrp    x9, {l1}
    add     x9, x9, :lo12:{l1}
    msr     ttbr0_el1, x9
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x9, sctlr_el1
    ldr     x10, ={sctlr_clear}
    bic     x9, x9, x10
    ldr     x10, ={sctlr_set}
    orr     x9, x9, x10
    msr     sctlr_el1, x9
    isb
    ret
    .ltorg
    .popsection

    // The vector table: 16 entries of 0x80 bytes, each saving x0/x1 and passing its index.
    .macro lazyfp_guest_vector index
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp]
    mov     x0, #\index
    b       lazyfp_guest_trap_common
    .endm

    .pushsection .text.vectors, "ax"
    .balign 2048
lazyfp_guest_vectors:
    lazyfp_guest_vector 0
    lazyfp_guest_vector 1
    lazyfp_guest_vector 2
    lazyfp_guest_vector 3
    lazyfp_guest_vector 4
    lazyfp_guest_vector 5
    lazyfp_guest_vector 6
    lazyfp_guest_vector 7
    lazyfp_guest_vector 8
    lazyfp_guest_vector 9
    lazyfp_guest_vector 10
    lazyfp_guest_vector 11
    lazyfp_guest_vector 12
    lazyfp_guest_vector 13
    lazyfp_guest_vector 14
    lazyfp_guest_vector 15

    // Saves the rest of a TrapFrame (GPRs, ELR, SPSR, FPSR, FPCR, Q0-Q31), calls
    // trap(index, frame) with default FP modes, restores everything and returns.
lazyfp_guest_trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el1
    mrs     x3, fpsr
    stp     x2, x3, [sp, #256]
    mrs     x2, fpcr
    str     x2, [sp, #272]
    add     x2, sp, #288
    stp     q0, q1, [x2, #0]
    stp     q2, q3, [x2, #32]
    stp     q4, q5, [x2, #64]
    stp     q6, q7, [x2, #96]
    stp     q8, q9, [x2, #128]
    stp     q10, q11, [x2, #160]
    stp     q12, q13, [x2, #192]
    stp     q14, q15, [x2, #224]
    stp     q16, q17, [x2, #256]
    stp     q18, q19, [x2, #288]
    stp     q20, q21, [x2, #320]
    stp     q22, q23, [x2, #352]
    stp     q24, q25, [x2, #384]
    stp     q26, q27, [x2, #416]
    stp     q28, q29, [x2, #448]
    stp     q30, q31, [x2, #480]
    msr     fpcr, xzr
    mov     x1, sp
    bl      {trap}
    add     x2, sp, #288
    ldp     q0, q1, [x2, #0]
    ldp     q2, q3, [x2, #32]
    ldp     q4, q5, [x2, #64]
    ldp     q6, q7, [x2, #96]
    ldp     q8, q9, [x2, #128]
    ldp     q10, q11, [x2, #160]
    ldp     q12, q13, [x2, #192]
    ldp     q14, q15, [x2, #224]
    ldp     q16, q17, [x2, #256]
    ldp     q18, q19, [x2, #288]
    ldp     q20, q21, [x2, #320]
    ldp     q22, q23, [x2, #352]
    ldp     q24, q25, [x2, #384]
    ldp     q26, q27, [x2, #416]
    ldp     q28, q29, [x2, #448]
    ldp     q30, q31, [x2, #480]
    ldr     x2, [sp, #272]
    msr     fpcr, x2
    ldp     x2, x3, [sp, #256]
    msr     spsr_el1, x2
    msr     fpsr, x3
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #{frame}
    eret
    .popsection
"#,
    cpacr = const CPACR_FP_ON,
    mair = const MAIR,
    tcr = const TCR,
    sctlr_set = const SCTLR_SET,
    sctlr_clear = const SCTLR_CLEAR,
    l1 = sym BOOT_L1,
    main = sym crate::rust_main,
    trap = sym trap,
    frame = const TRAP_FRAME_SIZE,
);

/// Stack of each secondary vCPU (the torture and the trap frame need well under 4 KiB).
#[cfg(not(feature = "bench"))]
const SECONDARY_STACK_SIZE: usize = 0x4000;

#[cfg(not(feature = "bench"))]
#[repr(C, align(16))]
struct Stack([u8; SECONDARY_STACK_SIZE]);

/// Stacks of vCPUs 1..MAX_VCPUS: vCPU i runs on slot i − 1, whose top is
/// `SECONDARY_STACKS + i × SECONDARY_STACK_SIZE`. In .bss, zeroed by vCPU 0 before any
/// secondary starts; only `secondary_entry` refers to it (as a symbol).
#[cfg(not(feature = "bench"))]
static mut SECONDARY_STACKS: [Stack; MAX_VCPUS - 1] =
    [const { Stack([0; SECONDARY_STACK_SIZE]) }; MAX_VCPUS - 1];

// A secondary vCPU's entry: EL1h, MMU off, x0 = context id = vCPU index. An index outside
// 1..MAX_VCPUS has no stack: that vCPU parks.
#[cfg(not(feature = "bench"))]
global_asm!(
    r#"
    .pushsection .text.secondary, "ax"
    .global lazyfp_guest_secondary_entry
    .type lazyfp_guest_secondary_entry, %function
lazyfp_guest_secondary_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    cbz     x0, 9f
    cmp     x0, #{max}
    b.hs    9f
    adrp    x9, {stacks}
    add     x9, x9, :lo12:{stacks}
    mov     x10, #{stack_size}
    madd    x9, x0, x10, x9
    mov     sp, x9
    bl      lazyfp_guest_cpu_init
    bl      {secondary}
9:  wfi
    b       9b
    .size lazyfp_guest_secondary_entry, . - lazyfp_guest_secondary_entry
    .popsection
"#,
    max = const MAX_VCPUS,
    stacks = sym SECONDARY_STACKS,
    stack_size = const SECONDARY_STACK_SIZE,
    secondary = sym crate::cpus::secondary_main,
);

#[cfg(not(feature = "bench"))]
extern "C" {
    fn lazyfp_guest_secondary_entry();
}

/// Guest-physical address of the secondary entry, for PSCI CPU_ON (the map is the identity).
#[cfg(not(feature = "bench"))]
pub fn secondary_entry() -> u64 {
    lazyfp_guest_secondary_entry as *const () as u64
}

/// Set once an unexpected exception is being reported.
static IN_FATAL_TRAP: AtomicBool = AtomicBool::new(false);

/// Called by `lazyfp_guest_trap_common` for every exception, with the vector index and the
/// saved registers. The expected IRQ returns (the stub restores everything and erets); any
/// other exception is reported to the VMM as UnexpectedException (x2 = ESR_EL1, x3 = ELR_EL1)
/// and the VM is switched off.
extern "C" fn trap(index: u64, frame: &mut TrapFrame) {
    let vector = Vector::from_index(index);
    if vector.is_expected_irq() {
        // The benchmark guest never unmasks interrupts: any IRQ there is unexpected.
        #[cfg(not(feature = "bench"))]
        {
            crate::exits::on_irq();
            return;
        }
    }
    #[cfg(not(feature = "bench"))]
    if vector.is_current_sync() && crate::exits::EXPECT_ABORT.swap(false, Ordering::SeqCst) {
        // The abort the exit checks provoke on purpose: record it, step over the load.
        crate::exits::ABORT_ESR.store(ESR_EL1.get(), Ordering::SeqCst);
        crate::exits::ABORT_FAR.store(FAR_EL1.get(), Ordering::SeqCst);
        frame.elr += 4;
        return;
    }
    if IN_FATAL_TRAP.swap(true, Ordering::Relaxed) {
        // An exception while reporting one (say, an SMC that is not trapped): nothing left to
        // report with.
        loop {
            wfi();
        }
    }
    println!("unexpected exception: {vector:?}");
    let esr = ESR_EL1.get();
    vmm::fail(
        &Failure::new("exception", FailReason::UnexpectedException, esr, frame.elr)
            .labelled("esr", "elr"),
    )
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let line = info.location().map_or(0, |l| u64::from(l.line()));
    println!("panic: {info}");
    vmm::fail(&Failure::new("panic", FailReason::Other, line, 0).labelled("line", "zero"))
}
