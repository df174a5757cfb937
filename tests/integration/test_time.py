#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq time (SPEC 7): time(1) semantics for exited and running processes, checked against
the kernel's own accounting as the workload reads it (getrusage) and as wait4 reports it;
exit statuses; waited-for children and descendants; per-thread rows."""

import os
import resource
import signal
import subprocess
import time

from harness import (Daemon, Env, check, near, require_bpf, row, run_workload, rusage_of,
                     start_workload)

require_bpf()
env = Env()

with Daemon(env) as d:
    # An exited process: user/sys equal its own getrusage (same kernel figures).
    t0 = time.time()
    pid, lines = run_workload(env, "split", "--seconds", 2, "--sys", 30, "--threads", 2,
                              output=True)
    wall = time.time() - t0
    utime, stime = rusage_of(lines)
    t = d.json("time", "--pid", str(pid))
    for key in ("pid", "comm", "real_s", "user_s", "sys_s", "cpu_pct", "exited", "sampled"):
        check(key in t, f"time has '{key}'")
    check(t["exited"] is True and t["exit_code"] == 0, "exited with status 0")
    check(t["accounting"] == "kernel", "kernel accounting from the exit event")
    check(near(t["user_s"], utime, 0.02), f"user {t['user_s']} = rusage {utime}")
    check(near(t["sys_s"], stime, 0.02), f"sys {t['sys_s']} = rusage {stime}")
    check(2.0 <= t["real_s"] <= wall + 0.05, f"real {t['real_s']} between 2 s and {wall:.3f}")
    check(near(t["cpu_pct"], 100 * (t["user_s"] + t["sys_s"]) / t["real_s"], 0.2),
          "cpu% = 100*(user+sys)/real")
    s = t["sampled"]
    check(near(s["user_s"] + s["sys_s"], utime + stime, 0.1 * (utime + stime)),
          f"sampled {s['user_s'] + s['sys_s']:.3f} s ~ kernel {utime + stime:.3f} s")
    check(near(s["sys_s"] / (s["user_s"] + s["sys_s"]), stime / (utime + stime), 0.05),
          "sampled user/sys split ~ the kernel's")
    _, out, _ = d.profq("time", "--pid", str(pid))
    check("real" in out and "user" in out and "exit status 0" in out, "plain time output")

    # Threads: one row per thread, about a third each.
    pid3 = run_workload(env, "split", "--seconds", 2, "--threads", 3)
    ps = d.json("ps", "--threads", "--pid", str(pid3))
    tids = [r["tid"] for r in ps["rows"]]
    check(len(tids) == 3 and pid3 in tids, f"three threads, the main one included ({tids})")
    total = sum(r["samples"] for r in ps["rows"])
    check(all(near(r["samples"] / total, 1 / 3, 0.08) for r in ps["rows"]),
          "each thread has about a third of the samples")
    top = d.json("top", "--pid", str(pid3), "--tid", str(tids[0]))
    check(top["tid"] == tids[0] and near(top["samples"], ps["rows"][0]["samples"], 0),
          "top --tid counts that thread only")

    # A running process: real grows with the clock, not exited.
    p, rpid = start_workload(env, "split", "--seconds", 3)
    time.sleep(1.5)
    t = d.json("time", "--pid", str(rpid))
    check(t["exited"] is False and t["exit_code"] is None, "running: not exited")
    check(1.3 <= t["real_s"] <= 2.5, f"real {t['real_s']} ~ 1.5 s so far")
    check(0.5 <= t["user_s"] <= t["real_s"] + 0.05, f"user {t['user_s']} from /proc")
    p.wait()

    # Exit statuses as wait4 reports them.
    sh = subprocess.Popen(["sh", "-c", "exec sleep 0.3; exit 3"])
    sh.wait()
    sh2 = subprocess.Popen(["sh", "-c", "exit 3"])
    sh2.wait()
    sl = subprocess.Popen(["sleep", "5"])
    time.sleep(0.3)
    sl.send_signal(signal.SIGKILL)
    sl.wait()
    time.sleep(0.3)
    t = d.json("time", "--pid", str(sh2.pid))
    check(t["exited"] and t["exit_code"] == 3 << 8,
          f"exit 3 gives wait status 0x300 ({t['exit_code']})")
    t = d.json("time", "--pid", str(sl.pid))
    check(t["exited"] and t["exit_code"] == signal.SIGKILL,
          f"SIGKILL gives wait status 9 ({t['exit_code']})")
    _, out, _ = d.profq("time", "--pid", str(sl.pid))
    check("killed by signal 9" in out, "plain output names the signal")
    t = d.json("time", "--pid", str(sh.pid))
    check(t["comm"] == "sleep", "exec keeps the pid, the name follows the image")

    # Waited-for children: a shell running two workloads one after the other. Our own
    # RUSAGE_CHILDREN grows by what wait4 reported for the shell: itself plus the children it
    # waited for, the figure time(1) prints.
    split = env.workload("split")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    shell = subprocess.Popen(["sh", "-c", f"{split} --seconds 1 >/dev/null; "
                              f"{split} --seconds 1 --a 30 --sys 40 >/dev/null"])
    shell.wait()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.3)
    t = d.json("time", "--pid", str(shell.pid))
    wc = t["with_children"]
    check(near(wc["user_s"], r1.ru_utime - r0.ru_utime, 0.03),
          f"user with children {wc['user_s']} = wait4's {r1.ru_utime - r0.ru_utime:.3f}")
    check(near(wc["sys_s"], r1.ru_stime - r0.ru_stime, 0.03),
          f"sys with children {wc['sys_s']} = wait4's {r1.ru_stime - r0.ru_stime:.3f}")
    tc = d.json("time", "--pid", str(shell.pid), "--children")
    check(tc["descendants"]["count"] >= 2, f"two descendants seen ({tc['descendants']})")
    # Two independent kernel sources: the shell's cutime/cstime (signal struct) and the
    # children's own exit records.
    kids = tc["descendants"]["user_s"] + tc["descendants"]["sys_s"]
    waited = t["children"]["user_s"] + t["children"]["sys_s"]
    check(near(waited, kids, 0.03), f"waited-for children {waited:.3f} s = their exit "
          f"records {kids:.3f} s")
    check(tc["sampled"]["samples"] > t["sampled"]["samples"] * 10,
          "--children adds the descendants' samples")
    top = d.json("top", "--pid", str(shell.pid), "--children", "-n", "50")
    check(row(top, "work_a") is not None and near(row(top, "run")["total_pct"], 100, 5),
          "top --children shows the children's functions")
    ps = d.json("ps", "--pid", str(shell.pid), "--children")
    pids = {r["pid"] for r in ps["rows"]}
    check(len(pids) >= 2 and all(r["ppid"] == shell.pid for r in ps["rows"]
                                 if r["pid"] != shell.pid),
          "ps --children lists the children with the shell as parent")

    # A pid never seen by the daemon but alive: adopted from /proc.
    t = d.json("time", "--pid", str(os.getpid()))
    check(t["exited"] is False and t["pid"] == os.getpid(), "a live, unsampled pid is known")
    d.json("time", "--pid", "4194304", expect_rc=1)
