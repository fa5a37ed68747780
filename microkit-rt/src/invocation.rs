//! Typed object invocations: the calls a VMM and its services need.
use core::fmt;
use core::mem::MaybeUninit;

use crate::cap::slot;
use crate::kernel as k;
use crate::syscall::{call, send};
use crate::{get_mr, set_mr, Cap, Channel, MessageInfo};

/// `seL4_Error`, as returned in an invocation's reply label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    InvalidArgument,
    InvalidCapability,
    IllegalOperation,
    RangeError,
    AlignmentError,
    FailedLookup,
    TruncatedMessage,
    DeleteFirst,
    RevokeFirst,
    NotEnoughMemory,
    Unknown(u64),
}

impl Error {
    /// Success is tested first and inline: every register call of an exit passes here.
    #[inline(always)]
    fn from_label(label: u64) -> Result<(), Self> {
        if label == 0 {
            Ok(())
        } else {
            Err(Self::from_code(label))
        }
    }

    #[cold]
    #[inline(never)]
    fn from_code(label: u64) -> Self {
        match label {
            1 => Self::InvalidArgument,
            2 => Self::InvalidCapability,
            3 => Self::IllegalOperation,
            4 => Self::RangeError,
            5 => Self::AlignmentError,
            6 => Self::FailedLookup,
            7 => Self::TruncatedMessage,
            8 => Self::DeleteFirst,
            9 => Self::RevokeFirst,
            10 => Self::NotEnoughMemory,
            other => Self::Unknown(other),
        }
    }
}

impl Error {
    /// The `seL4_Error` number.
    pub const fn code(self) -> u64 {
        match self {
            Self::InvalidArgument => 1,
            Self::InvalidCapability => 2,
            Self::IllegalOperation => 3,
            Self::RangeError => 4,
            Self::AlignmentError => 5,
            Self::FailedLookup => 6,
            Self::TruncatedMessage => 7,
            Self::DeleteFirst => 8,
            Self::RevokeFirst => 9,
            Self::NotEnoughMemory => 10,
            Self::Unknown(v) => v,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(v) => write!(f, "seL4 error {v}"),
            other => write!(f, "seL4_{other:?}"),
        }
    }
}

#[inline(always)]
fn invoke(cap: Cap, label: u64, length: usize) -> Result<MessageInfo, Error> {
    let reply = call(cap, MessageInfo::new(label, length));
    Error::from_label(reply.label()).map(|()| reply)
}

/// `seL4_TCBFlag_fpuDisabled`.
pub const TCB_FLAG_FPU_DISABLED: u64 = 1;

/// Words in seL4's aarch64 user context.
pub const USER_CONTEXT_WORDS: usize = 36;

/// `seL4_UserContext` (aarch64): pc, sp, spsr, x0–x8, x16, x17, x18, x29, x30, x9–x15,
/// x19–x28, tpidr_el0, tpidrro_el0. Register calls transfer a prefix of this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserContext(pub [u64; USER_CONTEXT_WORDS]);

impl Default for UserContext {
    fn default() -> Self {
        Self([0; USER_CONTEXT_WORDS])
    }
}

impl UserContext {
    pub const PC: usize = 0;
    pub const SP: usize = 1;
    pub const SPSR: usize = 2;

    /// Index of general register `xN` (N in 0..=30) in the context order.
    pub const fn gpr_index(n: u8) -> usize {
        match n {
            0..=8 => 3 + n as usize,
            16..=18 => 12 + (n - 16) as usize,
            29 => 15,
            30 => 16,
            9..=15 => 17 + (n - 9) as usize,
            _ => 24 + (n as usize - 19) % 10,
        }
    }

    pub fn gpr(&self, n: u8) -> u64 {
        self.0[Self::gpr_index(n)]
    }

    pub fn set_gpr(&mut self, n: u8, value: u64) {
        self.0[Self::gpr_index(n)] = value;
    }
}

