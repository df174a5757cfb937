#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq status and ps: the fields docs/profq.1 lists, user vs kernel split of a workload with a
known share of system time, kernel frames named from kallsyms, no sample lost at 999 Hz but
those a full ring buffer could not take."""

import re
import time

from harness import (Daemon, Env, SplitTruth, check, kernel_hz, near, require, require_bpf, row,
                     run_workload, sample_bounds, share_tolerance, steal_s)

require_bpf()
env = Env()
MS_ROUND = 0.0005  # the JSON's seconds are rounded to milliseconds

with Daemon(env) as d:
    st = d.json("status")
    for key in ("uptime_s", "frequency_hz", "samples", "lost", "windows", "memory_bytes",
                "processes"):
        check(key in st, f"status has '{key}'")
    check(st["frequency_hz"] == 999, "status reports the frequency")

    # 40% of the work reads /dev/zero: kernel time.
    lost0, steal0 = st["lost"], steal_s()
    pid, lines = run_workload(env, "split", "--seconds", 4, "--a", 30, "--sys", 40, output=True)
    split = SplitTruth(lines)
    utime, stime = split.user, split.sys
    truth = stime / (utime + stime)
    # Its exit is seen asynchronously: wait for it, so that its life is known.
    deadline = time.monotonic() + 10
    while not d.json("time", "--pid", str(pid))["exited"] and time.monotonic() < deadline:
        time.sleep(0.05)
    # All of them: a busy machine runs many processes.
    ps = d.json("ps", "-n", "100000")
    lost, steal = d.json("status")["lost"] - lost0, steal_s() - steal0
    check(all(k in ps["rows"][0] for k in ("pid", "comm", "user_pct", "sys_pct", "cpu_pct",
                                            "samples")), "ps rows have the documented fields")
    mine = [r for r in ps["rows"] if r["pid"] == pid]
    require(len(mine) == 1, f"ps lists the workload {pid}")
    r = mine[0]
    cpu = r["cpu_pct"]
    check(r["comm"] == "split", "ps names it")
    # Each of the three rounded to hundredths.
    check(near(r["user_pct"] + r["sys_pct"], cpu, 0.015 + 1e-9), "user% + sys% = cpu%")
    # Ground truth: the kernel's own accounting of the workload (getrusage at its exit), whose
    # user/sys split is itself sampled at the scheduler tick.
    share = r["sys_pct"] / cpu
    tol = share_tolerance(truth, r["samples"], n_ref=split.cpu * kernel_hz(), pct=False)
    check(near(share, truth, tol),
          f"sampled kernel share {share:.3f} ~ rusage's {truth:.3f} (±{tol:.3f})")
    lo, hi = sample_bounds(split.cpu, 999, lost, steal)
    check(lo <= r["samples"] <= hi,
          f"{r['samples']} samples in [{lo:.0f}, {hi:.0f}] for rusage's user+sys "
          f"{split.cpu:.3f} s at 999 Hz ({lost} lost, {steal:.2f} s stolen)")
    # One daemon, one period: CPU time goes with the samples.
    counts = [x["samples"] for x in ps["rows"]]
    check(counts == sorted(counts, reverse=True), "rows are ordered by CPU time")
    by_cpu = [x["cpu_pct"] for x in d.json("ps", "-n", "0", "--sort", "cpu")["rows"]]
    check(by_cpu == sorted(by_cpu, reverse=True), "--sort cpu orders them by %CPU")
    # %CPU is of the time the workload was alive in the range (all of its life: the daemon ran
    # before it), as time(1) would say: its samples' CPU time over its life.
    t = d.json("time", "--pid", str(pid))
    alive = r["alive_s"]
    check(near(alive, t["real_s"], 0.002) and alive < ps["elapsed_s"] + MS_ROUND,
          f"alive {alive} s in the range: its life ({t['real_s']} s), not the range's "
          f"{ps['elapsed_s']} s")
    lo_pct, hi_pct = (100 * x / 999 / alive for x in (lo, hi))
    check(lo_pct - 0.01 <= cpu <= hi_pct + 0.01,
          f"%CPU {cpu} in [{lo_pct:.2f}, {hi_pct:.2f}]: {split.cpu:.3f} s of CPU in its "
          f"{alive} s (time says {t['cpu_pct']}%)")
    # The range the answer covers, and what its windows lost.
    rng = ps["range"]
    check(rng["since_s"] <= r["start_time"] and rng["until_s"] >= r["exit_time"] and
          0 <= ps["lost"] <= d.json("status")["lost"],
          f"ps covers {rng} (the workload {r['start_time']}..{r['exit_time']}), "
          f"lost {ps['lost']}")
    _, out, err = d.profq("ps")
    check(out.startswith("Range: all retained (") and
          (ps["lost"] == 0 or "samples were lost" in err),
          f"plain ps starts with its range, and warns of lost samples: {out.splitlines()[0]!r} "
          f"{err.strip()!r}")

    top = d.json("top", "--pid", str(pid), "-n", "100")
    kernel = [x for x in top["rows"] if x["kernel"]]
    check(len(kernel) > 0, "kernel frames are present")
    check(all(x["module"] == "[kernel.kallsyms]" or x["module"].startswith("[")
              for x in kernel), "kernel frames carry a kernel module name")
    check(row(top, "ksys_read") is not None or row(top, "vfs_read") is not None,
          "the read path is named (vfs_read/ksys_read)")
    # libc's read() has no frame pointer, so a frame-pointer walk from inside it skips its
    # caller work_sys; only the DWARF unwinder (docs/ARCHITECTURE.md, "Unwinding without
    # frame pointers") recovers it. Here: read and run.
    n = top["samples"]
    want = split.of_process("work_sys")
    tol = share_tolerance(want / 100, n)
    rd = row(top, "read")
    check(rd is not None and near(rd["total_pct"], want, tol),
          f"libc read total {rd and rd['total_pct']}% ~ work_sys's measured {want:.1f}% "
          f"(±{tol:.1f})")
    want = 100 * split.in_units_share
    tol = share_tolerance(want / 100, n)
    rr = row(top, "run")
    check(rr is not None and rr["total_pct"] >= want - tol,
          f"run is on every stack of the units ({rr and rr['total_pct']}% >= {want:.1f}% "
          f"-{tol:.1f})")

    st = d.json("status")
    check(st["samples"] >= r["samples"], f"samples counted ({st['samples']})")
    # A sample is lost only when the ring buffer is full: profqd waited that long for a CPU.
    check(st["lost"] == st["lost_ringbuf"],
          f"nothing lost but what the ring buffer could not hold ({st['lost']} lost, "
          f"{st['lost_ringbuf']} of them when it was full)")
    check(st["processes"] >= 1 and st["windows"] >= 1, "processes and windows counted")
    check(0 < st["memory_bytes"] <= st["max_memory_bytes"],
          f"memory {st['memory_bytes']} within the budget {st['max_memory_bytes']}")

    _, out, _ = d.profq("ps", "-n", "100000")
    check("%USR" in out and "split" in out, "plain ps is a table listing split")
    _, out, _ = d.profq("ps", "-n", "1")
    m = re.search(r"^\(1 of (\d+) rows, by time; -n 0 shows all\)$", out, re.M)
    check(m and int(m.group(1)) >= 2, "plain ps -n 1 says how many rows it left out")
    _, out, _ = d.profq("status")
    check("Samples:" in out and "Lost:" in out, "plain status")
