//! `mkbundle`: prepares what the VMM loads into guest RAM, so every decision that can fail on
//! bad input is taken at build time and reported with file names and sizes.
//!
//! ```text
//! mkbundle --system system.xml --kernel FILE [--entry ADDR] [--initrd FILE]
//!          [--bootargs "..."] [--dtb-out FILE] [--compress xz] -o guest.img
//! ```
//! - an AArch64 ELF kernel: its PT_LOAD segments at their physical addresses, entry from the ELF;
//! - an arm64 Linux Image: at RAM base + text_offset; a DTB generated from system.xml at the top
//!   of RAM (x0 = its address) and the initrd just below it;
//! - anything else: a raw binary loaded and entered at `--entry`.
use std::{fs, path::Path, process::ExitCode};

use lazyfp::bundle::{unxz, write_bundle, write_bundle_encoded, Boot, Encoding, XZ_DICT_BYTES};
use lazyfp::image::{arm64_image, elf_layout, ImageError};
use lazyfp_build::{guest_dtb, parse, DtbParams};
use std::io::Write;
use std::process::{Command, Stdio};

const MIB2: u64 = 0x20_0000;

struct Args {
    system: String,
    kernel: String,
    entry: Option<u64>,
    initrd: Option<String>,
    bootargs: String,
    dtb_out: Option<String>,
    /// Store a Linux kernel and initrd XZ-compressed (the VMM unpacks them).
    xz: bool,
    out: String,
}

