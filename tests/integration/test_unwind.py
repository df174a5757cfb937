#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Complete stacks without frame pointers (docs/profqd.8, --stack-copy): workloads built
-fomit-frame-pointer, and a hot path inside libc, unwound from stack copies with the binaries' CFI.
The callers' total% match the known split, and match perf record --call-graph dwarf on the same
process at the same time within 3 points. In frame-pointer mode the same callers are lost: the
unwinder is what finds them."""

import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import Daemon, Env, check, near, require_bpf, row, skip, start_workload

require_bpf()
env = Env()
perf = shutil.which("perf")


def perf_children(data):
    """{symbol: children%} from perf report of a perf.data file."""
    out = subprocess.run([perf, "report", "-i", data, "--stdio", "--children", "--sort", "sym",
                          "-g", "none", "--percent-limit", "0"],
                         capture_output=True, text=True, timeout=120).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[\.\]\s+(\S+)", line)
        if m:
            res[m.group(3)] = float(m.group(1))
    return res


def profile_with_perf(d, workload, seconds, *args):
    """Runs a workload under profqd and perf --call-graph dwarf at once; returns (pid, top,
    perf's children%)."""
    tmp = tempfile.mkdtemp(prefix="profq-perf-")
    data = os.path.join(tmp, "perf.data")
    p, pid = start_workload(env, workload, "--seconds", seconds, *args)
    rec = subprocess.Popen([perf, "record", "-q", "-F", "999", "--call-graph", "dwarf,16384",
                            "-p", str(pid), "-o", data], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    p.wait()
    rec.wait(timeout=60)
    top = d.json("top", "--pid", str(pid), "-n", "500")
    theirs = perf_children(data)
    shutil.rmtree(tmp, ignore_errors=True)
    return pid, top, theirs


with Daemon(env) as d:
    st = d.json("status")
    check(st["unwind"]["mode"] == "dwarf", "stack copies and CFI unwinding by default")

    # A five-deep chain, no frame pointers, 60/40 between two leaves.
    p, pid = start_workload(env, "chain", "--seconds", 4, "--a", 60)
    p.wait()
    top = d.json("top", "--pid", str(pid), "-n", "100", "--no-inline")
    check(near(row(top, "leaf_a")["self_pct"], 60, 5), f"leaf_a self {row(top, 'leaf_a')['self_pct']}% ~ 60")
    check(near(row(top, "leaf_b")["self_pct"], 40, 5), f"leaf_b self {row(top, 'leaf_b')['self_pct']}% ~ 40")
    for caller in ("level4", "level3", "level2", "level1", "main"):
        r = row(top, caller)
        check(r is not None and r["total_pct"] >= 90,
              f"{caller} total {r and r['total_pct']}% >= 90 (callers found without frame pointers)")
    cut = row(top, "[truncated]")
    check(cut is None or cut["total_pct"] < 2,
          f"its stacks reach the outermost frame ({cut and cut['total_pct']}% cut off)")

    # Signal frames (libc's __restore_rt) and C++ exceptions (libstdc++, libgcc_s's unwinder):
    # the callers above both are found.
    if os.path.exists(env.workload("edges")):
        p, pid = start_workload(env, "edges", "--seconds", 4)
        p.wait()
        top = d.json("top", "--pid", str(pid), "-n", "500", "--no-inline")
        for fn, low in (("on_signal", 20), ("spin_in_handler", 20), ("thrower", 20),
                        ("signals", 35), ("exceptions", 35), ("run", 90), ("main", 90)):
            r = row(top, fn)
            check(r is not None and r["total_pct"] >= low,
                  f"edges {fn} total {r and r['total_pct']}% >= {low} (unwound through signal "
                  f"frames and libstdc++/libgcc_s)")
        cut = row(top, "[truncated]")
        check(cut is None or cut["total_pct"] < 5, f"edges: {cut and cut['total_pct']}% cut off")
    else:
        print("edges workload not built (no C++ compiler): signal/exception unwinding not checked")

    if not perf:
        skip("perf is not installed: the comparison with perf --call-graph dwarf needs it")

    # The same chain against perf, sampling the same process at the same time.
    pid, top, theirs = profile_with_perf(d, "chain", 5, "--a", 60)
    for fn in ("leaf_a", "leaf_b", "level4", "level1", "main"):
        ours = row(top, fn)["total_pct"]
        check(fn in theirs and near(ours, theirs[fn], 3),
              f"chain {fn}: ours {ours}% vs perf {theirs.get(fn)}%")

    # The hot path inside libc (qsort, memcpy): our callers above it appear.
    pid, top, theirs = profile_with_perf(d, "libhot", 5)
    for fn in ("run", "sort_batch", "copy_batch", "compare", "main"):
        r = row(top, fn)
        check(r is not None, f"libhot {fn} is on the stacks")
        cut = row(top, "[truncated]")
        check(fn in theirs and near(r["total_pct"], theirs[fn], 3),
              f"libhot {fn}: ours {r['total_pct']}% vs perf {theirs.get(fn)}% "
              f"({cut and cut['total_pct']}% cut off)")
    check(row(top, "run")["total_pct"] >= 90, "run, above libc, holds nearly everything")

# Frame pointers only: the same binaries lose their callers.
with Daemon(env, "--stack-copy", "0") as d:
    check(d.json("status")["unwind"]["mode"] == "frame-pointer", "--stack-copy 0 walks frame pointers")
    p, pid = start_workload(env, "libhot", "--seconds", 2)
    p.wait()
    top = d.json("top", "--pid", str(pid), "-n", "500")
    r = row(top, "run")
    check(r is None or r["total_pct"] < 50,
          f"without CFI unwinding run's total collapses ({r and r['total_pct']}%)")
