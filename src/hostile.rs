//! The hostile IPC client's steps (docs/hostile.md, "The hostile IPC client"): every malformed
//! or unauthorised message it sends fp-service and the VMM, the reply each must give, and how it
//! judges from fp-service's status that the message changed nothing.
//!
//! The client is a PD neither server trusts: fp-service does not know its channel (it is no NEON
//! worker), and the VMM serves save-backs to fp-service's channel only. So every request but
//! `status` is refused, whatever it says: fp-service with `UnknownClient` once the message has
//! the words its op needs (`UnknownOp` / `ShortMessage` / `BadCore` before that), the VMM with
//! `NotFpService` before reading anything.
use heapless::Vec;

use crate::proto::{CoreStatus, FpServiceError, FpServiceOp, SavebackError, SavebackOp};
use crate::sdf::Vcpu;
use crate::table::MAX_CORES;

/// seL4's longest message (`seL4_MsgMaxLength`).
pub const MSG_MAX: usize = 120;
/// The most steps any system gets.
pub const MAX_STEPS: usize = 48;
/// A label with all 52 label bits of the message info set.
pub const LABEL_MAX: u64 = (1 << 52) - 1;

/// Who a step calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    FpService,
    Vmm,
}

/// A reply as the caller sees it: label, length, MR0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub label: u64,
    pub length: usize,
    pub mr0: u64,
}

/// The reply a message must get: its label and length, and MR0 where it is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub label: u64,
    pub length: usize,
    pub mr0: Option<u64>,
}

impl Want {
    /// fp-service's error reply: the code, one word of detail.
    pub const fn fp(e: FpServiceError) -> Self {
        Self {
            label: e.code(),
            length: 1,
            mr0: Some(e.detail()),
        }
    }

    /// The VMM's error reply: the code, no words.
    pub const fn vmm(e: SavebackError) -> Self {
        Self {
            label: e.code(),
            length: 0,
            mr0: None,
        }
    }

    /// A `status` reply (its words are the counters).
    pub const STATUS: Self = Self {
        label: 0,
        length: CoreStatus::WORDS,
        mr0: None,
    };

    pub fn accepts(&self, a: Answer) -> bool {
        a.label == self.label && a.length == self.length && self.mr0.is_none_or(|m| m == a.mr0)
    }
}

/// One message: label, length and the first two words (the client fills the words after them,
/// up to `length`, with a pattern), and the reply it must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    pub label: u64,
    pub length: usize,
    pub words: [u64; 2],
    pub want: Want,
}

/// One step: a name, whom it calls, and one or two messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub peer: Peer,
    pub msgs: Vec<Msg, 2>,
}

impl Step {
    /// fp-service errors these messages add to its own counter (`status` MR5): each refusal by
    /// fp-service counts once there, never in a core's entry.
    pub fn service_errors(&self) -> u64 {
        match self.peer {
            Peer::FpService => self.msgs.iter().filter(|m| m.want.label != 0).count() as u64,
            Peer::Vmm => 0,
        }
    }
}

/// What the client knows of the system (all from system.xml).
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    pub num_cores: u64,
    /// The client's own core.
    pub core: u64,
    /// The client's channel as fp-service numbers it (what `UnknownClient` names).
    pub fp_channel: u64,
    /// The client's channel as the VMM numbers it (what `NotFpService` names).
    pub vmm_channel: u64,
    /// Every vCPU.
    pub vcpus: &'a [Vcpu],
}

impl Env<'_> {
    /// A core other than `core`: the next one, or `num_cores` on a one-core system.
    fn other_than(&self, core: u64) -> u64 {
        if self.num_cores > 1 {
            (core + 1) % self.num_cores
        } else {
            self.num_cores
        }
    }
}

const VCPU_STEPS: [&str; 8] = [
    "saveback-vcpu0",
    "saveback-vcpu1",
    "saveback-vcpu2",
    "saveback-vcpu3",
    "saveback-vcpu4",
    "saveback-vcpu5",
    "saveback-vcpu6",
    "saveback-vcpu7",
];

