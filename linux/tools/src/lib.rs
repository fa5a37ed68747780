//! lazyfp's in-guest Linux tools: `fpstress` checks that a process's FP/SIMD state survives
//! yields, system calls and signals; `exitbench` times trapped accesses to the emulated GIC
//! distributor against a system call.
//!
//! This library holds the tools' pure parts, tested on the host: the register patterns and
//! their comparison, the record a stress process hands its parent, statistics over timings, and
//! the command lines. [`arch`] (aarch64 only) holds the asm.

#[cfg(target_arch = "aarch64")]
pub mod arch;
mod cli;
mod fpstate;
mod record;
mod stats;

pub use cli::{parse_exitbench, parse_fpstress, ExitbenchArgs, FpstressArgs};
pub use fpstate::{
    expected, first_mismatch, mismatches, reg_name, FpState, Mismatch, FPCR_MASK, FPSR_MASK,
    NUM_REGS, REG_FPCR, REG_FPSR,
};
pub use record::{ChildReport, Totals, REPORT_BYTES};
pub use stats::{per_op_ns, Spread};