/// The first `len` words of a thread's user context, as one register call transfers them.
/// Only the words read are initialised, so a frame costs no zeroing of the other 36 − len.
pub struct Frame {
    words: core::mem::MaybeUninit<[u64; USER_CONTEXT_WORDS]>,
    len: usize,
}

impl Frame {
    fn base(&mut self) -> *mut u64 {
        self.words.as_mut_ptr().cast()
    }

    /// The words read, in seL4's context order.
    pub fn words(&self) -> &[u64] {
        // SAFETY: the first `len` words were written by `Tcb::read_frame` (len <= 36).
        unsafe { core::slice::from_raw_parts(self.words.as_ptr().cast::<u64>(), self.len) }
    }

    /// Words held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Word `i` in seL4's context order; 0 outside the frame.
    pub fn get(&self, i: usize) -> u64 {
        self.words().get(i).copied().unwrap_or(0)
    }

    /// Sets word `i`; a word outside the frame is ignored (callers read what they change).
    pub fn set(&mut self, i: usize, value: u64) {
        if i < self.len {
            // SAFETY: `i` is inside the array and below `len`.
            unsafe { self.base().add(i).write(value) }
        }
    }

    pub fn pc(&self) -> u64 {
        self.get(UserContext::PC)
    }

    pub fn set_pc(&mut self, pc: u64) {
        self.set(UserContext::PC, pc);
    }

    /// `xN` (0 for xzr or a register outside the frame).
    pub fn gpr(&self, n: u8) -> u64 {
        if n < 31 {
            self.get(UserContext::gpr_index(n))
        } else {
            0
        }
    }

    /// Sets `xN` (writes to xzr are dropped).
    pub fn set_gpr(&mut self, n: u8, value: u64) {
        if n < 31 {
            self.set(UserContext::gpr_index(n), value);
        }
    }
}

/// A thread: a child PD's or a vCPU's TCB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcb(pub Cap);

impl Tcb {
    /// Reads the first `count` words of the context. Corresponds to `seL4_TCB_ReadRegisters`.
    pub fn read_frame(self, count: usize) -> Result<Frame, Error> {
        let mut slot = MaybeUninit::uninit();
        self.read_in(&mut slot, count)?;
        // SAFETY: read_in initialised the frame.
        Ok(unsafe { slot.assume_init() })
    }

    /// [`Tcb::read_frame`] into `slot`, a frame's room on the caller's stack: on the exit path
    /// a frame returned by value is copied (296 bytes), and a `Frame` value built to be filled
    /// in place is zeroed by the compiler (its `len` makes it a constant it stores whole). Here
    /// only `len` and the words read are written. The frame lives as long as the slot.
    pub fn read_in(self, slot: &mut MaybeUninit<Frame>, count: usize) -> Result<&mut Frame, Error> {
        self.fill(slot, count.min(USER_CONTEXT_WORDS), None)
    }

    /// [`Tcb::read_in`] of `count` words (at most 35), then `last` as word `count`: a register
    /// the caller writes without needing its old value (an emulated load's target), in the
    /// same pass as the copy out of the IPC buffer.
    pub fn read_in_then(
        self,
        slot: &mut MaybeUninit<Frame>,
        count: usize,
        last: u64,
    ) -> Result<&mut Frame, Error> {
        self.fill(slot, count.min(USER_CONTEXT_WORDS - 1), Some(last))
    }

