//! The benchmark guest (`--features bench`): times each exit kind's round trip with the virtual
//! counter, with and without guest FP use, with the NEON worker idle and active, and prints one
//! `bench:` line per case (read by scripts/bench-report.py).
use aarch64_cpu::asm::barrier::{isb, SY};
use aarch64_cpu::registers::{Readable, Writeable, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use guest::benchstats::{summarise, ticks_to_ns, BenchKind};
use guest::hw::{gicd, timer};
use lazyfp::abi::{hc, VTIMER_IRQ};

use crate::arch::{bench_batch, counter_hz, hvc, Mmio};
use crate::{gic, println};

/// Round trips per timed batch, and batches per case.
const PER_BATCH: u64 = 8;
const BATCHES: usize = 200;

fn selector(kind: BenchKind) -> (u64, usize) {
    match kind {
        BenchKind::Hvc => (0, 0),
        BenchKind::Smc => (1, 0),
        BenchKind::MmioRead => (2, Mmio::GICD.addr(gicd::TYPER, 4)),
        BenchKind::MmioWrite => (3, Mmio::GICD.addr(gicd::IPRIORITYR + 40, 1)),
        BenchKind::Wfi => (4, 0),
    }
}

pub fn run() {
    let hz = counter_hz();
    let [version, features, ..] = hvc(hc::VERSION, [0; 3]);
    // The floor handler answers no hypercall (x0 comes back as sent) and injects nothing.
    let vmm = version == hc::ABI_VERSION;
    let blocks = vmm && features & hc::FEATURE_WFI_BLOCKS != 0;
    if blocks {
        // A WFI with nothing pending would wait for ever: only the wake-up case runs.
        wake_latency(hz, true);
        return;
    }
    println!(
        "bench-info: counter {} Hz, {} batches of {} round trips per case",
        hz, BATCHES, PER_BATCH
    );
    exit_round_trips(hz);
    if vmm {
        wake_latency(hz, false);
    }
}

/// Wake-ups timed per run, and how far ahead of each its deadline is.
const WAKES: usize = 200;
const WAKE_AHEAD_US: u64 = 200;

fn counter() -> u64 {
    isb(SY);
    CNTVCT_EL0.get()
}

/// Deadline → the timer's interrupt acknowledged: the virtual timer armed `WAKE_AHEAD_US`
/// ahead, WFI (IRQs masked, so a pending interrupt ends it) until the CPU interface gives the
/// timer's interrupt. With a blocking WFI (`blocks`) the vCPU sleeps in the VMM until the
/// deadline; otherwise every WFI is an exit stepped over. One `bench-wake:` line.
fn wake_latency(hz: u64, blocks: bool) {
    let intid = u32::from(VTIMER_IRQ);
    if gic::cpu_setup(1 << intid, &[(intid, 0x80)]).is_err() {
        println!("bench-info: wake-up latency not measured: GIC setup failed");
        return;
    }
    let before = hvc(hc::COUNTERS, [0; 3])[3];
    let mut samples = [0u64; WAKES];
    for s in samples.iter_mut() {
        let deadline = counter() + WAKE_AHEAD_US * hz / 1_000_000;
        CNTV_CVAL_EL0.set(deadline);
        CNTV_CTL_EL0.set(timer::CTL_ENABLE);
        isb(SY);
        let give_up = deadline + hz;
        let iar = loop {
            aarch64_cpu::asm::wfi();
            match gic::acknowledge() {
                Some((i, iar)) if i == intid => break iar,
                Some((_, other)) => gic::end(other),
                None if counter() > give_up => {
                    println!("bench-info: wake-up latency not measured: no timer interrupt 1 s after its deadline");
                    CNTV_CTL_EL0.set(0);
                    return;
                }
                None => {}
            }
        };
        let taken = counter();
        CNTV_CTL_EL0.set(0);
        isb(SY);
        gic::end(iar);
        *s = ticks_to_ns(taken.saturating_sub(deadline), hz, 1);
    }
    let exits = hvc(hc::COUNTERS, [0; 3])[3].wrapping_sub(before);
    let max = samples.iter().copied().max().unwrap_or(0);
    if let Some(sum) = summarise(&mut samples) {
        println!(
            "bench-wake: blocking={} n={} median_ns={} p99_ns={} max_ns={} exits_per_wake={}",
            blocks as u8,
            WAKES,
            sum.median,
            sum.p99,
            max,
            exits / WAKES as u64
        );
    }
}

fn exit_round_trips(hz: u64) {
    for kind in BenchKind::ALL {
        let (sel, mmio) = selector(kind);
        for (fp, neon) in [(false, false), (true, false), (false, true), (true, true)] {
            // Warm up: the first FP use after a save-back traps once; not part of the case.
            bench_batch(sel, fp, PER_BATCH, mmio);
            let before = hvc(hc::COUNTERS, [0; 3]);
            let mut samples = [0u64; BATCHES];
            for s in samples.iter_mut() {
                if neon {
                    // Another PD uses NEON on this core before every batch (untimed).
                    hvc(hc::NEON_INTERFERE, [0; 3]);
                }
                *s = ticks_to_ns(bench_batch(sel, fp, PER_BATCH, mmio), hz, PER_BATCH);
            }
            let after = hvc(hc::COUNTERS, [0; 3]);
            if let Some(sum) = summarise(&mut samples) {
                println!(
                    "bench: kind={} fp={} neon={} n={} median_ns={} p10_ns={} p90_ns={} fp_traps={} savebacks={}",
                    kind.name(),
                    fp as u8,
                    neon as u8,
                    BATCHES as u64 * PER_BATCH,
                    sum.median,
                    sum.p10,
                    sum.p90,
                    after[1].wrapping_sub(before[1]),
                    after[2].wrapping_sub(before[2])
                );
            }
        }
    }
}
