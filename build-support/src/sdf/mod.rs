//! Microkit's system description (system.xml): parsing, validation and lazyfp's requirements.

mod error;
mod model;
mod parse;
mod require;
mod validate;

pub use error::{At, SdfError, Unmet};
pub use model::{
    Channel, ChannelEnd, Irq, Map, MemoryRegion, Perms, ProtectionDomain, Setvar, System, Trigger,
    Vcpu, VirtualMachine,
};
pub use parse::{parse, parse_number};
pub(crate) use require::{channel_id, FP_SERVICE, VMM};
pub use require::{check_cores, check_requirements, is_neon_worker, FpPolicy, UnknownPolicy};

#[cfg(test)]
pub(crate) mod fixtures;
