//! FP/SIMD register patterns of the torture (in the style of Linux's fp-stress: every value is
//! derived from the vCPU, the iteration and the register number, so a register restored from the
//! wrong slot, the wrong iteration, the wrong half or another vCPU's state shows up), their
//! comparison, and the iteration count fixed at compile time by `LAZYFP_TORTURE_ITERS` (and, for
//! the soak, the exit count `LAZYFP_TORTURE_EXITS`).

use lazyfp::abi::{REG_FPCR, REG_FPSR};

/// Number of Q (V) registers of AArch64 Advanced SIMD.
pub const Q_REGS: usize = 32;

/// FPCR bits the Cortex-A53 implements in AArch64: AHP 26, DN 25, FZ 24, RMode 23:22. The
/// other bits are RES0 or trap enables the A53 does not implement (they read as zero).
pub const FPCR_A53_MASK: u64 = 0b11111 << 22;

/// FPSR cumulative flags: QC 27, IDC 7, IXC 4, UFC 3, OFC 2, DZC 1, IOC 0.
pub const FPSR_FLAGS_MASK: u64 = 1 << 27 | 1 << 7 | 0b1_1111;

/// Iterations when `LAZYFP_TORTURE_ITERS` is not set at build time.
pub const DEFAULT_TORTURE_ITERATIONS: u64 = 100_000;

/// Torture iterations, from `LAZYFP_TORTURE_ITERS` at compile time (a malformed value stops the
/// build with a const-evaluation panic).
pub const TORTURE_ITERATIONS: u64 = parse_iterations(
    option_env!("LAZYFP_TORTURE_ITERS"),
    DEFAULT_TORTURE_ITERATIONS,
);

/// With `LAZYFP_TORTURE_EXITS` set at build time (the soak), the torture goes on past
/// [`TORTURE_ITERATIONS`] until its vCPU has taken this many exits: a soak asks for exits, and
/// the exits an iteration takes differ by policy (only lazy takes FP traps).
pub const TORTURE_EXITS: Option<u64> = match option_env!("LAZYFP_TORTURE_EXITS") {
    None => None,
    text => Some(parse_iterations(text, 1)),
};

/// Salts that keep the FPCR and FPSR streams apart from the Q-register seeds.
const FPCR_SALT: u64 = 0xF9C4_0000_0000_0001;
const FPSR_SALT: u64 = 0xF958_0000_0000_0002;

/// vCPUs whose patterns are kept apart: the vCPU index fills the top three bits of a Q seed.
pub const PATTERN_VCPUS: u64 = 8;
const VCPU_SEED_SHIFT: u32 = 61;
/// Step between the FPCR (and FPSR) values of consecutive vCPUs in one iteration: odd, so
/// `vcpu * stride` differs for every vCPU modulo 32 (and 128), and not 1, so neighbours differ
/// in more than the lowest bit.
const VCPU_STRIDE: u64 = 11;
const _: () = assert!(VCPU_STRIDE % 2 == 1 && PATTERN_VCPUS <= 32);

/// Parses a decimal iteration count at compile time: `None` gives `default`; anything but one
/// or more ASCII digits forming a value in `1..=u64::MAX` panics (a build error in const context).
///
/// ```
/// const N: u64 = guest::pattern::parse_iterations(Some("2500"), 1);
/// assert_eq!(N, 2500);
/// ```
/// ```compile_fail
/// const N: u64 = guest::pattern::parse_iterations(Some("25e2"), 1);
/// ```
pub const fn parse_iterations(text: Option<&str>, default: u64) -> u64 {
    let Some(text) = text else {
        return default;
    };
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        panic!("LAZYFP_TORTURE_ITERS / _EXITS is empty: give a decimal count");
    }
    let mut value: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !b.is_ascii_digit() {
            panic!("LAZYFP_TORTURE_ITERS / _EXITS must be decimal digits only");
        }
        value = match value.checked_mul(10) {
            Some(v) => v,
            None => panic!("LAZYFP_TORTURE_ITERS / _EXITS does not fit in u64"),
        };
        value = match value.checked_add((b - b'0') as u64) {
            Some(v) => v,
            None => panic!("LAZYFP_TORTURE_ITERS / _EXITS does not fit in u64"),
        };
        i += 1;
    }
    if value == 0 {
        panic!("LAZYFP_TORTURE_ITERS / _EXITS must be at least 1");
    }
    value
}

