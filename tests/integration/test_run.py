#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq run (docs/profq.1, "run"): time(1)'s figures for a command (real from the clock, user and
sys of the command and its waited-for children) and its hotspots from profqd, children included;
--repeat gives min/median/max; profq exits with the command's status."""

import json
import os
import subprocess
import time

from harness import (Daemon, Env, SplitTruth, check, fail, kernel_hz, near, require_bpf,
                     sample_bounds, share_tolerance, steal_s, tempdir)

require_bpf()
env = Env()
split = env.workload("split")


MS = 0.0005  # seconds in the JSON are rounded to milliseconds
TICKS = 2 / kernel_hz() + MS  # the kernel's user/sys split may move by a tick either way


def run(d, *args):
    p = subprocess.run([env.profq, "--socket", d.socket, "run", *args], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def run_json(d, *args, rc=0):
    """The JSON answer, and what the command printed (profq puts it on stderr then)."""
    code, out, err = run(d, "--json", *args)
    if code != rc:
        fail(f"profq run {' '.join(args)} exited {code} (wanted {rc}): {err}")
    try:
        return json.loads(out), err.splitlines()
    except ValueError:
        fail(f"profq run printed invalid JSON: {out!r}")


with Daemon(env) as d:
    lost0, steal0 = d.json("status")["lost"], steal_s()
    t0 = time.monotonic()
    a, printed = run_json(d, "-n", "100", "--", split, "--seconds", "2", "--a", "70")
    wall = time.monotonic() - t0
    lost, steal = d.json("status")["lost"] - lost0, steal_s() - steal0
    truth = SplitTruth(printed[1:])
    one = a["runs"][0]
    check(len(a["runs"]) == 1 and a["exit_code"] == 0 and 2 - MS <= one["real_s"] <= wall + MS,
          f"real {one['real_s']} s for a 2 s command (the test waited {wall:.3f} s)")
    cpu = one["user_s"] + one["sys_s"]
    # wait4's figures are the kernel's, as the command's own getrusage gave them just before
    # it exited (a tick of the kernel's split either way).
    check(near(one["user_s"], truth.user, TICKS) and near(one["sys_s"], truth.sys, TICKS) and
          cpu <= one["real_s"] + 2 * MS,
          f"user {one['user_s']} + sys {one['sys_s']} = the command's getrusage "
          f"({truth.user} + {truth.sys}), within real (one thread)")
    rows = {r["function"]: r for r in a["rows"]}
    n = a["samples"]
    lo, hi = sample_bounds(cpu, 999, lost, steal)
    want = truth.of_process("work_a")
    tol = share_tolerance(want / 100, n)
    wa = rows.get("work_a", {}).get("total_pct")
    check(lo <= n <= hi and near(wa, want, tol),
          f"hotspots: {n} samples in [{lo:.0f}, {hi:.0f}] for {cpu:.3f} s of CPU, work_a {wa}% "
          f"total ~ measured {want:.1f}% (±{tol:.1f})")

    # Children: the shell's child does the work; the shell's exit status is profq's.
    script = f"{split} --seconds 0.7 --a 70; exit 3"
    b, printed = run_json(d, "--repeat", "3", "-n", "100", "--", "sh", "-c", script, rc=3)
    reals = sorted(r["real_s"] for r in b["runs"])
    check(len(b["runs"]) == 3 and b["real_s"]["min"] == reals[0] and
          b["real_s"]["median"] == reals[1] and b["real_s"]["max"] == reals[2],
          f"--repeat 3: min/median/max of the runs ({b['real_s']})")
    # The child prints its getrusage: the shell's user is its own and that child's.
    kids = [float(line.split()[1]) for line in printed if line.startswith("user ")]
    check(len(kids) == 3 and all(r["user_s"] >= k - TICKS for r, k in zip(b["runs"], kids)),
          f"user includes the waited-for child ({[r['user_s'] for r in b['runs']]} s, the "
          f"children's own {kids})")
    rows = {r["function"]: r for r in b["rows"]}
    check("work_a" in rows and b["samples"] > 0,
          f"the child's samples are the command's ({b['samples']} over 3 runs)")
    check(all(r["exit_code"] == 3 for r in b["runs"]) and b["exit_code"] == 3,
          "the command's status is kept")
    procs = {p["comm"]: p for p in b["processes"]}
    check(procs.get("split", {}).get("processes") == 3 and
          sum(p["samples"] for p in b["processes"]) == b["samples"] and
          b["processes"][0]["comm"] == "split",
          f"processes by name: split's 3 runs hold the samples ({b['processes']})")
    code, out, _ = run(d, "--", "sh", "-c", f"{split} --seconds 0.3 & "
                       f"{env.workload('cxx')} --seconds 0.3; wait")
    table = out[out.find("COMMAND"):out.find("FUNCTION")].split()
    check(code == 0 and "split" in table and "cxx" in table,
          f"plain: which tools took the samples:\n{out}")

    # A command that sleeps: idle by the kernel's accounting, not too short to be sampled.
    e, _ = run_json(d, "--", "sh", "-c", "sleep 1")
    check(e["runs"][0]["user_s"] + e["runs"][0]["sys_s"] < 0.1 and e["unsampled_runs"] in (0, 1)
          and e["idle_runs"] == e["unsampled_runs"] == (1 if e["samples"] == 0 else 0),
          f"sh -c 'sleep 1': {e['samples']} samples, {e['unsampled_runs']} unsampled runs, "
          f"{e['idle_runs']} idle")
    code, out, _ = run(d, "--", "sh", "-c", "sleep 1")
    check(code == 0 and "too short" not in out and ("idle" in out or "Samples: 0" not in out),
          f"plain: the sleeping run is said to be idle:\n{out}")
    code, out, _ = run(d, "--", split, "--seconds", "0.3")
    check(code == 0 and "real " in out and "spin" in out, f"plain output:\n{out}")
    code, _, err = run(d, "--", "/nonexistent/command")
    check(code == 127 and "No such file" in err, f"a missing command: 127 ({err.strip()})")
    code, _, _ = run(d)
    check(code == 2, "no command: usage error")

    # ^C ends --repeat as it ends a shell loop: one run, killed by SIGINT, 128 + 2.
    c, _ = run_json(d, "--repeat", "5", "--", "sh", "-c", "kill -INT $$", rc=130)
    check(len(c["runs"]) == 1 and c["runs"][0]["exit_code"] == 130,
          f"SIGINT stops --repeat after the run it killed ({len(c['runs'])} runs)")

# Without a daemon there are no hotspots: said before anything runs (exit 3), in one JSON
# document with --json.
tmp = tempdir("profq-run-")
marker = os.path.join(tmp, "ran")
p = subprocess.run([env.profq, "--socket", os.path.join(tmp, "no.sock"), "run", "--json", "--",
                    "touch", marker], capture_output=True, text=True, timeout=60)
check(p.returncode == 3 and not os.path.exists(marker) and
      json.loads(p.stdout).get("error"),
      f"no profqd: exit 3, nothing run ({p.returncode}, {p.stdout.strip()!r})")
