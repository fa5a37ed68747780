//! Guest register access for one exit, reading only the prefix of seL4's user context that the
//! exit needs: every register call costs an IPC-sized kernel entry.
use core::mem::MaybeUninit;

use lazyfp::DataAbort;
use microkit_rt::{Error, Frame, Tcb, UserContext};

/// Index of each general register in seL4's context, and 0 for xzr (whose exits need just
/// the PC, word 0): a table, as every MMIO exit looks its register up.
const GPR_INDEX: [u8; 32] = {
    let mut t = [0; 32];
    let mut n = 0;
    while n < 31 {
        t[n] = UserContext::gpr_index(n as u8) as u8;
        n += 1;
    }
    t
};

/// Words of the context up to and including general register `n` (xzr: just the PC).
pub const fn words_for(n: u8) -> usize {
    if n >= 31 {
        1
    } else {
        GPR_INDEX[n as usize] as usize + 1
    }
}

/// Words of the context before general register `n`: what an emulated load into `xn` needs
/// read (the register itself is only written).
pub const fn words_before(n: u8) -> usize {
    GPR_INDEX[(n & 31) as usize] as usize
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

/// Completes an emulated load of `raw`: reads the context up to [`words_before`] the transfer
/// register into `slot`, puts the value there, steps over the load and writes it all back.
pub fn complete_load(
    tcb: Tcb,
    slot: &mut MaybeUninit<Frame>,
    access: DataAbort,
    raw: u64,
) -> Result<(), Error> {
    let srt = access.srt();
    let f = if srt < 31 {
        tcb.read_in_then(slot, words_before(srt), access.extend(raw))?
    } else {
        tcb.read_in(slot, 1)?
    };
    advance_and_write(tcb, f, words_for(srt))
}
