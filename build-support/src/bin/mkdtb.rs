//! `mkdtb SYSTEM_XML --bootargs "..." [--initrd-start A --initrd-size N] -o OUT.dtb`: the Linux
//! guest's device tree for the VM in SYSTEM_XML (see `lazyfp_build::guest_dtb`). Numbers are
//! decimal or 0x-hex, as in system.xml.

use std::{fs, process::ExitCode};

use lazyfp_build::{guest_dtb, parse, parse_number, DtbParams};

const USAGE: &str =
    "usage: mkdtb SYSTEM_XML --bootargs ARGS [--initrd-start ADDR --initrd-size BYTES] -o OUT.dtb";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mkdtb: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut system_xml = None;
    let mut bootargs = None;
    let mut initrd_start = None;
    let mut initrd_size = None;
    let mut output = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value; {USAGE}"))
        };
        match arg.as_str() {
            "--bootargs" => bootargs = Some(value()?),
            "--initrd-start" => initrd_start = Some(number(&arg, &value()?)?),
            "--initrd-size" => initrd_size = Some(number(&arg, &value()?)?),
            "-o" => output = Some(value()?),
            _ if arg.starts_with('-') || system_xml.is_some() => {
                return Err(format!("unexpected argument {arg:?}; {USAGE}"))
            }
            _ => system_xml = Some(arg),
        }
    }
    let (Some(system_xml), Some(bootargs), Some(output)) = (system_xml, bootargs, output) else {
        return Err(USAGE.to_owned());
    };
    let initrd = match (initrd_start, initrd_size) {
        (None, None) => None,
        (Some(start), Some(size)) => Some((
            start,
            start
                .checked_add(size)
                .ok_or("--initrd-start + --initrd-size overflows")?,
        )),
        _ => return Err("--initrd-start and --initrd-size go together".to_owned()),
    };
    let xml =
        fs::read_to_string(&system_xml).map_err(|e| format!("{system_xml}: cannot read: {e}"))?;
    let system = parse(&system_xml, &xml).map_err(|e| e.to_string())?;
    let dtb = guest_dtb(&system, &DtbParams { bootargs, initrd }).map_err(|e| e.to_string())?;
    fs::write(&output, dtb).map_err(|e| format!("{output}: cannot write: {e}"))
}

fn number(flag: &str, value: &str) -> Result<u64, String> {
    parse_number(value)
        .ok_or_else(|| format!("{flag} {value:?} is not a number (decimal or 0x-hex)"))
}
