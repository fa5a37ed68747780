//! Explicit-state model check of the per-core FP table and the fp-service protocol (issue 10,
//! item 6): every interleaving of a small system, not a sample of them.
//!
//! # The system
//! `N` cores (2 in `make test-host`, 3 in an ignored test): the VMM (one thread, core 0) and
//! fp-service (one thread, core 1) as in the SMP builds; vCPU i on core i, which the VMM can
//! stop (`put_fp`) and start again (`load_fp`), with [`Migrate`] on another core too; a NEON
//! client on each core that loops `neon_begin`, NEON use, `neon_end`, keeping its registers
//! across the hand-over as neon-worker does. The real [`VcpuFp`], [`FpTable`] and
//! [`FpService`] take every decision; the model plays seL4 ([`Kernel`], shared with
//! tests/fp_model.rs) and the scheduler, and does with the results what the PDs do (vmm-pd
//! `Vm::handle_fault`, `Vm::save_back`, `Vcpu::power_on`/`power_off`; fp-service `Service`).
//!
//! # Granularity: why these steps, and not finer or coarser
//! - The VMM is one thread: its events (an exit, a save-back request, a stop, a start) never
//!   overlap. Within one, what another thread can tell apart is a store to a table entry's
//!   `owner` (fp-service's only read of the table) and a seL4 call that changes FP state or lets
//!   a vCPU run (`TCB_SetFlags`, the reply, `TCB_Suspend`/`TCB_Resume`). Each is its own step:
//!   an exit is [take it, `fp_trap` + its `TCB_SetFlags`], [`ctxsync_fp`], [reply]; a save-back
//!   is [`save_back` (flush)], [its `TCB_SetFlags` + the answer]; a stop is [`put_fp` (flush)],
//!   [its `TCB_SetFlags` + `TCB_Suspend`]; a start is one step (the vCPU is suspended until its
//!   `TCB_Resume`, and `load_fp` stores nothing). Every hook does at most one `owner` store
//!   (`bind`'s store, `flush`'s compare-and-swap), after its own read, and the VMM is the only
//!   writer: so a whole hook call is atomic with respect to every reader, and splitting it
//!   finer adds no behaviour. `seq` is bumped after the store and read only by tests.
//! - fp-service is one thread: `FpService::begin` does one `owner` load (its decision point);
//!   the counters are written by fp-service only and read by the VMM only at the end. Its
//!   steps: [`begin` + the reply or the request to the VMM], [`finish_begin` + reply],
//!   [`end` + reply].
//! - What a step merges touches only its thread's own memory (the hooks' bookkeeping) or wakes
//!   a thread, which may in any case wait arbitrarily long before its next step.
//! - Guests and NEON clients: each FP instruction or exit is one step (the kernel switches FP
//!   state on the way in). A NEON section does not block, and nothing that switches FP state
//!   runs above it on its core (the VMM and fp-service are `fpu="false"`), so it is one step.
//! - The scheduler is free: any runnable thread may take the next step, whatever the
//!   priorities (vmm 200 > fp-service 150 > NEON 100 > guest 50), budgets and endpoint queue
//!   order. That is a superset of what seL4 does with this shape.
//! - Steps interleave sequentially consistently. Real loads may return an older `owner` than
//!   the latest store, but `owner` has a single writer and every other channel between the PDs
//!   is a seL4 call (which orders memory), so such a load behaves as the same load taken
//!   before that store in another interleaving, which the search also covers.
//!
//! # Invariants, in every reached state (the tag opens the message of a violation)
//! - `[value]` no FP value lost or leaked: every read sees the reader's latest value; every
//!   thread's latest value is live on its core or saved in its TCB; fp-service and the lazy
//!   VMM never own an FPU; a stopped vCPU's state is not live.
//! - `[two cores]` no vCPU named in two cores' entries.
//! - `[stale owner]` an entry names vCPU v only if v's hooks say `Guest` on that core, v is not
//!   stopped, and v's `fpuDisabled` is clear (its state is live there, or seL4 puts it back
//!   there when v runs).
//! - `[hooks]` the hooks' owner matches the kernel's `fpuDisabled` once the VMM's
//!   `TCB_SetFlags` in flight (if any) lands; the hooks' core is the kernel's.
//! - `[unpublished]` the converse: a running vCPU whose hooks say `Guest`, or whose state is
//!   live (no save in flight), is named on its core; unless another vCPU on the same core
//!   overwrote the entry since (possible only with migration; seL4 then switches the two
//!   eagerly, which is correct but not lazy).
//! - `[save-back]` when a NEON section is granted on core c and the entry named vCPU v at
//!   fp-service's read, v's `fpuDisabled` has been set since (saved back, or put away).
//! - `[refused]` a well-formed `neon_begin`/`neon_end` is never refused; with migration, except
//!   a save-back request that crossed the vCPU's move (see [`Checker::finish`]).
//! - `[counters]` each counter moves exactly with the events it counts: hook stats, the
//!   table's grants, save-backs, errors, leaks, `seq` (one per change of `owner`), and open
//!   sections (a level: the clients inside a granted section).
//!
//! Counters grow without bound, so a state's fingerprint leaves them out: each step checks how
//! they moved, then zeroes them. Nothing decides on a counter's value, so states that differ
//! only in counters have the same futures; the state space is finite and the search covers
//! runs of any length. Each test also asserts a floor on the states and that every path of the
//! protocol was taken ([`Coverage`]), so a search that silently shrinks fails.
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

mod common;

use common::kernel::{FpUse, Kernel, Tid};
use common::ExitKind;
use lazyfp::{
    BeginStep, Exit, FpAction, FpError, FpOwner, FpPolicy, FpService, FpServiceError, FpStats,
    FpTable, SavebackError, VcpuFp,
};