/// Every step, in order.
pub fn steps(env: &Env) -> Vec<Step, MAX_STEPS> {
    use FpServiceError::{BadCore, ShortMessage, UnknownClient, UnknownOp};
    let (own, n) = (env.core, env.num_cores);
    let mut out = Vec::new();
    let mut step = |name, peer, msgs: &[(u64, usize, [u64; 2], Want)]| {
        let msgs = msgs
            .iter()
            .map(|&(label, length, words, want)| Msg {
                label,
                length,
                words,
                want,
            })
            .collect();
        // MAX_STEPS bounds every system's list (a test checks the largest).
        let _ = out.push(Step { name, peer, msgs });
    };
    let unknown = Want::fp(UnknownClient(env.fp_channel));
    let short = |got| Want::fp(ShortMessage { got });
    let (fp, vmm) = (Peer::FpService, Peer::Vmm);
    let (begin, end, status) = (
        FpServiceOp::NEON_BEGIN,
        FpServiceOp::NEON_END,
        FpServiceOp::STATUS,
    );

    // fp-service: labels 0..=4 (1-3 are its ops), then each op short, long, and with every core.
    step(
        "fp-label-0",
        fp,
        &[(0, 1, [own, 0], Want::fp(UnknownOp(0)))],
    );
    step(
        "fp-label-4",
        fp,
        &[(4, 1, [own, 0], Want::fp(UnknownOp(4)))],
    );
    step(
        "fp-label-max",
        fp,
        &[(LABEL_MAX, MSG_MAX, [own, 0], Want::fp(UnknownOp(LABEL_MAX)))],
    );
    step("begin-short", fp, &[(begin, 0, [own, 0], short(0))]);
    step("end-short", fp, &[(end, 0, [own, 0], short(0))]);
    step("end-one-word", fp, &[(end, 1, [own, 0], short(1))]);
    step("status-short", fp, &[(status, 0, [own, 0], short(0))]);
    step("begin-long", fp, &[(begin, MSG_MAX, [own, 0], unknown)]);
    // The length field holds 127: seL4 delivers 120 words.
    step("begin-length-127", fp, &[(begin, 127, [own, 0], unknown)]);
    step("end-long", fp, &[(end, MSG_MAX, [own, 0], unknown)]);
    step(
        "status-long",
        fp,
        &[(status, MSG_MAX, [own, 0], Want::STATUS)],
    );
    step("begin-own-core", fp, &[(begin, 1, [own, 0], unknown)]);
    step(
        "begin-other-core",
        fp,
        &[(begin, 1, [env.other_than(own), 0], unknown)],
    );
    step("begin-core-n", fp, &[(begin, 1, [n, 0], unknown)]);
    step("begin-core-max", fp, &[(begin, 1, [u64::MAX, 0], unknown)]);
    step(
        "begin-repeated",
        fp,
        &[(begin, 1, [own, 0], unknown), (begin, 1, [own, 0], unknown)],
    );
    step("end-unpaired", fp, &[(end, 2, [own, 0], unknown)]);
    // Were it served, 2^40 leaks would show in the core's counters.
    step("end-huge-leaks", fp, &[(end, 2, [own, 1 << 40], unknown)]);
    step(
        "end-other-core",
        fp,
        &[(end, 2, [env.other_than(own), 0], unknown)],
    );
    step("end-core-max", fp, &[(end, 2, [u64::MAX, 0], unknown)]);
    step(
        "begin-then-end",
        fp,
        &[(begin, 1, [own, 0], unknown), (end, 2, [own, 0], unknown)],
    );
    step(
        "status-core-n",
        fp,
        &[(status, 1, [n, 0], Want::fp(BadCore(n)))],
    );
    step(
        "status-core-max",
        fp,
        &[(status, 1, [u64::MAX, 0], Want::fp(BadCore(u64::MAX)))],
    );

    // The VMM: labels 0..=2 (1 is save_back), short and long, every vCPU as fp-service would
    // name it (some live when the step runs), and vCPUs and cores that do not exist.
    let refused = Want::vmm(SavebackError::NotFpService(env.vmm_channel));
    let sb = SavebackOp::SAVEBACK;
    let (vcpu0, core0) = env
        .vcpus
        .first()
        .map_or((0, own), |v| (v.id as u64, v.cpu as u64));
    step("vmm-label-0", vmm, &[(0, 2, [vcpu0, core0], refused)]);
    step("vmm-label-2", vmm, &[(2, 2, [vcpu0, core0], refused)]);
    step(
        "vmm-label-max",
        vmm,
        &[(LABEL_MAX, 2, [vcpu0, core0], refused)],
    );
    step("saveback-short", vmm, &[(sb, 0, [vcpu0, core0], refused)]);
    step(
        "saveback-one-word",
        vmm,
        &[(sb, 1, [vcpu0, core0], refused)],
    );
    step(
        "saveback-long",
        vmm,
        &[(sb, MSG_MAX, [vcpu0, core0], refused)],
    );
    for v in env.vcpus {
        if let Some(name) = VCPU_STEPS.get(v.id as usize) {
            step(name, vmm, &[(sb, 2, [v.id as u64, v.cpu as u64], refused)]);
        }
    }
    // Not live: a vCPU's state is never live on a core it does not run on.
    step(
        "saveback-not-live",
        vmm,
        &[(sb, 2, [vcpu0, env.other_than(core0)], refused)],
    );
    step(
        "saveback-unknown-vcpu",
        vmm,
        &[(sb, 2, [env.vcpus.len() as u64, own], refused)],
    );
    step(
        "saveback-vcpu-max",
        vmm,
        &[(sb, 2, [u64::MAX, own], refused)],
    );
    step("saveback-core-n", vmm, &[(sb, 2, [vcpu0, n], refused)]);
    step(
        "saveback-core-max",
        vmm,
        &[(sb, 2, [vcpu0, u64::MAX], refused)],
    );
    step(
        "saveback-repeated",
        vmm,
        &[
            (sb, 2, [vcpu0, core0], refused),
            (sb, 2, [vcpu0, core0], refused),
        ],
    );
    out
}

