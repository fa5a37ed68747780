//! The system description a build uses, derived from the single source: the VMM's `fpu`
//! attribute for the FP policy, and the system fitted to the kernel's cores (system.xml describes
//! one vCPU and one NEON worker per core of the largest configuration; a kernel with fewer cores
//! gets those whose `cpu` it has). Byte for byte everything else stays.

use roxmltree::{Document, Node};

use crate::sdf::{check_requirements, parse, FpPolicy, SdfError, Unmet, VMM};

/// Returns `xml` with the `vmm` PD's `fpu` set for `policy` (added if absent), after checking
/// that the result is valid and meets lazyfp's requirements under `policy`. `file` names the
/// source in messages; line numbers stay those of the source.
pub fn sdf_variant(file: &str, xml: &str, policy: FpPolicy) -> Result<String, SdfError> {
    sdf_variant_with(file, xml, policy, &[])
}

/// [`sdf_variant`], plus `sets`: (PD name, attribute, value) edits of other PDs' attributes (a
/// test scenario's placement, e.g. fp_service on another core), checked the same way.
pub fn sdf_variant_with(
    file: &str,
    xml: &str,
    policy: FpPolicy,
    sets: &[(&str, &str, &str)],
) -> Result<String, SdfError> {
    let value = if policy.vmm_fpu() { "true" } else { "false" };
    let mut out = set_pd_attr(file, xml, VMM, "fpu", value)?;
    for (pd, attr, v) in sets {
        out = set_pd_attr(file, &out, pd, attr, v)?;
    }
    let system = parse(file, &out)?;
    check_requirements(&system, policy)?;
    Ok(out)
}

/// `xml` less what needs a core the kernel lacks: `<vcpu>`s and protection domains whose `cpu` is
/// `cores` or more, NEON workers on a core with no vCPU, and the channels that end in such a PD. A PD that holds a removed PD's VM is
/// never removed here (the VMM's core is checked later, by [`check_cores`](crate::check_cores)).
pub fn fit_to_cores(file: &str, xml: &str, cores: usize) -> Result<String, SdfError> {
    fit(file, xml, cores, usize::MAX)
}

/// [`fit_to_cores`], keeping at most `vcpus` vCPUs (those with the lowest ids): a scenario with
/// fewer vCPUs than cores.
pub fn fit(file: &str, xml: &str, cores: usize, vcpus: usize) -> Result<String, SdfError> {
    let doc = Document::parse(xml).map_err(|source| SdfError::Xml {
        file: file.to_owned(),
        source,
    })?;
    let beyond = |node: &Node| {
        node.attribute("cpu")
            .and_then(crate::sdf::parse_number)
            .is_some_and(|cpu| cpu >= cores as u64)
    };
    let root = doc.root_element();
    let cpu_of = |n: &Node| {
        n.attribute("cpu")
            .and_then(crate::sdf::parse_number)
            .unwrap_or(0)
    };
    let vcpu_kept = |n: &Node| {
        !beyond(n)
            && n.attribute("id")
                .and_then(crate::sdf::parse_number)
                .is_none_or(|id| id < vcpus as u64)
    };
    // The cores that keep a vCPU: a NEON worker elsewhere would press on nobody.
    let vcpu_cores: Vec<u64> = root
        .descendants()
        .filter(|n| n.tag_name().name() == "vcpu" && vcpu_kept(n))
        .map(|n| cpu_of(&n))
        .collect();
    let idle_worker = |n: &Node| {
        n.attribute("name").is_some_and(crate::sdf::is_neon_worker)
            && !vcpu_cores.contains(&cpu_of(n))
    };
    let gone_pds: Vec<&str> = root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "protection_domain")
        .filter(|n| {
            let holds_vm = n
                .children()
                .any(|c| c.tag_name().name() == "virtual_machine");
            (beyond(n) && !holds_vm) || idle_worker(n)
        })
        .filter_map(|n| n.attribute("name"))
        .collect();
    let mut cut: Vec<std::ops::Range<usize>> = Vec::new();
    for node in root.descendants().filter(Node::is_element) {
        let gone = match node.tag_name().name() {
            "protection_domain" => node
                .attribute("name")
                .is_some_and(|n| gone_pds.contains(&n)),
            "vcpu" => !vcpu_kept(&node),
            "channel" => node
                .children()
                .filter(|e| e.tag_name().name() == "end")
                .any(|e| e.attribute("pd").is_some_and(|p| gone_pds.contains(&p))),
            _ => false,
        };
        if gone {
            cut.push(with_leading_space(xml, node.range()));
        }
    }
    let mut out = String::with_capacity(xml.len());
    let mut at = 0;
    for r in cut {
        if r.start < at {
            continue; // inside a removed PD already
        }
        out.push_str(xml.get(at..r.start).unwrap_or_default());
        at = r.end;
    }
    out.push_str(xml.get(at..).unwrap_or_default());
    Ok(out)
}

