//! Links the guest image with link.ld (bare-metal targets only: the host build of the bin is a
//! stub so that `cargo test -p guest --lib` works on the host).
use std::{env, path::PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=link.ld");
    println!("cargo::rerun-if-env-changed=LAZYFP_TORTURE_ITERS");
    println!("cargo::rerun-if-env-changed=LAZYFP_TORTURE_EXITS");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = PathBuf::from(
            env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        );
        println!(
            "cargo::rustc-link-arg-bins=-T{}",
            dir.join("link.ld").display()
        );
    }
}
