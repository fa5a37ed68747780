//! The VM and its run loop: exit → decode → handler → `ctxsync_fp` → resume, for every vCPU.
//!
//! KVM's hook points, in one place (each per vCPU, on that vCPU's core):
//! - `run_map_fp` + `load_fp`: [`Vm::start`] / [`Vm::reset`] and PSCI CPU_ON, before a vCPU
//!   first runs ([`Vcpu::power_on`]);
//! - the guest FP trap (`__hyp_switch_fpsimd`): the `Exit::FpTrap` arm of [`Vm::dispatch`];
//! - `ctxsync_fp`: end of [`Vm::handle_fault`], after every exit and before the VMM can
//!   receive any IPC (it only receives in the ReplyRecv that follows);
//! - `put_fp`: CPU_OFF, [`Vm::stop_all`], and save-back on fp-service's request in
//!   [`Vm::save_back`].
use core::fmt;
use core::mem::MaybeUninit;

use lazyfp::abi::{self, hc, Verdict};
use lazyfp::bundle::load_bundle;
use lazyfp::psci::{handle_psci, is_psci, Cpus, PsciOutcome};
use lazyfp::sdf::{vmm as sdf_vmm, OnVmStop, WakeTimer, FP_POLICY, NUM_CORES};
use lazyfp::virtio::{Effects, RamSlice};
use lazyfp::{
    decode_exit, exception_entry, Esr, Exit, ExitError, FpError, FpPolicy, FpTable, GicVersion,
    GuestException, Injections, LogOnce, MmioDevice, MmioError, Pl011, Power, SavebackError,
    SavebackOp, SysregAccess, TimerRegs, UartOutput, Vgic, VirtioConsole, MAX_VCPUS,
};
use microkit_rt::{notify, print, Child, MessageInfo, UserContext};

use crate::regs;
use crate::vcpu::{reg, reg_name, Vcpu, SPSR_EL1H_MASKED};

/// Guest timer ticks between two NEON worker sections (LAZYFP_NEON_EVERY; 0: only on request).
const NEON_EVERY_TICKS: u64 = match option_env!("LAZYFP_NEON_EVERY") {
    Some(s) => parse_u64(s),
    None => 1,
};

const fn parse_u64(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u64;
    while i < b.len() {
        assert!(
            b[i].is_ascii_digit(),
            "LAZYFP_NEON_EVERY must be a decimal number"
        );
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

/// The guest's GIC follows the board's.
const GIC: GicVersion = lazyfp::sdf::board::GIC;
const _: () =
    assert!(!lazyfp::sdf::vm::VCPUS.is_empty() && lazyfp::sdf::vm::VCPUS.len() <= MAX_VCPUS);
/// The VM's vCPUs (system.xml; at most MAX_VCPUS).
const NUM_VCPUS: usize = lazyfp::sdf::vm::VCPUS.len();
/// vCPU index by child id (a fault badge's low byte; `u8::MAX`: not a vCPU), from system.xml:
/// one load on every exit instead of a search. `Vm::start` pushes the vCPUs in this order.
const VCPU_OF_CHILD: [u8; 256] = {
    let mut t = [u8::MAX; 256];
    let mut k = 0;
    while k < lazyfp::sdf::vm::VCPUS.len() {
        t[lazyfp::sdf::vm::VCPUS[k].id as usize] = k as u8;
        k += 1;
    }
    t
};
/// ICC_SGI1R_EL1: a GICv3 guest's SGIs trap as a system register write.
const ICC_SGI1R_EL1: (u8, u8, u8, u8, u8) = (3, 0, 12, 11, 5);
/// The emulated PL011's interrupt (SPI 1), as on QEMU virt and in the generated DTB.
const UART_SPI: u16 = 33;
/// seL4's vGIC list registers hold 5 priority bits.
const PRIORITY_SHIFT: u8 = 3;

/// Why the VMM stopped serving an exit.
#[derive(Clone, Copy, Debug)]
pub enum VmmError {
    Exit(ExitError),
    Kernel(microkit_rt::Error),
    Fp(FpError),
    /// An instruction fetch from the very vector an injected exception enters: the guest can
    /// take no exception, and re-injecting would loop for ever.
    VectorFault {
        vbar: u64,
        pc: u64,
    },
    Image(lazyfp::bundle::BundleError),
    Gic(lazyfp::GicError),
    UnknownChild(u8),
}

impl fmt::Display for VmmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit(e) => write!(f, "{e}"),
            Self::Kernel(e) => write!(f, "seL4 call failed: {e}"),
            Self::Fp(e) => write!(f, "{e}"),
            Self::VectorFault { vbar, pc } => write!(
                f,
                "the guest's exception vector at {pc:#x} cannot be fetched (VBAR_EL1 {vbar:#x})"
            ),
            Self::Image(e) => write!(f, "{e}"),
            Self::Gic(e) => write!(f, "{e}"),
            Self::UnknownChild(c) => write!(f, "fault from unknown child {c}"),
        }
    }
}

impl From<microkit_rt::Error> for VmmError {
    fn from(e: microkit_rt::Error) -> Self {
        Self::Kernel(e)
    }
}

impl From<FpError> for VmmError {
    fn from(e: FpError) -> Self {
        Self::Fp(e)
    }
}

impl From<lazyfp::GicError> for VmmError {
    fn from(e: lazyfp::GicError) -> Self {
        Self::Gic(e)
    }
}

/// How an exit ends.
enum Resume {
    /// Reply to the fault with this message (label 0 resumes the vCPU).
    Reply(MessageInfo),
    /// The vCPU waits in WFI, suspended; an interrupt for it resumes it.
    Halt,
    /// The vCPU powered itself off (PSCI CPU_OFF).
    CpuOff,
    /// The guest asked to power off or reset the machine.
    Off,
    Reset,
    /// Serving the exit failed and the VM was stopped ([`Vm::fail`]): no reply, no ctxsync.
    Stopped,
}

const RESUME: Resume = Resume::Reply(MessageInfo::new(0, 0));

/// What the guest reported about itself.
#[derive(Clone, Copy, Debug, Default)]
struct GuestReport {
    verdict: Option<(Verdict, u64, u64)>,
}

pub struct Vm {
    /// One per system.xml vCPU, in its order: a fixed array, so an index checked once against
    /// [`NUM_VCPUS`] needs no further bounds checks on the exit path.
    vcpus: [Vcpu; NUM_VCPUS],
    /// Each vCPU's MPIDR, in vCPU order (the vGIC's affinity routing and PSCI's targets).
    mpidrs: heapless::Vec<u64, MAX_VCPUS>,
    table: &'static FpTable,
    ram: &'static mut [u8],
    image: &'static [u8],
    /// The XZ dictionary for compressed bundle parts.
    dict: &'static mut [u8],
    uart: Pl011,
    /// The emulated UART's interrupt line as last seen (it is level-triggered).
    uart_line: bool,
    /// The batched console (virtio-mmio); console input goes to it once its driver is up.
    virtio: VirtioConsole,
    /// Guest-physical addresses whose aborts or refused accesses were reported (once each).
    addr_logged: LogOnce<u64, 16>,
    /// Encodings of trapped system registers answered with UNDEF (reported once each).
    sysreg_logged: LogOnce<(u8, u8, u8, u8, u8), 16>,
    vgic: Vgic,
    report: GuestReport,
    running: bool,
    /// The wake-up timer's deadline, while armed.
    wake_at: Option<u64>,
    ticker: &'static lazyfp::ticker::TickerPage,
    latency: lazyfp::ticker::LatencyStats,
}

