//! The device tree of the Linux guest, generated from the system description so that it says
//! exactly what the VMM provides: guest RAM and the GIC CPU interface where system.xml maps
//! them, one CPU per `<vcpu>`, and the devices the VMM emulates at QEMU virt's addresses (the
//! GIC distributor, on GICv3 also the redistributors, a PL011, the architected timer, PSCI
//! over SMC).

use std::fmt;

use vm_fdt::FdtWriter;

use crate::sdf::{System, VirtualMachine, VMM};

/// Which GIC the guest is told about (the VMM's vGIC front end; chosen by the caller, since
/// the system description does not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GicVersion {
    /// A GICv2: the emulated distributor and the VM's map of the hardware GICV frame.
    #[default]
    V2,
    /// A GICv3: the emulated distributor and redistributors (the CPU interface is system
    /// registers, no map needed).
    V3,
}

impl fmt::Display for GicVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V2 => "GICv2",
            Self::V3 => "GICv3",
        })
    }
}

/// What the DTB takes besides the system description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DtbParams {
    /// The kernel command line, `/chosen/bootargs`.
    pub bootargs: String,
    /// Guest-physical `(start, end)` of the initrd: `/chosen/linux,initrd-start` and `-end`
    /// (end exclusive).
    pub initrd: Option<(u64, u64)>,
}

// The emulated devices, at the guest-physical addresses of src/abi.rs (GUEST_GICD_BASE,
// GUEST_UART_BASE, VTIMER_IRQ); a test below checks that the two agree.
const GICD_BASE: u64 = 0x0800_0000;
const GICD_SIZE: u64 = 0x1000;
/// A GICv3 distributor's frame is 64 KiB.
const GICD_V3_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors as on QEMU virt: one region, 128 KiB (RD and SGI frames) per CPU.
const GICR_BASE: u64 = 0x080a_0000;
const GICR_STRIDE: u64 = 0x2_0000;
/// A GICv2 CPU interface spans two 4 KiB pages (GICC_DIR is in the second).
const GICC_SIZE: u64 = 0x2000;
const UART_BASE: u64 = 0x0900_0000;
const UART_SIZE: u64 = 0x1000;
/// The PL011's SPI (INTID 33), as on QEMU virt.
const UART_SPI: u32 = 1;
const UART_CLOCK_HZ: u32 = 24_000_000;
/// The virtio-mmio console (lazyfp::abi::GUEST_VIRTIO_CONSOLE_BASE), on SPI 16 as QEMU virt's
/// first virtio-mmio slot.
const VIRTIO_BASE: u64 = 0x0a00_0000;
const VIRTIO_SIZE: u64 = 0x200;
const VIRTIO_SPI: u32 = 16;
/// Architected timer PPIs in the DT's numbering (INTID - 16): secure 13, non-secure 14,
/// virtual 11 (INTID 27), hypervisor 10.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// GICv2 targets at most eight CPUs; the VMM's vGIC serves eight on either version.
const MAX_CPUS: usize = 8;

// The GIC binding's interrupt specifiers: <type number flags>.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
const IRQ_EDGE_RISING: u32 = 1;

const PHANDLE_GIC: u32 = 1;
const PHANDLE_CLOCK: u32 = 2;