fn parse_num(s: &str) -> Option<u64> {
    let s: String = s.chars().filter(|&c| c != '_').collect();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        system: String::new(),
        kernel: String::new(),
        entry: None,
        initrd: None,
        bootargs: String::new(),
        dtb_out: None,
        xz: false,
        out: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--system" => a.system = val()?,
            "--kernel" => a.kernel = val()?,
            "--entry" => {
                let v = val()?;
                if !v.is_empty() {
                    a.entry = Some(
                        parse_num(&v).ok_or_else(|| format!("--entry {v:?} is not a number"))?,
                    );
                }
            }
            "--initrd" => a.initrd = Some(val()?).filter(|s| !s.is_empty()),
            "--bootargs" => a.bootargs = val()?,
            "--dtb-out" => a.dtb_out = Some(val()?),
            "--compress" => match val()?.as_str() {
                "xz" => a.xz = true,
                "none" | "" => a.xz = false,
                v => return Err(format!("--compress {v:?}: expected xz or none")),
            },
            "-o" => a.out = val()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.system.is_empty() || a.kernel.is_empty() || a.out.is_empty() {
        return Err("usage: mkbundle --system SDF --kernel FILE [--entry ADDR] [--initrd FILE] [--bootargs S] [--dtb-out FILE] [--compress xz] -o OUT".into());
    }
    Ok(a)
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, String> {
    let data = fs::read(path).map_err(|e| format!("{what} {path}: {e}"))?;
    if data.is_empty() {
        return Err(format!("{what} {path} is empty"));
    }
    Ok(data)
}

/// Guest RAM (base, size) from the VM's map of `guest_ram`.
fn guest_ram(system_path: &str) -> Result<(lazyfp_build::System, u64, u64), String> {
    let xml = fs::read_to_string(system_path).map_err(|e| format!("{system_path}: {e}"))?;
    let system = parse(system_path, &xml).map_err(|e| e.to_string())?;
    let vm = system
        .protection_domains
        .iter()
        .find_map(|pd| pd.virtual_machine.as_ref())
        .ok_or_else(|| format!("{system_path}: no <virtual_machine>"))?;
    let base = vm
        .maps
        .iter()
        .find(|m| m.mr == "guest_ram")
        .map(|m| m.vaddr);
    let base = base.ok_or_else(|| format!("{system_path}: the VM maps no guest_ram"))?;
    let size = system
        .mr("guest_ram")
        .and_then(|mr| mr.size)
        .ok_or_else(|| format!("{system_path}: guest_ram has no size"))?;
    Ok((system, base, size))
}

fn run() -> Result<String, String> {
    let a = args()?;
    let (system, ram_base, ram_size) = guest_ram(&a.system)?;
    let ram_end = ram_base + ram_size;
    let kernel = read(&a.kernel, "kernel")?;
    let fits = |what: &str, addr: u64, size: u64| -> Result<(), String> {
        if addr < ram_base || addr.saturating_add(size) > ram_end {
            Err(format!(
                "{what} ({size} bytes at {addr:#x}) does not fit guest RAM [{ram_base:#x}, {ram_end:#x}) ({ram_size} bytes)"
            ))
        } else {
            Ok(())
        }
    };

    let bundle = if kernel.starts_with(b"\x7fELF") {
        let (entry, segs) = elf_layout(&kernel).map_err(|e| format!("kernel {}: {e}", a.kernel))?;
        for s in &segs {
            fits(&format!("kernel {} segment", a.kernel), s.paddr, s.mem_size)?;
        }
        fits(&format!("kernel {} entry", a.kernel), entry, 4)?;
        let parts: Vec<(u64, &[u8], u64)> = segs
            .iter()
            .map(|s| {
                (
                    s.paddr,
                    &kernel[s.offset as usize..(s.offset + s.file_size) as usize],
                    s.mem_size,
                )
            })
            .collect();
        if a.initrd.is_some() {
            return Err("--initrd is for Linux Images, not ELF guests".into());
        }
        write_bundle(Boot { entry, x0: 0 }, &parts)
    } else {
        match arm64_image(&kernel) {
            Ok(hdr) => {
                let load = ram_base + hdr.text_offset;
                let span = hdr.image_size.max(kernel.len() as u64);
                fits(
                    &format!(
                        "kernel {} (text_offset {:#x}, image_size {})",
                        a.kernel, hdr.text_offset, hdr.image_size
                    ),
                    load,
                    span,
                )?;
                // The DTB at the top 2 MiB of RAM (booting.rst: 8-byte aligned, below 2 MiB, not
                // crossing a 2 MiB boundary); the initrd page-aligned just below it.
                let dtb_addr = ram_end - MIB2;
                let initrd = a.initrd.as_deref().map(|p| read(p, "initrd")).transpose()?;
                let initrd_range = match &initrd {
                    Some(data) => {
                        let size = data.len() as u64;
                        let start = dtb_addr.checked_sub(size).map(|s| s & !0xfff).unwrap_or(0);
                        if start < load + span {
                            return Err(format!(
                                "initrd {} ({size} bytes) does not fit guest RAM between the kernel (ends at {:#x}) and the DTB at {dtb_addr:#x} (guest RAM is {ram_size} bytes)",
                                a.initrd.as_deref().unwrap_or(""),
                                load + span
                            ));
                        }
                        Some((start, start + size))
                    }
                    None => None,
                };
                let dtb = guest_dtb(
                    &system,
                    &DtbParams {
                        bootargs: a.bootargs.clone(),
                        initrd: initrd_range,
                    },
                )
                .map_err(|e| format!("dtb: {e}"))?;
                if dtb.len() as u64 > MIB2 {
                    return Err(format!(
                        "generated DTB is {} bytes, more than 2 MiB",
                        dtb.len()
                    ));
                }
                if let Some(p) = &a.dtb_out {
                    fs::write(p, &dtb).map_err(|e| format!("{p}: {e}"))?;
                }
                // With --compress xz, the kernel (with the ARM64 branch filter) and the initrd
                // are stored as .xz streams; the DTB is small and stays raw.
                let pack =
                    |data: &[u8], what: &str, arm64: bool| -> Result<(Vec<u8>, Encoding), String> {
                        if a.xz {
                            Ok((xz(data, what, arm64)?, Encoding::Xz))
                        } else {
                            Ok((data.to_vec(), Encoding::Raw))
                        }
                    };
                let (kernel_data, kernel_enc) = pack(&kernel, "kernel", true)?;
                let mut parts: Vec<(u64, Vec<u8>, u64, Encoding)> = vec![
                    (load, kernel_data, span, kernel_enc),
                    (dtb_addr, dtb.clone(), dtb.len() as u64, Encoding::Raw),
                ];
                if let (Some(data), Some((start, _))) = (&initrd, initrd_range) {
                    let (d, e) = pack(data, "initrd", false)?;
                    parts.push((start, d, data.len() as u64, e));
                }
                let parts: Vec<(u64, &[u8], u64, Encoding)> = parts
                    .iter()
                    .map(|(g, d, m, e)| (*g, &d[..], *m, *e))
                    .collect();
                write_bundle_encoded(
                    Boot {
                        entry: load,
                        x0: dtb_addr,
                    },
                    &parts,
                )
            }
            Err(ImageError::NotArm64Image(_)) | Err(ImageError::Truncated { .. }) => {
                let entry = a.entry.ok_or_else(|| {
                    format!("kernel {}: neither an AArch64 ELF nor an arm64 Image (no \"ARM\\x64\" magic at 0x38); a raw binary needs GUEST_ENTRY", a.kernel)
                })?;
                fits(
                    &format!("raw kernel {}", a.kernel),
                    entry,
                    kernel.len() as u64,
                )?;
                write_bundle(
                    Boot { entry, x0: 0 },
                    &[(entry, &kernel[..], kernel.len() as u64)],
                )
            }
            Err(e) => return Err(format!("kernel {}: {e}", a.kernel)),
        }
    };
    fs::write(&a.out, &bundle).map_err(|e| format!("{}: {e}", a.out))?;
    Ok(format!(
        "mkbundle: {} ({} bytes) from {}",
        a.out,
        bundle.len(),
        Path::new(&a.kernel).display()
    ))
}

/// `data` as an .xz stream the VMM can unpack (CRC32 check, LZMA2 with XZ_DICT_BYTES of
/// dictionary, the ARM64 branch filter for code), by xz-utils; checked by unpacking it again
/// with the VMM's own decoder.
fn xz(data: &[u8], what: &str, arm64: bool) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new("xz");
    cmd.args(["-T1", "-c", "--check=crc32"]);
    if arm64 {
        cmd.arg("--arm64");
    }
    cmd.arg(format!("--lzma2=preset=9e,dict={XZ_DICT_BYTES}"));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot run xz (Debian package xz-utils): {e}"))?;
    let mut stdin = child.stdin.take().ok_or("xz: no stdin")?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|e| format!("xz: {e}"))?;
    writer
        .join()
        .map_err(|_| "xz: writer thread panicked".to_string())?
        .map_err(|e| format!("xz: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: xz failed ({})", out.status));
    }
    let mut back = vec![0; data.len()];
    let mut dict = vec![0; XZ_DICT_BYTES];
    match unxz(&out.stdout, &mut back, &mut dict) {
        Ok(n) if n == data.len() && back == data => Ok(out.stdout),
        Ok(n) => Err(format!(
            "{what}: xz round trip gave {n} bytes that differ from the input"
        )),
        Err(e) => Err(format!("{what}: xz round trip failed: {e}")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkbundle: {e}");
            ExitCode::FAILURE
        }
    }
}
