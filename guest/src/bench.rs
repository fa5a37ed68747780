//! The benchmark guest (`--features bench`): times each exit kind's round trip with the virtual
//! counter, with and without guest FP use, with the NEON worker idle and active, and prints one
//! `bench:` line per case (read by scripts/bench-report.py).
use guest::benchstats::{summarise, ticks_to_ns, BenchKind};
use guest::hw::gicd;
use lazyfp::abi::hc;

use crate::arch::{bench_batch, counter_hz, hvc, Mmio};
use crate::println;

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
    println!(
        "bench-info: counter {} Hz, {} batches of {} round trips per case",
        hz, BATCHES, PER_BATCH
    );
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
