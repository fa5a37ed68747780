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
pub(crate) fn nb_send_recv(dest: Cap, info: MessageInfo, src: Cap, reply: Cap) -> (u64, MessageInfo) {
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

/// `seL4_DebugPutChar`: only on kernels built with printing (debug configs); on others the
/// syscall does not exist, so callers check `kernel::PRINTING` first.
#[inline(always)]
pub(crate) fn debug_put_char(c: u8) {
    // SAFETY: a debug syscall that reads x0 and changes no user state.
    unsafe {
        asm!("svc #0", in("x0") c as u64, in("x7") SYS_DEBUG_PUT_CHAR, options(nostack, nomem));
    }
}

/// Register-only sequence for code that keeps state in the vector registers across a blocking
/// wait (the NEON worker's isolation check): `Call(first)`, `Recv` on the PD's input, then
/// `Call(second)`, with no compiler-generated code in between that could use FP/SIMD registers.
/// Sends MR0–MR1 with the first call and MR0 with the second.
/// Returns (first reply label, badge received, second reply label, its MR0).
#[inline(never)]
pub fn call_recv_call(first: (Cap, MessageInfo, [u64; 2]), second: (Cap, MessageInfo, u64)) -> (u64, u64, u64, u64) {
    let (l1, badge, l2, m0): (u64, u64, u64, u64);
    // SAFETY: three seL4 syscalls. The kernel writes only x0–x5 (declared clobbered); the
    // arguments ride in x20–x26, which seL4 preserves; the kernel touches no memory of ours but
    // the IPC buffer.
    unsafe {
        asm!(
            "mov x0, x20", "mov x1, x21", "mov x2, x22", "mov x3, x23", "mov x7, #-1", "svc #0",
            "lsr x27, x1, #12",
            "mov x0, #{input}", "mov x6, #{reply}", "mov x7, #-7", "svc #0",
            "mov x28, x0",
            "mov x0, x24", "mov x1, x25", "mov x2, x26", "mov x7, #-1", "svc #0",
            "lsr x1, x1, #12",
            input = const crate::cap::slot::INPUT,
            reply = const crate::cap::slot::REPLY,
            in("x20") first.0 .0, in("x21") first.1 .0, in("x22") first.2[0], in("x23") first.2[1],
            in("x24") second.0 .0, in("x25") second.1 .0, in("x26") second.2,
            out("x27") l1, out("x28") badge, out("x1") l2, out("x2") m0,
            out("x0") _, out("x3") _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            options(nostack),
        );
    }
    (l1, badge, l2, m0)
}
