//! Boards as an input: `boards/<board>.xml` holds what differs between boards (the physical
//! frames the VMM and the VM map, the VMM's interrupts, the GIC version, the console UART's
//! kind), and [`apply_board`] puts those elements into the derived system description. No
//! address is written twice: system.xml has the board-independent layout, each board file its
//! devices.
//!
//! ```xml
//! <board name="qemu_virt_aarch64" gic="v2" uart="pl011" uart_irq="33" on_vm_stop="power-off">
//!     <system>   memory regions        </system>
//!     <vmm>      maps and irqs of vmm  </vmm>
//!     <virtual_machine> maps of the VM </virtual_machine>
//! </board>
//! ```
use std::{fmt, fs, path::Path};

use roxmltree::{Document, Node};

use crate::sdf::{parse_number, SdfError, VMM};
use crate::GicVersion;

/// The kind of the board UART the VMM drives as its console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    Pl011,
    Imx,
}

/// What the VMM does once it has stopped the VM for an error it cannot recover from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnVmStop {
    /// PSCI SYSTEM_OFF: the run ends (emulated boards, where a test harness waits).
    PowerOff,
    /// Keep serving the rest of the system (fp-service, the NEON workers): the default.
    Serve,
}

impl OnVmStop {
    /// `power-off` or `serve`, as `<board on_vm_stop>` and LAZYFP_ON_VM_STOP spell it.
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "power-off" => Some(Self::PowerOff),
            "serve" => Some(Self::Serve),
            _ => None,
        }
    }
}

/// What wakes halted vCPUs (`<board wake>`; absent: nothing, WFI is stepped over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeTimer {
    None,
    /// The EL1 physical timer, exported to user level by the kernel (its PPI is `wake_irq`).
    Ptimer,
    /// An i.MX General Purpose Timer mapped from the memory region `wake_timer`.
    ImxGpt,
}

/// One board's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    pub name: String,
    /// The guest-visible GIC, which follows the hardware's.
    pub gic: GicVersion,
    pub uart: UartKind,
    /// The console UART's interrupt (an `<irq>` of the VMM in the board file).
    pub uart_irq: u64,
    /// `on_vm_stop`, optional: `serve` unless the board file says `power-off`.
    pub on_vm_stop: OnVmStop,
    /// `wake` and `wake_irq` (an `<irq>` of the VMM), optional together.
    pub wake: WakeTimer,
    pub wake_irq: u64,
    /// The text of the `<system>`, `<vmm>` and `<virtual_machine>` children, as written.
    system: String,
    vmm: String,
    vm: String,
}

/// Why a board cannot be used.
#[derive(Debug)]
pub enum BoardError {
    /// No `boards/<name>.xml`.
    Unknown {
        name: String,
        supported: Vec<String>,
    },
    Read {
        file: String,
        source: std::io::Error,
    },
    Xml {
        file: String,
        source: roxmltree::Error,
    },
    /// An attribute of `<board>` is missing or has a value the project does not know.
    Attribute {
        file: String,
        attribute: &'static str,
        value: Option<String>,
    },
    /// The board file's `name` is not its file name.
    Name { file: String, name: String },
    /// An element other than `<system>`, `<vmm>`, `<virtual_machine>` under `<board>`.
    Element {
        file: String,
        line: u32,
        element: String,
    },
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name, supported } => write!(
                f,
                "board \"{name}\" is not described by lazyfp (no boards/{name}.xml); supported boards: {}",
                supported.join(", ")
            ),
            Self::Read { file, source } => write!(f, "{file}: cannot read: {source}"),
            Self::Xml { file, source } => write!(f, "{file}: {source}"),
            Self::Attribute { file, attribute, value: None } => {
                write!(f, "{file}: <board> needs {attribute}=\"...\"")
            }
            Self::Attribute { file, attribute, value: Some(v) } => {
                write!(f, "{file}: <board {attribute}=\"{v}\">: unknown value")
            }
            Self::Name { file, name } => {
                write!(f, "{file}: <board name=\"{name}\"> does not match the file name")
            }
            Self::Element { file, line, element } => write!(
                f,
                "{file}:{line}: <{element}> under <board> (expected <system>, <vmm>, <virtual_machine>)"
            ),
        }
    }
}

