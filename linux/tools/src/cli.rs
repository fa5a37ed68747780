//! The tools' command lines.

/// `fpstress [--seconds S] [--procs P] [--self-test]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpstressArgs {
    pub seconds: u64,
    /// Stress processes per online CPU.
    pub procs: u64,
    pub self_test: bool,
}

pub const FPSTRESS_USAGE: &str = "usage: fpstress [--seconds S] [--procs P-per-CPU] [--self-test]";
pub const EXITBENCH_USAGE: &str = "usage: exitbench [-n N] [--batch B] [--self-test]";
const MAX_PROCS: u64 = 1024;

/// Parses fpstress's arguments (without the program name). `--self-test` means 1 s with 2
/// processes per CPU, unless `--seconds`/`--procs` say otherwise.
pub fn parse_fpstress<I: IntoIterator<Item = String>>(args: I) -> Result<FpstressArgs, String> {
    let mut seconds = None;
    let mut procs = None;
    let mut self_test = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = Some(number(&arg, args.next(), 1, 86_400)?),
            "--procs" => procs = Some(number(&arg, args.next(), 1, MAX_PROCS)?),
            "--self-test" => self_test = true,
            "-h" | "--help" => return Err(FPSTRESS_USAGE.to_owned()),
            _ => return Err(format!("unknown argument {arg:?}; {FPSTRESS_USAGE}")),
        }
    }
    let (default_seconds, default_procs) = if self_test { (1, 2) } else { (20, 4) };
    Ok(FpstressArgs {
        seconds: seconds.unwrap_or(default_seconds),
        procs: procs.unwrap_or(default_procs),
        self_test,
    })
}

/// `exitbench [-n N] [--batch B] [--self-test]`: N timed operations of each kind, in batches of
/// B timed together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitbenchArgs {
    pub count: u64,
    pub batch: u64,
    pub self_test: bool,
}

impl ExitbenchArgs {
    /// Number of timed batches (N / B, rounded down).
    pub fn batches(&self) -> u64 {
        self.count / self.batch
    }
}

/// Parses exitbench's arguments (without the program name).
pub fn parse_exitbench<I: IntoIterator<Item = String>>(args: I) -> Result<ExitbenchArgs, String> {
    let mut parsed = ExitbenchArgs {
        count: 10_000,
        batch: 10,
        self_test: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-n" | "--count" => parsed.count = number(&arg, args.next(), 1, 100_000_000)?,
            "--batch" => parsed.batch = number(&arg, args.next(), 1, 1_000_000)?,
            "--self-test" => parsed.self_test = true,
            "-h" | "--help" => return Err(EXITBENCH_USAGE.to_owned()),
            _ => return Err(format!("unknown argument {arg:?}; {EXITBENCH_USAGE}")),
        }
    }
    if parsed.count < parsed.batch {
        return Err(format!(
            "-n {} is less than one batch (--batch {})",
            parsed.count, parsed.batch
        ));
    }
    Ok(parsed)
}

fn number(flag: &str, value: Option<String>, min: u64, max: u64) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a number"))?;
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag} {value:?}: expected a number from {min} to {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn fpstress_defaults_and_flags() {
        assert_eq!(
            parse_fpstress(args("")),
            Ok(FpstressArgs {
                seconds: 20,
                procs: 4,
                self_test: false
            })
        );
        assert_eq!(
            parse_fpstress(args("--self-test")),
            Ok(FpstressArgs {
                seconds: 1,
                procs: 2,
                self_test: true
            })
        );
        assert_eq!(
            parse_fpstress(args("--procs 8 --seconds 300")),
            Ok(FpstressArgs {
                seconds: 300,
                procs: 8,
                self_test: false
            })
        );
        assert_eq!(
            parse_fpstress(args("--self-test --seconds 3")).map(|a| (a.seconds, a.procs)),
            Ok((3, 2))
        );
    }

    #[test]
    fn fpstress_rejects_bad_arguments() {
        for bad in [
            "--seconds",
            "--seconds 0",
            "--seconds x",
            "--procs 0",
            "--procs 1025",
            "-x",
        ] {
            assert!(parse_fpstress(args(bad)).is_err(), "{bad} accepted");
        }
        assert!(parse_fpstress(args("--procs -1"))
            .unwrap_err()
            .contains("from 1 to 1024"));
    }

    #[test]
    fn exitbench_defaults_and_flags() {
        let a = parse_exitbench(args("")).expect("defaults");
        assert_eq!(
            (a.count, a.batch, a.self_test, a.batches()),
            (10_000, 10, false, 1000)
        );
        let a = parse_exitbench(args("-n 105 --batch 10 --self-test")).expect("flags");
        assert_eq!(
            (a.count, a.batch, a.self_test, a.batches()),
            (105, 10, true, 10)
        );
        assert!(parse_exitbench(args("-n 5 --batch 10")).is_err());
        assert!(parse_exitbench(args("--batch 0")).is_err());
        assert!(parse_exitbench(args("-n")).is_err());
        assert!(parse_exitbench(args("--bogus")).is_err());
    }
}
