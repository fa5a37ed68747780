//! The system description as lazyfp sees it: Microkit 2.3's elements less the ones lazyfp does
//! not use (child PDs, cspaces, domains, x86 devices). Every element keeps where it was declared.

use super::error::At;

/// A parsed and validated system description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct System {
    /// The file name used in messages.
    pub file: String,
    pub memory_regions: Vec<MemoryRegion>,
    pub protection_domains: Vec<ProtectionDomain>,
    pub channels: Vec<Channel>,
}

impl System {
    pub fn pd(&self, name: &str) -> Option<&ProtectionDomain> {
        self.protection_domains.iter().find(|pd| pd.name == name)
    }

    pub fn mr(&self, name: &str) -> Option<&MemoryRegion> {
        self.memory_regions.iter().find(|mr| mr.name == name)
    }
}

/// `<memory_region>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub name: String,
    /// Absent only for a prefilled region, which the tool sizes from its file.
    pub size: Option<u64>,
    pub page_size: Option<u64>,
    pub phys_addr: Option<u64>,
    pub prefill_path: Option<String>,
    pub at: At,
}

impl MemoryRegion {
    /// The page size the tool maps the region with (Microkit's default is the smallest).
    pub fn page_bytes(&self) -> u64 {
        self.page_size.unwrap_or(SMALL_PAGE)
    }
}

/// The smallest page on aarch64.
pub(crate) const SMALL_PAGE: u64 = 0x1000;
/// aarch64's large page.
pub(crate) const LARGE_PAGE: u64 = 0x20_0000;

/// `<protection_domain>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectionDomain {
    pub name: String,
    pub priority: u8,
    /// MCS budget and period in microseconds.
    pub budget: u64,
    pub period: u64,
    pub cpu: u8,
    pub fpu: bool,
    pub smc: bool,
    pub passive: bool,
    pub stack_size: u64,
    pub program_image: String,
    pub program_image_for_symbols: Option<String>,
    pub maps: Vec<Map>,
    pub irqs: Vec<Irq>,
    pub setvars: Vec<Setvar>,
    pub virtual_machine: Option<VirtualMachine>,
    pub at: At,
}

/// `<map>`, into a PD's address space or a VM's guest-physical space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    pub mr: String,
    pub vaddr: u64,
    pub perms: Perms,
    pub cached: bool,
    pub setvar_vaddr: Option<String>,
    pub setvar_size: Option<String>,
    pub setvar_prefill_size: Option<String>,
    pub at: At,
}

/// A map's `perms`; Microkit's default is `rw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

/// `<irq>` (the aarch64 form, with `irq=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    pub irq: u64,
    pub id: u8,
    pub trigger: Trigger,
    pub setvar_id: Option<String>,
    pub at: At,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Level,
    Edge,
}

/// `<setvar symbol region_paddr>`: the tool writes a region's physical address into a symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setvar {
    pub symbol: String,
    pub region_paddr: String,
    pub at: At,
}

/// `<virtual_machine>` inside a PD, which becomes the VM's fault handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMachine {
    pub name: String,
    pub priority: u8,
    pub budget: u64,
    pub period: u64,
    pub vcpus: Vec<Vcpu>,
    pub maps: Vec<Map>,
    pub at: At,
}

/// `<vcpu>`; `cpu` defaults to the core of the PD that holds the VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vcpu {
    pub id: u8,
    pub cpu: u8,
    pub setvar_id: Option<String>,
    pub at: At,
}

/// `<channel>`: exactly two ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub ends: [ChannelEnd; 2],
    pub at: At,
}

impl Channel {
    /// The end of `pd` and the other end, if `pd` is on this channel.
    pub fn end_of(&self, pd: &str) -> Option<(&ChannelEnd, &ChannelEnd)> {
        let [a, b] = &self.ends;
        if a.pd == pd {
            Some((a, b))
        } else if b.pd == pd {
            Some((b, a))
        } else {
            None
        }
    }
}

/// `<end>`: `pp` lets this end's PD call the other end; `notify` lets it signal the other end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEnd {
    pub pd: String,
    pub id: u8,
    pub pp: bool,
    pub notify: bool,
    pub setvar_id: Option<String>,
    pub at: At,
}
