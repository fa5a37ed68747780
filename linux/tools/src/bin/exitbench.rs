//! `exitbench [-n N] [--batch B] [--self-test]`: the cost of a trapped access from user space.
//!
//! Maps the GIC distributor through /dev/mem (the kernel needs `iomem=relaxed`) and reads
//! GICD_TYPER N times, which the VMM emulates: each read is a stage-2 fault, a trip to the VMM
//! and back. A getppid() system call is the baseline. Each batch of B operations is timed with
//! the virtual counter; prints the median and spread per operation, in counter ticks and ns,
//! and then `lazyfp: exitbench gicd_read_ns=<median> gicd_read_ticks=<median> syscall_ns=<median>
//! n=N`. `--self-test` times the system call only (qemu-user has no GIC to map).

#[cfg(target_arch = "aarch64")]
fn main() -> std::process::ExitCode {
    imp::main()
}

#[cfg(not(target_arch = "aarch64"))]
fn main() -> std::process::ExitCode {
    eprintln!("exitbench: aarch64 only (build with --target aarch64-unknown-linux-gnu)");
    std::process::ExitCode::from(2)
}

#[cfg(target_arch = "aarch64")]
mod imp {
    use std::process::ExitCode;

    use lazyfp_linux_tools::{arch, parse_exitbench, per_op_ns, ExitbenchArgs, Spread};

    /// The guest-physical GIC distributor (src/abi.rs GUEST_GICD_BASE, QEMU virt's address).
    const GICD_BASE: libc::off_t = 0x0800_0000;
    const GICD_TYPER: usize = 0x4;
    const PAGE: usize = 0x1000;

    pub fn main() -> ExitCode {
        let args = match parse_exitbench(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(message) => {
                eprintln!("exitbench: {message}");
                return ExitCode::from(2);
            }
        };
        let freq = arch::cntfrq();
        if freq == 0 {
            println!("lazyfp: exitbench FAIL: CNTFRQ_EL0 reads 0");
            return ExitCode::FAILURE;
        }
        println!(
            "lazyfp: exitbench cntfrq={freq} n={} batch={} batches={}",
            args.count,
            args.batch,
            args.batches()
        );
        let syscall = measure(&args, arch::getppid);
        let Some(syscall) = report("syscall", syscall, &args, freq) else {
            return ExitCode::FAILURE;
        };
        if args.self_test {
            println!(
                "lazyfp: exitbench self-test syscall_ns={} n={}",
                syscall.median, args.count
            );
            return ExitCode::SUCCESS;
        }

        let gicd = match map_gicd() {
            Ok(gicd) => gicd,
            Err(e) => {
                println!("lazyfp: exitbench FAIL: cannot map the GIC distributor at {GICD_BASE:#x} through /dev/mem: {e} (boot with iomem=relaxed)");
                return ExitCode::FAILURE;
            }
        };
        // SAFETY: GICD_TYPER is a read-only register inside the mapped distributor page.
        let typer_at = unsafe { gicd.add(GICD_TYPER / 4) };
        // SAFETY: as above; reading GICD_TYPER has no side effects.
        let typer = unsafe { arch::read32(typer_at) };
        println!(
            "lazyfp: exitbench gicd_typer={typer:#x} (ITLinesNumber {}, CPUs {})",
            typer & 0x1f,
            (typer >> 5 & 7) + 1
        );
        // SAFETY: as above.
        let gicd_ticks = measure(&args, || unsafe { arch::read32(typer_at) });
        let Some(gicd_read) = report("gicd_read", gicd_ticks, &args, freq) else {
            return ExitCode::FAILURE;
        };
        println!(
            "lazyfp: exitbench gicd_read_ns={} gicd_read_ticks={} syscall_ns={} n={}",
            gicd_read.median, gicd_read.median_ticks, syscall.median, args.count
        );
        ExitCode::SUCCESS
    }

    /// Ticks per batch of `args.batch` calls of `op`, one sample per batch.
    fn measure<T>(args: &ExitbenchArgs, mut op: impl FnMut() -> T) -> Vec<u64> {
        // One untimed batch first: page tables, caches and the VMM's first-fault paths.
        for _ in 0..args.batch {
            std::hint::black_box(op());
        }
        (0..args.batches())
            .map(|_| {
                let start = arch::cntvct();
                for _ in 0..args.batch {
                    std::hint::black_box(op());
                }
                arch::cntvct().wrapping_sub(start)
            })
            .collect()
    }

    struct PerOp {
        median: u64,
        median_ticks: u64,
    }

    /// Prints the per-operation median and spread of `samples` (ticks per batch).
    fn report(name: &str, mut samples: Vec<u64>, args: &ExitbenchArgs, freq: u64) -> Option<PerOp> {
        let Some(ticks) = Spread::of(&mut samples) else {
            println!("lazyfp: exitbench FAIL: no {name} samples");
            return None;
        };
        let ns = ticks.map(|t| per_op_ns(t, args.batch, freq));
        // Per-operation ticks, rounded to nearest.
        let per_op = ticks.map(|t| (t + args.batch / 2) / args.batch);
        println!(
            "lazyfp: exitbench {name} ns/op median={} p10={} p90={} min={} max={}; ticks/op median={} p10={} p90={}",
            ns.median, ns.p10, ns.p90, ns.min, ns.max, per_op.median, per_op.p10, per_op.p90
        );
        Some(PerOp {
            median: ns.median,
            median_ticks: per_op.median,
        })
    }

    /// The distributor's first page, mapped uncached from /dev/mem.
    fn map_gicd() -> std::io::Result<*const u32> {
        let path = c"/dev/mem";
        // SAFETY: opens a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_SYNC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: maps one page of /dev/mem read-only at a kernel-chosen address; the mapping
        // stays until the process exits.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                GICD_BASE,
            )
        };
        let err = std::io::Error::last_os_error();
        // SAFETY: the mapping holds its own reference to the file.
        unsafe { libc::close(fd) };
        if p == libc::MAP_FAILED {
            return Err(err);
        }
        Ok(p.cast::<u32>().cast_const())
    }
}
