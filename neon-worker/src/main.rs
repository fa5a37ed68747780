//! neon-worker: a NEON workload on the vCPU's core, bracketed by fp-service's `neon_begin` /
//! `neon_end`. Each section first checks that its vector registers still hold the pattern it left
//! there (seL4 must have kept them from everyone else, the guest included), then runs a vector
//! checksum against a scalar reference, then leaves a new pattern.
#![no_std]
#![no_main]

use lazyfp::sdf::{neon_worker as sdf_self, NEON_WORKERS};
use lazyfp::FpServiceOp;
use microkit_rt::{
    checksum_neon, checksum_scalar, ppcall, println, set_mr, vregs_ppcall_wait_ppcall,
};
use microkit_rt::{Channel, MessageInfo, VRegs};

const FP_SERVICE: Channel = Channel::new(sdf_self::channel::FP_SERVICE);
/// Words of data each section checksums.
const DATA_WORDS: usize = 256;

/// This worker's core: every worker runs this ELF and finds itself by its Microkit name.
fn own_core() -> u64 {
    let name = microkit_rt::pd_name();
    match NEON_WORKERS.iter().find(|w| w.name == name) {
        Some(w) => w.cpu as u64,
        None => {
            println!("{name}: not a NEON worker of system.xml; acting for core 0");
            0
        }
    }
}

struct Worker {
    core: u64,
    round: u64,
    leaks: u64,
    checksum_errors: u64,
    refusals: u64,
    last: VRegs,
    now: VRegs,
    data: [[u32; 4]; DATA_WORDS],
}

/// Runs forever: one NEON section per request from the VMM. Between sections the vector
/// registers hold this PD's last pattern while other threads (the guest included) run: the
/// hand-over (leave the pattern, neon_end, wait, neon_begin, read the registers back) is a
/// single asm sequence, so nothing but seL4 can change them in between.
fn init() -> Worker {
    let mut w = Worker::start();
    loop {
        let (end, begin) = w.requests();
        let (end_label, _badge, begin_label, _saved) =
            vregs_ppcall_wait_ppcall(&w.last, &mut w.now, end, begin);
        w.refusals += (end_label != 0) as u64 + (begin_label != 0) as u64;
        w.section();
    }
}

/// A protected call as the register-only hand-over sends it: channel, info, message registers.
type Request<M> = (Channel, MessageInfo, M);

impl Worker {
    /// neon_end (with the leak count) and the next neon_begin, as register-only messages.
    fn requests(&self) -> (Request<[u64; 2]>, Request<u64>) {
        let (end_label, end_mrs, end_len) = FpServiceOp::NeonEnd {
            core: self.core,
            leaks: self.leaks + self.checksum_errors,
        }
        .encode();
        let (begin_label, begin_mrs, begin_len) =
            FpServiceOp::NeonBegin { core: self.core }.encode();
        (
            (FP_SERVICE, MessageInfo::new(end_label, end_len), end_mrs),
            (
                FP_SERVICE,
                MessageInfo::new(begin_label, begin_len),
                begin_mrs[0],
            ),
        )
    }
}

/// What runs inside a NEON section.
mod section {
    use super::*;

    /// The register pattern of `round`: different in every register, lane and round.
    fn pattern(round: u64) -> VRegs {
        core::array::from_fn(|r| {
            let x = (round << 8 | r as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x4e45_4f4e; // "NEON"
            (x as u128) << 64 | (!x.rotate_left(17)) as u128
        })
    }

    impl Worker {
        /// Opens the first section; its pattern is left by the first hand-over.
        #[inline(never)]
        pub(super) fn start() -> Self {
            let w = Self {
                core: own_core(),
                round: 0,
                leaks: 0,
                checksum_errors: 0,
                refusals: 0,
                last: pattern(0),
                now: [0; 32],
                data: core::array::from_fn(|i| {
                    core::array::from_fn(|l| (i * 4 + l) as u32 * 2_654_435_761)
                }),
            };
            let (label, mrs, len) = FpServiceOp::NeonBegin { core: w.core }.encode();
            set_mr(0, mrs[0]);
            let code = ppcall(FP_SERVICE, MessageInfo::new(label, len)).label();
            if code != 0 {
                println!(
                    "{}: first neon_begin refused (code {code})",
                    microkit_rt::pd_name()
                );
            }
            w
        }

        /// One section: check the registers found at its start, run the workload, choose the
        /// pattern the next hand-over leaves.
        pub(super) fn section(&mut self) {
            // Isolation: the registers must still hold what this PD left in them.
            let changed = self
                .now
                .iter()
                .zip(self.last.iter())
                .filter(|(a, b)| a != b)
                .count() as u64;
            if changed != 0 && self.leaks == 0 {
                let first = self
                    .now
                    .iter()
                    .zip(self.last.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                println!(
                    "neon_worker: v{first} changed under us: {:#x} (left {:#x})",
                    self.now[first], self.last[first]
                );
            }
            self.leaks += changed;
            if self.refusals != 0 {
                println!(
                    "neon_worker: fp-service refused {} request(s)",
                    self.refusals
                );
                self.refusals = 0;
            }
            self.round += 1;
            self.data[self.round as usize % DATA_WORDS][0] ^= self.round as u32;
            if checksum_neon(&self.data) != checksum_scalar(&self.data) {
                self.checksum_errors += 1;
                println!(
                    "{}: NEON checksum differs from the scalar reference",
                    microkit_rt::pd_name()
                );
            }
            self.last = pattern(self.round);
        }
    }
}

impl microkit_rt::Handler for Worker {
    type Error = core::convert::Infallible;
}

microkit_rt::protection_domain!(init);