impl Vm {
    /// Sets the VM up and starts vCPU 0. A VM that cannot start is reported and left stopped;
    /// the VMM still serves fp-service.
    pub fn start(
        ram: &'static mut [u8],
        image: &'static [u8],
        dict: &'static mut [u8],
        table: &'static FpTable,
        ticker: &'static lazyfp::ticker::TickerPage,
    ) -> Self {
        let vcpus: [Vcpu; NUM_VCPUS] = core::array::from_fn(|k| {
            let v = &lazyfp::sdf::vm::VCPUS[k];
            Vcpu::new(v.id, v.cpu)
        });
        let mpidrs: heapless::Vec<u64, MAX_VCPUS> = vcpus.iter().map(|v: &Vcpu| v.mpidr).collect();
        // Cannot fail: system.xml has 1..=MAX_VCPUS vCPUs with distinct ids (checked at build).
        let vgic = Vgic::new(GIC, &mpidrs);
        let mut vm = Self {
            vcpus,
            mpidrs,
            table,
            ram,
            image,
            dict,
            uart: Pl011::default(),
            uart_line: false,
            virtio: VirtioConsole::default(),
            addr_logged: LogOnce::default(),
            sysreg_logged: LogOnce::default(),
            vgic: vgic.unwrap_or_else(|_| Vgic::new(GIC, &[0]).expect("one vCPU")),
            report: GuestReport::default(),
            running: false,
            wake_at: None,
            ticker,
            latency: lazyfp::ticker::LatencyStats::default(),
        };
        // run_map_fp: attach every vCPU to the per-core table before it first runs.
        let mapped = vm.vcpus.iter_mut().try_for_each(|v| {
            v.fp.run_map_fp(table, NUM_CORES as u64)
                .map_err(VmmError::from)
        });
        if let Err(e) = mapped.and_then(|()| vm.reset()) {
            say!("lazyfp: cannot start the guest: {e}");
            vm.stop(None, e);
        }
        vm
    }

    /// (Re)loads the image, resets the devices and runs vCPU 0 from the entry; the other vCPUs
    /// stay off until the guest starts them (PSCI CPU_ON).
    fn reset(&mut self) -> Result<(), VmmError> {
        let boot = load_bundle(self.image, self.ram, abi::GUEST_RAM_BASE, self.dict)
            .map_err(VmmError::Image)?;
        self.uart = Pl011::default();
        self.uart_line = false;
        self.virtio = VirtioConsole::default();
        self.vgic = Vgic::new(GIC, &self.mpidrs)?;
        for v in self.vcpus.iter_mut() {
            v.ptimer = TimerRegs::default();
            v.ptimer_raised = false;
        }
        self.set_wake(None);
        let Some(first) = self.vcpus.first_mut() else {
            return Ok(());
        };
        // x0: the device tree's address for Linux (booting.rst), 0 for guests without one.
        first.power_on(boot.entry, boot.x0, self.table)?;
        self.running = true;
        say!(
            "lazyfp: guest started at {:#x} ({} vCPU(s))",
            boot.entry,
            self.vcpus.len()
        );
        Ok(())
    }

    /// Powers every vCPU off (`put_fp` on each).
    fn stop_all(&mut self) {
        self.running = false;
        for v in self.vcpus.iter_mut() {
            if v.power != Power::Off && v.power_off(self.table).is_err() {
                say!("lazyfp: could not stop vcpu{}", v.child.index());
            }
        }
        self.set_wake(None);
    }

    fn index_of(&self, child: Child) -> Option<usize> {
        let i = VCPU_OF_CHILD[child.index() as usize] as usize;
        (i < NUM_VCPUS).then_some(i)
    }

    /// fp-service asks for this core's registers.
    pub fn save_back(&mut self, op: SavebackOp) -> Result<bool, SavebackError> {
        let SavebackOp::Saveback { vcpu, core } = op;
        let v = self
            .vcpus
            .iter_mut()
            .find(|v| v.child.index() as u64 == vcpu)
            .ok_or(SavebackError::UnknownVcpu(vcpu))?;
        let action = v.fp.save_back(core, self.table).map_err(|e| match e {
            FpError::WrongCore { asked, .. } => SavebackError::BadCore(asked),
            FpError::Table(_) | FpError::NotLoaded | FpError::NotMapped => {
                SavebackError::BadCore(core)
            }
        })?;
        v.apply(action).map_err(|e| match e {
            VmmError::Kernel(k) => SavebackError::Kernel(k.code()),
            _ => SavebackError::Kernel(u64::MAX),
        })?;
        Ok(action == lazyfp::FpAction::DisableGuestFp)
    }

    /// One vCPU exit, from fault message to reply (`None`: no reply). Every error is dealt
    /// with here (reported, the VM stopped), so nothing is returned for the event loop to do.
    pub fn handle_fault(&mut self, child: Child, info: MessageInfo) -> Option<MessageInfo> {
        if FP_POLICY == FpPolicy::Eager {
            // Pre-patch KVM: the host's FP state came back on every exit.
            microkit_rt::touch_fp();
        }
        let Some(i) = self.index_of(child) else {
            // Only vCPUs are children of the VMM (system.xml): this cannot be a guest's doing.
            say!("lazyfp: vmm: {}", VmmError::UnknownChild(child.index()));
            return None;
        };
        self.vcpus[i].stats.exits += 1;
        let resume = match decode_exit(info.label(), info.length(), microkit_rt::get_mr) {
            Ok(exit) => {
                if !matches!(exit, Exit::Wfx { wfe: true }) {
                    self.vcpus[i].wfe_run = 0;
                }
                self.dispatch(i, exit)
            }
            Err(e) => self.fail(i, VmmError::Exit(e)),
        };
        if let Resume::Stopped = resume {
            return None;
        }
        // ctxsync_fp: publish the FP owner before the VMM can receive any IPC.
        if let Err(e) = self.vcpus[i].fp.ctxsync_fp(self.table) {
            self.fail(i, VmmError::Fp(e));
            return None;
        }
        match resume {
            Resume::Reply(reply) => Some(reply),
            Resume::Halt | Resume::Stopped => None,
            other => {
                self.rare_outcome(i, other);
                None
            }
        }
    }