const VMM_CORE: u64 = 0;
const FP_SERVICE_CORE: u64 = 1;

fn client_ch(k: usize) -> u8 {
    1 + k as u8
}

fn client_core(k: usize) -> u64 {
    k as u64
}

/// A defect planted in the model's PDs (never in lazyfp), to show that the checker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    /// fp-service answers `NeedSaveback` with `finish_begin(Ok(false))` without asking the VMM.
    SkipSaveback,
    /// The VMM's stop puts the table entry back after `put_fp` flushed it.
    NoFlushOnPut,
    /// The VMM replies to an exit before `ctxsync_fp` (so the vCPU runs unpublished).
    ReplyBeforeCtxsync,
    /// The VMM's save-back flushes the entry but drops the `TCB_SetFlags` it asked for.
    SavebackWithoutFlags,
}

/// Where a stopped vCPU may start again (`TCB_SetAffinity` between `put_fp` and `load_fp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Migrate {
    /// On its own core only, as vmm-pd does.
    Never,
    /// vCPU 1 on any core: two vCPUs share a core, requests cross a move.
    Vcpu1,
    /// Any vCPU on any core.
    Any,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    policy: FpPolicy,
    migrate: Migrate,
    bug: Option<Bug>,
}

// ---------------------------------------------------------------------------------------------
// The state
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Guest {
    Running,
    /// The exit waits for the VMM (the vCPU is blocked).
    Faulted(ExitKind),
    /// Suspended (or not started yet).
    Stopped,
}

/// The VMM's event in progress: the step it takes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Vmm {
    Idle,
    /// vCPU v's exit is dispatched; `ctxsync_fp` is next.
    Ctxsync(usize),
    /// The reply that resumes v is next.
    Reply(usize),
    /// `save_back` for v flushed; its `TCB_SetFlags` and the answer to fp-service are next.
    SavebackFlags(usize, FpAction),
    /// `put_fp` for v flushed; its `TCB_SetFlags` and `TCB_Suspend` are next.
    StopFlags(usize, FpAction),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fps {
    Idle,
    /// Client k's `neon_begin` needs vCPU `vcpu`'s save-back: the PPC to the VMM is pending.
    WaitVmm {
        k: usize,
        vcpu: u8,
        core: u64,
    },
    /// The VMM answered; `finish_begin` is next. Ghost `moved`: the VMM found the vCPU on
    /// another core than the one asked (it was stopped and started elsewhere since).
    Answered {
        k: usize,
        result: Result<bool, u64>,
        moved: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    /// Blocked in `neon_begin`.
    CallBegin,
    /// Answered: uses NEON next. `open`: fp-service granted the section (neon-worker goes on
    /// after a refusal too, and counts it).
    Section { open: bool },
    /// Blocked in `neon_end`.
    CallEnd { open: bool },
}

/// A core's table entry as stored between steps: `owner` and `open_sections` (the counters are
/// zero between steps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Entry {
    owner: u64,
    open: u64,
}

#[derive(Clone, Debug)]
struct World<const N: usize> {
    kernel: Kernel,
    vcpus: [VcpuFp; N],
    /// Shared between states until fp-service's step changes it (`Rc::make_mut`): most steps
    /// leave it alone, and copying it was most of a step's cost.
    svc: Rc<FpService>,
    /// Fingerprint of `svc`, kept up to date by fp-service's steps (hashing it is the dearest part).
    svc_hash: u128,
    table: [Entry; N],
    guest: [Guest; N],
    vmm: Vmm,
    fps: Fps,
    clients: [Client; N],
    /// Ghost: the vCPU the entry named at client k's `neon_begin`, until its `fpuDisabled` is set.
    needed: [Option<u8>; N],
    /// Ghost: another vCPU's hook changed v's core entry while v stayed `Guest`.
    eclipsed: [bool; N],
}

/// The fingerprint hasher: two 64-bit multiply-rotate lanes finished with murmur3's `fmix64`
/// (128 bits). Not SipHash: states are not adversarial, and SipHash was most of the search's
/// time (it found the same state counts). A collision would merge two states; for a hash that
/// mixes as it should, the odds at a few million states are below 2^-85.
#[derive(Default)]
struct Fingerprinter {
    a: u64,
    b: u64,
}

fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Fingerprinter {
    fn mix(&mut self, x: u64) {
        self.a = (self.a ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(17) ^ x)
            .wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            .wrapping_add(0x1656_67b1_9e37_79f9);
    }

    fn finish128(&self) -> u128 {
        let hi = fmix64(self.a ^ fmix64(self.b));
        let lo = fmix64(self.b ^ self.a.rotate_left(32));
        (hi as u128) << 64 | lo as u128
    }
}

impl Hasher for Fingerprinter {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word) ^ (chunk.len() as u64) << 60);
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.mix(x as u64)
    }
    fn write_u16(&mut self, x: u16) {
        self.mix(x as u64)
    }
    fn write_u32(&mut self, x: u32) {
        self.mix(x as u64)
    }
    fn write_u64(&mut self, x: u64) {
        self.mix(x)
    }
    fn write_usize(&mut self, x: usize) {
        self.mix(x as u64)
    }
    fn finish(&self) -> u64 {
        self.finish128() as u64
    }
}

fn hash_of<T: Hash + ?Sized>(t: &T) -> u128 {
    let mut h = Fingerprinter::default();
    t.hash(&mut h);
    h.finish128()
}

/// The visited set's hasher: its keys are fingerprints already.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, x: u128) {
        self.0 = x as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Visited = HashMap<u128, Option<(u128, Move)>, BuildHasherDefault<KeyHasher>>;

