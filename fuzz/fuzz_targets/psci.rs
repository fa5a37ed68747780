//! PSCI / SMCCC calls with any function id, arguments, vCPUs and power states.
//!
//! Invariants (DEN0022 PSCI 1.1): `is_psci` is exactly the two PSCI ranges; every answer is a
//! defined return code or power action; PSCI_FEATURES says SUCCESS for a function exactly when
//! calling it does something other than NOT_SUPPORTED; CPU_ON starts only an off vCPU named by its
//! MPIDR with an entry in guest RAM, and answers ALREADY_ON / ON_PENDING / INVALID_PARAMETERS /
//! INVALID_ADDRESS otherwise; AFFINITY_INFO answers the named vCPU's state, at level 0 only.
#![no_main]

use arbitrary::Arbitrary;
use lazyfp::abi::psci::*;
use lazyfp::abi::GUEST_RAM_BASE;
use lazyfp::psci::{handle_psci, is_psci, Cpus, Power, PsciOutcome};
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
    /// An entry point inside guest RAM, so CPU_ON succeeds often.
    entry_in_ram: Option<u32>,
    /// (MPIDR offset, power state 0..3) per vCPU; MPIDRs are made distinct.
    vcpus: Vec<(u8, u8)>,
    ram_size: u32,
}

fn code(v: i64) -> PsciOutcome {
    PsciOutcome::Return(v as u64)
}

fuzz_target!(|input: Input| {
    let Input { low, smc64, wild, mut args, name_vcpu, entry_in_ram, vcpus, ram_size } = input;
    let n = vcpus.len().min(8);
    let mut mpidrs = [0u64; 8];
    let mut power = [Power::Off; 8];
    for (i, &(aff, p)) in vcpus.iter().take(n).enumerate() {
        // Distinct affinities: Aff0 = i, another level from the input.
        mpidrs[i] = i as u64 | (aff as u64) << 8;
        power[i] = [Power::On, Power::Off, Power::OnPending][p as usize % 3];
    }
    let ram_size = ram_size as u64 + 4;
    let cpus = Cpus { mpidrs: &mpidrs[..n], power: &power[..n], ram_size };
    let fid = wild.unwrap_or(0x8400_0000 | (smc64 as u64) << 30 | (low as u64 & 0x3f));
    if let (Some(i), true) = (name_vcpu, n > 0) {
        args[0] = mpidrs[i as usize % n];
    }
    if let Some(off) = entry_in_ram {
        args[1] = GUEST_RAM_BASE + (off as u64 % ram_size & !3);
    }
    let in_range =
        (0x8400_0000..=0x8400_001f).contains(&fid) || (0xc400_0000..=0xc400_001f).contains(&fid);
    assert_eq!(is_psci(fid), in_range, "{fid:#x}");

    let out = handle_psci(fid, args, &cpus);
    let known = [SUCCESS, NOT_SUPPORTED, INVALID_PARAMETERS, ALREADY_ON, ON_PENDING, INVALID_ADDRESS]
        .map(|c| c as u64);
    let named = mpidrs[..n].iter().position(|&m| m == args[0]);
    match out {
        PsciOutcome::Return(v) => assert!(
            known.contains(&v)
                || (fid == VERSION && v == VERSION_1_1)
                || (fid == MIGRATE_INFO_TYPE && v == TOS_NOT_PRESENT_MP)
                || (matches!(fid, AFFINITY_INFO_64 | AFFINITY_INFO_32) && v <= 2),
            "{fid:#x} -> {v:#x}"
        ),
        PsciOutcome::SystemOff => assert_eq!(fid, SYSTEM_OFF),
        PsciOutcome::SystemReset => assert_eq!(fid, SYSTEM_RESET),
        PsciOutcome::CpuOff => assert_eq!(fid, CPU_OFF),
        PsciOutcome::Suspend => assert!(matches!(fid, CPU_SUSPEND_64 | CPU_SUSPEND_32)),
        PsciOutcome::CpuOn { target, entry, context } => {
            assert!(matches!(fid, CPU_ON_64 | CPU_ON_32));
            assert_eq!(Some(target), named, "CPU_ON started a vCPU it was not asked for");
            assert_eq!(power[target], Power::Off, "CPU_ON started a vCPU that was not off");
            assert!(entry >= GUEST_RAM_BASE && entry - GUEST_RAM_BASE < ram_size && entry % 4 == 0);
            let (e, c) = if fid == CPU_ON_32 {
                (args[1] & 0xffff_ffff, args[2] & 0xffff_ffff)
            } else {
                (args[1], args[2])
            };
            assert_eq!((entry, context), (e, c));
        }
    }

    // FEATURES agrees with what the function does.
    let features = handle_psci(FEATURES, [fid, 0, 0], &cpus);
    let implemented = fid == FEATURES || out != code(NOT_SUPPORTED);
    assert_eq!(
        features,
        code(if implemented { SUCCESS } else { NOT_SUPPORTED }),
        "FEATURES({fid:#x}) with {out:?}"
    );

    match fid {
        CPU_ON_64 | CPU_ON_32 => match named {
            None => assert_eq!(out, code(INVALID_PARAMETERS)),
            Some(i) => match power[i] {
                Power::On => assert_eq!(out, code(ALREADY_ON)),
                Power::OnPending => assert_eq!(out, code(ON_PENDING)),
                Power::Off => assert!(
                    matches!(out, PsciOutcome::CpuOn { .. }) || out == code(INVALID_ADDRESS)
                ),
            },
        },
        AFFINITY_INFO_64 | AFFINITY_INFO_32 => {
            let want = match named {
                Some(i) if args[1] == 0 => match power[i] {
                    Power::On => AFFINITY_ON,
                    Power::Off => AFFINITY_OFF,
                    Power::OnPending => AFFINITY_ON_PENDING,
                },
                _ => INVALID_PARAMETERS as u64,
            };
            assert_eq!(out, PsciOutcome::Return(want));
        }
        _ => {}
    }
    // Answers depend on nothing but the call and the states: asking twice gives the same.
    assert_eq!(handle_psci(fid, args, &cpus), out);
});
