//! Link layout, and the build-time guest inputs: GUEST_ENTRY for raw images.
use std::{env, fs, path::Path, process::exit};

fn parse_u64(s: &str) -> Option<u64> {
    let s: String = s.chars().filter(|&c| c != '_').collect();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    lazyfp_build::pd_link_args(&manifest.join("../microkit-rt/link.ld"));
    println!("cargo:rerun-if-env-changed=GUEST_ENTRY");
    let entry = match env::var("GUEST_ENTRY").ok().filter(|s| !s.is_empty()) {
        None => "None".to_string(),
        Some(s) => match parse_u64(&s) {
            Some(v) => format!("Some({v:#x})"),
            None => {
                eprintln!("vmm-pd: GUEST_ENTRY={s:?} is not a number (use 0x... or decimal)");
                exit(1);
            }
        },
    };
    // The eager policy makes the VMM use FP: it needs a target that has it.
    let target = env::var("TARGET").unwrap_or_default();
    if env::var("FP_POLICY").as_deref() == Ok("eager") && target.ends_with("softfloat") {
        eprintln!("vmm-pd: FP_POLICY=eager needs the hard-float target aarch64-unknown-none, not {target}");
        exit(1);
    }
    let out = Path::new(&env::var_os("OUT_DIR").expect("set by cargo")).join("guest_entry.rs");
    fs::write(out, format!("/// Load and entry address of a raw guest image (GUEST_ENTRY).\npub const RAW_GUEST_ENTRY: Option<u64> = {entry};\n"))
        .expect("write guest_entry.rs");
}
