//! The vCPU's FP/SIMD ownership and the four hooks, ported from Linux `arch/arm64/kvm/fpsimd.c`
//! (v4.18 "Optimise FPSIMD handling to reduce guest/host thrashing", with the later tri-state
//! `fp_owner`).
//!
//! On seL4 16 the kernel owns the mechanism: per core it remembers whose FP state is live
//! (`ksCurFPUOwner`), saves and loads it when switching between FPU-enabled threads, and a thread
//! with `fpuDisabled` runs with FP trapped (CPTR_EL2.TFP; for a vCPU the trap reaches the VMM as
//! a VCPUFault with EC 0x07). These hooks are the policy: they decide when the guest's FP is
//! trapped, and they publish in the shared [`FpTable`] whose state is live on which core so that
//! fp-service can ask for a save-back only when one is needed.
//!
//! Each hook takes its inputs as parameters and returns the [`FpAction`] the VMM must perform
//! (the one seL4 call, `TCB_SetFlags`); table updates are atomics on shared memory.
use core::fmt;

use crate::table::{FpTable, TableError};

/// Which FP handling the VMM was built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FpPolicy {
    /// The port: guest FP trapped until used, state kept live across exits, saved back on demand.
    Lazy,
    /// Pre-patch behaviour: guest FP always enabled, the VMM uses FP on every exit, no tracking.
    Eager,
}

/// Who owns the vCPU's FP state (Linux ≥ 6.0 `fp_owner`; v4.18 FP_ENABLED / FP_HOST).
///
/// seL4 saves whatever state is live when another FPU-enabled thread runs, so KVM's HOST_OWNED
/// and FREE collapse into [`FpOwner::Trapped`]: in both the guest's registers are not live and
/// the trap is armed; nothing needs saving by us before the guest's state is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FpOwner {
    /// Not set up yet (before `run_map_fp`'s caller ran `load_fp`).
    Unloaded,
    /// Guest FP traps (`fpuDisabled` set); its state is saved in its TCB. KVM: HOST / FREE.
    Trapped,
    /// Guest FP enabled; its state is live on the vCPU's core, or put back by seL4 when the vCPU
    /// next runs there. KVM: GUEST_OWNED (FP_ENABLED).
    Guest,
}

/// The seL4 call a hook asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FpAction {
    None,
    /// `TCB_SetFlags(set = fpuDisabled)`: seL4 saves the vCPU's live state into its TCB (by IPI
    /// when it is live on another core) and traps its next FP use.
    DisableGuestFp,
    /// `TCB_SetFlags(clear = fpuDisabled)`: seL4 loads the vCPU's state when it next runs.
    EnableGuestFp,
}

/// Hook errors; each carries the value that was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpError {
    Table(TableError),
    /// A save-back request named a core the vCPU is not on.
    WrongCore {
        asked: u64,
        vcpu_core: u64,
    },
    /// A hook was called in a state where KVM would never call it.
    NotLoaded,
    /// `load_fp` before `run_map_fp` succeeded.
    NotMapped,
}

impl From<TableError> for FpError {
    fn from(e: TableError) -> Self {
        Self::Table(e)
    }
}

impl fmt::Display for FpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(e) => write!(f, "{e}"),
            Self::WrongCore { asked, vcpu_core } => {
                write!(
                    f,
                    "save-back asked on core {asked}, vCPU is on core {vcpu_core}"
                )
            }
            Self::NotLoaded => write!(f, "FP hook called before load_fp"),
            Self::NotMapped => write!(f, "load_fp before run_map_fp"),
        }
    }
}

/// Counters, printed at the end of a run; `fp_traps` counts guest FP reloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FpStats {
    pub fp_traps: u64,
    pub savebacks: u64,
    /// Save-back requests that found nothing live (the state had already been saved).
    pub stale_savebacks: u64,
    pub binds: u64,
    pub loads: u64,
    pub puts: u64,
}

/// One vCPU's FP bookkeeping (KVM: the FP fields of `struct kvm_vcpu_arch`). Clone and Hash let
/// the host model checker (tests/fp_explore.rs) copy and fingerprint states.
#[derive(Clone, Debug, Hash)]
pub struct VcpuFp {
    vcpu: u8,
    core: u64,
    owner: FpOwner,
    /// `run_map_fp` succeeded.
    mapped: bool,
    policy: FpPolicy,
    pub stats: FpStats,
}

impl VcpuFp {
    /// A vCPU's bookkeeping before its first run: unmapped, unloaded.
    pub fn new(vcpu: u8, core: u64, policy: FpPolicy) -> Self {
        Self {
            vcpu,
            core,
            owner: FpOwner::Unloaded,
            mapped: false,
            policy,
            stats: FpStats::default(),
        }
    }

