//! XML to model, with the checks that concern one element at a time. Mirrors the Microkit 2.3
//! tool's `sdf.rs`: same attribute sets, defaults and number syntax.

use roxmltree::{Document, Node};

use super::error::{At, SdfError};
use super::model::{
    Channel, ChannelEnd, Irq, Map, MemoryRegion, Perms, ProtectionDomain, Setvar, System, Trigger,
    Vcpu, VirtualMachine, LARGE_PAGE, SMALL_PAGE,
};

/// Highest channel, irq and vcpu id: the badge keeps two of its 64 bits for PPC and fault flags.
pub(crate) const MAX_ID: u64 = 61;
pub(crate) const MAX_PRIORITY: u64 = 254;
const BUDGET_DEFAULT: u64 = 1000;
const STACK_DEFAULT: u64 = 0x2000;
const STACK_MIN: u64 = 0x1000;
const STACK_MAX: u64 = 16 * 1024 * 1024;

/// Parses a number the way the Microkit tool does: underscores dropped, `0x` for hex, otherwise
/// decimal, and it must fit in a u64.
pub fn parse_number(s: &str) -> Option<u64> {
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    let (digits, radix) = match digits.strip_prefix("0x") {
        Some(hex) => (hex.to_owned(), 16),
        None => (digits, 10),
    };
    u64::from_str_radix(&digits, radix).ok()
}

/// Parses and validates a system description. `file` is the name used in messages.
pub fn parse(file: &str, xml: &str) -> Result<System, SdfError> {
    let doc = Document::parse(xml).map_err(|source| SdfError::Xml {
        file: file.to_owned(),
        source,
    })?;
    let cx = Cx { file, doc: &doc };
    let root = doc.root_element();
    if root.tag_name().name() != "system" {
        return Err(SdfError::NotASystem {
            file: file.to_owned(),
            root: root.tag_name().name().to_owned(),
        });
    }
    cx.attributes(root, &[], &[])?;
    cx.no_text(root)?;

    let mut system = System {
        file: file.to_owned(),
        memory_regions: Vec::new(),
        protection_domains: Vec::new(),
        channels: Vec::new(),
    };
    for child in root.children().filter(Node::is_element) {
        match child.tag_name().name() {
            "memory_region" => system.memory_regions.push(cx.memory_region(child)?),
            "protection_domain" => system.protection_domains.push(cx.protection_domain(child)?),
            "channel" => system.channels.push(cx.channel(child)?),
            "domains" => return Err(cx.unsupported(child, "domain scheduling")),
            "io_address_space" => return Err(cx.unsupported(child, "an IOMMU address space")),
            _ => return Err(cx.unexpected(child, "system")),
        }
    }
    super::validate::validate(&system)?;
    Ok(system)
}

/// The document being parsed and the name to report it under.
struct Cx<'a, 'input> {
    file: &'a str,
    doc: &'a Document<'input>,
}

impl Cx<'_, '_> {
    fn at(&self, node: Node) -> At {
        let element = node.tag_name().name();
        let key = match element {
            "vcpu" => Some("id"),
            "program_image" => Some("path"),
            _ => ["name", "mr", "pd", "symbol", "irq"]
                .into_iter()
                .find(|key| node.has_attribute(*key)),
        };
        At {
            file: self.file.to_owned(),
            line: self.doc.text_pos_at(node.range().start).row,
            element: element.to_owned(),
            key: key.and_then(|key| node.attribute(key).map(|value| (key, value.to_owned()))),
        }
    }

    fn here(&self, node: Node) -> Box<At> {
        Box::new(self.at(node))
    }

    fn unexpected(&self, node: Node, parent: &str) -> SdfError {
        SdfError::UnexpectedElement {
            at: self.here(node),
            parent: parent.to_owned(),
        }
    }

    fn unsupported(&self, node: Node, feature: &'static str) -> SdfError {
        SdfError::Unsupported {
            at: self.here(node),
            feature,
        }
    }

