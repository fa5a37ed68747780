//! Link layout for the VMM PD.
use std::path::Path;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    lazyfp_build::pd_link_args(&manifest.join("../microkit-rt/link.ld"));
    // The eager policy makes the VMM use FP: it needs a target that has it.
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=FP_POLICY");
    if std::env::var("FP_POLICY").as_deref() == Ok("eager") && target.ends_with("softfloat") {
        eprintln!("vmm-pd: FP_POLICY=eager needs the hard-float target aarch64-unknown-none, not {target}");
        std::process::exit(1);
    }
}
