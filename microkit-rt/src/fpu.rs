//! FP use by the PD itself, for the `eager` policy's VMM (built for a hard-float target).

/// Reads and writes back FPCR: an FP instruction that makes this thread use the FPU, as
/// pre-patch KVM's host did when it restored its FP state after every exit.
#[cfg(target_feature = "neon")]
#[inline(always)]
pub fn touch_fp() {
    // SAFETY: FPCR round trip; changes no state. Only built where the target has FP.
    unsafe {
        core::arch::asm!("mrs {t}, fpcr", "msr fpcr, {t}", t = out(reg) _, options(nomem, nostack));
    }
}

/// Without FP in the target there is nothing to touch (the lazy build).
#[cfg(not(target_feature = "neon"))]
#[inline(always)]
pub fn touch_fp() {}

/// The 32 SIMD&FP registers V0–V31 (128 bits each).
pub type VRegs = [u128; 32];

/// Writes V0–V31 from `regs`.
#[cfg(target_feature = "neon")]
#[inline(never)]
pub fn write_vregs(regs: &VRegs) {
    // SAFETY: loads 512 bytes from a valid, aligned array into the vector registers, which the
    // asm declares clobbered so the compiler keeps nothing live in them.
    unsafe {
        core::arch::asm!(
            "ldp q0, q1, [{p}, #0]", "ldp q2, q3, [{p}, #32]", "ldp q4, q5, [{p}, #64]",
            "ldp q6, q7, [{p}, #96]", "ldp q8, q9, [{p}, #128]", "ldp q10, q11, [{p}, #160]",
            "ldp q12, q13, [{p}, #192]", "ldp q14, q15, [{p}, #224]", "ldp q16, q17, [{p}, #256]",
            "ldp q18, q19, [{p}, #288]", "ldp q20, q21, [{p}, #320]", "ldp q22, q23, [{p}, #352]",
            "ldp q24, q25, [{p}, #384]", "ldp q26, q27, [{p}, #416]", "ldp q28, q29, [{p}, #448]",
            "ldp q30, q31, [{p}, #480]",
            p = in(reg) regs.as_ptr(),
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nostack, readonly),
        );
    }
}

/// Reads V0–V31 as they are now. Called right at the start of a NEON section, before the
/// compiler has had a reason to use vector registers, it sees what the kernel restored.
#[cfg(target_feature = "neon")]
#[inline(never)]
pub fn read_vregs(out: &mut VRegs) {
    // SAFETY: stores the vector registers into a valid, aligned 512-byte array.
    unsafe {
        core::arch::asm!(
            "stp q0, q1, [{p}, #0]", "stp q2, q3, [{p}, #32]", "stp q4, q5, [{p}, #64]",
            "stp q6, q7, [{p}, #96]", "stp q8, q9, [{p}, #128]", "stp q10, q11, [{p}, #160]",
            "stp q12, q13, [{p}, #192]", "stp q14, q15, [{p}, #224]", "stp q16, q17, [{p}, #256]",
            "stp q18, q19, [{p}, #288]", "stp q20, q21, [{p}, #320]", "stp q22, q23, [{p}, #352]",
            "stp q24, q25, [{p}, #384]", "stp q26, q27, [{p}, #416]", "stp q28, q29, [{p}, #448]",
            "stp q30, q31, [{p}, #480]",
            p = in(reg) out.as_mut_ptr(),
            options(nostack),
        );
    }
}

/// A NEON checksum of `data` (per-lane wrapping sums and rotating XORs over 4 × u32 lanes),
/// the workload of the NEON worker; [`checksum_scalar`] is its reference.
#[cfg(target_feature = "neon")]
pub fn checksum_neon(data: &[[u32; 4]]) -> u64 {
    // SAFETY: this function only exists when the target has NEON (cfg above).
    unsafe { checksum_neon_inner(data) }
}

#[cfg(target_feature = "neon")]
#[target_feature(enable = "neon")]
fn checksum_neon_inner(data: &[[u32; 4]]) -> u64 {
    use core::arch::aarch64::*;
    let mut sum = vdupq_n_u32(0);
    let mut mix = vdupq_n_u32(0x9e37_79b9);
    for chunk in data {
        // SAFETY: `chunk` is 16 readable bytes; vld1q_u32 has no alignment requirement.
        let v = unsafe { vld1q_u32(chunk.as_ptr()) };
        sum = vaddq_u32(sum, v);
        // mix = rotl(mix, 5) ^ v
        mix = veorq_u32(vorrq_u32(vshlq_n_u32::<5>(mix), vshrq_n_u32::<27>(mix)), v);
    }
    let mut s = [0u32; 4];
    let mut m = [0u32; 4];
    // SAFETY: stores 16 bytes into each 16-byte array.
    unsafe {
        vst1q_u32(s.as_mut_ptr(), sum);
        vst1q_u32(m.as_mut_ptr(), mix);
    }
    fold(s, m)
}

/// The scalar reference of [`checksum_neon`].
pub fn checksum_scalar(data: &[[u32; 4]]) -> u64 {
    let mut s = [0u32; 4];
    let mut m = [0x9e37_79b9u32; 4];
    for chunk in data {
        for lane in 0..4 {
            s[lane] = s[lane].wrapping_add(chunk[lane]);
            m[lane] = m[lane].rotate_left(5) ^ chunk[lane];
        }
    }
    fold(s, m)
}

fn fold(s: [u32; 4], m: [u32; 4]) -> u64 {
    s.iter().chain(m.iter()).fold(0u64, |acc, &x| acc.rotate_left(13) ^ x as u64)
}
