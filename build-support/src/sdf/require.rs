//! What lazyfp's code relies on beyond a valid system description: its three PDs, their maps and
//! channels, and FPU settings that match the FP policy being built.

use std::{fmt, str::FromStr};

use super::error::{SdfError, Unmet};
use super::model::{ChannelEnd, System};

/// Who owns the FP registers while the VMM runs: `Lazy` traps the guest's first FP use and
/// switches then (the VMM and fp_service run with `fpu="false"`); `Eager` lets seL4 switch FP
/// state on every context switch (the VMM has `fpu="true"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FpPolicy {
    #[default]
    Lazy,
    Eager,
}

impl FpPolicy {
    /// Reads `FP_POLICY`: unset or empty means `lazy`.
    pub fn from_env() -> Result<Self, UnknownPolicy> {
        match std::env::var("FP_POLICY") {
            Ok(value) if !value.is_empty() => value.parse(),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Self::Lazy),
            Err(std::env::VarError::NotUnicode(value)) => Err(UnknownPolicy {
                value: value.to_string_lossy().into_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lazy => "lazy",
            Self::Eager => "eager",
        }
    }

    /// The VMM's `fpu` attribute under this policy.
    pub fn vmm_fpu(self) -> bool {
        self == Self::Eager
    }
}

impl FromStr for FpPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lazy" => Ok(Self::Lazy),
            "eager" => Ok(Self::Eager),
            _ => Err(UnknownPolicy {
                value: s.to_owned(),
            }),
        }
    }
}

/// An FP policy other than `lazy` or `eager`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy {
    pub value: String,
}

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown FP policy \"{}\" (expected \"lazy\" or \"eager\")",
            self.value
        )
    }
}

impl std::error::Error for UnknownPolicy {}

pub(crate) const VMM: &str = "vmm";
pub(crate) const FP_SERVICE: &str = "fp_service";
pub(crate) const NEON_WORKER: &str = "neon_worker";
/// Guest RAM's guest-physical address, as on QEMU virt.
const GUEST_RAM_IPA: u64 = 0x4000_0000;

/// Checks that every PD and vCPU runs on a core the kernel has.
pub fn check_cores(system: &System, num_cores: usize) -> Result<(), SdfError> {
    let max = u64::try_from(num_cores.saturating_sub(1)).unwrap_or(u64::MAX);
    for pd in &system.protection_domains {
        let vcpus = pd.virtual_machine.iter().flat_map(|vm| &vm.vcpus);
        let placed =
            std::iter::once((pd.cpu, &pd.at)).chain(vcpus.map(|vcpu| (vcpu.cpu, &vcpu.at)));
        for (cpu, at) in placed {
            if num_cores == 0 || u64::from(cpu) > max {
                return Err(SdfError::OutOfRange {
                    at: Box::new(at.clone()),
                    attribute: "cpu",
                    value: cpu.into(),
                    min: 0,
                    max,
                });
            }
        }
    }
    Ok(())
}

