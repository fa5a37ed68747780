//! The lazyfp VMM: one VM, its exit loop with KVM's FP hooks, and the save-back service for
//! fp-service. Reads as a table of contents; the work is in `vm.rs` and the `lazyfp` crate.
#![no_std]
#![no_main]

#[macro_use]
mod console;
mod regs;
mod untrusted;
mod vcpu;
mod vm;

use lazyfp::linering::LineRing;
use lazyfp::sdf::{vm as sdf_vm, vmm as sdf_vmm, NUM_CORES};
use lazyfp::FpTable;
use lazyfp::{SavebackError, SavebackOp};
use microkit_rt::{memory, Channel, ChannelSet, Child, MessageInfo};
use vm::WAKE_IRQ;

microkit_rt::patched_u64!(guest_image_size);

const FP_SERVICE: Channel = Channel::new(sdf_vmm::channel::FP_SERVICE);
/// The board UART's interrupt, whichever it is on this board.
/// A board file without that `<irq>` stops the build here.
const UART_IRQ: Channel = match vm::irq_channel(lazyfp::sdf::board::UART_IRQ) {
    Some(ch) => Channel::new(ch),
    None => panic!("boards/<board>.xml gives the VMM no <irq> for its uart_irq"),
};
const TICKER: Channel = Channel::new(sdf_vmm::channel::TICKER);
const HOSTILE_CLIENT: Channel = Channel::new(sdf_vmm::channel::HOSTILE_CLIENT);

struct Vmm {
    vm: vm::Vm,
    untrusted: untrusted::Untrusted,
}

fn init() -> Vmm {
    // The board's UART (boards/<board>.xml says which kind).
    let kind = match lazyfp::sdf::board::UART {
        lazyfp::sdf::UartKind::Pl011 => microkit_rt::UartKind::Pl011,
        lazyfp::sdf::UartKind::Imx => microkit_rt::UartKind::Imx,
    };
    // SAFETY: system.xml maps the board's UART at this address as device memory (build.rs
    // checked the map exists), for the PD's lifetime.
    unsafe { microkit_rt::set_console_uart_of(sdf_vmm::map::UART.vaddr as usize, kind) };
    // SAFETY: the maps below come from the validated system.xml; guest RAM and the image are
    // mapped only here in this PD, and the FP table is a region of atomics shared with fp-service.
    let (ram, image, table, dict) = unsafe {
        (
            memory::region_bytes_mut(sdf_vmm::map::GUEST_RAM.vaddr, sdf_vmm::map::GUEST_RAM.size),
            memory::region_bytes(sdf_vmm::map::GUEST_IMAGE.vaddr, guest_image_size()),
            memory::shared::<FpTable>(sdf_vmm::map::FP_TABLE.vaddr),
            memory::region_bytes_mut(
                sdf_vmm::map::UNPACK_DICT.vaddr,
                sdf_vmm::map::UNPACK_DICT.size,
            ),
        )
    };
    // SAFETY: the ticker page is mapped read-only here by system.xml; it holds only atomics.
    let ticker =
        unsafe { memory::shared::<lazyfp::ticker::TickerPage>(sdf_vmm::map::TICKER_PAGE.vaddr) };
    // SAFETY: the hostile client's console page is mapped read-write here by system.xml; it
    // holds only atomics (whatever the client writes in it is read as untrusted).
    let hostile_log = unsafe { memory::shared::<LineRing>(sdf_vmm::map::HOSTILE_LOG.vaddr) };
    if let Some(map) = vm::WAKE_MAP {
        // SAFETY: the board file maps its GPT here, uncached, into this PD alone.
        unsafe { microkit_rt::use_imx_gpt(map.vaddr as usize) };
    }
    microkit_rt::enable_rx_interrupt();
    say!(
        "lazyfp: vmm up ({} policy, {} core(s), {} vCPU(s)), guest image {} bytes",
        if lazyfp::sdf::FP_POLICY == lazyfp::FpPolicy::Lazy {
            "lazy"
        } else {
            "eager"
        },
        NUM_CORES,
        sdf_vm::VCPUS.len(),
        image.len()
    );
    Vmm {
        vm: vm::Vm::start(ram, image, dict, table, ticker),
        untrusted: untrusted::Untrusted::new(hostile_log),
    }
}

impl microkit_rt::Handler for Vmm {
    type Error = vm::VmmError;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        if let Some(ch) = WAKE_IRQ.map(Channel::new) {
            if channels.contains(ch) {
                self.vm.wake_timer();
                if let Err(e) = microkit_rt::irq_ack(ch) {
                    say!("lazyfp: wake timer irq ack: {e}");
                }
            }
        }
        if channels.contains(TICKER) {
            self.vm.ticker_tick();
        }
        if channels.contains(HOSTILE_CLIENT) {
            self.untrusted.print_lines();
        }
        if channels.contains(UART_IRQ) {
            self.vm.console_input();
            if let Err(e) = microkit_rt::irq_ack(UART_IRQ) {
                say!("lazyfp: uart irq ack: {e}");
            }
        }
        Ok(())
    }

    /// fp-service's save-back requests (the `kernel_neon_begin` side of KVM's design); any other
    /// caller is refused unread.
    fn protected(&mut self, ch: Channel, info: MessageInfo) -> Result<MessageInfo, Self::Error> {
        let op = SavebackOp::decode_from(
            ch.index().into(),
            FP_SERVICE.index().into(),
            info.label(),
            info.length(),
            microkit_rt::get_mr,
        );
        if let Err(e @ SavebackError::NotFpService(_)) = op {
            self.untrusted.refused(ch.index(), e);
        }
        Ok(match op.and_then(|op| self.vm.save_back(op)) {
            Ok(saved) => {
                microkit_rt::set_mr(0, saved as u64);
                MessageInfo::new(0, 1)
            }
            Err(e) => MessageInfo::new(e.code(), 0),
        })
    }

    fn fault(
        &mut self,
        child: Child,
        info: MessageInfo,
    ) -> Result<Option<MessageInfo>, Self::Error> {
        Ok(self.vm.handle_fault(child, info))
    }
}

microkit_rt::protection_domain!(init);
