//! Phase 1: one check per kind of VM exit, each comparing the VMM's answer with the ABI.
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use aarch64_cpu::asm::barrier::{isb, SY};
use aarch64_cpu::asm::wfi;
use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTPCT_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0,
    CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTV_TVAL_EL0,
};
use guest::hw::{gicc, gicd, pl011, timer, Gic};
use guest::smp::Budget;
use guest::wake::{sgi_wake_check, PtimerFire, WfiWake, PTIMER_PPI, WAKE_SGI};
use guest::{expect_bits, expect_eq, CheckResult, Failure};
use lazyfp::abi::{self, hc, psci, FailReason};

use crate::arch::{hvc, hvc_sel4_syscall, smc, wait_for_irq, Mmio};
use crate::gic::{self, Banked};
use crate::println;

/// Runs the checks in order; the first failure ends the phase.
pub fn run() -> CheckResult {
    hypercall_version()?;
    psci_calls()?;
    uart_ids()?;
    gicd_readback()?;
    trapped_sysregs()?;
    capfault_recovery()?;
    unclaimed_mmio_aborts()?;
    vtimer_irqs()?;
    wfi_blocks()?;
    ptimer_fires()
}

/// Set while the guest expects the abort of [`unclaimed_mmio_aborts`]; the trap handler then
/// records ESR_EL1 and FAR_EL1 here and steps over the load.
pub static EXPECT_ABORT: AtomicBool = AtomicBool::new(false);
pub static ABORT_ESR: AtomicU64 = AtomicU64::new(0);
pub static ABORT_FAR: AtomicU64 = AtomicU64::new(0);

/// A load where the VMM emulates nothing must come back as hardware would answer it: a
/// synchronous external abort at EL1 (ESR_EL1 EC 0x25, DFSC 0x10) with FAR_EL1 = the address.
fn unclaimed_mmio_aborts() -> CheckResult {
    EXPECT_ABORT.store(true, Ordering::SeqCst);
    let _ = Mmio::UNCLAIMED.read32(0);
    let still_expected = EXPECT_ABORT.swap(false, Ordering::SeqCst);
    let esr = ABORT_ESR.load(Ordering::SeqCst);
    let far = ABORT_FAR.load(Ordering::SeqCst);
    expect_eq(
        "abort-taken",
        FailReason::UnclaimedMmio,
        still_expected as u64,
        0,
    )?;
    expect_eq("abort-ec", FailReason::UnclaimedMmio, esr >> 26, 0x25)?;
    expect_eq("abort-dfsc", FailReason::UnclaimedMmio, esr & 0x3f, 0x10)?;
    expect_eq(
        "abort-far",
        FailReason::UnclaimedMmio,
        far,
        abi::GUEST_UNCLAIMED_MMIO,
    )
}

/// Whether the VMM said (x1 of `hc::VERSION`) that a WFI blocks until an interrupt.
static WFI_BLOCKS: AtomicBool = AtomicBool::new(false);
/// Whether the VMM emulates the EL1 physical timer (`hc::FEATURE_PTIMER`).
static PTIMER: AtomicBool = AtomicBool::new(false);

/// HVC (UnknownSyscall fault) and SMC (VCPUFault EC 0x17): `hc::VERSION` → `hc::ABI_VERSION`.
fn hypercall_version() -> CheckResult {
    let [v, features, ..] = hvc(hc::VERSION, [0; 3]);
    WFI_BLOCKS.store(features & hc::FEATURE_WFI_BLOCKS != 0, Ordering::Relaxed);
    PTIMER.store(features & hc::FEATURE_PTIMER != 0, Ordering::Relaxed);
    expect_eq("hvc-version", FailReason::HvcHypercall, v, hc::ABI_VERSION)?;
    let [v, ..] = smc(hc::VERSION, [0; 3]);
    expect_eq(
        "smc-version",
        FailReason::HypercallVersion,
        v,
        hc::ABI_VERSION,
    )
}

/// A PSCI call through SMC and the answer the VMM owes a single-vCPU VM.
struct PsciCheck {
    name: &'static str,
    reason: FailReason,
    function: u64,
    args: [u64; 3],
    expected: u64,
}

