//! The benchmark floor: a VM fault handler that does only what any correct handler must do for
//! each exit (the lowest cost a user-level VMM on seL4 can reach), built with the same runtime.
//! No decode tables, no FP hooks, no counters. It replaces the VMM in the `floor` system
//! description derived from system.xml, with the same layout.
//!
//! - HVC (UnknownSyscall): reply with x0–x7 as they came and PC + 4, no register call (the bare
//!   fault IPC: the reply-only variant).
//! - SMC: read pc…x0, write PC + 4 (x0 only to recognise PSCI SYSTEM_OFF).
//! - WFI: read PC, write PC + 4.
//! - MMIO read: read the context up to the target register, write it with the result and PC + 4.
//! - MMIO write: read up to the source register (forwarding UART data), write PC + 4.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;

use lazyfp::abi;
use lazyfp::sdf::{vm as sdf_vm, vmm as sdf_vmm};
use microkit_rt::{get_mr, memory, set_mr, Child, Frame, MessageInfo, Tcb, UserContext};

microkit_rt::patched_u64!(guest_image_size);

const RESUME: MessageInfo = MessageInfo::new(0, 0);

struct Floor {
    tcb: Tcb,
}

fn init() -> Floor {
    let uart = sdf_vmm::map::UART.vaddr as usize;
    // SAFETY: system.xml maps the board's PL011 here as device memory for the PD's lifetime.
    unsafe { microkit_rt::set_console_uart(uart) };
    // SAFETY: the maps come from the validated system.xml; guest RAM and the image are mapped
    // only here in this PD.
    let (ram, image) = unsafe {
        (
            memory::region_bytes_mut(sdf_vmm::map::GUEST_RAM.vaddr, sdf_vmm::map::GUEST_RAM.size),
            memory::region_bytes(sdf_vmm::map::GUEST_IMAGE.vaddr, guest_image_size()),
        )
    };
    let tcb = Child::new(sdf_vm::VCPUS[0].id).vm_tcb();
    // The benchmark guest is stored raw: no XZ dictionary.
    match lazyfp::bundle::load_bundle(image, ram, abi::GUEST_RAM_BASE, &mut []) {
        Ok(boot) => {
            let mut ctx = UserContext::default();
            ctx.0[UserContext::PC] = boot.entry;
            ctx.0[UserContext::SPSR] = 0x3c5;
            ctx.set_gpr(0, boot.x0);
            if tcb.write_registers(true, &ctx, 4).is_err() {
                microkit_rt::println!("floor: cannot start the guest");
            }
        }
        Err(e) => microkit_rt::println!("floor: {e}"),
    }
    Floor { tcb }
}

/// Words of the user context up to and including xN.
fn words(n: u64) -> usize {
    if n >= 31 {
        1
    } else {
        UserContext::gpr_index(n as u8) + 1
    }
}

impl Floor {
    /// Reads `count` words into `slot`, sets `set` (register, value) if any and PC + 4, and
    /// writes back what changed. The frame stays in the caller's slot (no copy).
    fn step<'a>(
        &self,
        slot: &'a mut MaybeUninit<Frame>,
        count: usize,
        set: Option<(u64, u64)>,
    ) -> Option<&'a mut Frame> {
        let f = self.tcb.read_in(slot, count).ok()?;
        if let Some((reg, value)) = set {
            f.set_gpr(reg as u8, value);
        }
        f.set_pc(f.pc() + 4);
        let _ = self
            .tcb
            .write_frame(f, if set.is_some() { count } else { 1 });
        Some(f)
    }
}

impl microkit_rt::Handler for Floor {
    type Error = core::convert::Infallible;

    fn fault(
        &mut self,
        _child: Child,
        info: MessageInfo,
    ) -> Result<Option<MessageInfo>, Self::Error> {
        match info.label() {
            // UnknownSyscall: x0–x7 back as they came (a NOP), FaultIP + 4.
            2 => {
                set_mr(8, get_mr(8) + 4);
                Ok(Some(MessageInfo::new(0, 9)))
            }
            // VCPUFault: SMC or WFI.
            8 => {
                let ec = get_mr(0) >> 26;
                if ec == 0x17 {
                    let mut slot = MaybeUninit::uninit();
                    if let Ok(f) = self.tcb.read_in(&mut slot, 4) {
                        if f.gpr(0) == abi::psci::SYSTEM_OFF {
                            let _ = microkit_rt::arm_smc_call(&[
                                abi::psci::SYSTEM_OFF,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                            ]);
                            return Ok(None);
                        }
                        f.set_pc(f.pc() + 4);
                        let _ = self.tcb.write_frame(f, 1);
                    }
                } else {
                    self.step(&mut MaybeUninit::uninit(), 1, None);
                }
                Ok(Some(RESUME))
            }
            // VMFault: MMIO with a syndrome.
            6 => {
                let (addr, esr) = (get_mr(1), get_mr(3));
                let srt = (esr >> 16) & 0x1f;
                let mut slot = MaybeUninit::uninit();
                if esr & (1 << 6) != 0 {
                    let f = self.step(&mut slot, words(srt), None);
                    if let (true, Some(f)) = (addr == abi::GUEST_UART_BASE, f) {
                        // The guest's console output goes to the board's UART.
                        microkit_rt::write_bytes(&[f.gpr(srt as u8) as u8]);
                    }
                } else {
                    self.step(&mut slot, words(srt), Some((srt, 0)));
                }
                Ok(Some(RESUME))
            }
            _ => Ok(None),
        }
    }
}

microkit_rt::protection_domain!(init);
