//! IPC protocols between NEON users, fp-service and the VMM (protected procedure calls).
//!
//! fp-service (clients call it): label = [`FpServiceOp`], MR0 = core. Reply label 0 = granted /
//! done, else an [`FpServiceError`] code; `NeonBegin` replies MR0 = 1 when a vCPU's state had to
//! be saved back first. `NeonEnd` carries MR1 = the client's cumulative count of leaked register
//! values (what it found changed under it). `Status` replies the [`CoreStatus`] words.
//!
//! VMM (fp-service calls it): label = [`SavebackOp::Saveback`], MR0 = vCPU id, MR1 = core. Reply
//! label 0 with MR0 = 1 (state saved) or 0 (nothing was live), else a [`SavebackError`] code.
//! Only fp-service's channel may ask: any other caller gets [`SavebackError::NotFpService`].
use core::fmt;

/// Requests to fp-service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpServiceOp {
    /// `kernel_neon_begin`: the caller is about to use NEON on `core`.
    NeonBegin { core: u64 },
    /// `kernel_neon_end`.
    NeonEnd { core: u64, leaks: u64 },
    /// Counters of `core` ([`CoreStatus`]); any caller may ask.
    Status { core: u64 },
}

impl FpServiceOp {
    pub const NEON_BEGIN: u64 = 1;
    pub const NEON_END: u64 = 2;
    pub const STATUS: u64 = 3;

    /// Decodes a request from its label, length and message registers.
    pub fn decode(
        label: u64,
        length: usize,
        mr: impl Fn(usize) -> u64,
    ) -> Result<Self, FpServiceError> {
        let need = match label {
            Self::NEON_BEGIN | Self::STATUS => 1,
            Self::NEON_END => 2,
            other => return Err(FpServiceError::UnknownOp(other)),
        };
        if length < need {
            return Err(FpServiceError::ShortMessage { got: length as u64 });
        }
        Ok(match label {
            Self::NEON_BEGIN => Self::NeonBegin { core: mr(0) },
            Self::NEON_END => Self::NeonEnd {
                core: mr(0),
                leaks: mr(1),
            },
            _ => Self::Status { core: mr(0) },
        })
    }

    /// (label, MRs, length) of this request.
    pub fn encode(self) -> (u64, [u64; 2], usize) {
        match self {
            Self::NeonBegin { core } => (Self::NEON_BEGIN, [core, 0], 1),
            Self::NeonEnd { core, leaks } => (Self::NEON_END, [core, leaks], 2),
            Self::Status { core } => (Self::STATUS, [core, 0], 1),
        }
    }
}

/// `Status`'s reply: MR0 grants, MR1 savebacks, MR2 open sections, MR3 leaks, MR4 errors charged
/// to the core, MR5 errors fp-service charged to no core (unknown ops, short messages, bad cores,
/// unknown clients).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStatus {
    pub grants: u64,
    pub savebacks: u64,
    pub open: u64,
    pub leaks: u64,
    pub errors: u64,
    pub service_errors: u64,
}

impl CoreStatus {
    /// Message registers of the reply.
    pub const WORDS: usize = 6;

    pub const fn words(self) -> [u64; Self::WORDS] {
        [
            self.grants,
            self.savebacks,
            self.open,
            self.leaks,
            self.errors,
            self.service_errors,
        ]
    }

    pub fn from_words(mr: impl Fn(usize) -> u64) -> Self {
        Self {
            grants: mr(0),
            savebacks: mr(1),
            open: mr(2),
            leaks: mr(3),
            errors: mr(4),
            service_errors: mr(5),
        }
    }
}

/// fp-service's error replies (the reply label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpServiceError {
    UnknownOp(u64),
    ShortMessage {
        got: u64,
    },
    BadCore(u64),
    /// The client's SDF core is another one.
    WrongCore {
        asked: u64,
        client_core: u64,
    },
    /// `neon_end` without `neon_begin`.
    NotOpen,
    /// `neon_begin` while the client's section is still open.
    AlreadyOpen,
    /// The VMM refused or failed the save-back.
    SavebackFailed(u64),
    /// A caller fp-service has no record of.
    UnknownClient(u64),
    /// A save-back completion without a `neon_begin` waiting for it.
    NotPending,
}

