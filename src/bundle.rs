//! The guest bundle: what the VMM loads into guest RAM, prepared at build time (`mkbundle`).
//!
//! Everything that needs parsing or a decision (ELF segments, the arm64 Image header, where the
//! DTB and initrd go, the device tree itself) is done by the host tool, which can report bad
//! input by file name and size; the VMM only copies parts to the addresses recorded here.
//!
//! A part may be stored XZ-compressed ([`Encoding::Xz`]): on boards whose Microkit layout
//! leaves little room for the initial task (which carries the bundle), Linux fits only so.
//!
//! # Layout (version 2, little-endian u64 words)
//! | offset | field |
//! |---|---|
//! | 0 | magic `"LFPBNDL2"` |
//! | 8 | entry: the guest's first PC |
//! | 16 | x0 at entry (the DTB's address for Linux, else 0) |
//! | 24 | number of parts n (at most [`MAX_PARTS`]) |
//! | 32 + 40·i | part i: guest-physical address, offset in the bundle, bytes in the bundle, bytes in memory (the rest zero-filled), encoding (0 raw, 1 xz) |
use core::fmt;

/// `"LFPBNDL2"`.
pub const BUNDLE_MAGIC: u64 = u64::from_le_bytes(*b"LFPBNDL2");
pub const HEADER_BYTES: usize = 32;
pub const PART_BYTES: usize = 40;
pub const MAX_PARTS: usize = 16;
/// The LZMA2 dictionary of compressed parts: mkbundle compresses with it, and the VMM's
/// scratch buffer must hold it.
pub const XZ_DICT_BYTES: usize = 1 << 20;

/// How a part's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Raw = 0,
    /// An .xz stream (CRC32 check; LZMA2 with at most [`XZ_DICT_BYTES`] of dictionary, and
    /// optionally the ARM64 branch filter).
    Xz = 1,
}

impl Encoding {
    fn from_word(w: u64) -> Option<Self> {
        match w {
            0 => Some(Self::Raw),
            1 => Some(Self::Xz),
            _ => None,
        }
    }
}

/// Why a compressed part cannot be unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpackError {
    /// The data is not a valid .xz stream, or its check failed.
    Corrupt,
    /// The stream needs a larger dictionary than the scratch buffer (bytes it needs).
    DictTooSmall(u64),
    /// A filter, check or option the decoder does not support.
    Unsupported,
    /// It unpacks to more than the part's bytes in memory.
    TooBig,
    /// The stream ends early.
    Truncated,
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt => write!(f, "corrupt xz data"),
            Self::DictTooSmall(n) => write!(
                f,
                "xz dictionary of {n} bytes, more than the {XZ_DICT_BYTES} the loader has"
            ),
            Self::Unsupported => write!(f, "unsupported xz filter, check or option"),
            Self::TooBig => write!(f, "unpacks to more than its size in memory"),
            Self::Truncated => write!(f, "xz stream ends early"),
        }
    }
}

/// Unpacks the .xz stream `src` into the start of `out`, with `dict` as the decoder's
/// dictionary; returns the bytes written.
pub fn unxz(src: &[u8], out: &mut [u8], dict: &mut [u8]) -> Result<usize, UnpackError> {
    use xz4rust::{XzDecoder, XzError};
    let mut dec = XzDecoder::with_fixed_size_dict(dict);
    let (mut i, mut o) = (0, 0);
    loop {
        let r = dec
            .decode(
                src.get(i..).unwrap_or(&[]),
                out.get_mut(o..).unwrap_or(&mut []),
            )
            .map_err(|e| match e {
                XzError::DictionaryTooLarge(n) => UnpackError::DictTooSmall(n),
                XzError::NeedsLargerInputBuffer => UnpackError::Truncated,
                XzError::UnsupportedStreamHeaderOption
                | XzError::UnsupportedBlockHeaderOption
                | XzError::UnsupportedLzmaProperties(_)
                | XzError::UnsupportedCheckType(_)
                | XzError::UnsupportedBcjFilter(_)
                | XzError::Crc64NotSupported
                | XzError::Sha256NotSupported
                | XzError::DeltaFilterUnsupported => UnpackError::Unsupported,
                _ => UnpackError::Corrupt,
            })?;
        i += r.input_consumed();
        o += r.output_produced();
        if r.is_end_of_stream() {
            return Ok(o);
        }
        if !r.made_progress() {
            return Err(if o >= out.len() {
                UnpackError::TooBig
            } else {
                UnpackError::Truncated
            });
        }
    }
}

