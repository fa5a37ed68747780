//! Generates the seL4 invocation labels for the configured SDK and kernel config.
use std::{env, fs, path::PathBuf, process::exit};

fn main() {
    lazyfp_build::rerun_env();
    let (sdk, board, config) = lazyfp_build::env_sdk();
    let facts = match lazyfp_build::kernel_facts(sdk.as_deref(), &board, &config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("microkit-rt: {e}");
            exit(1);
        }
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("labels.rs"), lazyfp_build::labels_rs(&facts)).expect("write labels.rs");
}
