//! The guest bundle: what the VMM loads into guest RAM, prepared at build time (`mkbundle`).
//!
//! Everything that needs parsing or a decision (ELF segments, the arm64 Image header, where the
//! DTB and initrd go, the device tree itself) is done by the host tool, which can report bad
//! input by file name and size; the VMM only copies parts to the addresses recorded here.
//!
//! # Layout (version 1, little-endian u64 words)
//! | offset | field |
//! |---|---|
//! | 0 | magic `"LFPBNDL1"` |
//! | 8 | entry: the guest's first PC |
//! | 16 | x0 at entry (the DTB's address for Linux, else 0) |
//! | 24 | number of parts n (at most [`MAX_PARTS`]) |
//! | 32 + 32·i | part i: guest-physical address, offset in the bundle, bytes in the bundle, bytes in memory (the rest zero-filled) |
use core::fmt;

/// `"LFPBNDL1"`.
pub const BUNDLE_MAGIC: u64 = u64::from_le_bytes(*b"LFPBNDL1");
pub const HEADER_BYTES: usize = 32;
pub const PART_BYTES: usize = 32;
pub const MAX_PARTS: usize = 16;

/// A piece of the bundle and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub gpa: u64,
    pub offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

/// The registers a bundle starts the guest with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boot {
    pub entry: u64,
    pub x0: u64,
}

/// Why a bundle cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    BadMagic(u64),
    Truncated {
        need: u64,
        have: u64,
    },
    TooManyParts(u64),
    /// A part's data lies outside the bundle.
    PartOutsideBundle(usize),
    /// A part does not fit guest RAM.
    PartOutsideRam {
        gpa: u64,
        size: u64,
    },
    EntryOutsideRam(u64),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => {
                write!(f, "guest bundle: bad magic {m:#x} (not made by mkbundle?)")
            }
            Self::Truncated { need, have } => {
                write!(f, "guest bundle truncated: needs {need} bytes, has {have}")
            }
            Self::TooManyParts(n) => write!(f, "guest bundle has {n} parts, at most {MAX_PARTS}"),
            Self::PartOutsideBundle(i) => {
                write!(f, "guest bundle part {i} lies outside the bundle")
            }
            Self::PartOutsideRam { gpa, size } => write!(
                f,
                "guest bundle part at {gpa:#x} ({size} bytes) is outside guest RAM"
            ),
            Self::EntryOutsideRam(e) => write!(f, "guest entry {e:#x} is outside guest RAM"),
        }
    }
}

fn word(b: &[u8], off: usize) -> Result<u64, BundleError> {
    let have = b.len() as u64;
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(BundleError::Truncated {
            need: off as u64 + 8,
            have,
        })
}

/// The boot registers and parts of `bundle`.
pub fn parse_bundle(bundle: &[u8]) -> Result<(Boot, heapless::Vec<Part, MAX_PARTS>), BundleError> {
    let magic = word(bundle, 0)?;
    if magic != BUNDLE_MAGIC {
        return Err(BundleError::BadMagic(magic));
    }
    let boot = Boot {
        entry: word(bundle, 8)?,
        x0: word(bundle, 16)?,
    };
    let n = word(bundle, 24)?;
    if n as usize > MAX_PARTS {
        return Err(BundleError::TooManyParts(n));
    }
    let mut parts = heapless::Vec::new();
    for i in 0..n as usize {
        let at = HEADER_BYTES + i * PART_BYTES;
        let p = Part {
            gpa: word(bundle, at)?,
            offset: word(bundle, at + 8)?,
            file_size: word(bundle, at + 16)?,
            mem_size: word(bundle, at + 24)?,
        };
        let end = p
            .offset
            .checked_add(p.file_size)
            .ok_or(BundleError::PartOutsideBundle(i))?;
        if end > bundle.len() as u64 || p.mem_size < p.file_size {
            return Err(BundleError::PartOutsideBundle(i));
        }
        let _ = parts.push(p);
    }
    Ok((boot, parts))
}

