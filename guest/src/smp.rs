//! Several vCPUs: what PSCI CPU_ON and AFFINITY_INFO answers mean for the secondary bring-up,
//! the wait budgets, the tallies the secondaries publish for vCPU 0, and the verdict over all
//! vCPUs. The guest is one address space, so the board is a plain static of atomics.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lazyfp::abi::{psci, FailReason, NO_BAD_REGISTER};

use crate::report::{CheckResult, Failure};
use crate::torture::Tally;

/// vCPUs the guest handles at most: the CPU interfaces a GICv2 distributor can target.
pub const MAX_VCPUS: usize = 8;

/// What CPU_ON's x0 means for the probe of MPIDR `mpidr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuOn {
    /// SUCCESS: the vCPU is starting at the secondary entry.
    Started,
    /// INVALID_PARAMETERS: no such vCPU; the probe ends.
    NoSuchVcpu,
}

/// Interprets CPU_ON's answer for `mpidr`. Anything but SUCCESS or INVALID_PARAMETERS (say,
/// ALREADY_ON for a vCPU nobody started) fails SmpBringUp with x2 = answer, x3 = MPIDR.
pub fn cpu_on_answer(mpidr: u64, answer: u64) -> Result<CpuOn, Failure> {
    match answer as i64 {
        psci::SUCCESS => Ok(CpuOn::Started),
        psci::INVALID_PARAMETERS => Ok(CpuOn::NoSuchVcpu),
        _ => Err(
            Failure::new("cpu-on", FailReason::SmpBringUp, answer, mpidr)
                .labelled("answer", "mpidr"),
        ),
    }
}

/// CPU_ON of `mpidr` at an entry outside guest RAM must start nothing: INVALID_ADDRESS (PSCI,
/// for a vCPU that exists) or INVALID_PARAMETERS (no such vCPU) pass; anything else fails
/// SmpBringUp with x2 = answer, x3 = MPIDR.
pub fn bad_entry_refused(mpidr: u64, answer: u64) -> CheckResult {
    match answer as i64 {
        psci::INVALID_ADDRESS | psci::INVALID_PARAMETERS => Ok(()),
        _ => Err(
            Failure::new("cpu-on-entry", FailReason::SmpBringUp, answer, mpidr)
                .labelled("answer", "mpidr"),
        ),
    }
}

/// AFFINITY_INFO answers a vCPU passes through on the way to `want`: ON_PENDING between CPU_ON
/// and its first instruction, and (on the way to OFF) ON while it runs.
const fn is_transient(want: u64, answer: u64) -> bool {
    answer == psci::AFFINITY_ON_PENDING
        || (want == psci::AFFINITY_OFF && answer == psci::AFFINITY_ON)
}

/// Polls AFFINITY_INFO (`poll`) until it answers `want` (ON or OFF). Between polls `wait` waits
/// and returns false once the caller's budget is spent. An answer that is neither `want` nor a
/// transient state fails at once. Failures: SmpBringUp, x2 = last answer, x3 = `want`.
pub fn await_affinity(
    want: u64,
    mut poll: impl FnMut() -> u64,
    mut wait: impl FnMut() -> bool,
) -> CheckResult {
    let check = if want == psci::AFFINITY_OFF {
        "affinity-off"
    } else {
        "affinity-on"
    };
    loop {
        let answer = poll();
        if answer == want {
            return Ok(());
        }
        if !is_transient(want, answer) || !wait() {
            return Err(Failure::new(check, FailReason::SmpBringUp, answer, want)
                .labelled("answer", "want"));
        }
    }
}

/// A bounded wait: at most `tries` waits and until the counter reaches `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    end: u64,
    tries: u64,
}

impl Budget {
    /// `ticks` of the counter from `now`, and at most `tries` waits.
    pub const fn new(now: u64, ticks: u64, tries: u64) -> Self {
        Self {
            end: now.saturating_add(ticks),
            tries,
        }
    }

    /// Spends one wait at counter value `now`: false once the tries or the time are used up.
    pub fn spend(&mut self, now: u64) -> bool {
        if self.tries == 0 || now >= self.end {
            return false;
        }
        self.tries -= 1;
        true
    }
}

/// One vCPU's published tally. `done` is stored last (Release) and read first (Acquire).
struct Slot {
    done: AtomicBool,
    iterations: AtomicU64,
    mismatches: AtomicU64,
    first_register: AtomicU64,
    first_iteration: AtomicU64,
    bad_registers: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Self {
            done: AtomicBool::new(false),
            iterations: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            first_register: AtomicU64::new(NO_BAD_REGISTER),
            first_iteration: AtomicU64::new(0),
            bad_registers: AtomicU64::new(0),
        }
    }
}

