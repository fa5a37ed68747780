//! The `sdf-variant` binary as the Makefile runs it.

use std::{fs, path::PathBuf, process::Command};

fn system_xml() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("system.xml")
}

fn sdf_variant_for(board: &str, config: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sdf-variant"))
        .args(args)
        .env_remove("MICROKIT_SDK")
        .env("MICROKIT_BOARD", board)
        .env("MICROKIT_CONFIG", config)
        .output()
        .unwrap()
}

fn sdf_variant(args: &[&std::ffi::OsStr]) -> std::process::Output {
    sdf_variant_for("qemu_virt_aarch64", "smp-debug", args)
}

/// The lazy system for `board` and `config`, or sdf-variant's error message.
fn derive(board: &str, config: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("system.xml");
    let input = system_xml();
    let args = [
        "--policy".as_ref(),
        "lazy".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
    ];
    let output = sdf_variant_for(board, config, &args);
    if output.status.success() {
        Ok(fs::read_to_string(&out).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn fits_the_system_to_the_board_and_the_kernels_cores() {
    let up = derive("qemu_virt_aarch64", "release").unwrap();
    assert_eq!(up.matches("<vcpu ").count(), 1, "{up}");
    assert_eq!(
        up.matches("program_image path=\"neon_worker.elf\"").count(),
        1
    );
    assert!(!up.contains("neon_worker1"));
    let smp = derive("qemu_virt_aarch64", "smp-release").unwrap();
    assert_eq!(smp.matches("<vcpu ").count(), 4);
    assert!(smp.contains(r#"<memory_region name="uart" size="0x1000" phys_addr="0x9000000" />"#));
    // Another board's devices, and a board the project does not describe.
    let imx = derive("imx8mm_evk", "smp-debug").unwrap();
    assert!(imx.contains(r#"phys_addr="0x30890000""#) && !imx.contains("gic_vcpu"));
    let stderr = derive("zcu102", "debug").unwrap_err();
    assert!(
        stderr.contains("board \"zcu102\" is not described by lazyfp")
            && stderr.contains("imx8mp_evk"),
        "{stderr}"
    );
}

#[test]
fn writes_the_eager_system() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("system-eager.xml");
    let input = system_xml();
    let output = sdf_variant(&[
        "--policy".as_ref(),
        "eager".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lazy_out = dir.path().join("system-lazy.xml");
    let output = sdf_variant(&[
        "--policy".as_ref(),
        "lazy".as_ref(),
        input.as_os_str(),
        lazy_out.as_os_str(),
    ]);
    assert!(output.status.success());
    let lazy = fs::read_to_string(&lazy_out).unwrap();
    let eager = fs::read_to_string(&out).unwrap();
    let vmm_lazy = r#"<protection_domain name="vmm" priority="200" fpu="false""#;
    let vmm_eager = r#"<protection_domain name="vmm" priority="200" fpu="true""#;
    assert_eq!(eager, lazy.replacen(vmm_lazy, vmm_eager, 1));
    assert_ne!(eager, lazy);
}

#[test]
fn fails_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broken.xml");
    let out = dir.path().join("out.xml");
    fs::write(
        &input,
        "<system>\n<protection_domain name=\"vmm\" fpu=\"false\" />\n</system>\n",
    )
    .unwrap();
    let boards = system_xml().with_file_name("boards");
    let output = sdf_variant(&[
        "--policy".as_ref(),
        "eager".as_ref(),
        "--boards".as_ref(),
        boards.as_os_str(),
        input.as_os_str(),
        out.as_os_str(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.xml:2: <protection_domain name=\"vmm\">: missing <program_image>"),
        "{stderr}"
    );
    assert!(!out.exists());

    let output = sdf_variant(&[
        "--policy".as_ref(),
        "sloppy".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"sloppy\""));

    let output = sdf_variant(&["eager".as_ref()]);
    assert_eq!(output.status.code(), Some(2));
}
