//! `sdf-variant --policy <lazy|eager> IN OUT`: writes IN with the VMM's `fpu` set for the policy,
//! after checking the result, so the Makefile derives the eager system from the single source.

use std::{fs, path::PathBuf, process::ExitCode};

use lazyfp_build::{sdf_variant, FpPolicy};

const USAGE: &str = "usage: sdf-variant --policy <lazy|eager> IN OUT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, policy, input, output] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if flag != "--policy" {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    match run(policy, PathBuf::from(input), PathBuf::from(output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sdf-variant: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(policy: &str, input: PathBuf, output: PathBuf) -> Result<(), String> {
    let policy: FpPolicy = policy.parse().map_err(|e| format!("--policy: {e}"))?;
    let xml =
        fs::read_to_string(&input).map_err(|e| format!("{}: cannot read: {e}", input.display()))?;
    let variant =
        sdf_variant(&input.display().to_string(), &xml, policy).map_err(|e| e.to_string())?;
    fs::write(&output, variant).map_err(|e| format!("{}: cannot write: {e}", output.display()))
}
