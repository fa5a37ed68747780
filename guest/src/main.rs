//! lazyfp's test guest: a bare-metal AArch64 program that runs at EL1 as the VM of lazyfp's VMM.
//!
//! 1. Exit kinds ([`exits`]): HVC and SMC hypercalls, PSCI, MMIO reads and writes, WFI, trapped
//!    system registers, a CapFault, virtual-timer interrupts through the VGIC; each answer is
//!    checked against `lazyfp::abi`.
//! 2. FP torture ([`fpu`]): all of Q0–Q31, FPSR and FPCR must survive every kind of exit and NEON
//!    interference by another PD; then the idle-FP check.
//!
//! The outcome goes to the VMM as `hc::TORTURE_RESULT` and `hc::VERDICT`, then PSCI SYSTEM_OFF.
//! Built for `aarch64-unknown-none` only; on other targets this is an empty program so that the
//! host can build and test the library.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", not(target_arch = "aarch64")))]
compile_error!("the test guest is an AArch64 program: build it for aarch64-unknown-none");

// The benchmark guest uses only part of the test guest's instructions.
#[cfg(target_os = "none")]
#[cfg_attr(feature = "bench", allow(dead_code))]
mod arch;
#[cfg(all(target_os = "none", feature = "bench"))]
mod bench;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(all(target_os = "none", not(feature = "bench")))]
mod exits;
#[cfg(all(target_os = "none", not(feature = "bench")))]
mod fpu;
#[cfg(target_os = "none")]
mod vmm;

/// Called by `_start` with the MMU, caches and FP/SIMD on (x0 = 0 from the VMM).
#[cfg(target_os = "none")]
extern "C" fn rust_main(_x0: u64, _x1: u64) -> ! {
    #[cfg(feature = "bench")]
    {
        bench::run();
        vmm::pass()
    }
    #[cfg(not(feature = "bench"))]
    tests()
}

/// The test guest: exit-kind checks, then the FP torture.
#[cfg(all(target_os = "none", not(feature = "bench")))]
fn tests() -> ! {
    println!("lazyfp test guest (abi {})", lazyfp::abi::hc::ABI_VERSION);
    if let Err(failure) = exits::run() {
        vmm::fail(&failure);
    }
    println!("exit kinds ok");

    let tally = fpu::torture();
    let idle = fpu::idle();
    vmm::torture_result(&tally);
    println!(
        "torture iterations={} mismatches={}",
        tally.iterations, tally.mismatches
    );
    if tally.mismatches > 0 {
        println!("bad registers mask={:#x}", tally.bad_registers);
    }
    match tally.check().and(idle) {
        Ok(()) => vmm::pass(),
        Err(failure) => vmm::fail(&failure),
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