/// fp-service's status of the cores in `read` (a bit each), read one core after another in
/// ascending order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub cores: [CoreStatus; MAX_CORES],
    pub read: u64,
}

impl Snapshot {
    /// (core, status) of every core read, in the order read.
    fn read(&self) -> impl Iterator<Item = (usize, &CoreStatus)> {
        self.cores
            .iter()
            .enumerate()
            .filter(|(c, _)| self.read & (1 << c) != 0)
    }
}

/// A counter that moved: core (None: fp-service's own), its name, before, after, and what it
/// should have become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    pub core: Option<usize>,
    pub field: &'static str,
    pub before: u64,
    pub after: u64,
    pub want: u64,
}

/// What one sending of a step did to the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// Bit c: core c's grants, savebacks and open sections did not move.
    pub unmoved: u64,
    /// The first of those that moved (NEON workers, or the step).
    pub moved: Option<Moved>,
}

/// The first of core `c`'s grants, savebacks and open sections that differs from `x` to `y`.
pub fn neon_moved(c: usize, x: &CoreStatus, y: &CoreStatus) -> Option<Moved> {
    [
        ("grants", x.grants, y.grants),
        ("savebacks", x.savebacks, y.savebacks),
        ("open", x.open, y.open),
    ]
    .into_iter()
    .find(|(_, p, q)| p != q)
    .map(|(field, before, after)| Moved {
        core: Some(c),
        field,
        before,
        after,
        want: before,
    })
}

