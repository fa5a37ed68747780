#!/usr/bin/env python3
"""Instructions the VMM PD executes per exit round trip, from QEMU's execution log.

usage: exit-profile.py LOADER_IMG KIND [KIND...]    (KIND: hvc, smc, mmio_read, mmio_write, wfi)

Boots LOADER_IMG (a benchmark build: GUEST_FEATURES=bench; VMM or floor) in QEMU with
`-d in_asm,exec,nochain` filtered to the PDs' code (0x200000, where Microkit links them) and the
guest's bench loop, then counts, between two executions of the guest's exit instruction of KIND,
the instructions of the PD code that ran (every translation block's length × its executions):
the handler's own work per exit, without the kernel's. Prints the median round per KIND and the
blocks it ran (start address: instructions), for comparing the VMM with the floor handler.
Only the VMM runs between those exits (the NEON worker idles, fp-service is not called).
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

# The bench loop's exit instructions (guest/src/arch.rs bench_batch), as objdump prints them.
KINDS = {"hvc": r"hvc\s+#0x0", "smc": r"smc\s+#0x0", "mmio_read": r"ldr\s+w1, \[x\d+\]",
         "mmio_write": r"strb\s+wzr, \[x\d+\]", "wfi": r"wfi"}
TRACE = re.compile(r"Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/")
INSN = re.compile(r"0x([0-9a-f]+):")


def exit_addresses(guest_elf, kind):
    """Addresses of KIND's exit instructions in the bench guest's bench::run."""
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", guest_elf],
                         capture_output=True, text=True, check=True).stdout
    body = re.search(r"<_ZN5guest5bench3run[^>]*>:\n(.*?)\n\n", dis, re.S)
    if not body:
        sys.exit(f"exit-profile: {guest_elf}: no bench::run (not a benchmark guest?)")
    found = [int(m.group(1), 16) for m in re.finditer(r"^\s*([0-9a-f]+):\s+" + KINDS[kind] + r"\s*$",
                                                     body.group(1), re.M)]
    if not found:
        sys.exit(f"exit-profile: no {kind} exit in bench::run of {guest_elf}")
    return found


def rounds(log, markers):
    """Per round (between two guest blocks holding a marker): [(block start, instructions)]."""
    blocks, pending, out, cur, started = {}, None, [], [], False
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                pending = []
                continue
            if pending is not None:
                m = INSN.match(line)
                if m:
                    pending.append(int(m.group(1), 16))
                    continue
            m = TRACE.search(line)
            if not m:
                continue
            if pending:
                blocks[m.group(1)] = (pending[0], pending[-1], len(pending))
                pending = None
            info = blocks.get(m.group(1))
            if info is None:
                continue
            first, last, n = info
            if first >= 0x4000_0000:
                # A guest block: the one that ends in the exit instruction starts a round.
                if any(first <= a <= last for a in markers):
                    if started:
                        out.append(cur)
                    cur, started = [], True
                continue
            if started:
                cur.append((first, n))
    return out


def main():
    if len(sys.argv) < 3 or any(k not in KINDS for k in sys.argv[2:]):
        print(__doc__, file=sys.stderr)
        return 2
    img = sys.argv[1]
    guest = os.path.join(os.path.dirname(img), "guest.elf")
    for path in (img, guest):
        if not os.path.isfile(path):
            sys.exit(f"exit-profile: {path}: no such file")
    qemu = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu.sh")
    with tempfile.TemporaryDirectory(prefix="exit-profile-") as tmp:
        log = os.path.join(tmp, "exec.log")
        subprocess.run(["timeout", "600", qemu, img, "-d", "in_asm,exec,nochain",
                        "-dfilter", "0x200000+0x100000,0x40000000+0x100000", "-D", log],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for kind in sys.argv[2:]:
            rs = sorted(rounds(log, exit_addresses(guest, kind)), key=lambda r: sum(n for _, n in r))
            if not rs:
                print(f"exit-profile: {kind}: no complete round in the log")
                continue
            med = rs[len(rs) // 2]
            print(f"exit-profile: {kind}: {sum(n for _, n in med)} PD instructions per round trip "
                  f"(median of {len(rs)} rounds)")
            print("  " + " ".join(f"{a:x}:{n}" for a, n in med))
    return 0


if __name__ == "__main__":
    sys.exit(main())
