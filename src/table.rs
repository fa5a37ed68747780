//! The per-core FP ownership table shared by the VMM and fp-service.
//!
//! The analogue of Linux's per-CPU `fpsimd_last_state`: for each core, which vCPU's FP state is
//! live in that core's registers (or will be put back by seL4 when the vCPU next runs there).
//! The VMM is the only writer of `owner` (bind in `ctxsync_fp`, flush in `put_fp` and on
//! save-back); fp-service reads it to decide whether a NEON user needs a save-back first, and
//! keeps its counters in the same entry so the VMM can print them.
//!
//! # Layout (version 1, little-endian, one 4 KiB region)
//! | offset | field |
//! |---|---|
//! | 0 | magic `"LAZYFPT\0"` |
//! | 8 | version |
//! | 16 | number of cores |
//! | 64 + 64·c | [`CoreEntry`] of core c (one cache line each, so cores do not share lines) |
//!
//! # Invariants
//! - `owner` is 0 or `vcpu id + 1`; only the VMM's hooks change it.
//! - `seq` increases by one on every change of `owner`.
use core::sync::atomic::{AtomicU64, Ordering};

/// `"LAZYFPT\0"`.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"LAZYFPT\0");
pub const TABLE_VERSION: u64 = 1;
/// Cores the layout has room for (one page).
pub const MAX_CORES: usize = 16;

/// One core's entry.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct CoreEntry {
    /// 0: no vCPU's state is live on this core; else vCPU id + 1.
    pub owner: AtomicU64,
    /// Bumped on every bind and flush.
    pub seq: AtomicU64,
    /// neon_begin calls granted on this core.
    pub grants: AtomicU64,
    /// Grants that needed a vCPU save-back first.
    pub savebacks: AtomicU64,
    /// neon_begin/neon_end sections currently open.
    pub open_sections: AtomicU64,
    /// Register values NEON clients found changed under them (isolation failures).
    pub leaks: AtomicU64,
    /// Requests refused (bad core, unbalanced end, ...).
    pub errors: AtomicU64,
    _reserved: AtomicU64,
}

/// The shared table.
#[repr(C)]
#[derive(Debug)]
pub struct FpTable {
    magic: AtomicU64,
    version: AtomicU64,
    num_cores: AtomicU64,
    _pad: [AtomicU64; 5],
    cores: [CoreEntry; MAX_CORES],
}

const _: () = assert!(core::mem::size_of::<CoreEntry>() == 64);
const _: () = assert!(core::mem::offset_of!(FpTable, cores) == 64);
const _: () = assert!(core::mem::size_of::<FpTable>() <= 4096);

/// Errors attaching to or using the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The region holds something that is not a lazyfp table.
    BadMagic(u64),
    /// A table of another layout version.
    BadVersion(u64),
    /// Attached with a different core count than the table was made with.
    CoreCountMismatch { table: u64, ours: u64 },
    /// A core number outside the table.
    BadCore(u64),
    /// More cores than the layout holds.
    TooManyCores(u64),
}

impl core::fmt::Display for TableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "fp table: bad magic {m:#x}"),
            Self::BadVersion(v) => {
                write!(f, "fp table: layout version {v}, expected {TABLE_VERSION}")
            }
            Self::CoreCountMismatch { table, ours } => {
                write!(f, "fp table: made for {table} cores, attaching with {ours}")
            }
            Self::BadCore(c) => write!(f, "fp table: no core {c}"),
            Self::TooManyCores(n) => write!(f, "fp table: {n} cores, layout holds {MAX_CORES}"),
        }
    }
}

impl Default for FpTable {
    fn default() -> Self {
        Self {
            magic: AtomicU64::new(0),
            version: AtomicU64::new(0),
            num_cores: AtomicU64::new(0),
            _pad: Default::default(),
            cores: Default::default(),
        }
    }
}

