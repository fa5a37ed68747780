//! The test guest's pure logic: FP register patterns and their comparison, the torture's exit
//! schedule and tally, check results and their verdict encoding, the register layout of the
//! devices the guest drives, the wake-up checks, and the several-vCPU bring-up and verdict. No asm and no `unsafe`: everything here runs under `cargo test` on
//! the host. The guest image itself (boot code, exception vectors, the phases) is `src/main.rs`.
#![cfg_attr(not(test), no_std)]

pub mod benchstats;
pub mod hw;
pub mod pattern;
pub mod report;
pub mod smp;
pub mod torture;
pub mod wake;

pub use pattern::{FpState, TORTURE_EXITS, TORTURE_ITERATIONS};
pub use report::{expect_bits, expect_eq, CheckResult, Failure};
pub use torture::{ExitKind, Tally};
