//! Property tests: lazyfp's FP hooks ([`VcpuFp`]), the shared per-core table ([`FpTable`]) and
//! fp-service's logic ([`FpService`]) driven against a model of seL4 16's FPU mechanism.
//!
//! The kernel model ([`Kernel`], shared with the model checker in `tests/common/kernel.rs`)
//! follows the project's shared seL4/Microkit facts (sel4-microkit-facts.md), "FP/SIMD in seL4
//! 16". The system around it ([`System`]) drives lazyfp the way the PDs do:
//! - the VMM (vmm-pd `Vm`): `run_map_fp` + `load_fp` before the vCPU's first run; every exit is
//!   decoded (`decode_exit`), dispatched (an FP trap → `fp_trap`) and followed by `ctxsync_fp`;
//!   every [`FpAction`] becomes the `TCB_SetFlags` call on the vCPU's TCB; a save-back request
//!   from fp-service runs `save_back` and answers `saved = (action == DisableGuestFp)`;
//!   `put_fp` + `load_fp` model a stop/restart or a move to another core;
//! - fp-service (fp-service `Service`): `begin`, then on `NeedSaveback` the VMM's save-back and
//!   `finish_begin`; `end`;
//! - NEON clients: FPU-enabled PDs pinned to a core that use NEON inside their sections.
//!
//! Invariants, checked after every step by [`System::check`]:
//! 1. No FP value lost or leaked: every thread that reads its FP registers sees exactly the value
//!    it last wrote; and, at every step, each thread's latest value is either live in its core's
//!    registers (it is the kernel's FPU owner there) or saved in its TCB.
//! 2. The table agrees with the kernel: a core's entry names the vCPU only if the vCPU's
//!    `fpuDisabled` is clear and it is on that core; when the vCPU's state is live (kernel owner)
//!    and the hooks say `Guest`, the table names it; the hooks' `Trapped`/`Guest` matches the
//!    kernel's `fpuDisabled` flag.
//! 3. Counters add up (hook stats, per-core grants, save-backs, open sections, leaks).
//! 4. The lazy policy's effect: after a NEON section on the vCPU's core the vCPU's `fpuDisabled`
//!    is set, and until the guest uses FP again, running it loads nothing.
//! 5. Bad requests to fp-service return the expected error and change no core's status.
//!
//! Eager policy (pre-patch behaviour): no traps ever, the table never names the vCPU, and values
//! are still neither lost nor leaked (the kernel switches eagerly). As in the project's eager
//! build variant, the VMM is then FPU-enabled and uses FP on every exit (`touch_fp`).
use lazyfp::{
    BeginStep, Exit, FpAction, FpError, FpOwner, FpPolicy, FpService, FpServiceError, FpTable,
    VcpuFp,
};
use proptest::prelude::*;

mod common;

use common::kernel::{FpUse, Kernel, Tid};
use common::ExitKind;

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------

/// The guest's vCPU thread; its vCPU id in lazyfp is [`VCPU_ID`].
const VCPU: Tid = 0;
const VCPU_ID: u8 = 0;
/// The VMM PD: `fpu="false"` in the lazy build, `fpu="true"` in the eager one.
const VMM: Tid = 1;
/// fp-service: always `fpu="false"`.
const FP_SERVICE: Tid = 2;
/// NEON client `i` is thread `FIRST_CLIENT + i` ...
const FIRST_CLIENT: Tid = 3;
/// ... and calls fp-service on channel `FIRST_CHANNEL + i` (channel 0 is the VMM's).
const FIRST_CHANNEL: u8 = 1;
/// Thread names, by [`Tid`].
const NAMES: &[&str] = &[
    "vCPU",
    "VMM",
    "fp-service",
    "NEON client 0",
    "NEON client 1",
    "NEON client 2",
];

