//! What QEMU's `-machine imx8mp-evk` needs to boot Microkit's imx8mp_evk `loader.img`.
//!
//! QEMU enters an arm64 Linux Image given with `-kernel` at EL2 with PSCI over SMC emulated
//! (a raw image or an ELF starts at EL3 with no PSCI, and Microkit's loader hangs at its first
//! PSCI call). So the loader is wrapped in an Image: a 64 KiB header page whose `text_offset`
//! places the loader, just after that page, at its link address. The header page's code does
//! the one thing TF-A does on the real board that seL4 relies on: QEMU's GICv3 there has no
//! security extensions and leaves every interrupt in group 0, and seL4's GICv3 driver sets
//! groups only on QEMU virt, so without this seL4 takes no interrupt at all.

use std::fmt;

use vm_fdt::FdtWriter;

use crate::a64::Insn;

/// Microkit's imx8mp_evk loader is linked here (its `loader.img` is position-dependent).
pub const LOADER_ADDR: u64 = 0x4100_0000;
/// The header page in front of the loader.
pub const HEADER_PAGE: usize = 0x1_0000;
/// Where the stub starts in the header page, after the 64-byte Image header.
const STUB_OFFSET: usize = 0x40;

/// GICv3 distributor of the i.MX8M Plus (and of QEMU's imx8mp-evk).
const GICD_BASE: u32 = 0x3880_0000;
/// GICD_IGROUPR<n>, one bit per INTID, 32 INTIDs per register.
const GICD_IGROUPR: u16 = 0x80;
/// The SPIs' registers: IGROUPR1..31 (INTIDs 32..1019). IGROUPR0 (SGIs, PPIs) is banked per core
/// in the redistributors.
const SPI_GROUP_REGS: u16 = 31;
/// Redistributor of core 0; one 128 KiB region (RD frame + SGI frame) per core.
const GICR_BASE: u32 = 0x3888_0000;
const GICR_STRIDE: u32 = 0x2_0000;
/// GICR_IGROUPR0 lies in the SGI frame, 64 KiB into each redistributor.
const GICR_IGROUPR0: u32 = 0x1_0000 + 0x80;
/// The i.MX8M Plus has four Cortex-A53s, and four redistributors.
pub const MAX_CORES: u32 = 4;

// Registers the stub uses. x0 carries the DTB address (and x1-x3 zero) from QEMU to the loader
// as the Linux boot protocol says, so the stub leaves x0-x3 alone.
const ADDR: u8 = 4;
const ONES: u8 = 5;

/// The Image header's flags (booting.rst): bit 0 little endian = 0, bits 1-2 page size 4K = 1,
/// bit 3 = 0 (placed at text_offset from a 2 MiB-aligned base).
const FLAGS_LE_4K: u64 = 1 << 1;
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
const RAM_BASE_ALIGN: u64 = 0x20_0000;

/// The machine the wrapped image is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    pub ram_base: u64,
    pub ram_size: u64,
    /// Redistributors to set up: one per core QEMU runs (`-smp`).
    pub cores: u32,
}

impl Default for Board {
    /// imx8mp_evk as the Microkit SDK's platform_gen.json describes it: 6 GiB at 0x4000_0000.
    fn default() -> Self {
        Board {
            ram_base: 0x4000_0000,
            ram_size: 6 << 30,
            cores: MAX_CORES,
        }
    }
}

/// Why no image could be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapError {
    EmptyLoader,
    /// `--cores` outside 1..=MAX_CORES.
    Cores(u32),
    /// The RAM base is not 2 MiB aligned, or not below the loader's link address minus the
    /// header page (the value given).
    RamBase(u64),
    /// The loader (its size given) does not fit in RAM at its link address.
    LoaderOutsideRam {
        size: u64,
    },
}

impl fmt::Display for WrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EmptyLoader => write!(f, "the loader image is empty"),
            Self::Cores(n) => write!(f, "{n} cores: the i.MX8M Plus has 1 to {MAX_CORES}"),
            Self::RamBase(base) => write!(
                f,
                "RAM base {base:#x}: must be 2 MiB aligned and at most {:#x} (the loader's link address {LOADER_ADDR:#x} less the {HEADER_PAGE:#x}-byte header page)",
                LOADER_ADDR - HEADER_PAGE as u64
            ),
            Self::LoaderOutsideRam { size } => write!(
                f,
                "a {size:#x}-byte loader at {LOADER_ADDR:#x} does not fit in the given RAM"
            ),
        }
    }
}

impl std::error::Error for WrapError {}

impl Board {
    fn check(&self) -> Result<(), WrapError> {
        if !(1..=MAX_CORES).contains(&self.cores) {
            return Err(WrapError::Cores(self.cores));
        }
        if !self.ram_base.is_multiple_of(RAM_BASE_ALIGN)
            || self.ram_base > LOADER_ADDR - HEADER_PAGE as u64
        {
            return Err(WrapError::RamBase(self.ram_base));
        }
        Ok(())
    }
}

