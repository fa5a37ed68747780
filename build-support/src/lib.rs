//! Host-side build support for lazyfp, used by the build scripts of the other crates.
//!
//! system.xml is the single source of truth for the system's layout: [`generate_sdf_rs`] parses
//! it the way the Microkit tool does, stops the build with a message naming the element when it
//! is invalid or lacks what lazyfp needs, and turns it into Rust constants. [`kernel_facts`] and
//! [`labels_rs`] do the same for the seL4 invocation labels of the configured kernel.

mod board;
mod cargo;
mod codegen;
mod dtb;
mod sdf;
mod sdk;
mod variant;

use std::path::Path;

pub use board::{
    apply_board, load_board, parse_board, supported_boards, Board, BoardError, OnVmStop, UartKind,
    WakeTimer,
};
pub use cargo::{env_sdk, pd_link_args, rerun_env};
pub use codegen::sdf_rs;
pub use dtb::{gic_of, guest_dtb, guest_dtb_for, DtbError, DtbParams, GicVersion};
pub use sdf::{
    check_cores, check_requirements, parse, parse_number, At, Channel, ChannelEnd, FpPolicy, Irq,
    Map, MemoryRegion, Perms, ProtectionDomain, SdfError, Setvar, System, Trigger, UnknownPolicy,
    Unmet, Vcpu, VirtualMachine,
};
pub use sdk::{kernel_facts, labels_rs, Invocation, KernelFacts, LabelMismatch, Labels, SdkError};
pub use variant::{fit, fit_to_cores, sdf_variant, sdf_variant_with};

/// Reads, validates and checks `system_xml` against lazyfp's requirements under `policy`, and
/// generates the Rust constants for the root crate's `sdf` module. `board` is put in first when
/// the file is the single source (system.xml), and not when it is a derived description that
/// already holds its board's elements.
pub fn generate_sdf_rs(
    system_xml: &Path,
    policy: FpPolicy,
    num_cores: usize,
    board: Option<&Board>,
) -> Result<String, SdfError> {
    let xml = std::fs::read_to_string(system_xml).map_err(|source| SdfError::Read {
        path: system_xml.to_owned(),
        source,
    })?;
    let file = system_xml.display().to_string();
    let xml = match board {
        Some(b) => apply_board(&file, &xml, b)?,
        None => xml,
    };
    let xml = fit_to_cores(&file, &xml, num_cores)?;
    let system = parse(&file, &xml)?;
    check_cores(&system, num_cores)?;
    check_requirements(&system, policy)?;
    sdf_rs(&system, num_cores)
}

/// The board's facts as Rust constants (`pub mod board` of the root crate's `sdf` module).
pub fn board_rs(board: &Board) -> String {
    let gic = match board.gic {
        GicVersion::V2 => "V2",
        GicVersion::V3 => "V3",
    };
    let uart = match board.uart {
        UartKind::Pl011 => "Pl011",
        UartKind::Imx => "Imx",
    };
    let on_vm_stop = match board.on_vm_stop {
        OnVmStop::PowerOff => "PowerOff",
        OnVmStop::Serve => "Serve",
    };
    let wake = match board.wake {
        WakeTimer::None => "None",
        WakeTimer::Ptimer => "Ptimer",
        WakeTimer::ImxGpt => "ImxGpt",
    };
    format!(
        "\n/// The board the system is built for (boards/{0}.xml).\npub mod board {{\n    pub const NAME: &str = \"{0}\";\n    pub const GIC: crate::GicVersion = crate::GicVersion::{gic};\n    pub const UART: crate::sdf::UartKind = crate::sdf::UartKind::{uart};\n    pub const UART_IRQ: u64 = {1};\n    pub const ON_VM_STOP: crate::sdf::OnVmStop = crate::sdf::OnVmStop::{on_vm_stop};\n    pub const WAKE: crate::sdf::WakeTimer = crate::sdf::WakeTimer::{wake};\n    pub const WAKE_IRQ: u64 = {2};\n}}\n",
        board.name, board.uart_irq, board.wake_irq
    )
}