impl std::error::Error for BoardError {}

/// The boards described in `dir`, sorted.
pub fn supported_boards(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".xml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// Reads `dir/<name>.xml`.
pub fn load_board(dir: &Path, name: &str) -> Result<Board, BoardError> {
    let path = dir.join(format!("{name}.xml"));
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_name || !path.is_file() {
        return Err(BoardError::Unknown {
            name: name.to_owned(),
            supported: supported_boards(dir),
        });
    }
    let file = path.display().to_string();
    let xml = fs::read_to_string(&path).map_err(|source| BoardError::Read {
        file: file.clone(),
        source,
    })?;
    parse_board(&file, &xml, name)
}

/// Parses a board file's text; `name` is the board the file must describe.
pub fn parse_board(file: &str, xml: &str, name: &str) -> Result<Board, BoardError> {
    let doc = Document::parse(xml).map_err(|source| BoardError::Xml {
        file: file.to_owned(),
        source,
    })?;
    let root = doc.root_element();
    let attr = |attribute: &'static str| {
        root.attribute(attribute)
            .ok_or_else(|| BoardError::Attribute {
                file: file.to_owned(),
                attribute,
                value: None,
            })
    };
    let bad = |attribute: &'static str, v: &str| BoardError::Attribute {
        file: file.to_owned(),
        attribute,
        value: Some(v.to_owned()),
    };
    if root.tag_name().name() != "board" {
        return Err(BoardError::Element {
            file: file.to_owned(),
            line: 1,
            element: root.tag_name().name().to_owned(),
        });
    }
    let board_name = attr("name")?;
    if board_name != name {
        return Err(BoardError::Name {
            file: file.to_owned(),
            name: board_name.to_owned(),
        });
    }
    let gic = match attr("gic")? {
        "v2" => GicVersion::V2,
        "v3" => GicVersion::V3,
        v => return Err(bad("gic", v)),
    };
    let uart = match attr("uart")? {
        "pl011" => UartKind::Pl011,
        "imx" => UartKind::Imx,
        v => return Err(bad("uart", v)),
    };
    let irq_text = attr("uart_irq")?;
    let uart_irq = parse_number(irq_text).ok_or_else(|| bad("uart_irq", irq_text))?;
    let on_vm_stop = match root.attribute("on_vm_stop") {
        None => OnVmStop::Serve,
        Some(v) => OnVmStop::parse(v).ok_or_else(|| bad("on_vm_stop", v))?,
    };
    let wake = match root.attribute("wake") {
        None => WakeTimer::None,
        Some("ptimer") => WakeTimer::Ptimer,
        Some("imx-gpt") => WakeTimer::ImxGpt,
        Some(v) => return Err(bad("wake", v)),
    };
    let wake_irq = match (wake, root.attribute("wake_irq")) {
        (WakeTimer::None, None) => 0,
        (WakeTimer::None, Some(v)) => return Err(bad("wake_irq", v)),
        (_, None) => return Err(attr("wake_irq").unwrap_err()),
        (_, Some(v)) => parse_number(v).ok_or_else(|| bad("wake_irq", v))?,
    };
    let mut board = Board {
        name: name.to_owned(),
        gic,
        uart,
        uart_irq,
        on_vm_stop,
        wake,
        wake_irq,
        system: String::new(),
        vmm: String::new(),
        vm: String::new(),
    };
    for child in root.children().filter(Node::is_element) {
        let inner = inner_text(xml, child);
        match child.tag_name().name() {
            "system" => board.system = inner,
            "vmm" => board.vmm = inner,
            "virtual_machine" => board.vm = inner,
            other => {
                return Err(BoardError::Element {
                    file: file.to_owned(),
                    line: doc.text_pos_at(child.range().start).row,
                    element: other.to_owned(),
                })
            }
        }
    }
    Ok(board)
}

