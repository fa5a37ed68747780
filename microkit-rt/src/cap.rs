//! Capability slots of a Microkit PD and the indices that address them.

/// A capability pointer into the PD's CSpace (Microkit addresses caps by slot index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(pub u64);

/// Microkit's CSpace layout (libmicrokit `microkit.h`, Microkit 2.3).
pub(crate) mod slot {
    pub const INPUT: u64 = 1;
    pub const REPLY: u64 = 4;
    pub const MONITOR_EP: u64 = 5;
    pub const ARM_SMC: u64 = 7;
    pub const BASE_OUTPUT_NOTIFICATION: u64 = 10;
    pub const BASE_ENDPOINT: u64 = 74;
    pub const BASE_IRQ: u64 = 138;
    pub const BASE_VM_TCB: u64 = 266;
    pub const BASE_VCPU: u64 = 330;
}

/// Highest channel id + 1 (notification badges use bits 0..62; 62 and 63 mark faults and PPCs).
pub const MAX_CHANNELS: u8 = 62;

/// A channel id of this PD, as given by `<end id=..>` in the SDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel(u8);

impl Channel {
    /// A channel id; ids at or above 62 do not exist in Microkit.
    pub const fn new(id: u8) -> Self {
        assert!(id < MAX_CHANNELS, "Microkit channel ids are below 62");
        Self(id)
    }

    /// From a badge's low bits (already known to be < 64); `None` for 62 and 63.
    pub(crate) const fn from_badge_bits(id: u64) -> Option<Self> {
        if id < MAX_CHANNELS as u64 {
            Some(Self(id as u8))
        } else {
            None
        }
    }

    pub const fn index(self) -> u8 {
        self.0
    }

    pub(crate) const fn notification_cap(self) -> Cap {
        Cap(slot::BASE_OUTPUT_NOTIFICATION + self.0 as u64)
    }

    pub(crate) const fn endpoint_cap(self) -> Cap {
        Cap(slot::BASE_ENDPOINT + self.0 as u64)
    }

    pub(crate) const fn irq_cap(self) -> Cap {
        Cap(slot::BASE_IRQ + self.0 as u64)
    }
}

/// The set of channels a notification badge carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSet(pub u64);

impl ChannelSet {
    pub const fn contains(self, ch: Channel) -> bool {
        self.0 & (1 << ch.0) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Channel> {
        (0..MAX_CHANNELS)
            .filter(move |i| self.0 & (1 << i) != 0)
            .map(Channel)
    }
}

/// A child of this PD: a child PD or a VM's vCPU (`<vcpu id=..>`), as in the fault badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child(u8);

impl Child {
    pub const fn new(id: u8) -> Self {
        assert!(
            id < MAX_CHANNELS,
            "Microkit child and vCPU ids are below 62"
        );
        Self(id)
    }

    pub(crate) const fn from_badge(badge: u64) -> Self {
        Self((badge & 0xff) as u8)
    }

    pub const fn index(self) -> u8 {
        self.0
    }

    /// The TCB of this child's vCPU thread.
    pub const fn vm_tcb(self) -> crate::Tcb {
        crate::Tcb(Cap(slot::BASE_VM_TCB + self.0 as u64))
    }

    /// The VCPU object of this child.
    pub const fn vcpu(self) -> crate::Vcpu {
        crate::Vcpu(Cap(slot::BASE_VCPU + self.0 as u64))
    }
}