/// Checks what lazyfp's code relies on; `system` must come from [`parse`](super::parse), which
/// did the generic validation.
pub fn check_requirements(system: &System, policy: FpPolicy) -> Result<(), SdfError> {
    let unmet = |line, unmet| SdfError::Requirement {
        file: system.file.clone(),
        line,
        unmet,
    };
    let pd = |name| {
        system
            .pd(name)
            .ok_or_else(|| unmet(None, Unmet::Pd { name }))
    };
    let vmm = pd(VMM)?;
    let fp_service = pd(FP_SERVICE)?;
    let neon_worker = pd(NEON_WORKER)?;

    let vm = vmm
        .virtual_machine
        .as_ref()
        .ok_or_else(|| unmet(Some(vmm.at.line), Unmet::VirtualMachine { pd: VMM }))?;
    if !vm
        .maps
        .iter()
        .any(|map| map.mr == "guest_ram" && map.vaddr == GUEST_RAM_IPA)
    {
        return Err(unmet(
            Some(vm.at.line),
            Unmet::GuestRam {
                mr: "guest_ram",
                vaddr: GUEST_RAM_IPA,
            },
        ));
    }
    vm.vcpus
        .iter()
        .find(|vcpu| vcpu.id == 0)
        .ok_or_else(|| unmet(Some(vm.at.line), Unmet::Vcpu0))?;

    let maps = [
        (VMM, vmm, "guest_ram"),
        (VMM, vmm, "guest_image"),
        (VMM, vmm, "uart"),
        (VMM, vmm, "fp_table"),
        (FP_SERVICE, fp_service, "fp_table"),
    ];
    for (name, owner, mr) in maps {
        if !owner.maps.iter().any(|map| map.mr == mr) {
            return Err(unmet(Some(owner.at.line), Unmet::Map { pd: name, mr }));
        }
    }
    let symbol = "guest_image_size";
    if !vmm
        .maps
        .iter()
        .any(|map| map.mr == "guest_image" && map.setvar_prefill_size.as_deref() == Some(symbol))
    {
        return Err(unmet(
            Some(vmm.at.line),
            Unmet::Setvar {
                pd: VMM,
                mr: "guest_image",
                attribute: "setvar_prefill_size",
                symbol,
            },
        ));
    }

    // (from, to, the attribute `from`'s end needs, and its test)
    type Needs = fn(&ChannelEnd) -> bool;
    let mut channels: Vec<(&str, &str, &str, Needs)> = vec![(FP_SERVICE, VMM, "pp", |end| end.pp)];
    let workers: Vec<_> = system
        .protection_domains
        .iter()
        .filter(|pd| is_neon_worker(&pd.name))
        .collect();
    for w in &workers {
        channels.push((&w.name, FP_SERVICE, "pp", |end| end.pp));
        channels.push((VMM, &w.name, "notify", |end| end.notify));
    }
    for (from, to, attribute, has) in channels {
        let found = channel_id(system, from, to, has).is_some();
        if !found {
            return Err(unmet(
                None,
                Unmet::Channel {
                    from: leak(from),
                    to: leak(to),
                    attribute,
                },
            ));
        }
    }
    // One ELF serves every worker: each must use neon_worker's channel ids on its side.
    let ids = |w: &str| {
        (
            channel_id(system, w, FP_SERVICE, |_| true),
            channel_id(system, w, VMM, |_| true),
        )
    };
    for w in &workers {
        if ids(&w.name) != ids(NEON_WORKER) {
            return Err(unmet(
                Some(w.at.line),
                Unmet::WorkerChannels { pd: leak(&w.name) },
            ));
        }
    }

    // Under the lazy policy neither the VMM nor fp_service may make seL4 switch FP state for them.
    let mut fpus = vec![(VMM, vmm, policy.vmm_fpu(), Some(policy))];
    fpus.extend(workers.iter().map(|w| (leak(&w.name), *w, true, None)));
    if policy == FpPolicy::Lazy {
        fpus.push((FP_SERVICE, fp_service, false, Some(policy)));
    }
    for (name, pd, fpu, policy) in fpus {
        if pd.fpu != fpu {
            return Err(unmet(
                Some(pd.at.line),
                Unmet::Fpu {
                    pd: name,
                    fpu,
                    policy,
                },
            ));
        }
    }

    // NEON pressure on every vCPU's core, from exactly one worker there.
    for vcpu in &vm.vcpus {
        let here = workers.iter().filter(|w| w.cpu == vcpu.cpu).count();
        if here != 1 {
            return Err(unmet(
                Some(if here == 0 {
                    vcpu.at.line
                } else {
                    neon_worker.at.line
                }),
                Unmet::NeonCpu {
                    vcpu: vcpu.id,
                    cpu: vcpu.cpu,
                    workers: here,
                },
            ));
        }
    }
    Ok(())
}

