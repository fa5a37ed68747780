//! The FP/SIMD state fpstress loads and checks, and the patterns it is filled with.
//!
//! Every vector register's pattern carries its owner in clear, so a value that turns up in the
//! wrong place says where it came from: bits 127:96 the pid, 95:88 the register, 87:64 the low
//! 24 bits of the generation, and 63:0 a hash of all three. FPSR and FPCR get hashed values
//! restricted to the bits a Cortex-A53 implements.

/// Register numbers in reports: V0–V31 are 0–31, then FPSR and FPCR, as lazyfp's VMM numbers
/// them in its torture reports (`REG_FPSR`, `REG_FPCR` in src/abi.rs).
pub const REG_FPSR: usize = 32;
pub const REG_FPCR: usize = 33;
/// Registers compared: V0–V31, FPSR, FPCR.
pub const NUM_REGS: usize = 34;
const NUM_VREGS: usize = 32;

/// FPCR bits a Cortex-A53 implements: AHP (26), DN (25), FZ (24) and RMode (23:22). The trap
/// enables and FZ16 are RAZ/WI there, so a pattern using them could not be read back.
pub const FPCR_MASK: u64 = 1 << 26 | 1 << 25 | 1 << 24 | 0b11 << 22;
/// FPSR bits a Cortex-A53 implements: QC (27) and the cumulative exception flags IDC (7),
/// IXC (4), UFC (3), OFC (2), DZC (1), IOC (0).
pub const FPSR_MASK: u64 = 1 << 27 | 1 << 7 | 0b1_1111;

/// V0–V31, FPSR and FPCR, laid out for the asm that loads and stores them: `v` at offset 0 (16
/// bytes per register, little-endian, as `str q` stores them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct FpState {
    pub v: [u128; NUM_VREGS],
    pub fpsr: u64,
    pub fpcr: u64,
}

const _: () = assert!(core::mem::offset_of!(FpState, v) == 0);
const _: () = assert!(core::mem::size_of::<[u128; NUM_VREGS]>() == 512);

impl FpState {
    pub const ZERO: Self = Self {
        v: [0; NUM_VREGS],
        fpsr: 0,
        fpcr: 0,
    };

    /// Register `reg` (numbered as in reports), widened to 128 bits.
    pub fn reg(&self, reg: usize) -> u128 {
        match reg {
            REG_FPSR => self.fpsr.into(),
            REG_FPCR => self.fpcr.into(),
            _ => self.v[reg],
        }
    }
}

/// splitmix64's finaliser: a bijection on u64 that spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(pid: u32, reg: usize, generation: u64) -> u64 {
    // `reg` < 64 fits below the generation's bits; the pid is folded in by a second round.
    mix(mix(generation << 6 | reg as u64) ^ u64::from(pid))
}

/// The state process `pid` loads in `generation`.
pub fn expected(pid: u32, generation: u64) -> FpState {
    let mut state = FpState::ZERO;
    for (reg, v) in state.v.iter_mut().enumerate() {
        let owner = u64::from(pid) << 32 | (reg as u64) << 24 | (generation & 0xFF_FFFF);
        *v = u128::from(owner) << 64 | u128::from(hash(pid, reg, generation));
    }
    state.fpsr = hash(pid, REG_FPSR, generation) & FPSR_MASK;
    state.fpcr = hash(pid, REG_FPCR, generation) & FPCR_MASK;
    state
}

/// A register that did not hold what was loaded into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub reg: usize,
    pub expected: u128,
    pub actual: u128,
}

/// The lowest-numbered register of `actual` that differs from `expected`.
pub fn first_mismatch(expected: &FpState, actual: &FpState) -> Option<Mismatch> {
    (0..NUM_REGS)
        .find(|&reg| expected.reg(reg) != actual.reg(reg))
        .map(|reg| Mismatch {
            reg,
            expected: expected.reg(reg),
            actual: actual.reg(reg),
        })
}

/// How many registers of `actual` differ from `expected`.
pub fn mismatches(expected: &FpState, actual: &FpState) -> u64 {
    (0..NUM_REGS)
        .filter(|&reg| expected.reg(reg) != actual.reg(reg))
        .count() as u64
}

/// `v0`…`v31`, `fpsr`, `fpcr`.
pub fn reg_name(reg: usize) -> String {
    match reg {
        REG_FPSR => "fpsr".to_owned(),
        REG_FPCR => "fpcr".to_owned(),
        _ => format!("v{reg}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn patterns_are_deterministic_and_name_their_owner() {
        let state = expected(1234, 77);
        assert_eq!(state, expected(1234, 77));
        for (reg, &v) in state.v.iter().enumerate() {
            assert_eq!((v >> 96) as u32, 1234);
            assert_eq!((v >> 88) as u8 as usize, reg);
            assert_eq!((v >> 64) as u64 & 0xFF_FFFF, 77);
        }
    }

    #[test]
    fn patterns_differ_between_registers_processes_and_generations() {
        let mut seen = HashSet::new();
        for pid in [1, 2, 1000, u32::MAX] {
            for generation in [0, 1, 2, 1 << 24, u64::MAX] {
                for v in expected(pid, generation).v {
                    assert!(seen.insert(v), "pattern repeated: {v:#x}");
                }
            }
        }
        // The low halves alone differ too (a register half restored from elsewhere shows).
        let lows: HashSet<u64> = seen.iter().map(|&v| v as u64).collect();
        assert_eq!(lows.len(), seen.len());
    }

    #[test]
    fn control_and_status_stay_within_the_implemented_bits_and_vary() {
        let mut fpsrs = HashSet::new();
        let mut fpcrs = HashSet::new();
        for generation in 0..4096 {
            let state = expected(42, generation);
            assert_eq!(state.fpsr & !FPSR_MASK, 0);
            assert_eq!(state.fpcr & !FPCR_MASK, 0);
            fpsrs.insert(state.fpsr);
            fpcrs.insert(state.fpcr);
        }
        // Every implemented bit is exercised: 7 FPSR bits, 5 FPCR bits (RMode is two).
        assert_eq!(fpsrs.len(), 1 << 7);
        assert_eq!(fpcrs.len(), 1 << 5);
    }

    #[test]
    fn mismatches_are_found_and_counted() {
        let good = expected(7, 3);
        assert_eq!(first_mismatch(&good, &good), None);
        assert_eq!(mismatches(&good, &good), 0);

        let mut bad = good;
        bad.v[5] ^= 1 << 100;
        bad.v[31] = 0;
        bad.fpcr = 0b01 << 22;
        let first = first_mismatch(&good, &bad).expect("a mismatch");
        assert_eq!(first.reg, 5);
        assert_eq!(first.expected, good.v[5]);
        assert_eq!(first.actual, bad.v[5]);
        let fpcr_differs = usize::from(good.fpcr != bad.fpcr);
        assert_eq!(mismatches(&good, &bad), (2 + fpcr_differs) as u64);

        let mut bad_fpsr = good;
        bad_fpsr.fpsr ^= 1 << 27;
        let first = first_mismatch(&good, &bad_fpsr).expect("a mismatch");
        assert_eq!(first.reg, REG_FPSR);
        assert_eq!(reg_name(first.reg), "fpsr");
    }

    #[test]
    fn register_names() {
        assert_eq!(reg_name(0), "v0");
        assert_eq!(reg_name(31), "v31");
        assert_eq!(reg_name(REG_FPSR), "fpsr");
        assert_eq!(reg_name(REG_FPCR), "fpcr");
    }
}
