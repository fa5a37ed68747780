//! Generates the constants every PD uses from the system description (system.xml, or the
//! file named by LAZYFP_SDF for a derived variant), so that code and SDF cannot disagree.
use std::{env, fs, path::PathBuf, process::exit};

use lazyfp_build::FpPolicy;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("lazyfp build: {msg}");
    exit(1);
}

fn main() {
    lazyfp_build::rerun_env();
    println!("cargo:rerun-if-env-changed=LAZYFP_SDF");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // A derived description (LAZYFP_SDF) already holds its board's elements; system.xml gets
    // them from boards/<board>.xml.
    let derived = env::var_os("LAZYFP_SDF")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let sdf = derived
        .clone()
        .unwrap_or_else(|| manifest.join("system.xml"));
    println!("cargo:rerun-if-changed={}", sdf.display());

    let (sdk, board, config) = lazyfp_build::env_sdk();
    let boards = manifest.join("boards");
    println!("cargo:rerun-if-changed={}", boards.display());
    let mut board = lazyfp_build::load_board(&boards, &board).unwrap_or_else(|e| fail(e));
    // A build-time override of the board's choice (e.g. power-off for a real board's image
    // run under QEMU).
    println!("cargo:rerun-if-env-changed=LAZYFP_ON_VM_STOP");
    if let Some(v) = env::var("LAZYFP_ON_VM_STOP").ok().filter(|v| !v.is_empty()) {
        board.on_vm_stop = lazyfp_build::OnVmStop::parse(&v).unwrap_or_else(|| {
            fail(format!(
                "LAZYFP_ON_VM_STOP={v}: expected power-off or serve"
            ))
        });
    }
    let facts = lazyfp_build::kernel_facts(sdk.as_deref(), &board.name, &config)
        .unwrap_or_else(|e| fail(e));
    let policy = FpPolicy::from_env().unwrap_or_else(|e| fail(e));
    let mut src = lazyfp_build::generate_sdf_rs(
        &sdf,
        policy,
        facts.num_cores,
        derived.is_none().then_some(&board),
    )
    .unwrap_or_else(|e| fail(e));
    src.push_str(&lazyfp_build::board_rs(&board));
    let policy_variant = match policy {
        FpPolicy::Lazy => "Lazy",
        FpPolicy::Eager => "Eager",
    };
    src.push_str(&format!(
        "\n/// FP policy this build was made for (FP_POLICY).\npub const FP_POLICY: crate::FpPolicy = crate::FpPolicy::{policy_variant};\n"
    ));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    fs::write(out.join("sdf.rs"), src).unwrap_or_else(|e| fail(e));
}