/// Compares the status before and after sending a step (once or more) that fp-service must
/// count as `service_errors` refusals, on the cores both read. Counters no legitimate client
/// moves in a passing run must be exact: every core's `leaks` and `errors` unchanged,
/// fp-service's own errors up by exactly `service_errors`. The NEON workers move grants,
/// savebacks and open sections all the time, so those are only reported (the client sends the
/// step again until each core has been seen unmoved once: a change the step made would be there
/// every time).
pub fn judge(before: &Snapshot, after: &Snapshot, service_errors: u64) -> Result<Judgement, Moved> {
    if before.read != after.read {
        return Err(Moved {
            core: None,
            field: "cores read",
            before: before.read,
            after: after.read,
            want: before.read,
        });
    }
    let mut unmoved = 0;
    let mut moved = None;
    for ((c, x), (_, y)) in before.read().zip(after.read()) {
        let exact = [("leaks", x.leaks, y.leaks), ("errors", x.errors, y.errors)];
        if let Some(&(field, before, after)) = exact.iter().find(|(_, p, q)| p != q) {
            return Err(Moved {
                core: Some(c),
                field,
                before,
                after,
                want: before,
            });
        }
        match neon_moved(c, x, y) {
            None => unmoved |= 1 << c,
            Some(m) => moved = moved.or(Some(m)),
        }
    }
    // fp-service's own counter: from the last read before to every read after.
    let base = before.read().last().map_or(0, |(_, s)| s.service_errors);
    let want = base.wrapping_add(service_errors);
    if let Some((_, s)) = after.read().find(|(_, s)| s.service_errors != want) {
        return Err(Moved {
            core: None,
            field: "service errors",
            before: base,
            after: s.service_errors,
            want,
        });
    }
    Ok(Judgement { unmoved, moved })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FpService, FpTable};

    const VCPUS4: [Vcpu; 4] = [
        Vcpu { id: 0, cpu: 0 },
        Vcpu { id: 1, cpu: 1 },
        Vcpu { id: 2, cpu: 2 },
        Vcpu { id: 3, cpu: 3 },
    ];

    fn env(num_cores: u64, vcpus: &[Vcpu]) -> Env<'_> {
        Env {
            num_cores,
            core: 0,
            fp_channel: 5,
            vmm_channel: 8,
            vcpus,
        }
    }

    /// The words of a message as the client sends them (the pattern past the first two).
    fn word(m: &Msg, i: usize) -> u64 {
        m.words.get(i).copied().unwrap_or(0xbad0_0000 | i as u64)
    }

    /// Runs every fp-service step through fp-service's real request path, as a caller on the
    /// client's channel, with NEON workers on channels 1.. and vCPU 0's state live on core 0.
    fn run_against_fp_service(num_cores: u64) {
        let vcpus = &VCPUS4[..num_cores as usize];
        let e = env(num_cores, vcpus);
        let table = FpTable::default();
        table.attach(num_cores).unwrap();
        table.bind(0, 0).unwrap();
        let workers: std::vec::Vec<(u8, u8)> = (0..num_cores as u8).map(|c| (c + 1, c)).collect();
        let mut svc = FpService::new(num_cores, &workers);
        let mut refusals = 0;
        for step in steps(&e).iter().filter(|s| s.peer == Peer::FpService) {
            for m in &step.msgs {
                // seL4 delivers at most MSG_MAX words.
                let length = m.length.min(MSG_MAX);
                let r = svc.handle(
                    &table,
                    e.fp_channel as u8,
                    m.label,
                    length,
                    |i| word(m, i),
                    |_, _| panic!("{}: fp-service asked the VMM for a save-back", step.name),
                );
                let got = Answer {
                    label: r.label,
                    length: r.length,
                    mr0: r.mrs[0],
                };
                assert!(
                    m.want.accepts(got),
                    "{}: got {got:?}, want {:?}",
                    step.name,
                    m.want
                );
            }
            refusals += step.service_errors();
        }
        for c in 0..num_cores {
            let s = svc.status(&table, c).unwrap();
            assert_eq!(
                (s.grants, s.savebacks, s.open, s.leaks, s.errors),
                (0, 0, 0, 0, 0),
                "core {c}"
            );
            assert_eq!(s.service_errors, refusals);
        }
        assert_eq!(table.owner(0), Ok(Some(0)), "vCPU 0's state stays live");
        assert!(refusals >= 20, "{refusals}");
    }

    #[test]
    fn fp_service_gives_every_step_its_reply() {
        run_against_fp_service(1);
        run_against_fp_service(4);
    }

    #[test]
    fn the_vmm_refuses_every_step_unread() {
        let vcpus = &VCPUS4[..];
        let e = env(4, vcpus);
        let never = |_: usize| -> u64 { panic!("read a word of an untrusted caller") };
        let vmm_steps: std::vec::Vec<_> = steps(&e)
            .into_iter()
            .filter(|s| s.peer == Peer::Vmm)
            .collect();
        for step in &vmm_steps {
            for m in &step.msgs {
                let e = SavebackOp::decode_from(e.vmm_channel, 0, m.label, m.length, never)
                    .expect_err(step.name);
                let got = Answer {
                    label: e.code(),
                    length: 0,
                    mr0: 0,
                };
                assert!(m.want.accepts(got), "{}", step.name);
            }
            assert_eq!(step.service_errors(), 0);
        }
        // From fp-service's channel the same messages would be served or refused otherwise:
        // the steps are what fp-service sends, and worse.
        let served = vmm_steps
            .iter()
            .flat_map(|s| &s.msgs)
            .filter(|m| SavebackOp::decode_from(0, 0, m.label, m.length, |i| word(m, i)).is_ok())
            .count();
        assert!(served >= 8, "{served}");
        for name in &VCPU_STEPS[..4] {
            assert!(vmm_steps.iter().any(|s| s.name == *name), "{name}");
        }
    }

    #[test]
    fn the_step_list() {
        let one = steps(&env(1, &VCPUS4[..1]));
        let four = steps(&env(4, &VCPUS4));
        assert_eq!(four.len(), one.len() + 3, "a save-back step per vCPU");
        assert!(four.len() < MAX_STEPS, "room left: {}", four.len());
        let mut names: std::vec::Vec<_> = four.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), four.len(), "names are distinct");
        // Every label 0..=N+1 of both servers, short and long messages.
        for (peer, labels) in [(Peer::FpService, 0..=4), (Peer::Vmm, 0..=2)] {
            for l in labels {
                assert!(
                    four.iter()
                        .any(|s| s.peer == peer && s.msgs.iter().any(|m| m.label == l)),
                    "{peer:?} label {l}"
                );
            }
            let lengths: std::vec::Vec<_> = four
                .iter()
                .filter(|s| s.peer == peer)
                .flat_map(|s| s.msgs.iter().map(|m| m.length))
                .collect();
            assert!(
                lengths.contains(&0) && lengths.contains(&MSG_MAX),
                "{peer:?}"
            );
        }
        // The cores: the client's, another, num_cores and u64::MAX.
        let cores: std::vec::Vec<u64> = four
            .iter()
            .filter(|s| s.name.starts_with("begin"))
            .flat_map(|s| s.msgs.iter().map(|m| m.words[0]))
            .collect();
        for c in [0, 1, 4, u64::MAX] {
            assert!(cores.contains(&c), "core {c}");
        }
        let not_live = one.iter().find(|s| s.name == "saveback-not-live").unwrap();
        assert_eq!(
            not_live.msgs[0].words,
            [0, 1],
            "one core: a core that does not exist"
        );
        let not_live = four.iter().find(|s| s.name == "saveback-not-live").unwrap();
        assert_eq!(
            not_live.msgs[0].words,
            [0, 1],
            "vCPU 0 does not run on core 1"
        );
    }

    fn snap(cores: &[CoreStatus]) -> Snapshot {
        let mut s = Snapshot {
            read: (1 << cores.len()) - 1,
            ..Snapshot::default()
        };
        s.cores[..cores.len()].copy_from_slice(cores);
        s
    }

    const QUIET: CoreStatus = CoreStatus {
        grants: 10,
        savebacks: 4,
        open: 1,
        leaks: 0,
        errors: 0,
        service_errors: 7,
    };

    #[test]
    fn judging_the_counters() {
        let before = snap(&[QUIET, QUIET]);
        let refused = |n: u64| CoreStatus {
            service_errors: 7 + n,
            ..QUIET
        };
        assert_eq!(
            judge(&before, &snap(&[refused(2), refused(2)]), 2),
            Ok(Judgement {
                unmoved: 0b11,
                moved: None
            })
        );
        // A NEON section on core 1 meanwhile: reported, not an error.
        let busy = CoreStatus {
            grants: 11,
            open: 0,
            ..refused(1)
        };
        assert_eq!(
            judge(&before, &snap(&[refused(1), busy]), 1),
            Ok(Judgement {
                unmoved: 0b01,
                moved: Some(Moved {
                    core: Some(1),
                    field: "grants",
                    before: 10,
                    after: 11,
                    want: 10
                })
            })
        );
        // Refusals counted the wrong number of times, or charged to a core; leaks.
        assert_eq!(
            judge(&before, &snap(&[refused(1), refused(1)]), 2).map(|_| ()),
            Err(Moved {
                core: None,
                field: "service errors",
                before: 7,
                after: 8,
                want: 9
            })
        );
        let charged = CoreStatus {
            errors: 1,
            ..refused(0)
        };
        assert_eq!(
            judge(&before, &snap(&[refused(0), charged]), 0),
            Err(Moved {
                core: Some(1),
                field: "errors",
                before: 0,
                after: 1,
                want: 0
            })
        );
        let leaked = CoreStatus {
            leaks: 1 << 40,
            ..refused(0)
        };
        assert_eq!(
            judge(&before, &snap(&[leaked, refused(0)]), 0).map(|_| ()),
            Err(Moved {
                core: Some(0),
                field: "leaks",
                before: 0,
                after: 1 << 40,
                want: 0
            })
        );
        // A core fewer after than before.
        assert!(judge(&before, &snap(&[QUIET]), 0).is_err());
        // Only the cores read are judged: core 0's grants may move unread, core 1's errors not.
        let mut b1 = snap(&[QUIET, QUIET]);
        b1.read = 0b10;
        let mut a1 = snap(&[busy, charged]);
        a1.read = 0b10;
        assert_eq!(judge(&b1, &a1, 0).map_err(|m| m.field), Err("errors"));
        a1.cores[1] = refused(0);
        assert_eq!(
            judge(&b1, &a1, 0),
            Ok(Judgement {
                unmoved: 0b10,
                moved: None
            })
        );
    }
}
