//! Guest register access for one exit, reading only the prefix of seL4's user context that the
//! exit needs: every register call costs an IPC-sized kernel entry.
use core::mem::MaybeUninit;

use lazyfp::DataAbort;
use microkit_rt::{Error, Frame, Tcb, UserContext};

/// Words of the context up to and including general register `n` (xzr: just the PC).
pub const fn words_for(n: u8) -> usize {
    if n >= 31 {
        1
    } else {
        UserContext::gpr_index(n) + 1
    }
}

/// Words of the context before general register `n`: what an emulated load into `xn` needs
/// read (the register itself is only written; xzr: just the PC).
pub const fn words_before(n: u8) -> usize {
    if n >= 31 {
        1
    } else {
        UserContext::gpr_index(n)
    }
}

/// Reads the first `count` words of the vCPU's context.
pub fn read(tcb: Tcb, count: usize) -> Result<Frame, Error> {
    tcb.read_frame(count)
}

/// [`read`] into `slot` on the caller's stack (the exit path: no frame copied or zeroed).
pub fn read_in(tcb: Tcb, slot: &mut MaybeUninit<Frame>, count: usize) -> Result<&mut Frame, Error> {
    tcb.read_in(slot, count)
}

/// Steps over the trapped instruction and writes back `count` words.
pub fn advance_and_write(tcb: Tcb, f: &mut Frame, count: usize) -> Result<(), Error> {
    f.set_pc(f.pc().wrapping_add(4));
    tcb.write_frame(f, count)
}

/// Completes an emulated load in `f`, read up to [`words_before`] the transfer register:
/// `raw` into that register, then PC + 4.
pub fn complete_load(tcb: Tcb, f: &mut Frame, access: DataAbort, raw: u64) -> Result<(), Error> {
    if access.srt() < 31 {
        f.push(access.extend(raw));
    }
    advance_and_write(tcb, f, words_for(access.srt()))
}
