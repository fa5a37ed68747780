//! One vCPU: its seL4 objects, core and MPIDR, its FP bookkeeping (the four hooks act per vCPU,
//! each on its own core's table entry), its PSCI power state, whether it waits in WFI, and its
//! exit counters.
use lazyfp::abi;
use lazyfp::sdf::FP_POLICY;
use lazyfp::{FpAction, FpTable, Power, VcpuFp};
use microkit_rt::{Channel, Child, Tcb, UserContext, TCB_FLAG_FPU_DISABLED};

use crate::vm::VmmError;

/// seL4_VCPUReg numbers (aarch64).
pub mod reg {
    pub const SCTLR: u64 = 0;
    pub const ESR: u64 = 11;
    pub const FAR: u64 = 12;
    pub const VBAR: u64 = 14;
    pub const VMPIDR: u64 = 16;
    pub const ELR: u64 = 18;
    pub const SPSR: u64 = 19;
    pub const CNTV_CTL: u64 = 20;
    pub const CNTV_CVAL: u64 = 21;
    pub const CNTVOFF: u64 = 22;
}

/// EL1h with D, A, I, F masked: how a guest kernel expects to be entered.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 at reset: MMU and caches off, the RES1 bits of ARMv8.0 set.
const SCTLR_RESET: u64 = 0x30d0_0800;
/// MPIDR_EL1 bit 31 is RES1.
const MPIDR_RES1: u64 = 1 << 31;

/// Exit counters of one vCPU, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitStats {
    pub exits: u64,
    pub hvc: u64,
    pub smc: u64,
    pub mmio: u64,
    pub wfx: u64,
    /// WFIs that stopped the vCPU until an interrupt (the rest were stepped over).
    pub halts: u64,
    /// Why WFx exits did not halt (diagnostics): WFE hints stepped over; WFIs that found an
    /// interrupt already in a list register, or one queued; WFIs whose local deadline had passed;
    /// remote-vCPU WFIs whose deadline had passed (bounded sleep instead).
    pub wfe: u64,
    pub idle_lr: u64,
    pub idle_queued: u64,
    pub idle_due: u64,
    pub rechecks: u64,
    /// WFEs that napped (a spin of WFE_SPIN_LIMIT WFEs in a row).
    pub wfe_naps: u64,
    /// The interrupt that last made a WFI return at once.
    pub last_pending: u16,
    /// Halts ended by an injection, and by the wake-up timer.
    pub wakes_irq: u64,
    pub wakes_timer: u64,
    pub sysreg: u64,
    pub vppi: u64,
    pub maintenance: u64,
    pub capfault: u64,
    pub interferences: u64,
}

pub struct Vcpu {
    pub child: Child,
    pub tcb: Tcb,
    pub obj: microkit_rt::Vcpu,
    pub core: u8,
    pub mpidr: u64,
    pub fp: VcpuFp,
    pub power: Power,
    /// Stopped in WFI until an interrupt, or until this counter value (the virtual timer's
    /// deadline in physical counts; `u64::MAX`: no deadline).
    pub halted: Option<u64>,
    /// WFE exits in a row, with no other exit between them (a guest spin-wait).
    pub wfe_run: u32,
    /// The emulated EL1 physical timer (boards where its accesses trap), and whether its PPI is
    /// raised in the vGIC and not yet completed by the guest.
    pub ptimer: lazyfp::TimerRegs,
    pub ptimer_raised: bool,
    pub stats: ExitStats,
    /// The torture figures this vCPU reported: iterations, mismatches, first bad register.
    pub torture: Option<[u64; 3]>,
    /// The NEON worker on this vCPU's core.
    pub neon: Option<Channel>,
}

impl Vcpu {
    pub fn new(id: u8, core: u8) -> Self {
        let child = Child::new(id);
        Self {
            child,
            tcb: child.vm_tcb(),
            obj: child.vcpu(),
            core,
            mpidr: id as u64,
            fp: VcpuFp::new(id, core as u64, FP_POLICY),
            power: Power::Off,
            halted: None,
            wfe_run: 0,
            ptimer: lazyfp::TimerRegs::default(),
            ptimer_raised: false,
            stats: ExitStats::default(),
            torture: None,
            neon: lazyfp::sdf::neon_worker_on(core).map(|w| Channel::new(w.vmm_channel)),
        }
    }

    /// Performs the seL4 call a hook asked for.
    pub fn apply(&self, action: FpAction) -> Result<(), VmmError> {
        match action {
            FpAction::None => {}
            FpAction::DisableGuestFp => {
                self.tcb.set_flags(0, TCB_FLAG_FPU_DISABLED)?;
            }
            FpAction::EnableGuestFp => {
                self.tcb.set_flags(TCB_FLAG_FPU_DISABLED, 0)?;
            }
        }
        Ok(())
    }

    /// Powers the vCPU on at `entry` with x0 = `x0`: EL1h, interrupts masked, MMU off, its
    /// MPIDR; `load_fp` before it runs (the registers hold someone else's state: trap the
    /// guest's first FP use).
    pub fn power_on(&mut self, entry: u64, x0: u64, table: &FpTable) -> Result<(), VmmError> {
        let mut ctx = UserContext::default();
        ctx.0[UserContext::PC] = entry;
        ctx.0[UserContext::SPSR] = SPSR_EL1H_MASKED;
        ctx.set_gpr(0, x0);
        self.tcb.write_registers(false, &ctx, 4)?;
        self.obj.write_reg(reg::VMPIDR, self.mpidr | MPIDR_RES1)?;
        self.obj.write_reg(reg::SCTLR, SCTLR_RESET)?;
        let action = self.fp.load_fp(self.fp.core(), table)?;
        self.apply(action)?;
        self.halted = None;
        self.power = Power::On;
        self.tcb.resume()?;
        Ok(())
    }

    /// Saves the vCPU's FP state back (`put_fp`) and suspends it.
    pub fn power_off(&mut self, table: &FpTable) -> Result<(), VmmError> {
        self.power = Power::Off;
        self.halted = None;
        let action = self.fp.put_fp(table)?;
        self.apply(action)?;
        self.tcb.suspend()?;
        Ok(())
    }

    /// The physical counter value at which the virtual timer fires, if it is armed and unmasked
    /// (CNTV_CTL.ENABLE = 1, IMASK = 0); the virtual count is the physical one less CNTVOFF.
    pub fn timer_deadline(&self) -> Result<Option<u64>, VmmError> {
        let ctl = self.obj.read_reg(reg::CNTV_CTL)?;
        if ctl & 0b11 != 0b01 {
            return Ok(None);
        }
        let cval = self.obj.read_reg(reg::CNTV_CVAL)?;
        let off = self.obj.read_reg(reg::CNTVOFF)?;
        Ok(Some(cval.wrapping_add(off)))
    }
}

/// What the torture reports call registers beyond Q0–Q31.
pub fn reg_name(n: u64, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    match n {
        abi::REG_FPSR => write!(f, "fpsr"),
        abi::REG_FPCR => write!(f, "fpcr"),
        n => write!(f, "q{n}"),
    }
}
