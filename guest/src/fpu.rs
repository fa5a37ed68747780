//! Phase 2: the FP/SIMD torture (after kvm-unit-tests arm/fpu.c and Linux fp-stress) and the
//! idle-FP check.
use guest::torture::idle_check;
use guest::{CheckResult, ExitKind, FpState, Tally, TORTURE_EXITS, TORTURE_ITERATIONS};

use crate::arch::{idle_fp_hypercalls, torture_step};
use crate::exits::{arm_wake, end_wake};
use crate::vmm;

/// Iterations between two looks at the exit count once past [`TORTURE_ITERATIONS`] (each look
/// is an exit of its own).
const EXIT_CHECK_EVERY: u64 = 4096;

/// Every iteration fills Q0–Q31, FPCR and FPSR with `vcpu`'s pattern of the iteration,
/// provokes one VM exit (or NEON interference) and checks that all of it survived.
pub fn torture(vcpu: u64) -> Tally {
    let mut tally = Tally::new();
    let mut stored = FpState::ZERO;
    let mut iteration = 0;
    while iteration < TORTURE_ITERATIONS || exits_wanted(iteration) {
        let loaded = FpState::pattern(vcpu, iteration);
        let kind = ExitKind::for_iteration(iteration);
        if kind == ExitKind::Wfi {
            arm_wake();
        }
        torture_step(kind, &loaded, &mut stored);
        if kind == ExitKind::Wfi {
            end_wake();
        }
        tally.record(iteration, &loaded, &stored);
        iteration += 1;
    }
    tally
}

/// Past the fixed iterations: whether this vCPU still needs exits to reach `TORTURE_EXITS`
/// (looked up every [`EXIT_CHECK_EVERY`] iterations).
fn exits_wanted(iteration: u64) -> bool {
    match TORTURE_EXITS {
        None => false,
        Some(target) => !iteration.is_multiple_of(EXIT_CHECK_EVERY) || vmm::exits() < target,
    }
}

/// Phase 2b: with the guest's FP state touched (by the torture), hypercalls that interfere with
/// NEON while the guest uses none must not reload that state: `fp_traps` stays put.
pub fn idle() -> CheckResult {
    let (before, after) = idle_fp_hypercalls();
    idle_check(before, after)
}