    /// Serving vCPU `i`'s exit failed with `e`: the VM stops ([`Vm::stop`]). Out of line and
    /// cold: the error stays off the exit path.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, i: usize, e: VmmError) -> Resume {
        self.stop(Some(i), e);
        Resume::Stopped
    }

    /// The outcomes of an exit that end more than the exit: a vCPU or the VM powered off, a
    /// reset. Out of line, so the reply path stays short.
    #[cold]
    #[inline(never)]
    fn rare_outcome(&mut self, i: usize, outcome: Resume) {
        match outcome {
            Resume::Reply(_) | Resume::Halt | Resume::Stopped => {}
            Resume::CpuOff => {
                if let Err(e) = self.vcpus[i].power_off(self.table) {
                    self.stop(Some(i), e);
                }
            }
            Resume::Off => {
                self.stop_all();
                self.finish();
                power_off();
            }
            Resume::Reset => {
                self.stop_all();
                say!("lazyfp: guest reset");
                if let Err(e) = self.reset() {
                    self.stop(Some(i), e);
                }
            }
        }
    }

    /// The VMM cannot go on with the VM (`e`, met serving vCPU `i` if any): diagnostics, every
    /// vCPU stopped, the closing counters and a FAIL verdict, then what the board file's
    /// `on_vm_stop` says: power the system off, or keep serving the rest of it.
    #[cold]
    fn stop(&mut self, i: Option<usize>, e: VmmError) {
        if let Some(i) = i {
            self.diagnose(i, e);
        }
        self.stop_all();
        self.counters();
        say!("lazyfp: guest exited: FAIL vmm stopped the guest: {e}");
        match lazyfp::sdf::board::ON_VM_STOP {
            OnVmStop::PowerOff => {
                say!("lazyfp: vm stopped: powering the system off (on_vm_stop=power-off)");
                power_off();
            }
            OnVmStop::Serve => {
                say!("lazyfp: vm stopped: the VMM keeps serving (on_vm_stop=serve)");
            }
        }
    }

    fn diagnose(&self, i: usize, e: VmmError) {
        let v = &self.vcpus[i];
        let pc = regs::read(v.tcb, 1).map(|f| f.pc()).unwrap_or(u64::MAX);
        say!(
            "lazyfp: vmm: {e}; vcpu{} guest pc {pc:#x}; exits so far {}",
            v.child.index(),
            v.stats.exits
        );
    }

    /// Second layer of exit dispatch: exception class → handler. The hot exits' handlers are
    /// inlined here; the rare ones (system registers, vPPIs, maintenance, cap faults, aborts
    /// without syndrome) are `#[inline(never)]`, which keeps the exit path's code small. Each
    /// arm settles its handler's error at once ([`Vm::fail`]): what leaves is a [`Resume`],
    /// two registers, not a `Result` carrying a `VmmError` through memory.
    #[inline(always)]
    fn dispatch(&mut self, i: usize, exit: Exit) -> Resume {
        macro_rules! settle {
            ($handler:expr) => {
                match $handler {
                    Ok(resume) => resume,
                    Err(e) => self.fail(i, e),
                }
            };
        }
        match exit {
            Exit::Hvc { regs, fault_ip, x7 } => settle!(self.hvc(i, regs, fault_ip, x7)),
            Exit::Smc => settle!(self.smc(i)),
            Exit::FpTrap => settle!(self.fp_trap(i)),
            Exit::Mmio { addr, pc, access } => settle!(self.mmio(i, addr, pc, access)),
            Exit::Wfx { wfe } => settle!(self.wfx(i, wfe)),
            Exit::Sysreg(access) => settle!(self.sysreg(i, access)),
            Exit::Vppi { irq } => settle!(self.vppi(i, irq)),
            Exit::VgicMaintenance { lr } => settle!(self.maintenance(i, lr)),
            Exit::CapFault { .. } => settle!(self.cap_fault(i)),
            Exit::AbortNoSyndrome {
                esr,
                addr,
                pc,
                prefetch,
            } => settle!(self.abort_no_syndrome(i, esr, addr, pc, prefetch)),
        }
    }

    /// __hyp_switch_fpsimd: lift the trap; seL4 loads the guest's state and re-runs the
    /// instruction.
    #[inline(always)]
    fn fp_trap(&mut self, i: usize) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        let action = v.fp.fp_trap()?;
        v.apply(action)?;
        Ok(RESUME)
    }

    /// WFI or WFE: stepped over, then the vCPU idles (WFI) or may nap (a WFE storm).
    #[inline(always)]
    fn wfx(&mut self, i: usize, wfe: bool) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.stats.wfx += 1;
        let mut slot = MaybeUninit::uninit();
        let ctx = regs::read_in(v.tcb, &mut slot, 1)?;
        regs::advance_and_write(v.tcb, ctx, 1)?;
        if wfe {
            v.stats.wfe += 1;
            return self.spin_wait(i);
        }
        self.idle(i)
    }

    /// A trapped MSR/MRS: the EL1 physical timer and, on GICv3, ICC_SGI1R_EL1.
    #[inline(never)]
    fn sysreg(&mut self, i: usize, access: SysregAccess) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.stats.sysreg += 1;
        let count = regs::words_for(access.rt);
        let mut slot = MaybeUninit::uninit();
        let ctx = regs::read_in(v.tcb, &mut slot, count)?;
        let pc = ctx.pc();
        if GIC == GicVersion::V3 && !access.read && access.key() == ICC_SGI1R_EL1 {
            let mut out = Injections::new();
            self.vgic.sgi1r_write(i, ctx.gpr(access.rt), &mut out);
            regs::advance_and_write(self.vcpus[i].tcb, ctx, 1)?;
            self.deliver(&out)?;
            return Ok(RESUME);
        }
        let now = microkit_rt::counter().0;
        let Ok(value) = v.ptimer.access(access, ctx.gpr(access.rt), now) else {
            return self.undef_sysreg(i, access, pc);
        };
        if let Some(val) = value {
            ctx.set_gpr(access.rt, val);
        }
        regs::advance_and_write(v.tcb, ctx, count)?;
        self.update_ptimer(i)?;
        Ok(RESUME)
    }

    /// A virtual PPI (the vCPU's virtual timer) fired: into the vGIC, and the NEON worker's pace.
    #[inline(never)]
    fn vppi(&mut self, i: usize, irq: u64) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.stats.vppi += 1;
        if NEON_EVERY_TICKS != 0 && v.stats.vppi.is_multiple_of(NEON_EVERY_TICKS) {
            // The NEON worker's rate: it works on this vCPU's core every N of its timer
            // ticks, so guests that make no lazyfp hypercalls (Linux) meet NEON pressure.
            if let Some(ch) = v.neon {
                v.stats.interferences += 1;
                notify(ch);
            }
        }
        let mut out = Injections::new();
        self.vgic.raise(i, irq as u16, &mut out)?;
        self.deliver(&out)?;
        Ok(RESUME)
    }

    /// The guest completed the interrupt in list register `lr`.
    #[inline(never)]
    fn maintenance(&mut self, i: usize, lr: Option<u8>) -> Result<Resume, VmmError> {
        self.vcpus[i].stats.maintenance += 1;
        if let Some(lr) = lr {
            let mut out = Injections::new();
            if let Some(irq) = self.vgic.complete(i, lr, &mut out) {
                if u64::from(irq) == abi::PTIMER_IRQ {
                    // The emulated physical timer's PPI: level, so raised again if
                    // the guest left its timer firing.
                    self.vcpus[i].ptimer_raised = false;
                    self.update_ptimer(i)?;
                } else if (16..32).contains(&irq) {
                    // The guest handled the virtual PPI: let seL4 deliver it again.
                    self.vcpus[i].obj.ack_vppi(irq as u64)?;
                }
                if irq == UART_SPI && self.uart.irq_level() {
                    // Level-triggered: still asserted after the guest's EOI.
                    self.uart_line = false;
                    self.update_uart_irq()?;
                }
            }
            self.deliver(&out)?;
        }
        Ok(RESUME)
    }

    /// A guest HVC whose x7 selected a real seL4 syscall that failed: answered like an unknown
    /// hypercall, stepping over the HVC.
    #[inline(never)]
    fn cap_fault(&mut self, i: usize) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.stats.capfault += 1;
        let mut slot = MaybeUninit::uninit();
        let ctx = regs::read_in(v.tcb, &mut slot, 4)?;
        ctx.set_gpr(0, hc::NOT_SUPPORTED);
        regs::advance_and_write(v.tcb, ctx, 4)?;
        Ok(RESUME)
    }

    /// A stage-2 fault without a syndrome (ISV = 0) or an instruction fetch.
    #[inline(never)]
    fn abort_no_syndrome(
        &mut self,
        i: usize,
        esr: Esr,
        addr: u64,
        pc: u64,
        prefetch: bool,
    ) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.stats.mmio += 1;
        if !prefetch && esr.cm() {
            // Cache maintenance by VA of an address without memory: nothing to
            // maintain; KVM steps over it too.
            let mut slot = MaybeUninit::uninit();
            let ctx = regs::read_in(v.tcb, &mut slot, 1)?;
            regs::advance_and_write(v.tcb, ctx, 1)?;
            return Ok(RESUME);
        }
        self.external_abort(i, pc, addr, prefetch, esr.wnr())
    }

    /// After a WFI (or CPU_SUSPEND), with the PC already past it: if nothing can wake vCPU `i`
    /// now, stop it until an interrupt becomes pending for it or its virtual timer's deadline
    /// passes (KVM's `kvm_vcpu_wfi` → `kvm_vcpu_halt`). seL4 cancels a faulted thread whose
    /// fault is left unreplied at the next receive, so the vCPU is suspended instead and later
    /// resumed, continuing after the WFI.
    fn idle(&mut self, i: usize) -> Result<Resume, VmmError> {
        if !WAKE_TIMER {
            return Ok(RESUME);
        }
        let v = &mut self.vcpus[i];
        if let Some((irq, listed)) = self.vgic.first_pending(i) {
            v.stats.last_pending = irq;
            if listed {
                v.stats.idle_lr += 1;
            } else {
                v.stats.idle_queued += 1;
            }
            return Ok(RESUME);
        }
        let mut deadline = v.timer_deadline()?.unwrap_or(u64::MAX);
        let (now, hz) = microkit_rt::counter();
        if deadline <= now {
            if v.core == sdf_vmm::CPU {
                // The timer has fired or is about to: its interrupt is on the way.
                v.stats.idle_due += 1;
                return Ok(RESUME);
            }
            v.stats.rechecks += 1;
            // A vCPU on another core: its timer fired there, and seL4 sends that as a VPPI
            // event behind this fault (the event wakes it). Returning at once would make the
            // WFI spin until then; sleep a bounded while instead.
            deadline = now.saturating_add(hz / REMOTE_RECHECK_HZ);
        }
        self.halt(i, deadline)
    }

    /// After a WFE, with the PC already past it. WFE is a hint that may complete at any time,
    /// so stepping over it is always correct, and a short wait is what KVM does too. But a guest
    /// spinning on a lock held by a vCPU that is not running turns that into an exit storm on the
    /// VMM's core, which also delays the exits of the lock holder. So after WFE_SPIN_LIMIT WFEs
    /// in a row the vCPU naps for 1/WFE_NAP_HZ s (or until an interrupt is injected into it):
    /// no longer than the 100 us event stream Linux itself relies on to bound a WFE.
    fn spin_wait(&mut self, i: usize) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.wfe_run = v.wfe_run.saturating_add(1);
        if !WAKE_TIMER || v.wfe_run < WFE_SPIN_LIMIT {
            return Ok(RESUME);
        }
        v.wfe_run = 0;
        v.stats.wfe_naps += 1;
        let (now, hz) = microkit_rt::counter();
        self.halt(i, now.saturating_add(hz / WFE_NAP_HZ))
    }

    /// Stops vCPU `i` until `deadline` (physical counts) or an injection wakes it.
    fn halt(&mut self, i: usize, deadline: u64) -> Result<Resume, VmmError> {
        let v = &mut self.vcpus[i];
        v.tcb.suspend()?;
        v.halted = Some(deadline);
        v.stats.halts += 1;
        self.arm_wake();
        Ok(Resume::Halt)
    }

    /// Resumes vCPU `i` if it waits in WFI; whether it did. The caller re-arms the wake-up
    /// timer (once, after all it changes).
    fn resume_halted(&mut self, i: usize, by_timer: bool) -> Result<bool, VmmError> {
        let Some(v) = self.vcpus.get_mut(i) else {
            return Ok(false);
        };
        if v.halted.take().is_none() || v.power != Power::On {
            return Ok(false);
        }
        if by_timer {
            v.stats.wakes_timer += 1;
        } else {
            v.stats.wakes_irq += 1;
        }
        v.tcb.resume()?;
        Ok(true)
    }

    /// The wake-up timer fired: resume the vCPUs whose deadline has passed, raise the physical
    /// timers that are due, then program the next deadline.
    pub fn wake_timer(&mut self) {
        microkit_rt::ack_gpt();
        let now = microkit_rt::counter().0;
        for i in 0..self.vcpus.len() {
            if self.vcpus[i].halted.is_some_and(|d| d <= now) {
                if let Err(e) = self.resume_halted(i, true) {
                    say!("lazyfp: waking vcpu{i}: {e}");
                }
            }
            if let Err(e) = self.raise_ptimer(i) {
                say!("lazyfp: vcpu{i}'s physical timer: {e}");
            }
        }
        // Programmed even if unchanged: a GPT's compare fires once and then stays quiet (the
        // physical timer would simply fire again).
        if WAKE_TIMER {
            let next = self.next_wake();
            self.program_wake(next);
        }
    }

    /// [`Vm::raise_ptimer`], then the wake-up timer re-armed for the next deadline (the
    /// guest may have moved its timer's).
    fn update_ptimer(&mut self, i: usize) -> Result<(), VmmError> {
        self.raise_ptimer(i)?;
        self.arm_wake();
        Ok(())
    }

    /// Raises vCPU `i`'s emulated physical-timer PPI if its line is up and it is not raised
    /// yet. The caller re-arms the wake-up timer.
    fn raise_ptimer(&mut self, i: usize) -> Result<(), VmmError> {
        let now = microkit_rt::counter().0;
        let v = &mut self.vcpus[i];
        if !v.ptimer_raised && v.ptimer.asserted(now) {
            v.ptimer_raised = true;
            let mut out = Injections::new();
            self.vgic.raise(i, abi::PTIMER_IRQ as u16, &mut out)?;
            self.place(&out)?;
        }
        Ok(())
    }

    /// Arms the wake-up timer for the earliest deadline: of a halted vCPU, or of an emulated
    /// physical timer whose PPI is not raised yet; or disarms it (its interrupt is
    /// level-triggered: a passed deadline left armed would fire without end).
    fn arm_wake(&mut self) {
        let next = self.next_wake();
        self.set_wake(next);
    }

    /// The earliest deadline the wake-up timer must serve, if any.
    fn next_wake(&self) -> Option<u64> {
        let halts = self.vcpus.iter().filter_map(|v| v.halted);
        let ptimers = self
            .vcpus
            .iter()
            .filter(|v| !v.ptimer_raised)
            .filter_map(|v| v.ptimer.deadline());
        halts.chain(ptimers).filter(|&d| d != u64::MAX).min()
    }

    fn set_wake(&mut self, at: Option<u64>) {
        if WAKE_TIMER && at != self.wake_at {
            self.program_wake(at);
        }
    }

    fn program_wake(&mut self, at: Option<u64>) {
        match lazyfp::sdf::board::WAKE {
            WakeTimer::ImxGpt => {
                let (now, hz) = microkit_rt::counter();
                microkit_rt::set_gpt_alarm(
                    at.map(|d| lazyfp::wake::ticks_until(now, d, hz, microkit_rt::GPT_HZ)),
                );
            }
            WakeTimer::Ptimer | WakeTimer::None => microkit_rt::set_wake_timer(at),
        }
        self.wake_at = at;
    }

    /// Writes what the vGIC decided into the list registers of the vCPUs concerned (seL4 does
    /// it by IPI for a vCPU on another core) and wakes those that wait in WFI.
    fn deliver(&mut self, out: &Injections) -> Result<(), VmmError> {
        if self.place(out)? {
            self.arm_wake();
        }
        Ok(())
    }

    /// [`Vm::deliver`] without re-arming the wake-up timer: whether it resumed any vCPU.
    fn place(&mut self, out: &Injections) -> Result<bool, VmmError> {
        let mut resumed = false;
        for inj in out {
            let Some(v) = self.vcpus.get(inj.vcpu as usize) else {
                continue;
            };
            v.obj
                .inject_irq(inj.irq, inj.priority >> PRIORITY_SHIFT, inj.group, inj.lr)?;
            resumed |= self.resume_halted(inj.vcpu as usize, false)?;
        }
        Ok(resumed)
    }

    /// HVC fast path: registers come in the fault message and go back in the reply.
    fn hvc(
        &mut self,
        i: usize,
        mut regs: [u64; 8],
        fault_ip: u64,
        x7: u64,
    ) -> Result<Resume, VmmError> {
        self.vcpus[i].stats.hvc += 1;
        if x7 != hc::HVC_X7 {
            regs[0] = hc::NOT_SUPPORTED;
        } else {
            match self.call(i, regs[0], &mut regs)? {
                // No stop on the fast path for CPU_SUSPEND: a spurious wake-up.
                Call::Return | Call::Suspend => {}
                Call::CpuOff => return Ok(Resume::CpuOff),
                Call::Off => return Ok(Resume::Off),
                Call::Reset => return Ok(Resume::Reset),
            }
        }
        for (i, r) in regs.iter().enumerate() {
            microkit_rt::set_mr(i, *r);
        }
        microkit_rt::set_mr(8, fault_ip + 4);
        Ok(Resume::Reply(MessageInfo::new(0, 9)))
    }

    /// SMC: PSCI and lazyfp calls. Only the registers the call uses cross the kernel
    /// ([`abi::call_registers`]): x0 with the PC; a call with arguments or results in x1–x3
    /// reads again up to the last of them.
    fn smc(&mut self, i: usize) -> Result<Resume, VmmError> {
        self.vcpus[i].stats.smc += 1;
        let tcb = self.vcpus[i].tcb;
        let mut slot = MaybeUninit::uninit();
        let mut ctx = regs::read_in(tcb, &mut slot, regs::words_for(0))?;
        let fid = ctx.gpr(0);
        let used = abi::call_registers(fid);
        // x0–x3 are consecutive in seL4's context: `used` of them end here.
        let count = regs::words_for(0) + used - 1;
        if used > 1 {
            ctx = regs::read_in(tcb, &mut slot, count)?;
        }
        // Registers outside the frame read as 0 and writes there go nowhere: the call does
        // not use them.
        let suspend = match self.call(i, fid, ctx)? {
            Call::Return => false,
            Call::Suspend => true,
            Call::CpuOff => return Ok(Resume::CpuOff),
            Call::Off => return Ok(Resume::Off),
            Call::Reset => return Ok(Resume::Reset),
        };
        regs::advance_and_write(tcb, ctx, count)?;
        if suspend {
            return self.idle(i);
        }
        Ok(RESUME)
    }

    /// The PSCI part of [`Vm::call`]: rare (boot, power), so kept out of the exit path.
    #[inline(never)]
    fn psci_call(&mut self, fid: u64, a: [u64; 3], r: &mut [u64; 4]) -> Result<Call, VmmError> {
        let mut power = [Power::Off; MAX_VCPUS];
        for (p, v) in power.iter_mut().zip(&self.vcpus) {
            *p = v.power;
        }
        let n = self.vcpus.len();
        let cpus = Cpus {
            mpidrs: &self.mpidrs,
            power: &power[..n],
            ram_size: self.ram.len() as u64,
        };
        Ok(match handle_psci(fid, a, &cpus) {
            PsciOutcome::Return(v) => {
                *r = [v, a[0], a[1], a[2]];
                Call::Return
            }
            PsciOutcome::CpuOn {
                target,
                entry,
                context,
            } => {
                self.vcpus[target].power_on(entry, context, self.table)?;
                *r = [0, a[0], a[1], a[2]];
                Call::Return
            }
            PsciOutcome::Suspend => {
                *r = [0, a[0], a[1], a[2]];
                Call::Suspend
            }
            PsciOutcome::CpuOff => Call::CpuOff,
            PsciOutcome::SystemOff => Call::Off,
            PsciOutcome::SystemReset => Call::Reset,
        })
    }

    /// A PSCI or lazyfp call with function id `fid` from vCPU `i`: arguments read from and
    /// results written to `x` in place (the SMC's context frame, the HVC's fault message), so
    /// no argument or result array is built on the exit path.
    #[inline(always)]
    fn call(&mut self, i: usize, fid: u64, x: &mut impl CallRegs) -> Result<Call, VmmError> {
        let v = &mut self.vcpus[i];
        // lazyfp's calls first: the hot ones, one range check away.
        match fid {
            hc::VERSION => x.results([hc::ABI_VERSION, FEATURES, 0, 0]),
            hc::NOP => x.results([0; 4]),
            hc::NEON_INTERFERE => {
                if let Some(ch) = v.neon {
                    v.stats.interferences += 1;
                    notify(ch);
                }
                x.results([0; 4]);
            }
            hc::COUNTERS => {
                x.results([0, v.fp.stats.fp_traps, v.fp.stats.savebacks, v.stats.exits])
            }
            hc::VERDICT => {
                self.report.verdict = Some((Verdict::from_code(x.arg(1)), x.arg(2), x.arg(3)));
                x.results([0; 4]);
            }
            hc::TORTURE_RESULT => {
                v.torture = Some([x.arg(1), x.arg(2), x.arg(3)]);
                x.results([0; 4]);
            }
            _ if is_psci(fid) => {
                let mut r = [0; 4];
                let call = self.psci_call(fid, [x.arg(1), x.arg(2), x.arg(3)], &mut r)?;
                x.results(r);
                return Ok(call);
            }
            // x1–x3 come back as they went.
            _ => x.set(0, hc::NOT_SUPPORTED),
        }
        Ok(Call::Return)
    }

    fn mmio(
        &mut self,
        i: usize,
        addr: u64,
        pc: u64,
        access: lazyfp::DataAbort,
    ) -> Result<Resume, VmmError> {
        self.vcpus[i].stats.mmio += 1;
        let tcb = self.vcpus[i].tcb;
        let Some(dev) = self.device_at(addr) else {
            return self.external_abort(i, pc, addr, false, access.write());
        };
        let mut slot = MaybeUninit::uninit();
        if access.write() {
            let ctx = regs::read_in(tcb, &mut slot, regs::words_for(access.srt()))?;
            let mut out = Injections::new();
            let mut fx = Effects::default();
            let value = ctx.gpr(access.srt());
            let result = self.device_write(i, dev, access.size(), value, &mut out, &mut fx);
            // Most accesses raise nothing: skip the calls (this is every MMIO exit's path).
            if !out.is_empty() {
                self.deliver(&out)?;
            }
            match dev.device {
                Device::Virtio => self.virtio_effects(fx)?,
                Device::Uart => self.update_uart_irq()?,
                Device::Gicd | Device::Gicr => {}
            }
            if let Err(err) = result {
                self.ignored_access(i, dev, addr, pc, err);
            }
            // Only the PC changes: write just that word.
            regs::advance_and_write(tcb, ctx, 1)?;
        } else {
            // A load needs no register of the guest's to read the device: the device first,
            // then one register call for what precedes the target register.
            // `ok()`: the error is the register and size asked for, which the caller has; an
            // Option comes back in registers.
            let raw = match self.device_read(i, dev, access.size()).ok() {
                Some(raw) => raw,
                None => {
                    let err = MmioError::BadRegister {
                        offset: dev.offset,
                        size: access.size(),
                    };
                    self.ignored_access(i, dev, addr, pc, err);
                    0
                }
            };
            if dev.device == Device::Uart {
                // Reading the data register can lower the receive interrupt.
                self.update_uart_irq()?;
            }
            regs::complete_load(tcb, &mut slot, access, raw)?;
        }
        Ok(RESUME)
    }

    /// What a device does with a register it does not have (or not at that size): reads as
    /// zero, ignores writes, like QEMU's models of these devices. Said once per address.
    #[cold]
    fn ignored_access(&mut self, i: usize, dev: DeviceAt, addr: u64, pc: u64, err: MmioError) {
        if self.addr_logged.first(addr) {
            say!("lazyfp: guest access of {dev} at {addr:#x}: {err} (vcpu{i} pc {pc:#x}): read as zero / write ignored");
        }
    }

    /// The emulated device at guest-physical `addr`, with the offset into it.
    fn device_at(&self, addr: u64) -> Option<DeviceAt> {
        let inside = |base: u64, size: u64| addr.checked_sub(base).filter(|off| *off < size);
        if let Some(off) = self.uart.claims(addr) {
            Some(Device::Uart.at(off))
        } else if let Some(off) = VirtioConsole::claims(addr) {
            Some(Device::Virtio.at(off))
        } else if let Some(off) = inside(abi::GUEST_GICD_BASE, self.vgic.version().dist_size()) {
            Some(Device::Gicd.at(off))
        } else {
            inside(abi::GUEST_GICR_BASE, self.vgic.redist_size()).map(|off| Device::Gicr.at(off))
        }
    }

    /// One emulated write of `v` by vCPU `i`. Interrupts it makes ready go into `out`, what
    /// the virtio console asks for into `fx`.
    fn device_write(
        &mut self,
        i: usize,
        dev: DeviceAt,
        size: u8,
        v: u64,
        out: &mut Injections,
        fx: &mut Effects,
    ) -> Result<(), MmioError> {
        let off = dev.offset;
        match dev.device {
            Device::Uart if size > 4 => Err(MmioError::BadRegister { offset: off, size }),
            Device::Uart => {
                if let UartOutput::Byte(b) = self.uart.write_reg(off, v)? {
                    crate::console::guest_byte(b);
                }
                Ok(())
            }
            Device::Virtio => {
                let mut ram = guest_ram(self.ram);
                *fx = self
                    .virtio
                    .write(off, size, v, &mut ram, &mut crate::console::guest_byte)?;
                Ok(())
            }
            Device::Gicd => Ok(self.vgic.dist_write(i, off, size, v, out)?),
            Device::Gicr => Ok(self.vgic.redist_write(off, size, v, out)?),
        }
    }

    /// One emulated read by vCPU `i`: the register's raw value.
    fn device_read(&mut self, i: usize, dev: DeviceAt, size: u8) -> Result<u64, MmioError> {
        let off = dev.offset;
        match dev.device {
            Device::Uart if size > 4 => Err(MmioError::BadRegister { offset: off, size }),
            Device::Uart => self.uart.read(off, size),
            Device::Virtio => self.virtio.read(off, size),
            Device::Gicd => self.vgic.dist_read(i, off, size),
            Device::Gicr => self.vgic.redist_read(off, size),
        }
    }

    /// The ticker signalled: how long its notification waited.
    pub fn ticker_tick(&mut self) {
        let now = microkit_rt::counter().0;
        self.latency.record(self.ticker.latest(), now);
    }

    /// Raises the guest's UART interrupt when the emulated line goes high.
    fn update_uart_irq(&mut self) -> Result<(), VmmError> {
        let level = self.uart.irq_level();
        if level && !self.uart_line {
            let mut out = Injections::new();
            self.vgic.raise(0, UART_SPI, &mut out)?;
            self.deliver(&out)?;
        }
        self.uart_line = level;
        Ok(())
    }

    /// Raises the virtio console's interrupt, or reports why it stopped.
    fn virtio_effects(&mut self, fx: Effects) -> Result<(), VmmError> {
        if let Some(e) = fx.error {
            say!("lazyfp: {e}; the device waits for a reset");
        }
        if fx.interrupt {
            let mut out = Injections::new();
            self.vgic.raise(0, abi::VIRTIO_CONSOLE_IRQ, &mut out)?;
            self.deliver(&out)?;
        }
        Ok(())
    }

    /// Input from the board's UART for the guest's console (as much as its FIFO takes): to the
    /// virtio console once the guest drives it, else to the PL011.
    pub fn console_input(&mut self) {
        if self.virtio.active() {
            loop {
                let mut buf = [0u8; 64];
                let room = buf.len().min(self.virtio.input_room());
                let mut n = 0;
                while let Some(b) = (n < room).then(microkit_rt::read_byte).flatten() {
                    buf[n] = b;
                    n += 1;
                }
                if n == 0 {
                    return;
                }
                let mut ram = guest_ram(self.ram);
                let (fx, _) = self.virtio.push_input(&buf[..n], &mut ram);
                if let Err(e) = self.virtio_effects(fx) {
                    say!("lazyfp: console input: {e}");
                }
            }
        }
        while self.uart.rx_room() > 0 {
            match microkit_rt::read_byte() {
                Some(b) => {
                    self.uart.push_input(b);
                }
                None => break,
            }
        }
        if self.running {
            if let Err(e) = self.update_uart_irq() {
                say!("lazyfp: console input: {e}");
            }
        }
    }

    /// A guest access to `addr` that hardware answers with a synchronous external abort: where
    /// no device is, or (without an instruction syndrome, ISV = 0) one the VMM cannot emulate:
    /// load/store pairs, writeback forms, SIMD registers. `fetch`: an instruction fetch. Logged
    /// once per address.
    fn external_abort(
        &mut self,
        i: usize,
        pc: u64,
        addr: u64,
        fetch: bool,
        write: bool,
    ) -> Result<Resume, VmmError> {
        if self.addr_logged.first(addr) {
            let kind = match (fetch, write) {
                (true, _) => "fetch",
                (false, true) => "write",
                (false, false) => "read",
            };
            match self.device_at(addr) {
                Some(dev) => say!(
                    "lazyfp: guest {kind} of {dev} at {addr:#x} without syndrome (ISV=0; vcpu{i} pc {pc:#x}): external abort"
                ),
                None => say!(
                    "lazyfp: guest {kind} at {addr:#x} where no device is (vcpu{i} pc {pc:#x}): external abort"
                ),
            }
        }
        let exc = if fetch {
            GuestException::InstrAbort { addr }
        } else {
            GuestException::DataAbort { addr, write }
        };
        self.inject(i, exc)
    }

    /// A trapped system register the VMM does not emulate: what hardware gives for a register
    /// that does not exist, UNDEF at the guest's EL1 with ELR_EL1 at the instruction. Logged
    /// once per encoding.
    fn undef_sysreg(
        &mut self,
        i: usize,
        access: SysregAccess,
        pc: u64,
    ) -> Result<Resume, VmmError> {
        if self.sysreg_logged.first(access.key()) {
            say!(
                "lazyfp: guest {} (vcpu{i} pc {pc:#x}): not emulated, UNDEF",
                lazyfp::SysregError::Unhandled(access)
            );
        }
        self.inject(i, GuestException::Undef)
    }

    /// Makes vCPU `i` take `exc` at its EL1, as hardware raises it: ESR_EL1 (and FAR_EL1 for
    /// an abort), ELR_EL1 = the faulting instruction, SPSR_EL1 = the guest's PSTATE, then
    /// PC = VBAR_EL1 + the vector for that PSTATE, in EL1h with DAIF masked.
    ///
    /// seL4 reads and writes a VCPU's EL1 registers in its saved copy when the VCPU is not
    /// loaded on the VMM's core; for a vCPU loaded on another core that copy can be stale.
    fn inject(&mut self, i: usize, exc: GuestException) -> Result<Resume, VmmError> {
        let v = &self.vcpus[i];
        let mut slot = MaybeUninit::uninit();
        let f = regs::read_in(v.tcb, &mut slot, 3)?;
        let (pc, spsr) = (f.pc(), f.get(UserContext::SPSR));
        let entry = exception_entry(exc, spsr);
        let vbar = v.obj.read_reg(reg::VBAR)?;
        let vector = vbar.wrapping_add(entry.vector_offset);
        if matches!(exc, GuestException::InstrAbort { addr } if addr == vector || pc == vector) {
            return Err(VmmError::VectorFault { vbar, pc });
        }
        v.obj.write_reg(reg::ESR, entry.esr)?;
        if let Some(far) = entry.far {
            v.obj.write_reg(reg::FAR, far)?;
        }
        v.obj.write_reg(reg::ELR, pc)?;
        v.obj.write_reg(reg::SPSR, spsr)?;
        f.set_pc(vector);
        f.set(UserContext::SPSR, SPSR_EL1H_MASKED);
        v.tcb.write_frame(f, 3)?;
        Ok(RESUME)
    }

    /// The run's closing lines: the counters, then the guest's verdict.
    fn finish(&mut self) {
        self.counters();
        match self.report.verdict {
            Some((Verdict::Pass, _, _)) => say!("lazyfp: guest exited: PASS"),
            Some((Verdict::Fail(why), a, b)) => {
                say!(
                    "lazyfp: guest exited: FAIL {} (got {a:#x}, expected {b:#x})",
                    why.as_str()
                )
            }
            None => say!("lazyfp: guest exited: off (no verdict reported)"),
        }
    }

    /// The counters the harness judges: per vCPU, per core, then the totals.
    fn counters(&mut self) {
        let mut total = crate::vcpu::ExitStats::default();
        let mut fp = lazyfp::FpStats::default();
        let (mut iters, mut mismatches, mut bad, mut reported) = (0, 0, abi::NO_BAD_REGISTER, 0);
        for v in &self.vcpus {
            let (s, f) = (v.stats, v.fp.stats);
            say!(
                "lazyfp: vcpu{} (core {}): exits={} hvc={} smc={} mmio={} wfx={} halts={} vppi={} maint={} fp_traps={} savebacks={} interfere={}",
                v.child.index(), v.core, s.exits, s.hvc, s.smc, s.mmio, s.wfx, s.halts, s.vppi,
                s.maintenance, f.fp_traps, f.savebacks, s.interferences
            );
            say!(
                "lazyfp: vcpu{} wfx: wfe={} wfe_naps={} idle_lr={} idle_queued={} last_pending={} idle_due={} rechecks={} wakes_irq={} wakes_timer={}",
                v.child.index(), s.wfe, s.wfe_naps, s.idle_lr, s.idle_queued, s.last_pending, s.idle_due, s.rechecks,
                s.wakes_irq, s.wakes_timer
            );
            total.exits += s.exits;
            total.hvc += s.hvc;
            total.smc += s.smc;
            total.mmio += s.mmio;
            total.wfx += s.wfx;
            total.halts += s.halts;
            total.sysreg += s.sysreg;
            total.vppi += s.vppi;
            total.maintenance += s.maintenance;
            total.capfault += s.capfault;
            total.interferences += s.interferences;
            fp.loads += f.loads;
            fp.fp_traps += f.fp_traps;
            fp.binds += f.binds;
            fp.savebacks += f.savebacks;
            fp.stale_savebacks += f.stale_savebacks;
            fp.puts += f.puts;
            if let Some([it, mm, b]) = v.torture {
                reported += 1;
                iters += it;
                mismatches += mm;
                if bad == abi::NO_BAD_REGISTER {
                    bad = b;
                }
            }
        }
        let s = total;
        say!(
            "lazyfp: exits: total={} hvc={} smc={} mmio={} wfx={} halts={} sysreg={} vppi={} maint={} capfault={} interfere={}",
            s.exits, s.hvc, s.smc, s.mmio, s.wfx, s.halts, s.sysreg, s.vppi, s.maintenance, s.capfault, s.interferences
        );
        say!(
            "lazyfp: fp hooks: loads={} fp_traps={} binds={} savebacks={} stale_savebacks={} puts={}",
            fp.loads, fp.fp_traps, fp.binds, fp.savebacks, fp.stale_savebacks, fp.puts
        );
        let (mut grants_all, mut leaks_all) = (0, 0);
        let mut cores_seen = 0u64;
        for v in &self.vcpus {
            if cores_seen & 1 << v.core != 0 {
                continue;
            }
            cores_seen |= 1 << v.core;
            let core = self.table.core(v.core as u64).ok();
            let load = |a: Option<&core::sync::atomic::AtomicU64>| {
                a.map_or(0, |a| a.load(core::sync::atomic::Ordering::Relaxed))
            };
            let (grants, sb, open, leaks, errors) = (
                load(core.map(|c| &c.grants)),
                load(core.map(|c| &c.savebacks)),
                load(core.map(|c| &c.open_sections)),
                load(core.map(|c| &c.leaks)),
                load(core.map(|c| &c.errors)),
            );
            grants_all += grants;
            leaks_all += leaks;
            say!(
                "lazyfp: fp-service core{}: grants={grants} savebacks={sb} open={open} leaks={leaks} errors={errors}",
                v.core
            );
        }
        if self.virtio.notifies > 0 {
            say!(
                "lazyfp: virtio-console: bytes={} notifies={}",
                self.virtio.bytes_out,
                self.virtio.notifies
            );
        }
        if let Some(l) = self.latency.summary(microkit_rt::counter().1) {
            say!(
                "lazyfp: notify-latency n={} median_ns={} p90_ns={} max_ns={} merged={}",
                l.count,
                l.median_ns,
                l.p90_ns,
                l.max_ns,
                self.latency.merged
            );
        }
        if reported > 0 {
            let pass = mismatches == 0 && leaks_all == 0;
            let verdict = if pass { "PASS" } else { "FAIL" };
            print!(
                "lazyfp: fp-torture {verdict} exits={} fp_traps={} savebacks={} neon_grants={grants_all} mismatches={mismatches} leaks={leaks_all} iterations={iters} vcpus={reported}",
                s.exits, fp.fp_traps, fp.savebacks
            );
            if bad != abi::NO_BAD_REGISTER {
                print!(" first_bad_register={}", RegName(bad));
            }
            say!();
        }
        let dropped = self.addr_logged.dropped() + self.sysreg_logged.dropped();
        if dropped > 0 {
            say!("lazyfp: {dropped} guest mistakes beyond the first ones were not logged");
        }
    }
}

