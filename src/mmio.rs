//! MMIO emulation interface: devices are registered by guest-physical range.
use core::fmt;

/// Why a device refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// No device claims the address.
    Unclaimed(u64),
    /// The device has no register there, or not of that size.
    BadRegister { offset: u64, size: u8 },
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unclaimed(a) => write!(f, "no device at {a:#x}"),
            Self::BadRegister { offset, size } => {
                write!(f, "no {size}-byte register at offset {offset:#x}")
            }
        }
    }
}

/// An emulated device.
pub trait MmioDevice {
    /// Guest-physical base and size of the device's frame.
    fn range(&self) -> (u64, u64);
    fn read(&mut self, offset: u64, size: u8) -> Result<u64, MmioError>;
    fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), MmioError>;

    /// The offset of `addr` in this device, if it claims it.
    fn claims(&self, addr: u64) -> Option<u64> {
        let (base, size) = self.range();
        addr.checked_sub(base).filter(|off| *off < size)
    }
}
