//! The VM and its run loop: exit → decode → handler → `ctxsync_fp` → resume.
//!
//! KVM's hook points, in one place:
//! - `run_map_fp` + `load_fp`: [`Vm::start`] / [`Vm::reset`], before the vCPU first runs;
//! - the guest FP trap (`__hyp_switch_fpsimd`): the `Exit::FpTrap` arm of [`Vm::dispatch`];
//! - `ctxsync_fp`: end of [`Vm::handle_fault`], after every exit and before the VMM can
//!   receive any IPC (it only receives in the ReplyRecv that follows);
//! - `put_fp`: [`Vm::stop`], and save-back on fp-service's request in [`Vm::save_back`].
use core::fmt;

use lazyfp::abi::{self, hc, Verdict};
use lazyfp::bundle::load_bundle;
use lazyfp::psci::{handle_psci, is_psci, PsciOutcome};
use lazyfp::sdf::{vmm as sdf_vmm, FP_POLICY, NUM_CORES};
use lazyfp::{
    decode_exit, Exit, ExitError, FpAction, FpError, FpPolicy, FpTable, GicDist, ListRegs,
    MmioDevice, MmioError, Pl011, SavebackError, SavebackOp, SysregError, TimerRegs, UartOutput,
    VcpuFp,
};
use microkit_rt::{
    notify, print, Channel, Child, Frame, MessageInfo, Tcb, UserContext, Vcpu,
    TCB_FLAG_FPU_DISABLED,
};

use crate::regs;

const NEON_WORKER: Channel = Channel::new(sdf_vmm::channel::NEON_WORKER);
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

/// The emulated PL011's interrupt (SPI 1), as on QEMU virt and in the generated DTB.
const UART_SPI: u16 = 33;
/// seL4_VCPUReg numbers (aarch64).
const VCPU_REG_ESR: u64 = 11;
const VCPU_REG_FAR: u64 = 12;
const VCPU_REG_VBAR: u64 = 14;
const VCPU_REG_ELR: u64 = 18;
const VCPU_REG_SPSR: u64 = 19;
/// EL1h with D, A, I, F masked: how a guest kernel expects to be entered.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// Why the VMM stopped serving an exit.
#[derive(Clone, Copy, Debug)]
pub enum VmmError {
    Exit(ExitError),
    Kernel(microkit_rt::Error),
    Fp(FpError),
    Mmio { addr: u64, pc: u64, err: MmioError },
    Sysreg { pc: u64, err: SysregError },
    Image(lazyfp::bundle::BundleError),
    UnknownChild(u8),
}

impl fmt::Display for VmmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit(e) => write!(f, "{e}"),
            Self::Kernel(e) => write!(f, "seL4 call failed: {e}"),
            Self::Fp(e) => write!(f, "{e}"),
            Self::Mmio { addr, pc, err } => {
                write!(f, "mmio at {addr:#x}: {err} (guest pc {pc:#x})")
            }
            Self::Sysreg { pc, err } => {
                write!(f, "trapped system register {err} (guest pc {pc:#x})")
            }
            Self::Image(e) => write!(f, "{e}"),
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

/// How an exit ends.
enum Resume {
    /// Reply to the fault with this message (label 0 resumes the vCPU).
    Reply(MessageInfo),
    /// The guest asked to power off or reset.
    Off,
    Reset,
}

const RESUME: Resume = Resume::Reply(MessageInfo::new(0, 0));

/// Exit counters, by kind.
#[derive(Clone, Copy, Debug, Default)]
struct ExitStats {
    exits: u64,
    hvc: u64,
    smc: u64,
    mmio: u64,
    wfx: u64,
    sysreg: u64,
    vppi: u64,
    maintenance: u64,
    capfault: u64,
    interferences: u64,
}

/// What the guest reported about itself.
#[derive(Clone, Copy, Debug, Default)]
struct GuestReport {
    verdict: Option<(Verdict, u64, u64)>,
    torture: Option<[u64; 3]>,
}

