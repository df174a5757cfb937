#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python frames on every interpreter version the machine has: Debian's /usr/bin/python3
(3.11) always, pyenv's 3.8, 3.9, 3.10, 3.12 and 3.13 where installed (skipped with the reason
otherwise). Each runs python/workload.py's split mode, unmodified (no flags, started while
profqd runs): three methods with the weights 50/30/20, whose CPU time the workload measures
around every call with time.thread_time(). `profq top --pid N` has a Python row ("python": true)
for each, named by its qualified name from 3.11 (Worker.parse) and by its plain name before
(parse: no co_qualname), in the workload's .py file, whose TOTAL% is the function's measured
share of the process's CPU within 5 points, or Z standard errors of the answer's sample count
where that is larger (each check says which).

Then a peer on the same run: pyenv's 3.12 with -X perf, sampled by perf record at the same time
as by profqd. perf names the functions py::Worker.parse:/path/workload.py (the interpreter's
perf trampolines) and unwinds with --call-graph dwarf (pyenv's builds have no frame pointers:
-g stops at the first libpython frame); a function's share is that of the samples whose stack
holds it. profq's TOTAL% is compared with it within 3 points, or Z standard errors of both
sample counts where that is larger, after taking out the interpreter's start-up, which profq
sampled and perf, attached later, did not."""

import os
import shutil
import subprocess
import time

from harness import Daemon, Env, check, perf_attached, popen, require_bpf, tempdir
from pyharness import (WORKLOAD, check_share, debian_python, describe, finish, go, of_process,
                       py_row, pyenv_python, python_names, query, run, start, tolerance,
                       version_of)

require_bpf()
env = Env()

SECONDS = 2.5
POINTS = 5
PEER_POINTS = 3
FREQUENCY = 999
METHODS = ("parse", "render", "digest")

interpreters = [("Debian python3", debian_python())]
for minor in (8, 9, 10, 12, 13):
    path, why = pyenv_python(minor)
    if path:
        interpreters.append(("pyenv", path))
    else:
        print(f"SKIPPED (3.{minor}): {why}")
peer_python, peer_why = pyenv_python(12)
perf = shutil.which("perf")


def names_for(version):
    """{method: the name profq shows}: co_qualname from 3.11, co_name before."""
    return {m: (f"Worker.{m}" if version >= (3, 11) else m) for m in METHODS}


def perf_shares(data, pid, names):
    """({name: percent of pid's samples whose stack holds py::NAME:}, samples) from perf
    script: one block per sample, its header line then one line per frame."""
    p = subprocess.run([perf, "script", "-i", data], capture_output=True, text=True,
                       timeout=120)
    counts, samples = {n: 0 for n in names}, 0
    for block in p.stdout.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines or len(lines[0].split()) < 2 or lines[0].split()[1] != str(pid):
            continue
        samples += 1
        for n in names:
            if any(f" py::{n}:" in line for line in lines[1:]):
                counts[n] += 1
    return {n: 100 * c / max(samples, 1) for n, c in counts.items()}, samples


tmp = tempdir("profq-pyversions-")
with Daemon(env, frequency=FREQUENCY) as d:
    for label, python in interpreters:
        pid, res = run(python, "split", SECONDS)
        version = version_of(res)
        names = names_for(version)
        label = f"{label} {'.'.join(map(str, version))}"
        print(f"\n{label} (pid {pid}): measured {res['seconds']}, cpu {res['cpu']:.3f} s")
        check(set(res["seconds"]) == set(names.values()),
              f"{label}: the interpreter itself names the methods {sorted(names.values())} "
              f"(it says {sorted(res['seconds'])})")
        top = query(d, "top", "--pid", str(pid), "-n", "1000")
        if top is None:
            continue
        print(f"{label}: {top['samples']} samples; rows: {describe(top)}")
        for name in names.values():
            check_share(top, name, of_process(res, name), POINTS)
            r = py_row(top, name)
            if r:
                check(r.get("file") and os.path.realpath(r["file"]) == WORKLOAD,
                      f"{label}: {name} is in {r.get('file')} (want {WORKLOAD})")

    # ---- a peer: perf record on the same run ----
    if not peer_python:
        print(f"SKIPPED (perf peer): {peer_why}")
    elif not perf:
        print("SKIPPED (perf peer): perf is not installed")
    else:
        data = os.path.join(tmp, "perf.data")
        p, pid = start(peer_python, "split", 4, wait=True, flags=("-X", "perf"))
        rec = popen([perf, "record", "-q", "--call-graph", "dwarf", "-F", str(FREQUENCY),
                     "-p", str(pid), "-o", data],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not perf_attached(rec.pid) and time.monotonic() < deadline and rec.poll() is None:
            time.sleep(0.02)
        check(perf_attached(rec.pid), f"perf record is sampling pid {pid}")
        go(p)
        res = finish(p)
        rec.wait(timeout=60)
        top = query(d, "top", "--pid", str(pid), "-n", "1000")

if peer_python and perf:
    names = names_for(version_of(res))
    theirs, perf_samples = perf_shares(data, pid, list(names.values()))
    # profq sampled the start-up too (imports, before "go"); perf did not.
    run_share = (res["cpu"] - res["cpu_start"]) / res["cpu"] if res["cpu"] > 0 else 1
    print(f"\nperf peer (pyenv 3.12 -X perf, pid {pid}): profq "
          f"{top and top['samples']} samples, perf {perf_samples}; the start-up took "
          f"{res['cpu_start']:.3f} s of {res['cpu']:.3f} s of CPU: profq's shares / "
          f"{run_share:.3f}")
    check(perf_samples > 0 and sum(theirs.values()) > 0,
          f"perf names the Python functions ({perf_samples} samples, {theirs})")
    if top is not None:
        print(f"profq's rows: {describe(top)}")
        for name in names.values():
            r = py_row(top, name)
            ours = r["total_pct"] / run_share if r else None
            tol, which = tolerance(theirs[name], top["samples"], PEER_POINTS,
                                   n_ref=perf_samples)
            check(r is not None and abs(ours - theirs[name]) <= tol,
                  f"{name}: profq {ours and round(ours, 2)}% vs perf {theirs[name]:.2f}% "
                  f"({which})" + ("" if r else f"; {python_names(top)}"))