/// Copies every part of `bundle` into `ram` (guest-physical `ram_base`), zero-filling each
/// part's tail; returns the boot registers.
pub fn load_bundle(bundle: &[u8], ram: &mut [u8], ram_base: u64) -> Result<Boot, BundleError> {
    let (boot, parts) = parse_bundle(bundle)?;
    let ram_len = ram.len() as u64;
    let in_ram = |gpa: u64, size: u64| {
        let start = gpa.checked_sub(ram_base)?;
        let end = start.checked_add(size)?;
        (end <= ram_len).then_some((start as usize, end as usize))
    };
    for p in &parts {
        let (start, end) = in_ram(p.gpa, p.mem_size).ok_or(BundleError::PartOutsideRam {
            gpa: p.gpa,
            size: p.mem_size,
        })?;
        let (data, zeros) = ram[start..end].split_at_mut(p.file_size as usize);
        data.copy_from_slice(&bundle[p.offset as usize..(p.offset + p.file_size) as usize]);
        zeros.fill(0);
    }
    if in_ram(boot.entry, 4).is_none() {
        return Err(BundleError::EntryOutsideRam(boot.entry));
    }
    Ok(boot)
}

/// Writes a bundle (host side; the layout above). `parts` are (guest-physical address, data,
/// bytes in memory).
#[cfg(any(test, feature = "std"))]
pub fn write_bundle(boot: Boot, parts: &[(u64, &[u8], u64)]) -> std::vec::Vec<u8> {
    let mut out = std::vec::Vec::new();
    for w in [BUNDLE_MAGIC, boot.entry, boot.x0, parts.len() as u64] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let mut offset = (HEADER_BYTES + PART_BYTES * parts.len()) as u64;
    for (gpa, data, mem) in parts {
        for w in [
            *gpa,
            offset,
            data.len() as u64,
            (*mem).max(data.len() as u64),
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        offset += data.len() as u64;
    }
    for (_, data, _) in parts {
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_loads_parts_and_zero_fills() {
        let b = write_bundle(
            Boot {
                entry: 0x4000_0100,
                x0: 0x4000_0800,
            },
            &[(0x4000_0100, &[1, 2, 3], 5), (0x4000_0800, &[9], 1)],
        );
        let mut ram = vec![0xee; 0x1000];
        let boot = load_bundle(&b, &mut ram, 0x4000_0000).unwrap();
        assert_eq!(
            boot,
            Boot {
                entry: 0x4000_0100,
                x0: 0x4000_0800
            }
        );
        assert_eq!(&ram[0x100..0x106], &[1, 2, 3, 0, 0, 0xee]);
        assert_eq!(ram[0x800], 9);
    }

    #[test]
    fn bad_bundles_are_refused() {
        let mut ram = vec![0; 0x1000];
        assert_eq!(
            load_bundle(b"\x7fELF....", &mut ram, 0x4000_0000).unwrap_err(),
            BundleError::BadMagic(u64::from_le_bytes(*b"\x7fELF...."))
        );
        assert!(matches!(
            load_bundle(&[1, 2], &mut ram, 0),
            Err(BundleError::Truncated { .. })
        ));
        let b = write_bundle(
            Boot {
                entry: 0x4000_0000,
                x0: 0,
            },
            &[(0x4000_0ffe, &[1, 2, 3], 3)],
        );
        assert_eq!(
            load_bundle(&b, &mut ram, 0x4000_0000),
            Err(BundleError::PartOutsideRam {
                gpa: 0x4000_0ffe,
                size: 3
            })
        );
        let b = write_bundle(
            Boot {
                entry: 0x5000_0000,
                x0: 0,
            },
            &[],
        );
        assert_eq!(
            load_bundle(&b, &mut ram, 0x4000_0000),
            Err(BundleError::EntryOutsideRam(0x5000_0000))
        );
        let mut b = write_bundle(
            Boot {
                entry: 0x4000_0000,
                x0: 0,
            },
            &[(0x4000_0000, &[1], 1)],
        );
        b.truncate(b.len() - 1);
        assert_eq!(
            load_bundle(&b, &mut ram, 0x4000_0000),
            Err(BundleError::PartOutsideBundle(0))
        );
        let mut b = write_bundle(
            Boot {
                entry: 0x4000_0000,
                x0: 0,
            },
            &[],
        );
        b[24] = 99;
        assert_eq!(
            load_bundle(&b, &mut ram, 0x4000_0000),
            Err(BundleError::TooManyParts(99))
        );
    }
}