/// PSCI 1.1 (DEN0022): results are sign-extended to 64 bits. None of them may start a vCPU:
/// the secondaries are started later, at their own entry.
const PSCI_CHECKS: [PsciCheck; 6] = [
    PsciCheck {
        name: "psci-version",
        reason: FailReason::PsciVersion,
        function: psci::VERSION,
        args: [0; 3],
        expected: psci::VERSION_1_1,
    },
    PsciCheck {
        name: "psci-features-off",
        reason: FailReason::PsciFeatures,
        function: psci::FEATURES,
        args: [psci::SYSTEM_OFF, 0, 0],
        expected: psci::SUCCESS as u64,
    },
    PsciCheck {
        name: "psci-features-none",
        reason: FailReason::PsciFeatures,
        function: psci::FEATURES,
        args: [0x8400_00FF, 0, 0],
        expected: psci::NOT_SUPPORTED as u64,
    },
    PsciCheck {
        name: "psci-migrate-info",
        reason: FailReason::PsciFeatures,
        function: psci::MIGRATE_INFO_TYPE,
        args: [0; 3],
        expected: psci::TOS_NOT_PRESENT_MP,
    },
    PsciCheck {
        name: "psci-affinity-info",
        reason: FailReason::PsciFeatures,
        // Affinity 0, level 0: the running vCPU is ON (0).
        function: psci::AFFINITY_INFO_64,
        args: [0, 0, 0],
        expected: 0,
    },
    PsciCheck {
        name: "psci-cpu-on",
        reason: FailReason::PsciFeatures,
        // MPIDR Aff0 = 255 names no vCPU of any VM.
        function: psci::CPU_ON_64,
        args: [0xFF, abi::GUEST_RAM_BASE + 0x8_0000, 0],
        expected: psci::INVALID_PARAMETERS as u64,
    },
];

/// PSCI through SMC (VCPUFault EC 0x17).
fn psci_calls() -> CheckResult {
    for check in &PSCI_CHECKS {
        let [v, ..] = smc(check.function, check.args);
        expect_eq(check.name, check.reason, v, check.expected)?;
    }
    Ok(())
}

/// MMIO reads (VMFault on the emulated PL011): peripheral and PrimeCell id registers.
fn uart_ids() -> CheckResult {
    let ids = [
        (pl011::PERIPH_ID0, abi::PL011_PERIPH_ID),
        (pl011::PCELL_ID0, abi::PL011_PCELL_ID),
    ];
    for (base, bytes) in ids {
        for (i, byte) in bytes.iter().enumerate() {
            let got = Mmio::UART.read32(base + 4 * i);
            expect_eq("uart-id", FailReason::UartId, got.into(), (*byte).into())?;
        }
    }
    Ok(())
}

/// Priority the guest gives the virtual timer in the emulated distributor.
const VTIMER_PRIORITY: u8 = 0xA0;
const VTIMER_BIT: u32 = 1 << abi::VTIMER_IRQ;

/// MMIO writes and read-backs on the emulated GIC: the distributor's PIDR2 (the GIC version the
/// CPU reports) and CTLR, and this vCPU's ISENABLER0 bit 27 (32-bit) and IPRIORITYR[27] (8-bit)
/// (GICv2: banked in the distributor; GICv3: in its redistributor). Leaves the GIC set up for
/// the timer check.
fn gicd_readback() -> CheckResult {
    let gic = gic::version();
    let dist = gic::distributor();
    let (pidr2, arch_rev) = gic.pidr2();
    let got = gicd::arch_rev(dist.read32(pidr2));
    expect_eq(
        "gicd-pidr2",
        FailReason::GicdReadback,
        got.into(),
        arch_rev.into(),
    )?;
    dist.write32(gicd::CTLR, gic.gicd_ctlr());
    let got = dist.read32(gicd::CTLR);
    let check = match gic {
        Gic::V2 => expect_eq,
        // ARE and DS read as one there.
        Gic::V3 => expect_bits,
    };
    check(
        "gicd-ctlr",
        FailReason::GicdReadback,
        got.into(),
        gic.gicd_ctlr().into(),
    )?;
    let banked = Banked::mine()?;
    banked.enable(VTIMER_BIT);
    expect_bits(
        "gicd-isenabler0",
        FailReason::GicdReadback,
        banked.enabled().into(),
        VTIMER_BIT.into(),
    )?;
    banked.set_priority(abi::VTIMER_IRQ.into(), VTIMER_PRIORITY);
    expect_eq(
        "gicd-ipriorityr",
        FailReason::GicdReadback,
        banked.priority(abi::VTIMER_IRQ.into()).into(),
        VTIMER_PRIORITY.into(),
    )
}