/// The devices the VMM emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Device {
    Uart,
    Virtio,
    Gicd,
    Gicr,
}

impl Device {
    const fn at(self, offset: u64) -> DeviceAt {
        DeviceAt {
            device: self,
            offset,
        }
    }
}

/// An emulated device and an offset into its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DeviceAt {
    device: Device,
    offset: u64,
}

impl fmt::Display for DeviceAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.device {
            Device::Uart => "the PL011",
            Device::Virtio => "the virtio console",
            Device::Gicd => "the distributor",
            Device::Gicr => "a redistributor",
        };
        write!(f, "{name} (offset {:#x})", self.offset)
    }
}

/// The channel of the VMM's wake-up timer (`<board wake wake_irq>`): the EL1 physical timer's
/// PPI where the kernel exports that timer, else a board timer (the i.MX GPT). Without one WFI
/// is stepped over.
pub const WAKE_IRQ: Option<u8> = match lazyfp::sdf::board::WAKE {
    WakeTimer::None => None,
    WakeTimer::Ptimer | WakeTimer::ImxGpt => irq_channel(lazyfp::sdf::board::WAKE_IRQ),
};
/// The board timer's map, where it is one.
pub const WAKE_MAP: Option<lazyfp::sdf::Map> =
    lazyfp::sdf::find_map(sdf_vmm::map::ALL, "wake_timer");