pub struct Vm {
    vcpu: Child,
    tcb: Tcb,
    vcpu_obj: Vcpu,
    fp: VcpuFp,
    table: &'static FpTable,
    ram: &'static mut [u8],
    image: &'static [u8],
    uart: Pl011,
    /// The emulated UART's interrupt line as last seen (it is level-triggered).
    uart_line: bool,
    /// Unclaimed guest-physical addresses already reported (each is logged once).
    unclaimed_logged: heapless::Vec<u64, 8>,
    gicd: GicDist,
    lrs: ListRegs,
    ptimer: TimerRegs,
    stats: ExitStats,
    report: GuestReport,
    running: bool,
    ticker: &'static lazyfp::ticker::TickerPage,
    latency: lazyfp::ticker::LatencyStats,
}

fn apply(tcb: Tcb, action: FpAction) -> Result<(), VmmError> {
    match action {
        FpAction::None => {}
        FpAction::DisableGuestFp => {
            tcb.set_flags(0, TCB_FLAG_FPU_DISABLED)?;
        }
        FpAction::EnableGuestFp => {
            tcb.set_flags(TCB_FLAG_FPU_DISABLED, 0)?;
        }
    }
    Ok(())
}

impl Vm {
    /// Sets the VM up and starts its vCPU. A VM that cannot start is reported and left stopped;
    /// the VMM still serves fp-service.
    pub fn start(
        vcpu: Child,
        core: u64,
        ram: &'static mut [u8],
        image: &'static [u8],
        table: &'static FpTable,
        ticker: &'static lazyfp::ticker::TickerPage,
    ) -> Self {
        let mut vm = Self {
            vcpu,
            tcb: vcpu.vm_tcb(),
            vcpu_obj: vcpu.vcpu(),
            fp: VcpuFp::new(vcpu.index(), core, FP_POLICY),
            table,
            ram,
            image,
            uart: Pl011::default(),
            uart_line: false,
            unclaimed_logged: heapless::Vec::new(),
            gicd: GicDist::default(),
            lrs: ListRegs::default(),
            ptimer: TimerRegs::default(),
            stats: ExitStats::default(),
            report: GuestReport::default(),
            running: false,
            ticker,
            latency: lazyfp::ticker::LatencyStats::default(),
        };
        // run_map_fp: attach to the per-core table before the vCPU first runs.
        let started = vm
            .fp
            .run_map_fp(table, NUM_CORES as u64)
            .map_err(VmmError::from)
            .and_then(|()| vm.reset());
        if let Err(e) = started {
            say!("lazyfp: cannot start the guest: {e}");
            say!("lazyfp: guest exited: FAIL setup");
        }
        vm
    }

    /// (Re)loads the image, sets the boot registers and runs the vCPU from its entry.
    fn reset(&mut self) -> Result<(), VmmError> {
        let boot =
            load_bundle(self.image, self.ram, abi::GUEST_RAM_BASE).map_err(VmmError::Image)?;
        let entry = boot.entry;
        self.uart = Pl011::default();
        self.uart_line = false;
        self.gicd = GicDist::default();
        self.lrs = ListRegs::default();
        self.ptimer = TimerRegs::default();
        let mut ctx = UserContext::default();
        ctx.0[UserContext::PC] = entry;
        ctx.0[UserContext::SPSR] = SPSR_EL1H_MASKED;
        // x0: the device tree's address for Linux (booting.rst), 0 for guests without one.
        ctx.set_gpr(0, boot.x0);
        self.tcb.write_registers(false, &ctx, 4)?;
        // load_fp: the registers hold someone else's state; trap the guest's first FP use.
        let action = self.fp.load_fp(self.fp.core(), self.table)?;
        apply(self.tcb, action)?;
        self.tcb.resume()?;
        self.running = true;
        say!("lazyfp: guest started at {entry:#x}");
        Ok(())
    }

    /// Suspends the vCPU after saving its FP state back (`put_fp`).
    fn stop(&mut self) -> Result<(), VmmError> {
        self.running = false;
        let action = self.fp.put_fp(self.table)?;
        apply(self.tcb, action)?;
        self.tcb.suspend()?;
        Ok(())
    }

