//! Calls to the VMM: PSCI and lazyfp hypercalls, verdicts, switching off.
use aarch64_cpu::asm::wfi;
use guest::report::verdict_code;
use guest::Failure;
#[cfg(not(feature = "bench"))]
use guest::Tally;
use lazyfp::abi::{hc, psci, Verdict};

use crate::arch::smc;
use crate::println;

/// PSCI SYSTEM_OFF. The VMM stops the VM; should it return, the guest idles.
pub fn system_off() -> ! {
    smc(psci::SYSTEM_OFF, [0; 3]);
    loop {
        wfi();
    }
}

/// PSCI CPU_OFF: the VMM stops this vCPU; should it return, the vCPU idles.
#[cfg(not(feature = "bench"))]
pub fn cpu_off() -> ! {
    smc(psci::CPU_OFF, [0; 3]);
    loop {
        wfi();
    }
}

/// Exits this vCPU has taken so far (x3 of `hc::COUNTERS`).
#[cfg(not(feature = "bench"))]
pub fn exits() -> u64 {
    smc(hc::COUNTERS, [0; 3])[3]
}

/// Reports torture figures with `hc::TORTURE_RESULT` (x1 = iterations, x2 = mismatches,
/// x3 = first bad register or `NO_BAD_REGISTER`).
#[cfg(not(feature = "bench"))]
pub fn torture_result(tally: &Tally) {
    smc(hc::TORTURE_RESULT, tally.result_args());
}

/// Prints the failure, reports it with `hc::VERDICT` (x1 = reason, x2 = got, x3 = expected) and
/// switches the VM off.
pub fn fail(failure: &Failure) -> ! {
    println!("FAIL {failure}");
    smc(hc::VERDICT, failure.verdict_args());
    system_off()
}

/// Reports a pass with `hc::VERDICT` (x1 = 0) and switches the VM off.
pub fn pass() -> ! {
    println!("PASS");
    smc(hc::VERDICT, [verdict_code(Verdict::Pass), 0, 0]);
    system_off()
}