const _: () = assert!(
    !matches!(lazyfp::sdf::board::WAKE, WakeTimer::ImxGpt) || WAKE_MAP.is_some(),
    "a board with wake=\"imx-gpt\" maps its GPT as memory region wake_timer into the VMM"
);
/// WFI blocks (KVM's behaviour) unless the build asks for the old step-over (LAZYFP_WFI_SPIN=1:
/// the exit-cost benchmarks time a WFI round trip with nothing pending), or no wake-up timer.
const WAKE_TIMER: bool = WAKE_IRQ.is_some() && option_env!("LAZYFP_WFI_SPIN").is_none();

/// What `hc::VERSION` tells the guest about this VMM.
const FEATURES: u64 = if WAKE_TIMER {
    hc::FEATURE_WFI_BLOCKS
} else {
    0
} | if matches!(lazyfp::sdf::board::WAKE, WakeTimer::ImxGpt) {
    hc::FEATURE_PTIMER
} else {
    0
};

/// How often a halted vCPU on another core whose deadline has passed is looked at again (per
/// second), should the VPPI event of its timer not come.
const REMOTE_RECHECK_HZ: u64 = 2000;
/// WFEs in a row before a spinning vCPU naps, and the nap's length (1/WFE_NAP_HZ s).
const WFE_SPIN_LIMIT: u32 = 8;
const WFE_NAP_HZ: u64 = 20_000;

