//! Errors of the system description: every one names the file, the line and the element, so a
//! build stopped by one points at what to fix.

use std::{fmt, io, path::PathBuf};

use super::require::FpPolicy;

/// Where in the system description an element is: the file as given, the element's line, and
/// the element, named by the attribute that identifies it (`name`, `mr`, `pd`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub file: String,
    pub line: u32,
    pub element: String,
    pub key: Option<(&'static str, String)>,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: <{}", self.file, self.line, self.element)?;
        if let Some((attribute, value)) = &self.key {
            write!(f, " {attribute}=\"{value}\"")?;
        }
        f.write_str(">")
    }
}

/// Everything that can be wrong with a system description, from XML syntax to lazyfp's own
/// requirements.
#[derive(Debug)]
pub enum SdfError {
    /// The file could not be read.
    Read {
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not well-formed XML.
    Xml {
        file: String,
        source: roxmltree::Error,
    },
    /// The root element is not `<system>`.
    NotASystem {
        file: String,
        root: String,
    },
    /// An element that Microkit does not allow where it stands.
    UnexpectedElement {
        at: Box<At>,
        parent: String,
    },
    /// An element or attribute Microkit knows but lazyfp does not model.
    Unsupported {
        at: Box<At>,
        feature: &'static str,
    },
    /// An attribute Microkit 2.3 does not know on this element.
    UnknownAttribute {
        at: Box<At>,
        attribute: String,
    },
    MissingAttribute {
        at: Box<At>,
        attribute: &'static str,
    },
    /// A number the Microkit tool would not parse.
    BadNumber {
        at: Box<At>,
        attribute: &'static str,
        value: String,
    },
    /// A non-numeric value outside its allowed set.
    BadValue {
        at: Box<At>,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },
    OutOfRange {
        at: Box<At>,
        attribute: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    Misaligned {
        at: Box<At>,
        attribute: &'static str,
        value: u64,
        align: u64,
    },
    /// Text where Microkit allows only elements, comments and whitespace.
    Text {
        at: Box<At>,
    },
    /// A child that may appear once appears again.
    Repeated {
        at: Box<At>,
        child: &'static str,
    },
    MissingChild {
        at: Box<At>,
        child: &'static str,
    },
    ChannelEnds {
        at: Box<At>,
        count: usize,
    },
    BudgetOverPeriod {
        at: Box<At>,
        budget: u64,
        period: u64,
    },
    /// A region with neither a size nor a prefill file.
    NoSize {
        at: Box<At>,
    },
    DuplicateName {
        at: Box<At>,
        name: String,
        first_line: u32,
    },
    UnknownPd {
        at: Box<At>,
        pd: String,
    },
    UnknownMr {
        at: Box<At>,
        attribute: &'static str,
        mr: String,
    },
    /// A channel or irq id used twice in one PD: they share the PD's badge bits.
    DuplicateId {
        at: Box<At>,
        pd: String,
        id: u8,
        first_line: u32,
    },
    DuplicateVcpu {
        at: Box<At>,
        id: u8,
        first_line: u32,
    },
    DuplicateIrq {
        at: Box<At>,
        irq: u64,
        first_line: u32,
    },
    /// A PPC toward a PD whose priority is not strictly higher than the caller's.
    PpcPriority {
        at: Box<At>,
        caller: String,
        caller_priority: u8,
        callee: String,
        callee_priority: u8,
    },
    BothPp {
        at: Box<At>,
    },
    MapOverlap {
        at: Box<At>,
        space: String,
        start: u64,
        end: u64,
        other_mr: String,
        other_line: u32,
    },
    MapBeyond {
        at: Box<At>,
        space: String,
        start: u64,
        end: u64,
        limit: u64,
    },
    PhysOverlap {
        at: Box<At>,
        other: String,
        other_line: u32,
    },
    PrefillSizeWithoutPrefill {
        at: Box<At>,
        mr: String,
    },
    DuplicateSymbol {
        at: Box<At>,
        symbol: String,
    },
    /// A name that cannot become a Rust identifier in the generated code.
    NotAnIdentifier {
        at: Box<At>,
        name: String,
        why: &'static str,
    },
    /// Two things that would get the same name in the generated code.
    NameClash {
        at: Box<At>,
        name: String,
        first_line: u32,
    },
    /// Something lazyfp's code relies on is missing or different.
    Requirement {
        file: String,
        line: Option<u32>,
        unmet: Unmet,
    },
}

/// What lazyfp's code needs from the system description and did not find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmet {
    Pd {
        name: &'static str,
    },
    VirtualMachine {
        pd: &'static str,
    },
    GuestRam {
        mr: &'static str,
        vaddr: u64,
    },
    Vcpu0,
    Map {
        pd: &'static str,
        mr: &'static str,
    },
    Setvar {
        pd: &'static str,
        mr: &'static str,
        attribute: &'static str,
        symbol: &'static str,
    },
    /// A channel between `from` and `to` whose `from` end has `attribute="true"`.
    Channel {
        from: &'static str,
        to: &'static str,
        attribute: &'static str,
    },
    Fpu {
        pd: &'static str,
        fpu: bool,
        policy: Option<FpPolicy>,
    },
    /// Not exactly one NEON worker on a vCPU's core.
    NeonCpu {
        vcpu: u8,
        cpu: u8,
        workers: usize,
    },
    /// A NEON worker whose channel ids differ from `neon_worker`'s (they share one ELF).
    WorkerChannels {
        pd: &'static str,
    },
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pd { name } => write!(f, "a <protection_domain name=\"{name}\">"),
            Self::VirtualMachine { pd } => {
                write!(f, "a <virtual_machine> inside protection_domain \"{pd}\"")
            }
            Self::GuestRam { mr, vaddr } => write!(
                f,
                "the <virtual_machine> to map \"{mr}\" at guest-physical {vaddr:#x} (guest RAM)"
            ),
            Self::Vcpu0 => f.write_str("a <vcpu id=\"0\"> in the <virtual_machine>"),
            Self::Map { pd, mr } => write!(f, "protection_domain \"{pd}\" to <map mr=\"{mr}\">"),
            Self::Setvar {
                pd,
                mr,
                attribute,
                symbol,
            } => write!(
                f,
                "protection_domain \"{pd}\" to <map mr=\"{mr}\" {attribute}=\"{symbol}\">"
            ),
            Self::Channel {
                from,
                to,
                attribute,
            } => write!(
                f,
                "a <channel> between \"{from}\" ({attribute}=\"true\") and \"{to}\""
            ),
            Self::Fpu {
                pd,
                fpu,
                policy: Some(policy),
            } => write!(
                f,
                "fpu=\"{fpu}\" on protection_domain \"{pd}\" under FP_POLICY={}",
                policy.as_str()
            ),
            Self::Fpu {
                pd,
                fpu,
                policy: None,
            } => {
                write!(f, "fpu=\"{fpu}\" on protection_domain \"{pd}\"")
            }
            Self::NeonCpu { vcpu, cpu, workers } => write!(
                f,
                "one neon_worker on the core of vcpu {vcpu} (cpu=\"{cpu}\"), found {workers}"
            ),
            Self::WorkerChannels { pd } => write!(
                f,
                "the channel ids of \"{pd}\" to fp_service and from vmm to be those of \"neon_worker\" (one ELF serves both)"
            ),
        }
    }
}