    /// `kvm_arch_vcpu_run_map_fp`: at vCPU setup, before its first run. Attaches to the shared
    /// table (KVM maps the task's FP state into hyp) and checks that the vCPU's core is in it.
    pub fn run_map_fp(&mut self, table: &FpTable, num_cores: u64) -> Result<(), FpError> {
        table.attach(num_cores)?;
        table.core(self.core)?;
        self.mapped = true;
        Ok(())
    }

    pub fn owner(&self) -> FpOwner {
        self.owner
    }

    pub fn core(&self) -> u64 {
        self.core
    }

    pub fn vcpu(&self) -> u8 {
        self.vcpu
    }

    pub fn policy(&self) -> FpPolicy {
        self.policy
    }

    /// `kvm_arch_vcpu_load_fp`: before the run loop starts on `core` (and after the vCPU moved
    /// there). The registers hold someone else's state: the guest's FP must trap (lazy). Under
    /// eager the guest's FP is simply always on.
    ///
    /// Precondition: any earlier residency was ended by [`put_fp`](Self::put_fp).
    pub fn load_fp(&mut self, core: u64, table: &FpTable) -> Result<FpAction, FpError> {
        if !self.mapped {
            return Err(FpError::NotMapped);
        }
        table.core(core)?;
        self.core = core;
        self.stats.loads += 1;
        Ok(match self.policy {
            FpPolicy::Lazy => {
                self.owner = FpOwner::Trapped;
                FpAction::DisableGuestFp
            }
            FpPolicy::Eager => {
                self.owner = FpOwner::Guest;
                FpAction::EnableGuestFp
            }
        })
    }

    /// The guest's first FP instruction since its state was put away trapped (VCPUFault EC 0x07):
    /// the analogue of hyp's `__hyp_switch_fpsimd`. seL4 saves whoever's state is live and loads
    /// the guest's once the trap is lifted; the instruction is re-executed on resume.
    pub fn fp_trap(&mut self) -> Result<FpAction, FpError> {
        match self.owner {
            FpOwner::Unloaded => Err(FpError::NotLoaded),
            // Trapped → Guest: lift the trap; `ctxsync_fp` publishes the new owner.
            FpOwner::Trapped => {
                self.stats.fp_traps += 1;
                self.owner = FpOwner::Guest;
                Ok(FpAction::EnableGuestFp)
            }
            // Guest → Guest: the kernel trapped although we lifted the trap (e.g. the flag was set
            // behind our back); lifting it again is the only way forward.
            FpOwner::Guest => {
                self.stats.fp_traps += 1;
                Ok(FpAction::EnableGuestFp)
            }
        }
    }

    /// `kvm_arch_vcpu_ctxsync_fp`: after every exit, before the VMM can receive any IPC. If the
    /// guest owns the registers, record in the table that this core's live state is the vCPU's
    /// (`fpsimd_bind_state_to_cpu`), so a NEON user on this core will ask for a save-back.
    /// No IPC, and no store while the table already names this vCPU (one atomic load): this
    /// runs on every exit. Reading the table rather than trusting a local flag keeps it right
    /// when another vCPU on the same core published in between.
    pub fn ctxsync_fp(&mut self, table: &FpTable) -> Result<(), FpError> {
        if self.policy == FpPolicy::Lazy
            && self.owner == FpOwner::Guest
            && !table.names(self.core, self.vcpu)
        {
            table.bind(self.core, self.vcpu)?;
            self.stats.binds += 1;
        }
        Ok(())
    }

    /// fp-service asks for the registers of `core` (a NEON user's `neon_begin`): save the guest's
    /// state back and re-arm its trap (`fpsimd_save` + `fpsimd_flush_cpu_state`, from the
    /// kernel-mode NEON side). A request that finds nothing live is answered without action.
    pub fn save_back(&mut self, core: u64, table: &FpTable) -> Result<FpAction, FpError> {
        table.core(core)?;
        if core != self.core {
            return Err(FpError::WrongCore {
                asked: core,
                vcpu_core: self.core,
            });
        }
        match (self.policy, self.owner) {
            // Guest → Trapped: seL4 writes the live state into the TCB when the flag is set.
            (FpPolicy::Lazy, FpOwner::Guest) => {
                table.flush(self.core, self.vcpu)?;
                self.owner = FpOwner::Trapped;
                self.stats.savebacks += 1;
                Ok(FpAction::DisableGuestFp)
            }
            _ => {
                self.stats.stale_savebacks += 1;
                Ok(FpAction::None)
            }
        }
    }