/// splitmix64 (Steele, Lea, Flood): a cheap bijective 64-bit mix.
pub const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Pattern of Q register `reg` of `vcpu` at `iteration`: the low half is splitmix64 of an even
/// seed made from (vcpu, iteration, reg), the high half splitmix64 of the odd seed after it, so
/// no two halves of any registers of any vCPUs (below [`PATTERN_VCPUS`]) at any iterations
/// (below 2^55) share a seed. vCPU 0's seeds are those of the single-vCPU guest.
pub const fn q_pattern(vcpu: u64, iteration: u64, reg: usize) -> u128 {
    let vcpu_bits = (vcpu % PATTERN_VCPUS) << VCPU_SEED_SHIFT;
    let seed = vcpu_bits | ((iteration << 5) | (reg as u64 & 31)) << 1;
    let lo = splitmix64(seed);
    let hi = splitmix64(seed | 1);
    (hi as u128) << 64 | lo as u128
}

/// FPCR value of `vcpu` at `iteration`: only [`FPCR_A53_MASK`] bits; the vCPUs' values of one
/// iteration all differ (the five bits read as a number, stepped by vCPU).
pub const fn fpcr_pattern(vcpu: u64, iteration: u64) -> u64 {
    let base = (splitmix64(iteration ^ FPCR_SALT) & FPCR_A53_MASK) >> 22;
    (base.wrapping_add(vcpu.wrapping_mul(VCPU_STRIDE)) & 0x1f) << 22
}

/// FPSR value of `vcpu` at `iteration`: only [`FPSR_FLAGS_MASK`] bits; the vCPUs' values of one
/// iteration all differ (the seven flags read as a number, stepped by vCPU).
pub const fn fpsr_pattern(vcpu: u64, iteration: u64) -> u64 {
    let base = fpsr_index(splitmix64(iteration ^ FPSR_SALT));
    fpsr_flags(base.wrapping_add(vcpu.wrapping_mul(VCPU_STRIDE)) & 0x7f)
}

/// The seven FPSR flags (bits 0–4, 7, 27) packed into bits 0–6.
const fn fpsr_index(fpsr: u64) -> u64 {
    fpsr & 0x1f | (fpsr >> 7 & 1) << 5 | (fpsr >> 27 & 1) << 6
}

/// Inverse of [`fpsr_index`].
const fn fpsr_flags(index: u64) -> u64 {
    index & 0x1f | (index >> 5 & 1) << 7 | (index >> 6 & 1) << 27
}

/// The guest's FP/SIMD state as the torture loads and stores it: Q0–Q31 at offset 16 × n (the
/// layout of `stp q`/`ldp q` with immediate offsets), then FPSR and FPCR.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpState {
    pub q: [u128; Q_REGS],
    pub fpsr: u64,
    pub fpcr: u64,
}

const _: () = assert!(core::mem::offset_of!(FpState, q) == 0);
const _: () = assert!(core::mem::size_of::<[u128; Q_REGS]>() == 512);

impl FpState {
    pub const ZERO: Self = Self {
        q: [0; Q_REGS],
        fpsr: 0,
        fpcr: 0,
    };

    /// The state the torture of `vcpu` loads at `iteration`.
    pub const fn pattern(vcpu: u64, iteration: u64) -> Self {
        let mut q = [0; Q_REGS];
        let mut reg = 0;
        while reg < Q_REGS {
            q[reg] = q_pattern(vcpu, iteration, reg);
            reg += 1;
        }
        Self {
            q,
            fpsr: fpsr_pattern(vcpu, iteration),
            fpcr: fpcr_pattern(vcpu, iteration),
        }
    }

    /// Registers that differ between `self` (expected) and `got`: bit n for Qn, bit
    /// [`REG_FPSR`] for FPSR, bit [`REG_FPCR`] for FPCR.
    pub fn mismatch_mask(&self, got: &Self) -> u64 {
        let mut mask = 0;
        for (reg, (want, have)) in self.q.iter().zip(got.q.iter()).enumerate() {
            if want != have {
                mask |= 1 << reg;
            }
        }
        if self.fpsr != got.fpsr {
            mask |= 1 << REG_FPSR;
        }
        if self.fpcr != got.fpcr {
            mask |= 1 << REG_FPCR;
        }
        mask
    }

    /// The lowest-numbered register that differs (0–31, [`REG_FPSR`], [`REG_FPCR`]), if any.
    pub fn first_mismatch(&self, got: &Self) -> Option<u64> {
        first_register(self.mismatch_mask(got))
    }
}