/// The lines holding an element's children (elements and comments), as written: board files
/// indent them as they stand in the system description.
fn inner_text(xml: &str, node: Node) -> String {
    let kids = || node.children().filter(|n| n.is_element() || n.is_comment());
    let (Some(first), Some(last)) = (kids().next(), kids().next_back()) else {
        return String::new();
    };
    let start = xml[..first.range().start].rfind('\n').map_or(0, |i| i + 1);
    let end = last.range().end;
    let end = xml[end..].find('\n').map_or(xml.len(), |i| end + i + 1);
    xml[start..end].to_owned()
}

/// `xml` with `board`'s elements put in: its memory regions before the first protection
/// domain, its VMM children before the VMM's `<virtual_machine>` (or its end), its VM children
/// at the end of the VM. `file` names the source in messages.
pub fn apply_board(file: &str, xml: &str, board: &Board) -> Result<String, SdfError> {
    let doc = Document::parse(xml).map_err(|source| SdfError::Xml {
        file: file.to_owned(),
        source,
    })?;
    let root = doc.root_element();
    let missing = |what: &'static str| SdfError::Requirement {
        file: file.to_owned(),
        line: None,
        unmet: crate::Unmet::Pd { name: what },
    };
    let first_pd = root
        .children()
        .find(|n| n.tag_name().name() == "protection_domain")
        .ok_or_else(|| missing(VMM))?;
    let vmm = root
        .children()
        .find(|n| n.tag_name().name() == "protection_domain" && n.attribute("name") == Some(VMM))
        .ok_or_else(|| missing(VMM))?;
    let vm = vmm
        .children()
        .find(|n| n.tag_name().name() == "virtual_machine");
    let line_start = |at: usize| xml[..at].rfind('\n').map_or(0, |i| i + 1);
    let end_tag = |n: Node| {
        let r = n.range();
        xml[..r.end].rfind("</").map_or(r.end, line_start)
    };
    // (byte offset, text), inserted at the start of a line.
    let mut inserts = vec![(line_start(first_pd.range().start), board.system.clone())];
    match vm {
        Some(vm) => {
            inserts.push((line_start(vm.range().start), board.vmm.clone()));
            inserts.push((end_tag(vm), board.vm.clone()));
        }
        None => inserts.push((end_tag(vmm), board.vmm.clone())),
    }
    inserts.sort_by_key(|(at, _)| *at);
    let mut out =
        String::with_capacity(xml.len() + inserts.iter().map(|(_, t)| t.len()).sum::<usize>());
    let mut at = 0;
    for (pos, text) in inserts {
        out.push_str(&xml[at..pos]);
        out.push_str(&text);
        at = pos;
    }
    out.push_str(&xml[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdf::{check_requirements, parse, FpPolicy};

    fn boards_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("boards")
    }

    #[test]
    fn every_board_makes_a_valid_system() {
        let dir = boards_dir();
        let names = supported_boards(&dir);
        assert_eq!(names, ["imx8mm_evk", "imx8mp_evk", "qemu_virt_aarch64"]);
        let xml = std::fs::read_to_string(crate::sdf::fixtures::real_path()).unwrap();
        for name in &names {
            let board = load_board(&dir, name).unwrap();
            let out = apply_board("system.xml", &xml, &board).unwrap();
            let system = parse("system.xml", &out).unwrap_or_else(|e| panic!("{name}: {e}\n{out}"));
            check_requirements(&system, FpPolicy::Lazy).unwrap();
            let vmm = system.pd(VMM).unwrap();
            assert!(vmm.irqs.iter().any(|i| i.irq == board.uart_irq), "{name}");
            assert!(
                vmm.irqs.iter().any(|i| i.irq == board.wake_irq),
                "{name}: wake-up irq"
            );
            assert_eq!(
                crate::dtb::gic_of(&system),
                board.gic,
                "{name}: the DTB's GIC"
            );
            let uart = system.mr("uart").unwrap();
            let vm = vmm.virtual_machine.as_ref().unwrap();
            let gicv = vm.maps.iter().any(|m| m.mr == "gic_vcpu");
            match name.as_str() {
                "qemu_virt_aarch64" => {
                    assert_eq!(
                        (board.gic, board.uart, uart.phys_addr),
                        (GicVersion::V2, UartKind::Pl011, Some(0x0900_0000))
                    );
                    assert!(gicv && vmm.irqs.iter().any(|i| i.irq == 30));
                    assert_eq!((board.wake, board.wake_irq), (WakeTimer::Ptimer, 30));
                    assert_eq!(board.on_vm_stop, OnVmStop::PowerOff, "QEMU: the run ends");
                }
                _ => {
                    assert_eq!(
                        (board.gic, board.uart, uart.phys_addr),
                        (GicVersion::V3, UartKind::Imx, Some(0x3089_0000))
                    );
                    assert!(
                        !gicv,
                        "GICv3: the guest's CPU interface is system registers"
                    );
                    assert!(
                        !vmm.irqs.iter().any(|i| i.irq == 30),
                        "no user-level physical timer"
                    );
                    assert_eq!(board.on_vm_stop, OnVmStop::Serve, "{name}: a real board");
                    // GPT1 (timer@302d0000, SPI 55) wakes halted vCPUs.
                    assert_eq!((board.wake, board.wake_irq), (WakeTimer::ImxGpt, 87));
                    assert_eq!(
                        system.mr("wake_timer").unwrap().phys_addr,
                        Some(0x302d_0000)
                    );
                    assert!(vmm.maps.iter().any(|m| m.mr == "wake_timer"), "{name}");
                }
            }
        }
    }

    #[test]
    fn unknown_and_broken_boards_say_why() {
        let dir = boards_dir();
        let e = load_board(&dir, "rpi4b_1gb").unwrap_err().to_string();
        assert_eq!(
            e,
            "board \"rpi4b_1gb\" is not described by lazyfp (no boards/rpi4b_1gb.xml); supported boards: imx8mm_evk, imx8mp_evk, qemu_virt_aarch64"
        );
        assert!(load_board(&dir, "../system").is_err());
        let f = "b.xml";
        let ok = r#"<board name="b" gic="v3" uart="imx" uart_irq="59"><vmm /></board>"#;
        assert_eq!(parse_board(f, ok, "b").unwrap().on_vm_stop, OnVmStop::Serve);
        let off = ok.replace(
            "uart_irq=\"59\"",
            "uart_irq=\"59\" on_vm_stop=\"power-off\"",
        );
        assert_eq!(
            parse_board(f, &off, "b").unwrap().on_vm_stop,
            OnVmStop::PowerOff
        );
        for (xml, want) in [
            (ok.replace("v3", "v4"), "<board gic=\"v4\">: unknown value"),
            (ok.replace(" uart=\"imx\"", ""), "needs uart=\"...\""),
            (ok.replace("59", "fifty"), "<board uart_irq=\"fifty\">"),
            (
                ok.replace("59\"", "59\" on_vm_stop=\"halt\""),
                "<board on_vm_stop=\"halt\">: unknown value",
            ),
            (
                ok.replace("<vmm />", "<vmmm />"),
                "b.xml:1: <vmmm> under <board>",
            ),
            (
                ok.replace("name=\"b\"", "name=\"c\""),
                "does not match the file name",
            ),
            ("<board".to_owned(), "b.xml"),
        ] {
            let e = parse_board(f, &xml, "b").unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