impl<const N: usize> World<N> {
    /// The state's fingerprint, counters left out.
    fn fingerprint(&self) -> u128 {
        let mut h = Fingerprinter::default();
        self.kernel.fingerprint(&mut h);
        self.vcpus.hash(&mut h);
        self.svc_hash.hash(&mut h);
        self.table.hash(&mut h);
        self.guest.hash(&mut h);
        self.vmm.hash(&mut h);
        self.fps.hash(&mut h);
        self.clients.hash(&mut h);
        self.needed.hash(&mut h);
        self.eclipsed.hash(&mut h);
        h.finish128()
    }

    fn owner(&self, core: u64) -> Option<usize> {
        (self.table[core as usize].owner as usize).checked_sub(1)
    }
}

impl<const N: usize> fmt::Display for World<N> {
    /// One line: table, hooks, kernel, program counters, ghosts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = |c: u64| match self.owner(c) {
            Some(v) => format!("v{v}"),
            None => "-".into(),
        };
        let entries: Vec<String> = (0..N as u64).map(entry).collect();
        write!(f, "table [{}]", entries.join(", "))?;
        for (v, fp) in self.vcpus.iter().enumerate() {
            let owner = match fp.owner() {
                FpOwner::Unloaded => "Unloaded",
                FpOwner::Trapped => "Trapped",
                FpOwner::Guest => "Guest",
            };
            let flag = if self.kernel.fpu_disabled[v] {
                "off"
            } else {
                "on"
            };
            write!(
                f,
                " | v{v} {owner}@{} fpu {flag} {:?}",
                fp.core(),
                self.guest[v]
            )?;
        }
        let live: Vec<&str> = self
            .kernel
            .fpu_owner
            .iter()
            .map(|o| o.map_or("-", |t| self.kernel.name(t)))
            .collect();
        write!(
            f,
            " | live {live:?} | vmm {:?} | fps {:?} | clients {:?}",
            self.vmm, self.fps, self.clients
        )?;
        if self.needed.iter().any(Option::is_some) {
            write!(f, " | needed {:?}", self.needed)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Move {
    /// vCPU v runs one FP instruction (traps if its FP is disabled).
    GuestFp(usize),
    /// vCPU v runs and exits for a reason that involves no FP (an MMIO access).
    GuestExit(usize),
    VmmTakeExit(usize),
    VmmTakeSaveback,
    VmmStop(usize),
    VmmStart(usize, u64),
    /// The next step of the VMM's event in progress.
    VmmNext,
    FpsBegin(usize),
    FpsEnd(usize),
    FpsFinish,
    /// NEON client k runs its section: checks its registers, leaves a new value.
    Neon(usize),
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::GuestFp(v) => write!(f, "vCPU {v} runs an FP instruction"),
            Self::GuestExit(v) => write!(f, "vCPU {v} exits (MMIO)"),
            Self::VmmTakeExit(v) => write!(f, "VMM takes vCPU {v}'s exit"),
            Self::VmmTakeSaveback => write!(f, "VMM takes fp-service's save-back request"),
            Self::VmmStop(v) => write!(f, "VMM stops vCPU {v}: put_fp"),
            Self::VmmStart(v, c) => write!(f, "VMM starts vCPU {v} on core {c}: load_fp"),
            Self::VmmNext => write!(f, "VMM goes on"),
            Self::FpsBegin(k) => write!(f, "fp-service serves client {k}'s neon_begin"),
            Self::FpsEnd(k) => write!(f, "fp-service serves client {k}'s neon_end"),
            Self::FpsFinish => write!(f, "fp-service finishes the neon_begin"),
            Self::Neon(k) => write!(f, "NEON client {k} runs its section"),
        }
    }
}

/// How each counter must move in one step, from the events the model saw.
struct Delta<const N: usize> {
    fp_traps: [u64; N],
    savebacks: [u64; N],
    stale_savebacks: [u64; N],
    loads: [u64; N],
    puts: [u64; N],
    grants: [u64; N],
    saved_grants: [u64; N],
    errors: [u64; N],
}

impl<const N: usize> Delta<N> {
    fn new() -> Self {
        Self {
            fp_traps: [0; N],
            savebacks: [0; N],
            stale_savebacks: [0; N],
            loads: [0; N],
            puts: [0; N],
            grants: [0; N],
            saved_grants: [0; N],
            errors: [0; N],
        }
    }
}

fn hook<T>(r: Result<T, FpError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("[hooks] {what}: {e}"))
}

/// A step the kernel model refused (a thread lost or saw another's FP state, ran FPU-enabled
/// without owning the FPU, ...).
fn value<T>(r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("[value] {e}"))
}

/// The checker: the configuration and the one real table every step runs against (restored
/// from the state before the step, read back after it).
struct Checker<const N: usize> {
    cfg: Config,
    table: Box<FpTable>,
    names: &'static [&'static str],
    seen: Cell<Coverage>,
}

/// How often the search took the steps that make the protocol interesting (transitions, not
/// states): a search that passes without them proves little.
#[derive(Clone, Copy, Debug, Default)]
struct Coverage {
    fp_traps: u64,
    /// Save-backs that found the guest's state enabled, and those that found nothing.
    live_savebacks: u64,
    stale_savebacks: u64,
    /// Grants at once, and after a save-back that saved.
    grants: u64,
    saved_grants: u64,
    /// Starts on another core than the vCPU's last, and requests refused because of one.
    moves: u64,
    moved_refusals: u64,
    /// A vCPU's entry overwritten by another vCPU on the same core.
    eclipses: u64,
}

impl<const N: usize> Checker<N> {
    const CORES: u64 = N as u64;
    /// vCPU v is thread v (home core v); then the VMM, fp-service, and NEON client k (core k,
    /// channel 1 + k).
    const VMM: Tid = N;
    const FP_SERVICE: Tid = N + 1;
    const FIRST_CLIENT: Tid = N + 2;

