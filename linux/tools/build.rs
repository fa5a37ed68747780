//! The binaries go into an initramfs with no C library, so they must be static. Only
//! `-C target-feature=+crt-static` makes them so (a `-static` link argument alone is undone by
//! the `-Bdynamic` rustc puts before the C libraries, and yields a broken dynamic executable);
//! a build script cannot set it. linux.mk sets it for this crate's build
//! (CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS) and checks the result; other aarch64
//! release builds get a warning.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name| std::env::var(name).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_ARCH") == "aarch64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("PROFILE") == "release"
        && !static_crt
    {
        println!(
            "cargo:warning=fpstress and exitbench will be dynamically linked; for the initramfs \
             build them with `make -f linux/linux.mk linux-tools` (adds -C target-feature=+crt-static)"
        );
    }
}
