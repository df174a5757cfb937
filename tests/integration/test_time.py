#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq time (docs/profq.1, "time"): time(1) semantics for exited and running processes,
checked against the kernel's own accounting as the workload reads it (getrusage), as wait4
reports it and as /proc shows it; exit statuses; waited-for children and descendants;
per-thread rows. Every tolerance comes from what the test measured: the kernel's tick, the
JSON's rounding, the sample counts of the answers, the workloads' own split."""

import os
import resource
import signal
import subprocess
import time

from harness import (Daemon, Env, check, kernel_hz, near, popen, require, require_bpf, row,
                     run_workload, rusage_of, sample_bounds, seconds_of, share_tolerance,
                     start_workload, steal_s, tempdir)

require_bpf()
env = Env()
tmp = tempdir("profq-time-")
HZ = kernel_hz()
TICK = 1 / HZ
CLK_TCK = os.sysconf("SC_CLK_TCK")
MS = 0.0005  # the JSON's seconds are rounded to milliseconds


def wait_exited(d, pid, timeout=10):
    """The time answer once the daemon has seen the exit (events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        t = d.json("time", "--pid", str(pid))
        if t["exited"] or time.monotonic() > deadline:
            return t
        time.sleep(0.05)


def proc_cpu(pid):
    """(utime, stime) in seconds from /proc/PID/stat (USER_HZ ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def thread_cpu(p, pid):
    """Follows a running workload's threads until it exits: {tid: CPU seconds (schedstat, ns
    exact)}, and {tid: seconds between a thread's last reading and its disappearance} (the most
    CPU it can have used unseen). Reaps the workload."""
    last, unseen, seen_at = {}, {}, {}
    while True:
        now = time.monotonic()
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            tids = []
        zombie = False
        try:
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            zombie = True
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    last[tid] = int(f.read().split()[0]) / 1e9
                seen_at[tid] = time.monotonic()
            except (OSError, ValueError):
                pass
        for tid in last:
            if tid not in tids and tid not in unseen:
                unseen[tid] = now - seen_at[tid]
        if zombie:
            break
        time.sleep(0.01)
    p.wait()
    now = time.monotonic()
    for tid in last:
        unseen.setdefault(tid, 0 if tid == pid else now - seen_at[tid])
    return last, unseen


with Daemon(env) as d:
    # ---- An exited process: user/sys are the kernel's figures, as getrusage gave them ----
    lost0, steal0 = d.json("status")["lost"], steal_s()
    t0 = time.monotonic()
    pid, lines = run_workload(env, "split", "--seconds", 2, "--sys", 30, "--threads", 2,
                              output=True)
    wall = time.monotonic() - t0
    utime, stime = rusage_of(lines)
    t = wait_exited(d, pid)
    lost, steal = d.json("status")["lost"] - lost0, steal_s() - steal0
    for key in ("pid", "comm", "real_s", "user_s", "sys_s", "cpu_pct", "exited", "sampled"):
        check(key in t, f"time has '{key}'")
    require(t["exited"] is True and t["exit_code"] == 0, "exited with status 0")
    check(t["accounting"] == "kernel", "kernel accounting from the exit event")
    # Between the workload's getrusage and its exit it prints and returns: the tick-based split
    # may move by a tick either way.
    check(near(t["user_s"], utime, 2 * TICK + MS),
          f"user {t['user_s']} = rusage {utime} (within two {1000 * TICK:.0f} ms ticks)")
    check(near(t["sys_s"], stime, 2 * TICK + MS),
          f"sys {t['sys_s']} = rusage {stime} (within two {1000 * TICK:.0f} ms ticks)")
    check(2.0 - MS <= t["real_s"] <= wall + MS,
          f"real {t['real_s']} between 2 s and the {wall:.3f} s the test waited")
    cpu = t["user_s"] + t["sys_s"]
    lo = 100 * (cpu - 2 * MS) / (t["real_s"] + MS)
    hi = 100 * (cpu + 2 * MS) / (t["real_s"] - MS)
    check(lo - 0.05 <= t["cpu_pct"] <= hi + 0.05, f"cpu% {t['cpu_pct']} = 100*(user+sys)/real")
    s = t["sampled"]
    kernel = utime + stime
    # One sample per 1/999 s of CPU, each period a Poisson count at worst; samples lost
    # anywhere on the machine while it ran (status "lost") may be missing.
    lo, hi = sample_bounds(kernel, 999, lost, steal)
    got = s["user_s"] + s["sys_s"]
    check(lo <= s["samples"] <= hi,
          f"sampled {got:.3f} s ~ kernel {kernel:.3f} s ({s['samples']} samples in "
          f"[{lo:.0f}, {hi:.0f}]: {lost} lost, {steal:.2f} s stolen)")
    # The kernel's split is itself sampled, at its tick (CONFIG_HZ={HZ}).
    share = stime / kernel
    tol = share_tolerance(share, s["samples"], n_ref=kernel * HZ, pct=False)
    check(near(s["sys_s"] / got, share, tol),
          f"sampled sys share {s['sys_s'] / got:.3f} ~ the kernel's {share:.3f} (±{tol:.3f})")
    _, out, _ = d.profq("time", "--pid", str(pid))
    check("real" in out and "user" in out and "exit status 0" in out, "plain time output")
    # Its range is its life, and the answer says what the windows of its life lost.
    t = d.json("time", "--pid", str(pid))
    check(t["range"]["since_s"] == t["start_time"] and t["range"]["until_s"] == t["exit_time"]
          and 0 <= t["lost"] <= d.json("status")["lost"] and
          out.startswith("Range: the process's life ("),
          f"time covers the process's life ({t['range']}, lost {t['lost']}; "
          f"{out.splitlines()[0]!r})")

    # ---- The last thread exits while another is still on its way out ----
    # With --exit-fds the second thread's exit closes descriptors of its own, so that the main
    # thread, which joined it (the kernel wakes a joiner early in a thread's exit), exits first:
    # the exit event must still count the other thread, as wait4 does. wait4 also counts the
    # rest of that thread's exit, after the event: at most closing the descriptors, which the
    # workload timed in a trial (three times over, for the noise of one trial).
    p = popen([env.workload("split"), "--seconds", "1", "--threads", "2", "--exit-fds", "20000"],
              stdout=subprocess.PIPE, text=True)
    lines = p.stdout.read().splitlines()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    require(p.returncode == 0 and len(lines) == 4 and lines[3].startswith("exit_fds "),
            f"split --exit-fds ran (exit {p.returncode}, {lines})")
    close_s = float(lines[3].split()[3])
    t = wait_exited(d, int(lines[0]))
    w_cpu, got = ru.ru_utime + ru.ru_stime, t["user_s"] + t["sys_s"]
    check(t["accounting"] == "kernel" and
          w_cpu - 3 * close_s - 2 * MS <= got <= w_cpu + 2 * MS + 1e-6,
          f"user+sys {got:.3f} = wait4's {w_cpu:.3f} with a thread still exiting at the last "
          f"one's exit (less up to 3 x {close_s * 1000:.1f} ms of its closing descriptors; "
          f"accounting {t['accounting']})")

    # ---- Threads: one row per thread, each with its share of the CPU time ----
    p3, pid3 = start_workload(env, "split", "--seconds", 2, "--threads", 3)
    cpu3, unseen = thread_cpu(p3, pid3)
    wait_exited(d, pid3)
    ps = d.json("ps", "--threads", "--pid", str(pid3))
    tids = [r["tid"] for r in ps["rows"]]
    require(len(tids) == 3 and pid3 in tids and set(tids) == set(cpu3),
            f"three threads, the main one included ({tids}; /proc had {sorted(cpu3)})")
    total = sum(r["samples"] for r in ps["rows"])
    cpu_total = sum(cpu3.values())
    for r in ps["rows"]:
        want = cpu3[r["tid"]] / cpu_total
        tol = share_tolerance(want, total, pct=False) + unseen[r["tid"]] / cpu_total
        check(near(r["samples"] / total, want, tol),
              f"thread {r['tid']}: {r['samples'] / total:.3f} of the samples ~ its "
              f"{want:.3f} of the CPU time (±{tol:.3f})")
    top = d.json("top", "--pid", str(pid3), "--tid", str(tids[0]))
    check(top["tid"] == tids[0] and top["samples"] == ps["rows"][0]["samples"],
          "top --tid counts that thread only")

    # ---- A running process: real grows with the clock, user from /proc, not exited ----
    t_before = time.monotonic()
    p, rpid = start_workload(env, "split", "--seconds", 3)
    t_started = time.monotonic()
    time.sleep(1.5)
    u_before = proc_cpu(rpid)[0]
    t_asked = time.monotonic()
    t = d.json("time", "--pid", str(rpid))
    t_answered = time.monotonic()
    u_after = proc_cpu(rpid)[0]
    check(t["exited"] is False and t["exit_code"] is None, "running: not exited")
    check(t_asked - t_started - MS <= t["real_s"] <= t_answered - t_before + MS,
          f"real {t['real_s']} between {t_asked - t_started:.3f} and "
          f"{t_answered - t_before:.3f} s, as the test's clock says")
    check(u_before - 1 / CLK_TCK <= t["user_s"] <= u_after + 1 / CLK_TCK,
          f"user {t['user_s']} between /proc's {u_before} and {u_after} s")
    p.wait()

    # ---- Exit statuses as wait4 reports them ----
    sh = subprocess.Popen(["sh", "-c", "exec sleep 0.3; exit 3"])
    sh.wait()
    sh2 = subprocess.Popen(["sh", "-c", "exit 3"])
    sh2.wait()
    sl = popen(["sleep", "5"])
    time.sleep(0.3)
    sl.send_signal(signal.SIGKILL)
    sl.wait()
    t = wait_exited(d, sh2.pid)
    check(t["exited"] and t["exit_code"] == 3 << 8,
          f"exit 3 gives wait status 0x300 ({t['exit_code']})")
    t = wait_exited(d, sl.pid)
    check(t["exited"] and t["exit_code"] == signal.SIGKILL,
          f"SIGKILL gives wait status 9 ({t['exit_code']})")
    _, out, _ = d.profq("time", "--pid", str(sl.pid))
    check("killed by signal 9" in out, "plain output names the signal")
    t = wait_exited(d, sh.pid)
    check(t["comm"] == "sleep", "exec keeps the pid, the name follows the image")

    # ---- Waited-for children ----
    # A shell running two workloads one after the other. Our own RUSAGE_CHILDREN grows by what
    # wait4 reported for the shell: itself plus the children it waited for, the figure time(1)
    # prints. Each workload writes what it measured inside run() to a file.
    split = env.workload("split")
    outs = [os.path.join(tmp, f"child{i}.out") for i in (1, 2)]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    shell = subprocess.Popen(["sh", "-c", f"{split} --seconds 1 >{outs[0]}; "
                              f"{split} --seconds 1 --a 30 --sys 40 >{outs[1]}"])
    shell.wait()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = wait_exited(d, shell.pid)
    tc = d.json("time", "--pid", str(shell.pid), "--children")
    wc = t["with_children"]
    # The same kernel figures on both sides, for three processes: their sum to the rounding;
    # the user/sys split, made from ticks, as of the exit event for profqd and of the reaping
    # for wait4, to a tick per process.
    w_user, w_sys = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    check(near(wc["user_s"] + wc["sys_s"], w_user + w_sys, 4 * MS + 1e-6),
          f"user+sys with children {wc['user_s'] + wc['sys_s']:.3f} = wait4's "
          f"{w_user + w_sys:.3f}")
    check(near(wc["user_s"], w_user, 3 * TICK + MS) and near(wc["sys_s"], w_sys, 3 * TICK + MS),
          f"user {wc['user_s']}, sys {wc['sys_s']} with children = wait4's {w_user:.3f}, "
          f"{w_sys:.3f} (a {1000 * TICK:.0f} ms tick per process)")
    check(tc["descendants"]["count"] >= 2, f"two descendants seen ({tc['descendants']})")
    # Two independent kernel sources: the shell's cutime/cstime (signal struct) and the
    # children's own exit records.
    kids = tc["descendants"]["user_s"] + tc["descendants"]["sys_s"]
    waited = t["children"]["user_s"] + t["children"]["sys_s"]
    check(near(waited, kids, 4 * MS + 1e-6),
          f"waited-for children {waited:.3f} s = their exit records {kids:.3f} s")

    ps = d.json("ps", "--pid", str(shell.pid), "--children")
    pids = {r["pid"] for r in ps["rows"]}
    # ps lists the processes sampled in the range: the shell, which only forks and waits, may
    # have no sample of its own on a loaded machine (seen once in ten suite runs).
    check(len(pids - {shell.pid}) >= 2 and all(r["ppid"] == shell.pid for r in ps["rows"]
                                               if r["pid"] != shell.pid),
          f"ps --children lists the children with the shell as parent ({sorted(pids)})")
    by_ps = sum(r["samples"] for r in ps["rows"])
    check(tc["sampled"]["samples"] == by_ps,
          f"time --children counts the samples of every process ps --children lists "
          f"({tc['sampled']['samples']}, ps: {by_ps})")

    # top --children: run() is on the stacks of the children's samples inside it. The truth:
    # the CPU time each workload measured inside run() (it measures every unit there) out of
    # all the CPU time of the shell and its children (the kernel's).
    top = d.json("top", "--pid", str(shell.pid), "--children", "-n", "50")
    n = top["samples"]
    in_run = sum(sum(seconds_of(open(o).read().splitlines()).values()) for o in outs)
    all_cpu = wc["user_s"] + wc["sys_s"]
    want = min(in_run / all_cpu, 1.0)
    run_row = row(top, "run")
    got = run_row["total_pct"] if run_row else 0
    tol = share_tolerance(want, n)
    per_child = {}
    for r in ps["rows"]:
        if r["pid"] != shell.pid and r["samples"] > 0:
            ct = d.json("top", "--pid", str(r["pid"]), "-n", "50")
            per_child[r["pid"]] = (row(ct, "run") or {}).get("total_samples", 0), ct["samples"]
    check(row(top, "work_a") is not None and got >= 100 * want - tol,
          f"top --children shows the children's functions: run {got}% of {n} samples, "
          f">= {100 * want:.1f}% measured inside run (-{tol:.1f}); "
          f"per child (run, samples): {per_child}")
    check(run_row is not None and
          run_row["total_samples"] == sum(x[0] for x in per_child.values()),
          f"run's samples with --children are the children's own ({per_child})")

    # A pid never seen by the daemon but alive: adopted from /proc.
    t = d.json("time", "--pid", str(os.getpid()))
    check(t["exited"] is False and t["pid"] == os.getpid(), "a live, unsampled pid is known")
    d.json("time", "--pid", "4194304", expect_rc=1)