    fn new(cfg: Config) -> Self {
        let names: Vec<&'static str> = (0..N)
            .map(|v| format!("vCPU {v}"))
            .chain(["VMM".into(), "fp-service".into()])
            .chain((0..N).map(|k| format!("NEON client {k}")))
            .map(|s| &*s.leak())
            .collect();
        Self {
            cfg,
            table: Box::default(),
            names: names.leak(),
            seen: Cell::default(),
        }
    }

    fn saw(&self, f: impl FnOnce(&mut Coverage)) {
        let mut c = self.seen.get();
        f(&mut c);
        self.seen.set(c);
    }

    fn lazy(&self) -> bool {
        self.cfg.policy == FpPolicy::Lazy
    }

    /// Boot: every vCPU mapped (`run_map_fp`), none started; each client's first `neon_begin`
    /// is on its way. vCPU TCBs are created FPU-enabled; the VMM is `fpu="true"` only eager.
    fn boot(&self) -> Result<World<N>, String> {
        let mut threads: Vec<(u64, bool)> = (0..N).map(|v| (v as u64, false)).collect();
        threads.push((VMM_CORE, self.lazy()));
        threads.push((FP_SERVICE_CORE, true));
        threads.extend((0..N).map(|k| (client_core(k), false)));
        self.table
            .attach(Self::CORES)
            .map_err(|e| format!("fp-service's attach: {e}"))?;
        let mut vcpus: [VcpuFp; N] =
            std::array::from_fn(|v| VcpuFp::new(v as u8, v as u64, self.cfg.policy));
        for v in &mut vcpus {
            hook(v.run_map_fp(&self.table, Self::CORES), "run_map_fp")?;
        }
        let clients: Vec<(u8, u8)> = (0..N)
            .map(|k| (client_ch(k), client_core(k) as u8))
            .collect();
        let svc = FpService::new(Self::CORES, &clients);
        let mut w = World {
            kernel: Kernel::new(Self::CORES, self.names, &threads),
            vcpus,
            svc_hash: hash_of(&svc),
            svc: Rc::new(svc),
            table: [Entry::default(); N],
            guest: [Guest::Stopped; N],
            vmm: Vmm::Idle,
            fps: Fps::Idle,
            clients: [Client::CallBegin; N],
            needed: [None; N],
            eclipsed: [false; N],
        };
        self.restore(&w);
        self.settle(&w.clone(), &mut w, &Delta::new())?;
        Ok(w)
    }

    /// Every step enabled in `w`.
    fn moves(&self, w: &World<N>) -> Vec<Move> {
        let mut m = Vec::new();
        for v in 0..N {
            if w.guest[v] == Guest::Running {
                m.extend([Move::GuestFp(v), Move::GuestExit(v)]);
            }
        }
        if w.vmm == Vmm::Idle {
            for v in 0..N {
                match w.guest[v] {
                    Guest::Faulted(_) => m.extend([Move::VmmTakeExit(v), Move::VmmStop(v)]),
                    Guest::Running => m.push(Move::VmmStop(v)),
                    Guest::Stopped => {
                        for c in 0..Self::CORES {
                            let may = match self.cfg.migrate {
                                Migrate::Never => c == v as u64,
                                Migrate::Vcpu1 => c == v as u64 || v == 1,
                                Migrate::Any => true,
                            };
                            if may {
                                m.push(Move::VmmStart(v, c));
                            }
                        }
                    }
                }
            }
            if matches!(w.fps, Fps::WaitVmm { .. }) {
                m.push(Move::VmmTakeSaveback);
            }
        } else {
            m.push(Move::VmmNext);
        }
        match w.fps {
            Fps::Idle => {
                for k in 0..N {
                    match w.clients[k] {
                        Client::CallBegin => m.push(Move::FpsBegin(k)),
                        Client::CallEnd { .. } => m.push(Move::FpsEnd(k)),
                        Client::Section { .. } => {}
                    }
                }
            }
            Fps::Answered { .. } => m.push(Move::FpsFinish),
            Fps::WaitVmm { .. } => {}
        }
        for k in 0..N {
            if matches!(w.clients[k], Client::Section { .. }) {
                m.push(Move::Neon(k));
            }
        }
        m
    }