/// Lowest register number set in a [`FpState::mismatch_mask`].
pub const fn first_register(mask: u64) -> Option<u64> {
    if mask == 0 {
        None
    } else {
        Some(mask.trailing_zeros() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The single-vCPU guest's formulas, before patterns took a vCPU.
    fn q_pattern_v0(iteration: u64, reg: usize) -> u128 {
        let seed = ((iteration << 5) | reg as u64) << 1;
        (splitmix64(seed | 1) as u128) << 64 | splitmix64(seed) as u128
    }

    #[test]
    fn vcpu_0_patterns_are_the_single_vcpu_guests() {
        for i in [0, 1, 31, 32, 99_999, 1 << 40] {
            for r in 0..Q_REGS {
                assert_eq!(q_pattern(0, i, r), q_pattern_v0(i, r), "Q{r}@{i}");
            }
            assert_eq!(
                fpcr_pattern(0, i),
                splitmix64(i ^ FPCR_SALT) & FPCR_A53_MASK
            );
            assert_eq!(
                fpsr_pattern(0, i),
                splitmix64(i ^ FPSR_SALT) & FPSR_FLAGS_MASK
            );
        }
    }

    #[test]
    fn fpcr_and_fpsr_of_one_iteration_differ_between_every_two_vcpus() {
        for i in 0..2_000 {
            let fpcr: HashSet<u64> = (0..PATTERN_VCPUS).map(|v| fpcr_pattern(v, i)).collect();
            let fpsr: HashSet<u64> = (0..PATTERN_VCPUS).map(|v| fpsr_pattern(v, i)).collect();
            assert_eq!(fpcr.len(), PATTERN_VCPUS as usize, "FPCR at iteration {i}");
            assert_eq!(fpsr.len(), PATTERN_VCPUS as usize, "FPSR at iteration {i}");
        }
    }

    #[test]
    fn another_vcpus_state_mismatches_in_every_register() {
        for i in [0, 5, 1000] {
            let mine = FpState::pattern(1, i);
            for other in [0, 2, 3, 7] {
                let theirs = FpState::pattern(other, i);
                let all = ((1u64 << Q_REGS) - 1) | 1 << REG_FPSR | 1 << REG_FPCR;
                assert_eq!(mine.mismatch_mask(&theirs), all, "vCPU 1 vs {other} at {i}");
            }
        }
    }

    #[test]
    fn fpsr_index_round_trips_the_seven_flags() {
        for index in 0..128 {
            let flags = fpsr_flags(index);
            assert_eq!(flags & !FPSR_FLAGS_MASK, 0);
            assert_eq!(fpsr_index(flags), index);
        }
        assert_eq!(fpsr_flags(0x7f), FPSR_FLAGS_MASK);
    }

    #[test]
    fn q_patterns_differ_across_vcpus_registers_iterations_and_halves() {
        let mut halves = HashSet::new();
        for vcpu in 0..PATTERN_VCPUS {
            for i in [0, 1, 2, 63, 64, 99_999, 1 << 40, (1 << 55) - 1] {
                for r in 0..Q_REGS {
                    let v = q_pattern(vcpu, i, r);
                    let at = format!("vCPU {vcpu} Q{r}@{i}");
                    assert!(halves.insert(v as u64), "low half of {at} repeats");
                    assert!(halves.insert((v >> 64) as u64), "high half of {at} repeats");
                }
            }
        }
    }

    #[test]
    fn consecutive_iterations_change_every_register() {
        for i in 0..200 {
            let a = FpState::pattern(0, i);
            let b = FpState::pattern(0, i + 1);
            assert!(
                a.q.iter().zip(b.q.iter()).all(|(x, y)| x != y),
                "iteration {i}"
            );
        }
    }

    #[test]
    fn splitmix_matches_reference_values() {
        // First outputs of the reference splitmix64 generator seeded with 0 (state advances by
        // the golden gamma; our function mixes state + gamma).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn fpcr_pattern_stays_within_a53_bits_and_covers_them() {
        let mut seen_set = 0;
        let mut seen_clear = 0;
        let mut values = HashSet::new();
        for vcpu in 0..PATTERN_VCPUS {
            for i in 0..10_000 {
                let v = fpcr_pattern(vcpu, i);
                assert_eq!(v & !FPCR_A53_MASK, 0, "vCPU {vcpu} iteration {i}: {v:#x}");
                seen_set |= v;
                seen_clear |= !v & FPCR_A53_MASK;
                values.insert(v);
            }
        }
        assert_eq!(
            seen_set, FPCR_A53_MASK,
            "every A53 FPCR bit is set sometimes"
        );
        assert_eq!(
            seen_clear, FPCR_A53_MASK,
            "every A53 FPCR bit is clear sometimes"
        );
        assert_eq!(values.len(), 32, "all AHP/DN/FZ/RMode combinations occur");
    }

    #[test]
    fn fpsr_pattern_stays_within_flag_bits_and_covers_them() {
        let mut seen = 0;
        for vcpu in 0..PATTERN_VCPUS {
            for i in 0..10_000 {
                let v = fpsr_pattern(vcpu, i);
                assert_eq!(v & !FPSR_FLAGS_MASK, 0, "vCPU {vcpu} iteration {i}: {v:#x}");
                seen |= v;
            }
        }
        assert_eq!(seen, FPSR_FLAGS_MASK);
        assert_eq!(FPSR_FLAGS_MASK, 0x0800_009F);
        assert_eq!(FPCR_A53_MASK, 0x07C0_0000);
    }

    #[test]
    fn fpcr_and_fpsr_streams_are_not_the_same_sequence() {
        let differ = (0..64)
            .filter(|&i| fpcr_pattern(0, i) >> 22 != fpsr_pattern(0, i) & 0x1f)
            .count();
        assert!(differ > 32);
    }

    #[test]
    fn identical_states_have_no_mismatch() {
        let s = FpState::pattern(0, 7);
        assert_eq!(s.mismatch_mask(&s), 0);
        assert_eq!(s.first_mismatch(&s), None);
    }

    #[test]
    fn compare_reports_the_first_mismatching_register() {
        let want = FpState::pattern(0, 42);
        let mut got = want;
        got.q[17] ^= 1 << 100; // a flipped bit in the high half
        got.q[5] ^= 1; // and one in the low half of a lower register
        assert_eq!(want.first_mismatch(&got), Some(5));
        assert_eq!(want.mismatch_mask(&got), 1 << 5 | 1 << 17);

        let mut got = want;
        got.q[31] = want.q[30]; // a register restored from its neighbour's slot
        assert_eq!(want.first_mismatch(&got), Some(31));
    }

    #[test]
    fn compare_reports_fpsr_and_fpcr_by_their_abi_numbers() {
        let want = FpState::pattern(0, 3);
        let mut got = want;
        got.fpcr ^= 1 << 24;
        assert_eq!(want.first_mismatch(&got), Some(REG_FPCR));
        got.fpsr ^= 1 << 27;
        assert_eq!(want.first_mismatch(&got), Some(REG_FPSR));
        assert_eq!(want.mismatch_mask(&got), 1 << REG_FPSR | 1 << REG_FPCR);
        got.q[0] = 0;
        assert_eq!(want.first_mismatch(&got), Some(0));
    }

    #[test]
    fn stale_state_from_the_previous_iteration_is_caught() {
        let want = FpState::pattern(0, 1000);
        let stale = FpState::pattern(0, 999);
        assert_eq!(want.mismatch_mask(&stale) & 0xFFFF_FFFF, 0xFFFF_FFFF);
    }

    #[test]
    fn parse_iterations_accepts_digits_and_defaults() {
        assert_eq!(parse_iterations(None, 5), 5);
        assert_eq!(parse_iterations(Some("1"), 5), 1);
        assert_eq!(parse_iterations(Some("100000"), 5), 100_000);
        assert_eq!(parse_iterations(Some("0042"), 5), 42);
        assert_eq!(parse_iterations(Some("18446744073709551615"), 5), u64::MAX);
        const AT_COMPILE_TIME: u64 = parse_iterations(Some("250"), 1);
        assert_eq!(AT_COMPILE_TIME, 250);
    }

    #[test]
    #[should_panic(expected = "decimal digits only")]
    fn parse_iterations_rejects_letters() {
        parse_iterations(Some("10k"), 1);
    }

    #[test]
    #[should_panic(expected = "decimal digits only")]
    fn parse_iterations_rejects_signs_and_spaces() {
        parse_iterations(Some(" -1"), 1);
    }

    #[test]
    #[should_panic(expected = "is empty")]
    fn parse_iterations_rejects_empty() {
        parse_iterations(Some(""), 1);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn parse_iterations_rejects_overflow() {
        parse_iterations(Some("18446744073709551616"), 1);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn parse_iterations_rejects_zero() {
        parse_iterations(Some("0"), 1);
    }

    #[test]
    fn build_time_iteration_count_follows_the_environment() {
        let expected = match option_env!("LAZYFP_TORTURE_ITERS") {
            None => DEFAULT_TORTURE_ITERATIONS,
            Some(text) => text.parse().expect("decimal"),
        };
        assert_eq!(TORTURE_ITERATIONS, expected);
        let exits = option_env!("LAZYFP_TORTURE_EXITS").map(|t| t.parse().expect("decimal"));
        assert_eq!(TORTURE_EXITS, exits);
    }
}
