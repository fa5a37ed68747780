//! `imxboot`: makes Microkit's imx8mp_evk `loader.img` bootable on QEMU's `-machine imx8mp-evk`.
//!
//! ```text
//! imxboot --loader loader.img --image-out IMAGE --dtb-out DTB
//!         [--ram-base 0x40000000] [--ram-size 6G] [--cores 4]
//! qemu-system-aarch64 -machine imx8mp-evk -m 6G -kernel IMAGE -dtb DTB ...
//! ```
//! `--ram-size` must match QEMU's `-m`; `--cores` is the number of redistributors the stub sets
//! up (at least QEMU's `-smp`).
use std::{fs, process::ExitCode};

mod a64;
mod boot;

use boot::{dtb, wrap, Board};

struct Args {
    loader: String,
    image_out: String,
    dtb_out: String,
    board: Board,
}

const USAGE: &str = "usage: imxboot --loader loader.img --image-out IMAGE --dtb-out DTB [--ram-base ADDR] [--ram-size SIZE] [--cores N]";

/// A number in decimal or 0x-hex, `_` allowed, with an optional K, M or G suffix (binary units).
fn parse_size(s: &str) -> Option<u64> {
    let s: String = s.chars().filter(|&c| c != '_').collect();
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (&s[..], 0),
    };
    let n = match digits.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => digits.parse().ok()?,
    };
    n.checked_mul(1 << shift)
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        loader: String::new(),
        image_out: String::new(),
        dtb_out: String::new(),
        board: Board::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let mut num = || {
            let v = val()?;
            parse_size(&v).ok_or_else(|| format!("{flag} {v:?} is not a number"))
        };
        match flag.as_str() {
            "--loader" => a.loader = val()?,
            "--image-out" => a.image_out = val()?,
            "--dtb-out" => a.dtb_out = val()?,
            "--ram-base" => a.board.ram_base = num()?,
            "--ram-size" => a.board.ram_size = num()?,
            "--cores" => {
                a.board.cores = u32::try_from(num()?).map_err(|_| "--cores: too many".to_owned())?
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.loader.is_empty() || a.image_out.is_empty() || a.dtb_out.is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = args()?;
    let loader = fs::read(&a.loader).map_err(|e| format!("loader {}: {e}", a.loader))?;
    let image = wrap(&loader, &a.board).map_err(|e| format!("loader {}: {e}", a.loader))?;
    let dtb = dtb(&a.board).map_err(|e| format!("cannot write the DTB: {e}"))?;
    fs::write(&a.image_out, image).map_err(|e| format!("{}: {e}", a.image_out))?;
    fs::write(&a.dtb_out, dtb).map_err(|e| format!("{}: {e}", a.dtb_out))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imxboot: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("6G"), Some(6 << 30));
        assert_eq!(parse_size("0x4000_0000"), Some(0x4000_0000));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("4"), Some(4));
        assert_eq!(parse_size("0x10k"), Some(0x4000));
        for bad in ["", "G", "6T", "0x", "-1", "99999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
