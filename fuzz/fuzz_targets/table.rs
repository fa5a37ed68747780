//! The per-core table under any interleaving of the four hooks of several vCPUs (including moves
//! between cores) with fp-service's reads of the table and the save-backs it asks for, delivered
//! late (after the vCPU may have run, stopped or moved).
//!
//! Hook preconditions that the VMM guarantees are kept (`load_fp` only after `put_fp` or at the
//! start); everything else is arbitrary. Invariants: the table never names a vCPU on two cores;
//! an entry names only a lazy vCPU that owns its FP on that core; seL4's `fpuDisabled` flag, as
//! set by the actions the hooks return, is clear exactly while the guest owns its FP; an entry's
//! `seq` moves by one exactly when its owner changes; after `ctxsync_fp` a guest-owned lazy vCPU is
//! published; a late save-back saves only live state, and refuses only a vCPU that has moved.
#![no_main]

use std::sync::atomic::Ordering::Relaxed;

use arbitrary::Arbitrary;
use lazyfp::{FpAction, FpError, FpOwner, FpPolicy, FpTable, TableError, VcpuFp};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    cores: u8,
    vcpus: u8,
    eager: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Load {
        vcpu: u8,
        core: u8,
    },
    Trap(u8),
    Ctxsync(u8),
    Put(u8),
    /// fp-service reads `core`'s owner for a `neon_begin` and will ask it for a save-back.
    Ask(u8),
    /// A request asked earlier reaches the VMM.
    Deliver(u8),
    /// A save-back for any core, as a confused or hostile fp-service could send it.
    Saveback {
        vcpu: u8,
        core: u8,
    },
}

struct Vcpu {
    fp: VcpuFp,
    /// seL4's fpuDisabled as the returned actions set it (a new TCB has the FPU enabled).
    fpu_disabled: bool,
}

impl Vcpu {
    fn apply(&mut self, action: FpAction) {
        match action {
            FpAction::None => {}
            FpAction::DisableGuestFp => self.fpu_disabled = true,
            FpAction::EnableGuestFp => self.fpu_disabled = false,
        }
    }
}

