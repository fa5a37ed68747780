//! PSCI / SMCCC calls with any function id, arguments and set of vCPUs.
//!
//! Invariants (DEN0022 PSCI 1.1): `is_psci` is exactly the two PSCI ranges; every answer is a
//! defined return code or power action; PSCI_FEATURES says SUCCESS for a function exactly when
//! calling it does something other than NOT_SUPPORTED; CPU_ON names an existing vCPU with
//! ALREADY_ON (all are on) and anything else with INVALID_PARAMETERS; AFFINITY_INFO answers ON
//! only at level 0 for an existing vCPU.
#![no_main]

use arbitrary::Arbitrary;
use lazyfp::abi::psci::*;
use lazyfp::psci::{handle_psci, is_psci, PsciOutcome};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Low byte of a PSCI id (SMC32 or SMC64 range), or any id with `wild`.
    low: u8,
    smc64: bool,
    wild: Option<u64>,
    args: [u64; 3],
    /// An argument taken from the vCPU list, so existing vCPUs are named often.
    name_vcpu: Option<u8>,
    vcpus: Vec<u64>,
}

fn code(v: i64) -> PsciOutcome {
    PsciOutcome::Return(v as u64)
}

fuzz_target!(|input: Input| {
    let Input {
        low,
        smc64,
        wild,
        mut args,
        name_vcpu,
        vcpus,
    } = input;
    let vcpus = &vcpus[..vcpus.len().min(8)];
    let fid = wild.unwrap_or(0x8400_0000 | (smc64 as u64) << 30 | (low as u64 & 0x3f));
    if let (Some(i), false) = (name_vcpu, vcpus.is_empty()) {
        args[0] = vcpus[i as usize % vcpus.len()];
    }
    let in_range =
        (0x8400_0000..=0x8400_001f).contains(&fid) || (0xc400_0000..=0xc400_001f).contains(&fid);
    assert_eq!(is_psci(fid), in_range, "{fid:#x}");

    let out = handle_psci(fid, args, vcpus);
    let known = [SUCCESS, NOT_SUPPORTED, INVALID_PARAMETERS, ALREADY_ON].map(|c| c as u64);
    match out {
        PsciOutcome::Return(v) => assert!(
            known.contains(&v)
                || (fid == VERSION && v == VERSION_1_1)
                || (fid == MIGRATE_INFO_TYPE && v == TOS_NOT_PRESENT_MP),
            "{fid:#x} -> {v:#x}"
        ),
        PsciOutcome::SystemOff => assert_eq!(fid, SYSTEM_OFF),
        PsciOutcome::SystemReset => assert_eq!(fid, SYSTEM_RESET),
        PsciOutcome::CpuOff => assert_eq!(fid, CPU_OFF),
    }

    // FEATURES agrees with what the function does (for ids with the SMC64 bit and without).
    let features = handle_psci(FEATURES, [fid, 0, 0], vcpus);
    // FEATURES itself answers NOT_SUPPORTED for what it does not know.
    let implemented = fid == FEATURES || out != code(NOT_SUPPORTED);
    assert_eq!(
        features,
        code(if implemented { SUCCESS } else { NOT_SUPPORTED }),
        "FEATURES({fid:#x}) with {out:?}"
    );

    let exists = vcpus.contains(&args[0]);
    match fid {
        CPU_ON_64 | 0x8400_0003 => {
            assert_eq!(
                out,
                code(if exists {
                    ALREADY_ON
                } else {
                    INVALID_PARAMETERS
                })
            )
        }
        AFFINITY_INFO_64 | 0x8400_0004 => {
            let on = exists && args[1] == 0;
            assert_eq!(out, code(if on { 0 } else { INVALID_PARAMETERS }))
        }
        _ => {}
    }
    // Answers depend on nothing but the call: asking twice gives the same.
    assert_eq!(handle_psci(fid, args, vcpus), out);
});