/// The VMM's channel for interrupt `irq`, if system.xml gives it that interrupt.
/// Guest RAM as the virtio device addresses it (guest-physical).
fn guest_ram(bytes: &mut [u8]) -> RamSlice<'_> {
    RamSlice {
        base: abi::GUEST_RAM_BASE,
        bytes,
    }
}

pub const fn irq_channel(irq: u64) -> Option<u8> {
    let all = sdf_vmm::irq::ALL;
    let mut i = 0;
    while i < all.len() {
        if all[i].0 == irq {
            return Some(all[i].1);
        }
        i += 1;
    }
    None
}

// Vm::smc counts on x0–x3 being consecutive in seL4's context.
const _: () = assert!(regs::words_for(3) == regs::words_for(0) + 3);

/// x0–x3 of an SMC or HVC call, where the VMM has them.
trait CallRegs {
    /// x`n` as the guest passed it (0 outside what was read: the call does not use it).
    fn arg(&self, n: u8) -> u64;
    fn set(&mut self, n: u8, value: u64);
    /// x0–x3 after the call.
    #[inline(always)]
    fn results(&mut self, r: [u64; 4]) {
        for (n, v) in r.into_iter().enumerate() {
            self.set(n as u8, v);
        }
    }
}

/// An SMC's registers: the vCPU's context as read (x0 and what [`abi::call_registers`] says).
impl CallRegs for microkit_rt::Frame {
    #[inline(always)]
    fn arg(&self, n: u8) -> u64 {
        self.gpr(n)
    }
    #[inline(always)]
    fn set(&mut self, n: u8, value: u64) {
        self.set_gpr(n, value);
    }
}

/// An HVC's registers: x0–x7 of its UnknownSyscall fault message, the reply's too.
impl CallRegs for [u64; 8] {
    #[inline(always)]
    fn arg(&self, n: u8) -> u64 {
        self[n as usize]
    }
    #[inline(always)]
    fn set(&mut self, n: u8, value: u64) {
        self[n as usize] = value;
    }
}

/// What a call does after its results are in x0–x3.
enum Call {
    Return,
    /// Return, then idle as after a WFI (CPU_SUSPEND).
    Suspend,
    CpuOff,
    Off,
    Reset,
}

/// Q0–Q31, FPSR, FPCR as the torture numbers them.
struct RegName(u64);

impl fmt::Display for RegName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        reg_name(self.0, f)
    }
}

/// Ends the whole system: PSCI SYSTEM_OFF through seL4's SMC call (QEMU virt without firmware
/// implements PSCI itself and exits).
fn power_off() {
    let args = [abi::psci::SYSTEM_OFF, 0, 0, 0, 0, 0, 0, 0];
    if let Err(e) = microkit_rt::arm_smc_call(&args) {
        say!("lazyfp: power off failed: {e}");
    }
}
