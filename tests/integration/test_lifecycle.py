#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Process lifecycle (docs/ARCHITECTURE.md, "Process identity read in BPF"): processes living tens
of milliseconds are symbolized after they exit and keep their records; a reused pid makes a new
incarnation, never merged with the old one; --start picks an incarnation."""

import math
import subprocess
import time

from harness import (Z, Daemon, Env, SplitTruth, check, kernel_leaf_pct, popen, require_bpf,
                     row, run_workload, share_tolerance, skip)

require_bpf()
env = Env()

with Daemon(env) as d:
    # Short-lived: 30 ms each, gone long before the next 100 ms drain.
    runs = [run_workload(env, "split", "--seconds", 0.03, output=True) for _ in range(20)]
    pids = [pid for pid, _ in runs]
    truths = [SplitTruth(out) for _, out in runs]
    deadline = time.monotonic() + 10
    while True:
        times = [d.json("time", "--pid", str(pid)) for pid in pids]
        if all(t["exited"] for t in times) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(all(t["exited"] and t["accounting"] == "kernel" and t["comm"] == "split"
              for t in times), "all exited, with the kernel's accounting")
    # Symbolized after exit: no frame of theirs is left an unknown address, and their time
    # goes to the named hot functions as much as each measured (a process may spend its few
    # samples in ld.so).
    sampled = total = hot = unresolved = 0
    in_units = cpu = kernel_leaf = 0.0
    for pid, t, truth in zip(pids, times, truths):
        if t["sampled"]["samples"] == 0:
            continue
        sampled += 1
        top = d.json("top", "--pid", str(pid), "-n", "1000", "--no-inline")
        total += top["samples"]
        hot += sum(r["self_samples"] for r in top["rows"] if r["function"] in ("work_a", "work_b"))
        kernel_leaf += kernel_leaf_pct(top) * top["samples"] / 100
        unresolved += sum(1 for r in top["rows"]
                          if r["module"] in ("split", "[unknown]") and "+0x" in r["function"])
        in_units += truth.in_units
        cpu += truth.cpu
    # A process that ran c seconds of CPU has no sample at 999 Hz with probability exp(-999 c)
    # at most (Poisson; the timer is periodic, which only makes a miss less likely).
    p_hit = [1 - math.exp(-999 * t.cpu) for t in truths]
    want = sum(p_hit)
    tol = Z * math.sqrt(sum(p * (1 - p) for p in p_hit)) + 1
    check(sampled >= want - tol,
          f"the short-lived processes were sampled as their CPU time says ({sampled}/20, "
          f">= {want:.1f} -{tol:.1f}; CPU {[round(t.cpu, 3) for t in truths]} s)")
    check(unresolved == 0, f"no unresolved frame in the executable ({unresolved})")
    share = in_units / cpu if cpu else 0
    tol = share_tolerance(share, total)
    k = 100 * kernel_leaf / max(total, 1)
    check(100 * hot / max(total, 1) >= 100 * share - tol - k,
          f"their samples are in work_a/work_b as much as they measured ({hot}/{total}, "
          f">= {100 * share:.1f}% -{tol:.1f} -{k:.1f} in interrupts)")
    cmd = d.json("time", "--pid", str(pids[0]))["cmdline"]
    check(cmd and "split --seconds 0.03" in cmd, f"command line from exec ({cmd!r})")
    ps = d.json("ps", "-n", "100000")
    check(any(r["pid"] in pids and r["exited"] for r in ps["rows"]), "ps flags them exited")

    # Pid reuse: ask the kernel for the same pid again (ns_last_pid) and check the two
    # incarnations stay apart.
    first = run_workload(env, "split", "--seconds", 1, "--a", 100)
    second = None
    for _ in range(50):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(first - 1))
        except OSError as e:
            skip(f"cannot set ns_last_pid to force pid reuse: {e}")
        p = popen([env.workload("split"), "--seconds", "1", "--a", "0"],
                             stdout=subprocess.PIPE, text=True)
        got = int(p.stdout.readline())
        p.wait()
        if got == first:
            second = got
            break
    check(second == first, f"pid {first} was reused")
    time.sleep(0.3)
    ps = [r for r in d.json("ps", "-n", "100000")["rows"] if r["pid"] == first]
    check(len(ps) == 2 and ps[0]["start_time"] != ps[1]["start_time"],
          "ps shows two incarnations of the pid")
    top = d.json("top", "--pid", str(first), "-n", "50", "--no-inline")
    check(row(top, "work_b") is not None and row(top, "work_a") is None,
          "top --pid takes the newest incarnation (all work_b), not merged with the old")
    older = min(ps, key=lambda r: r["start_time"])
    top_old = d.json("top", "--pid", str(first), "--start", str(older["start_time"]), "-n", "50",
                     "--no-inline")
    check(row(top_old, "work_a") is not None and row(top_old, "work_b") is None,
          "--start selects the older incarnation (all work_a)")
    t_old = d.json("time", "--pid", str(first), "--start", str(older["start_time"]))
    t_new = d.json("time", "--pid", str(first))
    check(t_old["start_time"] < t_new["start_time"], "time --start too")
