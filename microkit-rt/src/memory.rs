//! Memory regions the SDF maps into this PD, as Rust references.

/// The `<map>` at `vaddr` of `size` bytes as a byte slice.
///
/// # Safety
/// `[vaddr, vaddr + size)` must be mapped read-write into this PD for its lifetime (a `<map>` in
/// the SDF, which build.rs validated), and no other reference to it may exist.
pub unsafe fn region_bytes_mut(vaddr: u64, size: u64) -> &'static mut [u8] {
    // SAFETY: the caller guarantees the mapping and exclusivity.
    unsafe { core::slice::from_raw_parts_mut(vaddr as *mut u8, size as usize) }
}

/// The read-only `<map>` at `vaddr` of `size` bytes.
///
/// # Safety
/// `[vaddr, vaddr + size)` must be mapped readable into this PD for its lifetime and not written
/// while the slice lives.
pub unsafe fn region_bytes(vaddr: u64, size: u64) -> &'static [u8] {
    // SAFETY: the caller guarantees the mapping and that nobody writes it.
    unsafe { core::slice::from_raw_parts(vaddr as *const u8, size as usize) }
}

/// A shared `<map>` holding a `T` made only of atomics (shared with other PDs, which may be on
/// other cores).
///
/// # Safety
/// The region must be mapped read-write for the PD's lifetime, be at least `size_of::<T>()`
/// bytes, suitably aligned, and hold a valid `T` (all-zero bytes are valid for atomics).
pub unsafe fn shared<T: Sync>(vaddr: u64) -> &'static T {
    // SAFETY: the caller guarantees mapping, size, alignment and validity; `T: Sync` makes the
    // concurrent access from other PDs sound.
    unsafe { &*(vaddr as *const T) }
}
