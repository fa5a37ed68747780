//! The handful of A64 instructions the boot stub uses, encoded by hand (Arm ARM, section C6.2):
//! small enough that pulling in an assembler is not worth it, and each encoding is checked in
//! the tests, against GNU as where it is installed.

/// One instruction of the stub. Register numbers are 0..=30; fields out of range are masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// `movz xRD, #imm16, lsl #(16 * hw)`: xRD = imm16 << 16*hw, the other bits cleared.
    MovzX { rd: u8, imm16: u16, hw: u8 },
    /// `movk xRD, #imm16, lsl #(16 * hw)`: replaces one halfword of xRD, keeps the rest.
    MovkX { rd: u8, imm16: u16, hw: u8 },
    /// `movn wRD, #imm16`: wRD = !imm16 (so `imm16 = 0` gives all ones).
    MovnW { rd: u8, imm16: u16 },
    /// `str wRT, [xRN, #offset]`: 32-bit store, unsigned offset (a multiple of 4 below 16 KiB).
    StrW { rt: u8, rn: u8, offset: u16 },
    /// `dsb sy`: the GIC writes complete before the loader runs.
    DsbSy,
    /// `b .+offset`: PC-relative branch, offset in bytes (a multiple of 4 within ±128 MiB).
    B { offset: i32 },
}

const REG: u32 = 0x1f;

impl Insn {
    /// `movz` + `movk`: xRD = `value` (a 32-bit address) in two instructions.
    pub fn mov_x32(rd: u8, value: u32) -> [Insn; 2] {
        [
            Insn::MovzX {
                rd,
                imm16: (value >> 16) as u16,
                hw: 1,
            },
            Insn::MovkX {
                rd,
                imm16: value as u16,
                hw: 0,
            },
        ]
    }

    /// The instruction word (stored little endian).
    pub fn encode(self) -> u32 {
        // Move wide (immediate): sf opc 100101 hw imm16 Rd; opc 00 = movn, 10 = movz, 11 = movk.
        let wide = |base: u32, rd: u8, imm16: u16, hw: u8| {
            base | (u32::from(hw) & 3) << 21 | u32::from(imm16) << 5 | u32::from(rd) & REG
        };
        match self {
            Insn::MovzX { rd, imm16, hw } => wide(0xD280_0000, rd, imm16, hw),
            Insn::MovkX { rd, imm16, hw } => wide(0xF280_0000, rd, imm16, hw),
            Insn::MovnW { rd, imm16 } => wide(0x1280_0000, rd, imm16, 0),
            // Load/store register (unsigned immediate), size 10 = 32 bit: imm12 is offset / 4.
            Insn::StrW { rt, rn, offset } => {
                0xB900_0000
                    | (u32::from(offset) >> 2 & 0xfff) << 10
                    | (u32::from(rn) & REG) << 5
                    | u32::from(rt) & REG
            }
            Insn::DsbSy => 0xD503_3F9F,
            // Unconditional branch (immediate): 000101 imm26, imm26 = offset / 4.
            Insn::B { offset } => 0x1400_0000 | (offset >> 2) as u32 & 0x03FF_FFFF,
        }
    }

    /// The same instruction in GNU as syntax, for the assembler cross-check and test messages.
    #[cfg(test)]
    pub fn asm(self) -> String {
        match self {
            Insn::MovzX { rd, imm16, hw } => format!("movz x{rd}, #{imm16:#x}, lsl #{}", 16 * hw),
            Insn::MovkX { rd, imm16, hw } => format!("movk x{rd}, #{imm16:#x}, lsl #{}", 16 * hw),
            Insn::MovnW { rd, imm16 } => format!("movn w{rd}, #{imm16:#x}"),
            Insn::StrW { rt, rn, offset } => format!("str w{rt}, [x{rn}, #{offset:#x}]"),
            Insn::DsbSy => "dsb sy".to_owned(),
            Insn::B { offset } if offset < 0 => format!("b .-{:#x}", offset.unsigned_abs()),
            Insn::B { offset } => format!("b .+{offset:#x}"),
        }
    }
}

#[cfg(test)]
// Binary literals are grouped by the encoding's fields (sf, opc, op0...).
#[allow(clippy::unusual_byte_groupings)]
pub(crate) mod tests {
    use std::process::Command;

    use super::*;

