//! Guest register access for one exit, reading only the prefix of seL4's user context that the
//! exit needs: every register call costs an IPC-sized kernel entry.
use lazyfp::DataAbort;
use microkit_rt::{Error, Tcb, UserContext};

/// Words of the context up to and including general register `n` (xzr: just the PC).
pub const fn words_for(n: u8) -> usize {
    if n >= 31 {
        1
    } else {
        UserContext::gpr_index(n) + 1
    }
}

/// Reads the first `count` words of the vCPU's context.
pub fn read(tcb: Tcb, count: usize) -> Result<UserContext, Error> {
    let mut ctx = UserContext::default();
    tcb.read_registers(&mut ctx, count)?;
    Ok(ctx)
}

/// Sets `xN` (writes to xzr are dropped).
pub fn set_gpr(ctx: &mut UserContext, n: u8, value: u64) {
    if n < 31 {
        ctx.set_gpr(n, value);
    }
}

/// Reads `xN` (xzr reads 0).
pub fn gpr(ctx: &UserContext, n: u8) -> u64 {
    if n < 31 {
        ctx.gpr(n)
    } else {
        0
    }
}

/// Steps over the trapped instruction and writes back `count` words.
pub fn advance_and_write(tcb: Tcb, ctx: &mut UserContext, count: usize) -> Result<(), Error> {
    ctx.0[UserContext::PC] = ctx.0[UserContext::PC].wrapping_add(4);
    tcb.write_registers(false, ctx, count)
}

/// Completes an emulated load: `raw` into the transfer register, then PC + 4.
pub fn complete_load(tcb: Tcb, ctx: &mut UserContext, access: DataAbort, raw: u64) -> Result<(), Error> {
    set_gpr(ctx, access.srt, access.extend(raw));
    advance_and_write(tcb, ctx, words_for(access.srt))
}
