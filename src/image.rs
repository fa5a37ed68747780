//! Reading guest images: an AArch64 ELF's entry and PT_LOAD segments, and the arm64 Linux Image
//! header. Used at build time by `mkbundle`, which decides where everything goes.
use core::fmt;

/// Why an image cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// ELF magic present but not a 64-bit little-endian AArch64 executable.
    NotAarch64Elf,
    Truncated {
        need: u64,
        have: u64,
    },
    TooManySegments,
    /// No "ARM\x64" magic at 0x38 (the value found there).
    NotArm64Image(u32),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAarch64Elf => write!(
                f,
                "guest image is an ELF but not a 64-bit little-endian AArch64 one"
            ),
            Self::Truncated { need, have } => {
                write!(f, "guest image truncated: needs {need} bytes, has {have}")
            }
            Self::TooManySegments => write!(
                f,
                "guest ELF has more than {MAX_SEGMENTS} loadable segments"
            ),
            Self::NotArm64Image(m) => write!(
                f,
                "not an arm64 Image: magic at 0x38 is {m:#010x}, expected \"ARM\\x64\""
            ),
        }
    }
}

const PT_LOAD: u32 = 1;
const EM_AARCH64: u16 = 183;

fn rd<const N: usize>(img: &[u8], off: u64) -> Result<[u8; N], ImageError> {
    let have = img.len() as u64;
    let end = off.checked_add(N as u64).ok_or(ImageError::Truncated {
        need: u64::MAX,
        have,
    })?;
    img.get(off as usize..end as usize)
        .and_then(|s| s.try_into().ok())
        .ok_or(ImageError::Truncated { need: end, have })
}

fn u16_at(img: &[u8], off: u64) -> Result<u16, ImageError> {
    rd::<2>(img, off).map(u16::from_le_bytes)
}

fn u32_at(img: &[u8], off: u64) -> Result<u32, ImageError> {
    rd::<4>(img, off).map(u32::from_le_bytes)
}

fn u64_at(img: &[u8], off: u64) -> Result<u64, ImageError> {
    rd::<8>(img, off).map(u64::from_le_bytes)
}

/// A PT_LOAD segment: file bytes `[offset, offset + file_size)` go to guest-physical `paddr`,
/// followed by zeros up to `mem_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub offset: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

/// Most PT_LOAD segments a guest ELF may have.
pub const MAX_SEGMENTS: usize = 16;

/// Entry point and loadable segments of an AArch64 ELF (bounds-checked against the file).
pub fn elf_layout(image: &[u8]) -> Result<(u64, heapless::Vec<Segment, MAX_SEGMENTS>), ImageError> {
    let ident = rd::<16>(image, 0)?;
    if &ident[..4] != b"\x7fELF"
        || ident[4] != 2
        || ident[5] != 1
        || u16_at(image, 18)? != EM_AARCH64
    {
        return Err(ImageError::NotAarch64Elf);
    }
    let entry = u64_at(image, 24)?;
    let phoff = u64_at(image, 32)?;
    let phentsize = u16_at(image, 54)? as u64;
    let phnum = u16_at(image, 56)? as u64;
    let mut segments = heapless::Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(image, ph)? != PT_LOAD {
            continue;
        }
        let seg = Segment {
            offset: u64_at(image, ph + 8)?,
            paddr: u64_at(image, ph + 24)?,
            file_size: u64_at(image, ph + 32)?,
            mem_size: u64_at(image, ph + 40)?.max(u64_at(image, ph + 32)?),
        };
        let end = seg
            .offset
            .checked_add(seg.file_size)
            .filter(|&e| e <= image.len() as u64);
        end.ok_or(ImageError::Truncated {
            need: seg.offset.saturating_add(seg.file_size),
            have: image.len() as u64,
        })?;
        segments
            .push(seg)
            .map_err(|_| ImageError::TooManySegments)?;
    }
    Ok((entry, segments))
}

/// The arm64 Linux Image header (Documentation/arch/arm64/booting.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm64Image {
    /// Offset of the image from a 2 MiB-aligned base in RAM.
    pub text_offset: u64,
    /// Bytes the kernel occupies once loaded (bss included); 0 in very old kernels.
    pub image_size: u64,
    pub flags: u64,
}

/// `"ARM\x64"` at offset 0x38.
pub const ARM64_IMAGE_MAGIC: u32 = u32::from_le_bytes(*b"ARM\x64");

/// Parses the arm64 Image header; `NotArm64Image` when the magic is not there.
pub fn arm64_image(image: &[u8]) -> Result<Arm64Image, ImageError> {
    let magic = u32_at(image, 0x38)?;
    if magic != ARM64_IMAGE_MAGIC {
        return Err(ImageError::NotArm64Image(magic));
    }
    Ok(Arm64Image {
        text_offset: u64_at(image, 8)?,
        image_size: u64_at(image, 16)?,
        flags: u64_at(image, 24)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal AArch64 ELF with one PT_LOAD segment.
    fn elf(entry: u64, paddr: u64, data: &[u8], memsz: u64) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[5] = 1;
        e[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        e[24..32].copy_from_slice(&entry.to_le_bytes());
        e[32..40].copy_from_slice(&64u64.to_le_bytes());
        e[54..56].copy_from_slice(&56u16.to_le_bytes());
        e[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        e[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        e[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
        e[ph + 24..ph + 32].copy_from_slice(&paddr.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        e[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        e.extend_from_slice(data);
        e
    }

    #[test]
    fn elf_layout_reads_entry_and_segments() {
        let img = elf(0x4000_0100, 0x4000_0100, &[1, 2, 3], 6);
        let (entry, segs) = elf_layout(&img).unwrap();
        assert_eq!(entry, 0x4000_0100);
        assert_eq!(
            &segs[..],
            &[Segment {
                paddr: 0x4000_0100,
                offset: 120,
                file_size: 3,
                mem_size: 6
            }]
        );
    }

    #[test]
    fn bad_elves_are_refused() {
        assert!(matches!(
            elf_layout(b"\x7fEL"),
            Err(ImageError::Truncated { .. })
        ));
        let mut img = elf(0x4000_0000, 0x4000_0000, &[1], 1);
        img[18] = 62; // x86-64
        assert_eq!(elf_layout(&img), Err(ImageError::NotAarch64Elf));
        let img = elf(0x4000_0000, 0x4000_0000, &[1, 2], 2);
        assert!(
            matches!(elf_layout(&img[..121]), Err(ImageError::Truncated { .. })),
            "segment data cut off"
        );
        assert!(
            matches!(elf_layout(&img[..100]), Err(ImageError::Truncated { .. })),
            "program header cut off"
        );
    }

    #[test]
    fn arm64_header() {
        let mut img = vec![0u8; 64];
        img[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        img[16..24].copy_from_slice(&0x200_0000u64.to_le_bytes());
        img[24..32].copy_from_slice(&0xau64.to_le_bytes());
        assert_eq!(arm64_image(&img), Err(ImageError::NotArm64Image(0)));
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(
            arm64_image(&img),
            Ok(Arm64Image {
                text_offset: 0x8_0000,
                image_size: 0x200_0000,
                flags: 0xa
            })
        );
        assert!(matches!(
            arm64_image(&img[..40]),
            Err(ImageError::Truncated { .. })
        ));
    }
}