/// The stub at [`STUB_OFFSET`]: every interrupt to group 1 (non-secure IRQs), then on to the
/// loader at the start of the next page.
pub fn gic_stub(cores: u32) -> Vec<Insn> {
    let mut code = vec![Insn::MovnW { rd: ONES, imm16: 0 }];
    code.extend(Insn::mov_x32(ADDR, GICD_BASE));
    code.extend((1..=SPI_GROUP_REGS).map(|n| Insn::StrW {
        rt: ONES,
        rn: ADDR,
        offset: GICD_IGROUPR + 4 * n,
    }));
    for core in 0..cores {
        code.extend(Insn::mov_x32(
            ADDR,
            GICR_BASE + core * GICR_STRIDE + GICR_IGROUPR0,
        ));
        code.push(Insn::StrW {
            rt: ONES,
            rn: ADDR,
            offset: 0,
        });
    }
    code.push(Insn::DsbSy);
    let at = STUB_OFFSET + 4 * code.len();
    code.push(Insn::B {
        offset: (HEADER_PAGE - at) as i32,
    });
    code
}

/// The arm64 Image: header page (header, stub) followed by the loader.
pub fn wrap(loader: &[u8], board: &Board) -> Result<Vec<u8>, WrapError> {
    board.check()?;
    if loader.is_empty() {
        return Err(WrapError::EmptyLoader);
    }
    let size = loader.len() as u64;
    let ram_end = board.ram_base.saturating_add(board.ram_size);
    if LOADER_ADDR.saturating_add(size) > ram_end {
        return Err(WrapError::LoaderOutsideRam { size });
    }
    let text_offset = LOADER_ADDR - HEADER_PAGE as u64 - board.ram_base;
    let image_size = (HEADER_PAGE as u64 + size).next_multiple_of(0x1000);

    let mut image = vec![0u8; HEADER_PAGE];
    let mut put = |at: usize, bytes: &[u8]| image[at..at + bytes.len()].copy_from_slice(bytes);
    // code0: over the rest of the header to the stub; code1 stays 0 (never executed).
    put(
        0,
        &Insn::B {
            offset: STUB_OFFSET as i32,
        }
        .encode()
        .to_le_bytes(),
    );
    put(8, &text_offset.to_le_bytes());
    put(16, &image_size.to_le_bytes());
    put(24, &FLAGS_LE_4K.to_le_bytes());
    put(0x38, IMAGE_MAGIC);
    for (i, insn) in gic_stub(board.cores).iter().enumerate() {
        put(STUB_OFFSET + 4 * i, &insn.encode().to_le_bytes());
    }
    image.extend_from_slice(loader);
    Ok(image)
}

