//! fp-service's logic: per-client NEON sections and the decision to ask for a save-back.
//!
//! The analogue of `kernel_neon_begin` / `kernel_neon_end`: before a PD uses NEON on a core,
//! whatever vCPU state is live there is saved back into the vCPU (by the VMM, which alone holds
//! the vCPU's TCB), so that the vCPU's next FP use traps and reloads lazily instead of seL4
//! reloading it eagerly on every switch back.
//!
//! # Policy for sections that are never closed
//! Grants never make anyone wait: seL4 itself keeps every thread's FP registers apart, so an open
//! section protects nothing that another user could break. A client that never calls `neon_end`
//! therefore blocks nobody; its section stays counted in `open_sections` (visible in the status
//! dump), and its own next `neon_begin` is refused with `AlreadyOpen` until it ends the section.
//!
//! # Callers that are not clients
//! fp-service knows its clients by the channel they call on (the NEON workers of system.xml).
//! Any other caller may read `status`; everything else it sends is refused, and the refusal is
//! counted in the service's own counter, never in a core's entry: only clients change the table.
use core::sync::atomic::Ordering;

use crate::proto::{CoreStatus, FpServiceError, FpServiceOp};
use crate::table::FpTable;

const MAX_CLIENTS: usize = 62;

#[derive(Clone, Copy, Debug, Default, Hash)]
struct Client {
    known: bool,
    core: u64,
    open: bool,
    /// A `begin` waits for its save-back (`finish_begin`).
    pending: bool,
    leaks: u64,
}

/// What `neon_begin` needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginStep {
    /// Granted at once: no vCPU state is live on the core.
    Grant,
    /// Ask the VMM to save `vcpu`'s state back, then call [`FpService::finish_begin`].
    NeedSaveback { vcpu: u8, core: u64 },
}

/// Counters of requests that could not be charged to a core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceStats {
    pub errors: u64,
}

/// A reply to one request: the label (0 or an [`FpServiceError`] code) and its message registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub label: u64,
    pub mrs: [u64; CoreStatus::WORDS],
    pub length: usize,
}

impl Reply {
    fn ok(words: &[u64]) -> Self {
        let mut mrs = [0; CoreStatus::WORDS];
        mrs[..words.len()].copy_from_slice(words);
        Self {
            label: 0,
            mrs,
            length: words.len(),
        }
    }

    fn error(e: FpServiceError) -> Self {
        let mut mrs = [0; CoreStatus::WORDS];
        mrs[0] = e.detail();
        Self {
            label: e.code(),
            mrs,
            length: 1,
        }
    }
}

/// fp-service's state. Clone and Hash let the host model checker (tests/fp_explore.rs) copy and
/// fingerprint states.
#[derive(Clone, Debug, Hash)]
pub struct FpService {
    num_cores: u64,
    clients: [Client; MAX_CLIENTS],
    pub stats: ServiceStats,
}

impl FpService {
    /// `clients`: (channel id, core from the SDF) of every PD allowed to use the service.
    pub fn new(num_cores: u64, clients: &[(u8, u8)]) -> Self {
        let mut s = Self {
            num_cores,
            clients: [Client::default(); MAX_CLIENTS],
            stats: ServiceStats::default(),
        };
        for &(ch, core) in clients {
            if let Some(c) = s.clients.get_mut(ch as usize) {
                *c = Client {
                    known: true,
                    core: core as u64,
                    open: false,
                    pending: false,
                    leaks: 0,
                };
            }
        }
        s
    }

