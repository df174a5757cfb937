#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The CPython of this machine (pyenv's python3.11, built with debug info) running a
list-membership loop: profq's hottest functions by self time agree with perf record on the same
process at the same time, within the sampling error of both runs' sample counts, and their rows
name the absolute source files (the line tables' names are relative to the compilation
directory).

perf samples the process alone (perf record -p PID, no call graphs: self time is where the
samples land); profq's rows are taken with --no-inline and --no-python, which name each
sample's function as perf does (the symbol holding the address, inlined code folded into it,
the interpreter's own functions rather than the Python functions they run; PLT stubs NAME@plt).
Both are summed by function name (one name may be in several modules), with perf's symbol
versions dropped (clock_gettime@@GLIBC_2.17) and aliases at one address merged (perf says
clock_gettime where profq says __clock_gettime). The interpreter waits for perf to have its
events open before it starts the loop, so that both see the same seconds of work; what only one
side names (start-up, rare functions) is printed, not compared."""

import glob
import math
import os
import re
import shutil
import subprocess
import time

from harness import (Z, Daemon, Env, check, fail, perf_attached, popen, require, require_bpf,
                     share_error, skip, tempdir)

require_bpf()
env = Env()

SECONDS = 5
TOP_N = 5
# Both sample at 2999 Hz: ~10,000 samples each in 5 s on an idle CPU, so that two independent
# samplings of one 38% function differ by 0.7 points (one standard deviation). Each check allows
# Z standard errors of the sample counts both runs actually got (fewer on a busy machine).
FREQUENCY = 2999

# x in big: list_contains compares x with each element (PyObject_RichCompareBool ->
# PyObject_RichCompare -> long_richcompare); ints past the small-int cache are distinct objects,
# so no identity shortcut. Misses and late hits keep every comparison running.
SCRIPT = r"""
import os, sys, time
big = list(range(20000))
print(os.getpid(), flush=True)
sys.stdin.readline()
n = 0
t = time.monotonic()
while time.monotonic() - t < float(sys.argv[1]):
    for x in (19999, -1, 10000):
        if x in big:
            n += 1
print(n, flush=True)
"""


def find_python():
    """pyenv's python3.11: `pyenv which`, else its versions directory."""
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    roots = [r for r in roots if r]
    pyenv = shutil.which("pyenv") or next(
        (os.path.join(r, "bin", "pyenv") for r in roots
         if os.access(os.path.join(r, "bin", "pyenv"), os.X_OK)), None)
    if pyenv:
        p = subprocess.run([pyenv, "which", "python3.11"], capture_output=True, text=True)
        path = p.stdout.strip()
        if p.returncode == 0 and os.access(path, os.X_OK):
            return path
    for r in roots:
        found = sorted(glob.glob(os.path.join(r, "versions", "3.11*", "bin", "python3.11")))
        if found:
            return found[-1]
    return None


def defines(path, names):
    """Whether the ELF file at path defines all of names in its symbol table."""
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True).stdout
    have = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return all(n in have for n in names)


VERSION = re.compile(r"@@?[A-Za-z_][A-Za-z0-9_.]*$")


def unversioned(name):
    """perf shows .dynsym names with their version ("clock_gettime@@GLIBC_2.17"), profq
    without; "@plt" is a PLT stub's name on both sides."""
    return name if name.endswith("@plt") else VERSION.sub("", name)


def exec_files(pid):
    """The files process pid runs code from (its executable mappings)."""
    files = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
                files.add(parts[5].strip())
    return files


def alias_names(files):
    """{name: canonical name}: functions at one address of one file (aliases such as
    __clock_gettime and clock_gettime) are one function, which profq and perf may each call by
    another of its names. Canonical: the first name in sort order; a name with aliases that
    differ from file to file is left alone."""
    canon, clash = {}, set()
    for path in files:
        at = {}
        for flags in ([], ["-D"]):
            out = subprocess.run(["nm", "--defined-only"] + flags + [path],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in "TtWwi":
                    at.setdefault(int(parts[0], 16), set()).add(unversioned(parts[2]))
        for names in at.values():
            first = min(names)
            for n in names:
                if canon.get(n, first) != first:
                    clash.add(n)
                canon[n] = first
    return {n: c for n, c in canon.items() if n not in clash}


def perf_self(perf, data):
    """({function: self%}, samples) from perf report (samples per symbol, no children)."""
    p = subprocess.run([perf, "report", "-i", data, "--stdio", "--no-children", "--sort", "sym",
                        "-n", "--percent-limit", "0"], capture_output=True, text=True, timeout=120)
    res, samples = {}, 0
    for line in p.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\d+)\s+\[[.k]\]\s+(\S+)", line)
        if m:
            res[m.group(3)] = res.get(m.group(3), 0.0) + float(m.group(1))
            samples += int(m.group(2))
    if not res:
        fail(f"perf report gave no symbols:\n{p.stdout[:2000]}{p.stderr[:2000]}")
    return res, samples


python = find_python()
if not python:
    skip("pyenv's python3.11 is not installed (pyenv which python3.11, ~/.pyenv/versions/3.11*)")