    /// Field decoders written from the Arm ARM independently of `encode`, for the tests here
    /// and the stub's simulator in `boot`.
    pub(crate) fn rd(w: u32) -> u8 {
        (w & 0x1f) as u8
    }
    pub(crate) fn rn(w: u32) -> u8 {
        (w >> 5 & 0x1f) as u8
    }
    pub(crate) fn imm16(w: u32) -> u64 {
        u64::from(w >> 5 & 0xffff)
    }
    pub(crate) fn hw_shift(w: u32) -> u32 {
        (w >> 21 & 3) * 16
    }
    pub(crate) fn str_offset(w: u32) -> u64 {
        u64::from(w >> 10 & 0xfff) * 4
    }
    /// The byte offset of a `b`, sign-extended from imm26.
    pub(crate) fn branch_offset(w: u32) -> i64 {
        i64::from(((w & 0x03FF_FFFF) << 6) as i32 >> 6) * 4
    }

    #[test]
    fn fields_land_where_the_arm_arm_puts_them() {
        let [movz, movk] = Insn::mov_x32(4, 0x3889_0080);
        let (movz, movk) = (movz.encode(), movk.encode());
        assert_eq!(movz >> 23, 0b1_10_100101, "sf=1 opc=10 (movz)");
        assert_eq!(movk >> 23, 0b1_11_100101, "sf=1 opc=11 (movk)");
        assert_eq!((rd(movz), imm16(movz), hw_shift(movz)), (4, 0x3889, 16));
        assert_eq!((rd(movk), imm16(movk), hw_shift(movk)), (4, 0x0080, 0));

        let movn = Insn::MovnW { rd: 5, imm16: 0 }.encode();
        assert_eq!(movn >> 23, 0b0_00_100101, "sf=0 opc=00 (movn)");
        assert_eq!(movn, 0x1280_0005);

        let str = Insn::StrW {
            rt: 5,
            rn: 4,
            offset: 0xfc,
        }
        .encode();
        assert_eq!(
            str >> 22,
            0b10_111_0_01_00,
            "size=10 V=0 opc=00 (str, unsigned offset)"
        );
        assert_eq!((rd(str), rn(str), str_offset(str)), (5, 4, 0xfc));
    }

    #[test]
    fn branches_decode_to_their_offsets() {
        for offset in [0x40, 0x10000 - 0x100, -8, 4, 0x7FF_FFFC, -0x800_0000] {
            let w = Insn::B { offset }.encode();
            assert_eq!(w >> 26, 0b000101, "b {offset:#x}");
            assert_eq!(branch_offset(w), i64::from(offset));
        }
        assert_eq!(Insn::B { offset: 0x40 }.encode(), 0x1400_0010);
    }

    /// Every form the stub uses, assembled by GNU as, must give the same words as `encode`.
    /// Runs only where binutils-aarch64-linux-gnu is installed.
    #[test]
    fn gnu_as_agrees() {
        let (as_, objcopy) = ("aarch64-linux-gnu-as", "aarch64-linux-gnu-objcopy");
        if Command::new(as_).arg("--version").output().is_err() {
            eprintln!("skipped: no {as_}");
            return;
        }
        let mut insns = vec![Insn::MovnW { rd: 5, imm16: 0 }, Insn::DsbSy];
        insns.extend(Insn::mov_x32(4, 0x3880_0000));
        insns.extend(Insn::mov_x32(30, 0xFFFF_FFFF));
        insns.extend([
            Insn::MovkX {
                rd: 1,
                imm16: 0xabcd,
                hw: 3,
            },
            Insn::StrW {
                rt: 5,
                rn: 4,
                offset: 0x84,
            },
            Insn::StrW {
                rt: 5,
                rn: 4,
                offset: 0x80,
            },
            Insn::StrW {
                rt: 0,
                rn: 30,
                offset: 0x3ffc,
            },
            Insn::B { offset: 0xff80 },
            Insn::B { offset: -0x40 },
        ]);
        let dir = std::env::temp_dir().join(format!("imxboot-as-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (src, obj, bin) = (dir.join("t.s"), dir.join("t.o"), dir.join("t.bin"));
        let text: String = insns.iter().map(|i| format!("\t{}\n", i.asm())).collect();
        std::fs::write(&src, &text).expect("write t.s");
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("run binutils");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new(as_).arg(&src).arg("-o").arg(&obj));
        run(Command::new(objcopy)
            .args(["-O", "binary", "-j", ".text"])
            .arg(&obj)
            .arg(&bin));
        let words: Vec<u32> = std::fs::read(&bin)
            .expect("read t.bin")
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        let ours: Vec<u32> = insns.iter().map(|i| i.encode()).collect();
        for ((insn, theirs), ours) in insns.iter().zip(&words).zip(&ours) {
            assert_eq!(
                theirs,
                ours,
                "{}: as {theirs:#010x}, ours {ours:#010x}",
                insn.asm()
            );
        }
        assert_eq!(words.len(), insns.len());
    }
}