    /// Reads `len` words (`len` < 36 if `last` is given, else <= 36) into `slot`, then `last`.
    #[inline(always)]
    fn fill(
        self,
        slot: &mut MaybeUninit<Frame>,
        len: usize,
        last: Option<u64>,
    ) -> Result<&mut Frame, Error> {
        set_mr(0, 0);
        set_mr(1, len as u64);
        invoke(self.0, k::TCB_READ_REGISTERS, 2)?;
        let f = slot.as_mut_ptr();
        // SAFETY: `f` points at the slot's frame; fields are written through raw pointers, so
        // nothing reads uninitialised memory. The words array may stay partly uninitialised
        // (it is a MaybeUninit); `len` is written before the frame is handed out. Word `len`,
        // written only with `last`, is then below 36, inside the array.
        unsafe {
            let dst = core::ptr::addr_of_mut!((*f).words).cast::<u64>();
            let src = crate::ipc::mr_base();
            for i in 0..len {
                // `i < len <= 36`: inside the array and inside msg[] (120 words). Volatile
                // keeps a plain word loop (no memcpy call).
                dst.add(i).write(src.add(i).read_volatile());
            }
            let len = match last {
                Some(word) => {
                    dst.add(len).write(word);
                    len + 1
                }
                None => len,
            };
            core::ptr::addr_of_mut!((*f).len).write(len);
            Ok(slot.assume_init_mut())
        }
    }

    /// Writes the first `count` words of `frame` (at most its length), without resuming.
    /// Corresponds to `seL4_TCB_WriteRegisters`.
    pub fn write_frame(self, frame: &Frame, count: usize) -> Result<(), Error> {
        self.write_words(false, &frame.words()[..count.min(frame.len)])
    }

    /// Writes the first `count` words of `ctx`; `resume` restarts the thread.
    /// Corresponds to `seL4_TCB_WriteRegisters`.
    pub fn write_registers(
        self,
        resume: bool,
        ctx: &UserContext,
        count: usize,
    ) -> Result<(), Error> {
        self.write_words(resume, &ctx.0[..count.min(USER_CONTEXT_WORDS)])
    }

    /// `seL4_TCB_WriteRegisters` of the context prefix `words` (at most 36).
    fn write_words(self, resume: bool, words: &[u64]) -> Result<(), Error> {
        let words = &words[..words.len().min(USER_CONTEXT_WORDS)];
        set_mr(0, resume as u64);
        set_mr(1, words.len() as u64);
        let dst = crate::ipc::mr_base();
        for (i, w) in words.iter().enumerate() {
            // SAFETY: MR2..MR37 lie inside msg[] (120 words) of the mapped IPC buffer. Volatile
            // keeps a plain word loop: a few words, where a memcpy call costs more.
            unsafe { dst.add(2 + i).write_volatile(*w) };
        }
        invoke(self.0, k::TCB_WRITE_REGISTERS, 2 + words.len()).map(drop)
    }

    /// Clears, then sets TCB flags; returns the resulting flags.
    /// Corresponds to `seL4_TCB_SetFlags`.
    pub fn set_flags(self, clear: u64, set: u64) -> Result<u64, Error> {
        set_mr(0, clear);
        set_mr(1, set);
        invoke(self.0, k::TCB_SET_FLAGS, 2)?;
        Ok(get_mr(0))
    }

    /// Corresponds to `seL4_TCB_Suspend`.
    pub fn suspend(self) -> Result<(), Error> {
        invoke(self.0, k::TCB_SUSPEND, 0).map(drop)
    }

    /// Corresponds to `seL4_TCB_Resume`.
    pub fn resume(self) -> Result<(), Error> {
        invoke(self.0, k::TCB_RESUME, 0).map(drop)
    }
}

/// A VCPU object (aarch64 hypervisor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vcpu(pub Cap);

impl Vcpu {
    /// Corresponds to `seL4_ARM_VCPU_ReadRegs`.
    pub fn read_reg(self, reg: u64) -> Result<u64, Error> {
        set_mr(0, reg);
        invoke(self.0, k::ARM_VCPU_READ_REG, 1)?;
        Ok(get_mr(0))
    }

    /// Corresponds to `seL4_ARM_VCPU_WriteRegs`.
    pub fn write_reg(self, reg: u64, value: u64) -> Result<(), Error> {
        set_mr(0, reg);
        set_mr(1, value);
        invoke(self.0, k::ARM_VCPU_WRITE_REG, 2).map(drop)
    }