/// A kernel-model result that must be Ok: its error is the failed invariant.
fn ok<T>(r: Result<T, String>, when: &str) -> T {
    r.unwrap_or_else(|e| panic!("{when}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The system: kernel model + lazyfp's VMM hooks, table and fp-service
// ---------------------------------------------------------------------------------------------

/// The generated system shape.
#[derive(Clone, Debug)]
struct Config {
    policy: FpPolicy,
    num_cores: u64,
    vcpu_core: u64,
    vmm_core: u64,
    /// Core of each NEON client (at least one is the vCPU's core).
    client_cores: Vec<u64>,
}

/// What the counters must say, counted from the model's side.
#[derive(Clone, Debug, Default)]
struct Expected {
    /// Guest FP instructions that trapped.
    fp_traps: u64,
    /// Save-back requests that found the vCPU's FP enabled in the kernel (state live or pending).
    live_savebacks: u64,
    /// Save-back requests that found it disabled already.
    stale_savebacks: u64,
    /// `load_fp` / `put_fp` calls.
    loads: u64,
    puts: u64,
    /// Per core: successful `neon_begin`s, those that needed a save-back that saved, `neon_end`s.
    grants: Vec<u64>,
    saved_grants: Vec<u64>,
    ends: Vec<u64>,
    /// Per client: whether its section is open.
    open: Vec<bool>,
    /// Invariant 4: a NEON section on the vCPU's core saved it back and the guest has not used
    /// FP since; the vCPU's load count must stay at this value.
    idle_after_saveback: Option<u64>,
}

/// Requests fp-service must refuse without changing anything (invariant 5).
#[derive(Clone, Copy, Debug)]
enum BadRequest {
    /// A channel that is no NEON client's.
    UnknownClient { ch: u8, end: bool },
    /// A core the system does not have: `num_cores + past`, or `u64::MAX` when `past == 3`.
    NoSuchCore { client: usize, past: u64, end: bool },
    /// A real core that is not the client's (`client_core + shift`, mod the core count).
    WrongCore {
        client: usize,
        shift: u64,
        end: bool,
    },
}

/// One step of the system. Client indices and cores are reduced modulo the configuration.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The vCPU is scheduled on its core; if `uses_fp` it reads its FP registers (trapping to
    /// the VMM first when its FP is disabled), and if `writes` it writes a new value.
    GuestRuns { uses_fp: bool, writes: bool },
    /// The vCPU exits for a reason that involves no FP.
    Exit(ExitKind),
    /// A NEON client: `neon_begin`, use NEON, `neon_end`.
    NeonSection { client: usize },
    /// `neon_begin` and NEON use without an end (the section stays open).
    NeonBeginOnly { client: usize },
    /// `neon_end` alone (an error unless a section is open).
    NeonEndOnly { client: usize },
    /// The VMM is scheduled without an exit (e.g. a notification).
    VmmRuns,
    /// fp-service is scheduled (between requests).
    FpServiceRuns,
    /// The VMM moves the vCPU: `put_fp`, `TCB_SetAffinity`, `load_fp(to_core)`.
    MoveVcpu { to_core: u64 },
    /// The VMM stops and restarts the vCPU on its core: `put_fp`, `load_fp`.
    StopStart,
    /// A request fp-service must refuse.
    Bad(BadRequest),
}

struct System {
    cfg: Config,
    kernel: Kernel,
    table: Box<FpTable>,
    vcpu: VcpuFp,
    svc: FpService,
    exp: Expected,
}

/// fp-service's status words of a core: grants, savebacks, open sections, leaks.
type Status = [u64; 4];

impl System {
    /// Boots the system: the VMM's `run_map_fp`, then `load_fp` before the vCPU's first run.
    fn new(cfg: Config) -> Self {
        let n = cfg.num_cores;
        let eager = cfg.policy == FpPolicy::Eager;
        // Microkit creates vCPU TCBs FPU-enabled; the VMM is fpu="true" only in the eager build.
        let mut threads = vec![
            (cfg.vcpu_core, false),
            (cfg.vmm_core, !eager),
            (cfg.vmm_core, true),
        ];
        threads.extend(cfg.client_cores.iter().map(|&c| (c, false)));
        let clients: Vec<(u8, u8)> = cfg
            .client_cores
            .iter()
            .enumerate()
            .map(|(i, &c)| (FIRST_CHANNEL + i as u8, c as u8))
            .collect();
        let mut s = Self {
            kernel: Kernel::new(n, NAMES, &threads),
            table: Box::default(),
            vcpu: VcpuFp::new(VCPU_ID, cfg.vcpu_core, cfg.policy),
            svc: FpService::new(n, &clients),
            exp: Expected {
                grants: vec![0; n as usize],
                saved_grants: vec![0; n as usize],
                ends: vec![0; n as usize],
                open: vec![false; cfg.client_cores.len()],
                ..Expected::default()
            },
            cfg,
        };
        s.vcpu.run_map_fp(&s.table, n).expect("run_map_fp");
        s.load(s.cfg.vcpu_core);
        s.check("boot");
        s
    }

    fn lazy(&self) -> bool {
        self.cfg.policy == FpPolicy::Lazy
    }

    fn client_tid(i: usize) -> Tid {
        FIRST_CLIENT + i
    }

    fn client_ch(i: usize) -> u8 {
        FIRST_CHANNEL + i as u8
    }

    fn statuses(&mut self) -> Vec<Status> {
        (0..self.cfg.num_cores)
            .map(|c| {
                let s = self
                    .svc
                    .status(&self.table, c)
                    .expect("status of a real core");
                [s.grants, s.savebacks, s.open, s.leaks]
            })
            .collect()
    }

    /// `load_fp(core)` and its `TCB_SetFlags`.
    fn load(&mut self, core: u64) {
        let action = self.vcpu.load_fp(core, &self.table).expect("load_fp");
        self.exp.loads += 1;
        ok(self.kernel.apply(VCPU, action), "load_fp's TCB_SetFlags");
    }

    /// `put_fp` and its `TCB_SetFlags`. Like KVM's put (save the registers into the vCPU, flush
    /// the tracking), it leaves the vCPU's state saved in its TCB, its FP trapped and no core's
    /// entry naming it, whatever the policy.
    fn put(&mut self) {
        let action = self.vcpu.put_fp(&self.table).expect("put_fp");
        self.exp.puts += 1;
        ok(self.kernel.apply(VCPU, action), "put_fp's TCB_SetFlags");
        assert!(
            self.kernel.fpu_disabled[VCPU],
            "put_fp left the vCPU's FP enabled"
        );
        assert!(
            !self.kernel.fpu_owner.contains(&Some(VCPU)),
            "put_fp left the vCPU's state live"
        );
        for c in 0..self.cfg.num_cores {
            assert_ne!(
                self.table.owner(c),
                Ok(Some(VCPU_ID)),
                "put_fp left core {c}'s entry naming the vCPU"
            );
        }
    }

    /// A thread that uses FP reads its registers, checks them and maybe writes a new value.
    fn use_fp(&mut self, t: Tid, writes: bool, when: &str) {
        if ok(self.kernel.use_fp(t, writes), when) == FpUse::Trapped {
            panic!("{when}: {} trapped on FP", self.kernel.name(t));
        }
    }

    /// The vCPU's fault reaches the VMM (vmm-pd `Vm::handle_fault`): the VMM runs (in the eager
    /// build it uses FP first), decodes the message, dispatches, and calls `ctxsync_fp`.
    fn vmm_handles_exit(&mut self, kind: ExitKind) {
        ok(self.kernel.schedule(VMM), "VMM scheduled");
        if !self.kernel.fpu_disabled[VMM] {
            self.use_fp(VMM, true, "VMM touch_fp on exit");
        }
        if kind.decode().expect("decodable exit") == Exit::FpTrap {
            let action = self.vcpu.fp_trap().expect("fp_trap");
            ok(self.kernel.apply(VCPU, action), "fp_trap's TCB_SetFlags");
        }
        self.vcpu.ctxsync_fp(&self.table).expect("ctxsync_fp");
        self.check_table_after_ctxsync();
    }

    /// Invariant 2 right after a `ctxsync_fp`.
    fn check_table_after_ctxsync(&self) {
        let core = self.vcpu.core();
        let live = self.kernel.fpu_owner[core as usize] == Some(VCPU);
        if self.lazy() && self.vcpu.owner() == FpOwner::Guest {
            assert_eq!(
                self.table.owner(core),
                Ok(Some(VCPU_ID)),
                "after ctxsync: guest owns FP (live: {live}) but table does not say so"
            );
        }
    }

    /// `neon_begin` from client `i` (fp-service `NeonBegin`, with the VMM's save-back when asked);
    /// checks the result against the model. Returns whether the section was granted.
    fn neon_begin(&mut self, i: usize) -> bool {
        let (ch, core) = (Self::client_ch(i), self.cfg.client_cores[i]);
        let before = self.statuses();
        let vcpu_live = !self.kernel.fpu_disabled[VCPU];
        let named = self.table.owner(core).expect("real core") == Some(VCPU_ID);
        let saved = match self.svc.begin(&self.table, ch, core) {
            Err(e) => {
                assert!(self.exp.open[i], "neon_begin of client {i} refused: {e:?}");
                assert_eq!(e, FpServiceError::AlreadyOpen);
                assert_eq!(
                    self.statuses(),
                    before,
                    "a refused neon_begin changed a status"
                );
                return false;
            }
            Ok(BeginStep::Grant) => {
                assert!(
                    !named,
                    "granted without save-back although the table names the vCPU on core {core}"
                );
                false
            }
            Ok(BeginStep::NeedSaveback { vcpu, core: asked }) => {
                assert!(
                    named,
                    "save-back asked although the table does not name the vCPU"
                );
                assert_eq!((vcpu, asked), (VCPU_ID, core));
                assert_eq!(
                    self.statuses(),
                    before,
                    "nothing granted before the save-back"
                );
                // The VMM's save-back handler (vmm-pd `Vm::save_back`).
                if vcpu_live {
                    self.exp.live_savebacks += 1;
                } else {
                    self.exp.stale_savebacks += 1;
                }
                let action = self.vcpu.save_back(asked, &self.table).expect("save_back");
                ok(self.kernel.apply(VCPU, action), "save_back's TCB_SetFlags");
                let saved = action == FpAction::DisableGuestFp;
                assert_eq!(
                    self.svc.finish_begin(&self.table, ch, core, Ok(saved)),
                    Ok(saved)
                );
                saved
            }
        };
        assert!(
            !self.exp.open[i],
            "client {i} granted a second open section"
        );
        self.exp.open[i] = true;
        self.exp.grants[core as usize] += 1;
        if saved {
            self.exp.saved_grants[core as usize] += 1;
        }
        if self.lazy() && core == self.vcpu.core() {
            assert_eq!(
                self.table.owner(core),
                Ok(None),
                "table names the vCPU on core {core} after the save-back"
            );
        }
        true
    }

    /// `neon_end` from client `i`; an error with nothing changed unless its section is open.
    fn neon_end(&mut self, i: usize) {
        let (ch, core) = (Self::client_ch(i), self.cfg.client_cores[i]);
        let before = self.statuses();
        let r = self.svc.end(&self.table, ch, core, 0);
        if self.exp.open[i] {
            assert_eq!(r, Ok(()));
            self.exp.open[i] = false;
            self.exp.ends[core as usize] += 1;
        } else {
            assert_eq!(r, Err(FpServiceError::NotOpen));
            assert_eq!(
                self.statuses(),
                before,
                "neon_end without begin changed a status"
            );
        }
    }

    /// Client `i` is scheduled inside its section and uses NEON.
    fn neon_use(&mut self, i: usize) {
        let t = Self::client_tid(i);
        ok(self.kernel.schedule(t), "NEON client scheduled");
        self.use_fp(t, true, "NEON client in its section");
    }

    /// An fpu-disabled thread is scheduled: nothing in the kernel's FP state changes.
    fn schedule_fpu_disabled(&mut self, t: Tid) {
        let before = self.kernel.clone();
        ok(self.kernel.schedule(t), "scheduled");
        if self.kernel.fpu_disabled[t] {
            assert_eq!(
                self.kernel,
                before,
                "scheduling fpu-disabled {} changed FP state",
                self.kernel.name(t)
            );
        }
    }

    fn bad_request(&mut self, bad: BadRequest) {
        let n = self.cfg.num_cores;
        let clients = self.cfg.client_cores.len();
        let (ch, core, end, expected) = match bad {
            BadRequest::UnknownClient { ch, end } => {
                let ch = if (FIRST_CHANNEL..FIRST_CHANNEL + clients as u8).contains(&ch) {
                    ch + clients as u8
                } else {
                    ch
                };
                (ch, 0, end, FpServiceError::UnknownClient(ch as u64))
            }
            BadRequest::NoSuchCore { client, past, end } => {
                let core = if past == 3 { u64::MAX } else { n + past };
                (
                    Self::client_ch(client % clients),
                    core,
                    end,
                    FpServiceError::BadCore(core),
                )
            }
            BadRequest::WrongCore { client, shift, end } => {
                let client_core = self.cfg.client_cores[client % clients];
                let asked = (client_core + 1 + shift % (n - 1)) % n;
                (
                    Self::client_ch(client % clients),
                    asked,
                    end,
                    FpServiceError::WrongCore { asked, client_core },
                )
            }
        };
        let before = self.statuses();
        let (vcpu_owner, vcpu_stats, kernel) =
            (self.vcpu.owner(), self.vcpu.stats, self.kernel.clone());
        let r = if end {
            self.svc.end(&self.table, ch, core, 0)
        } else {
            self.svc.begin(&self.table, ch, core).map(|_| ())
        };
        assert_eq!(r, Err(expected), "{bad:?}");
        assert_eq!(self.statuses(), before, "{bad:?} changed a core's status");
        assert_eq!(
            (self.vcpu.owner(), self.vcpu.stats, &self.kernel),
            (vcpu_owner, vcpu_stats, &kernel)
        );
    }

    /// Runs one step and checks every invariant.
    fn apply(&mut self, step: Step) {
        let clients = self.cfg.client_cores.len();
        match step {
            Step::GuestRuns { uses_fp, writes } => {
                let loads_before = self.kernel.loads[VCPU];
                ok(self.kernel.schedule(VCPU), "guest scheduled");
                if uses_fp {
                    if ok(self.kernel.fp_read(VCPU), "guest FP use").is_none() {
                        // FP trap exit (VCPUFault, HSR 0x1fe00000); the reply re-executes it.
                        self.exp.fp_traps += 1;
                        self.vmm_handles_exit(ExitKind::FpTrap);
                        ok(self.kernel.schedule(VCPU), "guest rescheduled");
                        assert!(
                            !self.kernel.fpu_disabled[VCPU],
                            "the FP trap handler left the guest's FP trapped (trap loop)"
                        );
                    }
                    self.use_fp(VCPU, writes, "guest FP use");
                    self.exp.idle_after_saveback = None;
                } else if let Some(loads) = self.exp.idle_after_saveback {
                    assert_eq!(loads, loads_before);
                    assert_eq!(
                        self.kernel.loads[VCPU], loads,
                        "an idle guest's state was loaded after a save-back"
                    );
                }
            }
            Step::Exit(kind) => {
                ok(self.kernel.schedule(VCPU), "guest scheduled");
                self.vmm_handles_exit(kind);
            }
            Step::NeonSection { client } => {
                let i = client % clients;
                if self.neon_begin(i) {
                    self.neon_use(i);
                    self.neon_end(i);
                    if self.lazy() && self.cfg.client_cores[i] == self.vcpu.core() {
                        assert!(
                            self.kernel.fpu_disabled[VCPU],
                            "after a NEON section on its core the vCPU's FP is not disabled"
                        );
                        self.exp.idle_after_saveback = Some(self.kernel.loads[VCPU]);
                    }
                }
            }
            Step::NeonBeginOnly { client } => {
                let i = client % clients;
                if self.neon_begin(i) {
                    self.neon_use(i);
                }
            }
            Step::NeonEndOnly { client } => self.neon_end(client % clients),
            Step::VmmRuns => self.schedule_fpu_disabled(VMM),
            Step::FpServiceRuns => self.schedule_fpu_disabled(FP_SERVICE),
            Step::MoveVcpu { to_core } => {
                let to = to_core % self.cfg.num_cores;
                let from = self.vcpu.core();
                self.put();
                ok(self.kernel.set_affinity(VCPU, to), "TCB_SetAffinity");
                self.load(to);
                assert_ne!(
                    self.table.owner(from),
                    Ok(Some(VCPU_ID)),
                    "stale table entry on core {from} after the move"
                );
                self.exp.idle_after_saveback = None;
            }
            Step::StopStart => {
                self.put();
                self.load(self.vcpu.core());
                self.exp.idle_after_saveback = None;
            }
            Step::Bad(bad) => self.bad_request(bad),
        }
        self.check(&format!("after {step:?}"));
    }

    /// All invariants.
    fn check(&mut self, when: &str) {
        // 1. No FP value lost or leaked (kernel side, every thread).
        ok(self.kernel.check(), when);
        assert!(
            self.kernel.fpu_disabled[FP_SERVICE] && self.kernel.loads[FP_SERVICE] == 0,
            "{when}: fp-service touched FP"
        );

        // 2. The table and the hooks agree with the kernel.
        let vcore = self.vcpu.core();
        assert_eq!(
            self.kernel.core[VCPU], vcore,
            "{when}: hooks and kernel disagree on the vCPU's core"
        );
        for c in 0..self.cfg.num_cores {
            match self.table.owner(c).expect("real core") {
                None => {}
                Some(VCPU_ID) => {
                    assert!(
                        self.lazy(),
                        "{when}: eager policy published the vCPU on core {c}"
                    );
                    assert!(
                        !self.kernel.fpu_disabled[VCPU],
                        "{when}: table names the vCPU on core {c} but its FP is disabled"
                    );
                    assert_eq!(
                        c, vcore,
                        "{when}: table names the vCPU on core {c}, it is on core {vcore}"
                    );
                }
                Some(other) => panic!("{when}: table names unknown vCPU {other} on core {c}"),
            }
        }
        let live = self.kernel.fpu_owner[vcore as usize] == Some(VCPU);
        if self.lazy() && live && self.vcpu.owner() == FpOwner::Guest {
            assert_eq!(
                self.table.owner(vcore),
                Ok(Some(VCPU_ID)),
                "{when}: guest state live but not in the table"
            );
        }
        match self.vcpu.owner() {
            FpOwner::Trapped => {
                assert!(
                    self.kernel.fpu_disabled[VCPU],
                    "{when}: hooks say Trapped, kernel has FP enabled"
                )
            }
            FpOwner::Guest => {
                assert!(
                    !self.kernel.fpu_disabled[VCPU],
                    "{when}: hooks say Guest, kernel has FP disabled"
                )
            }
            FpOwner::Unloaded => panic!("{when}: vCPU left unloaded"),
        }
        if !self.lazy() {
            assert_eq!(
                self.vcpu.owner(),
                FpOwner::Guest,
                "{when}: eager vCPU not Guest"
            );
        }

        // 3. Counters add up.
        let st = self.vcpu.stats;
        assert_eq!(st.fp_traps, self.exp.fp_traps, "{when}: fp_traps");
        if !self.lazy() {
            assert_eq!(st.fp_traps, 0, "{when}: eager guest trapped");
        }
        // Each trap publishes once (at its ctxsync); later exits store nothing.
        assert_eq!(
            st.binds,
            if self.lazy() { self.exp.fp_traps } else { 0 },
            "{when}: binds"
        );
        assert_eq!(st.savebacks, self.exp.live_savebacks, "{when}: savebacks");
        assert_eq!(
            st.stale_savebacks, self.exp.stale_savebacks,
            "{when}: stale_savebacks"
        );
        assert_eq!(
            (st.loads, st.puts),
            (self.exp.loads, self.exp.puts),
            "{when}: loads/puts"
        );
        let statuses = self.statuses();
        let total: u64 = statuses.iter().map(|s| s[0]).sum();
        assert_eq!(
            total,
            self.exp.grants.iter().sum::<u64>(),
            "{when}: total grants"
        );
        for (c, s) in statuses.iter().enumerate() {
            let open = self.exp.grants[c] - self.exp.ends[c];
            let want = [self.exp.grants[c], self.exp.saved_grants[c], open, 0];
            assert_eq!(
                *s, want,
                "{when}: core {c} status [grants, savebacks, open, leaks]"
            );
            let open_clients = (0..self.cfg.client_cores.len())
                .filter(|&i| self.exp.open[i] && self.cfg.client_cores[i] == c as u64)
                .count() as u64;
            assert_eq!(
                open, open_clients,
                "{when}: core {c} open sections vs clients' open sections"
            );
        }

        // 4. Lazy effect: after a save-back the vCPU stays trapped until it uses FP.
        if self.exp.idle_after_saveback.is_some() {
            assert!(
                self.kernel.fpu_disabled[VCPU],
                "{when}: idle guest's FP re-enabled after a save-back"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn config(policy: FpPolicy) -> impl Strategy<Value = Config> {
    (2u64..=4)
        .prop_flat_map(|n| {
            (
                Just(n),
                0..n,
                0..n,
                prop::collection::vec(0..n, 1..=3),
                0usize..3,
            )
        })
        .prop_map(
            move |(num_cores, vcpu_core, vmm_core, mut client_cores, on_vcpu_core)| {
                let k = on_vcpu_core % client_cores.len();
                client_cores[k] = vcpu_core;
                Config {
                    policy,
                    num_cores,
                    vcpu_core,
                    vmm_core,
                    client_cores,
                }
            },
        )
}

fn bad_request() -> impl Strategy<Value = BadRequest> {
    prop_oneof![
        (
            prop::sample::select(vec![0u8, 1, 4, 9, 61, 62, 200, 255]),
            any::<bool>()
        )
            .prop_map(|(ch, end)| BadRequest::UnknownClient { ch, end }),
        (0usize..3, 0u64..4, any::<bool>())
            .prop_map(|(client, past, end)| BadRequest::NoSuchCore { client, past, end }),
        (0usize..3, 0u64..3, any::<bool>())
            .prop_map(|(client, shift, end)| BadRequest::WrongCore { client, shift, end }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let exit = prop_oneof![
        Just(ExitKind::Mmio),
        Just(ExitKind::Hvc),
        Just(ExitKind::Wfi),
        Just(ExitKind::Sysreg),
        Just(ExitKind::Vppi)
    ];
    prop_oneof![
        6 => (any::<bool>(), any::<bool>()).prop_map(|(uses_fp, writes)| Step::GuestRuns { uses_fp, writes }),
        5 => exit.prop_map(Step::Exit),
        5 => (0usize..3).prop_map(|client| Step::NeonSection { client }),
        1 => (0usize..3).prop_map(|client| Step::NeonBeginOnly { client }),
        1 => (0usize..3).prop_map(|client| Step::NeonEndOnly { client }),
        1 => Just(Step::VmmRuns),
        1 => Just(Step::FpServiceRuns),
        1 => (0u64..4).prop_map(|to_core| Step::MoveVcpu { to_core }),
        1 => Just(Step::StopStart),
        1 => bad_request().prop_map(Step::Bad),
    ]
}

fn run(cfg: Config, steps: &[Step]) -> System {
    let mut s = System::new(cfg);
    for &step in steps {
        s.apply(step);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Lazy policy: invariants 1-5 hold after every step of any sequence.
    #[test]
    fn lazy_policy_matches_sel4_model(cfg in config(FpPolicy::Lazy), steps in prop::collection::vec(step(), 1..200)) {
        run(cfg, &steps);
    }

    /// Eager policy: no traps, nothing published, no value lost or leaked.
    #[test]
    fn eager_policy_matches_sel4_model(cfg in config(FpPolicy::Eager), steps in prop::collection::vec(step(), 1..200)) {
        let s = run(cfg, &steps);
        prop_assert_eq!(s.vcpu.stats.fp_traps, 0);
        prop_assert_eq!(s.vcpu.stats.binds, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Focused tests
// ---------------------------------------------------------------------------------------------

fn two_core(policy: FpPolicy) -> System {
    // vCPU and NEON client 0 on core 1, the VMM on core 0.
    System::new(Config {
        policy,
        num_cores: 2,
        vcpu_core: 1,
        vmm_core: 0,
        client_cores: vec![1],
    })
}

/// Invariant 4 exactly: once a NEON section on the vCPU's core has saved the guest back, guest
/// phases without FP load nothing; the next FP use traps once and loads once.
#[test]
fn lazy_saveback_then_idle_guest_loads_nothing() {
    let mut s = two_core(FpPolicy::Lazy);
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    assert_eq!((s.vcpu.stats.fp_traps, s.kernel.loads[VCPU]), (1, 1));
    assert_eq!(s.table.owner(1), Ok(Some(VCPU_ID)));
    s.apply(Step::Exit(ExitKind::Mmio));

    s.apply(Step::NeonSection { client: 0 });
    assert!(s.kernel.fpu_disabled[VCPU]);
    assert_eq!(s.table.owner(1), Ok(None));
    assert_eq!(s.vcpu.stats.savebacks, 1);
    assert_eq!(s.statuses()[1], [1, 1, 0, 0]);

    for _ in 0..5 {
        s.apply(Step::GuestRuns {
            uses_fp: false,
            writes: false,
        });
        s.apply(Step::Exit(ExitKind::Wfi));
        s.apply(Step::NeonSection { client: 0 });
    }
    assert_eq!(
        s.kernel.loads[VCPU], 1,
        "idle guest phases loaded its state"
    );
    assert_eq!(s.vcpu.stats.savebacks, 1, "nothing live to save back");
    assert_eq!(
        s.statuses()[1],
        [6, 1, 0, 0],
        "later sections granted without save-back"
    );

    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    assert_eq!((s.vcpu.stats.fp_traps, s.kernel.loads[VCPU]), (2, 2));
}

/// The same sequence under the eager policy: the kernel reloads the guest on every switch back,
/// nothing traps, and the guest's value survives.
#[test]
fn eager_reloads_on_every_switch_back() {
    let mut s = two_core(FpPolicy::Eager);
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    for _ in 0..5 {
        s.apply(Step::NeonSection { client: 0 });
        s.apply(Step::GuestRuns {
            uses_fp: false,
            writes: false,
        });
    }
    assert_eq!(s.kernel.loads[VCPU], 6);
    assert_eq!((s.vcpu.stats.fp_traps, s.vcpu.stats.savebacks), (0, 0));
    assert_eq!(s.table.owner(1), Ok(None));
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: false,
    });
}

/// Invariant 5 exactly: each bad request gets its error and changes no core's status.
#[test]
fn bad_requests_change_nothing() {
    let mut s = System::new(Config {
        policy: FpPolicy::Lazy,
        num_cores: 3,
        vcpu_core: 1,
        vmm_core: 0,
        client_cores: vec![1, 2],
    });
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    s.apply(Step::NeonBeginOnly { client: 1 });
    let before = s.statuses();
    let (t, ch1, ch2) = (&s.table, FIRST_CHANNEL, FIRST_CHANNEL + 1);
    assert_eq!(s.svc.begin(t, 9, 1), Err(FpServiceError::UnknownClient(9)));
    assert_eq!(s.svc.end(t, 0, 1, 0), Err(FpServiceError::UnknownClient(0)));
    assert_eq!(
        s.svc.begin(t, 200, 1),
        Err(FpServiceError::UnknownClient(200))
    );
    assert_eq!(s.svc.begin(t, ch1, 3), Err(FpServiceError::BadCore(3)));
    assert_eq!(
        s.svc.end(t, ch2, u64::MAX, 0),
        Err(FpServiceError::BadCore(u64::MAX))
    );
    assert_eq!(
        s.svc.begin(t, ch1, 0),
        Err(FpServiceError::WrongCore {
            asked: 0,
            client_core: 1
        })
    );
    assert_eq!(
        s.svc.end(t, ch2, 1, 0),
        Err(FpServiceError::WrongCore {
            asked: 1,
            client_core: 2
        })
    );
    assert_eq!(s.svc.end(t, ch1, 1, 0), Err(FpServiceError::NotOpen));
    assert_eq!(s.svc.begin(t, ch2, 2), Err(FpServiceError::AlreadyOpen));
    assert_eq!(s.statuses(), before);
    assert_eq!(
        s.table.owner(1),
        Ok(Some(VCPU_ID)),
        "no save-back was triggered"
    );
    s.check("after bad requests");
}

/// Moving the guest while it owns FP: its value follows it and the old core's entry is cleared.
#[test]
fn move_while_guest_owns_fp() {
    let mut s = two_core(FpPolicy::Lazy);
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    s.apply(Step::MoveVcpu { to_core: 0 });
    assert_eq!((s.table.owner(0), s.table.owner(1)), (Ok(None), Ok(None)));
    s.apply(Step::NeonSection { client: 0 });
    assert_eq!(
        s.vcpu.stats.savebacks, 0,
        "nothing of the vCPU is on core 1 any more"
    );
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    assert_eq!(s.table.owner(0), Ok(Some(VCPU_ID)));
    // A save-back request for the core it left is refused and changes nothing.
    let (owner, stats) = (s.vcpu.owner(), s.vcpu.stats);
    assert_eq!(
        s.vcpu.save_back(1, &s.table),
        Err(FpError::WrongCore {
            asked: 1,
            vcpu_core: 0
        })
    );
    assert_eq!(
        (s.vcpu.owner(), s.vcpu.stats, s.table.owner(0)),
        (owner, stats, Ok(Some(VCPU_ID)))
    );
    s.check("after a save-back for the wrong core");
}

/// fp-service saw the vCPU in the table, but before its save-back request reached the VMM the
/// VMM stopped and restarted the vCPU (`put_fp` saved it and cleared the entry): the save-back
/// finds nothing live, answers `saved = false`, and the grant is counted without a save-back.
#[test]
fn stale_saveback_is_granted_without_counting() {
    let mut s = two_core(FpPolicy::Lazy);
    s.apply(Step::GuestRuns {
        uses_fp: true,
        writes: true,
    });
    let (ch, core) = (FIRST_CHANNEL, 1);
    assert_eq!(
        s.svc.begin(&s.table, ch, core),
        Ok(BeginStep::NeedSaveback {
            vcpu: VCPU_ID,
            core
        })
    );
    s.apply(Step::StopStart);
    assert_eq!(s.vcpu.save_back(core, &s.table), Ok(FpAction::None));
    s.exp.stale_savebacks += 1;
    assert_eq!(s.svc.finish_begin(&s.table, ch, core, Ok(false)), Ok(false));
    s.exp.grants[1] += 1;
    s.exp.open[0] = true;
    assert_eq!(s.statuses()[1], [1, 0, 1, 0]);
    s.neon_use(0);
    s.neon_end(0);
    s.check("after a stale save-back");
    assert_eq!(
        (s.vcpu.stats.savebacks, s.vcpu.stats.stale_savebacks),
        (0, 1)
    );
}