    /// Loads `w`'s table into the real one, counters zero.
    fn restore(&self, w: &World<N>) {
        for c in 0..Self::CORES {
            let e = self.table.core(c).expect("a core of the table");
            let s = w.table[c as usize];
            e.owner.store(s.owner, Ordering::Relaxed);
            e.open_sections.store(s.open, Ordering::Relaxed);
            for counter in [&e.seq, &e.grants, &e.savebacks, &e.leaks, &e.errors] {
                counter.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Runs `m` from `w`: the successor, or the violated invariant.
    fn step(&self, w: &World<N>, m: Move) -> Result<World<N>, String> {
        let mut n = w.clone();
        let mut d = Delta::new();
        self.restore(w);
        let t = &*self.table;
        match m {
            Move::GuestFp(v) => {
                value(n.kernel.schedule(v))?;
                if value(n.kernel.use_fp(v, true))? == FpUse::Trapped {
                    n.guest[v] = Guest::Faulted(ExitKind::FpTrap);
                }
            }
            Move::GuestExit(v) => {
                value(n.kernel.schedule(v))?;
                n.guest[v] = Guest::Faulted(ExitKind::Mmio);
            }
            Move::VmmTakeExit(v) => {
                let Guest::Faulted(kind) = w.guest[v] else {
                    return Err(format!("vCPU {v} has no exit to take"));
                };
                if !self.lazy() {
                    // Eager: the VMM's own FP state comes back on every exit (touch_fp).
                    value(n.kernel.schedule(Self::VMM))?;
                    if value(n.kernel.use_fp(Self::VMM, true))? == FpUse::Trapped {
                        return Err("[value] the eager VMM trapped on FP".into());
                    }
                }
                let exit = kind
                    .decode()
                    .map_err(|e| format!("exit undecodable: {e}"))?;
                if exit == Exit::FpTrap {
                    let action = hook(n.vcpus[v].fp_trap(), "fp_trap")?;
                    value(n.kernel.apply(v, action))?;
                    d.fp_traps[v] += 1;
                    self.saw(|c| c.fp_traps += 1);
                }
                n.vmm = match self.cfg.bug {
                    Some(Bug::ReplyBeforeCtxsync) => Vmm::Reply(v),
                    _ => Vmm::Ctxsync(v),
                };
            }
            Move::VmmNext => match w.vmm {
                Vmm::Idle => return Err("VMM has no event in progress".into()),
                Vmm::Ctxsync(v) => {
                    hook(n.vcpus[v].ctxsync_fp(t), "ctxsync_fp")?;
                    n.vmm = match self.cfg.bug {
                        Some(Bug::ReplyBeforeCtxsync) => Vmm::Idle,
                        _ => Vmm::Reply(v),
                    };
                }
                Vmm::Reply(v) => {
                    n.guest[v] = Guest::Running;
                    n.vmm = match self.cfg.bug {
                        Some(Bug::ReplyBeforeCtxsync) => Vmm::Ctxsync(v),
                        _ => Vmm::Idle,
                    };
                }
                Vmm::SavebackFlags(v, action) => {
                    if self.cfg.bug != Some(Bug::SavebackWithoutFlags) {
                        value(n.kernel.apply(v, action))?;
                    }
                    let Fps::WaitVmm { k, .. } = w.fps else {
                        return Err("a save-back answer nobody waits for".into());
                    };
                    let result = Ok(action == FpAction::DisableGuestFp);
                    n.fps = Fps::Answered {
                        k,
                        result,
                        moved: false,
                    };
                    n.vmm = Vmm::Idle;
                }
                Vmm::StopFlags(v, action) => {
                    value(n.kernel.apply(v, action))?;
                    // TCB_Suspend: a pending exit is dropped with the thread's IPC.
                    n.guest[v] = Guest::Stopped;
                    n.vmm = Vmm::Idle;
                }
            },
            Move::VmmTakeSaveback => {
                let Fps::WaitVmm { k, vcpu, core } = w.fps else {
                    return Err("no save-back request".into());
                };
                // vmm-pd `Vm::save_back`: find the vCPU by id, `save_back`, apply, answer.
                let v = vcpu as usize;
                if v >= N {
                    let code = SavebackError::UnknownVcpu(vcpu as u64).code();
                    n.fps = Fps::Answered {
                        k,
                        result: Err(code),
                        moved: false,
                    };
                } else {
                    // A save-back saves when the kernel has the guest's FP enabled (live or
                    // put back when it runs).
                    let enabled = !n.kernel.fpu_disabled[v];
                    match n.vcpus[v].save_back(core, t) {
                        Ok(action) => {
                            if self.lazy() && enabled {
                                d.savebacks[v] += 1;
                                self.saw(|c| c.live_savebacks += 1);
                            } else {
                                d.stale_savebacks[v] += 1;
                                self.saw(|c| c.stale_savebacks += 1);
                            }
                            n.vmm = Vmm::SavebackFlags(v, action);
                        }
                        Err(e) => {
                            let (asked, moved) = match e {
                                FpError::WrongCore { asked, .. } => (asked, true),
                                _ => (core, false),
                            };
                            n.fps = Fps::Answered {
                                k,
                                result: Err(SavebackError::BadCore(asked).code()),
                                moved,
                            };
                        }
                    }
                }
            }
            Move::VmmStop(v) => {
                let action = hook(n.vcpus[v].put_fp(t), "put_fp")?;
                if self.cfg.bug == Some(Bug::NoFlushOnPut) {
                    // As if put_fp had not flushed: the entries (owner and seq) as before.
                    self.restore(w);
                }
                d.puts[v] += 1;
                n.vmm = Vmm::StopFlags(v, action);
            }
            Move::VmmStart(v, core) => {
                // vmm-pd `Vcpu::power_on` (after TCB_SetAffinity when it moves): load_fp, apply,
                // TCB_Resume.
                if n.kernel.core[v] != core {
                    self.saw(|c| c.moves += 1);
                }
                value(n.kernel.set_affinity(v, core))?;
                let action = hook(n.vcpus[v].load_fp(core, t), "load_fp")?;
                value(n.kernel.apply(v, action))?;
                d.loads[v] += 1;
                n.guest[v] = Guest::Running;
            }
            Move::FpsBegin(k) => {
                let (ch, core) = (client_ch(k), client_core(k));
                match Rc::make_mut(&mut n.svc).begin(t, ch, core) {
                    Ok(BeginStep::Grant) => {
                        d.grants[core as usize] += 1;
                        self.saw(|c| c.grants += 1);
                        n.clients[k] = Client::Section { open: true };
                    }
                    Ok(BeginStep::NeedSaveback { vcpu, core: asked }) => {
                        n.needed[k] = Some(vcpu);
                        if self.cfg.bug == Some(Bug::SkipSaveback) {
                            self.finish(&mut n, &mut d, k, Ok(false), false)?;
                        } else {
                            n.fps = Fps::WaitVmm {
                                k,
                                vcpu,
                                core: asked,
                            };
                        }
                    }
                    Err(e) => return Err(format!("[refused] client {k}'s neon_begin: {e}")),
                }
                n.svc_hash = hash_of(&n.svc);
            }
            Move::FpsFinish => {
                let Fps::Answered { k, result, moved } = w.fps else {
                    return Err("no answer to finish".into());
                };
                self.finish(&mut n, &mut d, k, result, moved)?;
                n.fps = Fps::Idle;
                n.svc_hash = hash_of(&n.svc);
            }
            Move::FpsEnd(k) => {
                let core = client_core(k);
                let end = Rc::make_mut(&mut n.svc).end(t, client_ch(k), core, 0);
                match (end, w.clients[k]) {
                    (Ok(()), Client::CallEnd { open: true }) => {}
                    // The end of a section fp-service refused to open.
                    (Err(FpServiceError::NotOpen), Client::CallEnd { open: false }) => {
                        d.errors[core as usize] += 1;
                    }
                    (r, _) => return Err(format!("[refused] client {k}'s neon_end: {r:?}")),
                }
                n.clients[k] = Client::CallBegin;
                n.svc_hash = hash_of(&n.svc);
            }
            Move::Neon(k) => {
                let c = Self::FIRST_CLIENT + k;
                value(n.kernel.schedule(c))?;
                if value(n.kernel.use_fp(c, true))? == FpUse::Trapped {
                    return Err(format!("[value] NEON client {k} trapped on FP"));
                }
                let Client::Section { open } = w.clients[k] else {
                    return Err(format!("NEON client {k} is not in a section"));
                };
                n.clients[k] = Client::CallEnd { open };
            }
        }
        self.settle(w, &mut n, &d)?;
        Ok(n)
    }

    /// `finish_begin` with the VMM's answer; the grant must come after the save-back it needed.
    /// With migration, a request that crossed the vCPU's move is refused (see
    /// `lazy_every_interleaving_with_migration`); anything else refused is a violation.
    fn finish(
        &self,
        n: &mut World<N>,
        d: &mut Delta<N>,
        k: usize,
        result: Result<bool, u64>,
        moved: bool,
    ) -> Result<(), String> {
        let core = client_core(k);
        match Rc::make_mut(&mut n.svc).finish_begin(&self.table, client_ch(k), core, result) {
            Ok(saved) => {
                self.clear_needed(n);
                if let Some(v) = n.needed[k] {
                    return Err(format!(
                        "[save-back] client {k} granted NEON on core {core} while vCPU {v}, \
                         which the table named at its neon_begin, was never saved back"
                    ));
                }
                d.grants[core as usize] += 1;
                d.saved_grants[core as usize] += saved as u64;
                self.saw(|c| c.saved_grants += saved as u64);
                n.clients[k] = Client::Section { open: true };
                Ok(())
            }
            Err(FpServiceError::SavebackFailed(_))
                if self.cfg.migrate != Migrate::Never && moved =>
            {
                self.saw(|c| c.moved_refusals += 1);
                n.needed[k] = None;
                d.errors[core as usize] += 1;
                n.clients[k] = Client::Section { open: false };
                Ok(())
            }
            Err(e) => Err(format!("[refused] client {k}'s neon_begin: {e}")),
        }
    }

    fn raw_owner(&self, core: u64) -> u64 {
        self.table
            .core(core)
            .expect("core")
            .owner
            .load(Ordering::Relaxed)
    }

    /// A `needed` save-back is done once that vCPU's `fpuDisabled` is set.
    fn clear_needed(&self, n: &mut World<N>) {
        for needed in &mut n.needed {
            if needed.is_some_and(|v| n.kernel.fpu_disabled[v as usize]) {
                *needed = None;
            }
        }
    }

    /// After a step: the counters moved as `d` says (then zeroed), the table is read back into
    /// the state, the ghosts follow, and every state invariant holds.
    fn settle(&self, w: &World<N>, n: &mut World<N>, d: &Delta<N>) -> Result<(), String> {
        for v in 0..N {
            let s = n.vcpus[v].stats;
            let binds = (0..Self::CORES)
                .filter(|&c| w.owner(c) != Some(v) && self.raw_owner(c) == v as u64 + 1)
                .count() as u64;
            let want = FpStats {
                fp_traps: d.fp_traps[v],
                savebacks: d.savebacks[v],
                stale_savebacks: d.stale_savebacks[v],
                binds,
                loads: d.loads[v],
                puts: d.puts[v],
            };
            if s != want {
                return Err(format!(
                    "[counters] vCPU {v}'s hook stats moved by {s:?}, expected {want:?}"
                ));
            }
            n.vcpus[v].stats = FpStats::default();
        }
        for c in 0..Self::CORES {
            let e = self.table.core(c).expect("core");
            let owner = e.owner.load(Ordering::Relaxed);
            let changed = (owner != w.table[c as usize].owner) as u64;
            let got = [&e.grants, &e.savebacks, &e.errors, &e.leaks, &e.seq]
                .map(|a| a.load(Ordering::Relaxed));
            let ci = c as usize;
            let want = [d.grants[ci], d.saved_grants[ci], d.errors[ci], 0, changed];
            if got != want {
                return Err(format!(
                    "[counters] core {c}'s [grants, savebacks, errors, leaks, seq] moved by \
                     {got:?}, expected {want:?}"
                ));
            }
            let open = e.open_sections.load(Ordering::Relaxed);
            let inside = (0..N)
                .filter(|&k| {
                    client_core(k) == c
                        && matches!(
                            n.clients[k],
                            Client::Section { open: true } | Client::CallEnd { open: true }
                        )
                })
                .count() as u64;
            if open != inside {
                return Err(format!(
                    "[counters] core {c}: {open} open sections, {inside} clients inside one"
                ));
            }
            n.table[ci] = Entry { owner, open };
        }
        if n.svc.stats.errors != 0 {
            return Err(format!(
                "[counters] fp-service errors {}",
                n.svc.stats.errors
            ));
        }
        n.kernel.loads.iter_mut().for_each(|l| *l = 0);
        self.clear_needed(n);
        for v in 0..N {
            let core = n.vcpus[v].core();
            let was = n.eclipsed[v];
            n.eclipsed[v] = n.vcpus[v].owner() == FpOwner::Guest
                && n.owner(core) != Some(v)
                && (was || w.owner(core) == Some(v));
            if n.eclipsed[v] && !was {
                self.saw(|c| c.eclipses += 1);
            }
        }
        self.check(n)
    }

    /// The state invariants.
    fn check(&self, n: &World<N>) -> Result<(), String> {
        n.kernel.check().map_err(|e| format!("[value] {e}"))?;
        if n.kernel.fpu_owner.contains(&Some(Self::FP_SERVICE))
            || (self.lazy() && n.kernel.fpu_owner.contains(&Some(Self::VMM)))
        {
            return Err("[value] an fpu=\"false\" PD owns an FPU".into());
        }
        let mut named = [0; N];
        for c in 0..Self::CORES {
            let Some(v) = n.owner(c) else { continue };
            let Some(fp) = n.vcpus.get(v) else {
                return Err(format!(
                    "[stale owner] core {c}'s entry names unknown vCPU {v}"
                ));
            };
            named[v] += 1;
            let ok = self.lazy()
                && n.guest[v] != Guest::Stopped
                && fp.owner() == FpOwner::Guest
                && fp.core() == c
                && n.kernel.core[v] == c
                && !n.kernel.fpu_disabled[v];
            if !ok {
                return Err(format!(
                    "[stale owner] core {c}'s entry names vCPU {v}, whose state is neither live \
                     there nor put back there by seL4"
                ));
            }
        }
        if let Some(v) = named.iter().position(|&k| k > 1) {
            return Err(format!("[two cores] vCPU {v} is named on two cores"));
        }
        for v in 0..N {
            let fp = &n.vcpus[v];
            if fp.core() != n.kernel.core[v] {
                return Err(format!(
                    "[hooks] vCPU {v}: hooks and kernel disagree on its core"
                ));
            }
            if n.guest[v] == Guest::Stopped {
                if n.kernel.fpu_owner.contains(&Some(v)) {
                    return Err(format!("[value] stopped vCPU {v}'s state is still live"));
                }
                continue;
            }
            let in_flight = match n.vmm {
                Vmm::SavebackFlags(x, a) | Vmm::StopFlags(x, a) if x == v => a,
                _ => FpAction::None,
            };
            let disabled = match in_flight {
                FpAction::DisableGuestFp => true,
                FpAction::EnableGuestFp => false,
                FpAction::None => n.kernel.fpu_disabled[v],
            };
            if disabled != (fp.owner() != FpOwner::Guest) {
                return Err(format!(
                    "[hooks] vCPU {v}: hooks say {:?}, kernel fpuDisabled = {disabled}",
                    fp.owner()
                ));
            }
            if n.eclipsed[v] && self.cfg.migrate == Migrate::Never {
                return Err(format!(
                    "[unpublished] vCPU {v}'s entry was changed by another vCPU's hook"
                ));
            }
            if !self.lazy() || n.eclipsed[v] || n.owner(fp.core()) == Some(v) {
                continue;
            }
            if n.guest[v] == Guest::Running && fp.owner() == FpOwner::Guest {
                return Err(format!(
                    "[unpublished] vCPU {v} runs with its FP enabled on core {} but the table \
                     does not name it",
                    fp.core()
                ));
            }
            let live = n.kernel.fpu_owner[fp.core() as usize] == Some(v);
            if live && in_flight != FpAction::DisableGuestFp {
                return Err(format!(
                    "[unpublished] vCPU {v}'s state is live on core {} but the table does not \
                     name it",
                    fp.core()
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The search
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Explored {
    states: usize,
    transitions: usize,
    depth: usize,
    seconds: f64,
    seen: Coverage,
}

/// A violation and the shortest path to it.
#[derive(Debug)]
struct Counterexample {
    error: String,
    trace: Vec<Move>,
}

impl<const N: usize> Checker<N> {
    /// Breadth-first search of every reachable state; stops at the first violation.
    fn explore(&self) -> Result<Explored, Counterexample> {
        let start = Instant::now();
        let init = self.boot().map_err(|error| Counterexample {
            error,
            trace: vec![],
        })?;
        // Per state: the state it was first reached from, and the step.
        let mut parent = Visited::default();
        let root = init.fingerprint();
        parent.insert(root, None);
        let mut queue = VecDeque::from([(init, root, 0usize)]);
        let (mut transitions, mut depth) = (0usize, 0usize);
        while let Some((w, id, level)) = queue.pop_front() {
            depth = depth.max(level);
            let moves = self.moves(&w);
            if moves.is_empty() {
                return Err(self.counterexample(&parent, id, None, "deadlock: no step".into()));
            }
            for m in moves {
                transitions += 1;
                match self.step(&w, m) {
                    Ok(n) => {
                        let f = n.fingerprint();
                        if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(f) {
                            e.insert(Some((id, m)));
                            queue.push_back((n, f, level + 1));
                        }
                    }
                    Err(error) => return Err(self.counterexample(&parent, id, Some(m), error)),
                }
            }
        }
        Ok(Explored {
            states: parent.len(),
            transitions,
            depth,
            seconds: start.elapsed().as_secs_f64(),
            seen: self.seen.get(),
        })
    }

    fn counterexample(
        &self,
        parent: &Visited,
        mut id: u128,
        last: Option<Move>,
        error: String,
    ) -> Counterexample {
        let mut trace: Vec<Move> = last.into_iter().collect();
        while let Some(Some((p, m))) = parent.get(&id) {
            trace.push(*m);
            id = *p;
        }
        trace.reverse();
        Counterexample { error, trace }
    }

    /// The trace replayed from boot, one line per step with the state after it.
    fn render(&self, cx: &Counterexample) -> String {
        let mut out = format!("counterexample ({} steps): {}\n", cx.trace.len(), cx.error);
        let Ok(mut w) = self.boot() else {
            return out;
        };
        out += &format!("   boot: {w}\n");
        for (i, &m) in cx.trace.iter().enumerate() {
            match self.step(&w, m) {
                Ok(n) => {
                    out += &format!("{:>4}. {m}\n      -> {n}\n", i + 1);
                    w = n;
                }
                Err(e) => out += &format!("{:>4}. {m}\n      -> VIOLATION {e}\n", i + 1),
            }
        }
        out
    }
}

fn run<const N: usize>(cfg: Config) -> Result<Explored, String> {
    let checker = Checker::<N>::new(cfg);
    checker.explore().map_err(|cx| checker.render(&cx))
}

/// Explores `cfg` on `N` cores and asserts it passes with at least `min_states` states.
fn must_pass<const N: usize>(cfg: Config, min_states: usize) -> Coverage {
    match run::<N>(cfg) {
        Ok(x) => {
            println!(
                "fp_explore {N} cores {cfg:?}: {} states, {} transitions, depth {}, {:.1} s\n  \
                 {:?}",
                x.states, x.transitions, x.depth, x.seconds, x.seen
            );
            assert!(
                x.states >= min_states,
                "{cfg:?}: only {} states explored (at least {min_states} expected): the \
                 exploration collapsed",
                x.states
            );
            x.seen
        }
        Err(trace) => panic!("{cfg:?}:\n{trace}"),
    }
}

/// The lazy protocol's every path was taken: traps, save-backs that saved and that found
/// nothing, grants at once and after a save-back.
fn assert_lazy_paths(c: &Coverage) {
    assert!(
        c.fp_traps > 0
            && c.live_savebacks > 0
            && c.stale_savebacks > 0
            && c.grants > 0
            && c.saved_grants > 0,
        "a path of the protocol was never taken: {c:?}"
    );
}

/// Explores `cfg` (2 cores) with a planted bug and asserts the checker reports `tag`.
fn must_fail(cfg: Config, tag: &str) {
    match run::<2>(cfg) {
        Ok(x) => panic!(
            "{cfg:?}: the planted bug went unnoticed over {} states",
            x.states
        ),
        Err(trace) => {
            println!("fp_explore {cfg:?}: found, as it must:\n{trace}");
            let first = trace.lines().next().unwrap_or_default();
            assert!(
                first.contains(tag),
                "{cfg:?}: expected a {tag} violation, got {first}"
            );
        }
    }
}

const LAZY: Config = Config {
    policy: FpPolicy::Lazy,
    migrate: Migrate::Never,
    bug: None,
};

/// The shape of vmm-pd's SMP builds: every vCPU stays on its core.
#[test]
fn lazy_every_interleaving() {
    let seen = must_pass::<2>(LAZY, 30_000);
    assert_lazy_paths(&seen);
    assert_eq!((seen.moves, seen.eclipses, seen.moved_refusals), (0, 0, 0));
}

/// vCPU 1 also starts on core 0: two vCPUs share a core, and save-back requests cross a move
/// (refused, see [`Checker::finish`]).
#[test]
fn lazy_every_interleaving_with_migration() {
    assert_migration_paths(&must_pass::<2>(
        Config {
            migrate: Migrate::Vcpu1,
            ..LAZY
        },
        200_000,
    ));
}

fn assert_migration_paths(seen: &Coverage) {
    assert_lazy_paths(seen);
    assert!(
        seen.moves > 0 && seen.eclipses > 0 && seen.moved_refusals > 0,
        "{seen:?}"
    );
}

#[test]
fn eager_every_interleaving() {
    let seen = must_pass::<2>(
        Config {
            policy: FpPolicy::Eager,
            ..LAZY
        },
        3_000,
    );
    assert!(seen.grants > 0, "{seen:?}");
    assert_eq!(
        (seen.fp_traps, seen.live_savebacks + seen.stale_savebacks),
        (0, 0),
        "eager: nothing traps, nothing is saved back"
    );
}

/// Three cores, three vCPUs, three NEON clients (about 3 million states; a few minutes in a
/// debug build, run by `make test-host` with the others).
#[test]
fn lazy_every_interleaving_three_cores() {
    assert_lazy_paths(&must_pass::<3>(LAZY, 2_500_000));
}

/// Both vCPUs start on either core (about 600,000 states, tens of seconds in a debug build).
#[test]
fn lazy_every_interleaving_any_migration() {
    assert_migration_paths(&must_pass::<2>(
        Config {
            migrate: Migrate::Any,
            ..LAZY
        },
        500_000,
    ));
}

#[test]
fn finds_skipped_saveback() {
    must_fail(
        Config {
            bug: Some(Bug::SkipSaveback),
            ..LAZY
        },
        "[save-back]",
    );
}

#[test]
fn finds_put_fp_without_flush() {
    must_fail(
        Config {
            bug: Some(Bug::NoFlushOnPut),
            ..LAZY
        },
        "[stale owner]",
    );
}

#[test]
fn finds_saveback_without_set_flags() {
    must_fail(
        Config {
            bug: Some(Bug::SavebackWithoutFlags),
            ..LAZY
        },
        "[hooks]",
    );
}

#[test]
fn finds_reply_before_ctxsync() {
    must_fail(
        Config {
            bug: Some(Bug::ReplyBeforeCtxsync),
            ..LAZY
        },
        "[unpublished]",
    );
}