/// CNTP_CVAL_EL0 written and read back, and CNTP_CTL_EL0 read: trapped by seL4
/// (CNTHCTL_EL2.EL1PCEN = 0) and emulated by the VMM (VCPUFault EC 0x18).
fn trapped_sysregs() -> CheckResult {
    const CVAL: u64 = 0x1234_5678_9ABC;
    CNTP_CVAL_EL0.set(CVAL);
    let got = CNTP_CVAL_EL0.get();
    expect_eq("cntp-cval", FailReason::SysregRead, got, CVAL)?;
    let got = CNTP_CTL_EL0.get();
    expect_eq("cntp-ctl", FailReason::SysregRead, got, 0)
}

/// seL4's Recv syscall number (MCS).
const SEL4_SYS_RECV: i64 = -7;

/// `hvc #0` with x7 = seL4 Recv and x0 = cap 0: the kernel runs the syscall from the vCPU thread,
/// finds no endpoint in the (empty) VM CSpace and, Recv being blocking, raises a CapFault (a
/// non-blocking Send would fail silently instead). The VMM answers x0 = `hc::NOT_SUPPORTED` and
/// resumes after the `hvc`.
fn capfault_recovery() -> CheckResult {
    let got = hvc_sel4_syscall(SEL4_SYS_RECV, 0);
    expect_eq(
        "capfault",
        FailReason::CapFaultRecovery,
        got,
        hc::NOT_SUPPORTED,
    )
}

/// Virtual-timer interrupts taken by the IRQ handler.
static VTIMER_IRQS: AtomicU32 = AtomicU32::new(0);
/// Timer interrupts the test waits for: the second arrives only if the VMM re-armed the
/// virtual PPI after the first EOI.
const VTIMER_ROUNDS: u32 = 2;
/// `wfi` rounds before giving up on an interrupt.
const VTIMER_WAIT_LIMIT: u32 = 1_000_000;

/// Priority of the wake-up SGI: above the timer's, so GICC_IAR gives the SGI first should the
/// SGI check's backstop timer fire as well.
const SGI_PRIORITY: u8 = 0x80;

/// This vCPU's view of the GIC, as the timer and SGI checks and the torture's WFIs need it: the
/// distributor on, the virtual timer and the wake-up SGI enabled with their priorities (per
/// CPU), and the CPU interface forwarding every priority.
pub fn gic_cpu_setup() -> CheckResult {
    gic::cpu_setup(
        VTIMER_BIT | 1 << WAKE_SGI,
        &[
            (abi::VTIMER_IRQ.into(), VTIMER_PRIORITY),
            (WAKE_SGI, SGI_PRIORITY),
        ],
    )
}

/// Virtual timer through the VGIC: the GIC set up, the timer fires 0.1 ms ahead, twice.
fn vtimer_irqs() -> CheckResult {
    gic_cpu_setup()?;
    let ticks = timer::ticks_100us(CNTFRQ_EL0.get());
    let mut result = Ok(());
    for round in 1..=VTIMER_ROUNDS {
        CNTV_TVAL_EL0.set(ticks);
        CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET);
        isb(SY);
        let mut waits = 0;
        while VTIMER_IRQS.load(Ordering::Acquire) < round && waits < VTIMER_WAIT_LIMIT {
            wait_for_irq();
            waits += 1;
        }
        let taken = VTIMER_IRQS.load(Ordering::Acquire);
        if taken < round {
            result = Err(Failure::new(
                "vtimer-irq",
                FailReason::TimerIrq,
                taken.into(),
                round.into(),
            ));
            break;
        }
    }
    timer_off();
    result
}

fn timer_off() {
    CNTV_CTL_EL0.set(0);
    isb(SY);
}

/// Arms the virtual timer (IMASK clear) to fire `ms` milliseconds from now; returns the
/// deadline (CNTV_CVAL_EL0).
fn arm_timer_ms(ms: u64) -> u64 {
    arm_timer(timer::ticks_ms(CNTFRQ_EL0.get(), ms))
}

