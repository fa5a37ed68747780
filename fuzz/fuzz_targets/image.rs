//! mkbundle's inputs: a kernel file (ELF or arm64 Image) and an initrd, turned into a bundle that
//! the VMM parses and loads into guest RAM; and any bytes as a bundle.
//!
//! Invariants: a parsed ELF's segments lie inside the file, with mem_size >= file_size, and are
//! its PT_LOAD headers; an arm64 Image header is the bytes at its offsets; a bundle made from them
//! parses back to the same boot registers and parts; a bundle (any bytes) that parses has its
//! parts inside it, and one that loads put each part's bytes (raw, or unpacked from xz) at its
//! address followed by zeros, and touched no RAM outside its parts; an xz part that cannot be
//! unpacked is refused as `Unpack`, never a panic.
#![no_main]

use lazyfp::bundle::{load_bundle, parse_bundle, unxz, write_bundle, Boot, BundleError, Encoding};
use lazyfp::image::MAX_SEGMENTS;
use lazyfp::{arm64_image, elf_layout, ImageError};
use libfuzzer_sys::fuzz_target;

const RAM_BASE: u64 = 0x4000_0000;
const RAM: usize = 0x4000;
/// The dictionary the fuzzed loader gets (streams wanting more are refused, DictTooSmall).
const DICT: usize = 0x1_0000;

fn u64_at(b: &[u8], off: u64) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Loads `bundle`; on success checks every part against the RAM it wrote.
fn check_load(bundle: &[u8]) {
    let mut ram = vec![0xa5u8; RAM];
    let parsed = parse_bundle(bundle);
    let mut dict = vec![0u8; DICT];
    let loaded = load_bundle(bundle, &mut ram, RAM_BASE, &mut dict);
    match (&parsed, &loaded) {
        (Err(e), Err(l)) => assert_eq!(e, l),
        (Ok((boot, parts)), _) => {
            for p in parts {
                assert!(p
                    .offset
                    .checked_add(p.file_size)
                    .is_some_and(|e| e <= bundle.len() as u64));
                assert!(p.encoding == Encoding::Xz || p.mem_size >= p.file_size);
            }
            let Ok(b) = loaded else {
                assert!(matches!(
                    loaded,
                    Err(BundleError::PartOutsideRam { .. }
                        | BundleError::EntryOutsideRam(_)
                        | BundleError::Unpack { .. })
                ));
                return;
            };
            assert_eq!(b, *boot);
            assert!((RAM_BASE..RAM_BASE + RAM as u64 - 3).contains(&b.entry));
            // Parts are copied in order, each its data then zeros.
            let mut want = vec![0xa5u8; RAM];
            for p in parts {
                let start = (p.gpa - RAM_BASE) as usize;
                let data = &bundle[p.offset as usize..(p.offset + p.file_size) as usize];
                let dest = &mut want[start..start + p.mem_size as usize];
                dest.fill(0);
                match p.encoding {
                    Encoding::Raw => dest[..data.len()].copy_from_slice(data),
                    Encoding::Xz => {
                        unxz(data, dest, &mut dict).expect("unpacked once, so again");
                    }
                }
            }
            assert!(ram == want, "RAM differs from the parts");
        }
        (Err(_), Ok(_)) => panic!("loaded a bundle that does not parse"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        check_load(data);
        return;
    }
    // The kernel file, then (its last `mode / 2 * 8` bytes) the initrd.
    let cut = data.len().saturating_sub((mode as usize >> 1) * 8);
    let (kernel, initrd) = data.split_at(cut);
    let mut parts: Vec<(u64, &[u8], u64)> = Vec::new();
    let boot = match elf_layout(kernel) {
        Ok((entry, segs)) => {
            assert!(segs.len() <= MAX_SEGMENTS);
            let phoff = u64_at(kernel, 32).unwrap();
            let phentsize = u16::from_le_bytes([kernel[54], kernel[55]]) as u64;
            let loads = (0..u16::from_le_bytes([kernel[56], kernel[57]]) as u64)
                .map(|i| phoff.wrapping_add(i.wrapping_mul(phentsize)))
                .filter(|&ph| u64_at(kernel, ph).is_some_and(|w| w as u32 == 1));
            for (s, ph) in segs.iter().zip(loads) {
                let end = s
                    .offset
                    .checked_add(s.file_size)
                    .expect("segment end overflows");
                assert!(
                    end <= kernel.len() as u64,
                    "{s:?} outside a {}-byte file",
                    kernel.len()
                );
                assert!(s.mem_size >= s.file_size);
                let field = |at: u64| u64_at(kernel, ph.wrapping_add(at));
                assert_eq!(
                    (Some(s.offset), Some(s.paddr), Some(s.file_size)),
                    (field(8), field(24), field(32))
                );
                parts.push((
                    s.paddr,
                    &kernel[s.offset as usize..end as usize],
                    s.mem_size,
                ));
            }
            Boot { entry, x0: 0 }
        }
        Err(e) => {
            let _ = e.to_string();
            if let ImageError::Truncated { need, have } = e {
                assert!(need > have && have == kernel.len() as u64, "{e:?}");
            }
            match arm64_image(kernel) {
                Ok(h) => {
                    assert_eq!(&kernel[0x38..0x3c], b"ARM\x64");
                    let fields = (Some(h.text_offset), Some(h.image_size), Some(h.flags));
                    assert_eq!(
                        fields,
                        (u64_at(kernel, 8), u64_at(kernel, 16), u64_at(kernel, 24))
                    );
                    let load = RAM_BASE + (h.text_offset & 0xfff);
                    parts.push((load, kernel, kernel.len() as u64));
                    Boot {
                        entry: load,
                        x0: RAM_BASE,
                    }
                }
                Err(ImageError::NotArm64Image(m)) => {
                    assert_eq!(m.to_le_bytes(), kernel[0x38..0x3c]);
                    return;
                }
                Err(ImageError::Truncated { .. }) => {
                    assert!(kernel.len() < 0x3c);
                    return;
                }
                Err(e) => panic!("arm64_image: {e:?}"),
            }
        }
    };
    if !initrd.is_empty() {
        parts.push((RAM_BASE + 0x2000, initrd, initrd.len() as u64));
    }
    parts.truncate(16);
    let bundle = write_bundle(boot, &parts);
    let (b2, parsed) = parse_bundle(&bundle).expect("mkbundle's own bundle parses");
    assert_eq!(b2, boot);
    assert_eq!(parsed.len(), parts.len());
    for (p, (gpa, data, mem)) in parsed.iter().zip(&parts) {
        assert_eq!(
            (p.gpa, p.file_size, p.mem_size),
            (*gpa, data.len() as u64, (*mem).max(data.len() as u64))
        );
        assert_eq!(
            &bundle[p.offset as usize..(p.offset + p.file_size) as usize],
            *data
        );
    }
    check_load(&bundle);
});