impl FpServiceError {
    /// Reply label of this error.
    pub const fn code(self) -> u64 {
        match self {
            Self::UnknownOp(_) => 1,
            Self::ShortMessage { .. } => 2,
            Self::BadCore(_) => 3,
            Self::WrongCore { .. } => 4,
            Self::NotOpen => 5,
            Self::AlreadyOpen => 6,
            Self::SavebackFailed(_) => 7,
            Self::UnknownClient(_) => 8,
            Self::NotPending => 9,
        }
    }

    /// The detail word sent in MR0 with the error label.
    pub const fn detail(self) -> u64 {
        match self {
            Self::UnknownOp(v)
            | Self::BadCore(v)
            | Self::SavebackFailed(v)
            | Self::UnknownClient(v) => v,
            Self::ShortMessage { got } => got,
            Self::WrongCore { asked, .. } => asked,
            Self::NotOpen | Self::AlreadyOpen | Self::NotPending => 0,
        }
    }
}

impl fmt::Display for FpServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOp(l) => write!(f, "unknown fp-service op {l}"),
            Self::ShortMessage { got } => write!(f, "short message ({got} words)"),
            Self::BadCore(c) => write!(f, "no core {c}"),
            Self::WrongCore { asked, client_core } => {
                write!(f, "core {asked} asked, client runs on {client_core}")
            }
            Self::NotOpen => write!(f, "neon_end without neon_begin"),
            Self::AlreadyOpen => write!(f, "neon_begin with a section already open"),
            Self::SavebackFailed(code) => write!(f, "VMM save-back failed (code {code})"),
            Self::UnknownClient(ch) => write!(f, "unknown client channel {ch}"),
            Self::NotPending => write!(f, "save-back completion without a waiting neon_begin"),
        }
    }
}

/// Requests to the VMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavebackOp {
    /// Save `vcpu`'s FP state back if it is live on `core`.
    Saveback { vcpu: u64, core: u64 },
}

impl SavebackOp {
    pub const SAVEBACK: u64 = 1;

    /// Decodes a request that arrived on channel `channel`; only `fp_service` (fp-service's
    /// channel) is served: whatever another caller sends is refused unread.
    pub fn decode_from(
        channel: u64,
        fp_service: u64,
        label: u64,
        length: usize,
        mr: impl Fn(usize) -> u64,
    ) -> Result<Self, SavebackError> {
        if channel != fp_service {
            return Err(SavebackError::NotFpService(channel));
        }
        Self::decode(label, length, mr)
    }

    pub fn decode(
        label: u64,
        length: usize,
        mr: impl Fn(usize) -> u64,
    ) -> Result<Self, SavebackError> {
        if label != Self::SAVEBACK {
            return Err(SavebackError::UnknownOp(label));
        }
        if length < 2 {
            return Err(SavebackError::ShortMessage { got: length as u64 });
        }
        Ok(Self::Saveback {
            vcpu: mr(0),
            core: mr(1),
        })
    }

    pub fn encode(self) -> (u64, [u64; 2], usize) {
        match self {
            Self::Saveback { vcpu, core } => (Self::SAVEBACK, [vcpu, core], 2),
        }
    }
}

/// The VMM's error replies to a save-back request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavebackError {
    UnknownOp(u64),
    ShortMessage {
        got: u64,
    },
    UnknownVcpu(u64),
    BadCore(u64),
    /// seL4 refused `TCB_SetFlags` (the seL4 error number).
    Kernel(u64),
    /// The caller (this channel of the VMM) is not fp-service: nobody else may make the VMM
    /// save a vCPU's state back.
    NotFpService(u64),
}

impl SavebackError {
    pub const fn code(self) -> u64 {
        match self {
            Self::UnknownOp(_) => 1,
            Self::ShortMessage { .. } => 2,
            Self::UnknownVcpu(_) => 3,
            Self::BadCore(_) => 4,
            Self::Kernel(_) => 5,
            Self::NotFpService(_) => 6,
        }
    }
}