/// Why no DTB could be made for a system description.
#[derive(Debug)]
pub enum DtbError {
    /// No `<virtual_machine>` in protection domain [`VMM`](crate::sdf).
    NoVirtualMachine { file: String },
    /// The virtual machine lacks maps the DTB describes; `missing` names their regions.
    MissingMaps {
        file: String,
        line: u32,
        vm: String,
        missing: Vec<&'static str>,
    },
    /// A region the DTB needs the size of has none (it is prefilled).
    UnsizedRegion { file: String, line: u32, mr: String },
    /// The virtual machine's vCPUs: none, or more than the GIC can target.
    Vcpus {
        file: String,
        line: u32,
        vm: String,
        count: usize,
        gic: GicVersion,
    },
    /// The initrd range is empty or not inside guest RAM.
    InitrdOutsideRam {
        start: u64,
        end: u64,
        ram_base: u64,
        ram_size: u64,
    },
    /// The FDT writer refused a node or property (a NUL in the bootargs, for one).
    Fdt(vm_fdt::Error),
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVirtualMachine { file } => write!(
                f,
                "{file}: the Linux guest's DTB needs a <virtual_machine> inside protection_domain \"{VMM}\""
            ),
            Self::MissingMaps {
                file,
                line,
                vm,
                missing,
            } => write!(
                f,
                "{file}:{line}: <virtual_machine name=\"{vm}\">: the Linux guest's DTB needs its <map> of {}",
                missing
                    .iter()
                    .map(|mr| format!("mr=\"{mr}\""))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Self::UnsizedRegion { file, line, mr } => write!(
                f,
                "{file}:{line}: <memory_region name=\"{mr}\">: the Linux guest's DTB needs its size"
            ),
            Self::Vcpus {
                file,
                line,
                vm,
                count,
                gic,
            } => write!(
                f,
                "{file}:{line}: <virtual_machine name=\"{vm}\"> has {count} vCPUs; a {gic} guest needs 1 to {MAX_CPUS}"
            ),
            Self::InitrdOutsideRam {
                start,
                end,
                ram_base,
                ram_size,
            } => write!(
                f,
                "initrd {start:#x}..{end:#x} is not a non-empty range inside guest RAM {ram_base:#x}..{:#x}",
                ram_base.saturating_add(*ram_size)
            ),
            Self::Fdt(e) => write!(f, "cannot write the DTB: {e}"),
        }
    }
}

impl std::error::Error for DtbError {}

impl From<vm_fdt::Error> for DtbError {
    fn from(e: vm_fdt::Error) -> Self {
        Self::Fdt(e)
    }
}

/// The guest-physical layout the DTB describes, read from the system description, and the GIC
/// the caller chose.
struct Layout<'a> {
    ram_base: u64,
    ram_size: u64,
    /// The VM's map of the GICV frame (GICv2 only).
    gicc_base: Option<u64>,
    gic: GicVersion,
    vcpus: Vec<u32>,
    vm: &'a VirtualMachine,
}

fn layout(system: &System, gic: GicVersion) -> Result<Layout<'_>, DtbError> {
    let vm = system
        .pd(VMM)
        .and_then(|pd| pd.virtual_machine.as_ref())
        .ok_or_else(|| DtbError::NoVirtualMachine {
            file: system.file.clone(),
        })?;
    let map = |mr: &str| vm.maps.iter().find(|map| map.mr == mr);
    let (ram, gicc) = (map("guest_ram"), map("gic_vcpu"));
    let gicc_needed = gic == GicVersion::V2;
    let (Some(ram), true) = (ram, gicc.is_some() || !gicc_needed) else {
        let missing = [
            ("guest_ram", ram.is_none()),
            ("gic_vcpu", gicc_needed && gicc.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(mr, _)| mr)
        .collect();
        return Err(DtbError::MissingMaps {
            file: system.file.clone(),
            line: vm.at.line,
            vm: vm.name.clone(),
            missing,
        });
    };
    // The parser has checked that a map names a declared region; only its size can be absent.
    let ram_mr = system.mr(&ram.mr);
    let ram_size = ram_mr
        .and_then(|mr| mr.size)
        .ok_or_else(|| DtbError::UnsizedRegion {
            file: system.file.clone(),
            line: ram_mr.map_or(ram.at.line, |mr| mr.at.line),
            mr: ram.mr.clone(),
        })?;
    if vm.vcpus.is_empty() || vm.vcpus.len() > MAX_CPUS {
        return Err(DtbError::Vcpus {
            file: system.file.clone(),
            line: vm.at.line,
            vm: vm.name.clone(),
            count: vm.vcpus.len(),
            gic,
        });
    }
    Ok(Layout {
        ram_base: ram.vaddr,
        ram_size,
        gicc_base: gicc.filter(|_| gicc_needed).map(|map| map.vaddr),
        gic,
        vcpus: vm.vcpus.iter().map(|vcpu| u32::from(vcpu.id)).collect(),
        vm,
    })
}

/// The Linux guest's DTB, with the GIC the system description implies: a GICv2 when the VM maps
/// the board's virtual CPU interface (`gic_vcpu`), else a GICv3 (whose CPU interface is system
/// registers).
pub fn guest_dtb(system: &System, params: &DtbParams) -> Result<Vec<u8>, DtbError> {
    guest_dtb_for(system, params, gic_of(system))
}

