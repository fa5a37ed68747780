//! `fpstress [--seconds S] [--procs P] [--self-test]`: FP/SIMD state across context switches,
//! system calls and signals, in the manner of Linux's selftests/arm64/fp (fpsimd-test, fp-stress).
//!
//! Forks P processes per online CPU. Each loads V0–V31, FPSR and FPCR with a pattern of (pid,
//! register, generation), yields, calls getppid or signals itself (the SIGUSR1 handler
//! overwrites the FP registers), and stores and compares them, the load, call and store in one
//! asm block; meanwhile the parent sends SIGUSR1 to its children at random. The parent collects
//! each child's report through a pipe and prints
//! `lazyfp: linux fpstress PASS procs=<processes> iterations=<I> mismatches=0`, or FAIL with the
//! first bad register, and exits 0 or 1.

#[cfg(target_arch = "aarch64")]
fn main() -> std::process::ExitCode {
    imp::main()
}

#[cfg(not(target_arch = "aarch64"))]
fn main() -> std::process::ExitCode {
    eprintln!("fpstress: aarch64 only (build with --target aarch64-unknown-linux-gnu)");
    std::process::ExitCode::from(2)
}

#[cfg(target_arch = "aarch64")]
mod imp {
    use std::io::Write;
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use lazyfp_linux_tools::arch::{self, Call};
    use lazyfp_linux_tools::{
        expected, first_mismatch, mismatches, parse_fpstress, ChildReport, Totals, REPORT_BYTES,
    };

    /// Spin iterations on each side of the system call: a window for interrupts and signals.
    const SPIN: u64 = 200;
    /// How long after the deadline a child may take to report before it counts as hung.
    const GRACE: Duration = Duration::from_secs(10);

    struct Child {
        pid: libc::pid_t,
        pipe: libc::c_int,
    }

