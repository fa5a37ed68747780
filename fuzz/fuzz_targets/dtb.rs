//! The Linux guest's DTB, written from system descriptions the parser accepted (any RAM and GICC
//! placement, vCPU ids, VM name) and any bootargs and initrd range.
//!
//! Invariants: it refuses exactly the cases its errors name (a missing map, more vCPUs than a
//! GICv2 targets, an initrd range that is empty or leaves guest RAM, a NUL the FDT format cannot
//! hold); a DTB it writes is a valid FDT that says what the system description says: /memory is
//! guest RAM, one /cpus node per vCPU with its id, the GICC where the VM maps it, the bootargs and
//! the initrd range in /chosen.
#![no_main]

use arbitrary::Arbitrary;
use fdt::{node::FdtNode, Fdt};
use lazyfp_build::{guest_dtb_for, parse, DtbError, DtbParams, GicVersion};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Guest RAM: vaddr and size in 4 KiB pages.
    ram_page: u16,
    ram_pages: u16,
    gicc_page: u16,
    map_ram: bool,
    map_gicc: bool,
    vcpus: Vec<u8>,
    name: Vec<u8>,
    bootargs: String,
    /// (start, length) in bytes from the RAM base, or absolute with `wild`.
    initrd: Option<(u32, u32)>,
    wild: Option<(u64, u64)>,
}

const PAGE: u64 = 0x1000;

fn u64s(node: FdtNode<'_, '_>, name: &str) -> Vec<u64> {
    let p = node
        .property(name)
        .unwrap_or_else(|| panic!("{} has no {name}", node.name));
    p.value
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fuzz_target!(|input: Input| {
    let ram_base = input.ram_page as u64 * PAGE * 16;
    let ram_size = (input.ram_pages as u64 + 1) * PAGE;
    let gicc = input.gicc_page as u64 * PAGE * 16;
    let name: String = input
        .name
        .iter()
        .take(16)
        .map(|b| (b'a' + b % 26) as char)
        .collect();
    let name = if name.is_empty() {
        "guest".to_owned()
    } else {
        name
    };
    let vcpus: String = input
        .vcpus
        .iter()
        .map(|id| format!(r#"<vcpu id="{}" />"#, id % 64))
        .collect();
    let mut maps = String::new();
    if input.map_ram {
        maps += &format!(r#"<map mr="guest_ram" vaddr="{ram_base:#x}" perms="rwx" />"#);
    }
    if input.map_gicc {
        maps += &format!(r#"<map mr="gic_vcpu" vaddr="{gicc:#x}" cached="false" />"#);
    }
    let xml = format!(
        r#"<system>
    <memory_region name="guest_ram" size="{ram_size:#x}" />
    <memory_region name="gic_vcpu" size="0x2000" phys_addr="0x8040000" />
    <protection_domain name="vmm" priority="200" smc="true">
        <program_image path="vmm.elf" />
        <virtual_machine name="{name}">{vcpus}{maps}</virtual_machine>
    </protection_domain>
</system>"#
    );
    let Ok(system) = parse("fuzz.xml", &xml) else {
        return;
    };
    let vm = system.protection_domains[0]
        .virtual_machine
        .as_ref()
        .unwrap();
    let initrd = input.wild.or(input
        .initrd
        .map(|(s, l)| (ram_base + s as u64, ram_base + s as u64 + l as u64)));
    let params = DtbParams {
        bootargs: input.bootargs.clone(),
        initrd,
    };
    // The GICv2 description (guest_dtb picks GICv3 for a VM without the gic_vcpu map).
    let result = guest_dtb_for(&system, &params, GicVersion::V2);
    let initrd_ok = initrd.is_none_or(|(s, e)| ram_base <= s && s < e && e <= ram_base + ram_size);
    let blob = match result {
        Err(DtbError::MissingMaps { missing, .. }) => {
            assert!(!(input.map_ram && input.map_gicc));
            assert_eq!(missing.contains(&"guest_ram"), !input.map_ram);
            assert_eq!(missing.contains(&"gic_vcpu"), !input.map_gicc);
            return;
        }
        Err(DtbError::Vcpus { count, .. }) => {
            assert!(count == vm.vcpus.len() && !(1..=8).contains(&count));
            return;
        }
        Err(DtbError::InitrdOutsideRam { .. }) => {
            assert!(!initrd_ok);
            return;
        }
        Err(DtbError::Fdt(_)) => {
            assert!(
                input.bootargs.contains('\0'),
                "FDT refused {:?}",
                input.bootargs
            );
            return;
        }
        Err(e) => panic!("{e}"),
        Ok(blob) => blob,
    };
    assert!(input.map_ram && input.map_gicc && (1..=8).contains(&vm.vcpus.len()) && initrd_ok);
    assert!(!input.bootargs.contains('\0'));

    let fdt = Fdt::new(&blob).expect("a valid FDT");
    assert_eq!(fdt.total_size(), blob.len());
    let memory = fdt
        .find_node(&format!("/memory@{ram_base:x}"))
        .expect("/memory");
    assert_eq!(u64s(memory, "reg"), [ram_base, ram_size]);
    let mut ids: Vec<usize> = fdt.cpus().map(|c| c.ids().first()).collect();
    let mut want: Vec<usize> = vm.vcpus.iter().map(|v| v.id as usize).collect();
    ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(ids, want);
    let intc = fdt.find_node("/intc@8000000").expect("/intc");
    assert_eq!(u64s(intc, "reg"), [0x0800_0000, 0x1000, gicc, 0x2000]);
    assert_eq!(fdt.chosen().bootargs(), Some(input.bootargs.as_str()));
    let chosen = fdt.find_node("/chosen").unwrap();
    match initrd {
        Some((s, e)) => {
            assert_eq!(u64s(chosen, "linux,initrd-start"), [s]);
            assert_eq!(u64s(chosen, "linux,initrd-end"), [e]);
        }
        None => assert!(chosen.property("linux,initrd-start").is_none()),
    }
    let model = fdt.root().property("model").unwrap().as_str().unwrap();
    assert_eq!(model, format!("lazyfp VM {name}"));
});