/// The GIC `system`'s VM sees: see [`guest_dtb`].
pub fn gic_of(system: &System) -> GicVersion {
    let maps_gicv = system
        .protection_domains
        .iter()
        .filter_map(|pd| pd.virtual_machine.as_ref())
        .any(|vm| vm.maps.iter().any(|m| m.mr == "gic_vcpu"));
    if maps_gicv {
        GicVersion::V2
    } else {
        GicVersion::V3
    }
}

/// The Linux guest's DTB for the virtual machine of `system`'s VMM, with a `gic`.
///
/// Describes: `/memory` (the VM's map of `guest_ram`), `/cpus` (one Cortex-A53 per `<vcpu>`,
/// `reg` = vCPU id, started with PSCI), `/psci` (SMC), `/timer`, `/intc` (GICv2: the emulated
/// distributor and the VM's map of `gic_vcpu` as the CPU interface; GICv3: the emulated
/// distributor and one redistributor region for all vCPUs), `/pl011` with its clock, the
/// virtio-mmio console, and
/// `/chosen` from `params`.
pub fn guest_dtb_for(
    system: &System,
    params: &DtbParams,
    gic: GicVersion,
) -> Result<Vec<u8>, DtbError> {
    let layout = layout(system, gic)?;
    if let Some((start, end)) = params.initrd {
        let ram_end = layout.ram_base.saturating_add(layout.ram_size);
        if !(layout.ram_base <= start && start < end && end <= ram_end) {
            return Err(DtbError::InitrdOutsideRam {
                start,
                end,
                ram_base: layout.ram_base,
                ram_size: layout.ram_size,
            });
        }
    }
    // On GICv2, PPIs name the CPUs they go to (a binding detail): one bit per vCPU.
    let ppi_flags = match layout.gic {
        GicVersion::V2 => ((1u32 << layout.vcpus.len()) - 1) << 8 | IRQ_LEVEL_HIGH,
        GicVersion::V3 => IRQ_LEVEL_HIGH,
    };
    let uart = format!("/pl011@{UART_BASE:x}");

    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string_list(
        "compatible",
        vec!["lazyfp,guest".into(), "linux,dummy-virt".into()],
    )?;
    fdt.property_string("model", &format!("lazyfp VM {}", layout.vm.name))?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", PHANDLE_GIC)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", &params.bootargs)?;
    fdt.property_string("stdout-path", &uart)?;
    if let Some((start, end)) = params.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(chosen)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", layout.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[layout.ram_base, layout.ram_size])?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for &id in &layout.vcpus {
        let cpu = fdt.begin_node(&format!("cpu@{id:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,cortex-a53")?;
        fdt.property_u32("reg", id)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
    )?;
    fdt.property_string("method", "smc")?;
    fdt.end_node(psci)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let timer_irqs: Vec<u32> = TIMER_PPIS
        .iter()
        .flat_map(|&ppi| [GIC_PPI, ppi, ppi_flags])
        .collect();
    fdt.property_array_u32("interrupts", &timer_irqs)?;
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    let intc = fdt.begin_node(&format!("intc@{GICD_BASE:x}"))?;
    let (compatible, reg) = match layout.gicc_base {
        Some(gicc) => (
            "arm,cortex-a15-gic",
            [GICD_BASE, GICD_SIZE, gicc, GICC_SIZE],
        ),
        // One redistributor region, so no #redistributor-regions.
        None => {
            let gicr_size = GICR_STRIDE * layout.vcpus.len() as u64;
            (
                "arm,gic-v3",
                [GICD_BASE, GICD_V3_SIZE, GICR_BASE, gicr_size],
            )
        }
    };
    fdt.property_string("compatible", compatible)?;
    fdt.property_u32("#interrupt-cells", 3)?;
    // No interrupt-map children; dtc wants the cell count stated all the same.
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_array_u64("reg", &reg)?;
    fdt.property_phandle(PHANDLE_GIC)?;
    fdt.end_node(intc)?;

    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(PHANDLE_CLOCK)?;
    fdt.end_node(clock)?;

    let pl011 = fdt.begin_node(&uart[1..])?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )?;
    fdt.property_array_u64("reg", &[UART_BASE, UART_SIZE])?;
    fdt.property_array_u32("interrupts", &[GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH])?;
    fdt.property_array_u32("clocks", &[PHANDLE_CLOCK, PHANDLE_CLOCK])?;
    fdt.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
    fdt.end_node(pl011)?;

    let virtio = fdt.begin_node(&format!("virtio_mmio@{VIRTIO_BASE:x}"))?;
    fdt.property_string("compatible", "virtio,mmio")?;
    fdt.property_array_u64("reg", &[VIRTIO_BASE, VIRTIO_SIZE])?;
    fdt.property_array_u32("interrupts", &[GIC_SPI, VIRTIO_SPI, IRQ_EDGE_RISING])?;
    // The device reads guest RAM through the VMM's cached mapping.
    fdt.property_null("dma-coherent")?;
    fdt.end_node(virtio)?;

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use fdt::{node::FdtNode, Fdt};

    use super::*;
    use crate::sdf::fixtures::{edit, ok, real, LAZYFP};

    const BOOTARGS: &str = "console=ttyAMA0 earlycon=pl011,0x09000000 iomem=relaxed";

    fn params(initrd: Option<(u64, u64)>) -> DtbParams {
        DtbParams {
            bootargs: BOOTARGS.to_owned(),
            initrd,
        }
    }

    fn dtb(xml: &str, initrd: Option<(u64, u64)>) -> Vec<u8> {
        match guest_dtb(&ok(xml), &params(initrd)) {
            Ok(dtb) => dtb,
            Err(e) => panic!("no DTB: {e}"),
        }
    }

    /// The error of a GICv2 DTB for `xml` (a system without `gic_vcpu` would be GICv3).
    fn err(xml: &str) -> String {
        match guest_dtb_for(&ok(xml), &params(None), GicVersion::V2) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    fn node<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> FdtNode<'b, 'a> {
        fdt.find_node(path)
            .unwrap_or_else(|| panic!("no node {path}"))
    }

    fn prop<'a>(node: FdtNode<'_, 'a>, name: &str) -> &'a [u8] {
        match node.property(name) {
            Some(p) => p.value,
            None => panic!("{} has no {name}", node.name),
        }
    }

    fn cells(node: FdtNode<'_, '_>, name: &str) -> Vec<u32> {
        prop(node, name)
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn u64s(node: FdtNode<'_, '_>, name: &str) -> Vec<u64> {
        prop(node, name)
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
            .collect()
    }

    fn strings<'a>(node: FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
        let value = prop(node, name);
        let value = value.strip_suffix(&[0]).expect("NUL-terminated");
        std::str::from_utf8(value)
            .expect("UTF-8")
            .split('\0')
            .collect()
    }

    #[test]
    fn describes_what_the_vmm_provides() {
        let blob = dtb(LAZYFP, Some((0x4200_0000, 0x4230_0000)));
        let fdt = Fdt::new(&blob).expect("a valid FDT");
        let root = node(&fdt, "/");
        assert_eq!(cells(root, "#address-cells"), [2]);
        assert_eq!(cells(root, "#size-cells"), [2]);

        let memory = node(&fdt, "/memory@40000000");
        assert_eq!(strings(memory, "device_type"), ["memory"]);
        assert_eq!(u64s(memory, "reg"), [0x4000_0000, 0x400_0000]);

        let cpu = node(&fdt, "/cpus/cpu@0");
        assert_eq!(strings(cpu, "compatible"), ["arm,cortex-a53"]);
        assert_eq!(strings(cpu, "enable-method"), ["psci"]);
        assert_eq!(cells(cpu, "reg"), [0]);
        assert_eq!(fdt.cpus().count(), 1);

        let psci = node(&fdt, "/psci");
        assert_eq!(
            strings(psci, "compatible"),
            ["arm,psci-1.0", "arm,psci-0.2"]
        );
        assert_eq!(strings(psci, "method"), ["smc"]);

        let timer = node(&fdt, "/timer");
        assert_eq!(strings(timer, "compatible"), ["arm,armv8-timer"]);
        assert_eq!(
            cells(timer, "interrupts"),
            [1, 13, 0x104, 1, 14, 0x104, 1, 11, 0x104, 1, 10, 0x104]
        );
        assert!(timer.property("always-on").is_some());

        let gic = node(&fdt, "/intc@8000000");
        assert_eq!(strings(gic, "compatible"), ["arm,cortex-a15-gic"]);
        assert_eq!(cells(gic, "#interrupt-cells"), [3]);
        assert!(gic.property("interrupt-controller").is_some());
        assert_eq!(u64s(gic, "reg"), [0x0800_0000, 0x1000, 0x0801_0000, 0x2000]);
        assert_eq!(cells(root, "interrupt-parent"), cells(gic, "phandle"));

        let uart = node(&fdt, "/pl011@9000000");
        assert_eq!(strings(uart, "compatible"), ["arm,pl011", "arm,primecell"]);
        assert_eq!(u64s(uart, "reg"), [0x0900_0000, 0x1000]);
        assert_eq!(cells(uart, "interrupts"), [0, 1, 4]);
        assert_eq!(strings(uart, "clock-names"), ["uartclk", "apb_pclk"]);
        let clock = node(&fdt, "/apb-pclk");
        assert_eq!(strings(clock, "compatible"), ["fixed-clock"]);
        assert_eq!(cells(clock, "clock-frequency"), [24_000_000]);
        let phandle = cells(clock, "phandle")[0];
        assert_eq!(cells(uart, "clocks"), [phandle, phandle]);
        let virtio = node(&fdt, "/virtio_mmio@a000000");
        assert_eq!(strings(virtio, "compatible"), ["virtio,mmio"]);
        assert_eq!(u64s(virtio, "reg"), [0x0a00_0000, 0x200]);
        assert_eq!(cells(virtio, "interrupts"), [0, 16, 1]);
        assert!(virtio.property("dma-coherent").is_some());

        let chosen = node(&fdt, "/chosen");
        assert_eq!(strings(chosen, "bootargs"), [BOOTARGS]);
        assert_eq!(strings(chosen, "stdout-path"), ["/pl011@9000000"]);
        assert_eq!(u64s(chosen, "linux,initrd-start"), [0x4200_0000]);
        assert_eq!(u64s(chosen, "linux,initrd-end"), [0x4230_0000]);
        assert_eq!(fdt.chosen().bootargs(), Some(BOOTARGS));
    }

    #[test]
    fn follows_the_system_description() {
        // Another RAM size, the GICV frame mapped elsewhere, two vCPUs.
        let xml = edit(
            LAZYFP,
            r#"<memory_region name="guest_ram" size="0x4000000""#,
            r#"<memory_region name="guest_ram" size="0x10000000""#,
        );
        let xml = edit(
            &xml,
            r#"<map mr="gic_vcpu" vaddr="0x8010000""#,
            r#"<map mr="gic_vcpu" vaddr="0x8020000""#,
        );
        let xml = edit(
            &xml,
            r#"<vcpu id="0" />"#,
            r#"<vcpu id="0" /><vcpu id="1" />"#,
        );
        let blob = dtb(&xml, None);
        let fdt = Fdt::new(&blob).expect("a valid FDT");
        assert_eq!(
            u64s(node(&fdt, "/memory@40000000"), "reg"),
            [0x4000_0000, 0x1000_0000]
        );
        assert_eq!(u64s(node(&fdt, "/intc@8000000"), "reg")[2], 0x0802_0000);
        assert_eq!(cells(node(&fdt, "/cpus/cpu@1"), "reg"), [1]);
        // PPIs go to both CPUs.
        assert_eq!(cells(node(&fdt, "/timer"), "interrupts")[2], 0x304);
        // No initrd, no initrd properties.
        let chosen = node(&fdt, "/chosen");
        assert!(chosen.property("linux,initrd-start").is_none());
        assert!(chosen.property("linux,initrd-end").is_none());
    }

    #[test]
    fn the_real_system_has_a_dtb() {
        let system = ok(&real());
        let blob = guest_dtb(&system, &params(None)).expect("a DTB for system.xml");
        let fdt = Fdt::new(&blob).expect("a valid FDT");
        let ram = system.mr("guest_ram").and_then(|mr| mr.size);
        let reg = u64s(node(&fdt, "/memory@40000000"), "reg");
        assert_eq!(Some(reg[1]), ram);
    }

    /// `dtc`'s source form of `blob`, or None without dtc.
    fn dtc(blob: &[u8]) -> Option<String> {
        let child = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            println!("note: dtc not found (Debian package device-tree-compiler): not checking the DTB with dtc");
            return None;
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(blob)
            .expect("write to dtc");
        let out = child.wait_with_output().expect("dtc runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dtc failed: {stderr}");
        assert!(stderr.trim().is_empty(), "dtc warns: {stderr}");
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn dtc_reads_it_without_warnings() {
        let Some(dts) = dtc(&dtb(LAZYFP, Some((0x4200_0000, 0x4230_0000)))) else {
            return;
        };
        for line in [
            "memory@40000000 {",
            "reg = <0x00 0x40000000 0x00 0x4000000>;",
            "compatible = \"arm,cortex-a15-gic\";",
            "reg = <0x00 0x8000000 0x00 0x1000 0x00 0x8010000 0x00 0x2000>;",
            "linux,initrd-start = <0x00 0x42000000>;",
            "stdout-path = \"/pl011@9000000\";",
        ] {
            assert!(dts.contains(line), "no {line:?} in:\n{dts}");
        }
        let Some(dts) = dtc(&dtb_v3(&with_vcpus(LAZYFP, 2))) else {
            return;
        };
        for line in [
            "compatible = \"arm,gic-v3\";",
            "reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x40000>;",
        ] {
            assert!(dts.contains(line), "no {line:?} in:\n{dts}");
        }
    }

    /// The fixture without the VM's map of the GICV frame.
    fn without_gicv_map() -> String {
        edit(
            LAZYFP,
            r#"<map mr="gic_vcpu" vaddr="0x8010000" perms="rw" cached="false" />"#,
            "",
        )
    }

    #[test]
    fn missing_maps_are_named() {
        let no_gicc = without_gicv_map();
        let e = err(&no_gicc);
        assert!(
            e.contains("virtual_machine name=\"guest\"") && e.contains("mr=\"gic_vcpu\""),
            "{e}"
        );
        assert!(!e.contains("guest_ram"), "{e}");
        let neither = edit(
            &no_gicc,
            r#"<map mr="guest_ram" vaddr="0x40000000" perms="rwx" />"#,
            "",
        );
        let e = err(&neither);
        assert!(e.contains("mr=\"guest_ram\" and mr=\"gic_vcpu\""), "{e}");
    }

    #[test]
    fn other_bad_systems_and_parameters() {
        let no_vm = ok(r#"<system>
            <protection_domain name="vmm" priority="200"><program_image path="vmm.elf" /></protection_domain>
            </system>"#);
        let e = guest_dtb(&no_vm, &params(None)).expect_err("no VM");
        assert!(e
            .to_string()
            .contains("<virtual_machine> inside protection_domain \"vmm\""));

        let prefilled = edit(
            LAZYFP,
            r#"<memory_region name="guest_ram" size="0x4000000" page_size="0x200000" />"#,
            r#"<memory_region name="guest_ram" prefill_path="ram.bin" page_size="0x200000" />"#,
        );
        assert!(err(&prefilled)
            .contains("<memory_region name=\"guest_ram\">: the Linux guest's DTB needs its size"));

        let system = ok(LAZYFP);
        for initrd in [
            (0x3fff_f000, 0x4000_1000),
            (0x4000_0000, 0x4000_0000),
            (0x43ff_f000, 0x4400_1000),
        ] {
            let e = guest_dtb(&system, &params(Some(initrd))).expect_err("initrd outside RAM");
            assert!(
                e.to_string()
                    .contains("not a non-empty range inside guest RAM 0x40000000..0x44000000"),
                "{e}"
            );
        }
        let bad_args = DtbParams {
            bootargs: "console=ttyAMA0\0".to_owned(),
            initrd: None,
        };
        assert!(matches!(
            guest_dtb(&system, &bad_args),
            Err(DtbError::Fdt(vm_fdt::Error::InvalidString))
        ));
    }

    fn dtb_v3(xml: &str) -> Vec<u8> {
        match guest_dtb_for(&ok(xml), &params(None), GicVersion::V3) {
            Ok(dtb) => dtb,
            Err(e) => panic!("no GICv3 DTB: {e}"),
        }
    }

    /// `n` vCPUs with ids 0..n.
    fn with_vcpus(xml: &str, n: u32) -> String {
        let vcpus: String = (0..n).map(|i| format!(r#"<vcpu id="{i}" />"#)).collect();
        edit(xml, r#"<vcpu id="0" />"#, &vcpus)
    }

    #[test]
    fn gicv2_is_the_default() {
        let system = ok(&with_vcpus(LAZYFP, 2));
        let v2 = guest_dtb_for(&system, &params(None), GicVersion::V2).expect("a DTB");
        assert_eq!(guest_dtb(&system, &params(None)).expect("a DTB"), v2);
        assert_eq!(GicVersion::default(), GicVersion::V2);
        let v3 = guest_dtb_for(&system, &params(None), GicVersion::V3).expect("a DTB");
        assert_ne!(v2, v3);
    }

    #[test]
    fn gicv3_node() {
        for n in [1u32, 4] {
            let blob = dtb_v3(&with_vcpus(LAZYFP, n));
            let fdt = Fdt::new(&blob).expect("a valid FDT");
            let gic = node(&fdt, "/intc@8000000");
            assert_eq!(strings(gic, "compatible"), ["arm,gic-v3"]);
            assert_eq!(cells(gic, "#interrupt-cells"), [3]);
            assert!(gic.property("interrupt-controller").is_some());
            assert!(gic.property("#redistributor-regions").is_none());
            assert_eq!(
                u64s(gic, "reg"),
                [0x0800_0000, 0x1_0000, 0x080a_0000, 0x2_0000 * u64::from(n)]
            );
            assert_eq!(
                cells(node(&fdt, "/"), "interrupt-parent"),
                cells(gic, "phandle")
            );
            // No CPU mask in the PPI specifiers.
            assert_eq!(
                cells(node(&fdt, "/timer"), "interrupts"),
                [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
            );
            assert_eq!(fdt.cpus().count(), n as usize);
        }
    }

    #[test]
    fn gicv3_needs_no_gicv_map() {
        let no_gicc = without_gicv_map();
        let blob = dtb_v3(&no_gicc);
        let fdt = Fdt::new(&blob).expect("a valid FDT");
        assert_eq!(u64s(node(&fdt, "/intc@8000000"), "reg")[2], 0x080a_0000);
        assert!(err(&no_gicc).contains("mr=\"gic_vcpu\""), "GICv2 needs it");
        let no_ram = edit(
            &no_gicc,
            r#"<map mr="guest_ram" vaddr="0x40000000" perms="rwx" />"#,
            "",
        );
        let e = guest_dtb_for(&ok(&no_ram), &params(None), GicVersion::V3)
            .expect_err("no RAM map")
            .to_string();
        assert!(
            e.contains("its <map> of mr=\"guest_ram\"") && !e.contains("gic_vcpu"),
            "{e}"
        );
    }

    #[test]
    fn vcpu_count_is_checked_per_gic() {
        let nine = ok(&with_vcpus(LAZYFP, 9));
        for (gic, name) in [(GicVersion::V2, "GICv2"), (GicVersion::V3, "GICv3")] {
            let e = guest_dtb_for(&nine, &params(None), gic).expect_err("9 vCPUs");
            assert!(
                e.to_string()
                    .contains(&format!("has 9 vCPUs; a {name} guest needs 1 to 8")),
                "{e}"
            );
        }
        assert!(guest_dtb_for(&ok(&with_vcpus(LAZYFP, 8)), &params(None), GicVersion::V3).is_ok());
    }

    /// The emulated devices' addresses here and in src/abi.rs (which the VMM and the test guest
    /// use) agree, and so does the real system's map of the GIC CPU interface.
    #[test]
    fn agrees_with_the_guest_abi() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../src/abi.rs");
        let abi = std::fs::read_to_string(path).expect("src/abi.rs");
        let constant = |name: &str| -> u64 {
            let prefix = format!("pub const {name}: ");
            let line = abi
                .lines()
                .find(|line| line.trim_start().starts_with(&prefix))
                .unwrap_or_else(|| panic!("no {name} in src/abi.rs"));
            let value = line
                .split('=')
                .nth(1)
                .expect("a value")
                .trim()
                .trim_end_matches(';');
            crate::parse_number(value).unwrap_or_else(|| panic!("{name} = {value}?"))
        };
        assert_eq!(constant("GUEST_GICD_BASE"), GICD_BASE);
        assert_eq!(constant("GUEST_UART_BASE"), UART_BASE);
        assert_eq!(constant("VTIMER_IRQ"), u64::from(16 + TIMER_PPIS[2]));
        let system = ok(&real());
        let layout = layout(&system, GicVersion::V2).expect("the real system's layout");
        assert_eq!(Some(constant("GUEST_GICC_BASE")), layout.gicc_base);
        assert_eq!(constant("GUEST_RAM_BASE"), layout.ram_base);
    }
}
