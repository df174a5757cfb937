#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq run (docs/profq.1, "run"): time(1)'s figures for a command (real from the clock, user and
sys of the command and its waited-for children) and its hotspots from profqd, children included;
--repeat gives min/median/max; profq exits with the command's status."""

import json
import os
import shutil
import subprocess
import tempfile

from harness import Daemon, Env, check, fail, near, require_bpf

require_bpf()
env = Env()
split = env.workload("split")


def run(d, *args):
    p = subprocess.run([env.profq, "--socket", d.socket, "run", *args], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def run_json(d, *args, rc=0):
    code, out, err = run(d, "--json", *args)
    if code != rc:
        fail(f"profq run {' '.join(args)} exited {code} (wanted {rc}): {err}")
    try:
        return json.loads(out)
    except ValueError:
        fail(f"profq run printed invalid JSON: {out!r}")


with Daemon(env) as d:
    a = run_json(d, "-n", "100", "--", split, "--seconds", "2", "--a", "70")
    one = a["runs"][0]
    check(len(a["runs"]) == 1 and a["exit_code"] == 0 and near(one["real_s"], 2, 0.3),
          f"real {one['real_s']} s for a 2 s command")
    check(near(one["user_s"] + one["sys_s"], one["real_s"], 0.3),
          f"user {one['user_s']} + sys {one['sys_s']} ~ real (a busy single thread)")
    rows = {r["function"]: r for r in a["rows"]}
    check(a["samples"] > 1000 and "work_a" in rows and near(rows["work_a"]["total_pct"], 70, 6),
          f"hotspots: {a['samples']} samples, work_a {rows.get('work_a', {}).get('total_pct')}%"
          " total (the workload asks for 70%)")

    # Children: the shell's child does the work; the shell's exit status is profq's.
    script = f"{split} --seconds 0.7 --a 70 >/dev/null; exit 3"
    b = run_json(d, "--repeat", "3", "-n", "100", "--", "sh", "-c", script, rc=3)
    reals = sorted(r["real_s"] for r in b["runs"])
    check(len(b["runs"]) == 3 and b["real_s"]["min"] == reals[0] and
          b["real_s"]["median"] == reals[1] and b["real_s"]["max"] == reals[2],
          f"--repeat 3: min/median/max of the runs ({b['real_s']})")
    check(near(b["user_s"]["median"], 0.7, 0.25),
          f"user includes the waited-for child ({b['user_s']['median']} s)")
    rows = {r["function"]: r for r in b["rows"]}
    check("work_a" in rows and b["samples"] > 1000,
          f"the child's samples are the command's ({b['samples']} over 3 runs)")
    check(all(r["exit_code"] == 3 for r in b["runs"]) and b["exit_code"] == 3,
          "the command's status is kept")

    code, out, _ = run(d, "--", split, "--seconds", "0.3")
    check(code == 0 and "real " in out and "spin" in out, f"plain output:\n{out}")
    code, _, err = run(d, "--", "/nonexistent/command")
    check(code == 127 and "No such file" in err, f"a missing command: 127 ({err.strip()})")
    code, _, _ = run(d)
    check(code == 2, "no command: usage error")

    # ^C ends --repeat as it ends a shell loop: one run, killed by SIGINT, 128 + 2.
    c = run_json(d, "--repeat", "5", "--", "sh", "-c", "kill -INT $$", rc=130)
    check(len(c["runs"]) == 1 and c["runs"][0]["exit_code"] == 130,
          f"SIGINT stops --repeat after the run it killed ({len(c['runs'])} runs)")

# Without a daemon there are no hotspots: said before anything runs (exit 3), in one JSON
# document with --json.
tmp = tempfile.mkdtemp(prefix="profq-run-")
marker = os.path.join(tmp, "ran")
p = subprocess.run([env.profq, "--socket", os.path.join(tmp, "no.sock"), "run", "--json", "--",
                    "touch", marker], capture_output=True, text=True, timeout=60)
check(p.returncode == 3 and not os.path.exists(marker) and
      json.loads(p.stdout).get("error"),
      f"no profqd: exit 3, nothing run ({p.returncode}, {p.stdout.strip()!r})")
shutil.rmtree(tmp, ignore_errors=True)
