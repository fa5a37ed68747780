//! seL4 16's FPU mechanism, as the project's seL4/Microkit facts (sel4-microkit-facts.md, "FP/SIMD
//! in seL4 16") describe it: a per-core FPU owner, lazy saves on switch, `fpuDisabled`.
//!
//! A register file's content is an [`FpVal`]: who wrote it and whether it is still that writer's
//! latest value. That is all a check needs (a read is right exactly when it returns the reader's
//! latest value), and it keeps the state finite for the explicit-state checker.
use core::hash::{Hash, Hasher};

use lazyfp::FpAction;

/// A thread (TCB) of the modelled system.
pub type Tid = usize;

/// The content of an FP register file (live on a core or saved in a TCB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FpVal {
    pub writer: Tid,
    /// This is the last value `writer` wrote (every copy of an older one is marked stale).
    pub latest: bool,
}

/// What a thread's FP instruction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpUse {
    /// `fpuDisabled`: the instruction trapped (CPTR_EL2.TFP; a vCPU's trap becomes a VCPUFault
    /// EC 0x07 for the VMM) and will be re-executed after the reply.
    Trapped,
    /// It read its registers (checked) and maybe wrote a new value.
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Thread names for messages, indexed by [`Tid`].
    names: &'static [&'static str],
    /// Per core: whose FP state is live in the registers (`ksCurFPUOwner`).
    pub fpu_owner: Vec<Option<Tid>>,
    /// Per core: the live register file (`None` while nobody owns the core's FPU).
    pub regs: Vec<Option<FpVal>>,
    /// Per thread: the FP state saved in its TCB.
    pub saved: Vec<FpVal>,
    /// Per thread: the TCB's `fpuDisabled` flag.
    pub fpu_disabled: Vec<bool>,
    /// Per thread: the core it is pinned to (its affinity).
    pub core: Vec<u64>,
    /// Per thread: how often the kernel loaded its state into registers (a counter: not part
    /// of [`Kernel::fingerprint`]).
    pub loads: Vec<u64>,
}

