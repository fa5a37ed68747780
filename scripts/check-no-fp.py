#!/usr/bin/env python3
"""Fails if an ELF has FP/SIMD instructions where they are not allowed.

usage: check-no-fp.py ELF [--allow SUBSTR ...]

Disassembles the ELF with objdump; an instruction is FP/SIMD when it names a SIMD&FP register
(v/q/d/s/h/b 0-31) or FPCR/FPSR. Functions whose symbol contains an --allow substring may use
them. Any other function that does must be reachable only from allowed functions (directly or
through other such functions): library code like memcpy or core::fmt, called only inside a NEON
section, is fine; the same code called from anywhere else is not.
"""
import os
import re
import subprocess
import sys

FP = re.compile(r"(^|[^a-z0-9_.])([qdshb]([0-9]|[12][0-9]|3[01])|v([0-9]|[12][0-9]|3[01])\.|fpcr|fpsr)([^a-z0-9_]|$)")
FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s*[0-9a-f]+:\t(.*)$")
CALL = re.compile(r"^(bl|b)\s+[0-9a-f]+ <([^>+]+)(\+0x[0-9a-f]+)?>")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    elf, allow = args[0], [a for a in args[2:]] if len(args) > 1 and args[1] == "--allow" else []
    objdump = os.environ.get("OBJDUMP", "aarch64-linux-gnu-objdump")
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", elf], check=True, capture_output=True, text=True).stdout
    fp_use, callers, fn = {}, {}, None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            fn = m.group(1)
            continue
        m = INSN.match(line)
        if not m or fn is None:
            continue
        insn = re.sub(r"\s*//.*$", "", m.group(1))
        c = CALL.match(insn)
        if c and c.group(2) != fn:
            callers.setdefault(c.group(2), set()).add(fn)
        if FP.search(re.sub(r"<[^>]*>", "", insn)):
            fp_use.setdefault(fn, []).append(insn)
    allowed = lambda f: any(a in f for a in allow)
    # A function is confined when every caller is allowed or itself confined (fixed point).
    confined = {f for f in fp_use if allowed(f)}
    changed = True
    candidates = set(fp_use) | {c for cs in callers.values() for c in cs}
    while changed:
        changed = False
        for f in candidates - confined:
            cs = callers.get(f)
            if cs and all(allowed(c) or c in confined for c in cs):
                confined.add(f)
                changed = True
    bad = {f: insns for f, insns in fp_use.items() if f not in confined}
    name = os.path.basename(elf)
    if bad:
        for f, insns in list(bad.items())[:5]:
            print(f"{name}: {f}: {insns[0]}  ({len(insns)} FP/SIMD instruction(s); callers: {sorted(callers.get(f, []))[:3]})")
        sys.exit(f"{name}: FP/SIMD instructions in {len(bad)} function(s) outside the allowed ones")
    inside = sum(len(v) for v in fp_use.values())
    print(f"{name}: no FP/SIMD outside the allowed functions ({inside} instruction(s) inside)")


if __name__ == "__main__":
    main()
