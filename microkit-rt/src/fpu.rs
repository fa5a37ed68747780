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
    s.iter()
        .chain(m.iter())
        .fold(0u64, |acc, &x| acc.rotate_left(13) ^ x as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neon_checksum_matches_scalar_reference() {
        let mut x = 0x1234_5678u32;
        let data: Vec<[u32; 4]> = (0..1000)
            .map(|_| {
                core::array::from_fn(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x
                })
            })
            .collect();
        assert_eq!(checksum_neon(&data), checksum_scalar(&data));
        let mut other = data.clone();
        other[500][2] ^= 1;
        assert_ne!(
            checksum_neon(&other),
            checksum_scalar(&data),
            "one bit changes the sum"
        );
        assert_eq!(checksum_neon(&[]), checksum_scalar(&[]));
    }
}
