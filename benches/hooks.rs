//! Host micro-benchmarks of the VM-exit hot path: the FP hooks, the shared table, fp-service's
//! `neon_begin`/`neon_end` logic and exit decoding.
//!
//! These measure the pure logic only (no seL4, no IPC, no FP save/restore: those are seL4's and
//! are measured by the in-guest QEMU benchmarks, see `scripts/bench-report.py`). They answer
//! "what does the lazy policy add to every exit on the VMM side?" — the dominant case being
//! `ctxsync_fp` when the table already names the vCPU (one atomic load).
//!
//! Run: `cargo bench --bench hooks` (≈ 20–30 s); a filter narrows it, e.g.
//! `cargo bench --bench hooks -- ctxsync`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lazyfp::{
    decode_exit, BeginStep, Exit, FpAction, FpOwner, FpPolicy, FpService, FpTable, VcpuFp,
};

/// Cores in the benchmark table; the vCPU and the NEON client run on `CORE`.
const NUM_CORES: u64 = 2;
const CORE: u64 = 1;
/// fp-service channel of the NEON client (on `CORE`).
const CH: u8 = 1;

/// A table attached for `NUM_CORES` cores.
fn table() -> Box<FpTable> {
    let t = Box::<FpTable>::default();
    t.attach(NUM_CORES).expect("attach");
    t
}

/// A lazy vCPU on `CORE`, loaded (its FP trapped).
fn loaded_vcpu(id: u8, t: &FpTable, policy: FpPolicy) -> VcpuFp {
    let mut v = VcpuFp::new(id, CORE, policy);
    v.run_map_fp(t, NUM_CORES).expect("run_map_fp");
    v.load_fp(CORE, t).expect("load_fp");
    v
}

/// A lazy vCPU whose FP state is live on `CORE` and published in the table.
fn live_vcpu(id: u8, t: &FpTable) -> VcpuFp {
    let mut v = loaded_vcpu(id, t, FpPolicy::Lazy);
    assert_eq!(v.fp_trap(), Ok(FpAction::EnableGuestFp));
    v.ctxsync_fp(t).expect("ctxsync_fp");
    assert_eq!(t.owner(CORE), Ok(Some(id)));
    v
}

fn bench_ctxsync(c: &mut Criterion) {
    let mut g = c.benchmark_group("ctxsync_fp");

    // The per-exit cost: guest owns the FP registers and the table already names it.
    {
        let t = table();
        let mut v = live_vcpu(0, &t);
        let binds = v.stats.binds;
        g.bench_function("already_bound", |b| {
            b.iter(|| black_box(&mut v).ctxsync_fp(black_box(&*t)))
        });
        assert_eq!(v.stats.binds, binds, "already_bound must not bind");
    }

    // Guest FP trapped (no FP use since the last save-back): nothing to publish either.
    {
        let t = table();
        let mut v = loaded_vcpu(0, &t, FpPolicy::Lazy);
        assert_eq!(v.owner(), FpOwner::Trapped);
        g.bench_function("trapped", |b| {
            b.iter(|| black_box(&mut v).ctxsync_fp(black_box(&*t)))
        });
        assert_eq!(v.stats.binds, 0);
    }

    // Eager policy: the hook is a policy check.
    {
        let t = table();
        let mut v = loaded_vcpu(0, &t, FpPolicy::Eager);
        g.bench_function("eager", |b| {
            b.iter(|| black_box(&mut v).ctxsync_fp(black_box(&*t)))
        });
        assert_eq!(t.owner(CORE), Ok(None));
    }

    // Must bind: two vCPUs sharing the core take turns, so each call finds the other one named
    // and publishes (load + store + seq increment). Two binds per iteration.
    {
        let t = table();
        let mut v0 = live_vcpu(0, &t);
        let mut v1 = live_vcpu(1, &t);
        let before = v0.stats.binds + v1.stats.binds;
        g.throughput(Throughput::Elements(2));
        g.bench_function("bind_x2_alternating", |b| {
            b.iter(|| {
                black_box(&mut v0).ctxsync_fp(black_box(&*t)).unwrap();
                black_box(&mut v1).ctxsync_fp(black_box(&*t)).unwrap();
            })
        });
        assert!(
            v0.stats.binds + v1.stats.binds > before,
            "bind path was not taken"
        );
        assert_eq!(v0.stats.binds, v1.stats.binds, "every call must have bound");
    }
    g.finish();
}

fn bench_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("fp_cycle");
    // One lazy round: guest FP traps (EC 0x07), the next exit publishes, a NEON user's save-back
    // flushes the entry and re-arms the trap.
    let t = table();
    let mut v = loaded_vcpu(0, &t, FpPolicy::Lazy);
    g.bench_function("fp_trap+ctxsync_fp+save_back", |b| {
        b.iter(|| {
            let v = black_box(&mut v);
            let t = black_box(&*t);
            let a = v.fp_trap().unwrap();
            v.ctxsync_fp(t).unwrap();
            let s = v.save_back(black_box(CORE), t).unwrap();
            (a, s)
        })
    });
    assert_eq!(v.owner(), FpOwner::Trapped);
    assert_eq!(
        (v.stats.fp_traps, v.stats.binds),
        (v.stats.savebacks, v.stats.savebacks)
    );
    assert_eq!(v.stats.stale_savebacks, 0);
    g.finish();
}

