//! What build scripts tell Cargo: which environment and files to watch, and how to link a PD.

use std::{
    env,
    path::{Path, PathBuf},
};

const DEFAULT_BOARD: &str = "qemu_virt_aarch64";
const DEFAULT_CONFIG: &str = "debug";

/// The SDK (none if `MICROKIT_SDK` is unset or empty), board and config to build for, with the
/// Makefile's defaults.
pub fn env_sdk() -> (Option<PathBuf>, String, String) {
    let var = |name| env::var(name).ok().filter(|value| !value.is_empty());
    let sdk = env::var_os("MICROKIT_SDK")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from);
    let board = var("MICROKIT_BOARD").unwrap_or_else(|| DEFAULT_BOARD.to_owned());
    let config = var("MICROKIT_CONFIG").unwrap_or_else(|| DEFAULT_CONFIG.to_owned());
    (sdk, board, config)
}

/// Reruns the build script when the SDK, board, config or FP policy changes.
pub fn rerun_env() {
    for name in [
        "MICROKIT_SDK",
        "MICROKIT_BOARD",
        "MICROKIT_CONFIG",
        "FP_POLICY",
    ] {
        println!("cargo:rerun-if-env-changed={name}");
    }
}

/// Links the package's binaries with `linker_script` (made absolute, as rustc runs the linker
/// from elsewhere), and relinks when it changes.
pub fn pd_link_args(linker_script: &Path) {
    for line in link_lines(linker_script) {
        println!("{line}");
    }
}

fn link_lines(linker_script: &Path) -> [String; 2] {
    let script = linker_script
        .canonicalize()
        .or_else(|_| std::path::absolute(linker_script))
        .unwrap_or_else(|_| linker_script.to_owned());
    [
        format!("cargo:rustc-link-arg-bins=-T{}", script.display()),
        format!("cargo:rerun-if-changed={}", script.display()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_from_the_environment() {
        // The only test that touches these variables.
        env::set_var("MICROKIT_SDK", "");
        env::remove_var("MICROKIT_BOARD");
        env::set_var("MICROKIT_CONFIG", "");
        assert_eq!(
            env_sdk(),
            (None, "qemu_virt_aarch64".to_owned(), "debug".to_owned())
        );
        env::set_var("MICROKIT_SDK", "/opt/microkit-sdk-2.3.0");
        env::set_var("MICROKIT_BOARD", "maaxboard");
        env::set_var("MICROKIT_CONFIG", "smp-release");
        assert_eq!(
            env_sdk(),
            (
                Some(PathBuf::from("/opt/microkit-sdk-2.3.0")),
                "maaxboard".to_owned(),
                "smp-release".to_owned()
            )
        );
        for name in ["MICROKIT_SDK", "MICROKIT_BOARD", "MICROKIT_CONFIG"] {
            env::remove_var(name);
        }
    }
    #[test]
    fn linker_scripts_are_absolute() {
        let [link, rerun] = link_lines(Path::new("src/lib.rs"));
        let absolute = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/lib.rs")
            .canonicalize()
            .unwrap();
        assert_eq!(
            link,
            format!("cargo:rustc-link-arg-bins=-T{}", absolute.display())
        );
        assert_eq!(
            rerun,
            format!("cargo:rerun-if-changed={}", absolute.display())
        );
        let [link, _] = link_lines(Path::new("not-yet-built.ld"));
        assert!(link.starts_with("cargo:rustc-link-arg-bins=-T/"), "{link}");
    }
}