    /// `kvm_arch_vcpu_put_fp`: the vCPU stops, resets or moves to another core. Save its state
    /// and clear the core's entry; a later `load_fp` starts over.
    pub fn put_fp(&mut self, table: &FpTable) -> Result<FpAction, FpError> {
        self.stats.puts += 1;
        let was = self.owner;
        self.owner = FpOwner::Unloaded;
        Ok(match was {
            FpOwner::Guest => {
                table.flush(self.core, self.vcpu)?;
                FpAction::DisableGuestFp
            }
            FpOwner::Trapped | FpOwner::Unloaded => FpAction::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(policy: FpPolicy) -> (FpTable, VcpuFp) {
        let t = FpTable::default();
        let mut v = VcpuFp::new(0, 1, policy);
        v.run_map_fp(&t, 2).unwrap();
        (t, v)
    }

    #[test]
    fn run_map_checks_core_and_gates_load() {
        let t = FpTable::default();
        let mut v = VcpuFp::new(0, 2, FpPolicy::Lazy);
        assert_eq!(v.load_fp(2, &t), Err(FpError::NotMapped));
        assert_eq!(
            v.run_map_fp(&t, 2),
            Err(FpError::Table(TableError::BadCore(2)))
        );
        assert_eq!(v.load_fp(2, &t), Err(FpError::NotMapped));
    }

    #[test]
    fn lazy_cycle_load_trap_ctxsync_saveback() {
        let (t, mut v) = setup(FpPolicy::Lazy);
        assert_eq!(v.fp_trap(), Err(FpError::NotLoaded));
        assert_eq!(v.load_fp(1, &t), Ok(FpAction::DisableGuestFp));
        assert_eq!(v.owner(), FpOwner::Trapped);
        v.ctxsync_fp(&t).unwrap();
        assert_eq!(t.owner(1), Ok(None), "nothing to publish while trapped");

        assert_eq!(v.fp_trap(), Ok(FpAction::EnableGuestFp));
        v.ctxsync_fp(&t).unwrap();
        assert_eq!(t.owner(1), Ok(Some(0)));
        v.ctxsync_fp(&t).unwrap();
        assert_eq!(v.stats.binds, 1, "published once, not on every exit");
        t.bind(1, 7).unwrap(); // another vCPU on this core published meanwhile
        v.ctxsync_fp(&t).unwrap();
        assert_eq!(t.owner(1), Ok(Some(0)), "republished");

        assert_eq!(
            v.save_back(0, &t),
            Err(FpError::WrongCore {
                asked: 0,
                vcpu_core: 1
            })
        );
        assert_eq!(v.save_back(1, &t), Ok(FpAction::DisableGuestFp));
        assert_eq!(t.owner(1), Ok(None));
        assert_eq!(v.owner(), FpOwner::Trapped);
        assert_eq!(
            v.save_back(1, &t),
            Ok(FpAction::None),
            "second request finds nothing live"
        );
        assert_eq!(v.stats.stale_savebacks, 1);
        assert_eq!((v.stats.fp_traps, v.stats.savebacks), (1, 1));
    }

    #[test]
    fn put_saves_and_flushes_only_when_guest_owns() {
        let (t, mut v) = setup(FpPolicy::Lazy);
        v.load_fp(1, &t).unwrap();
        assert_eq!(v.put_fp(&t), Ok(FpAction::None));
        v.load_fp(1, &t).unwrap();
        v.fp_trap().unwrap();
        v.ctxsync_fp(&t).unwrap();
        assert_eq!(v.put_fp(&t), Ok(FpAction::DisableGuestFp));
        assert_eq!(t.owner(1), Ok(None));
        assert_eq!(v.owner(), FpOwner::Unloaded);
    }

    #[test]
    fn move_to_another_core_republishes_there() {
        let (t, mut v) = setup(FpPolicy::Lazy);
        v.load_fp(1, &t).unwrap();
        v.fp_trap().unwrap();
        v.ctxsync_fp(&t).unwrap();
        v.put_fp(&t).unwrap();
        v.load_fp(0, &t).unwrap();
        v.fp_trap().unwrap();
        v.ctxsync_fp(&t).unwrap();
        assert_eq!((t.owner(0), t.owner(1)), (Ok(Some(0)), Ok(None)));
    }

    #[test]
    fn eager_never_traps_or_publishes() {
        let (t, mut v) = setup(FpPolicy::Eager);
        assert_eq!(v.load_fp(1, &t), Ok(FpAction::EnableGuestFp));
        v.ctxsync_fp(&t).unwrap();
        assert_eq!(t.owner(1), Ok(None));
        assert_eq!(v.save_back(1, &t), Ok(FpAction::None));
        assert_eq!(v.put_fp(&t), Ok(FpAction::DisableGuestFp));
    }
}