/// `range` widened over the white space (and one comment line) before it, so a removed element
/// leaves no blank line.
fn with_leading_space(xml: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let before = xml.get(..range.start).unwrap_or_default();
    let start = before.trim_end_matches([' ', '\t', '\n', '\r']).len();
    let start = if before.get(start..).is_some_and(|ws| ws.contains('\n')) {
        // Keep the line break that ended the previous element.
        start + before[start..].find('\n').unwrap_or(0)
    } else {
        range.start
    };
    start..range.end
}

/// `xml` with attribute `attr` of protection domain `pd` set to `value` (added if absent), byte
/// for byte the same elsewhere.
fn set_pd_attr(
    file: &str,
    xml: &str,
    pd: &str,
    attr: &str,
    value: &str,
) -> Result<String, SdfError> {
    let doc = Document::parse(xml).map_err(|source| SdfError::Xml {
        file: file.to_owned(),
        source,
    })?;
    let node = doc
        .root_element()
        .children()
        .find(|node| is_pd(node, pd))
        .ok_or_else(|| SdfError::Requirement {
            file: file.to_owned(),
            line: None,
            unmet: Unmet::Pd {
                name: if pd == VMM {
                    VMM
                } else {
                    "(a protection domain named in --set)"
                },
            },
        })?;
    let (range, text) = match node.attributes().find(|a| a.name() == attr) {
        Some(a) => (a.range_value(), value.to_owned()),
        None => {
            // Right after `<protection_domain`: the tag name has no prefix (checked by is_pd).
            let at = node.range().start + "<protection_domain".len();
            (at..at, format!(" {attr}=\"{value}\""))
        }
    };
    let mut out = String::with_capacity(xml.len() + text.len());
    out.push_str(xml.get(..range.start).unwrap_or_default());
    out.push_str(&text);
    out.push_str(xml.get(range.end..).unwrap_or_default());
    Ok(out)
}

