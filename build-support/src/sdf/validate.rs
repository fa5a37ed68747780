//! Checks across elements: names, channels, maps and setvars. What the Microkit tool would reject
//! fails here first, at `cargo build` time, with the element's line.

use std::collections::HashMap;

use super::error::{At, SdfError};
use super::model::{Map, System};

/// seL4's user address space on aarch64 with hypervisor support and 40-bit physical addresses
/// (qemu_virt_aarch64's Cortex-A53): the top page holds the IPC buffer, the next one is a guard
/// page, and the stack grows down from below it.
const USER_TOP: u64 = 1 << 40;
const PD_STACK_TOP: u64 = USER_TOP - 2 * 0x1000;

pub(crate) fn validate(system: &System) -> Result<(), SdfError> {
    unique_names(
        system
            .memory_regions
            .iter()
            .map(|mr| (mr.name.as_str(), &mr.at)),
    )?;
    unique_names(
        system
            .protection_domains
            .iter()
            .map(|pd| (pd.name.as_str(), &pd.at)),
    )?;
    unique_names(
        system
            .protection_domains
            .iter()
            .filter_map(|pd| pd.virtual_machine.as_ref())
            .map(|vm| (vm.name.as_str(), &vm.at)),
    )?;
    channels(system)?;
    irqs(system)?;
    maps(system)?;
    setvars(system)?;
    physical(system)
}

/// Reports the second use of a name, pointing back at the first.
fn unique_names<'a>(named: impl Iterator<Item = (&'a str, &'a At)>) -> Result<(), SdfError> {
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for (name, at) in named {
        if let Some(&first_line) = seen.get(name) {
            return Err(SdfError::DuplicateName {
                at: Box::new(at.clone()),
                name: name.to_owned(),
                first_line,
            });
        }
        seen.insert(name, at.line);
    }
    Ok(())
}

/// Channel ends name PDs; ids are unique per PD together with irq ids (both are badge bits);
/// a PPC goes to a strictly higher priority.
fn channels(system: &System) -> Result<(), SdfError> {
    let mut used: HashMap<(&str, u8), u32> = HashMap::new();
    for pd in &system.protection_domains {
        for irq in &pd.irqs {
            if let Some(&first_line) = used.get(&(pd.name.as_str(), irq.id)) {
                return Err(SdfError::DuplicateId {
                    at: Box::new(irq.at.clone()),
                    pd: pd.name.clone(),
                    id: irq.id,
                    first_line,
                });
            }
            used.insert((&pd.name, irq.id), irq.at.line);
        }
    }
    for channel in &system.channels {
        let mut pds = Vec::with_capacity(2);
        for end in &channel.ends {
            let Some(pd) = system.pd(&end.pd) else {
                return Err(SdfError::UnknownPd {
                    at: Box::new(channel.at.clone()),
                    pd: end.pd.clone(),
                });
            };
            if let Some(&first_line) = used.get(&(end.pd.as_str(), end.id)) {
                return Err(SdfError::DuplicateId {
                    at: Box::new(channel.at.clone()),
                    pd: end.pd.clone(),
                    id: end.id,
                    first_line,
                });
            }
            used.insert((&end.pd, end.id), channel.at.line);
            pds.push(pd);
        }
        for (caller, callee, end) in [
            (pds[0], pds[1], &channel.ends[0]),
            (pds[1], pds[0], &channel.ends[1]),
        ] {
            if end.pp && callee.priority <= caller.priority {
                return Err(SdfError::PpcPriority {
                    at: Box::new(channel.at.clone()),
                    caller: caller.name.clone(),
                    caller_priority: caller.priority,
                    callee: callee.name.clone(),
                    callee_priority: callee.priority,
                });
            }
        }
    }
    Ok(())
}

/// An interrupt can be delivered to one PD only.
fn irqs(system: &System) -> Result<(), SdfError> {
    let mut claimed: HashMap<u64, u32> = HashMap::new();
    for irq in system.protection_domains.iter().flat_map(|pd| &pd.irqs) {
        if let Some(&first_line) = claimed.get(&irq.irq) {
            return Err(SdfError::DuplicateIrq {
                at: Box::new(irq.at.clone()),
                irq: irq.irq,
                first_line,
            });
        }
        claimed.insert(irq.irq, irq.at.line);
    }
    Ok(())
}

fn maps(system: &System) -> Result<(), SdfError> {
    for pd in &system.protection_domains {
        let space = format!("the address space of protection_domain \"{}\"", pd.name);
        address_space(system, &pd.maps, &space, PD_STACK_TOP - pd.stack_size)?;
        if let Some(vm) = &pd.virtual_machine {
            let space = format!(
                "the guest-physical space of virtual_machine \"{}\"",
                vm.name
            );
            address_space(system, &vm.maps, &space, USER_TOP)?;
        }
    }
    Ok(())
}