/// The tallies of all vCPUs' tortures, each written once by its vCPU and read by vCPU 0.
pub struct TallyBoard {
    slots: [Slot; MAX_VCPUS],
}

impl Default for TallyBoard {
    fn default() -> Self {
        Self::new()
    }
}

impl TallyBoard {
    pub const fn new() -> Self {
        Self {
            slots: [const { Slot::new() }; MAX_VCPUS],
        }
    }

    /// Publishes `vcpu`'s final tally; false (and nothing stored) for a vCPU beyond
    /// [`MAX_VCPUS`].
    pub fn publish(&self, vcpu: usize, tally: &Tally) -> bool {
        let Some(slot) = self.slots.get(vcpu) else {
            return false;
        };
        let (register, iteration) = tally.first.unwrap_or((NO_BAD_REGISTER, 0));
        slot.iterations.store(tally.iterations, Ordering::Relaxed);
        slot.mismatches.store(tally.mismatches, Ordering::Relaxed);
        slot.first_register.store(register, Ordering::Relaxed);
        slot.first_iteration.store(iteration, Ordering::Relaxed);
        slot.bad_registers
            .store(tally.bad_registers, Ordering::Relaxed);
        slot.done.store(true, Ordering::Release);
        true
    }

    /// `vcpu`'s tally, once published.
    pub fn read(&self, vcpu: usize) -> Option<Tally> {
        let slot = self.slots.get(vcpu)?;
        if !slot.done.load(Ordering::Acquire) {
            return None;
        }
        let register = slot.first_register.load(Ordering::Relaxed);
        Some(Tally {
            iterations: slot.iterations.load(Ordering::Relaxed),
            mismatches: slot.mismatches.load(Ordering::Relaxed),
            first: (register != NO_BAD_REGISTER)
                .then(|| (register, slot.first_iteration.load(Ordering::Relaxed))),
            bad_registers: slot.bad_registers.load(Ordering::Relaxed),
        })
    }
}

