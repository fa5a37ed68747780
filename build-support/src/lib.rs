//! Host-side build support for lazyfp, used by the build scripts of the other crates.
//!
//! system.xml is the single source of truth for the system's layout: [`generate_sdf_rs`] parses
//! it the way the Microkit tool does, stops the build with a message naming the element when it
//! is invalid or lacks what lazyfp needs, and turns it into Rust constants. [`kernel_facts`] and
//! [`labels_rs`] do the same for the seL4 invocation labels of the configured kernel.

mod cargo;
mod codegen;
mod dtb;
mod sdf;
mod sdk;
mod variant;

use std::path::Path;

pub use cargo::{env_sdk, pd_link_args, rerun_env};
pub use codegen::sdf_rs;
pub use dtb::{guest_dtb, guest_dtb_for, DtbError, DtbParams, GicVersion};
pub use sdf::{
    check_cores, check_requirements, parse, parse_number, At, Channel, ChannelEnd, FpPolicy, Irq,
    Map, MemoryRegion, Perms, ProtectionDomain, SdfError, Setvar, System, Trigger, UnknownPolicy,
    Unmet, Vcpu, VirtualMachine,
};
pub use sdk::{kernel_facts, labels_rs, Invocation, KernelFacts, LabelMismatch, Labels, SdkError};
pub use variant::{sdf_variant, sdf_variant_with};

/// Reads, validates and checks `system_xml` against lazyfp's requirements under `policy`, and
/// generates the Rust constants for the root crate's `sdf` module.
pub fn generate_sdf_rs(
    system_xml: &Path,
    policy: FpPolicy,
    num_cores: usize,
) -> Result<String, SdfError> {
    let xml = std::fs::read_to_string(system_xml).map_err(|source| SdfError::Read {
        path: system_xml.to_owned(),
        source,
    })?;
    let system = parse(&system_xml.display().to_string(), &xml)?;
    check_cores(&system, num_cores)?;
    check_requirements(&system, policy)?;
    sdf_rs(&system, num_cores)
}
