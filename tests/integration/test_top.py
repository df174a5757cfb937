#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq top against a workload with a known CPU split: self and total percentages within the
sampling error of the split the workload measured itself, callers carry total%, and the process
is still symbolized after it exited. A C++ class template's member is shown demangled, its raw
symbol kept in JSON. A stripped binary is named from its debug file found by build id under a
--debug-dir root."""

import os
import subprocess

from harness import (Daemon, Env, SplitTruth, check, kernel_leaf_pct, near, require,
                     require_bpf, row, run_workload, sample_bounds, share_tolerance, steal_s,
                     tempdir)

require_bpf()
env = Env()

with Daemon(env) as d:
    lost0, steal0 = d.json("status")["lost"], steal_s()
    pid, lines = run_workload(env, "split", "--seconds", 4, "--a", 70, output=True)
    # Ground truth: the CPU time split measured inside the workload (nominally 70/30).
    truth = SplitTruth(lines)
    ta, tb = truth.of_process("work_a"), truth.of_process("work_b")
    # The process has exited: its symbols were captured while it ran.
    # The hot loop (spin) is inlined into work_a/work_b: --no-inline folds it into them.
    top = d.json("top", "--pid", str(pid), "-n", "1000", "--no-inline")
    lost, steal = d.json("status")["lost"] - lost0, steal_s() - steal0
    n = top["samples"]
    check(top["pid"] == pid and top["comm"] == "split", f"answer is for pid {pid} (split)")
    lo, hi = sample_bounds(truth.cpu, 999, lost, steal)
    check(lo <= n <= hi, f"one sample per 1/999 s of its {truth.cpu:.3f} s of CPU ({n} in "
          f"[{lo:.0f}, {hi:.0f}]: {lost} lost, {steal:.2f} s stolen)")
    a, b = row(top, "work_a"), row(top, "work_b")
    require(a is not None and b is not None, "work_a and work_b are named")
    tol_a, tol_b = share_tolerance(ta / 100, n), share_tolerance(tb / 100, n)
    # Self: less what interrupts took while they ran, at most all kernel-leaf samples.
    k = kernel_leaf_pct(top)
    for r, want, tol in ((a, ta, tol_a), (b, tb, tol_b)):
        check(near(r["total_pct"], want, tol) and want - tol - k <= r["self_pct"] <= want + tol,
              f"{r['function']} total {r['total_pct']}%, self {r['self_pct']}% ~ measured "
              f"{want:.1f}% (±{tol:.1f}; self less up to {k:.2f}% in interrupts)")
    check(a["module"] == "split", "module is the executable's basename")
    # Callers: total as their callee's; run and main hold every unit. Their own (self) time is
    # at most what the process spent outside the units.
    in_run = 100 * truth.in_units_share
    out = 100 * truth.outside
    tol_out = share_tolerance(truth.outside, n)
    for caller, want in (("outer_a", ta), ("outer_b", tb), ("run", in_run), ("main", in_run)):
        r = row(top, caller)
        tol = share_tolerance(want / 100, n)
        if not check(r is not None and want - tol <= r["total_pct"] <= 100,
                     f"{caller} total {r and r['total_pct']}% ~ {want:.1f}% (-{tol:.1f})"):
            continue
        check(r["self_pct"] <= out + tol_out,
              f"{caller} self {r['self_pct']}% <= {out:.2f}% outside the units (+{tol_out:.2f})")
    fields = ("function", "module", "file", "line", "self_samples", "total_samples", "self_pct",
              "total_pct")
    check(all(k in r for r in top["rows"] for k in fields), f"every row has {fields}")
    check(all(r["self_samples"] <= r["total_samples"] <= n for r in top["rows"]),
          "self <= total <= samples in every row")
    check(sum(r["self_samples"] for r in top["rows"]) == n,
          "self samples add up to the process's samples (each sample has one leaf)")

    # Sorting and limits.
    tot = d.json("top", "--pid", str(pid), "--sort", "total", "-n", "3", "--no-inline")
    check(len(tot["rows"]) == 3, "-n 3 gives 3 rows")
    tol = share_tolerance(in_run / 100, n)
    check(tot["rows"][0]["total_pct"] >= in_run - tol,
          f"--sort total puts a caller of everything first ({tot['rows'][0]['function']} "
          f"{tot['rows'][0]['total_pct']}%)")
    one = d.json("top", "--pid", str(pid), "-n", "1", "--no-inline")
    check(one["rows"][0]["function"] == "work_a", "the hottest function by self is work_a")
    # With inlines (the default) the inlined loop is a function of its own, in work_a.
    inl = d.json("top", "--pid", str(pid), "-n", "50")
    spin = row(inl, "spin")
    want = ta + tb
    tol = share_tolerance(want / 100, n)
    # What the units measured but spin did not run: work_a's and work_b's own instructions
    # around the inlined loop (their self samples with inlines), and the clock reads that
    # bracket each unit (now(): a clock_gettime system call for a thread's CPU clock, slower
    # on a busy machine), about half of each inside the bracket.
    wa, wb, clock = row(inl, "work_a"), row(inl, "work_b"), row(inl, "now")
    around = sum(r["self_pct"] for r in (wa, wb) if r) + (clock["total_pct"] if clock else 0)
    check(spin is not None and spin["inlined"] and spin["total_pct"] >= want - tol - around and
          spin["self_pct"] >= want - tol - k - around,
          f"the inlined spin holds the self time ({spin and spin['self_pct']}% self, "
          f"{spin and spin['total_pct']}% total >= {want:.1f}% -{tol:.1f} -{around:.2f} in "
          f"work_a, work_b and the clock reads around it)")
    check(wa is not None and near(wa["total_pct"], ta, tol_a) and
          wa["self_pct"] <= out + tol_out,
          f"work_a keeps its total ({wa and wa['total_pct']}%); its self "
          f"({wa and wa['self_pct']}%) moved into the inlined loop")
    if spin:
        check(spin["file"].endswith("split.c") and spin["line"] is not None,
              f"the inlined frame has its source file and line ({spin['file']}:{spin['line']})")

    # Plain output: an aligned table naming the functions.
    _, out, _ = d.profq("top", "--pid", str(pid), "--once", "--no-inline")
    check("SELF%" in out and "TOTAL%" in out and "work_a" in out, "plain table has work_a")

    # System-wide top includes the workload, and names its process.
    sys_top = d.json("top", "-n", "100", "--sort", "total")
    wa = row(sys_top, "work_a")
    check(sys_top["pid"] is None and wa is not None, "system-wide top lists work_a")
    check(wa is not None and wa["comm"] == "split" and wa["comms"] == 1,
          f"system-wide, work_a is split's alone ({wa and (wa['comm'], wa['comms'])})")
    _, out, _ = d.profq("top", "-n", "100", "--once", "--sort", "total")
    check(any(l.split()[6:7] == ["split"] and l.endswith("work_a") for l in out.splitlines()),
          "the plain table's COMM column says split beside work_a")
    # By process: the workload's row holds what top --pid counts (it exited: nothing is added
    # meanwhile); by module, of the workload (other runs of split may be sampled too): its
    # binary's self samples are its functions', its total those with any of them on the stack.
    procs = d.json("top", "--by", "process", "-n", "0")
    mine = [r for r in procs["rows"] if r["pid"] == pid]
    check(procs["by"] == "process" and len(mine) == 1 and mine[0]["comm"] == "split" and
          mine[0]["samples"] == n, f"--by process: pid {pid} split with its {n} samples "
          f"({mine})")
    check(sum(r["samples"] for r in procs["rows"]) == procs["samples"],
          "--by process: the rows add up to every sample")
    every = d.json("top", "--pid", str(pid), "-n", "0")
    m = [r for r in d.json("top", "--by", "module", "--pid", str(pid), "-n", "0")["rows"]
         if r["module"] == "split"]
    mods = d.json("top", "--by", "module", "-n", "0")
    own = sum(r["self_samples"] for r in every["rows"] if r["module"] == "split")
    on_stack = max(r["total_samples"] for r in every["rows"] if r["module"] == "split")
    check(len(m) == 1 and m[0]["self_samples"] == own and
          on_stack <= m[0]["total_samples"] <= n,
          f"--by module: split's binary has its functions' {own} self samples and "
          f"{on_stack}..{n} in total ({m})")
    k = [r for r in mods["rows"] if r["kernel"]]
    check(sum(r["self_samples"] for r in mods["rows"]) == mods["samples"] and
          any(r["module"] == "[kernel.kallsyms]" for r in k),
          "--by module: one leaf module per sample, the kernel's among them")

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
        _, out, _ = d.profq("top", "--pid", str(cpid), "--once", "--no-inline", "--full-names")
        check(readable[addr] in out and raw[addr] not in out,
              "the plain table shows the demangled name only")

# A copy of split without any symbols (--strip-all, no debug link): profqd --debug-dir ROOT finds
# its debug file as ROOT/.build-id/xx/rest.debug, which names its local functions and lines.
tmp = tempdir("profq-debugdir-")
# Not as split.debug beside it: libdwfl looks for BASENAME.debug there too.
stripped = os.path.join(tmp, "split")
subprocess.run(["objcopy", "--strip-all", env.workload("split"), stripped], check=True)
notes = subprocess.run(["readelf", "-n", stripped], capture_output=True, text=True).stdout
require("Build ID: " in notes, "the split workload has a build id")
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
    truth = SplitTruth(p.stdout.splitlines()[1:])
    top = d.json("top", "--pid", str(spid), "-n", "50", "--no-inline")
    a = row(top, "work_a")
    want = truth.of_process("work_a")
    tol = share_tolerance(want / 100, top["samples"])
    check(a is not None and near(a["total_pct"], want, tol),
          f"work_a of the stripped copy is named ({a and a['total_pct']}% ~ {want:.1f}% "
          f"±{tol:.1f})")
    check(a is not None and a["file"].endswith("split.c") and a["line"] is not None,
          f"with its file and line from the debug file ({a and a['file']}:"
          f"{a and a['line']})")