    /// fp-service asks for this core's registers.
    pub fn save_back(&mut self, op: SavebackOp) -> Result<bool, SavebackError> {
        let SavebackOp::Saveback { vcpu, core } = op;
        if vcpu != self.vcpu.index() as u64 {
            return Err(SavebackError::UnknownVcpu(vcpu));
        }
        let action = self.fp.save_back(core, self.table).map_err(|e| match e {
            FpError::WrongCore { asked, .. } => SavebackError::BadCore(asked),
            FpError::Table(_) | FpError::NotLoaded | FpError::NotMapped => {
                SavebackError::BadCore(core)
            }
        })?;
        apply(self.tcb, action).map_err(|e| match e {
            VmmError::Kernel(k) => SavebackError::Kernel(k.code()),
            _ => SavebackError::Kernel(u64::MAX),
        })?;
        Ok(action == FpAction::DisableGuestFp)
    }

    /// One vCPU exit, from fault message to reply.
    pub fn handle_fault(
        &mut self,
        child: Child,
        info: MessageInfo,
    ) -> Result<Option<MessageInfo>, VmmError> {
        if FP_POLICY == FpPolicy::Eager {
            // Pre-patch KVM: the host's FP state came back on every exit.
            microkit_rt::touch_fp();
        }
        if child != self.vcpu {
            return Err(VmmError::UnknownChild(child.index()));
        }
        self.stats.exits += 1;
        let outcome = decode_exit(info.label(), info.length(), microkit_rt::get_mr)
            .map_err(VmmError::Exit)
            .and_then(|exit| self.dispatch(exit))
            // ctxsync_fp: publish the FP owner before the VMM can receive any IPC.
            .and_then(|resume| Ok(self.fp.ctxsync_fp(self.table).map(|()| resume)?));
        match outcome {
            Ok(Resume::Reply(reply)) => Ok(Some(reply)),
            Ok(Resume::Off) => {
                self.stop()?;
                self.finish();
                power_off();
                Ok(None)
            }
            Ok(Resume::Reset) => {
                self.stop()?;
                say!("lazyfp: guest reset");
                self.reset()?;
                Ok(None)
            }
            Err(e) => {
                self.diagnose(e);
                if self.stop().is_err() {
                    say!("lazyfp: could not suspend the vCPU");
                }
                say!("lazyfp: guest exited: FAIL vmm stopped the guest: {e}");
                Ok(None)
            }
        }
    }

    fn diagnose(&self, e: VmmError) {
        let pc = regs::read(self.tcb, 1).map(|f| f.pc()).unwrap_or(u64::MAX);
        say!(
            "lazyfp: vmm: {e}; guest pc {pc:#x}; exits so far {}",
            self.stats.exits
        );
    }