fn owners(table: &FpTable, cores: u64) -> Vec<(Option<u8>, u64)> {
    (0..cores)
        .map(|c| {
            (
                table.owner(c).unwrap(),
                table.core(c).unwrap().seq.load(Relaxed),
            )
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let cores = (input.cores % 4 + 1) as u64;
    let policy = if input.eager {
        FpPolicy::Eager
    } else {
        FpPolicy::Lazy
    };
    let table = FpTable::default();
    let mut vcpus: Vec<Vcpu> = (0..input.vcpus % 4 + 1)
        .map(|id| {
            let mut fp = VcpuFp::new(id, id as u64 % cores, policy);
            assert_eq!(fp.load_fp(0, &table), Err(FpError::NotMapped));
            fp.run_map_fp(&table, cores).unwrap();
            Vcpu {
                fp,
                fpu_disabled: false,
            }
        })
        .collect();
    let n = vcpus.len();
    let mut asked: Vec<(u8, u64)> = Vec::new();

    for op in input.ops {
        let before = owners(&table, cores);
        match op {
            Op::Load { vcpu, core } => {
                let v = &mut vcpus[vcpu as usize % n];
                if v.fp.owner() != FpOwner::Unloaded {
                    continue; // precondition: put_fp ended the last residency
                }
                let core = core as u64 % (cores + 1);
                let r = v.fp.load_fp(core, &table);
                if core == cores {
                    assert_eq!(r, Err(FpError::Table(TableError::BadCore(core))));
                    assert_eq!(v.fp.owner(), FpOwner::Unloaded);
                    continue;
                }
                let want = match policy {
                    FpPolicy::Lazy => (FpAction::DisableGuestFp, FpOwner::Trapped),
                    FpPolicy::Eager => (FpAction::EnableGuestFp, FpOwner::Guest),
                };
                assert_eq!((r, v.fp.owner(), v.fp.core()), (Ok(want.0), want.1, core));
                v.apply(want.0);
            }
            Op::Trap(i) => {
                let v = &mut vcpus[i as usize % n];
                let traps = v.fp.stats.fp_traps;
                let r = v.fp.fp_trap();
                if v.fp.owner() == FpOwner::Unloaded {
                    assert_eq!(r, Err(FpError::NotLoaded));
                    continue;
                }
                assert_eq!(r, Ok(FpAction::EnableGuestFp));
                assert_eq!(
                    (v.fp.owner(), v.fp.stats.fp_traps),
                    (FpOwner::Guest, traps + 1)
                );
                v.apply(FpAction::EnableGuestFp);
            }
            Op::Ctxsync(i) => {
                let v = &mut vcpus[i as usize % n];
                let binds = v.fp.stats.binds;
                v.fp.ctxsync_fp(&table).unwrap();
                let publish = policy == FpPolicy::Lazy && v.fp.owner() == FpOwner::Guest;
                if publish {
                    assert_eq!(table.owner(v.fp.core()), Ok(Some(v.fp.vcpu())));
                }
                let changed = owners(&table, cores) != before;
                assert_eq!(
                    v.fp.stats.binds,
                    binds + changed as u64,
                    "a bind is counted once"
                );
                assert!(publish || !changed, "only a guest-owned lazy vCPU binds");
            }
            Op::Put(i) => {
                let v = &mut vcpus[i as usize % n];
                let was = v.fp.owner();
                let r = v.fp.put_fp(&table).unwrap();
                let want = if was == FpOwner::Guest {
                    FpAction::DisableGuestFp
                } else {
                    FpAction::None
                };
                assert_eq!((r, v.fp.owner()), (want, FpOwner::Unloaded));
                assert_ne!(table.owner(v.fp.core()), Ok(Some(v.fp.vcpu())));
                v.apply(r);
            }
            Op::Ask(core) => {
                let core = core as u64 % cores;
                if let Some(vcpu) = table.owner(core).unwrap() {
                    asked.push((vcpu, core));
                }
            }
            Op::Deliver(k) => {
                if asked.is_empty() {
                    continue;
                }
                let (id, core) = asked.remove(k as usize % asked.len());
                let v = &mut vcpus[id as usize];
                let (was, at) = (v.fp.owner(), v.fp.core());
                let r = v.fp.save_back(core, &table);
                match r {
                    Ok(FpAction::DisableGuestFp) => {
                        assert!(was == FpOwner::Guest && at == core && policy == FpPolicy::Lazy);
                        assert_eq!(v.fp.owner(), FpOwner::Trapped);
                        v.apply(FpAction::DisableGuestFp);
                    }
                    Ok(FpAction::None) => {
                        assert!(was != FpOwner::Guest || policy == FpPolicy::Eager)
                    }
                    Err(FpError::WrongCore { asked, vcpu_core }) => {
                        // Only a vCPU that moved since fp-service read the table.
                        assert!(asked == core && vcpu_core == at && at != core);
                    }
                    other => panic!("late save-back: {other:?}"),
                }
                assert_ne!(
                    table.owner(core),
                    Ok(Some(id)),
                    "no stale entry left behind"
                );
            }
            Op::Saveback { vcpu, core } => {
                let v = &mut vcpus[vcpu as usize % n];
                let core = core as u64 % (cores + 1);
                match v.fp.save_back(core, &table) {
                    Ok(action) => v.apply(action),
                    Err(FpError::Table(TableError::BadCore(c))) => assert_eq!(c, cores),
                    Err(FpError::WrongCore { asked, vcpu_core }) => {
                        assert!(asked == core && vcpu_core == v.fp.core() && asked != vcpu_core)
                    }
                    Err(e) => panic!("save-back: {e:?}"),
                }
            }
        }

        let after = owners(&table, cores);
        for (c, ((o0, s0), (o1, s1))) in before.iter().zip(&after).enumerate() {
            assert_eq!(
                *s1,
                s0 + (o0 != o1) as u64,
                "core {c}: seq follows the owner"
            );
        }
        for (c, (owner, _)) in after.iter().enumerate() {
            if let Some(id) = owner {
                let v = &vcpus[*id as usize].fp;
                assert_eq!(
                    (v.core(), v.owner(), v.policy()),
                    (c as u64, FpOwner::Guest, FpPolicy::Lazy)
                );
                assert_eq!(
                    after.iter().filter(|(o, _)| o == owner).count(),
                    1,
                    "vCPU {id} on two cores"
                );
            }
        }
        for v in &vcpus {
            match v.fp.owner() {
                FpOwner::Guest => assert!(!v.fpu_disabled, "guest owns FP but it traps"),
                FpOwner::Trapped => assert!(v.fpu_disabled, "trapped but the FPU is on"),
                FpOwner::Unloaded => {}
            }
        }
    }
});
