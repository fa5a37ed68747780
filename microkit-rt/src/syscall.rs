//! seL4 system calls (MCS numbering, aarch64: `svc #0`, number in x7).
//!
//! MR0–MR3 travel in x2–x5; the wrappers move them to and from the IPC buffer so that callers
//! see one uniform message-register interface.
use core::arch::asm;

use crate::{get_mr, set_mr, Cap, MessageInfo};

const SYS_CALL: i64 = -1;
const SYS_REPLY_RECV: i64 = -2;
const SYS_NB_SEND_RECV: i64 = -3;
const SYS_SEND: i64 = -5;
const SYS_RECV: i64 = -7;
const SYS_YIELD: i64 = -11;
const SYS_DEBUG_PUT_CHAR: i64 = -12;

#[inline(always)]
fn store_mrs(m: [u64; 4]) {
    for (i, v) in m.into_iter().enumerate() {
        set_mr(i, v);
    }
}

#[inline(always)]
fn load_mrs() -> [u64; 4] {
    [get_mr(0), get_mr(1), get_mr(2), get_mr(3)]
}

/// `seL4_Recv`: returns (badge, info).
#[inline(always)]
pub(crate) fn recv(src: Cap, reply: Cap) -> (u64, MessageInfo) {
    let (badge, info, m0, m1, m2, m3);
    // SAFETY: the seL4 syscall ABI: the kernel writes only x0–x5 here and accesses memory only
    // through the IPC buffer, which the asm block's implied memory clobber covers.
    unsafe {
        asm!("svc #0",
            inout("x0") src.0 => badge, out("x1") info,
            out("x2") m0, out("x3") m1, out("x4") m2, out("x5") m3,
            in("x6") reply.0, in("x7") SYS_RECV, options(nostack));
    }
    store_mrs([m0, m1, m2, m3]);
    (badge, MessageInfo(info))
}

/// `seL4_ReplyRecv`: replies on `reply` with `info`, then receives on `src`.
#[inline(always)]
pub(crate) fn reply_recv(src: Cap, info: MessageInfo, reply: Cap) -> (u64, MessageInfo) {
    let [i0, i1, i2, i3] = load_mrs();
    let (badge, out_info, m0, m1, m2, m3);
    // SAFETY: as for `recv`.
    unsafe {
        asm!("svc #0",
            inout("x0") src.0 => badge, inout("x1") info.0 => out_info,
            inout("x2") i0 => m0, inout("x3") i1 => m1, inout("x4") i2 => m2, inout("x5") i3 => m3,
            in("x6") reply.0, in("x7") SYS_REPLY_RECV, options(nostack));
    }
    store_mrs([m0, m1, m2, m3]);
    (badge, MessageInfo(out_info))
}

/// `seL4_NBSendRecv`: sends `info` to `dest` without blocking, then receives on `src`.
#[inline(always)]
pub(crate) fn nb_send_recv(
    dest: Cap,
    info: MessageInfo,
    src: Cap,
    reply: Cap,
) -> (u64, MessageInfo) {
    let [i0, i1, i2, i3] = load_mrs();
    let (badge, out_info, m0, m1, m2, m3);
    // SAFETY: as for `recv`; x8 carries the send destination.
    unsafe {
        asm!("svc #0",
            inout("x0") src.0 => badge, inout("x1") info.0 => out_info,
            inout("x2") i0 => m0, inout("x3") i1 => m1, inout("x4") i2 => m2, inout("x5") i3 => m3,
            in("x6") reply.0, in("x7") SYS_NB_SEND_RECV, in("x8") dest.0, options(nostack));
    }
    store_mrs([m0, m1, m2, m3]);
    (badge, MessageInfo(out_info))
}

/// `seL4_Call`: returns the reply's info; the reply's MRs are in the IPC buffer.
#[inline(always)]
pub(crate) fn call(dest: Cap, info: MessageInfo) -> MessageInfo {
    let [i0, i1, i2, i3] = load_mrs();
    let (out_info, m0, m1, m2, m3);
    // SAFETY: as for `recv`. x0 returns the badge, which a Call ignores.
    unsafe {
        asm!("svc #0",
            inout("x0") dest.0 => _, inout("x1") info.0 => out_info,
            inout("x2") i0 => m0, inout("x3") i1 => m1, inout("x4") i2 => m2, inout("x5") i3 => m3,
            in("x7") SYS_CALL, options(nostack));
    }
    store_mrs([m0, m1, m2, m3]);
    MessageInfo(out_info)
}

/// `seL4_Send` (a signal when `dest` is a notification).
#[inline(always)]
pub(crate) fn send(dest: Cap, info: MessageInfo) {
    let [i0, i1, i2, i3] = load_mrs();
    // SAFETY: as for `recv`; Send returns nothing.
    unsafe {
        asm!("svc #0",
            in("x0") dest.0, in("x1") info.0,
            in("x2") i0, in("x3") i1, in("x4") i2, in("x5") i3,
            in("x7") SYS_SEND, options(nostack));
    }
}