    /// Second layer of exit dispatch: exception class → handler.
    fn dispatch(&mut self, exit: Exit) -> Result<Resume, VmmError> {
        match exit {
            Exit::Hvc { regs, fault_ip, x7 } => self.hvc(regs, fault_ip, x7),
            Exit::Smc => self.smc(),
            Exit::FpTrap => {
                // __hyp_switch_fpsimd: lift the trap; seL4 loads the guest's state and re-runs
                // the instruction.
                let action = self.fp.fp_trap()?;
                apply(self.tcb, action)?;
                Ok(RESUME)
            }
            Exit::Mmio { addr, pc, access } => self.mmio(addr, pc, access),
            Exit::Wfx { .. } => {
                // A wake-up without an interrupt is architecturally allowed: just step over it.
                self.stats.wfx += 1;
                let mut ctx = regs::read(self.tcb, 1)?;
                regs::advance_and_write(self.tcb, &mut ctx, 1)?;
                Ok(RESUME)
            }
            Exit::Sysreg(access) => {
                self.stats.sysreg += 1;
                let count = regs::words_for(access.rt);
                let mut ctx = regs::read(self.tcb, count)?;
                let pc = ctx.pc();
                let value = self
                    .ptimer
                    .access(access, ctx.gpr(access.rt))
                    .map_err(|err| VmmError::Sysreg { pc, err })?;
                if let Some(v) = value {
                    ctx.set_gpr(access.rt, v);
                }
                regs::advance_and_write(self.tcb, &mut ctx, count)?;
                Ok(RESUME)
            }
            Exit::Vppi { irq } => {
                self.stats.vppi += 1;
                if NEON_EVERY_TICKS != 0 && self.stats.vppi.is_multiple_of(NEON_EVERY_TICKS) {
                    // The NEON worker's rate: it works on this core every N guest timer ticks,
                    // so guests that make no lazyfp hypercalls (Linux) still meet NEON pressure.
                    self.stats.interferences += 1;
                    notify(NEON_WORKER);
                }
                if let Ok(Some(irq)) = self.gicd.raise(irq) {
                    self.inject(irq)?;
                }
                Ok(RESUME)
            }
            Exit::VgicMaintenance { lr } => {
                self.stats.maintenance += 1;
                if let Some(lr) = lr {
                    let (done, next) = self.lrs.complete(lr);
                    if let Some(irq) = done {
                        self.gicd.complete(irq);
                        if (16..32).contains(&irq) {
                            // The guest handled the virtual PPI: let seL4 deliver it again.
                            self.vcpu_obj.ack_vppi(irq as u64)?;
                        }
                        if irq == UART_SPI && self.uart.irq_level() {
                            // Level-triggered: still asserted after the guest's EOI.
                            self.uart_line = false;
                            self.update_uart_irq()?;
                        }
                    }
                    if let Some((irq, lr)) = next {
                        self.vcpu_obj
                            .inject_irq(irq, self.gicd.priority(irq) >> 3, 0, lr)?;
                    }
                }
                Ok(RESUME)
            }
            Exit::CapFault { .. } => {
                // A guest HVC whose x7 selected a real seL4 syscall that failed: answer it like
                // an unknown hypercall and step over the HVC.
                self.stats.capfault += 1;
                let mut ctx = regs::read(self.tcb, 4)?;
                ctx.set_gpr(0, hc::NOT_SUPPORTED);
                regs::advance_and_write(self.tcb, &mut ctx, 4)?;
                Ok(RESUME)
            }
            Exit::AbortNoSyndrome { esr, addr, pc, .. } => {
                say!("lazyfp: vmm: abort at {addr:#x} without syndrome (guest pc {pc:#x})");
                Err(VmmError::Exit(ExitError::UnhandledEc(esr)))
            }
        }
    }

    fn inject(&mut self, irq: u16) -> Result<(), VmmError> {
        if let Ok(Some(lr)) = self.lrs.inject(irq) {
            self.vcpu_obj
                .inject_irq(irq, self.gicd.priority(irq) >> 3, 0, lr)?;
        }
        Ok(())
    }

    /// HVC fast path: registers come in the fault message and go back in the reply.
    fn hvc(&mut self, mut regs: [u64; 8], fault_ip: u64, x7: u64) -> Result<Resume, VmmError> {
        self.stats.hvc += 1;
        let result = if x7 == hc::HVC_X7 {
            match self.call(regs[0], [regs[1], regs[2], regs[3]]) {
                Call::Return(r) => r,
                Call::Off => return Ok(Resume::Off),
                Call::Reset => return Ok(Resume::Reset),
            }
        } else {
            [hc::NOT_SUPPORTED, regs[1], regs[2], regs[3]]
        };
        regs[..4].copy_from_slice(&result);
        for (i, r) in regs.iter().enumerate() {
            microkit_rt::set_mr(i, *r);
        }
        microkit_rt::set_mr(8, fault_ip + 4);
        Ok(Resume::Reply(MessageInfo::new(0, 9)))
    }

    /// SMC: PSCI and lazyfp calls; the arguments need one register read, the results one write.
    fn smc(&mut self) -> Result<Resume, VmmError> {
        self.stats.smc += 1;
        let count = regs::words_for(3);
        let mut ctx = regs::read(self.tcb, count)?;
        let result = match self.call(ctx.gpr(0), [ctx.gpr(1), ctx.gpr(2), ctx.gpr(3)]) {
            Call::Return(r) => r,
            Call::Off => return Ok(Resume::Off),
            Call::Reset => return Ok(Resume::Reset),
        };
        for (i, r) in result.iter().enumerate() {
            ctx.set_gpr(i as u8, *r);
        }
        regs::advance_and_write(self.tcb, &mut ctx, count)?;
        Ok(RESUME)
    }