fn arm_timer(ticks: u64) -> u64 {
    let deadline = counter().saturating_add(ticks);
    CNTV_CVAL_EL0.set(deadline);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET);
    isb(SY);
    deadline
}

/// Arms the virtual timer to end the torture's next WFI: a WFI with nothing pending blocks
/// until an interrupt, so every WFI after the exit checks has the timer armed first. 0.1 ms is
/// long enough for the WFI to trap before the timer fires and short enough not to slow the
/// torture.
pub fn arm_wake() {
    arm_timer(timer::ticks_100us(CNTFRQ_EL0.get()));
}

/// After a WFI armed with [`arm_wake`]: ends the timer's interrupt if it came (with a VMM that
/// returns from WFI at once it may come later, and the next WFI then finds it pending) and
/// stops the timer.
pub fn end_wake() {
    let _ = acknowledge();
    timer_off();
}

/// Sleeps about `ms` milliseconds in one timer-bounded WFI (less if the VMM wakes it early).
pub fn sleep_ms(ms: u64) {
    arm_timer_ms(ms);
    wfi();
    end_wake();
}

/// CNTVCT_EL0, read after every earlier instruction (the `isb` keeps the read from being
/// hoisted above a WFI).
pub fn counter() -> u64 {
    isb(SY);
    CNTVCT_EL0.get()
}

/// Exits the VMM counted for this vCPU so far (x3 of `hc::COUNTERS`).
fn exits_so_far() -> u64 {
    hvc(hc::COUNTERS, [0; 3])[3]
}

/// How far ahead the blocking-WFI check arms the timer.
const WFI_WAIT_MS: u64 = 5;

/// Blocking WFI (VCPUFault EC 0x01): with IRQs masked (PSTATE.I, as since `_start`) and the
/// timer armed 5 ms ahead, one WFI must last until the deadline, leave the timer's interrupt
/// pending at the CPU interface and cost only a few exits.
fn wfi_blocks() -> CheckResult {
    if !WFI_BLOCKS.load(Ordering::Relaxed) {
        println!("blocking-WFI check SKIPPED: this VMM steps over WFI (no wake-up timer)");
        return Ok(());
    }
    let before = exits_so_far();
    let deadline = arm_timer_ms(WFI_WAIT_MS);
    wfi();
    let woke_at = counter();
    let cntv_ctl = CNTV_CTL_EL0.get();
    let intid = acknowledge().unwrap_or(gicc::INTID_SPURIOUS);
    timer_off();
    let exits = exits_so_far().wrapping_sub(before);
    WfiWake {
        deadline,
        woke_at,
        cntv_ctl,
        intid,
        exits,
    }
    .check()
}

/// How far ahead the physical-timer check arms the timer.
const PTIMER_WAIT_MS: u64 = 3;

/// The emulated EL1 physical timer (where the VMM says it emulates it): armed through
/// CNTP_TVAL_EL0 3 ms ahead with IRQs masked, one WFI must last until the deadline and end with
/// ISTATUS set, TVAL negative and PPI 30 pending at the CPU interface.
fn ptimer_fires() -> CheckResult {
    if !PTIMER.load(Ordering::Relaxed) {
        println!("physical-timer check SKIPPED: the physical timer is not emulated here (it is the VMM's)");
        return Ok(());
    }
    gic::cpu_setup(
        VTIMER_BIT | 1 << WAKE_SGI | 1 << PTIMER_PPI,
        &[(PTIMER_PPI, VTIMER_PRIORITY)],
    )?;
    let ticks = timer::ticks_ms(CNTFRQ_EL0.get(), PTIMER_WAIT_MS);
    CNTP_CTL_EL0.set(0);
    let armed_at = CNTPCT_EL0.get();
    CNTP_TVAL_EL0.set(ticks);
    CNTP_CTL_EL0.set(timer::CTL_ENABLE);
    isb(SY);
    let deadline = CNTP_CVAL_EL0.get();
    let ctl_before = CNTP_CTL_EL0.get();
    wfi();
    let woke_at = CNTPCT_EL0.get();
    let ctl_after = CNTP_CTL_EL0.get();
    let tval_after = CNTP_TVAL_EL0.get();
    let intid = match gic::acknowledge() {
        Some((intid, iar)) => {
            // Mask the timer before the EOI, as Linux does: a level interrupt still asserted
            // at EOI is raised again.
            CNTP_CTL_EL0.set(timer::CTL_ENABLE | timer::CTL_IMASK);
            isb(SY);
            gic::end(iar);
            intid
        }
        None => gicc::INTID_SPURIOUS,
    };
    CNTP_CTL_EL0.set(0);
    isb(SY);
    PtimerFire {
        deadline,
        armed_at,
        ctl_before,
        ctl_after,
        woke_at,
        tval_after,
        intid,
    }
    .check(ticks)
}

