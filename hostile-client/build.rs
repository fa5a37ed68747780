fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../microkit-rt/link.ld");
    lazyfp_build::pd_link_args(&root);
}