    /// Rejects attributes Microkit 2.3 does not know here; `unsupported` lists the ones it knows
    /// but lazyfp does not model, each with what it is for.
    fn attributes(
        &self,
        node: Node,
        known: &[&str],
        unsupported: &[(&str, &'static str)],
    ) -> Result<(), SdfError> {
        for attribute in node.attributes() {
            let name = attribute.name();
            if let Some((_, feature)) = unsupported.iter().find(|(a, _)| *a == name) {
                return Err(self.unsupported(node, feature));
            }
            if !known.contains(&name) {
                return Err(SdfError::UnknownAttribute {
                    at: self.here(node),
                    attribute: name.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Microkit allows only elements, comments and whitespace inside `<system>`.
    fn no_text(&self, root: Node) -> Result<(), SdfError> {
        for node in root.descendants().filter(Node::is_text) {
            if node.text().is_some_and(|text| !text.trim().is_empty()) {
                let parent = node.parent_element().unwrap_or(root);
                return Err(SdfError::Text {
                    at: self.here(parent),
                });
            }
        }
        Ok(())
    }

    fn required<'n>(
        &self,
        node: Node<'n, '_>,
        attribute: &'static str,
    ) -> Result<&'n str, SdfError> {
        node.attribute(attribute)
            .ok_or_else(|| SdfError::MissingAttribute {
                at: self.here(node),
                attribute,
            })
    }

    fn number(&self, node: Node, attribute: &'static str) -> Result<Option<u64>, SdfError> {
        node.attribute(attribute)
            .map(|value| {
                parse_number(value).ok_or_else(|| SdfError::BadNumber {
                    at: self.here(node),
                    attribute,
                    value: value.to_owned(),
                })
            })
            .transpose()
    }

    fn required_number(&self, node: Node, attribute: &'static str) -> Result<u64, SdfError> {
        self.required(node, attribute)?;
        self.number(node, attribute)?
            .ok_or_else(|| SdfError::MissingAttribute {
                at: self.here(node),
                attribute,
            })
    }

    fn in_range(
        &self,
        node: Node,
        attribute: &'static str,
        value: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, SdfError> {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(SdfError::OutOfRange {
                at: self.here(node),
                attribute,
                value,
                min,
                max,
            })
        }
    }

    /// A number that fits a u8 and is at most `max`.
    fn small(
        &self,
        node: Node,
        attribute: &'static str,
        value: u64,
        max: u64,
    ) -> Result<u8, SdfError> {
        let value = self.in_range(node, attribute, value, 0, max)?;
        u8::try_from(value).map_err(|_| SdfError::OutOfRange {
            at: self.here(node),
            attribute,
            value,
            min: 0,
            max,
        })
    }

    fn id(&self, node: Node) -> Result<u8, SdfError> {
        let id = self.required_number(node, "id")?;
        self.small(node, "id", id, MAX_ID)
    }

    fn priority(&self, node: Node) -> Result<u8, SdfError> {
        let priority = self.number(node, "priority")?.unwrap_or(0);
        self.small(node, "priority", priority, MAX_PRIORITY)
    }

    fn boolean(
        &self,
        node: Node,
        attribute: &'static str,
        default: bool,
    ) -> Result<bool, SdfError> {
        match node.attribute(attribute) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(value) => Err(SdfError::BadValue {
                at: self.here(node),
                attribute,
                value: value.to_owned(),
                expected: "\"true\" or \"false\"",
            }),
        }
    }

    /// MCS budget and period; the period defaults to the budget.
    fn budget_period(&self, node: Node) -> Result<(u64, u64), SdfError> {
        let budget = self.number(node, "budget")?.unwrap_or(BUDGET_DEFAULT);
        let period = self.number(node, "period")?.unwrap_or(budget);
        if budget > period {
            return Err(SdfError::BudgetOverPeriod {
                at: self.here(node),
                budget,
                period,
            });
        }
        Ok((budget, period))
    }

    fn memory_region(&self, node: Node) -> Result<MemoryRegion, SdfError> {
        self.attributes(
            node,
            &["name", "size", "page_size", "phys_addr", "prefill_path"],
            &[(
                "prefill_bootinfo",
                "prefilling a region from boot information",
            )],
        )?;
        let name = self.required(node, "name")?.to_owned();
        let page_size = self.number(node, "page_size")?;
        if let Some(page) = page_size {
            if page != SMALL_PAGE && page != LARGE_PAGE {
                return Err(SdfError::BadValue {
                    at: self.here(node),
                    attribute: "page_size",
                    value: format!("{page:#x}"),
                    expected: "0x1000 or 0x200000",
                });
            }
        }
        let align = page_size.unwrap_or(SMALL_PAGE);
        let prefill_path = node.attribute("prefill_path").map(str::to_owned);
        let size = self.number(node, "size")?;
        match size {
            None if prefill_path.is_none() => {
                return Err(SdfError::NoSize {
                    at: self.here(node),
                })
            }
            Some(value) if value % align != 0 => {
                return Err(SdfError::Misaligned {
                    at: self.here(node),
                    attribute: "size",
                    value,
                    align,
                })
            }
            _ => {}
        }
        let phys_addr = self.number(node, "phys_addr")?;
        if let Some(value) = phys_addr.filter(|paddr| paddr % align != 0) {
            return Err(SdfError::Misaligned {
                at: self.here(node),
                attribute: "phys_addr",
                value,
                align,
            });
        }
        Ok(MemoryRegion {
            name,
            size,
            page_size,
            phys_addr,
            prefill_path,
            at: self.at(node),
        })
    }

    fn protection_domain(&self, node: Node) -> Result<ProtectionDomain, SdfError> {
        self.attributes(
            node,
            &[
                "name",
                "priority",
                "budget",
                "period",
                "passive",
                "stack_size",
                "smc",
                "cpu",
                "fpu",
            ],
            &[
                ("domain", "domain scheduling"),
                ("id", "a child protection domain"),
                ("setvar_id", "a child protection domain"),
            ],
        )?;
        let name = self.required(node, "name")?.to_owned();
        let priority = self.priority(node)?;
        let (budget, period) = self.budget_period(node)?;
        let passive = self.boolean(node, "passive", false)?;
        let smc = self.boolean(node, "smc", false)?;
        let fpu = self.boolean(node, "fpu", true)?;
        let cpu = self.number(node, "cpu")?.unwrap_or(0);
        let cpu = self.small(node, "cpu", cpu, u8::MAX.into())?;
        let stack_size = self.number(node, "stack_size")?.unwrap_or(STACK_DEFAULT);
        let stack_size = self.in_range(node, "stack_size", stack_size, STACK_MIN, STACK_MAX)?;
        if stack_size % SMALL_PAGE != 0 {
            return Err(SdfError::Misaligned {
                at: self.here(node),
                attribute: "stack_size",
                value: stack_size,
                align: SMALL_PAGE,
            });
        }

        let mut program_image = None;
        let mut maps = Vec::new();
        let mut irqs = Vec::new();
        let mut setvars = Vec::new();
        let mut virtual_machine = None;
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "program_image" => {
                    self.attributes(child, &["path", "path_for_symbols"], &[])?;
                    if program_image.is_some() {
                        return Err(SdfError::Repeated {
                            at: self.here(node),
                            child: "program_image",
                        });
                    }
                    let path = self.required(child, "path")?.to_owned();
                    program_image =
                        Some((path, child.attribute("path_for_symbols").map(str::to_owned)));
                }
                "map" => maps.push(self.map(child, true)?),
                "irq" => irqs.push(self.irq(child)?),
                "setvar" => {
                    self.attributes(child, &["symbol", "region_paddr"], &[])?;
                    setvars.push(Setvar {
                        symbol: self.required(child, "symbol")?.to_owned(),
                        region_paddr: self.required(child, "region_paddr")?.to_owned(),
                        at: self.at(child),
                    });
                }
                "virtual_machine" => {
                    if virtual_machine.is_some() {
                        return Err(SdfError::Repeated {
                            at: self.here(node),
                            child: "virtual_machine",
                        });
                    }
                    virtual_machine = Some(self.virtual_machine(child, cpu)?);
                }
                "protection_domain" => {
                    return Err(self.unsupported(child, "a child protection domain"))
                }
                "cspace" => return Err(self.unsupported(child, "handing capabilities to a PD")),
                "ioport" => return Err(self.unsupported(child, "an x86 I/O port")),
                _ => return Err(self.unexpected(child, "protection_domain")),
            }
        }
        let Some((program_image, program_image_for_symbols)) = program_image else {
            return Err(SdfError::MissingChild {
                at: self.here(node),
                child: "program_image",
            });
        };
        Ok(ProtectionDomain {
            name,
            priority,
            budget,
            period,
            cpu,
            fpu,
            smc,
            passive,
            stack_size,
            program_image,
            program_image_for_symbols,
            maps,
            irqs,
            setvars,
            virtual_machine,
            at: self.at(node),
        })
    }

    /// A `<map>`; the setvar attributes patch a PD's ELF, so a VM's maps cannot have them.
    fn map(&self, node: Node, in_pd: bool) -> Result<Map, SdfError> {
        let known: &[&str] = if in_pd {
            &[
                "mr",
                "vaddr",
                "perms",
                "cached",
                "setvar_vaddr",
                "setvar_size",
                "setvar_prefill_size",
            ]
        } else {
            &["mr", "vaddr", "perms", "cached"]
        };
        self.attributes(node, known, &[])?;
        let mr = self.required(node, "mr")?.to_owned();
        let vaddr = self.required_number(node, "vaddr")?;
        let perms = match node.attribute("perms") {
            None => Perms {
                read: true,
                write: true,
                execute: false,
            },
            Some(text) => self.perms(node, text)?,
        };
        Ok(Map {
            mr,
            vaddr,
            perms,
            cached: self.boolean(node, "cached", true)?,
            setvar_vaddr: node.attribute("setvar_vaddr").map(str::to_owned),
            setvar_size: node.attribute("setvar_size").map(str::to_owned),
            setvar_prefill_size: node.attribute("setvar_prefill_size").map(str::to_owned),
            at: self.at(node),
        })
    }

    fn perms(&self, node: Node, text: &str) -> Result<Perms, SdfError> {
        let bad = |expected| SdfError::BadValue {
            at: self.here(node),
            attribute: "perms",
            value: text.to_owned(),
            expected,
        };
        let mut perms = Perms {
            read: false,
            write: false,
            execute: false,
        };
        for c in text.chars() {
            match c {
                'r' => perms.read = true,
                'w' => perms.write = true,
                'x' => perms.execute = true,
                _ => return Err(bad("a combination of 'r', 'w' and 'x'")),
            }
        }
        if perms.write && !perms.read && !perms.execute {
            return Err(bad("not write-only: seL4 has no write-only mappings"));
        }
        Ok(perms)
    }

    fn irq(&self, node: Node) -> Result<Irq, SdfError> {
        const X86: &str = "an x86 interrupt";
        self.attributes(
            node,
            &["irq", "id", "setvar_id", "trigger"],
            &[
                ("ioapic", X86),
                ("pin", X86),
                ("polarity", X86),
                ("vector", X86),
                ("pcidev", X86),
                ("handle", X86),
            ],
        )?;
        let irq = self.required_number(node, "irq")?;
        let id = self.id(node)?;
        let trigger = match node.attribute("trigger") {
            None | Some("level") => Trigger::Level,
            Some("edge") => Trigger::Edge,
            Some(value) => {
                return Err(SdfError::BadValue {
                    at: self.here(node),
                    attribute: "trigger",
                    value: value.to_owned(),
                    expected: "\"level\" or \"edge\"",
                })
            }
        };
        Ok(Irq {
            irq,
            id,
            trigger,
            setvar_id: node.attribute("setvar_id").map(str::to_owned),
            at: self.at(node),
        })
    }

    fn virtual_machine(&self, node: Node, pd_cpu: u8) -> Result<VirtualMachine, SdfError> {
        self.attributes(node, &["name", "budget", "period", "priority"], &[])?;
        let name = self.required(node, "name")?.to_owned();
        let priority = self.priority(node)?;
        let (budget, period) = self.budget_period(node)?;
        let mut vcpus: Vec<Vcpu> = Vec::new();
        let mut maps = Vec::new();
        for child in node.children().filter(Node::is_element) {
            match child.tag_name().name() {
                "vcpu" => {
                    self.attributes(child, &["id", "setvar_id", "cpu"], &[])?;
                    let id = self.id(child)?;
                    if let Some(first) = vcpus.iter().find(|vcpu| vcpu.id == id) {
                        return Err(SdfError::DuplicateVcpu {
                            at: self.here(child),
                            id,
                            first_line: first.at.line,
                        });
                    }
                    let cpu = match self.number(child, "cpu")? {
                        Some(cpu) => self.small(child, "cpu", cpu, u8::MAX.into())?,
                        None => pd_cpu,
                    };
                    vcpus.push(Vcpu {
                        id,
                        cpu,
                        setvar_id: child.attribute("setvar_id").map(str::to_owned),
                        at: self.at(child),
                    });
                }
                "map" => maps.push(self.map(child, false)?),
                _ => return Err(self.unexpected(child, "virtual_machine")),
            }
        }
        if vcpus.is_empty() {
            return Err(SdfError::MissingChild {
                at: self.here(node),
                child: "vcpu",
            });
        }
        Ok(VirtualMachine {
            name,
            priority,
            budget,
            period,
            vcpus,
            maps,
            at: self.at(node),
        })
    }

    fn channel(&self, node: Node) -> Result<Channel, SdfError> {
        self.attributes(node, &[], &[])?;
        let mut ends = Vec::new();
        for child in node.children().filter(Node::is_element) {
            if child.tag_name().name() != "end" {
                return Err(self.unexpected(child, "channel"));
            }
            self.attributes(child, &["pd", "id", "pp", "notify", "setvar_id"], &[])?;
            ends.push(ChannelEnd {
                pd: self.required(child, "pd")?.to_owned(),
                id: self.id(child)?,
                pp: self.boolean(child, "pp", false)?,
                notify: self.boolean(child, "notify", true)?,
                setvar_id: child.attribute("setvar_id").map(str::to_owned),
                at: self.at(child),
            });
        }
        let count = ends.len();
        let Ok(ends) = <[ChannelEnd; 2]>::try_from(ends) else {
            return Err(SdfError::ChannelEnds {
                at: self.here(node),
                count,
            });
        };
        if ends[0].pp && ends[1].pp {
            return Err(SdfError::BothPp {
                at: self.here(node),
            });
        }
        Ok(Channel {
            ends,
            at: self.at(node),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, two_pds};
    use super::*;

    #[test]
    fn numbers_parse_like_the_microkit_tool() {
        assert_eq!(parse_number("0x4000_0000"), Some(0x4000_0000));
        assert_eq!(parse_number("0xff"), Some(255));
        assert_eq!(parse_number("1_000"), Some(1000));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("0xffff_ffff_ffff_ffff"), Some(u64::MAX));
        for garbage in [
            "",
            "0x",
            "_",
            "12a",
            "0X10",
            "-1",
            "1.5",
            "ten",
            "0x1_0000_0000_0000_0000",
            " 1",
        ] {
            assert_eq!(parse_number(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn malformed_number_names_attribute_and_element() {
        let e = err(&two_pds(r#"<memory_region name="m" size="4k" />"#));
        assert!(
            matches!(&e, SdfError::BadNumber { attribute: "size", value, at } if value == "4k" && at.line == 4)
        );
        assert_eq!(
            e.to_string(),
            "test.xml:4: <memory_region name=\"m\">: size=\"4k\" is not a number (decimal, or hex with 0x; underscores allowed)"
        );
    }

    #[test]
    fn xml_syntax_and_root() {
        assert!(matches!(err("<system>"), SdfError::Xml { .. }));
        let e = err("<sytem />");
        assert!(matches!(&e, SdfError::NotASystem { root, .. } if root == "sytem"));
        assert!(e.to_string().contains("<sytem>"));
    }

    #[test]
    fn unknown_elements() {
        let e = err(&two_pds("<protection_domian name=\"c\" />"));
        assert!(
            matches!(&e, SdfError::UnexpectedElement { at, parent } if at.line == 4 && parent == "system")
        );
        assert_eq!(
            e.to_string(),
            "test.xml:4: <protection_domian name=\"c\">: not allowed inside <system>"
        );

        let e = err("<system><protection_domain name=\"a\"><program_image path=\"a\" /><mapp /></protection_domain></system>");
        assert!(
            matches!(&e, SdfError::UnexpectedElement { at, parent } if at.element == "mapp" && parent == "protection_domain")
        );

        let e = err(&two_pds(
            r#"<channel><end pd="a" id="0" /><start pd="b" id="0" /></channel>"#,
        ));
        assert!(matches!(&e, SdfError::UnexpectedElement { parent, .. } if parent == "channel"));

        let e = err(&two_pds(
            r#"<virtual_machine name="vm"><vcpu id="0" /></virtual_machine>"#,
        ));
        assert!(
            matches!(&e, SdfError::UnexpectedElement { at, .. } if at.element == "virtual_machine")
        );
    }

    #[test]
    fn unknown_attributes() {
        let e = err("<system>\n<protection_domain name=\"a\" prio=\"3\"><program_image path=\"a\" /></protection_domain></system>");
        assert!(
            matches!(&e, SdfError::UnknownAttribute { at, attribute } if attribute == "prio" && at.line == 2)
        );
        let message = e.to_string();
        assert!(
            message.starts_with(
                "test.xml:2: <protection_domain name=\"a\">: unknown attribute \"prio\""
            ),
            "{message}"
        );

        let e = err(&two_pds(
            r#"<memory_region name="m" size="0x1000" cache="false" />"#,
        ));
        assert!(matches!(&e, SdfError::UnknownAttribute { attribute, .. } if attribute == "cache"));

        // The setvar attributes patch a PD's ELF; a VM's maps cannot have them.
        let e = err(r#"<system><memory_region name="m" size="0x1000" />
            <protection_domain name="a"><program_image path="a" />
            <virtual_machine name="g"><vcpu id="0" /><map mr="m" vaddr="0" setvar_vaddr="x" /></virtual_machine>
            </protection_domain></system>"#);
        assert!(
            matches!(&e, SdfError::UnknownAttribute { at, attribute } if attribute == "setvar_vaddr" && at.element == "map")
        );
        assert!(matches!(
            err(&two_pds(
                r#"<channel x="1"><end pd="a" id="0" /><end pd="b" id="0" /></channel>"#
            )),
            SdfError::UnknownAttribute { .. }
        ));
        assert!(matches!(
            err("<system version=\"2\" />"),
            SdfError::UnknownAttribute { .. }
        ));
    }

    #[test]
    fn features_lazyfp_does_not_model() {
        let child = r#"<system><protection_domain name="a"><program_image path="a" />
            <protection_domain name="c" id="0"><program_image path="c" /></protection_domain>
            </protection_domain></system>"#;
        let e = err(child);
        assert!(
            matches!(&e, SdfError::Unsupported { at, .. } if at.line == 2 && at.element == "protection_domain")
        );
        assert!(e.to_string().contains("not supported by lazyfp"), "{e}");

        let domain = r#"<system><protection_domain name="a" domain="d"><program_image path="a" /></protection_domain></system>"#;
        assert!(matches!(
            err(domain),
            SdfError::Unsupported {
                feature: "domain scheduling",
                ..
            }
        ));
        let cspace = r#"<system><protection_domain name="a"><program_image path="a" /><cspace /></protection_domain></system>"#;
        assert!(matches!(err(cspace), SdfError::Unsupported { .. }));
        assert!(matches!(
            err("<system><domains /></system>"),
            SdfError::Unsupported { .. }
        ));
        let x86_irq = r#"<system><protection_domain name="a"><program_image path="a" /><irq id="1" pin="3" /></protection_domain></system>"#;
        assert!(matches!(
            err(x86_irq),
            SdfError::Unsupported {
                feature: "an x86 interrupt",
                ..
            }
        ));
    }

    #[test]
    fn missing_attributes_and_children() {
        let e = err(&two_pds(r#"<memory_region size="0x1000" />"#));
        assert!(
            matches!(&e, SdfError::MissingAttribute { attribute: "name", at } if at.element == "memory_region")
        );
        assert_eq!(
            e.to_string(),
            "test.xml:4: <memory_region>: missing attribute \"name\""
        );

        let e = err("<system><protection_domain name=\"a\" /></system>");
        assert!(matches!(
            &e,
            SdfError::MissingChild {
                child: "program_image",
                ..
            }
        ));
        assert!(
            e.to_string()
                .contains("<protection_domain name=\"a\">: missing <program_image>"),
            "{e}"
        );

        let e = err(
            r#"<system><protection_domain name="a"><program_image path="a" /><program_image path="b" /></protection_domain></system>"#,
        );
        assert!(matches!(
            e,
            SdfError::Repeated {
                child: "program_image",
                ..
            }
        ));

        let e = err(
            r#"<system><protection_domain name="a"><program_image path="a" /><virtual_machine name="g" /></protection_domain></system>"#,
        );
        assert!(
            matches!(&e, SdfError::MissingChild { child: "vcpu", at } if at.element == "virtual_machine")
        );
    }

    #[test]
    fn booleans_perms_and_triggers() {
        let pd = |attrs: &str| {
            format!("<system><protection_domain name=\"a\" {attrs}><program_image path=\"a\" /></protection_domain></system>")
        };
        let e = err(&pd("fpu=\"yes\""));
        assert!(matches!(&e, SdfError::BadValue { attribute: "fpu", value, .. } if value == "yes"));
        assert!(e.to_string().contains("fpu=\"yes\""), "{e}");
        assert!(matches!(
            err(&pd("passive=\"1\"")),
            SdfError::BadValue {
                attribute: "passive",
                ..
            }
        ));
        assert!(matches!(
            err(&pd("smc=\"True\"")),
            SdfError::BadValue {
                attribute: "smc",
                ..
            }
        ));
        let system = ok(&pd(""));
        let a = &system.protection_domains[0];
        assert_eq!(
            (a.priority, a.cpu, a.fpu, a.smc, a.passive, a.stack_size),
            (0, 0, true, false, false, 0x2000)
        );
        assert_eq!((a.budget, a.period), (1000, 1000));

        let map = |perms: &str| {
            format!(
                r#"<system><memory_region name="m" size="0x1000" /><protection_domain name="a">
                <program_image path="a" /><map mr="m" vaddr="0x1000" {perms} /></protection_domain></system>"#
            )
        };
        assert!(matches!(
            err(&map("perms=\"rwz\"")),
            SdfError::BadValue {
                attribute: "perms",
                ..
            }
        ));
        assert!(matches!(
            err(&map("perms=\"w\"")),
            SdfError::BadValue {
                attribute: "perms",
                ..
            }
        ));
        assert!(matches!(
            err(&map("cached=\"no\"")),
            SdfError::BadValue {
                attribute: "cached",
                ..
            }
        ));
        let system = ok(&map(""));
        let m = &system.protection_domains[0].maps[0];
        assert_eq!(
            m.perms,
            Perms {
                read: true,
                write: true,
                execute: false
            }
        );
        assert!(m.cached);

        let irq = r#"<system><protection_domain name="a"><program_image path="a" /><irq irq="33" id="0" trigger="rising" /></protection_domain></system>"#;
        assert!(matches!(
            err(irq),
            SdfError::BadValue {
                attribute: "trigger",
                ..
            }
        ));
    }

    #[test]
    fn priorities() {
        let e = err("<system><protection_domain name=\"a\" priority=\"255\"><program_image path=\"a\" /></protection_domain></system>");
        assert!(matches!(
            &e,
            SdfError::OutOfRange {
                attribute: "priority",
                value: 255,
                max: 254,
                ..
            }
        ));
        assert!(
            e.to_string()
                .contains("<protection_domain name=\"a\">: priority=\"255\" is outside 0..=254"),
            "{e}"
        );
        let vm = r#"<system><protection_domain name="a"><program_image path="a" />
            <virtual_machine name="g" priority="300"><vcpu id="0" /></virtual_machine></protection_domain></system>"#;
        assert!(
            matches!(err(vm), SdfError::OutOfRange { attribute: "priority", at, .. } if at.element == "virtual_machine")
        );
        ok("<system><protection_domain name=\"a\" priority=\"254\"><program_image path=\"a\" /></protection_domain></system>");
    }

    #[test]
    fn budget_and_stack() {
        let pd = |attrs: &str| {
            format!("<system><protection_domain name=\"a\" {attrs}><program_image path=\"a\" /></protection_domain></system>")
        };
        assert!(matches!(
            err(&pd("budget=\"2000\" period=\"1000\"")),
            SdfError::BudgetOverPeriod {
                budget: 2000,
                period: 1000,
                ..
            }
        ));
        assert!(matches!(
            err(&pd("stack_size=\"0x1800\"")),
            SdfError::Misaligned {
                attribute: "stack_size",
                ..
            }
        ));
        assert!(matches!(
            err(&pd("stack_size=\"0x100\"")),
            SdfError::OutOfRange {
                attribute: "stack_size",
                ..
            }
        ));
    }

    #[test]
    fn channel_ids_are_0_to_61() {
        let e = err(&two_pds(
            r#"<channel><end pd="a" id="62" /><end pd="b" id="0" /></channel>"#,
        ));
        assert!(
            matches!(&e, SdfError::OutOfRange { attribute: "id", value: 62, max: 61, at, .. } if at.element == "end")
        );
        assert!(
            e.to_string()
                .contains("<end pd=\"a\">: id=\"62\" is outside 0..=61"),
            "{e}"
        );
        ok(&two_pds(
            r#"<channel><end pd="a" id="61" /><end pd="b" id="0" /></channel>"#,
        ));
        let irq = r#"<system><protection_domain name="a"><program_image path="a" /><irq irq="33" id="62" /></protection_domain></system>"#;
        assert!(matches!(
            err(irq),
            SdfError::OutOfRange {
                attribute: "id",
                ..
            }
        ));
    }

    #[test]
    fn channel_shape() {
        let e = err(&two_pds(r#"<channel><end pd="a" id="0" /></channel>"#));
        assert!(
            matches!(&e, SdfError::ChannelEnds { count: 1, at } if at.line == 4 && at.element == "channel")
        );
        assert!(matches!(
            err(&two_pds(
                r#"<channel><end pd="a" id="0" /><end pd="b" id="0" /><end pd="b" id="1" /></channel>"#
            )),
            SdfError::ChannelEnds { count: 3, .. }
        ));
        let e = err(&two_pds(
            r#"<channel><end pd="a" id="0" pp="true" /><end pd="b" id="0" pp="true" /></channel>"#,
        ));
        assert!(matches!(&e, SdfError::BothPp { at } if at.line == 4));
        assert_eq!(
            e.to_string(),
            "test.xml:4: <channel>: pp=\"true\" on both ends"
        );
        let system = ok(&two_pds(
            r#"<channel><end pd="a" id="0" pp="true" /><end pd="b" id="3" notify="false" /></channel>"#,
        ));
        let [a, b] = &system.channels[0].ends;
        assert_eq!((a.pd.as_str(), a.id, a.pp, a.notify), ("a", 0, true, true));
        assert_eq!(
            (b.pd.as_str(), b.id, b.pp, b.notify),
            ("b", 3, false, false)
        );
    }

    #[test]
    fn vcpus() {
        let vm = |vcpus: &str| {
            format!(
                "<system><protection_domain name=\"a\" cpu=\"2\"><program_image path=\"a\" />\n\
                 <virtual_machine name=\"g\">{vcpus}</virtual_machine></protection_domain></system>"
            )
        };
        let e = err(&vm(r#"<vcpu id="62" />"#));
        assert!(
            matches!(&e, SdfError::OutOfRange { attribute: "id", value: 62, at, .. } if at.element == "vcpu")
        );
        assert!(e.to_string().contains("<vcpu id=\"62\">"), "{e}");
        let e = err(&vm("<vcpu id=\"1\" />\n<vcpu id=\"1\" />"));
        assert!(matches!(&e, SdfError::DuplicateVcpu { id: 1, first_line: 2, at } if at.line == 3));
        let system = ok(&vm(r#"<vcpu id="0" /><vcpu id="1" cpu="3" />"#));
        let vm = system.protection_domains[0]
            .virtual_machine
            .as_ref()
            .map(|vm| &vm.vcpus);
        let cpus: Vec<(u8, u8)> = vm.into_iter().flatten().map(|v| (v.id, v.cpu)).collect();
        assert_eq!(cpus, [(0, 2), (1, 3)], "a vcpu's cpu defaults to its PD's");
    }

    #[test]
    fn memory_region_sizes() {
        let e = err(&two_pds(r#"<memory_region name="m" size="0x1800" />"#));
        assert!(
            matches!(&e, SdfError::Misaligned { attribute: "size", value: 0x1800, align: 0x1000, at } if at.line == 4)
        );
        assert!(
            e.to_string()
                .contains("<memory_region name=\"m\">: size=0x1800 is not a multiple of 0x1000"),
            "{e}"
        );
        let e = err(&two_pds(
            r#"<memory_region name="m" size="0x1000" page_size="0x200000" />"#,
        ));
        assert!(matches!(
            e,
            SdfError::Misaligned {
                attribute: "size",
                align: 0x20_0000,
                ..
            }
        ));
        assert!(matches!(
            err(&two_pds(
                r#"<memory_region name="m" size="0x3000" page_size="0x3000" />"#
            )),
            SdfError::BadValue {
                attribute: "page_size",
                ..
            }
        ));
        assert!(matches!(
            err(&two_pds(
                r#"<memory_region name="m" size="0x1000" phys_addr="0x800" />"#
            )),
            SdfError::Misaligned {
                attribute: "phys_addr",
                ..
            }
        ));
        let e = err(&two_pds(r#"<memory_region name="m" />"#));
        assert!(matches!(&e, SdfError::NoSize { at } if at.key == Some(("name", "m".to_owned()))));
        let system = ok(&two_pds(
            r#"<memory_region name="img" prefill_path="guest.img" />"#,
        ));
        assert_eq!(system.memory_regions[0].size, None);
        assert_eq!(
            system.memory_regions[0].prefill_path.as_deref(),
            Some("guest.img")
        );
    }

    #[test]
    fn text_is_not_allowed() {
        let e = err(&two_pds(
            r#"<channel>oops<end pd="a" id="0" /><end pd="b" id="0" /></channel>"#,
        ));
        assert!(matches!(&e, SdfError::Text { at } if at.element == "channel"));
        ok(&two_pds("<!-- comments are fine -->"));
    }
}