impl Kernel {
    /// `threads[t] = (core, fpu_disabled)`, named `names[t]`. Nobody's state is live yet; every
    /// TCB holds the thread's initial value.
    pub fn new(num_cores: u64, names: &'static [&'static str], threads: &[(u64, bool)]) -> Self {
        let n = threads.len();
        assert!(names.len() >= n, "a name for every thread");
        Self {
            names,
            fpu_owner: vec![None; num_cores as usize],
            regs: vec![None; num_cores as usize],
            saved: (0..n)
                .map(|t| FpVal {
                    writer: t,
                    latest: true,
                })
                .collect(),
            fpu_disabled: threads.iter().map(|&(_, d)| d).collect(),
            core: threads.iter().map(|&(c, _)| c).collect(),
            loads: vec![0; n],
        }
    }

    pub fn name(&self, t: Tid) -> &'static str {
        self.names.get(t).copied().unwrap_or("unknown thread")
    }

    pub fn core_of(&self, t: Tid) -> usize {
        self.core[t] as usize
    }

    /// Saves the live state of `core` into its owner's TCB; the core has no owner afterwards.
    fn save_live_state(&mut self, core: usize) -> Result<(), String> {
        if let Some(owner) = self.fpu_owner[core].take() {
            self.saved[owner] = self.regs[core]
                .take()
                .ok_or_else(|| format!("core {core}'s FPU is owned but has no live registers"))?;
        }
        Ok(())
    }

    /// The scheduler switches `t`'s core to `t` (`switchToThread` → lazy FPU restore):
    /// - `fpuDisabled` thread: nothing; the owner's state stays live and `t` runs with FP trapped;
    /// - the core's FPU owner: nothing;
    /// - any other FPU-enabled thread: the owner's live state is saved into its TCB and `t`'s is
    ///   loaded.
    pub fn schedule(&mut self, t: Tid) -> Result<(), String> {
        let c = self.core_of(t);
        if self.fpu_disabled[t] || self.fpu_owner[c] == Some(t) {
            return Ok(());
        }
        self.save_live_state(c)?;
        self.regs[c] = Some(self.saved[t]);
        self.fpu_owner[c] = Some(t);
        self.loads[t] += 1;
        Ok(())
    }

    /// The running thread `t` executes an FP instruction that reads its registers: `None` when it
    /// traps (`fpuDisabled`), else the live register value (a running FPU-enabled thread owns its
    /// core's FPU).
    pub fn fp_read(&self, t: Tid) -> Result<Option<FpVal>, String> {
        if self.fpu_disabled[t] {
            return Ok(None);
        }
        let c = self.core_of(t);
        if self.fpu_owner[c] != Some(t) {
            return Err(format!(
                "{} runs FPU-enabled on core {c} without owning it",
                self.name(t)
            ));
        }
        Ok(self.regs[c])
    }

    /// The running FPU-enabled thread `t` writes a new value into its registers: every copy of
    /// its older values (in any TCB or register file) becomes stale.
    pub fn fp_write(&mut self, t: Tid) -> Result<(), String> {
        let c = self.core_of(t);
        if self.fpu_disabled[t] || self.fpu_owner[c] != Some(t) {
            return Err(format!("{} writes FP without owning it", self.name(t)));
        }
        for v in self.saved.iter_mut().chain(self.regs.iter_mut().flatten()) {
            if v.writer == t {
                v.latest = false;
            }
        }
        self.regs[c] = Some(FpVal {
            writer: t,
            latest: true,
        });
        Ok(())
    }

    /// The running thread `t` uses FP: it reads its registers, which must hold exactly what it
    /// last wrote, and if `writes` leaves a new value; or it traps.
    pub fn use_fp(&mut self, t: Tid, writes: bool) -> Result<FpUse, String> {
        let Some(got) = self.fp_read(t)? else {
            return Ok(FpUse::Trapped);
        };
        self.check_read(t, got)?;
        if writes {
            self.fp_write(t)?;
        }
        Ok(FpUse::Done)
    }

    /// `TCB_SetFlags(set = fpuDisabled)`: if `t` owns its core's FPU, its state is saved into
    /// its TCB first (by IPI when remote) and the core has no owner; then the flag is set.
    pub fn set_fpu_disabled(&mut self, t: Tid) -> Result<(), String> {
        let c = self.core_of(t);
        if self.fpu_owner[c] == Some(t) {
            self.save_live_state(c)?;
        }
        self.fpu_disabled[t] = true;
        Ok(())
    }

    /// `TCB_SetFlags(clear = fpuDisabled)`: only the flag; the state is loaded when `t` runs.
    pub fn clear_fpu_disabled(&mut self, t: Tid) {
        self.fpu_disabled[t] = false;
    }

    /// The `TCB_SetFlags` call a hook asked for, on `t`'s TCB.
    pub fn apply(&mut self, t: Tid, action: FpAction) -> Result<(), String> {
        match action {
            FpAction::None => Ok(()),
            FpAction::DisableGuestFp => self.set_fpu_disabled(t),
            FpAction::EnableGuestFp => {
                self.clear_fpu_disabled(t);
                Ok(())
            }
        }
    }

    /// `TCB_SetAffinity` (seL4 `Arch_migrateTCB`): a thread that owns its old core's FPU has its
    /// state saved there before it moves.
    pub fn set_affinity(&mut self, t: Tid, core: u64) -> Result<(), String> {
        let old = self.core_of(t);
        if self.fpu_owner[old] == Some(t) {
            self.save_live_state(old)?;
        }
        self.core[t] = core;
        Ok(())
    }

    /// `t` read `got` from its FP registers: it must be exactly what `t` last wrote.
    pub fn check_read(&self, t: Tid, got: FpVal) -> Result<(), String> {
        match got {
            FpVal {
                writer,
                latest: true,
            } if writer == t => Ok(()),
            FpVal { writer, .. } if writer == t => Err(format!(
                "{} lost its FP state: it found an older value of its own",
                self.name(t)
            )),
            FpVal { writer, .. } => Err(format!(
                "{} found {}'s FP state in its registers (leak)",
                self.name(t),
                self.name(writer)
            )),
        }
    }

    /// No value lost or leaked, for every thread: its latest value is live on its core (it owns
    /// the FPU there) or saved in its TCB; and the kernel's own consistency.
    pub fn check(&self) -> Result<(), String> {
        for (c, owner) in self.fpu_owner.iter().enumerate() {
            match owner {
                Some(o) if self.core_of(*o) != c => {
                    return Err(format!(
                        "FPU owner of core {c} ({}) is pinned elsewhere",
                        self.name(*o)
                    ))
                }
                Some(o) if self.fpu_disabled[*o] => {
                    return Err(format!(
                        "FPU owner of core {c} ({}) has fpuDisabled",
                        self.name(*o)
                    ))
                }
                Some(_) if self.regs[c].is_none() => {
                    return Err(format!("owned core {c} without live registers"))
                }
                None if self.regs[c].is_some() => {
                    return Err(format!("unowned core {c} with live registers"))
                }
                _ => {}
            }
        }
        for t in 0..self.saved.len() {
            let c = self.core_of(t);
            let latest = match (self.fpu_owner[c] == Some(t), self.regs[c]) {
                (true, Some(live)) => live,
                _ => self.saved[t],
            };
            self.check_read(t, latest)?;
        }
        Ok(())
    }

    /// Feeds the state to `h`, counters left out.
    pub fn fingerprint<H: Hasher>(&self, h: &mut H) {
        self.fpu_owner.hash(h);
        self.regs.hash(h);
        self.saved.hash(h);
        self.fpu_disabled.hash(h);
        self.core.hash(h);
    }
}