/// `neon_worker`, `neon_worker1`, `neon_worker2`, …: the PDs running the NEON worker ELF.
pub fn is_neon_worker(name: &str) -> bool {
    name.strip_prefix(NEON_WORKER)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

/// `from`'s channel id towards `to`, where `from`'s end passes `has`.
pub(crate) fn channel_id(
    system: &System,
    from: &str,
    to: &str,
    has: fn(&ChannelEnd) -> bool,
) -> Option<u8> {
    system.channels.iter().find_map(|channel| {
        channel
            .end_of(from)
            .filter(|(end, other)| other.pd == to && has(end))
            .map(|(end, _)| end.id)
    })
}

/// Error values name PDs as `&'static str`; a build tool's names live for the whole run.
fn leak(name: &str) -> &'static str {
    match name {
        VMM => VMM,
        FP_SERVICE => FP_SERVICE,
        NEON_WORKER => NEON_WORKER,
        other => Box::leak(other.to_owned().into_boxed_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{edit, ok, LAZYFP};
    use super::*;

    fn unmet(xml: &str, policy: FpPolicy) -> (Unmet, String) {
        let e = check_requirements(&ok(xml), policy).expect_err("an unmet requirement");
        let message = e.to_string();
        let SdfError::Requirement { unmet, .. } = e else {
            panic!("expected an unmet requirement, got: {message}");
        };
        (unmet, message)
    }

    #[test]
    fn the_fixture_meets_the_lazy_requirements() {
        check_requirements(&ok(LAZYFP), FpPolicy::Lazy).unwrap();
    }

    #[test]
    fn the_three_pds() {
        for name in [VMM, FP_SERVICE, NEON_WORKER] {
            let renamed = LAZYFP.replace(&format!("\"{name}\""), &format!("\"{name}2\""));
            let (unmet, message) = unmet(&renamed, FpPolicy::Lazy);
            assert_eq!(unmet, Unmet::Pd { name });
            assert_eq!(
                message,
                format!("test.xml: lazyfp needs a <protection_domain name=\"{name}\">")
            );
        }
    }

    #[test]
    fn the_virtual_machine() {
        let start = LAZYFP.find("        <virtual_machine").unwrap();
        let end = LAZYFP.find("</virtual_machine>\n").unwrap() + "</virtual_machine>\n".len();
        let no_vm = format!("{}{}", &LAZYFP[..start], &LAZYFP[end..]);
        let (unmet_vm, message) = unmet(&no_vm, FpPolicy::Lazy);
        assert_eq!(unmet_vm, Unmet::VirtualMachine { pd: VMM });
        assert!(
            message.contains("a <virtual_machine> inside protection_domain \"vmm\""),
            "{message}"
        );

        let moved = edit(
            LAZYFP,
            r#"vaddr="0x40000000" perms="rwx""#,
            r#"vaddr="0x80000000" perms="rwx""#,
        );
        let (unmet_ram, message) = unmet(&moved, FpPolicy::Lazy);
        assert_eq!(
            unmet_ram,
            Unmet::GuestRam {
                mr: "guest_ram",
                vaddr: 0x4000_0000
            }
        );
        assert!(
            message.contains("\"guest_ram\" at guest-physical 0x40000000"),
            "{message}"
        );

        let no_vcpu0 = edit(LAZYFP, r#"<vcpu id="0" />"#, r#"<vcpu id="1" />"#);
        assert_eq!(unmet(&no_vcpu0, FpPolicy::Lazy).0, Unmet::Vcpu0);
    }

    #[test]
    fn the_maps() {
        let cases = [
            (VMM, "guest_ram", r#"<map mr="guest_ram" vaddr="0x20000000" perms="rw" />"#),
            (VMM, "guest_image", r#"<map mr="guest_image" vaddr="0x30000000" perms="r" setvar_prefill_size="guest_image_size" />"#),
            (VMM, "uart", r#"<map mr="uart" vaddr="0x10000000" perms="rw" cached="false" />"#),
            (VMM, "fp_table", "<map mr=\"fp_table\" vaddr=\"0x11000000\" perms=\"rw\" />\n        <virtual_machine"),
            (FP_SERVICE, "fp_table", "<map mr=\"fp_table\" vaddr=\"0x11000000\" perms=\"rw\" />\n    </protection_domain>\n    <protection_domain name=\"neon_worker\""),
        ];
        for (pd, mr, map) in cases {
            // Drop the map, keep what follows it on later lines.
            let rest = map.find('\n').map_or("", |i| &map[i..]);
            let (unmet, message) = unmet(&edit(LAZYFP, map, rest), FpPolicy::Lazy);
            assert_eq!(unmet, Unmet::Map { pd, mr });
            assert!(
                message.contains(&format!(
                    "lazyfp needs protection_domain \"{pd}\" to <map mr=\"{mr}\">"
                )),
                "{message}"
            );
        }

        let no_setvar = edit(LAZYFP, r#" setvar_prefill_size="guest_image_size""#, "");
        let (unmet, message) = unmet(&no_setvar, FpPolicy::Lazy);
        assert!(matches!(
            unmet,
            Unmet::Setvar {
                pd: VMM,
                mr: "guest_image",
                ..
            }
        ));
        assert!(
            message.contains("setvar_prefill_size=\"guest_image_size\""),
            "{message}"
        );
    }

    #[test]
    fn the_channels() {
        let no_pp = edit(
            LAZYFP,
            r#"<end pd="fp_service" id="0" pp="true""#,
            r#"<end pd="fp_service" id="0""#,
        );
        let (unmet_pp, message) = unmet(&no_pp, FpPolicy::Lazy);
        assert_eq!(
            unmet_pp,
            Unmet::Channel {
                from: FP_SERVICE,
                to: VMM,
                attribute: "pp"
            }
        );
        assert_eq!(
            message,
            "test.xml: lazyfp needs a <channel> between \"fp_service\" (pp=\"true\") and \"vmm\""
        );

        let no_neon_pp = edit(
            LAZYFP,
            r#"<end pd="neon_worker" id="0" pp="true""#,
            r#"<end pd="neon_worker" id="0""#,
        );
        assert_eq!(
            unmet(&no_neon_pp, FpPolicy::Lazy).0,
            Unmet::Channel {
                from: NEON_WORKER,
                to: FP_SERVICE,
                attribute: "pp"
            }
        );

        let no_notify = edit(
            LAZYFP,
            r#"<end pd="vmm" id="1" />"#,
            r#"<end pd="vmm" id="1" notify="false" />"#,
        );
        let (unmet_notify, message) = unmet(&no_notify, FpPolicy::Lazy);
        assert_eq!(
            unmet_notify,
            Unmet::Channel {
                from: VMM,
                to: NEON_WORKER,
                attribute: "notify"
            }
        );
        assert!(
            message.contains("between \"vmm\" (notify=\"true\") and \"neon_worker\""),
            "{message}"
        );
    }

    #[test]
    fn fpu_follows_the_policy() {
        let (unmet_eager, message) = unmet(LAZYFP, FpPolicy::Eager);
        assert_eq!(
            unmet_eager,
            Unmet::Fpu {
                pd: VMM,
                fpu: true,
                policy: Some(FpPolicy::Eager)
            }
        );
        assert!(
            message.contains(
                "lazyfp needs fpu=\"true\" on protection_domain \"vmm\" under FP_POLICY=eager"
            ),
            "{message}"
        );
        // The vmm's element is on line 8 of the fixture.
        assert!(message.starts_with("test.xml:8: "), "{message}");

        let eager = edit(
            LAZYFP,
            r#"name="vmm" priority="200" fpu="false""#,
            r#"name="vmm" priority="200" fpu="true""#,
        );
        check_requirements(&ok(&eager), FpPolicy::Eager).unwrap();
        assert_eq!(
            unmet(&eager, FpPolicy::Lazy).0,
            Unmet::Fpu {
                pd: VMM,
                fpu: false,
                policy: Some(FpPolicy::Lazy)
            }
        );

        let service_fpu = edit(
            LAZYFP,
            r#"name="fp_service" priority="150" fpu="false""#,
            r#"name="fp_service" priority="150""#,
        );
        assert_eq!(
            unmet(&service_fpu, FpPolicy::Lazy).0,
            Unmet::Fpu {
                pd: FP_SERVICE,
                fpu: false,
                policy: Some(FpPolicy::Lazy)
            }
        );
        let both = edit(
            &service_fpu,
            r#"name="vmm" priority="200" fpu="false""#,
            r#"name="vmm" priority="200" fpu="true""#,
        );
        check_requirements(&ok(&both), FpPolicy::Eager).unwrap();

        let neon = edit(
            LAZYFP,
            r#"name="neon_worker" priority="100" fpu="true""#,
            r#"name="neon_worker" priority="100" fpu="false""#,
        );
        let (unmet_neon, message) = unmet(&neon, FpPolicy::Lazy);
        assert_eq!(
            unmet_neon,
            Unmet::Fpu {
                pd: NEON_WORKER,
                fpu: true,
                policy: None
            }
        );
        assert!(
            message.contains("fpu=\"true\" on protection_domain \"neon_worker\""),
            "{message}"
        );
    }

    #[test]
    fn neon_worker_shares_the_core_of_vcpu_0() {
        let moved = edit(
            LAZYFP,
            r#"name="neon_worker" priority="100""#,
            r#"name="neon_worker" priority="100" cpu="1""#,
        );
        let (unmet_cpu, message) = unmet(&moved, FpPolicy::Lazy);
        assert_eq!(
            unmet_cpu,
            Unmet::NeonCpu {
                vcpu: 0,
                cpu: 0,
                workers: 0
            }
        );
        assert!(
            message.contains("one neon_worker on the core of vcpu 0 (cpu=\"0\"), found 0"),
            "{message}"
        );
        let both = edit(&moved, r#"<vcpu id="0" />"#, r#"<vcpu id="0" cpu="1" />"#);
        check_requirements(&ok(&both), FpPolicy::Lazy).unwrap();
    }

    #[test]
    fn every_worker_is_wired_like_neon_worker() {
        // A second worker on vCPU 0's core: two there.
        let second = edit(
            LAZYFP,
            "</system>",
            r#"<protection_domain name="neon_worker1" priority="100" fpu="true">
        <program_image path="neon_worker.elf" /></protection_domain>
    <channel><end pd="neon_worker1" id="0" pp="true" /><end pd="fp_service" id="7" /></channel>
    <channel><end pd="vmm" id="7" /><end pd="neon_worker1" id="1" /></channel>
</system>"#,
        );
        let (two, _) = unmet(&second, FpPolicy::Lazy);
        assert_eq!(
            two,
            Unmet::NeonCpu {
                vcpu: 0,
                cpu: 0,
                workers: 2
            }
        );
        // On its own core with a vCPU there, it is fine.
        let placed = edit(
            &edit(
                &second,
                r#"name="neon_worker1" priority="100""#,
                r#"name="neon_worker1" priority="100" cpu="1""#,
            ),
            r#"<vcpu id="0" />"#,
            r#"<vcpu id="0" /><vcpu id="1" cpu="1" />"#,
        );
        check_requirements(&ok(&placed), FpPolicy::Lazy).unwrap();
        // Other channel ids on the worker's side: refused (one ELF).
        let renumbered = edit(
            &placed,
            r#"<end pd="neon_worker1" id="1" />"#,
            r#"<end pd="neon_worker1" id="2" />"#,
        );
        assert_eq!(
            unmet(&renumbered, FpPolicy::Lazy).0,
            Unmet::WorkerChannels { pd: "neon_worker1" }
        );
        // No notify channel from the VMM.
        let unwired = edit(
            &placed,
            r#"<channel><end pd="vmm" id="7" /><end pd="neon_worker1" id="1" /></channel>"#,
            "",
        );
        assert!(matches!(
            unmet(&unwired, FpPolicy::Lazy).0,
            Unmet::Channel {
                from: "vmm",
                to: "neon_worker1",
                ..
            }
        ));
        assert!(is_neon_worker("neon_worker") && is_neon_worker("neon_worker12"));
        assert!(!is_neon_worker("neon_workers") && !is_neon_worker("neon"));
    }

    #[test]
    fn cores_exist() {
        let moved = edit(
            LAZYFP,
            r#"name="neon_worker" priority="100""#,
            r#"name="neon_worker" priority="100" cpu="1""#,
        );
        let system = ok(&moved);
        let e = check_cores(&system, 1).unwrap_err();
        assert!(
            matches!(&e, SdfError::OutOfRange { attribute: "cpu", value: 1, max: 0, at, .. }
            if at.key == Some(("name", "neon_worker".to_owned())))
        );
        check_cores(&system, 4).unwrap();
        let vcpu = ok(&edit(
            LAZYFP,
            r#"<vcpu id="0" />"#,
            r#"<vcpu id="0" cpu="4" />"#,
        ));
        assert!(
            matches!(check_cores(&vcpu, 4), Err(SdfError::OutOfRange { value: 4, max: 3, at, .. }) if at.element == "vcpu")
        );
    }

    #[test]
    fn policies() {
        assert_eq!("lazy".parse(), Ok(FpPolicy::Lazy));
        assert_eq!("eager".parse(), Ok(FpPolicy::Eager));
        let e = "Eager".parse::<FpPolicy>().unwrap_err();
        assert_eq!(e.value, "Eager");
        assert!(e.to_string().contains("\"Eager\""));

        // The only test that touches FP_POLICY.
        std::env::remove_var("FP_POLICY");
        assert_eq!(FpPolicy::from_env(), Ok(FpPolicy::Lazy));
        std::env::set_var("FP_POLICY", "");
        assert_eq!(FpPolicy::from_env(), Ok(FpPolicy::Lazy));
        std::env::set_var("FP_POLICY", "eager");
        assert_eq!(FpPolicy::from_env(), Ok(FpPolicy::Eager));
        std::env::set_var("FP_POLICY", "lazzy");
        assert_eq!(
            FpPolicy::from_env(),
            Err(UnknownPolicy {
                value: "lazzy".to_owned()
            })
        );
        std::env::remove_var("FP_POLICY");
    }
}