fn is_pd(node: &Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == "protection_domain"
        && node.tag_name().namespace().is_none()
        && node.attribute("name") == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdf::fixtures::{edit, real, LAZYFP};

    #[test]
    fn fitting_to_one_core_keeps_core_0() {
        let four = real();
        let one = fit_to_cores("system.xml", &four, 1).unwrap();
        let system = parse("system.xml", &one).unwrap();
        crate::check_cores(&system, 1).unwrap();
        check_requirements(&system, FpPolicy::Lazy).unwrap();
        let vm = system.pd(VMM).unwrap().virtual_machine.as_ref().unwrap();
        assert_eq!(vm.vcpus.len(), 1);
        assert!(system.pd("neon_worker1").is_none());
        assert!(!one.contains("neon_worker1"), "{one}");
        assert!(!one.contains("\n\n\n"), "left blank lines:\n{one}");
        // Four cores keep everything, byte for byte.
        assert_eq!(fit_to_cores("system.xml", &four, 4).unwrap(), four);
        let all = parse("system.xml", &four).unwrap();
        check_requirements(&all, FpPolicy::Lazy).unwrap();
        let vm = all.pd(VMM).unwrap().virtual_machine.as_ref().unwrap();
        assert_eq!(
            vm.vcpus.iter().map(|v| v.cpu).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(fit_to_cores("x.xml", "<system", 1).is_err());
        // One vCPU on a four-core kernel: the VM has vCPU 0 only, and only its core's worker.
        let one_vcpu = parse("system.xml", &fit("system.xml", &four, 4, 1).unwrap()).unwrap();
        check_requirements(&one_vcpu, FpPolicy::Lazy).unwrap();
        let vm = one_vcpu.pd(VMM).unwrap().virtual_machine.as_ref().unwrap();
        assert_eq!(vm.vcpus.iter().map(|v| v.id).collect::<Vec<_>>(), [0]);
        assert!(one_vcpu.pd("neon_worker").is_some() && one_vcpu.pd("neon_worker3").is_none());
    }

    #[test]
    fn sets_move_a_pd_and_are_validated() {
        let lazy = real();
        let moved = sdf_variant_with(
            "system.xml",
            &lazy,
            FpPolicy::Lazy,
            &[("fp_service", "cpu", "1")],
        )
        .unwrap();
        assert!(
            moved.contains(r#"<protection_domain cpu="1" name="fp_service""#),
            "{moved}"
        );
        assert!(sdf_variant_with(
            "system.xml",
            &lazy,
            FpPolicy::Lazy,
            &[("nobody", "cpu", "1")]
        )
        .is_err());
        // neon_worker must share the vCPU's core: moving it alone is refused.
        assert!(sdf_variant_with(
            "system.xml",
            &lazy,
            FpPolicy::Lazy,
            &[("neon_worker", "cpu", "1")]
        )
        .is_err());
    }

    #[test]
    fn eager_changes_only_the_vmm_fpu() {
        let lazy = real();
        let eager = sdf_variant("system.xml", &lazy, FpPolicy::Eager).unwrap();
        // Past the common prefix, "false" became "true" and the rest is the same.
        let at = lazy
            .bytes()
            .zip(eager.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        assert_eq!((&lazy[at..at + 5], &eager[at..at + 4]), ("false", "true"));
        assert_eq!(lazy[at + 5..], eager[at + 4..]);
        let before = &lazy[..at];
        assert!(
            before.ends_with("fpu=\""),
            "changed something other than an fpu attribute"
        );
        let element = &before[before.rfind('<').unwrap()..];
        assert!(
            element.starts_with("<protection_domain name=\"vmm\""),
            "changed {element}"
        );

        let system = parse("system.xml", &eager).unwrap();
        check_requirements(&system, FpPolicy::Eager).unwrap();
        let e = check_requirements(&system, FpPolicy::Lazy).unwrap_err();
        assert!(
            matches!(
                e,
                SdfError::Requirement {
                    unmet: Unmet::Fpu {
                        pd: "vmm",
                        fpu: false,
                        ..
                    },
                    ..
                }
            ),
            "{e}"
        );

        // And back.
        assert_eq!(
            sdf_variant("system.xml", &eager, FpPolicy::Lazy).unwrap(),
            lazy
        );
        assert_eq!(
            sdf_variant("system.xml", &lazy, FpPolicy::Lazy).unwrap(),
            lazy
        );
    }

    #[test]
    fn an_absent_fpu_is_added() {
        let without = edit(
            LAZYFP,
            r#"name="vmm" priority="200" fpu="false""#,
            r#"name="vmm" priority="200""#,
        );
        let eager = sdf_variant("test.xml", &without, FpPolicy::Eager).unwrap();
        assert_eq!(
            eager,
            edit(
                &without,
                "<protection_domain name=\"vmm\"",
                "<protection_domain fpu=\"true\" name=\"vmm\""
            )
        );
        // Microkit's default is fpu="true": the lazy variant must say false.
        let lazy = sdf_variant("test.xml", &without, FpPolicy::Lazy).unwrap();
        assert!(lazy.contains("<protection_domain fpu=\"false\" name=\"vmm\" priority=\"200\""));
    }

    #[test]
    fn the_output_is_checked() {
        // fp_service with the FPU is fine eagerly but not lazily.
        let service_fpu = edit(
            LAZYFP,
            r#"name="fp_service" priority="150" fpu="false""#,
            r#"name="fp_service" priority="150" fpu="true""#,
        );
        sdf_variant("test.xml", &service_fpu, FpPolicy::Eager).unwrap();
        let e = sdf_variant("test.xml", &service_fpu, FpPolicy::Lazy).unwrap_err();
        assert!(
            matches!(
                e,
                SdfError::Requirement {
                    unmet: Unmet::Fpu {
                        pd: "fp_service",
                        ..
                    },
                    ..
                }
            ),
            "{e}"
        );

        let no_vmm = LAZYFP.replace("\"vmm\"", "\"hypervisor\"");
        let e = sdf_variant("test.xml", &no_vmm, FpPolicy::Eager).unwrap_err();
        assert!(
            matches!(
                e,
                SdfError::Requirement {
                    unmet: Unmet::Pd { name: "vmm" },
                    ..
                }
            ),
            "{e}"
        );

        let broken = edit(
            LAZYFP,
            r#"<end pd="vmm" id="1" />"#,
            r#"<end pd="vmmm" id="1" />"#,
        );
        let e = sdf_variant("test.xml", &broken, FpPolicy::Eager).unwrap_err();
        assert!(
            matches!(&e, SdfError::UnknownPd { pd, .. } if pd == "vmmm"),
            "{e}"
        );
        assert!(matches!(
            sdf_variant("test.xml", "<system", FpPolicy::Eager),
            Err(SdfError::Xml { .. })
        ));
    }
}
