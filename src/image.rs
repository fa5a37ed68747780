//! Loading a guest image into guest RAM: an AArch64 ELF (its PT_LOAD segments at their physical
//! addresses) or a raw binary at a given address.
use core::fmt;

/// Why an image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    Empty,
    /// ELF magic present but not a 64-bit little-endian AArch64 executable.
    NotAarch64Elf,
    Truncated { need: u64, have: u64 },
    /// A segment or the raw image does not fit guest RAM.
    OutsideRam { addr: u64, size: u64 },
    EntryOutsideRam(u64),
    /// A raw image without GUEST_ENTRY.
    RawWithoutEntry,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "guest image is empty"),
            Self::NotAarch64Elf => write!(f, "guest image is an ELF but not a 64-bit little-endian AArch64 one"),
            Self::Truncated { need, have } => write!(f, "guest image truncated: needs {need} bytes, has {have}"),
            Self::OutsideRam { addr, size } => {
                write!(f, "guest image part at {addr:#x} ({size} bytes) lies outside guest RAM")
            }
            Self::EntryOutsideRam(e) => write!(f, "guest entry {e:#x} lies outside guest RAM"),
            Self::RawWithoutEntry => write!(f, "raw guest image needs GUEST_ENTRY"),
        }
    }
}

const PT_LOAD: u32 = 1;
const EM_AARCH64: u16 = 183;

fn rd<const N: usize>(img: &[u8], off: u64) -> Result<[u8; N], ImageError> {
    let have = img.len() as u64;
    let end = off.checked_add(N as u64).ok_or(ImageError::Truncated { need: u64::MAX, have })?;
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

/// The part of RAM that `[addr, addr + size)` covers.
fn ram_slice(ram: &mut [u8], ram_base: u64, addr: u64, size: u64) -> Result<&mut [u8], ImageError> {
    let err = ImageError::OutsideRam { addr, size };
    let start = addr.checked_sub(ram_base).ok_or(err)?;
    let end = start.checked_add(size).ok_or(err)?;
    if end > ram.len() as u64 {
        return Err(err);
    }
    Ok(&mut ram[start as usize..end as usize])
}

/// Loads `image` into `ram` (guest-physical `ram_base`); returns the entry point.
/// `raw_entry` is the load and entry address of a raw (non-ELF) image.
pub fn load_image(image: &[u8], ram: &mut [u8], ram_base: u64, raw_entry: Option<u64>) -> Result<u64, ImageError> {
    if image.is_empty() {
        return Err(ImageError::Empty);
    }
    if !image.starts_with(b"\x7fELF") {
        let entry = raw_entry.ok_or(ImageError::RawWithoutEntry)?;
        ram_slice(ram, ram_base, entry, image.len() as u64)?.copy_from_slice(image);
        return Ok(entry);
    }
    let ident = rd::<16>(image, 0)?;
    if ident[4] != 2 || ident[5] != 1 || u16_at(image, 18)? != EM_AARCH64 {
        return Err(ImageError::NotAarch64Elf);
    }
    let entry = u64_at(image, 24)?;
    let phoff = u64_at(image, 32)?;
    let phentsize = u16_at(image, 54)? as u64;
    let phnum = u16_at(image, 56)? as u64;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(image, ph)? != PT_LOAD {
            continue;
        }
        let (offset, paddr) = (u64_at(image, ph + 8)?, u64_at(image, ph + 24)?);
        let (filesz, memsz) = (u64_at(image, ph + 32)?, u64_at(image, ph + 40)?);
        let dst = ram_slice(ram, ram_base, paddr, memsz.max(filesz))?;
        let src_end = offset.checked_add(filesz).filter(|&e| e <= image.len() as u64);
        let src_end = src_end.ok_or(ImageError::Truncated { need: offset.saturating_add(filesz), have: image.len() as u64 })?;
        let (file_part, zero_part) = dst.split_at_mut(filesz as usize);
        file_part.copy_from_slice(&image[offset as usize..src_end as usize]);
        zero_part.fill(0);
    }
    if ram_slice(ram, ram_base, entry, 4).is_err() {
        return Err(ImageError::EntryOutsideRam(entry));
    }
    Ok(entry)
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
    fn elf_segments_land_at_paddr_and_bss_is_zeroed() {
        let mut ram = vec![0xeeu8; 0x1000];
        let img = elf(0x4000_0100, 0x4000_0100, &[1, 2, 3], 6);
        assert_eq!(load_image(&img, &mut ram, 0x4000_0000, None), Ok(0x4000_0100));
        assert_eq!(&ram[0x100..0x107], &[1, 2, 3, 0, 0, 0, 0xee]);
    }

    #[test]
    fn bad_images_are_refused() {
        let mut ram = vec![0u8; 0x1000];
        assert_eq!(load_image(&[], &mut ram, 0x4000_0000, None), Err(ImageError::Empty));
        assert_eq!(load_image(b"raw", &mut ram, 0x4000_0000, None), Err(ImageError::RawWithoutEntry));
        let img = elf(0x4000_0000, 0x4000_0ffe, &[1, 2, 3], 3);
        assert_eq!(load_image(&img, &mut ram, 0x4000_0000, None), Err(ImageError::OutsideRam { addr: 0x4000_0ffe, size: 3 }));
        let img = elf(0x5000_0000, 0x4000_0000, &[1], 1);
        assert_eq!(load_image(&img, &mut ram, 0x4000_0000, None), Err(ImageError::EntryOutsideRam(0x5000_0000)));
        let mut img = elf(0x4000_0000, 0x4000_0000, &[1], 1);
        img[18] = 62; // x86-64
        assert_eq!(load_image(&img, &mut ram, 0x4000_0000, None), Err(ImageError::NotAarch64Elf));
        let img = elf(0x4000_0000, 0x4000_0000, &[1, 2], 2);
        assert!(matches!(load_image(&img[..100], &mut ram, 0x4000_0000, None), Err(ImageError::Truncated { .. })));
    }

    #[test]
    fn raw_image_at_entry() {
        let mut ram = vec![0u8; 0x1000];
        assert_eq!(load_image(b"\x01\x02", &mut ram, 0x4000_0000, Some(0x4000_0800)), Ok(0x4000_0800));
        assert_eq!(&ram[0x800..0x802], &[1, 2]);
        assert_eq!(
            load_image(b"\x01\x02", &mut ram, 0x4000_0000, Some(0x3fff_ffff)),
            Err(ImageError::OutsideRam { addr: 0x3fff_ffff, size: 2 })
        );
    }
}