impl fmt::Display for SdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            Self::Xml { file, source } => write!(f, "{file}: not well-formed XML: {source}"),
            Self::NotASystem { file, root } => {
                write!(f, "{file}: the root element is <{root}>, not <system>")
            }
            Self::UnexpectedElement { at, parent } => {
                write!(f, "{at}: not allowed inside <{parent}>")
            }
            Self::Unsupported { at, feature } => {
                write!(f, "{at}: {feature} is not supported by lazyfp")
            }
            Self::UnknownAttribute { at, attribute } => write!(
                f,
                "{at}: unknown attribute \"{attribute}\" (Microkit 2.3 has no such attribute here)"
            ),
            Self::MissingAttribute { at, attribute } => {
                write!(f, "{at}: missing attribute \"{attribute}\"")
            }
            Self::BadNumber {
                at,
                attribute,
                value,
            } => write!(
                f,
                "{at}: {attribute}=\"{value}\" is not a number (decimal, or hex with 0x; \
                 underscores allowed)"
            ),
            Self::BadValue {
                at,
                attribute,
                value,
                expected,
            } => {
                write!(f, "{at}: {attribute}=\"{value}\": expected {expected}")
            }
            Self::OutOfRange {
                at,
                attribute,
                value,
                min,
                max,
            } => {
                write!(f, "{at}: {attribute}=\"{value}\" is outside {min}..={max}")
            }
            Self::Misaligned {
                at,
                attribute,
                value,
                align,
            } => {
                write!(
                    f,
                    "{at}: {attribute}={value:#x} is not a multiple of {align:#x}"
                )
            }
            Self::Text { at } => write!(f, "{at}: unexpected text"),
            Self::Repeated { at, child } => write!(f, "{at}: more than one <{child}>"),
            Self::MissingChild { at, child } => write!(f, "{at}: missing <{child}>"),
            Self::ChannelEnds { at, count } => {
                write!(f, "{at}: needs exactly two <end> elements, has {count}")
            }
            Self::BudgetOverPeriod { at, budget, period } => {
                write!(
                    f,
                    "{at}: budget ({budget}) is greater than period ({period})"
                )
            }
            Self::NoSize { at } => write!(f, "{at}: needs a size (or a prefill_path)"),
            Self::DuplicateName {
                at,
                name,
                first_line,
            } => {
                write!(
                    f,
                    "{at}: name \"{name}\" is already used on line {first_line}"
                )
            }
            Self::UnknownPd { at, pd } => {
                write!(f, "{at}: end pd=\"{pd}\" names no protection_domain")
            }
            Self::UnknownMr { at, attribute, mr } => {
                write!(f, "{at}: {attribute}=\"{mr}\" names no memory_region")
            }
            Self::DuplicateId {
                at,
                pd,
                id,
                first_line,
            } => write!(
                f,
                "{at}: id {id} of protection_domain \"{pd}\" is already used on line \
                 {first_line} (channel and irq ids share one namespace)"
            ),
            Self::DuplicateVcpu { at, id, first_line } => {
                write!(f, "{at}: vcpu id {id} is already used on line {first_line}")
            }
            Self::DuplicateIrq {
                at,
                irq,
                first_line,
            } => {
                write!(f, "{at}: irq {irq} is already claimed on line {first_line}")
            }
            Self::PpcPriority {
                at,
                caller,
                caller_priority,
                callee,
                callee_priority,
            } => write!(
                f,
                "{at}: PPC toward a lower-or-equal-priority PD: \"{caller}\" (priority \
                 {caller_priority}) has pp=\"true\" toward \"{callee}\" (priority \
                 {callee_priority}); the callee's priority must be strictly higher"
            ),
            Self::BothPp { at } => write!(f, "{at}: pp=\"true\" on both ends"),
            Self::MapOverlap {
                at,
                space,
                start,
                end,
                other_mr,
                other_line,
            } => write!(
                f,
                "{at}: [{start:#x}..{end:#x}) overlaps the map of \"{other_mr}\" on line \
                 {other_line} in {space}"
            ),
            Self::MapBeyond {
                at,
                space,
                start,
                end,
                limit,
            } => write!(
                f,
                "{at}: [{start:#x}..{end:#x}) goes past {limit:#x}, the end of the usable part of \
                 {space}"
            ),
            Self::PhysOverlap {
                at,
                other,
                other_line,
            } => write!(
                f,
                "{at}: physical range overlaps memory_region \"{other}\" on line {other_line}"
            ),
            Self::PrefillSizeWithoutPrefill { at, mr } => write!(
                f,
                "{at}: setvar_prefill_size on memory_region \"{mr}\", which has no prefill_path"
            ),
            Self::DuplicateSymbol { at, symbol } => {
                write!(
                    f,
                    "{at}: symbol \"{symbol}\" is already set by another setvar of this PD"
                )
            }
            Self::NotAnIdentifier { at, name, why } => {
                write!(f, "{at}: \"{name}\" cannot name generated Rust code: {why}")
            }
            Self::NameClash {
                at,
                name,
                first_line,
            } => write!(
                f,
                "{at}: would generate `{name}`, already generated for line {first_line}"
            ),
            Self::Requirement {
                file,
                line: Some(line),
                unmet,
            } => {
                write!(f, "{file}:{line}: lazyfp needs {unmet}")
            }
            Self::Requirement {
                file,
                line: None,
                unmet,
            } => {
                write!(f, "{file}: lazyfp needs {unmet}")
            }
        }
    }
}

impl std::error::Error for SdfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Xml { source, .. } => Some(source),
            _ => None,
        }
    }
}
