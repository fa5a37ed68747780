//! The system.xml parser and validator, lazyfp's requirement checks and the code generator, on
//! any text (seeded with the real system.xml; see fuzz/sdf.dict).
//!
//! Invariants: every error names the file (and so points at what to fix); parsing is
//! deterministic; an accepted description keeps what the validator promises: unique names,
//! lines inside the file, maps of declared regions that are page-aligned and do not overlap in
//! one address space, channel ends on declared PDs, ids, priorities, budgets and stacks in range;
//! `check_cores` refuses exactly a PD or vCPU on a missing core; the code generator accepts or
//! names the element it cannot turn into Rust.
#![no_main]

use std::collections::HashSet;

use lazyfp_build::{
    check_cores, check_requirements, parse, sdf_rs, FpPolicy, Map, SdfError, System,
};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.xml";

fn unique<'a>(names: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for n in names {
        assert!(seen.insert(n), "{n} twice");
    }
}

fn check_maps(system: &System, maps: &[Map], lines: u32) {
    let mut placed: Vec<(u64, u64)> = Vec::new();
    for m in maps {
        assert!((1..=lines).contains(&m.at.line));
        let mr = system.mr(&m.mr).expect("a map of a declared region");
        assert_eq!(m.vaddr % mr.page_bytes(), 0, "{m:?}");
        let end = m.vaddr.saturating_add(mr.size.unwrap_or(mr.page_bytes()));
        assert!(
            placed.iter().all(|&(s, e)| end <= s || e <= m.vaddr),
            "{m:?} overlaps"
        );
        placed.push((m.vaddr, end));
    }
}

fn check_accepted(system: &System, lines: u32) {
    unique(system.memory_regions.iter().map(|m| m.name.as_str()));
    unique(system.protection_domains.iter().map(|p| p.name.as_str()));
    unique(
        system
            .protection_domains
            .iter()
            .filter_map(|p| p.virtual_machine.as_ref())
            .map(|v| v.name.as_str()),
    );
    for mr in &system.memory_regions {
        assert!((1..=lines).contains(&mr.at.line));
        assert!(
            mr.size.is_some() || mr.prefill_path.is_some(),
            "{mr:?} has no size"
        );
    }
    for pd in &system.protection_domains {
        assert!((1..=lines).contains(&pd.at.line));
        assert!(pd.priority <= 254 && pd.budget <= pd.period);
        assert!(pd.stack_size % 0x1000 == 0 && (0x1000..=16 << 20).contains(&pd.stack_size));
        check_maps(system, &pd.maps, lines);
        if let Some(vm) = &pd.virtual_machine {
            assert!(!vm.vcpus.is_empty() && vm.vcpus.iter().all(|v| v.id <= 61));
            let ids: HashSet<u8> = vm.vcpus.iter().map(|v| v.id).collect();
            assert_eq!(ids.len(), vm.vcpus.len(), "duplicate vCPU ids");
            check_maps(system, &vm.maps, lines);
        }
    }
    for ch in &system.channels {
        assert!((1..=lines).contains(&ch.at.line));
        for end in &ch.ends {
            assert!(system.pd(&end.pd).is_some() && end.id <= 61, "{end:?}");
        }
        assert!(!(ch.ends[0].pp && ch.ends[1].pp));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(FILE, xml);
    let system = match parsed {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(FILE), "an error that names no file: {msg}");
            return;
        }
        Ok(system) => system,
    };
    assert_eq!(
        parse(FILE, xml).ok().as_ref(),
        Some(&system),
        "parsing is deterministic"
    );
    let lines = xml.split('\n').count() as u32;
    check_accepted(&system, lines);

    let num_cores = data.len() % 4 + 1;
    let placed = system.protection_domains.iter().all(|pd| {
        (pd.cpu as usize) < num_cores
            && pd
                .virtual_machine
                .iter()
                .flat_map(|vm| &vm.vcpus)
                .all(|v| (v.cpu as usize) < num_cores)
    });
    let cores = check_cores(&system, num_cores);
    assert_eq!(cores.is_ok(), placed, "{cores:?}");
    if !placed {
        return;
    }
    for policy in [FpPolicy::Lazy, FpPolicy::Eager] {
        match check_requirements(&system, policy) {
            Err(e) => assert!(e.to_string().starts_with(FILE), "{e}"),
            Ok(()) => match sdf_rs(&system, num_cores) {
                Ok(src) => assert!(src.contains("pub const"), "generated nothing"),
                Err(e @ (SdfError::NotAnIdentifier { .. } | SdfError::NameClash { .. })) => {
                    assert!(e.to_string().starts_with(FILE), "{e}")
                }
                Err(e) => panic!("code generation: {e}"),
            },
        }
    }
});
