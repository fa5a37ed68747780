//! hostile-client: a PD that neither fp-service nor the VMM trusts. It sends both every malformed
//! or unauthorised message of `lazyfp::hostile::steps`, checks each reply and, from fp-service's
//! status of every core, that nothing changed but fp-service's own error count. One step per
//! scheduling period, while the guest runs; its lines go to the board console through the VMM
//! (`lazyfp::linering`), which prefixes them `lazyfp: hostile-client `. docs/hostile.md.
#![no_std]
#![no_main]

use core::fmt::{self, Write as _};

use lazyfp::hostile::{
    judge, neon_moved, steps, Answer, Env, Moved, Peer, Snapshot, Step, Want, MSG_MAX,
};
use lazyfp::linering::{LineRing, LINE_BYTES};
use lazyfp::sdf::{
    fp_service as sdf_fp, hostile_client as sdf_self, vm as sdf_vm, vmm as sdf_vmm, NUM_CORES,
};
use lazyfp::{CoreStatus, FpServiceOp, MAX_CORES};
use microkit_rt::{get_mr, memory, notify, ppcall, set_mr, Channel, MessageInfo};

const FP_SERVICE: Channel = Channel::new(sdf_self::channel::FP_SERVICE);
const VMM: Channel = Channel::new(sdf_self::channel::VMM);
/// Sendings of a step until every core has been seen with its NEON counters unmoved.
const TRIES: usize = 64;
/// Periods to wait for room in the console ring before a line is dropped, and at the end for
/// the VMM to have printed everything (it holds lines while a guest line is open).
const RING_WAIT_PERIODS: usize = 1000;
/// What fills the words of a long message past the first two.
const FILL: u64 = 0x5eed_0000_0000_0000;

/// Off in builds that time exits (`LAZYFP_HOSTILE=0`, `make bench`): the steps would land in the
/// measurements.
const ENABLED: bool = match option_env!("LAZYFP_HOSTILE") {
    Some(v) => !matches!(v.as_bytes(), b"0"),
    None => true,
};

struct Client {
    ring: &'static LineRing,
}

/// How a step failed.
enum Failure {
    /// Message `msg` (from 1) got `got`.
    Reply { msg: usize, got: Answer, want: Want },
    /// fp-service did not answer `status` of `core`.
    Status { core: u64, got: Answer },
    /// A counter moved that nobody but this client could have moved.
    Moved(Moved),
    /// The NEON counters of the cores in `cores` (a bit each) moved across every sending.
    Busy { cores: u64, last: Option<Moved> },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answer = |f: &mut fmt::Formatter<'_>, a: &Answer| {
            write!(f, "label {} length {} mr0 {:#x}", a.label, a.length, a.mr0)
        };
        let counter = |f: &mut fmt::Formatter<'_>, m: &Moved| match m.core {
            Some(c) => write!(f, "core {c} {} {} -> {}", m.field, m.before, m.after),
            None => write!(f, "fp-service {} {} -> {}", m.field, m.before, m.after),
        };
        match self {
            Self::Reply { msg, got, want } => {
                write!(f, "message {msg}: got ")?;
                answer(f, got)?;
                write!(f, ", want label {} length {}", want.label, want.length)?;
                match want.mr0 {
                    Some(m) => write!(f, " mr0 {m:#x}"),
                    None => Ok(()),
                }
            }
            Self::Status { core, got } => {
                write!(f, "status of core {core}: ")?;
                answer(f, got)
            }
            Self::Moved(m) => {
                counter(f, m)?;
                write!(f, ", want {}", m.want)
            }
            Self::Busy { cores, last } => {
                write!(f, "cores {cores:#x} moved in each of {TRIES} sendings")?;
                match last {
                    Some(m) => {
                        f.write_str(", last: ")?;
                        counter(f, m)
                    }
                    None => Ok(()),
                }
            }
        }
    }
}

impl Client {
    /// One console line (cut at the ring's line length).
    fn say(&self, args: fmt::Arguments) {
        let mut line: heapless::String<LINE_BYTES> = heapless::String::new();
        let _ = line.write_fmt(args);
        for _ in 0..RING_WAIT_PERIODS {
            let pushed = self.ring.push(line.as_bytes()).is_ok();
            notify(VMM);
            if pushed {
                return;
            }
            microkit_rt::yield_budget();
        }
    }

    /// Signals the VMM until it has taken every line.
    fn flush(&self) {
        for _ in 0..RING_WAIT_PERIODS {
            if !self.ring.pending() {
                return;
            }
            notify(VMM);
            microkit_rt::yield_budget();
        }
    }

