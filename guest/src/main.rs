//! lazyfp's test guest: a bare-metal AArch64 program that runs at EL1 as the VM of lazyfp's VMM.
//!
//! 1. Exit kinds ([`exits`]): HVC and SMC hypercalls, PSCI, MMIO reads and writes, trapped
//!    system registers, a CapFault, virtual-timer interrupts through the VGIC, a blocking WFI;
//!    each answer is checked against `lazyfp::abi`. Then the hostile steps ([`adversary`],
//!    docs/hostile.md): mistakes on purpose, each answered as hardware would.
//! 2. Secondary vCPUs ([`cpus`]): PSCI CPU_ON for vCPUs 1, 2, … until one does not exist; with
//!    a vCPU 1, its SGI must wake vCPU 0 from WFI.
//! 3. FP torture ([`fpu`]) on every vCPU at once, each with its own patterns: all of Q0–Q31,
//!    FPSR and FPCR must survive every kind of exit and NEON interference by another PD; then
//!    the idle-FP check on vCPU 0.
//!
//! The outcome goes to the VMM as `hc::TORTURE_RESULT` (per vCPU) and `hc::VERDICT` (vCPU 0,
//! covering all), then PSCI SYSTEM_OFF. With no secondary the run is that of a single vCPU.
//! Built for `aarch64-unknown-none` only; on other targets this is an empty program so that the
//! host can build and test the library.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", not(target_arch = "aarch64")))]
compile_error!("the test guest is an AArch64 program: build it for aarch64-unknown-none");

#[cfg(all(target_os = "none", not(feature = "bench")))]
mod adversary;
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
mod cpus;
#[cfg(all(target_os = "none", not(feature = "bench")))]
mod exits;
#[cfg(all(target_os = "none", not(feature = "bench")))]
mod fpu;
#[cfg(target_os = "none")]
#[cfg_attr(feature = "bench", allow(dead_code))]
mod gic;
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

/// The test guest: exit-kind checks, the secondaries, then the FP torture on every vCPU.
#[cfg(all(target_os = "none", not(feature = "bench")))]
fn tests() -> ! {
    use guest::smp::{verdict, MAX_VCPUS};
    use guest::{TORTURE_EXITS, TORTURE_ITERATIONS};

    println!("lazyfp test guest (abi {})", lazyfp::abi::hc::ABI_VERSION);
    if let Err(failure) = exits::run() {
        vmm::fail(&failure);
    }
    println!("exit kinds ok");
    if let Err(failure) = adversary::run() {
        vmm::fail(&failure);
    }
    println!("hostile steps ok");

    let secondaries = match cpus::start_secondaries() {
        Ok(0) => 0,
        Ok(n) => match exits::sgi_wake() {
            Ok(()) => {
                println!("secondary vcpus={n}, sgi wake ok");
                n
            }
            Err(failure) => vmm::fail(&failure),
        },
        Err(failure) => vmm::fail(&failure),
    };

    match TORTURE_EXITS {
        None => println!("fp torture of {TORTURE_ITERATIONS} iterations"),
        Some(n) => {
            println!("fp torture of {TORTURE_ITERATIONS} iterations, then on to {n} exits a vcpu")
        }
    }
    let tally = fpu::torture(0);
    let idle = fpu::idle();
    vmm::torture_result(&tally);
    let mut tallies = [None; MAX_VCPUS];
    tallies[0] = Some(tally);
    let stopped = cpus::collect(secondaries, &mut tallies);
    let tallies = &tallies[..=secondaries];
    print_tallies(tallies);
    match verdict(tallies).and(stopped).and(idle) {
        Ok(()) => vmm::pass(),
        Err(failure) => vmm::fail(&failure),
    }
}

/// One console line per vCPU's torture (the single-vCPU run's lines carry no vCPU number).
#[cfg(all(target_os = "none", not(feature = "bench")))]
fn print_tallies(tallies: &[Option<guest::Tally>]) {
    let single = tallies.len() == 1;
    for (vcpu, tally) in tallies.iter().enumerate() {
        match tally {
            Some(t) if single => {
                println!(
                    "torture iterations={} mismatches={}",
                    t.iterations, t.mismatches
                )
            }
            Some(t) => println!(
                "torture vcpu={vcpu} iterations={} mismatches={}",
                t.iterations, t.mismatches
            ),
            None => println!("torture vcpu={vcpu} published no tally"),
        }
        if let Some(t) = tally.filter(|t| t.mismatches > 0) {
            println!("bad registers mask={:#x}", t.bad_registers);
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
