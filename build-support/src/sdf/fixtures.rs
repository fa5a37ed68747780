//! Systems for the tests: a minimal valid lazyfp system to break one thing at a time, and the
//! real system.xml.

use std::path::PathBuf;

use super::{parse, SdfError, System};

/// The smallest system that meets lazyfp's requirements under the lazy policy.
pub const LAZYFP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<system>
    <memory_region name="guest_ram" size="0x4000000" page_size="0x200000" />
    <memory_region name="guest_image" prefill_path="guest.img" />
    <memory_region name="uart" size="0x1000" phys_addr="0x9000000" />
    <memory_region name="gic_vcpu" size="0x1000" phys_addr="0x8040000" />
    <memory_region name="fp_table" size="0x1000" />
    <protection_domain name="vmm" priority="200" fpu="false" smc="true" stack_size="0x4000">
        <program_image path="vmm.elf" />
        <map mr="guest_ram" vaddr="0x20000000" perms="rw" />
        <map mr="guest_image" vaddr="0x30000000" perms="r" setvar_prefill_size="guest_image_size" />
        <map mr="uart" vaddr="0x10000000" perms="rw" cached="false" />
        <map mr="fp_table" vaddr="0x11000000" perms="rw" />
        <virtual_machine name="guest" priority="50">
            <vcpu id="0" />
            <map mr="guest_ram" vaddr="0x40000000" perms="rwx" />
            <map mr="gic_vcpu" vaddr="0x8010000" perms="rw" cached="false" />
        </virtual_machine>
    </protection_domain>
    <protection_domain name="fp_service" priority="150" fpu="false">
        <program_image path="fp_service.elf" />
        <map mr="fp_table" vaddr="0x11000000" perms="rw" />
    </protection_domain>
    <protection_domain name="neon_worker" priority="100" fpu="true">
        <program_image path="neon_worker.elf" />
    </protection_domain>
    <channel>
        <end pd="fp_service" id="0" pp="true" notify="false" />
        <end pd="vmm" id="0" notify="false" />
    </channel>
    <channel>
        <end pd="neon_worker" id="0" pp="true" notify="false" />
        <end pd="fp_service" id="1" notify="false" />
    </channel>
    <channel>
        <end pd="vmm" id="1" />
        <end pd="neon_worker" id="1" />
    </channel>
</system>
"#;

/// `xml` with the one occurrence of `from` replaced by `to`.
pub fn edit(xml: &str, from: &str, to: &str) -> String {
    assert_eq!(
        xml.matches(from).count(),
        1,
        "fixture edit {from:?} must match exactly once"
    );
    xml.replacen(from, to, 1)
}

/// A system of two PDs, `a` (priority 10) and `b` (priority 20), and the elements in `body`.
pub fn two_pds(body: &str) -> String {
    format!(
        "<system>\n\
         <protection_domain name=\"a\" priority=\"10\"><program_image path=\"a.elf\" /></protection_domain>\n\
         <protection_domain name=\"b\" priority=\"20\"><program_image path=\"b.elf\" /></protection_domain>\n\
         {body}\n</system>\n"
    )
}

pub fn ok(xml: &str) -> System {
    match parse("test.xml", xml) {
        Ok(system) => system,
        Err(e) => panic!("expected a valid system, got: {e}"),
    }
}

pub fn err(xml: &str) -> SdfError {
    match parse("test.xml", xml) {
        Ok(_) => panic!("expected an error for:\n{xml}"),
        Err(e) => e,
    }
}

pub fn real_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("system.xml")
}

/// system.xml with QEMU virt's board elements, as the build derives it.
pub fn real() -> String {
    let xml = match std::fs::read_to_string(real_path()) {
        Ok(xml) => xml,
        Err(e) => panic!("{}: {e}", real_path().display()),
    };
    let boards = real_path().with_file_name("boards");
    let board = crate::load_board(&boards, "qemu_virt_aarch64").unwrap();
    crate::apply_board("system.xml", &xml, &board).unwrap()
}