    fn call(ch: Channel, label: u64, length: usize, words: [u64; 2]) -> Answer {
        set_mr(0, words[0]);
        set_mr(1, words[1]);
        for i in 2..length.min(MSG_MAX) {
            set_mr(i, FILL | i as u64);
        }
        let r = ppcall(ch, MessageInfo::new(label, length));
        Answer {
            label: r.label(),
            length: r.length(),
            mr0: get_mr(0),
        }
    }

    /// fp-service's status of the cores in `cores` (a bit each).
    fn snapshot(cores: u64) -> Result<Snapshot, Failure> {
        let mut s = Snapshot {
            read: cores,
            ..Snapshot::default()
        };
        for (c, status) in s.cores.iter_mut().enumerate() {
            if cores & (1 << c) == 0 {
                continue;
            }
            let got = Self::call(FP_SERVICE, FpServiceOp::STATUS, 1, [c as u64, 0]);
            if !Want::STATUS.accepts(got) {
                return Err(Failure::Status {
                    core: c as u64,
                    got,
                });
            }
            *status = CoreStatus::from_words(get_mr);
        }
        Ok(s)
    }

    /// Sends `step` until every core has been seen unmoved across one sending (reading only the
    /// cores not seen so yet, so that a sending takes less time the fewer are left); the
    /// sendings. The exact counters are judged over all of them, on every core.
    fn run(step: &Step) -> Result<usize, Failure> {
        let ch = match step.peer {
            Peer::FpService => FP_SERVICE,
            Peer::Vmm => VMM,
        };
        let all_cores = (1u64 << NUM_CORES.min(MAX_CORES)) - 1;
        let first = Self::snapshot(all_cores)?;
        let mut unmoved = 0;
        // A core not seen unmoved yet, as the last sending found it.
        let mut last = None;
        let mut sendings = 0;
        while unmoved != all_cores {
            if sendings == TRIES {
                return Err(Failure::Busy {
                    cores: all_cores & !unmoved,
                    last,
                });
            }
            sendings += 1;
            let before = Self::snapshot(all_cores & !unmoved)?;
            for (i, m) in step.msgs.iter().enumerate() {
                let got = Self::call(ch, m.label, m.length, m.words);
                if !m.want.accepts(got) {
                    return Err(Failure::Reply {
                        msg: i + 1,
                        got,
                        want: m.want,
                    });
                }
            }
            let after = Self::snapshot(before.read)?;
            let j = judge(&before, &after, step.service_errors()).map_err(Failure::Moved)?;
            unmoved |= j.unmoved;
            let stuck = (0..MAX_CORES).find(|c| (all_cores & !unmoved) & (1 << c) != 0);
            last = stuck
                .and_then(|c| neon_moved(c, &before.cores[c], &after.cores[c]))
                .or(last);
        }
        let end = Self::snapshot(all_cores)?;
        let refusals = step.service_errors() * sendings as u64;
        // Only the exact counters: the NEON ones have moved meanwhile.
        judge(&first, &end, refusals).map_err(Failure::Moved)?;
        Ok(sendings)
    }
}

fn init() -> Client {
    // SAFETY: system.xml maps the hostile_log region read-write here; it holds only atomics,
    // shared with the VMM.
    let ring = unsafe { memory::shared::<LineRing>(sdf_self::map::HOSTILE_LOG.vaddr) };
    let client = Client { ring };
    if !ENABLED {
        // Silent too: even a line would wake the VMM.
        return client;
    }
    let env = Env {
        num_cores: NUM_CORES as u64,
        core: sdf_self::CPU as u64,
        fp_channel: sdf_fp::channel::HOSTILE_CLIENT as u64,
        vmm_channel: sdf_vmm::channel::HOSTILE_CLIENT as u64,
        vcpus: sdf_vm::VCPUS,
    };
    let all = steps(&env);
    let n = all.len();
    let mut failed = 0;
    for (i, step) in all.iter().enumerate() {
        // Each step starts with a fresh budget: one step per period.
        microkit_rt::yield_budget();
        match Client::run(step) {
            Ok(1) => client.say(format_args!("step {}/{n}: {} ok", i + 1, step.name)),
            Ok(k) => client.say(format_args!(
                "step {}/{n}: {} ok (sent {k} times: NEON sections meanwhile)",
                i + 1,
                step.name
            )),
            Err(e) => {
                failed += 1;
                client.say(format_args!("step {}/{n}: {} FAIL: {e}", i + 1, step.name));
            }
        }
    }
    if failed == 0 {
        client.say(format_args!("PASS steps={n}"));
    } else {
        client.say(format_args!("FAIL steps={n} failed={failed}"));
    }
    client.flush();
    client
}

impl microkit_rt::Handler for Client {
    type Error = core::convert::Infallible;
}

microkit_rt::protection_domain!(init);