/// The torture verdict over vCPUs 0, 1, … (`tallies[i]` = vCPU i's, `None` if it never
/// published): passes only if every vCPU reported and none mismatched. The first failing vCPU
/// decides: its FpMismatch (register, iteration), or SmpBringUp with x2 = the silent vCPU.
pub fn verdict(tallies: &[Option<Tally>]) -> CheckResult {
    tallies
        .iter()
        .enumerate()
        .try_for_each(|(vcpu, tally)| match tally {
            Some(tally) => tally.check(),
            None => Err(
                Failure::new("vcpu-tally", FailReason::SmpBringUp, vcpu as u64, 1)
                    .labelled("vcpu", "published"),
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::FpState;
    use std::sync::Arc;

    fn tally(vcpu: u64, bad_at: Option<u64>) -> Tally {
        let mut t = Tally::new();
        for i in 0..50 {
            let want = FpState::pattern(vcpu, i);
            let mut got = want;
            if bad_at == Some(i) {
                got.q[3] = FpState::pattern(0, i).q[3];
            }
            t.record(i, &want, &got);
        }
        t
    }

    #[test]
    fn cpu_on_success_starts_and_invalid_parameters_ends_the_probe() {
        assert_eq!(cpu_on_answer(1, 0), Ok(CpuOn::Started));
        assert_eq!(
            cpu_on_answer(2, psci::INVALID_PARAMETERS as u64),
            Ok(CpuOn::NoSuchVcpu)
        );
        let f = cpu_on_answer(3, psci::ALREADY_ON as u64).unwrap_err();
        assert_eq!(
            f.verdict_args(),
            [FailReason::SmpBringUp as u64, psci::ALREADY_ON as u64, 3]
        );
        assert!(cpu_on_answer(1, psci::NOT_SUPPORTED as u64).is_err());
    }

    #[test]
    fn cpu_on_outside_guest_ram_must_start_nothing() {
        assert_eq!(bad_entry_refused(1, psci::INVALID_ADDRESS as u64), Ok(()));
        assert_eq!(
            bad_entry_refused(5, psci::INVALID_PARAMETERS as u64),
            Ok(())
        );
        let f = bad_entry_refused(1, psci::SUCCESS as u64).unwrap_err();
        assert_eq!(f.verdict_args(), [FailReason::SmpBringUp as u64, 0, 1]);
        assert!(bad_entry_refused(1, psci::ALREADY_ON as u64).is_err());
    }

    #[test]
    fn affinity_waits_through_on_pending_and_running() {
        let mut answers = [2, 2, 0].into_iter();
        let mut waits = 0;
        let r = await_affinity(
            psci::AFFINITY_ON,
            || answers.next().unwrap(),
            || {
                waits += 1;
                true
            },
        );
        assert_eq!((r, waits), (Ok(()), 2));

        let mut answers = [2, 0, 0, 0, 1].into_iter();
        let r = await_affinity(psci::AFFINITY_OFF, || answers.next().unwrap(), || true);
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn affinity_fails_on_a_wrong_answer_without_waiting() {
        let mut waits = 0;
        // OFF while waiting for ON: the vCPU never ran.
        let f = await_affinity(
            psci::AFFINITY_ON,
            || psci::AFFINITY_OFF,
            || {
                waits += 1;
                true
            },
        )
        .unwrap_err();
        assert_eq!(waits, 0);
        assert_eq!(f.check, "affinity-on");
        assert_eq!(f.verdict_args(), [FailReason::SmpBringUp as u64, 1, 0]);
        let bad = psci::INVALID_PARAMETERS as u64;
        let f = await_affinity(psci::AFFINITY_OFF, || bad, || true).unwrap_err();
        assert_eq!((f.check, f.got, f.expected), ("affinity-off", bad, 1));
    }

    #[test]
    fn affinity_gives_up_when_the_budget_is_spent() {
        let mut polls = 0;
        let mut budget = Budget::new(0, u64::MAX, 5);
        let f = await_affinity(
            psci::AFFINITY_OFF,
            || {
                polls += 1;
                psci::AFFINITY_ON
            },
            || budget.spend(0),
        )
        .unwrap_err();
        assert_eq!(polls, 6, "the first poll and one after each of the 5 waits");
        assert_eq!((f.got, f.expected), (psci::AFFINITY_ON, psci::AFFINITY_OFF));
    }

    #[test]
    fn budget_ends_at_the_deadline_or_after_its_tries() {
        let mut b = Budget::new(100, 50, 3);
        assert!(b.spend(100));
        assert!(b.spend(149));
        assert!(!b.spend(150), "the deadline has passed");
        let mut b = Budget::new(0, 1000, 2);
        assert!(b.spend(1) && b.spend(2));
        assert!(!b.spend(3), "no tries left");
        let mut b = Budget::new(u64::MAX - 1, 10, 1);
        assert!(
            b.spend(u64::MAX - 1),
            "the end saturates instead of wrapping"
        );
    }

    #[test]
    fn board_returns_what_each_vcpu_published() {
        let board = TallyBoard::new();
        assert_eq!(board.read(1), None);
        let clean = tally(1, None);
        let bad = tally(2, Some(17));
        assert!(board.publish(1, &clean));
        assert!(board.publish(2, &bad));
        assert_eq!(board.read(1), Some(clean));
        assert_eq!(board.read(2), Some(bad));
        assert_eq!(board.read(2).and_then(|t| t.first), Some((3, 17)));
        assert_eq!(board.read(3), None);
        assert!(!board.publish(MAX_VCPUS, &clean));
        assert_eq!(board.read(MAX_VCPUS), None);
    }

    #[test]
    fn board_publishes_across_threads() {
        let board = Arc::new(TallyBoard::new());
        let handles: Vec<_> = (1..MAX_VCPUS)
            .map(|vcpu| {
                let board = Arc::clone(&board);
                std::thread::spawn(move || board.publish(vcpu, &tally(vcpu as u64, None)))
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap());
        }
        for vcpu in 1..MAX_VCPUS {
            assert_eq!(board.read(vcpu).map(|t| t.iterations), Some(50));
        }
    }

    #[test]
    fn verdict_needs_every_vcpu_clean() {
        let clean = Some(tally(0, None));
        assert_eq!(verdict(&[clean]), Ok(()));
        assert_eq!(
            verdict(&[clean, Some(tally(1, None)), Some(tally(2, None))]),
            Ok(())
        );

        let f = verdict(&[clean, Some(tally(1, None)), Some(tally(2, Some(9)))]).unwrap_err();
        assert_eq!(f.verdict_args(), [FailReason::FpMismatch as u64, 3, 9]);

        let f = verdict(&[clean, None, Some(tally(2, Some(9)))]).unwrap_err();
        assert_eq!(f.verdict_args(), [FailReason::SmpBringUp as u64, 1, 1]);
    }
}
