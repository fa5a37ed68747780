//! The system description of the other FP policy, derived from the single source: only the
//! VMM's `fpu` attribute changes, byte for byte everything else stays.

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
