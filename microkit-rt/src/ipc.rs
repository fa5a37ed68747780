//! Message info and message registers (the IPC buffer Microkit maps for every PD).

/// The IPC buffer: top page of the 40-bit user address space (Cortex-A53 with hypervisor).
const IPC_BUFFER: usize = 0xFF_FFFF_F000;
/// Message registers in the IPC buffer (`seL4_MsgMaxLength`).
pub const MSG_MAX_LENGTH: usize = 120;

/// `seL4_MessageInfo`: label 63:12, capsUnwrapped 11:9, extraCaps 8:7, length 6:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo(pub u64);

impl MessageInfo {
    pub const fn new(label: u64, length: usize) -> Self {
        Self((label << 12) | (length as u64 & 0x7f))
    }

    pub const fn label(self) -> u64 {
        self.0 >> 12
    }

    pub const fn length(self) -> usize {
        (self.0 & 0x7f) as usize
    }
}

#[inline(always)]
fn mr_ptr(i: usize) -> *mut u64 {
    // msg[] starts one word after the tag; indices past its end stay on its last word.
    (IPC_BUFFER + 8 + 8 * i.min(MSG_MAX_LENGTH - 1)) as *mut u64
}

/// The first message register (callers stay below [`MSG_MAX_LENGTH`]).
#[inline(always)]
pub(crate) fn mr_base() -> *mut u64 {
    (IPC_BUFFER + 8) as *mut u64
}

/// Reads message register `i` (indices past 119 read the last one).
#[inline(always)]
pub fn get_mr(i: usize) -> u64 {
    // SAFETY: the Microkit tool maps this PD's IPC buffer at IPC_BUFFER before it starts, and
    // `mr_ptr` stays inside msg[]. Only this thread uses its IPC buffer.
    unsafe { mr_ptr(i).read() }
}

/// Writes message register `i` (indices past 119 write the last one).
#[inline(always)]
pub fn set_mr(i: usize, value: u64) {
    // SAFETY: as for `get_mr`.
    unsafe { mr_ptr(i).write(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_info_fields() {
        let m = MessageInfo::new(0x1234, 9);
        assert_eq!((m.label(), m.length()), (0x1234, 9));
        assert_eq!(m.0, 0x1234 << 12 | 9);
        assert_eq!(
            MessageInfo::new(1, 200).length(),
            200 & 0x7f,
            "length is 7 bits"
        );
    }
}