    /// A PSCI or lazyfp call with function id `fid`: x0–x3 after it.
    fn call(&mut self, fid: u64, a: [u64; 3]) -> Call {
        if is_psci(fid) {
            let vcpus = [0u64];
            return match handle_psci(fid, a, &vcpus) {
                PsciOutcome::Return(v) => Call::Return([v, a[0], a[1], a[2]]),
                PsciOutcome::SystemOff | PsciOutcome::CpuOff => Call::Off,
                PsciOutcome::SystemReset => Call::Reset,
            };
        }
        let r = match fid {
            hc::VERSION => [hc::ABI_VERSION, 0, 0, 0],
            hc::NOP => [0, 0, 0, 0],
            hc::NEON_INTERFERE => {
                self.stats.interferences += 1;
                notify(NEON_WORKER);
                [0, 0, 0, 0]
            }
            hc::COUNTERS => [
                0,
                self.fp.stats.fp_traps,
                self.fp.stats.savebacks,
                self.stats.exits,
            ],
            hc::VERDICT => {
                self.report.verdict = Some((Verdict::from_code(a[0]), a[1], a[2]));
                [0, 0, 0, 0]
            }
            hc::TORTURE_RESULT => {
                self.report.torture = Some(a);
                [0, 0, 0, 0]
            }
            _ => [hc::NOT_SUPPORTED, a[0], a[1], a[2]],
        };
        Call::Return(r)
    }