    /// Puts `virq` in list register `index`. Corresponds to `seL4_ARM_VCPU_InjectIRQ`.
    pub fn inject_irq(self, virq: u16, priority: u8, group: u8, index: u8) -> Result<(), Error> {
        set_mr(
            0,
            virq as u64 | (priority as u64) << 16 | (group as u64) << 24 | (index as u64) << 32,
        );
        invoke(self.0, k::ARM_VCPU_INJECT_IRQ, 1).map(drop)
    }

    /// Re-arms a virtual PPI after the guest handled it. Corresponds to `seL4_ARM_VCPU_AckVPPI`.
    pub fn ack_vppi(self, irq: u64) -> Result<(), Error> {
        set_mr(0, irq);
        invoke(self.0, k::ARM_VCPU_ACK_VPPI, 1).map(drop)
    }
}

/// An IRQ handler cap of a channel (`<irq id=..>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqHandler(pub Channel);

/// Corresponds to `seL4_IRQHandler_Ack` (`microkit_irq_ack`).
pub fn irq_ack(ch: Channel) -> Result<(), Error> {
    invoke(ch.irq_cap(), k::IRQ_ACK_IRQ, 0).map(drop)
}

/// Signals the PD at the other end of `ch` (`microkit_notify`).
pub fn notify(ch: Channel) {
    send(ch.notification_cap(), MessageInfo::new(0, 0));
}

/// Protected procedure call to the PD at the other end of `ch` (`microkit_ppcall`).
pub fn ppcall(ch: Channel, info: MessageInfo) -> MessageInfo {
    call(ch.endpoint_cap(), info)
}

/// Asks the kernel to make an SMC with x0–x7 = `args`; returns x0–x7 after it.
/// Needs `smc="true"` on the PD. Corresponds to `seL4_ARM_SMC_Call`.
pub fn arm_smc_call(args: &[u64; 8]) -> Result<[u64; 8], Error> {
    for (i, a) in args.iter().enumerate() {
        set_mr(i, *a);
    }
    invoke(Cap(slot::ARM_SMC), k::ARM_SMC_CALL, 8)?;
    Ok(core::array::from_fn(get_mr))
}

/// Leaves `leave` in V0–V31, `ppcall(first)`, waits for a notification, `ppcall(second)`, and
/// stores what V0–V31 then hold into `found`, all without any other code touching the vector
/// registers (see the NEON worker). Returns (first reply label, notification badge, second reply
/// label, second reply MR0).
#[cfg(target_feature = "neon")]
pub fn vregs_ppcall_wait_ppcall(
    leave: &crate::VRegs,
    found: &mut crate::VRegs,
    first: (Channel, MessageInfo, [u64; 2]),
    second: (Channel, MessageInfo, u64),
) -> (u64, u64, u64, u64) {
    crate::syscall::vregs_call_recv_call(
        leave,
        found,
        (first.0.endpoint_cap(), first.1, first.2),
        (second.0.endpoint_cap(), second.1, second.2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_order_matches_sel4() {
        // seL4_UserContext (aarch64): pc, sp, spsr, x0–x8, x16, x17, x18, x29, x30, x9–x15, x19–x28.
        let order: [u8; 31] = [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 18, 29, 30, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21,
            22, 23, 24, 25, 26, 27, 28,
        ];
        for (i, reg) in order.iter().enumerate() {
            assert_eq!(UserContext::gpr_index(*reg), 3 + i, "x{reg}");
        }
        let mut c = UserContext::default();
        c.set_gpr(28, 7);
        assert_eq!(c.0[33], 7);
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 1..=10 {
            assert_eq!(Error::from_label(code).unwrap_err().code(), code);
        }
        assert_eq!(Error::from_label(0), Ok(()));
        assert_eq!(Error::from_label(99), Err(Error::Unknown(99)));
    }
}