/// `seL4_Yield` (MCS): gives up the rest of the current budget; the thread runs again at its
/// scheduling context's next replenishment.
#[inline(always)]
pub(crate) fn yield_budget() {
    // SAFETY: a syscall without arguments or results; the kernel changes no user registers.
    unsafe {
        asm!("svc #0", in("x7") SYS_YIELD, options(nostack, nomem));
    }
}

/// `seL4_DebugPutChar`: only on kernels built with printing (debug configs); on others the
/// syscall does not exist, so callers check `kernel::PRINTING` first.
#[inline(always)]
pub(crate) fn debug_put_char(c: u8) {
    // SAFETY: a debug syscall that reads x0 and changes no user state.
    unsafe {
        asm!("svc #0", in("x0") c as u64, in("x7") SYS_DEBUG_PUT_CHAR, options(nostack, nomem));
    }
}

/// The NEON worker's hand-over between sections, in one asm block so that no compiler code can
/// touch the vector registers in between: load V0–V31 from `leave`, `Call(first)` (neon_end),
/// `Recv` on the PD's input (wait for the next request), `Call(second)` (neon_begin), store
/// V0–V31 into `found`. While this thread waits, other threads (the guest included) use the FPU;
/// seL4 must give this thread back exactly what it left. Sends MR0–MR1 with the first call and MR0
/// with the second. Returns (first reply label, badge received, second reply label, its MR0).
#[cfg(target_feature = "neon")]
#[inline(never)]
pub fn vregs_call_recv_call(
    leave: &crate::VRegs,
    found: &mut crate::VRegs,
    first: (Cap, MessageInfo, [u64; 2]),
    second: (Cap, MessageInfo, u64),
) -> (u64, u64, u64, u64) {
    let (l1, badge, l2, m0): (u64, u64, u64, u64);
    // SAFETY: loads 512 bytes from `leave` and stores 512 into `found` (both valid, aligned arrays);
    // three seL4 syscalls in between, which write only x0–x5 (declared clobbered) and no memory
    // of ours but the IPC buffer. Arguments ride in x20–x26 and the pointers in x9/x10, which
    // seL4 preserves; all vector registers are declared clobbered.
    unsafe {
        asm!(
            "ldp q0, q1, [x9, #0]", "ldp q2, q3, [x9, #32]", "ldp q4, q5, [x9, #64]",
            "ldp q6, q7, [x9, #96]", "ldp q8, q9, [x9, #128]", "ldp q10, q11, [x9, #160]",
            "ldp q12, q13, [x9, #192]", "ldp q14, q15, [x9, #224]", "ldp q16, q17, [x9, #256]",
            "ldp q18, q19, [x9, #288]", "ldp q20, q21, [x9, #320]", "ldp q22, q23, [x9, #352]",
            "ldp q24, q25, [x9, #384]", "ldp q26, q27, [x9, #416]", "ldp q28, q29, [x9, #448]",
            "ldp q30, q31, [x9, #480]",
            "mov x0, x20", "mov x1, x21", "mov x2, x22", "mov x3, x23", "mov x7, #-1", "svc #0",
            "lsr x27, x1, #12",
            "mov x0, #{input}", "mov x6, #{reply}", "mov x7, #-7", "svc #0",
            "mov x28, x0",
            "mov x0, x24", "mov x1, x25", "mov x2, x26", "mov x7, #-1", "svc #0",
            "lsr x1, x1, #12",
            "stp q0, q1, [x10, #0]", "stp q2, q3, [x10, #32]", "stp q4, q5, [x10, #64]",
            "stp q6, q7, [x10, #96]", "stp q8, q9, [x10, #128]", "stp q10, q11, [x10, #160]",
            "stp q12, q13, [x10, #192]", "stp q14, q15, [x10, #224]", "stp q16, q17, [x10, #256]",
            "stp q18, q19, [x10, #288]", "stp q20, q21, [x10, #320]", "stp q22, q23, [x10, #352]",
            "stp q24, q25, [x10, #384]", "stp q26, q27, [x10, #416]", "stp q28, q29, [x10, #448]",
            "stp q30, q31, [x10, #480]",
            input = const crate::cap::slot::INPUT,
            reply = const crate::cap::slot::REPLY,
            in("x9") leave.as_ptr(), in("x10") found.as_mut_ptr(),
            in("x20") first.0 .0, in("x21") first.1 .0, in("x22") first.2[0], in("x23") first.2[1],
            in("x24") second.0 .0, in("x25") second.1 .0, in("x26") second.2,
            out("x27") l1, out("x28") badge, out("x1") l2, out("x2") m0,
            out("x0") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack),
        );
    }
    (l1, badge, l2, m0)
}