    pub fn main() -> ExitCode {
        let args = match parse_fpstress(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(message) => {
                eprintln!("fpstress: {message}");
                return ExitCode::from(2);
            }
        };
        if args.self_test && !checker_self_test() {
            return ExitCode::FAILURE;
        }
        // SAFETY: sysconf has no memory effects.
        let cpus = u64::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
            .unwrap_or(1)
            .max(1);
        let procs = cpus * args.procs;
        println!(
            "lazyfp: fpstress cpus={cpus} procs_per_cpu={} seconds={}",
            args.procs, args.seconds
        );
        if let Err(e) = install_handler() {
            eprintln!("fpstress: sigaction(SIGUSR1): {e}");
            return ExitCode::FAILURE;
        }
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let mut totals = Totals {
            procs,
            ..Totals::default()
        };
        let mut children = Vec::new();
        for _ in 0..procs {
            match spawn(deadline) {
                Ok(child) => children.push(child),
                Err(e) => {
                    eprintln!("fpstress: cannot start a stress process: {e}");
                    totals.lost += 1;
                }
            }
        }
        harass(&children, deadline);
        collect(&children, deadline + GRACE, &mut totals);
        println!("lazyfp: fpstress signals={}", totals.signals);
        println!("{}", totals.verdict_line());
        // Flush before exiting: init powers the machine off right after.
        let _ = std::io::stdout().flush();
        if totals.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// The comparison must see a register that changed: stores a pattern and checks it against
    /// the next generation's.
    fn checker_self_test() -> bool {
        let pid = std::process::id();
        let load = expected(pid, 1);
        let stored = arch::load_call_store(&load, Call::Getppid, 0);
        let other = expected(pid, 2);
        let same = first_mismatch(&load, &stored);
        let differs = mismatches(&other, &stored);
        if same.is_some() || differs == 0 {
            println!(
                "lazyfp: fpstress self-test FAIL: checker saw {same:?} for the same state and {differs} differences for another"
            );
            return false;
        }
        println!("lazyfp: fpstress self-test: checker sees {differs} of 34 registers differ in another generation");
        true
    }

    fn install_handler() -> std::io::Result<()> {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = arch::on_sigusr1 as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action` is initialised; `sa_mask` is a valid sigset_t to empty.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: installs a handler that only counts and overwrites FP registers; the old
        // action is not wanted.
        if unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Forks a stress process that runs until `deadline` and writes its report to a pipe.
    fn spawn(deadline: Instant) -> std::io::Result<Child> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the process is single-threaded, so the child may run any code.
        match unsafe { libc::fork() } {
            -1 => {
                let e = std::io::Error::last_os_error();
                // SAFETY: closes the descriptors just opened.
                unsafe {
                    libc::close(fds[0]);
                    libc::close(fds[1]);
                }
                Err(e)
            }
            0 => {
                // SAFETY: the child's copy of the read end is not used.
                unsafe { libc::close(fds[0]) };
                let report = stress(deadline);
                let bytes = report.encode();
                // SAFETY: writes the report from a live buffer; then leaves without running the
                // parent's exit handlers or flushing its copied stdio buffers.
                unsafe {
                    let written = libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
                    let ok = usize::try_from(written) == Ok(bytes.len());
                    libc::_exit(if ok && report.mismatches == 0 { 0 } else { 1 });
                }
            }
            pid => {
                // SAFETY: the parent's copy of the write end is not used.
                unsafe { libc::close(fds[1]) };
                Ok(Child { pid, pipe: fds[0] })
            }
        }
    }

    /// A stress process's loop: load, yield / call / signal, store, compare.
    fn stress(deadline: Instant) -> ChildReport {
        let pid = std::process::id();
        let mut report = ChildReport::default();
        let mut generation = 0u64;
        while Instant::now() < deadline {
            generation += 1;
            let call = match generation % 3 {
                0 => Call::Yield,
                1 => Call::Getppid,
                _ => Call::SignalSelf {
                    pid: pid as libc::pid_t,
                },
            };
            let load = expected(pid, generation);
            let stored = arch::load_call_store(&load, call, SPIN);
            let bad = mismatches(&load, &stored);
            if bad > 0 {
                report.mismatches += bad;
                if report.first_bad.is_none() {
                    report.first_bad = first_mismatch(&load, &stored);
                }
            }
            report.iterations += 1;
        }
        report.signals = arch::signals();
        report
    }

    /// Until `deadline`, sends SIGUSR1 to a child every millisecond or two, picked by a cheap
    /// pseudo-random sequence, so that signals also land outside the children's own calls.
    fn harass(children: &[Child], deadline: Instant) {
        if children.is_empty() {
            return;
        }
        let mut seed = u64::from(std::process::id()) | 1;
        while Instant::now() < deadline {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let child = &children[(seed % children.len() as u64) as usize];
            // SAFETY: signals one of our own children (a zombie if it has finished already).
            unsafe { libc::kill(child.pid, libc::SIGUSR1) };
            std::thread::sleep(Duration::from_micros(1000 + seed % 1000));
        }
    }

    /// Waits for every child until `give_up`, then kills the rest; tallies their reports.
    fn collect(children: &[Child], give_up: Instant, totals: &mut Totals) {
        for (index, child) in children.iter().enumerate() {
            let status = wait(child.pid, give_up);
            let mut bytes = [0u8; REPORT_BYTES];
            // SAFETY: reads at most REPORT_BYTES into a buffer of that size; the child has
            // exited, so the read does not block.
            let got = unsafe { libc::read(child.pipe, bytes.as_mut_ptr().cast(), bytes.len()) };
            // SAFETY: the descriptor is ours and not used again.
            unsafe { libc::close(child.pipe) };
            let report = usize::try_from(got)
                .ok()
                .and_then(|n| ChildReport::decode(&bytes[..n]));
            match (status, report) {
                (Some(status), Some(report))
                    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1 =>
                {
                    totals.add(&report)
                }
                (status, _) => {
                    totals.lost += 1;
                    let why = match status {
                        None => "did not finish in time (killed)".to_owned(),
                        Some(s) if libc::WIFSIGNALED(s) => {
                            format!("was killed by signal {}", libc::WTERMSIG(s))
                        }
                        Some(s) => {
                            format!("exited with status {} and no report", libc::WEXITSTATUS(s))
                        }
                    };
                    println!("lazyfp: fpstress process {index} (pid {}) {why}", child.pid);
                }
            }
        }
    }

    /// The child's wait status, or `None` if it had to be killed at `give_up`.
    fn wait(pid: libc::pid_t, give_up: Instant) -> Option<libc::c_int> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out-parameter.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                return Some(status);
            }
            if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return None;
            }
            if Instant::now() >= give_up {
                // SAFETY: kills and reaps our own hung child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