/// The maps of one address space: known regions, aligned, below `limit`, not overlapping.
fn address_space(system: &System, maps: &[Map], space: &str, limit: u64) -> Result<(), SdfError> {
    let mut placed: Vec<(u64, u64, &Map)> = Vec::new();
    for map in maps {
        let Some(mr) = system.mr(&map.mr) else {
            return Err(SdfError::UnknownMr {
                at: Box::new(map.at.clone()),
                attribute: "mr",
                mr: map.mr.clone(),
            });
        };
        let align = mr.page_bytes();
        if map.vaddr % align != 0 {
            return Err(SdfError::Misaligned {
                at: Box::new(map.at.clone()),
                attribute: "vaddr",
                value: map.vaddr,
                align,
            });
        }
        if map.setvar_prefill_size.is_some() && mr.prefill_path.is_none() {
            return Err(SdfError::PrefillSizeWithoutPrefill {
                at: Box::new(map.at.clone()),
                mr: mr.name.clone(),
            });
        }
        // A prefilled region without a size covers at least one page; its file may not exist yet.
        let size = mr.size.unwrap_or(align);
        let start = map.vaddr;
        let end = start.saturating_add(size);
        if end > limit {
            return Err(SdfError::MapBeyond {
                at: Box::new(map.at.clone()),
                space: space.to_owned(),
                start,
                end,
                limit,
            });
        }
        if let Some((_, _, other)) = placed.iter().find(|(s, e, _)| start < *e && *s < end) {
            return Err(SdfError::MapOverlap {
                at: Box::new(map.at.clone()),
                space: space.to_owned(),
                start,
                end,
                other_mr: other.mr.clone(),
                other_line: other.at.line,
            });
        }
        placed.push((start, end, map));
    }
    Ok(())
}