impl fmt::Display for SavebackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOp(l) => write!(f, "unknown save-back op {l}"),
            Self::ShortMessage { got } => write!(f, "short save-back message ({got} words)"),
            Self::UnknownVcpu(v) => write!(f, "save-back for unknown vCPU {v}"),
            Self::BadCore(c) => write!(f, "save-back for bad core {c}"),
            Self::Kernel(e) => write!(f, "TCB_SetFlags failed: seL4 error {e}"),
            Self::NotFpService(ch) => {
                write!(f, "save-back asked on channel {ch}, not fp-service's")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp_service_ops_round_trip() {
        for op in [
            FpServiceOp::NeonBegin { core: 3 },
            FpServiceOp::NeonEnd { core: 1, leaks: 9 },
            FpServiceOp::Status { core: 0 },
        ] {
            let (label, mrs, len) = op.encode();
            assert_eq!(FpServiceOp::decode(label, len, |i| mrs[i]), Ok(op));
        }
    }

    #[test]
    fn fp_service_bad_input() {
        assert_eq!(
            FpServiceOp::decode(99, 4, |_| 0),
            Err(FpServiceError::UnknownOp(99))
        );
        assert_eq!(
            FpServiceOp::decode(FpServiceOp::NEON_END, 1, |_| 0),
            Err(FpServiceError::ShortMessage { got: 1 })
        );
        assert_eq!(
            FpServiceOp::decode(FpServiceOp::NEON_BEGIN, 0, |_| 0),
            Err(FpServiceError::ShortMessage { got: 0 })
        );
        let codes: Vec<u64> = [
            FpServiceError::UnknownOp(0),
            FpServiceError::ShortMessage { got: 0 },
            FpServiceError::BadCore(0),
            FpServiceError::WrongCore {
                asked: 0,
                client_core: 0,
            },
            FpServiceError::NotOpen,
            FpServiceError::AlreadyOpen,
            FpServiceError::SavebackFailed(0),
            FpServiceError::UnknownClient(0),
            FpServiceError::NotPending,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert!(codes.iter().all(|&c| c != 0), "0 means success");
        let mut dedup = codes.clone();
        dedup.dedup();
        assert_eq!(dedup, codes, "codes are distinct");
    }

    #[test]
    fn saveback_ops() {
        let op = SavebackOp::Saveback { vcpu: 0, core: 2 };
        let (label, mrs, len) = op.encode();
        assert_eq!(SavebackOp::decode(label, len, |i| mrs[i]), Ok(op));
        assert_eq!(
            SavebackOp::decode(7, 2, |_| 0),
            Err(SavebackError::UnknownOp(7))
        );
        assert_eq!(
            SavebackOp::decode(1, 1, |_| 0),
            Err(SavebackError::ShortMessage { got: 1 })
        );
    }

    #[test]
    fn saveback_only_from_fp_service() {
        let (label, mrs, len) = SavebackOp::Saveback { vcpu: 0, core: 0 }.encode();
        assert_eq!(
            SavebackOp::decode_from(0, 0, label, len, |i| mrs[i]),
            Ok(SavebackOp::Saveback { vcpu: 0, core: 0 })
        );
        // Refused before anything is read: the message registers are not looked at.
        let untouched =
            |_: usize| -> u64 { panic!("read a message register of an untrusted caller") };
        for (ch, label, len) in [(8, label, len), (8, 0, 0), (8, 7, 120), (1, 1, 1)] {
            assert_eq!(
                SavebackOp::decode_from(ch, 0, label, len, untouched),
                Err(SavebackError::NotFpService(ch))
            );
        }
        let codes = [
            SavebackError::UnknownOp(0),
            SavebackError::ShortMessage { got: 0 },
            SavebackError::UnknownVcpu(0),
            SavebackError::BadCore(0),
            SavebackError::Kernel(0),
            SavebackError::NotFpService(0),
        ]
        .map(SavebackError::code);
        assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn status_words_round_trip() {
        let s = CoreStatus {
            grants: 1,
            savebacks: 2,
            open: 3,
            leaks: 4,
            errors: 5,
            service_errors: 6,
        };
        let w = s.words();
        assert_eq!(w, [1, 2, 3, 4, 5, 6]);
        assert_eq!(CoreStatus::from_words(|i| w[i]), s);
    }
}
