//! lazyfp core: the pure logic of a Microkit VMM with KVM's lazy FP/SIMD handling.
//!
//! No seL4 here: the FP ownership state machine and its four hooks, the shared per-core table,
//! the fp-service protocol, exit decoding and the device models. Everything is host-testable;
//! the PDs wire it to seL4 through `microkit-rt`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

pub mod abi;
pub mod bundle;
mod esr;
mod exit;
mod fp;
mod fpservice;
pub mod hostile;
pub mod image;
mod inject;
pub mod linering;
mod mmio;
mod proto;
pub mod psci;
mod sysreg;
mod table;
pub mod ticker;
mod uart;
mod vgic;
pub mod virtio;
pub mod wake;

/// Constants generated from system.xml by build.rs.
pub mod sdf {
    /// A `<map>`: where a memory region appears in one address space.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Map {
        pub vaddr: u64,
        pub size: u64,
    }

    /// A `<vcpu>` of the VM.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Vcpu {
        pub id: u8,
        pub cpu: u8,
    }

    /// A NEON worker PD: its core and the channel ids fp_service and the VMM use for it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct NeonWorker {
        pub name: &'static str,
        pub cpu: u8,
        pub fp_service_channel: u8,
        pub vmm_channel: u8,
    }

    /// The kind of the board UART the VMM drives as its console.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum UartKind {
        Pl011,
        Imx,
    }

    /// What wakes vCPUs halted in WFI (`<board wake>`): the EL1 physical timer where the kernel
    /// exports it to user level, an i.MX General Purpose Timer, or nothing (WFI is stepped over).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum WakeTimer {
        None,
        Ptimer,
        ImxGpt,
    }

    /// The map of memory region `mr` in `all` (a PD's `map::ALL`), if it has one.
    pub const fn find_map(all: &[(&str, Map)], mr: &str) -> Option<Map> {
        let mut i = 0;
        while i < all.len() {
            let (name, map) = all[i];
            if name.len() == mr.len() {
                let (a, b) = (name.as_bytes(), mr.as_bytes());
                let mut j = 0;
                while j < a.len() && a[j] == b[j] {
                    j += 1;
                }
                if j == a.len() {
                    return Some(map);
                }
            }
            i += 1;
        }
        None
    }

    /// What the VMM does after stopping the VM for an error it cannot recover from
    /// (`<board on_vm_stop>`, or LAZYFP_ON_VM_STOP at build time).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum OnVmStop {
        /// PSCI SYSTEM_OFF: the run ends.
        PowerOff,
        /// The VMM keeps serving the rest of the system.
        Serve,
    }

    /// The NEON worker on `cpu`, if any.
    pub fn neon_worker_on(cpu: u8) -> Option<&'static NeonWorker> {
        NEON_WORKERS.iter().find(|w| w.cpu == cpu)
    }

    include!(concat!(env!("OUT_DIR"), "/sdf.rs"));
}

pub use esr::{DataAbort, Ec, Esr, SysregAccess};
pub use exit::{decode_exit, Exit, ExitError, FaultLabel};
pub use fp::{FpAction, FpError, FpOwner, FpPolicy, FpStats, VcpuFp};
pub use fpservice::{BeginStep, FpService, Reply, ServiceStats};
pub use image::{arm64_image, elf_layout, Arm64Image, ImageError, Segment};
pub use inject::{exception_entry, vector_offset, Entry, GuestException, LogOnce};
pub use mmio::{MmioDevice, MmioError};
pub use proto::{CoreStatus, FpServiceError, FpServiceOp, SavebackError, SavebackOp};
pub use psci::{handle_psci, Cpus, Power, PsciOutcome};
pub use sysreg::{SysregError, TimerRegs};
pub use table::{CoreEntry, FpTable, TableError, MAX_CORES, TABLE_MAGIC, TABLE_VERSION};
pub use uart::{Pl011, UartOutput};
pub use vgic::{
    GicError, GicVersion, Injection, Injections, Vgic, LIST_REGS, MAX_VCPUS, NUM_IRQS,
    REDIST_STRIDE,
};
pub use virtio::{VirtioConsole, VirtioError};
