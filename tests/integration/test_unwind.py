#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Complete stacks without frame pointers (docs/profqd.8, --stack-copy): workloads built
-fomit-frame-pointer, and a hot path inside libc, unwound from stack copies with the binaries'
CFI. The callers' total% match the known split, and match perf record --call-graph dwarf on the
same process at the same time within the sampling error of both. In frame-pointer mode the same
callers are lost: the unwinder is what finds them."""

import math
import os
import re
import shutil
import subprocess

from harness import (Z, Daemon, Env, check, near, popen, require_bpf, row, share_error,
                     share_tolerance, skip, start_workload, tempdir)

require_bpf()
env = Env()
perf = shutil.which("perf")


def perf_children(data):
    """{symbol: children%} from perf report of a perf.data file, and its sample count."""
    out = subprocess.run([perf, "report", "-i", data, "--stdio", "--children", "--sort", "sym",
                          "-g", "none", "--percent-limit", "0"],
                         capture_output=True, text=True, timeout=120).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[\.\]\s+(\S+)", line)
        if m:
            res[m.group(3)] = float(m.group(1))
    m = re.search(r"^# Samples: (\d+)([KM]?)", out, re.M)
    n = int(m.group(1)) * {"": 1, "K": 1000, "M": 1000000}[m.group(2)] if m else 0
    return res, n


def both_tolerance(ours, theirs, n_ours, n_theirs):
    """Two independent samplings of one process: their shares (percent) differ by the errors
    of both (around their mean), and by a sample of either."""
    p = (ours + theirs) / 200
    return (100 * Z * math.hypot(share_error(p, n_ours), share_error(p, n_theirs)) +
            100 / max(min(n_ours, n_theirs), 1))


def unseen_by_perf(top):
    """What our samples hold that perf's cannot: perf attaches once the workload runs, after
    its start-up (ours: the samples not under main), and its own unwinding reaches main where
    ours was cut short (ours: [truncated])."""
    main, cut = row(top, "main"), row(top, "[truncated]")
    return (100 - (main["total_pct"] if main else 0)) + (cut["total_pct"] if cut else 0)


def profile_with_perf(d, workload, seconds, *args):
    """Runs a workload under profqd and perf --call-graph dwarf at once; returns (pid, top,
    perf's children%)."""
    tmp = tempdir("profq-perf-")
    data = os.path.join(tmp, "perf.data")
    p, pid = start_workload(env, workload, "--seconds", seconds, *args)
    rec = popen([perf, "record", "-q", "-F", "999", "--call-graph", "dwarf,16384",
                            "-p", str(pid), "-o", data], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    p.wait()
    rec.wait(timeout=60)
    top = d.json("top", "--pid", str(pid), "-n", "500")
    theirs = perf_children(data)
    return pid, top, theirs


with Daemon(env) as d:
    st = d.json("status")
    check(st["unwind"]["mode"] == "dwarf", "stack copies and CFI unwinding by default")

    # A five-deep chain, no frame pointers, 60/40 between two leaves.
    p, pid = start_workload(env, "chain", "--seconds", 4, "--a", 60)
    p.wait()
    top = d.json("top", "--pid", str(pid), "-n", "100", "--no-inline")
    n = top["samples"]
    # The split is by iteration counts of one loop: 60/40 of the rounds' CPU time, but for a
    # last round cut short (at most its 60 ms in leaf_a, ~60 samples at 999 Hz). Totals: an
    # interrupt taken in a leaf is its callee.
    cut_round = 100 * 60 / max(n, 1)
    a, b = row(top, "leaf_a"), row(top, "leaf_b")
    for r, want in ((a, 60), (b, 40)):
        tol = share_tolerance(want / 100, n) + cut_round
        check(r is not None and near(r["total_pct"], want, tol),
              f"{r and r['function']} total {r and r['total_pct']}% ~ {want}% (±{tol:.1f})")
    cut = row(top, "[truncated]")
    leaves = (a["total_samples"] if a else 0) + (b["total_samples"] if b else 0)
    lost = cut["total_samples"] if cut else 0
    for caller in ("level4", "level3", "level2", "level1", "main"):
        r = row(top, caller)
        check(r is not None and r["total_samples"] >= leaves - lost,
              f"{caller} on every leaf's stack but the truncated ones ({r and r['total_samples']}"
              f" of {leaves}, {lost} truncated): callers found without frame pointers")
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
    pid, top, (theirs, n_perf) = profile_with_perf(d, "chain", 5, "--a", 60)
    unseen = unseen_by_perf(top)
    for fn in ("leaf_a", "leaf_b", "level4", "level1", "main"):
        ours = (row(top, fn) or {}).get("total_pct")
        tol = both_tolerance(ours or 0, theirs.get(fn, 0), top["samples"], n_perf)
        check(fn in theirs and ours is not None and
              theirs[fn] - tol - unseen <= ours <= theirs[fn] + tol,
              f"chain {fn}: ours {ours}% vs perf {theirs.get(fn)}% (±{tol:.1f}, ours less up "
              f"to {unseen:.2f}% perf did not see; {top['samples']} and {n_perf} samples)")

    # The hot path inside libc (qsort, memcpy): our callers above it appear.
    pid, top, (theirs, n_perf) = profile_with_perf(d, "libhot", 5)
    unseen = unseen_by_perf(top)
    for fn in ("run", "sort_batch", "copy_batch", "compare", "main"):
        r = row(top, fn)
        if not check(r is not None, f"libhot {fn} is on the stacks"):
            continue
        cut = row(top, "[truncated]")
        tol = both_tolerance(r["total_pct"], theirs.get(fn, 0), top["samples"], n_perf)
        check(fn in theirs and
              theirs[fn] - tol - unseen <= r["total_pct"] <= theirs[fn] + tol,
              f"libhot {fn}: ours {r['total_pct']}% vs perf {theirs.get(fn)}% (±{tol:.1f}, "
              f"ours less up to {unseen:.2f}% perf did not see; "
              f"{cut and cut['total_pct']}% cut off)")
    rr, rm = row(top, "run"), row(top, "main")
    tol = share_tolerance((rm or {}).get("total_pct", 100) / 100, top["samples"])
    check(rr is not None and rm is not None and rr["total_pct"] >= rm["total_pct"] - tol,
          f"run, above libc, holds nearly all of main's ({rr and rr['total_pct']}% of "
          f"{rm and rm['total_pct']}%, -{tol:.1f})")

# Frame pointers only: the same binaries lose their callers.
with Daemon(env, "--stack-copy", "0") as d:
    check(d.json("status")["unwind"]["mode"] == "frame-pointer",
          "--stack-copy 0 walks frame pointers")
    p, pid = start_workload(env, "libhot", "--seconds", 2)
    p.wait()
    top = d.json("top", "--pid", str(pid), "-n", "500")
    r = row(top, "run")
    check(r is None or r["total_pct"] < 50,
          f"without CFI unwinding run's total collapses ({r and r['total_pct']}%)")