/// A piece of the bundle and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub gpa: u64,
    pub offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
    pub encoding: Encoding,
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
    /// A part's encoding word is not one this loader knows.
    BadEncoding {
        part: usize,
        encoding: u64,
    },
    /// A compressed part cannot be unpacked.
    Unpack {
        part: usize,
        error: UnpackError,
    },
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
            Self::BadEncoding { part, encoding } => {
                write!(
                    f,
                    "guest bundle part {part} has unknown encoding {encoding}"
                )
            }
            Self::Unpack { part, error } => write!(f, "guest bundle part {part}: {error}"),
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
            encoding: {
                let w = word(bundle, at + 32)?;
                Encoding::from_word(w).ok_or(BundleError::BadEncoding {
                    part: i,
                    encoding: w,
                })?
            },
        };
        let end = p
            .offset
            .checked_add(p.file_size)
            .ok_or(BundleError::PartOutsideBundle(i))?;
        if end > bundle.len() as u64 || (p.encoding == Encoding::Raw && p.mem_size < p.file_size) {
            return Err(BundleError::PartOutsideBundle(i));
        }
        let _ = parts.push(p);
    }
    Ok((boot, parts))
}

/// Copies (or unpacks, with `dict` as the XZ dictionary) every part of `bundle` into `ram`
/// (guest-physical `ram_base`), zero-filling each part's tail; returns the boot registers.
pub fn load_bundle(
    bundle: &[u8],
    ram: &mut [u8],
    ram_base: u64,
    dict: &mut [u8],
) -> Result<Boot, BundleError> {
    let (boot, parts) = parse_bundle(bundle)?;
    let ram_len = ram.len() as u64;
    let in_ram = |gpa: u64, size: u64| {
        let start = gpa.checked_sub(ram_base)?;
        let end = start.checked_add(size)?;
        (end <= ram_len).then_some((start as usize, end as usize))
    };
    for (i, p) in parts.iter().enumerate() {
        let (start, end) = in_ram(p.gpa, p.mem_size).ok_or(BundleError::PartOutsideRam {
            gpa: p.gpa,
            size: p.mem_size,
        })?;
        let src = &bundle[p.offset as usize..(p.offset + p.file_size) as usize];
        let dst = &mut ram[start..end];
        let n = match p.encoding {
            Encoding::Raw => {
                dst[..src.len()].copy_from_slice(src);
                src.len()
            }
            Encoding::Xz => {
                unxz(src, dst, dict).map_err(|error| BundleError::Unpack { part: i, error })?
            }
        };
        dst[n..].fill(0);
    }
    if in_ram(boot.entry, 4).is_none() {
        return Err(BundleError::EntryOutsideRam(boot.entry));
    }
    Ok(boot)
}

/// Writes a bundle (host side; the layout above). `parts` are (guest-physical address, data,
/// bytes in memory), stored raw.
#[cfg(any(test, feature = "std"))]
pub fn write_bundle(boot: Boot, parts: &[(u64, &[u8], u64)]) -> std::vec::Vec<u8> {
    let parts: std::vec::Vec<_> = parts
        .iter()
        .map(|&(gpa, data, mem)| (gpa, data, mem.max(data.len() as u64), Encoding::Raw))
        .collect();
    write_bundle_encoded(boot, &parts)
}