fn bench_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("table");
    {
        let t = table();
        let _v = live_vcpu(3, &t);
        g.bench_function("owner", |b| {
            b.iter(|| black_box(&*t).owner(black_box(CORE)))
        });
    }
    // The side that starts second checks the header the first one published.
    {
        let t = table();
        g.bench_function("attach_check", |b| {
            b.iter(|| black_box(&*t).attach(black_box(NUM_CORES)))
        });
    }
    // The side that starts first claims a zero-filled region (fresh table per iteration; its
    // creation is not timed).
    g.bench_function("attach_claim", |b| {
        b.iter_batched_ref(
            Box::<FpTable>::default,
            |t| black_box(&**t).attach(black_box(NUM_CORES)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_fpservice(c: &mut Criterion) {
    let mut g = c.benchmark_group("fpservice");
    let clients = [(CH, CORE as u8)];

    // Fast path: no vCPU state live on the core, neon_begin is granted at once. A section must
    // be closed before the client can begin again, so the pair is timed.
    {
        let t = table();
        let mut s = FpService::new(NUM_CORES, &clients);
        assert_eq!(s.begin(&t, CH, CORE), Ok(BeginStep::Grant));
        s.end(&t, CH, CORE, 0).unwrap();
        g.bench_function("begin_grant+end", |b| {
            b.iter(|| {
                let s = black_box(&mut s);
                let t = black_box(&*t);
                let step = s.begin(t, black_box(CH), black_box(CORE)).unwrap();
                s.end(t, CH, CORE, black_box(0)).unwrap();
                step
            })
        });
    }

    // Slow path, fp-service side only: a vCPU is live, so begin asks for a save-back; the VMM's
    // answer is fed straight to finish_begin (the table keeps naming the vCPU, so every
    // iteration takes the same path).
    {
        let t = table();
        let _v = live_vcpu(0, &t);
        let mut s = FpService::new(NUM_CORES, &clients);
        assert_eq!(
            s.begin(&t, CH, CORE),
            Ok(BeginStep::NeedSaveback {
                vcpu: 0,
                core: CORE
            })
        );
        assert_eq!(s.finish_begin(&t, CH, CORE, Ok(true)), Ok(true));
        s.end(&t, CH, CORE, 0).unwrap();
        g.bench_function("begin_saveback+finish_begin+end", |b| {
            b.iter(|| {
                let s = black_box(&mut s);
                let t = black_box(&*t);
                let step = s.begin(t, black_box(CH), black_box(CORE)).unwrap();
                let saved = s.finish_begin(t, CH, CORE, black_box(Ok(true))).unwrap();
                s.end(t, CH, CORE, black_box(0)).unwrap();
                (step, saved)
            })
        });
    }

    // The whole NEON-vs-guest round, both sides' logic: begin finds the vCPU live, the VMM saves
    // it back (flushing the entry), the section opens and closes, then the guest's next FP use
    // traps and the following exit publishes again.
    {
        let t = table();
        let mut v = live_vcpu(0, &t);
        let mut s = FpService::new(NUM_CORES, &clients);
        g.bench_function("neon_round_with_vmm_saveback", |b| {
            b.iter(|| {
                let s = black_box(&mut s);
                let v = black_box(&mut v);
                let t = black_box(&*t);
                let BeginStep::NeedSaveback { core, .. } = s.begin(t, CH, CORE).unwrap() else {
                    panic!("vCPU not live")
                };
                let act = v.save_back(core, t).unwrap();
                s.finish_begin(t, CH, CORE, Ok(act == FpAction::DisableGuestFp))
                    .unwrap();
                s.end(t, CH, CORE, 0).unwrap();
                v.fp_trap().unwrap();
                v.ctxsync_fp(t).unwrap();
            })
        });
        let st = s.status(&t, CORE).unwrap();
        assert_eq!(st.grants, st.savebacks, "every grant needed a save-back");
        assert_eq!(v.stats.stale_savebacks, 0);
    }
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_exit");

    // VCPUFault (label 8), ESR EC 0x17 (SMC64), IL set.
    let smc: [u64; 1] = [(0x17 << 26) | (1 << 25)];
    // VMFault (label 6): pc, addr, prefetch = 0, ESR EC 0x24 with ISV, SAS = 4 bytes, SRT = x5.
    let mmio: [u64; 4] = [
        0x4008_0000,
        0x0900_0018,
        0,
        (0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (5 << 16),
    ];
    // UnknownSyscall (label 2): x0–x7, fault IP, SP, flags, syscall, x7 (13 words).
    let mut hvc = [0u64; 13];
    for (i, w) in hvc.iter_mut().enumerate() {
        *w = 0x1000 + i as u64;
    }
    hvc[0] = 0x8400_0000; // PSCI_VERSION
    hvc[12] = 0x8000_0001;

    assert_eq!(decode_exit(8, smc.len(), |i| smc[i]), Ok(Exit::Smc));
    assert!(matches!(
        decode_exit(6, mmio.len(), |i| mmio[i]),
        Ok(Exit::Mmio {
            addr: 0x0900_0018,
            ..
        })
    ));
    assert!(matches!(
        decode_exit(2, hvc.len(), |i| hvc[i]),
        Ok(Exit::Hvc {
            x7: 0x8000_0001,
            ..
        })
    ));

    // The message registers are read through a closure, as the VMM reads its IPC buffer.
    fn run(label: u64, words: &[u64]) -> Result<Exit, lazyfp::ExitError> {
        let words = black_box(words);
        decode_exit(black_box(label), words.len(), |i| {
            words.get(i).copied().unwrap_or(0)
        })
    }
    g.bench_function("smc_vcpufault", |b| b.iter(|| run(8, &smc)));
    g.bench_function("mmio_vmfault", |b| b.iter(|| run(6, &mmio)));
    g.bench_function("hvc_unknownsyscall", |b| b.iter(|| run(2, &hvc)));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_ctxsync, bench_cycle, bench_table, bench_fpservice, bench_decode
}
criterion_main!(benches);
