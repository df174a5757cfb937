#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq top against a workload with a known CPU split: self and total percentages within
5 points, callers carry total%, and the process is still symbolized after it exited. A C++
class template's member is shown demangled, its raw symbol kept in JSON. A stripped binary is
named from its debug file found by build id under a --debug-dir root."""

import os
import shutil
import subprocess
import tempfile

from harness import Daemon, Env, check, near, require_bpf, row, run_workload, truth_of

require_bpf()
env = Env()

with Daemon(env) as d:
    # 4 s at 999 Hz: ~4000 samples, sampling error ~0.7 points.
    pid, lines = run_workload(env, "split", "--seconds", 4, "--a", 70, output=True)
    # Ground truth: the CPU time split measured inside the workload (nominally 70/30).
    truth = truth_of(lines)
    ta, tb = 100 * truth["work_a"], 100 * truth["work_b"]
    # The process has exited: its symbols were captured while it ran.
    # The hot loop (spin) is inlined into work_a/work_b: --no-inline folds it into them.
    top = d.json("top", "--pid", str(pid), "-n", "50", "--no-inline")
    n = top["samples"]
    check(top["pid"] == pid and top["comm"] == "split", f"answer is for pid {pid} (split)")
    check(n >= 2000, f"enough samples for 5-point accuracy ({n})")
    a, b = row(top, "work_a"), row(top, "work_b")
    check(a is not None and b is not None, "work_a and work_b are named")
    check(near(a["self_pct"], ta, 5), f"work_a self {a['self_pct']}% ~ measured {ta:.1f}%")
    check(near(b["self_pct"], tb, 5), f"work_b self {b['self_pct']}% ~ measured {tb:.1f}%")
    check(a["module"] == "split", "module is the executable's basename")
    for caller, want in (("outer_a", ta), ("outer_b", tb), ("run", 100), ("main", 100)):
        r = row(top, caller)
        check(r is not None and near(r["total_pct"], want, 5),
              f"{caller} total {r and r['total_pct']}% ~ {want}%")
        check(r["self_pct"] < 2, f"{caller} self {r['self_pct']}% ~ 0")
    fields = ("function", "module", "file", "line", "self_samples", "total_samples", "self_pct",
              "total_pct")
    check(all(k in r for r in top["rows"] for k in fields), f"every row has {fields}")
    check(all(r["self_samples"] <= r["total_samples"] <= n for r in top["rows"]),
          "self <= total <= samples in every row")
    check(abs(sum(r["self_samples"] for r in top["rows"]) - n) <= n * 0.02,
          "self samples add up to the process's samples")

    # Sorting and limits.
    tot = d.json("top", "--pid", str(pid), "--sort", "total", "-n", "3", "--no-inline")
    check(len(tot["rows"]) == 3, "-n 3 gives 3 rows")
    check(tot["rows"][0]["total_pct"] >= 95, "--sort total puts a 100% caller first")
    one = d.json("top", "--pid", str(pid), "-n", "1", "--no-inline")
    check(one["rows"][0]["function"] == "work_a", "the hottest function by self is work_a")
    # With inlines (the default) the inlined loop is a function of its own, in work_a.
    inl = d.json("top", "--pid", str(pid), "-n", "50")
    spin = row(inl, "spin")
    check(spin is not None and spin["inlined"] and near(spin["self_pct"], 100, 3),
          f"the inlined spin holds the self time ({spin and spin['self_pct']}%)")
    check(near(row(inl, "work_a")["total_pct"], ta, 5) and row(inl, "work_a")["self_pct"] < 2,
          "work_a keeps its total; its self moved into the inlined loop")
    check(spin["file"].endswith("split.c") and spin["line"] is not None,
          f"the inlined frame has its source file and line ({spin['file']}:{spin['line']})")

    # Plain output: an aligned table naming the functions.
    _, out, _ = d.profq("top", "--pid", str(pid), "--once", "--no-inline")
    check("SELF%" in out and "TOTAL%" in out and "work_a" in out, "plain table has work_a")

    # System-wide top includes the workload.
    sys_top = d.json("top", "-n", "100", "--sort", "total")
    check(sys_top["pid"] is None and row(sys_top, "work_a") is not None,
          "system-wide top lists work_a")

    # C++: the readable name as "function" (what nm -C says), the mangled one as "symbol" (what
    # nm says), and the plain table shows the readable one.
    if not os.path.exists(env.workload("cxx")):
        print("no C++ compiler: the cxx workload was not built, its checks are skipped")
    else:
        cpid = run_workload(env, "cxx", "--seconds", 2)

        def nm(*flags):
            out = subprocess.run(["nm", "--defined-only", *flags, env.workload("cxx")],
                                 capture_output=True, text=True, check=True).stdout
            return {l.split(None, 2)[0]: l.split(None, 2)[2] for l in out.splitlines()
                    if "churn" in l}
        raw, readable = nm(), nm("-C")
        check(len(raw) == 1 and raw.keys() == readable.keys(), f"nm finds churn once ({raw})")
        addr = next(iter(raw))
        ctop = d.json("top", "--pid", str(cpid), "-n", "20", "--no-inline")
        r = ctop["rows"][0]
        check(r["function"] == readable[addr] and r["symbol"] == raw[addr],
              f"function {r['function']!r} is nm -C's, symbol {r['symbol']!r} is nm's")
        check(r["self_pct"] >= 80, f"it holds the samples ({r['self_pct']}%)")
        check(r["file"].endswith("cxx.cc") and r["line"] is not None,
              f"it has its source file and line ({r['file']}:{r['line']})")
        _, out, _ = d.profq("top", "--pid", str(cpid), "--once", "--no-inline")
        check(readable[addr] in out and raw[addr] not in out,
              "the plain table shows the demangled name only")

# A copy of split without any symbols (--strip-all, no debug link): profqd --debug-dir ROOT finds
# its debug file as ROOT/.build-id/xx/rest.debug, which names its local functions and lines.
tmp = tempfile.mkdtemp(prefix="profq-debugdir-")
try:
    # Not as split.debug beside it: libdwfl looks for BASENAME.debug there too.
    stripped = os.path.join(tmp, "split")
    subprocess.run(["objcopy", "--strip-all", env.workload("split"), stripped], check=True)
    notes = subprocess.run(["readelf", "-n", stripped], capture_output=True, text=True).stdout
    check("Build ID: " in notes, "the split workload has a build id")
    build_id = notes.split("Build ID: ")[1].split()[0]
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, ".build-id", build_id[:2]))
    subprocess.run(["objcopy", "--only-keep-debug", env.workload("split"),
                    os.path.join(root, ".build-id", build_id[:2], build_id[2:] + ".debug")],
                   check=True)
    nm = subprocess.run(["nm", stripped], capture_output=True, text=True).stdout
    check("work_a" not in nm, "the stripped copy has no symbol table")
    with Daemon(env, "--debug-dir", root) as d:
        p = subprocess.run([stripped, "--seconds", "2", "--a", "70"], capture_output=True,
                           text=True, timeout=60, check=True)
        spid = int(p.stdout.splitlines()[0])
        top = d.json("top", "--pid", str(spid), "-n", "50", "--no-inline")
        a = row(top, "work_a")
        check(a is not None and near(a["self_pct"], 70, 10),
              f"work_a of the stripped copy is named ({a and a['self_pct']}%)")
        check(a["file"].endswith("split.c") and a["line"] is not None,
              f"with its file and line from the debug file ({a['file']}:{a['line']})")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