    fn mmio(&mut self, addr: u64, pc: u64, access: lazyfp::DataAbort) -> Result<Resume, VmmError> {
        self.stats.mmio += 1;
        let count = regs::words_for(access.srt);
        let mut ctx = regs::read(self.tcb, count)?;
        let err = |err| VmmError::Mmio { addr, pc, err };
        if access.write {
            let value = ctx.gpr(access.srt);
            if let Some(off) = self.uart.claims(addr) {
                if access.size > 4 {
                    return Err(err(MmioError::BadRegister {
                        offset: off,
                        size: access.size,
                    }));
                }
                if let UartOutput::Byte(b) = self.uart.write_reg(off, value).map_err(err)? {
                    crate::console::guest_byte(b);
                }
                self.update_uart_irq()?;
            } else if let Some(off) = self.gicd.claims(addr) {
                self.gicd.write(off, access.size, value).map_err(err)?;
                if GicDist::may_unmask(off) {
                    // Enabling may make pending interrupts deliverable.
                    let mut ready = heapless::Vec::<u16, 8>::new();
                    for irq in self.gicd.deliverable().take(8) {
                        let _ = ready.push(irq);
                    }
                    for irq in ready {
                        self.inject(irq)?;
                    }
                }
            } else {
                return self.external_abort(addr, ctx, true);
            }
            // Only the PC changes: write just that word.
            regs::advance_and_write(self.tcb, &mut ctx, 1)?;
        } else {
            let raw = if let Some(off) = self.uart.claims(addr) {
                let v = self.uart.read(off, access.size).map_err(err)?;
                self.update_uart_irq()?;
                v
            } else if let Some(off) = self.gicd.claims(addr) {
                self.gicd.read(off, access.size).map_err(err)?
            } else {
                return self.external_abort(addr, ctx, false);
            };
            regs::complete_load(self.tcb, &mut ctx, access, raw)?;
        }
        Ok(RESUME)
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
            if let Ok(Some(irq)) = self.gicd.raise(UART_SPI as u64) {
                self.inject(irq)?;
            }
        }
        self.uart_line = level;
        Ok(())
    }

    /// Input from the board's UART for the guest's console (as much as its FIFO takes).
    pub fn console_input(&mut self) {
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

    /// A guest access where no device is: what hardware gives, a synchronous external abort
    /// taken at the guest's EL1 (ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1, then its vector). Logged
    /// once per address.
    fn external_abort(
        &mut self,
        addr: u64,
        mut ctx: Frame,
        write: bool,
    ) -> Result<Resume, VmmError> {
        if !self.unclaimed_logged.contains(&addr) {
            let pc = ctx.pc();
            say!(
                "lazyfp: guest {} at {addr:#x} where no device is (pc {pc:#x}): external abort",
                if write { "write" } else { "read" }
            );
            let _ = self.unclaimed_logged.push(addr);
        }
        let f = regs::read(self.tcb, 3)?;
        let (pc, spsr) = (f.pc(), f.get(UserContext::SPSR));
        let from_el1 = spsr & 0b1100 == 0b0100;
        // EC: data abort from the same EL (0x25) or a lower one (0x24); IL; DFSC 0x10:
        // synchronous external abort; WnR.
        let ec: u64 = if from_el1 { 0x25 } else { 0x24 };
        let esr = ec << 26 | 1 << 25 | (write as u64) << 6 | 0x10;
        let vbar = self.vcpu_obj.read_reg(VCPU_REG_VBAR)?;
        self.vcpu_obj.write_reg(VCPU_REG_ESR, esr)?;
        self.vcpu_obj.write_reg(VCPU_REG_FAR, addr)?;
        self.vcpu_obj.write_reg(VCPU_REG_ELR, pc)?;
        self.vcpu_obj.write_reg(VCPU_REG_SPSR, spsr)?;
        // Current EL with SP_ELx: +0x200; EL1t: +0x000; from EL0 (AArch64): +0x400.
        let offset = match spsr & 0b1111 {
            0b0101 => 0x200,
            0b0100 => 0x000,
            _ => 0x400,
        };
        ctx = f;
        ctx.set_pc(vbar + offset);
        ctx.set(UserContext::SPSR, SPSR_EL1H_MASKED);
        self.tcb.write_frame(&ctx, 3)?;
        Ok(RESUME)
    }

    /// The run's closing lines.
    fn finish(&mut self) {
        let s = self.stats;
        let f = self.fp.stats;
        say!(
            "lazyfp: exits: total={} hvc={} smc={} mmio={} wfx={} sysreg={} vppi={} maint={} capfault={} interfere={}",
            s.exits, s.hvc, s.smc, s.mmio, s.wfx, s.sysreg, s.vppi, s.maintenance, s.capfault, s.interferences
        );
        say!(
            "lazyfp: fp hooks: loads={} fp_traps={} binds={} savebacks={} stale_savebacks={} puts={}",
            f.loads, f.fp_traps, f.binds, f.savebacks, f.stale_savebacks, f.puts
        );
        let core = self.table.core(self.fp.core()).ok();
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
        say!(
            "lazyfp: fp-service core{}: grants={grants} savebacks={sb} open={open} leaks={leaks} errors={errors}",
            self.fp.core()
        );
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
        if let Some([iters, mismatches, bad]) = self.report.torture {
            let pass = mismatches == 0 && leaks == 0;
            let verdict = if pass { "PASS" } else { "FAIL" };
            print!(
                "lazyfp: fp-torture {verdict} exits={} fp_traps={} savebacks={} neon_grants={grants} mismatches={mismatches} leaks={leaks} iterations={iters}",
                s.exits, f.fp_traps, f.savebacks
            );
            if bad != abi::NO_BAD_REGISTER {
                print!(" first_bad_register={}", reg_name(bad));
            }
            say!();
        }
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
}

enum Call {
    Return([u64; 4]),
    Off,
    Reset,
}

/// Q0–Q31, FPSR, FPCR as the torture numbers them.
struct RegName(u64);

impl fmt::Display for RegName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            abi::REG_FPSR => write!(f, "fpsr"),
            abi::REG_FPCR => write!(f, "fpcr"),
            n => write!(f, "q{n}"),
        }
    }
}

fn reg_name(n: u64) -> RegName {
    RegName(n)
}

/// Ends the whole system: PSCI SYSTEM_OFF through seL4's SMC call (QEMU virt without firmware
/// implements PSCI itself and exits).
fn power_off() {
    let args = [abi::psci::SYSTEM_OFF, 0, 0, 0, 0, 0, 0, 0];
    if let Err(e) = microkit_rt::arm_smc_call(&args) {
        say!("lazyfp: power off failed: {e}");
    }
}
