//! `sdf-variant --policy <lazy|eager> [--set PD.ATTR=VALUE ...] IN OUT`: writes IN with the
//! board's elements (boards/<board>.xml beside IN), fitted to the cores of the kernel (MICROKIT_SDK, MICROKIT_BOARD, MICROKIT_CONFIG, as the build reads them),
//! with the VMM's `fpu` set for the policy (and any `--set` edits, e.g. a test scenario's
//! placement), after checking the result, so the Makefile derives every variant from the single
//! source.

use std::{fs, process::ExitCode};

use lazyfp_build::{
    apply_board, env_sdk, fit_to_cores, kernel_facts, load_board, sdf_variant_with, FpPolicy,
};

const USAGE: &str =
    "usage: sdf-variant --policy <lazy|eager> [--boards DIR] [--set PD.ATTR=VALUE ...] IN OUT";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(None) => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Err(Some(message)) => {
            eprintln!("sdf-variant: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), Option<String>> {
    let mut policy = None;
    let mut sets = Vec::new();
    let mut files = Vec::new();
    let mut boards = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--policy" => policy = Some(it.next().ok_or(None)?),
            "--boards" => boards = Some(std::path::PathBuf::from(it.next().ok_or(None)?)),
            "--set" => {
                let s = it.next().ok_or(None)?;
                let parsed = s
                    .split_once('=')
                    .and_then(|(k, v)| k.split_once('.').map(|(pd, attr)| (pd, attr, v)));
                sets.push(
                    parsed.ok_or_else(|| Some(format!("--set {s:?}: expected PD.ATTR=VALUE")))?,
                );
            }
            _ => files.push(a),
        }
    }
    let (Some(policy), [input, output]) = (policy, files.as_slice()) else {
        return Err(None);
    };
    let policy: FpPolicy = policy.parse().map_err(|e| Some(format!("--policy: {e}")))?;
    let xml = fs::read_to_string(input).map_err(|e| Some(format!("{input}: cannot read: {e}")))?;
    let (sdk, board, config) = env_sdk();
    let boards = boards.unwrap_or_else(|| {
        std::path::Path::new(input.as_str())
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("boards")
    });
    // The source alone first, so that its errors name its own lines.
    lazyfp_build::parse(input, &xml).map_err(|e| Some(e.to_string()))?;
    let board = load_board(&boards, &board).map_err(|e| Some(e.to_string()))?;
    let xml = apply_board(input, &xml, &board).map_err(|e| Some(e.to_string()))?;
    let cores = kernel_facts(sdk.as_deref(), &board.name, &config)
        .map_err(|e| Some(e.to_string()))?
        .num_cores;
    let xml = fit_to_cores(input, &xml, cores).map_err(|e| Some(e.to_string()))?;
    let variant = sdf_variant_with(input, &xml, policy, &sets).map_err(|e| Some(e.to_string()))?;
    let system = lazyfp_build::parse(input, &variant).map_err(|e| Some(e.to_string()))?;
    lazyfp_build::check_cores(&system, cores).map_err(|e| Some(e.to_string()))?;
    fs::write(output, variant).map_err(|e| Some(format!("{output}: cannot write: {e}")))
}
