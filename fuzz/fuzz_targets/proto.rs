//! fp-service's protocol and the VMM's save-back protocol: any client channel, label, length and
//! words, served the way fp-service serves them (a `neon_begin` that needs a save-back calls the
//! VMM, which answers from its vCPU's hooks), while vCPUs publish and withdraw their state.
//!
//! Invariants: a request decodes exactly when its label is known and it is long enough, reads no
//! word past its length, and re-encodes to itself; the per-core counters (grants, save-backs,
//! open sections, leaks, errors) equal the counts of what the replies said; a refused request
//! changes nothing but an error counter, and a caller that is no client only fp-service's own;
//! a save-back is asked for exactly when the table names a vCPU on the core, and that
//! synchronous save-back finds the state live and clears the entry; the VMM refuses a save-back
//! from any channel but fp-service's without reading it.
#![no_main]

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use arbitrary::Arbitrary;
use lazyfp::{
    BeginStep, FpAction, FpError, FpPolicy, FpService, FpServiceError, FpServiceOp, FpTable,
    SavebackError, SavebackOp, VcpuFp,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    cores: u8,
    /// (channel, core) of each client, as the SDF would list them.
    clients: Vec<(u8, u8)>,
    /// The core of each vCPU (ids 0, 1, ...).
    vcpu_cores: Vec<u8>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A request to fp-service from channel `ch`.
    Request {
        ch: u8,
        label: u8,
        wide: Option<u64>,
        length: u8,
        words: [u64; 3],
    },
    /// A message to the VMM's save-back endpoint, on the VMM's channel `channel` (0 is
    /// fp-service's).
    Saveback {
        channel: u8,
        label: u8,
        length: u8,
        words: [u64; 3],
    },
    /// vCPU `i` uses FP and the VMM publishes it (FP trap, then ctxsync after the exit).
    GuestFp(u8),
    /// vCPU `i` stops (put_fp).
    Put(u8),
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Counters {
    grants: u64,
    savebacks: u64,
    open: u64,
    leaks: u64,
    errors: u64,
}

/// Decodes with `decode`, checking that no word at or past `length` is read.
fn decode_bounded<T>(
    length: usize,
    words: &[u64; 3],
    decode: impl FnOnce(&dyn Fn(usize) -> u64) -> T,
) -> T {
    let highest = Cell::new(None::<usize>);
    let mr = |i: usize| {
        highest.set(highest.get().max(Some(i)));
        words.get(i).copied().unwrap_or(u64::MAX)
    };
    let r = decode(&mr);
    if let Some(i) = highest.get() {
        assert!(i < length, "read MR{i} of a {length}-word message");
    }
    r
}

/// The VMM's answer to a save-back (as vmm-pd's `Vm::save_back` gives it): Ok(saved) or the code.
fn vmm_saveback(vcpus: &mut [VcpuFp], table: &FpTable, op: SavebackOp) -> Result<bool, u64> {
    let SavebackOp::Saveback { vcpu, core } = op;
    let Some(v) = vcpus.iter_mut().find(|v| v.vcpu() as u64 == vcpu) else {
        return Err(SavebackError::UnknownVcpu(vcpu).code());
    };
    match v.save_back(core, table) {
        Ok(action) => Ok(action == FpAction::DisableGuestFp),
        Err(FpError::WrongCore { asked, .. }) => Err(SavebackError::BadCore(asked).code()),
        Err(_) => Err(SavebackError::BadCore(core).code()),
    }
}

fuzz_target!(|input: Input| {
    let cores = (input.cores % 4 + 1) as u64;
    let table = FpTable::default();
    table.attach(cores).unwrap();
    let mut svc = FpService::new(cores, &input.clients);
    // Later entries for a channel replace earlier ones; channels past the badge's ids are ignored.
    let clients: HashMap<u8, u64> = input
        .clients
        .iter()
        .filter(|(ch, _)| *ch < 62)
        .map(|&(ch, core)| (ch, core as u64))
        .collect();
    let mut vcpus: Vec<VcpuFp> = input
        .vcpu_cores
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, &c)| {
            let mut v = VcpuFp::new(i as u8, c as u64 % cores, FpPolicy::Lazy);
            v.run_map_fp(&table, cores).unwrap();
            v
        })
        .collect();

    let mut model = vec![Counters::default(); cores as usize];
    let mut service_errors = 0u64;
    // Per client: section open, highest leak count reported.
    let mut open: HashMap<u8, bool> = HashMap::new();
    let mut leaks: HashMap<u8, u64> = HashMap::new();

    for op in input.ops {
        match op {
            Op::Request {
                ch,
                label,
                wide,
                length,
                words,
            } => {
                let label = wide.unwrap_or(label as u64 % 5);
                let length = length as usize % 4;
                let decoded =
                    decode_bounded(length, &words, |mr| FpServiceOp::decode(label, length, mr));
                let need = match label {
                    1 | 3 => 1,
                    2 => 2,
                    _ => {
                        assert_eq!(decoded, Err(FpServiceError::UnknownOp(label)));
                        continue;
                    }
                };
                if length < need {
                    assert_eq!(
                        decoded,
                        Err(FpServiceError::ShortMessage { got: length as u64 })
                    );
                    continue;
                }
                let op = decoded.unwrap();
                let (l2, mrs, len2) = op.encode();
                assert_eq!((l2, len2, &mrs[..len2]), (label, need, &words[..need]));
                assert_eq!(FpServiceOp::decode(l2, len2, |i| mrs[i]), Ok(op));

                let before = model.clone();
                let (core, result) = match op {
                    FpServiceOp::NeonBegin { core } => {
                        let owner = table.owner(core).ok().flatten();
                        let r = svc.begin(&table, ch, core).and_then(|step| match step {
                            BeginStep::Grant => {
                                assert_eq!(owner, None, "granted while a vCPU is live");
                                model[core as usize].grants += 1;
                                model[core as usize].open += 1;
                                Ok(())
                            }
                            BeginStep::NeedSaveback { vcpu, core: c } => {
                                assert_eq!((Some(vcpu), c), (owner, core));
                                let (l, mrs, len) = SavebackOp::Saveback {
                                    vcpu: vcpu as u64,
                                    core,
                                }
                                .encode();
                                let sb = SavebackOp::decode(l, len, |i| mrs[i]).unwrap();
                                let answer = vmm_saveback(&mut vcpus, &table, sb);
                                assert_eq!(answer, Ok(true), "the named vCPU's state is live");
                                assert_eq!(
                                    table.owner(core),
                                    Ok(None),
                                    "save-back clears the entry"
                                );
                                let saved = svc.finish_begin(&table, ch, core, answer)?;
                                assert!(saved);
                                model[core as usize].grants += 1;
                                model[core as usize].savebacks += 1;
                                model[core as usize].open += 1;
                                Ok(())
                            }
                        });
                        if r.is_ok() {
                            assert!(
                                !open.get(&ch).copied().unwrap_or(false),
                                "a second open section"
                            );
                            open.insert(ch, true);
                        }
                        (core, r)
                    }
                    FpServiceOp::NeonEnd { core, leaks: n } => {
                        let r = svc.end(&table, ch, core, n);
                        if r.is_ok() {
                            assert!(
                                open.insert(ch, false).unwrap_or(false),
                                "ended a closed section"
                            );
                            let prev = leaks.entry(ch).or_default();
                            let c = &mut model[core as usize];
                            c.open -= 1;
                            c.leaks += n.saturating_sub(*prev);
                            *prev = (*prev).max(n);
                        }
                        (core, r)
                    }
                    FpServiceOp::Status { core } => {
                        let r = svc.status(&table, core).map(|s| {
                            let c = model[core as usize];
                            assert_eq!(
                                s.words(),
                                [c.grants, c.savebacks, c.open, c.leaks, c.errors, service_errors]
                            );
                        });
                        (core, r)
                    }
                };
                if let Err(e) = result {
                    assert_ne!(e.code(), 0, "0 is the success label");
                    let _ = (e.detail(), e.to_string());
                    model = before;
                    let known = clients.contains_key(&ch);
                    match model.get_mut(core as usize) {
                        Some(c) if known => c.errors += 1,
                        _ => service_errors += 1,
                    }
                    match e {
                        FpServiceError::UnknownClient(c) => assert!(!known && c == ch as u64),
                        FpServiceError::BadCore(c) => assert!(c == core && core >= cores),
                        FpServiceError::WrongCore { asked, client_core } => {
                            assert!(
                                known
                                    && asked == core
                                    && clients[&ch] == client_core
                                    && client_core != core
                            )
                        }
                        FpServiceError::AlreadyOpen => {
                            assert!(open.get(&ch).copied().unwrap_or(false))
                        }
                        FpServiceError::NotOpen => {
                            assert!(!open.get(&ch).copied().unwrap_or(false))
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                } else {
                    assert!(
                        clients.get(&ch) == Some(&core) || matches!(op, FpServiceOp::Status { .. })
                    );
                }
            }
            Op::Saveback {
                channel,
                label,
                length,
                words,
            } => {
                let (channel, label, length) =
                    (channel as u64 % 3, label as u64 % 3, length as usize % 4);
                // Refused unread: as if the message had no words.
                let read = if channel == 0 { length } else { 0 };
                let r = decode_bounded(read, &words, |mr| {
                    SavebackOp::decode_from(channel, 0, label, length, mr)
                });
                if channel != 0 {
                    assert_eq!(r, Err(SavebackError::NotFpService(channel)));
                    assert_eq!(SavebackError::NotFpService(channel).code(), 6);
                    continue;
                }
                match r {
                    Ok(op) => {
                        assert!(label == 1 && length >= 2);
                        assert_eq!(
                            op,
                            SavebackOp::Saveback {
                                vcpu: words[0],
                                core: words[1]
                            }
                        );
                        let (l, mrs, len) = op.encode();
                        assert_eq!(SavebackOp::decode(l, len, |i| mrs[i]), Ok(op));
                        // An unsolicited save-back is safe: it saves or finds nothing live.
                        let _ = vmm_saveback(&mut vcpus, &table, op);
                    }
                    Err(SavebackError::UnknownOp(l)) => assert!(l == label && label != 1),
                    Err(SavebackError::ShortMessage { got }) => {
                        assert!(label == 1 && got == length as u64 && length < 2)
                    }
                    Err(e) => panic!("decode gave {e:?}"),
                }
            }
            Op::GuestFp(i) => {
                if let Some(v) = vcpus.get_mut(i as usize % 4) {
                    if v.owner() == lazyfp::FpOwner::Unloaded {
                        v.load_fp(v.core(), &table).unwrap();
                    }
                    v.fp_trap().unwrap();
                    v.ctxsync_fp(&table).unwrap();
                    assert_eq!(table.owner(v.core()), Ok(Some(v.vcpu())));
                }
            }
            Op::Put(i) => {
                if let Some(v) = vcpus.get_mut(i as usize % 4) {
                    v.put_fp(&table).unwrap();
                    assert_ne!(table.owner(v.core()), Ok(Some(v.vcpu())));
                }
            }
        }
        for (c, m) in model.iter().enumerate() {
            let e = table.core(c as u64).unwrap();
            let got = Counters {
                grants: e.grants.load(Relaxed),
                savebacks: e.savebacks.load(Relaxed),
                open: e.open_sections.load(Relaxed),
                leaks: e.leaks.load(Relaxed),
                errors: e.errors.load(Relaxed),
            };
            assert_eq!(&got, m, "core {c}");
        }
        assert_eq!(svc.stats.errors, service_errors);
    }
});
