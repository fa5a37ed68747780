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
use core::sync::atomic::Ordering;

use crate::proto::FpServiceError;
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
            return Err(self.fail(table, core, FpServiceError::UnknownClient(ch as u64)));
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

    /// Status of `core`: grants, savebacks, open sections, leaks.
    pub fn status(&mut self, table: &FpTable, core: u64) -> Result<[u64; 4], FpServiceError> {
        match table.core(core) {
            Ok(e) => Ok([
                e.grants.load(Ordering::Relaxed),
                e.savebacks.load(Ordering::Relaxed),
                e.open_sections.load(Ordering::Relaxed),
                e.leaks.load(Ordering::Relaxed),
            ]),
            Err(_) => Err(self.fail(table, core, FpServiceError::BadCore(core))),
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

    #[test]
    fn grant_without_live_vcpu_is_immediate() {
        let (t, mut s) = setup();
        assert_eq!(s.begin(&t, 1, 0), Ok(BeginStep::Grant));
        assert_eq!(s.status(&t, 0), Ok([1, 0, 1, 0]));
        assert_eq!(s.end(&t, 1, 0, 0), Ok(()));
        assert_eq!(s.status(&t, 0), Ok([1, 0, 0, 0]));
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
            s.status(&t, 0),
            Ok([0, 0, 0, 0]),
            "nothing granted before the save-back"
        );
        assert_eq!(s.finish_begin(&t, 1, 0, Ok(true)), Ok(true));
        assert_eq!(s.status(&t, 0), Ok([1, 1, 1, 0]));
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
        assert_eq!(s.status(&t, 0), Ok([0, 0, 0, 0]));
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
        assert_eq!(s.status(&t, 0), Ok([1, 1, 1, 0]));
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
        assert_eq!(s.status(&t, 0), Ok([0, 0, 0, 0]));
        assert_eq!(t.core(0).unwrap().errors.load(Ordering::Relaxed), 2);
        assert_eq!(t.core(1).unwrap().errors.load(Ordering::Relaxed), 1);
        assert_eq!(s.stats.errors, 2, "bad cores are charged to the service");
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
            s.status(&t, 0).unwrap()[2],
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
        assert_eq!(s.status(&t, 0).unwrap()[3], 2);
        s.begin(&t, 1, 0).unwrap();
        s.end(&t, 1, 0, 5).unwrap();
        assert_eq!(s.status(&t, 0).unwrap()[3], 5);
    }
}