/// Set by vCPU 0 right before it waits for the wake-up SGI.
static SGI_AWAITED: AtomicBool = AtomicBool::new(false);
/// Set by vCPU 1 once its GICD_SGIR write returned.
static SGI_SENT: AtomicBool = AtomicBool::new(false);
/// How long vCPU 1 waits for vCPU 0 to be waiting, and then before it sends.
const SGI_AWAIT_MS: u64 = 1000;
const SGI_DELAY_MS: u64 = 1;
/// The SGI check's backstop: the timer ends a WFI that no SGI ends (GICC_IAR then gives 27).
const SGI_BACKSTOP_MS: u64 = 500;
/// WFIs vCPU 0 tries before giving up (each may end early: a wake-up without a reason is
/// allowed).
const SGI_WAIT_ROUNDS: u32 = 100_000;

/// vCPU 1: once vCPU 0 waits, and a millisecond later (so that it is likely blocked in WFI),
/// sends it SGI 1 (GICv2: GICD_SGIR, an MMIO write; GICv3: ICC_SGI1R_EL1, a trapped register).
pub fn send_wake_sgi() {
    let hz = CNTFRQ_EL0.get();
    let mut budget = Budget::new(counter(), timer::ticks_ms(hz, SGI_AWAIT_MS), u64::MAX);
    while !SGI_AWAITED.load(Ordering::Acquire) && budget.spend(counter()) {
        core::hint::spin_loop();
    }
    let mut delay = Budget::new(counter(), timer::ticks_ms(hz, SGI_DELAY_MS), u64::MAX);
    while delay.spend(counter()) {
        core::hint::spin_loop();
    }
    gic::send_sgi(VCPU0_MPIDR, WAKE_SGI as u8);
    SGI_SENT.store(true, Ordering::Release);
}

/// vCPU 0's MPIDR affinity (Aff0 = vCPU index, as the VMM assigns).
const VCPU0_MPIDR: u64 = 0;

/// SGI wake-up (only with a vCPU 1): vCPU 0 WFIs with IRQs masked until an interrupt is
/// pending; the CPU interface's IAR must give SGI 1 (from vCPU 1), which is then ended.
pub fn sgi_wake() -> CheckResult {
    arm_timer_ms(SGI_BACKSTOP_MS);
    SGI_AWAITED.store(true, Ordering::Release);
    let mut intid = gicc::INTID_SPURIOUS;
    for _ in 0..SGI_WAIT_ROUNDS {
        wfi();
        if let Some(id) = acknowledge() {
            intid = id;
            break;
        }
    }
    timer_off();
    sgi_wake_check(intid, SGI_SENT.load(Ordering::Acquire))
}

/// Takes the highest-priority pending interrupt at the CPU interface (GICV_IAR or
/// ICC_IAR1_EL1) and ends it (GICV_EOIR or ICC_EOIR1_EL1), silencing the level-triggered timer
/// first with CNTV_CTL_EL0 = IMASK. Returns its interrupt id, or `None` if nothing was pending.
fn acknowledge() -> Option<u32> {
    let (intid, iar) = gic::acknowledge()?;
    if intid == u32::from(abi::VTIMER_IRQ) {
        CNTV_CTL_EL0.write(CNTV_CTL_EL0::IMASK::SET);
        isb(SY);
    }
    gic::end(iar);
    Some(intid)
}

/// IRQ handler (vector "current EL, SPx, IRQ"): counts the virtual timer's interrupts.
pub fn on_irq() {
    if acknowledge() == Some(u32::from(abi::VTIMER_IRQ)) {
        VTIMER_IRQS.fetch_add(1, Ordering::Release);
    }
}