perf = shutil.which("perf")
if not perf:
    skip("perf is not installed: the comparison with perf record needs it")
libs = glob.glob(os.path.join(os.path.dirname(python), "..", "lib", "libpython3.11.so*"))
lib = next((l for l in libs if defines(l, ["list_contains"])), None)
if not lib and not defines(python, ["list_contains"]):
    skip(f"{python} has no symbol table with list_contains: not built with debug info")

tmp = tempdir("profq-cpython-")
data = os.path.join(tmp, "perf.data")
try:
    # Self time needs only where each sample landed: frame-pointer stacks (no stack copies)
    # keep the cost of 2999 Hz on every CPU low.
    with Daemon(env, "--stack-copy", "0", frequency=FREQUENCY) as d:
        # -I -S: no site-packages (pyenv's may hold many .pth files), 10 ms of start-up that
        # profq sees and perf, attached later, does not (60 ms with them: 1.5 points).
        p = popen([python, "-I", "-S", "-c", SCRIPT, str(SECONDS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp)
        pid = int(p.stdout.readline())
        rec = popen([perf, "record", "-q", "-F", str(FREQUENCY), "-p", str(pid),
                                "-o", data],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not perf_attached(rec.pid) and time.monotonic() < deadline and rec.poll() is None:
            time.sleep(0.02)
        check(perf_attached(rec.pid), f"perf record is sampling pid {pid}")
        files = exec_files(pid)
        p.stdin.write("go\n")
        p.stdin.flush()
        check(p.wait(timeout=SECONDS + 30) == 0, f"{python} ran the loop")
        rec.wait(timeout=60)
        top = d.json("top", "--pid", str(pid), "-n", "1000", "--no-inline", "--no-python")
    theirs_raw, perf_samples = perf_self(perf, data)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

# Both sides by function, aliases merged under one name.
aliases = alias_names(files)
ours, theirs, renamed = {}, {}, set()
for r in top["rows"]:
    fn = aliases.get(r["function"], r["function"])
    ours[fn] = ours.get(fn, 0.0) + r["self_pct"]
for name, pct in theirs_raw.items():
    fn = aliases.get(unversioned(name), unversioned(name))
    theirs[fn] = theirs.get(fn, 0.0) + pct
    if fn != name:
        renamed.add(f"{name} -> {fn}")
rank_ours = sorted(ours, key=ours.get, reverse=True)
rank_theirs = sorted(theirs, key=theirs.get, reverse=True)
print(f"{'function':40} {'profq':>7} {'perf':>7}")
for fn in sorted(set(rank_ours[:10] + rank_theirs[:10]), key=lambda f: -ours.get(f, 0)):
    print(f"{fn:40} {ours.get(fn, 0):7.2f} {theirs.get(fn, 0):7.2f}")
print(f"samples: profq {top['samples']}, perf {perf_samples}")
print(f"perf's names merged with profq's: {', '.join(sorted(renamed)) or 'none'}")
only_ours = sum(v for f, v in ours.items() if f not in theirs)
only_theirs = sum(v for f, v in theirs.items() if f not in ours)
print(f"named by one side only: profq {only_ours:.2f}%, perf {only_theirs:.2f}% "
      "(start-up before perf attached, and samples too rare for both to see)")

require(top["samples"] > 0 and perf_samples > 0,
        f"both sampled the loop ({top['samples']} and {perf_samples} samples)")


def tolerance(fn):
    """Two independent samplings (around their mean share), a sample of either, and what ours
    holds that perf, attached after the start-up, could not see."""
    p = (ours.get(fn, 0) + theirs.get(fn, 0)) / 200
    n1, n2 = top["samples"], perf_samples
    return (100 * Z * math.hypot(share_error(p, n1), share_error(p, n2)) +
            100 / min(n1, n2) + only_ours)

check(rank_ours[0] in ("PyObject_RichCompare", "list_contains", "long_richcompare",
                       "PyObject_RichCompareBool"),
      f"the hottest function is of the comparison loop ({rank_ours[0]})")
for fn in rank_ours[:TOP_N]:
    tol = tolerance(fn)
    check(fn in theirs and abs(ours[fn] - theirs[fn]) <= tol,
          f"{fn}: profq {ours[fn]:.2f}% vs perf {theirs.get(fn, 0):.2f}% self (±{tol:.2f})")
for fn in rank_theirs[:TOP_N]:
    tol = tolerance(fn)
    check(fn in ours and abs(ours[fn] - theirs[fn]) <= tol,
          f"perf's {fn}: perf {theirs[fn]:.2f}% vs profq {ours.get(fn, 0):.2f}% self "
          f"(±{tol:.2f})")

# The interpreter's rows name their source files absolutely: libpython's line table says
# "Objects/listobject.c" in a directory relative to the compilation directory.
lc = next((r for r in top["rows"] if r["function"] == "list_contains"), None)
check(lc is not None and lc["file"] and lc["file"].startswith("/") and
      lc["file"].endswith("/Objects/listobject.c") and lc["line"],
      f"list_contains is at {lc and lc['file']}:{lc and lc['line']}")