impl FpTable {
    /// Makes the (zero-filled) region a table, or checks the one the other side made: the VMM
    /// and fp-service start in an order set by priorities, so either may come first.
    pub fn attach(&self, num_cores: u64) -> Result<(), TableError> {
        if num_cores as usize > MAX_CORES || num_cores == 0 {
            return Err(TableError::TooManyCores(num_cores));
        }
        // Claim the header with the magic; the claimant then publishes version and core count.
        match self
            .magic
            .compare_exchange(0, TABLE_MAGIC, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.num_cores.store(num_cores, Ordering::Relaxed);
                self.version.store(TABLE_VERSION, Ordering::Release);
                Ok(())
            }
            Err(TABLE_MAGIC) => {
                // The other side claimed it; wait until it has published (a few instructions).
                let mut version = self.version.load(Ordering::Acquire);
                while version == 0 {
                    core::hint::spin_loop();
                    version = self.version.load(Ordering::Acquire);
                }
                if version != TABLE_VERSION {
                    return Err(TableError::BadVersion(version));
                }
                let table = self.num_cores.load(Ordering::Relaxed);
                if table != num_cores {
                    return Err(TableError::CoreCountMismatch {
                        table,
                        ours: num_cores,
                    });
                }
                Ok(())
            }
            Err(other) => Err(TableError::BadMagic(other)),
        }
    }

    pub fn num_cores(&self) -> u64 {
        self.num_cores.load(Ordering::Relaxed)
    }

    /// The entry of `core`, if the table has it.
    pub fn core(&self, core: u64) -> Result<&CoreEntry, TableError> {
        if core >= self.num_cores() {
            return Err(TableError::BadCore(core));
        }
        self.cores
            .get(core as usize)
            .ok_or(TableError::BadCore(core))
    }

    /// The vCPU whose FP state is live on `core`, if any.
    pub fn owner(&self, core: u64) -> Result<Option<u8>, TableError> {
        let raw = self.core(core)?.owner.load(Ordering::Acquire);
        Ok(raw.checked_sub(1).map(|v| v as u8))
    }

    /// Whether the table names `vcpu` live on `core`: [`FpTable::owner`] for the exit path
    /// (one atomic load; a core outside the table names no one).
    pub fn names(&self, core: u64, vcpu: u8) -> bool {
        self.cores
            .get(core as usize)
            .is_some_and(|e| e.owner.load(Ordering::Acquire) == vcpu as u64 + 1)
    }

    /// Records that `vcpu`'s state is live on `core` (`fpsimd_bind_state_to_cpu`).
    pub(crate) fn bind(&self, core: u64, vcpu: u8) -> Result<(), TableError> {
        let e = self.core(core)?;
        e.owner.store(vcpu as u64 + 1, Ordering::Release);
        e.seq.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Clears `core`'s entry if it names `vcpu` (`fpsimd_flush_cpu_state`); returns whether it did.
    pub(crate) fn flush(&self, core: u64, vcpu: u8) -> Result<bool, TableError> {
        let e = self.core(core)?;
        let was = e
            .owner
            .compare_exchange(vcpu as u64 + 1, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if was {
            e.seq.fetch_add(1, Ordering::Relaxed);
        }
        Ok(was)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_makes_then_checks() {
        let t = FpTable::default();
        assert_eq!(t.attach(4), Ok(()));
        assert_eq!(t.attach(4), Ok(()));
        assert_eq!(
            t.attach(2),
            Err(TableError::CoreCountMismatch { table: 4, ours: 2 })
        );
        assert_eq!(t.num_cores(), 4);
    }

    #[test]
    fn attach_rejects_foreign_region_and_sizes() {
        let t = FpTable::default();
        t.magic.store(0xdead, Ordering::Relaxed);
        assert_eq!(t.attach(1), Err(TableError::BadMagic(0xdead)));
        let t = FpTable::default();
        assert_eq!(
            t.attach(MAX_CORES as u64 + 1),
            Err(TableError::TooManyCores(17))
        );
        assert_eq!(t.attach(0), Err(TableError::TooManyCores(0)));
        let t = FpTable::default();
        t.magic.store(TABLE_MAGIC, Ordering::Relaxed);
        t.version.store(7, Ordering::Relaxed);
        assert_eq!(t.attach(1), Err(TableError::BadVersion(7)));
    }

    #[test]
    fn bind_and_flush_only_own_entry() {
        let t = FpTable::default();
        t.attach(2).unwrap();
        assert_eq!(t.owner(1), Ok(None));
        t.bind(1, 0).unwrap();
        assert_eq!(t.owner(1), Ok(Some(0)));
        assert_eq!(
            t.flush(1, 3),
            Ok(false),
            "another vCPU's flush leaves the entry"
        );
        assert_eq!(t.owner(1), Ok(Some(0)));
        assert_eq!(t.flush(1, 0), Ok(true));
        assert_eq!(t.owner(1), Ok(None));
        assert_eq!(t.core(1).unwrap().seq.load(Ordering::Relaxed), 2);
        assert_eq!(t.owner(2), Err(TableError::BadCore(2)));
        assert_eq!(t.bind(5, 0), Err(TableError::BadCore(5)));
    }
}