/// The symbols the tool patches into a PD's ELF: each at most once, and `region_paddr` names a
/// region.
fn setvars(system: &System) -> Result<(), SdfError> {
    for pd in &system.protection_domains {
        let mut symbols: Vec<(&str, &At)> = Vec::new();
        for map in &pd.maps {
            for symbol in [
                &map.setvar_vaddr,
                &map.setvar_size,
                &map.setvar_prefill_size,
            ] {
                symbols.extend(symbol.as_deref().map(|s| (s, &map.at)));
            }
        }
        for irq in &pd.irqs {
            symbols.extend(irq.setvar_id.as_deref().map(|s| (s, &irq.at)));
        }
        for setvar in &pd.setvars {
            if system.mr(&setvar.region_paddr).is_none() {
                return Err(SdfError::UnknownMr {
                    at: Box::new(setvar.at.clone()),
                    attribute: "region_paddr",
                    mr: setvar.region_paddr.clone(),
                });
            }
            symbols.push((&setvar.symbol, &setvar.at));
        }
        for vcpu in pd.virtual_machine.iter().flat_map(|vm| &vm.vcpus) {
            symbols.extend(vcpu.setvar_id.as_deref().map(|s| (s, &vcpu.at)));
        }
        for channel in &system.channels {
            if let Some((end, _)) = channel.end_of(&pd.name) {
                symbols.extend(end.setvar_id.as_deref().map(|s| (s, &channel.at)));
            }
        }
        for (i, (symbol, at)) in symbols.iter().enumerate() {
            if symbols[..i].iter().any(|(earlier, _)| earlier == symbol) {
                return Err(SdfError::DuplicateSymbol {
                    at: Box::new((*at).clone()),
                    symbol: (*symbol).to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Regions placed at fixed physical addresses cannot share memory.
fn physical(system: &System) -> Result<(), SdfError> {
    let mut placed: Vec<(u64, u64, &str, u32)> = Vec::new();
    for mr in &system.memory_regions {
        let (Some(start), Some(size)) = (mr.phys_addr, mr.size) else {
            continue;
        };
        let end = start.saturating_add(size);
        if let Some((_, _, other, other_line)) =
            placed.iter().find(|(s, e, _, _)| start < *e && *s < end)
        {
            return Err(SdfError::PhysOverlap {
                at: Box::new(mr.at.clone()),
                other: (*other).to_owned(),
                other_line: *other_line,
            });
        }
        placed.push((start, end, &mr.name, mr.at.line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, two_pds};
    use super::*;

    /// Two regions and a PD `a` with `maps`, and a VM with `vm_maps`.
    fn with_maps(maps: &str, vm_maps: &str) -> String {
        format!(
            "<system>\n\
             <memory_region name=\"small\" size=\"0x2000\" />\n\
             <memory_region name=\"large\" size=\"0x400000\" page_size=\"0x200000\" />\n\
             <protection_domain name=\"a\"><program_image path=\"a\" />\n\
             {maps}\n\
             <virtual_machine name=\"g\"><vcpu id=\"0\" />\n\
             {vm_maps}\n\
             </virtual_machine></protection_domain></system>"
        )
    }

    #[test]
    fn duplicate_names() {
        let e = err(&two_pds(
            r#"<protection_domain name="a"><program_image path="c" /></protection_domain>"#,
        ));
        assert!(
            matches!(&e, SdfError::DuplicateName { name, first_line: 2, at } if name == "a" && at.line == 4)
        );
        assert_eq!(
            e.to_string(),
            "test.xml:4: <protection_domain name=\"a\">: name \"a\" is already used on line 2"
        );
        let e = err(&two_pds("<memory_region name=\"m\" size=\"0x1000\" />\n<memory_region name=\"m\" size=\"0x2000\" />"));
        assert!(
            matches!(&e, SdfError::DuplicateName { name, first_line: 4, at } if name == "m" && at.element == "memory_region")
        );
    }

    #[test]
    fn channel_end_names_unknown_pd() {
        let e = err(&two_pds(
            r#"<channel><end pd="a" id="0" /><end pd="vmmm" id="0" /></channel>"#,
        ));
        assert!(matches!(&e, SdfError::UnknownPd { pd, at } if pd == "vmmm" && at.line == 4));
        assert_eq!(
            e.to_string(),
            "test.xml:4: <channel>: end pd=\"vmmm\" names no protection_domain"
        );
    }

    #[test]
    fn channel_ids_are_unique_per_pd() {
        let e = err(&two_pds(
            "<channel><end pd=\"a\" id=\"0\" /><end pd=\"b\" id=\"0\" /></channel>\n\
             <channel><end pd=\"a\" id=\"0\" /><end pd=\"b\" id=\"1\" /></channel>",
        ));
        assert!(
            matches!(&e, SdfError::DuplicateId { pd, id: 0, first_line: 4, at } if pd == "a" && at.line == 5)
        );
        assert!(
            e.to_string()
                .contains("id 0 of protection_domain \"a\" is already used on line 4"),
            "{e}"
        );
        // The same id at both ends of a channel is fine: each end is in its own PD.
        ok(&two_pds(
            r#"<channel><end pd="a" id="5" /><end pd="b" id="5" /></channel>"#,
        ));
    }

    #[test]
    fn irq_ids_share_the_channel_namespace() {
        let xml = "<system>\n\
             <protection_domain name=\"a\" priority=\"10\"><program_image path=\"a\" /><irq irq=\"33\" id=\"7\" /></protection_domain>\n\
             <protection_domain name=\"b\" priority=\"20\"><program_image path=\"b\" /></protection_domain>\n\
             <channel><end pd=\"a\" id=\"7\" /><end pd=\"b\" id=\"0\" /></channel></system>";
        let e = err(xml);
        assert!(
            matches!(&e, SdfError::DuplicateId { pd, id: 7, first_line: 2, at } if pd == "a" && at.element == "channel")
        );
        let e = err(&xml.replace(
            "id=\"7\" /></protection_domain>",
            "id=\"7\" /><irq irq=\"34\" id=\"7\" /></protection_domain>",
        ));
        assert!(matches!(&e, SdfError::DuplicateId { at, .. } if at.element == "irq"));
        let e = err(&xml.replace(
            "id=\"7\" /></protection_domain>",
            "id=\"6\" /><irq irq=\"33\" id=\"8\" /></protection_domain>",
        ));
        assert!(matches!(e, SdfError::DuplicateIrq { irq: 33, .. }));
    }

    #[test]
    fn ppc_goes_to_a_strictly_higher_priority() {
        // a (10) calling b (20) is fine, b calling a is not, nor is a call between equals.
        ok(&two_pds(
            r#"<channel><end pd="a" id="0" pp="true" /><end pd="b" id="0" /></channel>"#,
        ));
        let e = err(&two_pds(
            r#"<channel><end pd="a" id="0" /><end pd="b" id="0" pp="true" /></channel>"#,
        ));
        assert!(matches!(
            &e,
            SdfError::PpcPriority { caller, caller_priority: 20, callee, callee_priority: 10, at }
                if caller == "b" && callee == "a" && at.line == 4
        ));
        assert!(
            e.to_string()
                .starts_with("test.xml:4: <channel>: PPC toward a lower-or-equal-priority PD"),
            "{e}"
        );
        let equal =
            two_pds(r#"<channel><end pd="a" id="0" pp="true" /><end pd="b" id="0" /></channel>"#)
                .replace("priority=\"20\"", "priority=\"10\"");
        assert!(matches!(
            err(&equal),
            SdfError::PpcPriority {
                caller_priority: 10,
                callee_priority: 10,
                ..
            }
        ));
    }

    #[test]
    fn maps_name_known_regions() {
        let e = err(&with_maps(r#"<map mr="smal" vaddr="0x1000" />"#, ""));
        assert!(
            matches!(&e, SdfError::UnknownMr { mr, attribute: "mr", at } if mr == "smal" && at.line == 5)
        );
        assert_eq!(
            e.to_string(),
            "test.xml:5: <map mr=\"smal\">: mr=\"smal\" names no memory_region"
        );
        let setvar = with_maps(r#"<setvar symbol="p" region_paddr="nope" />"#, "");
        assert!(matches!(
            err(&setvar),
            SdfError::UnknownMr {
                attribute: "region_paddr",
                ..
            }
        ));
    }

    #[test]
    fn maps_are_page_aligned() {
        let e = err(&with_maps(r#"<map mr="small" vaddr="0x1800" />"#, ""));
        assert!(
            matches!(&e, SdfError::Misaligned { attribute: "vaddr", align: 0x1000, at, .. } if at.line == 5)
        );
        // A region with large pages must be mapped at a large-page boundary.
        let e = err(&with_maps("", r#"<map mr="large" vaddr="0x1000" />"#));
        assert!(
            matches!(&e, SdfError::Misaligned { attribute: "vaddr", align: 0x20_0000, at, .. } if at.line == 7)
        );
        ok(&with_maps(
            r#"<map mr="large" vaddr="0x200000" />"#,
            r#"<map mr="small" vaddr="0x1000" />"#,
        ));
    }

    #[test]
    fn maps_do_not_overlap_within_an_address_space() {
        let e = err(&with_maps(
            r#"<map mr="small" vaddr="0x200000" /><map mr="large" vaddr="0x0" />"#,
            "",
        ));
        assert!(
            matches!(&e, SdfError::MapOverlap { other_mr, space, start: 0, end: 0x40_0000, .. }
            if other_mr == "small" && space.contains("protection_domain \"a\""))
        );
        assert!(
            e.to_string().contains("overlaps the map of \"small\""),
            "{e}"
        );
        let e = err(&with_maps(
            "",
            r#"<map mr="small" vaddr="0x1000" /><map mr="small" vaddr="0x2000" />"#,
        ));
        assert!(
            matches!(&e, SdfError::MapOverlap { space, .. } if space.contains("virtual_machine \"g\""))
        );
        // The PD's space and the VM's guest-physical space are separate.
        ok(&with_maps(
            r#"<map mr="small" vaddr="0x1000" />"#,
            r#"<map mr="small" vaddr="0x1000" />"#,
        ));
        // Adjacent is not overlapping.
        ok(&with_maps(
            r#"<map mr="small" vaddr="0x1000" /><map mr="small" vaddr="0x3000" />"#,
            "",
        ));
    }

    #[test]
    fn maps_stay_below_the_stack_and_the_address_space_top() {
        let e = err(&with_maps(r#"<map mr="small" vaddr="0xffffffc000" />"#, ""));
        assert!(matches!(
            e,
            SdfError::MapBeyond {
                limit: 0xff_ffff_c000,
                ..
            }
        ));
        let e = err(&with_maps("", r#"<map mr="small" vaddr="0xfffffff000" />"#));
        assert!(matches!(
            e,
            SdfError::MapBeyond {
                limit: 0x100_0000_0000,
                ..
            }
        ));
        ok(&with_maps(r#"<map mr="small" vaddr="0xffffffa000" />"#, ""));
    }

    #[test]
    fn prefill_size_needs_a_prefilled_region() {
        let e = err(&with_maps(
            r#"<map mr="small" vaddr="0x1000" setvar_prefill_size="n" />"#,
            "",
        ));
        assert!(matches!(&e, SdfError::PrefillSizeWithoutPrefill { mr, .. } if mr == "small"));
    }

    #[test]
    fn setvar_symbols_are_unique_per_pd() {
        let e = err(&with_maps(
            r#"<map mr="small" vaddr="0x1000" setvar_vaddr="x" /><map mr="large" vaddr="0x200000" setvar_size="x" />"#,
            "",
        ));
        assert!(matches!(&e, SdfError::DuplicateSymbol { symbol, .. } if symbol == "x"));
    }

    #[test]
    fn physical_ranges_do_not_overlap() {
        let e = err(&two_pds(
            "<memory_region name=\"u\" size=\"0x2000\" phys_addr=\"0x9000000\" />\n\
             <memory_region name=\"v\" size=\"0x1000\" phys_addr=\"0x9001000\" />",
        ));
        assert!(
            matches!(&e, SdfError::PhysOverlap { other, other_line: 4, at } if other == "u" && at.line == 5)
        );
    }
}
