//! Secondary vCPUs: vCPU 0 starts them with PSCI CPU_ON, each runs its own FP torture and
//! publishes its tally, and vCPU 0 waits until AFFINITY_INFO says they are off.
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0};
use guest::hw::timer;
use guest::smp::{
    await_affinity, bad_entry_refused, cpu_on_answer, Budget, CpuOn, TallyBoard, MAX_VCPUS,
};
use guest::{expect_eq, CheckResult, Failure, Tally};
use lazyfp::abi::{psci, FailReason};

use crate::arch::smc;
use crate::exits::{counter, gic_cpu_setup, send_wake_sgi, sleep_ms};
use crate::{boot, fpu, vmm};

/// Every vCPU's final tally (vCPU 0's included), for vCPU 0's verdict.
pub static TALLIES: TallyBoard = TallyBoard::new();

/// How long a started vCPU may stay ON_PENDING, and how long vCPU 0 waits (after its own
/// torture) for a secondary to switch itself off, sleeping [`POLL_MS`] between polls; the tries
/// bound a counter that stands still or a VMM that never lets WFI sleep.
const POLL_MS: u64 = 1;
const START_WAIT_MS: u64 = 1_000;
const OFF_WAIT_MS: u64 = 120_000;
const MAX_WAIT_TRIES: u64 = 10_000_000;

/// MPIDR of vCPU `index` (Aff0 = index, as the VMM assigns them).
const fn mpidr(index: usize) -> u64 {
    index as u64
}

fn affinity_info(index: usize) -> u64 {
    smc(psci::AFFINITY_INFO_64, [mpidr(index), 0, 0])[0]
}

/// Waits for vCPU `index` to reach AFFINITY_INFO state `want`, sleeping between the calls (a
/// timer-bounded WFI rather than WFE, which a VMM may block like WFI).
fn await_state(index: usize, want: u64, ms: u64) -> CheckResult {
    let ticks = timer::ticks_ms(CNTFRQ_EL0.get(), ms);
    let mut budget = Budget::new(counter(), ticks, MAX_WAIT_TRIES);
    await_affinity(
        want,
        || affinity_info(index),
        || {
            sleep_ms(POLL_MS);
            budget.spend(counter())
        },
    )
}

/// Starts vCPUs 1, 2, … at the secondary entry (context id = vCPU index) until CPU_ON answers
/// INVALID_PARAMETERS or [`MAX_VCPUS`] run. Before each start, CPU_ON at entry 0 (outside guest
/// RAM) must be refused; after it, AFFINITY_INFO must report ON and a second CPU_ON
/// ALREADY_ON. Returns the number of secondaries.
pub fn start_secondaries() -> Result<usize, Failure> {
    let entry = boot::secondary_entry();
    let mut started = 0;
    for index in 1..MAX_VCPUS {
        let on = |entry, context| smc(psci::CPU_ON_64, [mpidr(index), entry, context])[0];
        bad_entry_refused(mpidr(index), on(0, index as u64))?;
        match cpu_on_answer(mpidr(index), on(entry, index as u64))? {
            CpuOn::NoSuchVcpu => break,
            CpuOn::Started => started += 1,
        }
        // Once ON (not ON_PENDING, which CPU_ON would answer), a second CPU_ON is refused.
        await_state(index, psci::AFFINITY_ON, START_WAIT_MS)?;
        // Context id 0 would park the vCPU, were it started again.
        expect_eq(
            "cpu-on-again",
            FailReason::SmpBringUp,
            on(entry, 0),
            psci::ALREADY_ON as u64,
        )?;
    }
    Ok(started)
}

/// A secondary vCPU's life, called by the secondary entry with the MMU and FP on: its own FP
/// torture (vCPU 1 first sends vCPU 0 the wake-up SGI), its TORTURE_RESULT, its tally on the
/// board, then CPU_OFF. It prints nothing: the console is vCPU 0's.
pub extern "C" fn secondary_main(index: u64) -> ! {
    if let Err(failure) = gic_cpu_setup() {
        vmm::fail(&failure);
    }
    if index == 1 {
        send_wake_sgi();
    }
    let tally = fpu::torture(index);
    vmm::torture_result(&tally);
    TALLIES.publish(index as usize, &tally);
    vmm::cpu_off()
}

/// vCPU 0, after its own torture: waits for vCPUs 1..=`secondaries` to switch off and puts
/// their tallies into `tallies` (`None` for a vCPU that published none). Fails if a secondary
/// did not reach OFF in time.
pub fn collect(secondaries: usize, tallies: &mut [Option<Tally>; MAX_VCPUS]) -> CheckResult {
    let mut result = Ok(());
    for (index, slot) in tallies.iter_mut().enumerate().take(secondaries + 1).skip(1) {
        result = result.and(await_state(index, psci::AFFINITY_OFF, OFF_WAIT_MS));
        *slot = TALLIES.read(index);
    }
    result
}