/// The DTB QEMU wants beside the Image (it needs one above 4 GiB of RAM). Microkit's loader and
/// seL4 take nothing from it: it only states the RAM, and QEMU adds /chosen properties itself.
pub fn dtb(board: &Board) -> Result<Vec<u8>, vm_fdt::Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string_list(
        "compatible",
        vec!["fsl,imx8mp-evk".into(), "fsl,imx8mp".into()],
    )?;
    fdt.property_string("model", "NXP i.MX8MPlus EVK (lazyfp imxboot)")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    let chosen = fdt.begin_node("chosen")?;
    fdt.end_node(chosen)?;
    let memory = fdt.begin_node(&format!("memory@{:x}", board.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[board.ram_base, board.ram_size])?;
    fdt.end_node(memory)?;
    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
// Binary literals are grouped by the encoding's fields (sf, opc, op0...).
#[allow(clippy::unusual_byte_groupings)]
mod tests {
    use std::collections::BTreeMap;

    use fdt::Fdt;
    use lazyfp::image::arm64_image;

    use super::*;
    use crate::a64::tests::{branch_offset, hw_shift, imm16, rd, rn, str_offset};

    const LOADER: &[u8] = b"loader code and the images it carries";

    /// Runs the header page from offset 0 on a model of the instructions the stub may use
    /// (decoded from the words, not from `Insn`), returning the 32-bit stores it makes and the
    /// offset it branches out to. Any other instruction fails the test.
    fn run(page: &[u8]) -> (BTreeMap<u64, u32>, usize) {
        let mut x = [0u64; 31];
        let mut stores = BTreeMap::new();
        let mut pc = 0usize;
        for _ in 0..1000 {
            let w = u32::from_le_bytes(page[pc..pc + 4].try_into().expect("4 bytes"));
            let r = usize::from(rd(w));
            match w {
                _ if w >> 23 == 0b1_10_100101 => x[r] = imm16(w) << hw_shift(w), // movz x
                _ if w >> 23 == 0b1_11_100101 => {
                    let shift = hw_shift(w);
                    x[r] = x[r] & !(0xffff << shift) | imm16(w) << shift; // movk x
                }
                _ if w >> 23 == 0b0_00_100101 => x[r] = !(imm16(w) << hw_shift(w)) & 0xffff_ffff, // movn w
                _ if w >> 22 == 0b10_111_0_01_00 => {
                    let addr = x[usize::from(rn(w))] + str_offset(w);
                    assert!(
                        stores.insert(addr, x[r] as u32).is_none(),
                        "{addr:#x} twice"
                    );
                }
                0xD503_3F9F => {} // dsb sy
                _ if w >> 26 == 0b000101 => {
                    let to = (pc as i64 + branch_offset(w)) as usize;
                    if to >= HEADER_PAGE {
                        return (stores, to);
                    }
                    pc = to;
                    continue;
                }
                _ => panic!("unexpected word {w:#010x} at {pc:#x}"),
            }
            pc += 4;
        }
        panic!("the stub does not leave the header page");
    }

    #[test]
    fn header_places_the_loader_at_its_link_address() {
        let board = Board::default();
        let image = wrap(LOADER, &board).expect("an image");
        let hdr = arm64_image(&image).expect("an arm64 Image header");
        assert_eq!(hdr.text_offset, 0x00FF_0000);
        assert_eq!(
            board.ram_base + hdr.text_offset + HEADER_PAGE as u64,
            LOADER_ADDR
        );
        assert_eq!(
            hdr.flags, 0b010,
            "little endian, 4K pages, 2 MiB-aligned base"
        );
        assert_eq!(
            hdr.image_size, 0x11000,
            "header page + loader, page rounded"
        );
        assert!(hdr.image_size >= image.len() as u64);
        assert_eq!(&image[HEADER_PAGE..], LOADER);
        assert_eq!(image.len(), HEADER_PAGE + LOADER.len());
    }

    #[test]
    fn stub_puts_every_interrupt_in_group_1_then_enters_the_loader() {
        for cores in 1..=MAX_CORES {
            let board = Board {
                cores,
                ..Board::default()
            };
            let image = wrap(LOADER, &board).expect("an image");
            let (stores, exit) = run(&image[..HEADER_PAGE]);
            assert_eq!(exit, HEADER_PAGE, "branches to the loader's first word");
            let mut want: BTreeMap<u64, u32> =
                (1..=31).map(|n| (0x3880_0080 + 4 * n, u32::MAX)).collect();
            for core in 0..u64::from(cores) {
                want.insert(0x3889_0080 + core * 0x2_0000, u32::MAX);
            }
            assert_eq!(stores, want, "{cores} cores");
        }
    }

    #[test]
    fn stub_keeps_the_boot_protocol_registers() {
        for insn in gic_stub(MAX_CORES) {
            let w = insn.encode();
            if w >> 26 != 0b000101 && w != 0xD503_3F9F {
                assert!(rd(w) > 3, "{} writes x0-x3", insn.asm());
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let board = Board::default();
        assert_eq!(wrap(&[], &board), Err(WrapError::EmptyLoader));
        for cores in [0, 5] {
            let b = Board { cores, ..board };
            assert_eq!(wrap(LOADER, &b), Err(WrapError::Cores(cores)));
        }
        for ram_base in [0x4010_0000, 0x4100_0000] {
            let b = Board { ram_base, ..board };
            assert_eq!(wrap(LOADER, &b), Err(WrapError::RamBase(ram_base)));
        }
        let small = Board {
            ram_size: 0x100_0000 + 16,
            ..board
        };
        assert_eq!(
            wrap(&[0; 16], &small).map(|i| i.len()),
            Ok(HEADER_PAGE + 16)
        );
        assert_eq!(
            wrap(&[0; 17], &small),
            Err(WrapError::LoaderOutsideRam { size: 17 })
        );
        assert!(WrapError::RamBase(0x4010_0000)
            .to_string()
            .contains("0x40ff0000"));
    }

    #[test]
    fn dtb_states_the_ram() {
        let board = Board::default();
        let blob = dtb(&board).expect("a DTB");
        let fdt = Fdt::new(&blob).expect("a valid FDT");
        let root = fdt.find_node("/").expect("root");
        let cells = |name| root.property(name).and_then(|p| p.as_usize());
        assert_eq!(
            (cells("#address-cells"), cells("#size-cells")),
            (Some(2), Some(2))
        );
        assert!(fdt.root().compatible().all().any(|c| c == "fsl,imx8mp-evk"));
        assert!(fdt.find_node("/chosen").is_some());
        let mem = fdt.find_node("/memory@40000000").expect("memory node");
        let reg = mem.property("reg").expect("reg").value;
        let reg: Vec<u64> = reg
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(reg, [0x4000_0000, 0x1_8000_0000]);
        assert_eq!(
            mem.property("device_type").and_then(|p| p.as_str()),
            Some("memory")
        );
    }
}