/// [`write_bundle`] with each part's encoding: (guest-physical address, stored bytes, bytes in
/// memory once unpacked, encoding).
#[cfg(any(test, feature = "std"))]
pub fn write_bundle_encoded(
    boot: Boot,
    parts: &[(u64, &[u8], u64, Encoding)],
) -> std::vec::Vec<u8> {
    let mut out = std::vec::Vec::new();
    for w in [BUNDLE_MAGIC, boot.entry, boot.x0, parts.len() as u64] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let mut offset = (HEADER_BYTES + PART_BYTES * parts.len()) as u64;
    for (gpa, data, mem, enc) in parts {
        for w in [*gpa, offset, data.len() as u64, *mem, *enc as u64] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        offset += data.len() as u64;
    }
    for (_, data, _, _) in parts {
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
        let boot = load_bundle(&b, &mut ram, 0x4000_0000, &mut []).unwrap();
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
            load_bundle(b"\x7fELF....", &mut ram, 0x4000_0000, &mut []).unwrap_err(),
            BundleError::BadMagic(u64::from_le_bytes(*b"\x7fELF...."))
        );
        assert!(matches!(
            load_bundle(&[1, 2], &mut ram, 0, &mut []),
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
            load_bundle(&b, &mut ram, 0x4000_0000, &mut []),
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
            load_bundle(&b, &mut ram, 0x4000_0000, &mut []),
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
            load_bundle(&b, &mut ram, 0x4000_0000, &mut []),
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
            load_bundle(&b, &mut ram, 0x4000_0000, &mut []),
            Err(BundleError::TooManyParts(99))
        );
    }

    /// The sample mkbundle-style stream: 64 KiB of runs of xorshift bytes, `xz --check=crc32
    /// --arm64 --lzma2=preset=6,dict=1MiB`.
    const SAMPLE_XZ: &[u8] = include_bytes!("testdata/sample.xz");

    fn sample() -> std::vec::Vec<u8> {
        let (mut x, mut out) = (0x9E37_79B9_7F4A_7C15u64, std::vec::Vec::new());
        while out.len() < 65536 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let run = 1 + ((x >> 8) % 4) as usize;
            out.extend(core::iter::repeat_n(x as u8, run));
        }
        out.truncate(65536);
        out
    }

    fn xz_bundle(data: &[u8], mem: u64) -> std::vec::Vec<u8> {
        write_bundle_encoded(
            Boot {
                entry: 0x4000_0000,
                x0: 0,
            },
            &[(0x4000_1000, data, mem, Encoding::Xz)],
        )
    }

    #[test]
    fn xz_parts_unpack_and_zero_fill() {
        let want = sample();
        let mut ram = vec![0xee; 0x20000];
        let mut dict = vec![0; XZ_DICT_BYTES];
        let b = xz_bundle(SAMPLE_XZ, 65536 + 16);
        load_bundle(&b, &mut ram, 0x4000_0000, &mut dict).unwrap();
        assert_eq!(&ram[0x1000..0x1000 + 65536], &want[..]);
        assert!(ram[0x1000 + 65536..0x1000 + 65536 + 16]
            .iter()
            .all(|&b| b == 0));
        assert_eq!(ram[0x1000 + 65536 + 16], 0xee);
        assert!(ram[..0x1000].iter().all(|&b| b == 0xee));
    }

    #[test]
    fn bad_xz_parts_are_refused_with_the_reason() {
        let mut ram = vec![0; 0x20000];
        let mut dict = vec![0; XZ_DICT_BYTES];
        let err = |b: &[u8], dict: &mut [u8], ram: &mut [u8]| match load_bundle(
            b,
            ram,
            0x4000_0000,
            dict,
        ) {
            Err(BundleError::Unpack { part: 0, error }) => error,
            other => panic!("expected an unpack error, got {other:?}"),
        };
        // Room for less than it unpacks to.
        assert_eq!(
            err(&xz_bundle(SAMPLE_XZ, 65535), &mut dict, &mut ram),
            UnpackError::TooBig
        );
        // Cut short.
        let short = &SAMPLE_XZ[..SAMPLE_XZ.len() / 2];
        assert_eq!(
            err(&xz_bundle(short, 65536), &mut dict, &mut ram),
            UnpackError::Truncated
        );
        // A flipped byte in the compressed data (past the headers).
        let mut bad = SAMPLE_XZ.to_vec();
        bad[SAMPLE_XZ.len() / 2] ^= 0x40;
        assert_eq!(
            err(&xz_bundle(&bad, 65536), &mut dict, &mut ram),
            UnpackError::Corrupt
        );
        // A stream that wants a bigger dictionary than the loader's.
        let mut small = vec![0; 64 * 1024];
        assert!(matches!(
            err(&xz_bundle(SAMPLE_XZ, 65536), &mut small, &mut ram),
            UnpackError::DictTooSmall(n) if n as usize == XZ_DICT_BYTES
        ));
        // Not xz at all.
        assert_eq!(
            err(
                &xz_bundle(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 64),
                &mut dict,
                &mut ram
            ),
            UnpackError::Corrupt
        );
        // An encoding this loader does not know.
        let mut b = xz_bundle(SAMPLE_XZ, 65536);
        b[HEADER_BYTES + 32] = 7;
        assert_eq!(
            load_bundle(&b, &mut ram, 0x4000_0000, &mut dict),
            Err(BundleError::BadEncoding {
                part: 0,
                encoding: 7
            })
        );
    }
}