    fn fail(&mut self, table: &FpTable, core: u64, e: FpServiceError) -> FpServiceError {
        match table.core(core) {
            Ok(entry) => {
                entry.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.stats.errors += 1,
        }
        e
    }

    fn client(
        &mut self,
        table: &FpTable,
        ch: u8,
        core: u64,
    ) -> Result<&mut Client, FpServiceError> {
        let known = self.clients.get(ch as usize).is_some_and(|c| c.known);
        if !known {
            // Not charged to `core`: a caller that is no client changes no core's entry.
            self.stats.errors += 1;
            return Err(FpServiceError::UnknownClient(ch as u64));
        }
        if core >= self.num_cores || table.core(core).is_err() {
            return Err(self.fail(table, core, FpServiceError::BadCore(core)));
        }
        let client_core = self.clients[ch as usize].core;
        if client_core != core {
            return Err(self.fail(
                table,
                core,
                FpServiceError::WrongCore {
                    asked: core,
                    client_core,
                },
            ));
        }
        Ok(&mut self.clients[ch as usize])
    }

    /// `neon_begin` from the client on channel `ch`. State is unchanged on error.
    pub fn begin(
        &mut self,
        table: &FpTable,
        ch: u8,
        core: u64,
    ) -> Result<BeginStep, FpServiceError> {
        if self.client(table, ch, core)?.open {
            return Err(self.fail(table, core, FpServiceError::AlreadyOpen));
        }
        match table.owner(core) {
            Ok(Some(vcpu)) => {
                self.clients[ch as usize].pending = true;
                Ok(BeginStep::NeedSaveback { vcpu, core })
            }
            _ => {
                self.open(table, ch, core, false);
                Ok(BeginStep::Grant)
            }
        }
    }

    /// Completes a `neon_begin` that needed a save-back; `result` is the VMM's answer (Ok(saved)
    /// or its error code). Returns whether state was saved.
    pub fn finish_begin(
        &mut self,
        table: &FpTable,
        ch: u8,
        core: u64,
        result: Result<bool, u64>,
    ) -> Result<bool, FpServiceError> {
        let c = self.client(table, ch, core)?;
        if !c.pending {
            return Err(self.fail(table, core, FpServiceError::NotPending));
        }
        c.pending = false;
        match result {
            Ok(saved) => {
                self.open(table, ch, core, saved);
                Ok(saved)
            }
            Err(code) => Err(self.fail(table, core, FpServiceError::SavebackFailed(code))),
        }
    }

    fn open(&mut self, table: &FpTable, ch: u8, core: u64, saved: bool) {
        self.clients[ch as usize].open = true;
        if let Ok(e) = table.core(core) {
            e.grants.fetch_add(1, Ordering::Relaxed);
            e.open_sections.fetch_add(1, Ordering::Relaxed);
            if saved {
                e.savebacks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `neon_end`; `leaks` is the client's cumulative count of register values found changed.
    pub fn end(
        &mut self,
        table: &FpTable,
        ch: u8,
        core: u64,
        leaks: u64,
    ) -> Result<(), FpServiceError> {
        let c = self.client(table, ch, core)?;
        if !c.open {
            return Err(self.fail(table, core, FpServiceError::NotOpen));
        }
        c.open = false;
        let new_leaks = leaks.saturating_sub(c.leaks);
        c.leaks = c.leaks.max(leaks);
        if let Ok(e) = table.core(core) {
            e.open_sections.fetch_sub(1, Ordering::Relaxed);
            e.leaks.fetch_add(new_leaks, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Status of `core`.
    pub fn status(&mut self, table: &FpTable, core: u64) -> Result<CoreStatus, FpServiceError> {
        match table.core(core) {
            Ok(e) => Ok(CoreStatus {
                grants: e.grants.load(Ordering::Relaxed),
                savebacks: e.savebacks.load(Ordering::Relaxed),
                open: e.open_sections.load(Ordering::Relaxed),
                leaks: e.leaks.load(Ordering::Relaxed),
                errors: e.errors.load(Ordering::Relaxed),
                service_errors: self.stats.errors,
            }),
            Err(_) => Err(self.fail(table, core, FpServiceError::BadCore(core))),
        }
    }

    /// One protected call on channel `ch`, from its label, length and message registers to the
    /// reply. `saveback(vcpu, core)` asks the VMM to save a vCPU's state back (Ok(saved) or the
    /// VMM's error code). State is unchanged on error, but for the error counters.
    pub fn handle(
        &mut self,
        table: &FpTable,
        ch: u8,
        label: u64,
        length: usize,
        mr: impl Fn(usize) -> u64,
        saveback: impl FnOnce(u8, u64) -> Result<bool, u64>,
    ) -> Reply {
        let result = FpServiceOp::decode(label, length, mr)
            .inspect_err(|_| self.stats.errors += 1)
            .and_then(|op| self.serve(table, ch, op, saveback));
        result.unwrap_or_else(Reply::error)
    }

    fn serve(
        &mut self,
        table: &FpTable,
        ch: u8,
        op: FpServiceOp,
        saveback: impl FnOnce(u8, u64) -> Result<bool, u64>,
    ) -> Result<Reply, FpServiceError> {
        match op {
            FpServiceOp::NeonBegin { core } => {
                let saved = match self.begin(table, ch, core)? {
                    BeginStep::Grant => false,
                    BeginStep::NeedSaveback { vcpu, core } => {
                        let result = saveback(vcpu, core);
                        self.finish_begin(table, ch, core, result)?
                    }
                };
                Ok(Reply::ok(&[saved as u64]))
            }
            FpServiceOp::NeonEnd { core, leaks } => {
                self.end(table, ch, core, leaks)?;
                Ok(Reply::ok(&[]))
            }
            FpServiceOp::Status { core } => Ok(Reply::ok(&self.status(table, core)?.words())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (FpTable, FpService) {
        let t = FpTable::default();
        t.attach(2).unwrap();
        (t, FpService::new(2, &[(1, 0), (2, 1)]))
    }

    /// grants, savebacks, open sections, leaks of `core`.
    fn counts(s: &mut FpService, t: &FpTable, core: u64) -> [u64; 4] {
        let c = s.status(t, core).unwrap();
        [c.grants, c.savebacks, c.open, c.leaks]
    }

    #[test]
    fn grant_without_live_vcpu_is_immediate() {
        let (t, mut s) = setup();
        assert_eq!(s.begin(&t, 1, 0), Ok(BeginStep::Grant));
        assert_eq!(counts(&mut s, &t, 0), [1, 0, 1, 0]);
        assert_eq!(s.end(&t, 1, 0, 0), Ok(()));
        assert_eq!(counts(&mut s, &t, 0), [1, 0, 0, 0]);
    }

    #[test]
    fn live_vcpu_needs_saveback_then_grant() {
        let (t, mut s) = setup();
        t.bind(0, 0).unwrap();
        assert_eq!(
            s.begin(&t, 1, 0),
            Ok(BeginStep::NeedSaveback { vcpu: 0, core: 0 })
        );
        assert_eq!(
            counts(&mut s, &t, 0),
            [0, 0, 0, 0],
            "nothing granted before the save-back"
        );
        assert_eq!(s.finish_begin(&t, 1, 0, Ok(true)), Ok(true));
        assert_eq!(counts(&mut s, &t, 0), [1, 1, 1, 0]);
    }

    #[test]
    fn failed_saveback_is_refused_and_counted() {
        let (t, mut s) = setup();
        t.bind(0, 0).unwrap();
        s.begin(&t, 1, 0).unwrap();
        assert_eq!(
            s.finish_begin(&t, 1, 0, Err(3)),
            Err(FpServiceError::SavebackFailed(3))
        );
        assert_eq!(counts(&mut s, &t, 0), [0, 0, 0, 0]);
        assert_eq!(t.core(0).unwrap().errors.load(Ordering::Relaxed), 1);
        assert_eq!(
            s.begin(&t, 1, 0),
            Ok(BeginStep::NeedSaveback { vcpu: 0, core: 0 }),
            "not left open"
        );
    }

    #[test]
    fn finish_without_pending_begin_is_refused() {
        let (t, mut s) = setup();
        assert_eq!(
            s.finish_begin(&t, 1, 0, Ok(true)),
            Err(FpServiceError::NotPending)
        );
        t.bind(0, 0).unwrap();
        s.begin(&t, 1, 0).unwrap();
        assert_eq!(s.finish_begin(&t, 1, 0, Ok(true)), Ok(true));
        assert_eq!(
            s.finish_begin(&t, 1, 0, Ok(true)),
            Err(FpServiceError::NotPending),
            "only once"
        );
        assert_eq!(counts(&mut s, &t, 0), [1, 1, 1, 0]);
    }

    #[test]
    fn bad_requests_change_nothing() {
        let (t, mut s) = setup();
        assert_eq!(s.begin(&t, 9, 0), Err(FpServiceError::UnknownClient(9)));
        assert_eq!(s.begin(&t, 1, 5), Err(FpServiceError::BadCore(5)));
        assert_eq!(
            s.begin(&t, 1, 1),
            Err(FpServiceError::WrongCore {
                asked: 1,
                client_core: 0
            })
        );
        assert_eq!(s.end(&t, 1, 0, 0), Err(FpServiceError::NotOpen));
        assert_eq!(s.status(&t, 7), Err(FpServiceError::BadCore(7)));
        assert_eq!(counts(&mut s, &t, 0), [0, 0, 0, 0]);
        assert_eq!(t.core(0).unwrap().errors.load(Ordering::Relaxed), 1);
        assert_eq!(t.core(1).unwrap().errors.load(Ordering::Relaxed), 1);
        assert_eq!(
            s.stats.errors, 3,
            "bad cores and unknown clients are charged to the service"
        );
        let status = s.status(&t, 0).unwrap();
        assert_eq!((status.errors, status.service_errors), (1, 3));
    }

    /// The requests a PD that is no client can send, through the whole protected-call path.
    #[test]
    fn a_caller_that_is_no_client_changes_no_core() {
        let (t, mut s) = setup();
        t.bind(0, 0).unwrap();
        let no_saveback = |_: u8, _: u64| -> Result<bool, u64> { panic!("asked the VMM") };
        let send = |s: &mut FpService, label, words: &[u64]| {
            s.handle(&t, 9, label, words.len(), |i| words[i], no_saveback)
        };
        let unknown = Reply::error(FpServiceError::UnknownClient(9));
        for core in [0, 1, 2, u64::MAX] {
            assert_eq!(send(&mut s, FpServiceOp::NEON_BEGIN, &[core]), unknown);
            assert_eq!(
                send(&mut s, FpServiceOp::NEON_END, &[core, 1 << 40]),
                unknown
            );
        }
        assert_eq!(
            send(&mut s, 0, &[0]),
            Reply::error(FpServiceError::UnknownOp(0))
        );
        assert_eq!(
            send(&mut s, FpServiceOp::NEON_END, &[0]),
            Reply::error(FpServiceError::ShortMessage { got: 1 })
        );
        assert_eq!(
            send(&mut s, FpServiceOp::STATUS, &[2]),
            Reply::error(FpServiceError::BadCore(2))
        );
        for core in 0..2 {
            let e = t.core(core).unwrap();
            assert_eq!(e.errors.load(Ordering::Relaxed), 0, "core {core}");
            assert_eq!(counts(&mut s, &t, core), [0, 0, 0, 0], "core {core}");
        }
        assert_eq!(t.owner(0), Ok(Some(0)), "the live vCPU stays live");
        let status = send(&mut s, FpServiceOp::STATUS, &[0]);
        assert_eq!((status.label, status.length), (0, CoreStatus::WORDS));
        assert_eq!(
            status.mrs[5], 11,
            "every refusal counted once, by the service"
        );
    }

    #[test]
    fn handle_serves_clients() {
        let (t, mut s) = setup();
        t.bind(0, 1).unwrap();
        let mut asked = None;
        let r = s.handle(
            &t,
            1,
            FpServiceOp::NEON_BEGIN,
            1,
            |_| 0,
            |v, c| {
                asked = Some((v, c));
                Ok(true)
            },
        );
        assert_eq!(
            (r.label, r.length, r.mrs[0]),
            (0, 1, 1),
            "granted after a save-back"
        );
        assert_eq!(asked, Some((1, 0)));
        let r = s.handle(&t, 1, FpServiceOp::NEON_BEGIN, 1, |_| 0, |_, _| Ok(true));
        assert_eq!(r, Reply::error(FpServiceError::AlreadyOpen));
        let r = s.handle(
            &t,
            1,
            FpServiceOp::NEON_END,
            2,
            |i| [0, 0][i],
            |_, _| Ok(true),
        );
        assert_eq!((r.label, r.length), (0, 0));
        let r = s.handle(&t, 1, FpServiceOp::STATUS, 1, |_| 0, |_, _| Ok(true));
        assert_eq!(
            &r.mrs[..],
            &[1, 1, 0, 0, 1, 0],
            "AlreadyOpen charged to core 0"
        );
    }

    #[test]
    fn never_ended_section_blocks_only_its_owner() {
        let (t, mut s) = setup();
        assert_eq!(s.begin(&t, 1, 0), Ok(BeginStep::Grant));
        assert_eq!(s.begin(&t, 1, 0), Err(FpServiceError::AlreadyOpen));
        assert_eq!(
            s.begin(&t, 2, 1),
            Ok(BeginStep::Grant),
            "others are not held up"
        );
        assert_eq!(
            s.status(&t, 0).unwrap().open,
            1,
            "the open section shows in the status"
        );
    }

    #[test]
    fn leaks_are_cumulative_per_client() {
        let (t, mut s) = setup();
        s.begin(&t, 1, 0).unwrap();
        s.end(&t, 1, 0, 2).unwrap();
        s.begin(&t, 1, 0).unwrap();
        s.end(&t, 1, 0, 2).unwrap();
        assert_eq!(s.status(&t, 0).unwrap().leaks, 2);
        s.begin(&t, 1, 0).unwrap();
        s.end(&t, 1, 0, 5).unwrap();
        assert_eq!(s.status(&t, 0).unwrap().leaks, 5);
    }
}
