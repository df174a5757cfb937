#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A binary on a FUSE file system whose daemon never answers profqd (docs/ARCHITECTURE.md,
"Files users control"): a user's FUSE daemon can leave any request unanswered, and a read or
even a stat() of the file would hold profqd's main loop for as long. The test serves the split
workload from its own FUSE file system (tests/integration/fusefs.py), answering everyone but
profqd, and runs it from there: profqd must not send the file system a single request, keep
answering, count the refusal, and still count the workload's samples. The same for a perf map:
a process running JIT code with that file system as its /tmp (a mount namespace of its own)."""

import os
import subprocess
import time

from fusefs import FuseFS
from harness import Daemon, Env, check, popen, require_bpf, skip, tempdir
from jitcode import JIT

require_bpf()
env = Env()
if not os.path.exists("/dev/fuse"):
    skip("no /dev/fuse")

mnt = tempdir("profq-test-fuse-")
with open(env.workload("split"), "rb") as f:
    binary = f.read()


def poll_status(d, p):
    """Asks for status every 0.2 s while p runs, and at least 5 times: how many answers came,
    and the slowest round trip."""
    worst, answered = 0.0, 0
    while p.poll() is None or answered < 5:
        t = time.monotonic()
        q = subprocess.run([env.profq, "--socket", d.socket, "status", "--json"],
                           capture_output=True, timeout=60)
        worst = max(worst, time.monotonic() - t)
        answered += q.returncode == 0
        time.sleep(0.2)
    return answered, worst


def jit_with_fuse_tmp(d):
    """Runs the JIT code for 2 s with the test's FUSE file system as its /tmp; status asked
    meanwhile. Its pid, how many status answers came and the slowest."""
    p = popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" /tmp && exec python3 -c "$1"', mnt, JIT],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    jit_pid = int(p.stdout.readline().split()[0])
    p.stdin.write("2\n")
    p.stdin.close()
    answered, worst = poll_status(d, p)
    d.wait_caught_up()
    return jit_pid, answered, worst


with Daemon(env) as d:
    try:
        fs = FuseFS(mnt, {"split": binary})
    except OSError as e:
        skip(f"cannot mount a FUSE file system here: {e}")
    try:
        fs.hold.add(d.proc.pid)
        p = subprocess.Popen([os.path.join(mnt, "split"), "--seconds", "3"],
                             stdout=subprocess.PIPE, text=True)
        pid = int(p.stdout.readline())
        # While it runs, and while profqd takes in its samples: every status answered.
        answered, worst = poll_status(d, p)
        p.wait()
        st = d.json("status")
        top = d.json("top", "--pid", str(pid), "-n", "5")
        # A process whose /tmp is the FUSE file system (bound there in a mount namespace of
        # its own) runs code no binary holds: profqd looks for its perf map in its /tmp.
        jit_pid, jit_answered, jit_worst = jit_with_fuse_tmp(d)
        st_jit = d.json("status")
    finally:
        fs.close()

check(fs.held == 0, f"profqd sent the FUSE file system no request ({fs.held} left unanswered)")
check(answered >= 5, f"status answered while the workload ran ({answered} times, the slowest "
      f"in {worst:.2f} s)")
check(st["symbolizer"]["fuse_refused"] >= 1,
      f"the refusal is counted (symbolizer.fuse_refused {st['symbolizer']['fuse_refused']})")
mods = {r["module"] for r in top["rows"]}
check(top["samples"] > 0 and "split" in mods,
      f"the workload's samples are counted, its frames by module and offset "
      f"({top['samples']} samples; modules {sorted(mods)})")
check(jit_answered >= 5, f"status answered while the JIT process ran ({jit_answered} times, "
      f"the slowest in {jit_worst:.2f} s)")
refused = st_jit["symbolizer"]["fuse_refused"] - st["symbolizer"]["fuse_refused"]
check(refused >= 1, f"its perf map, in the FUSE /tmp, was refused and counted ({refused})")
print("ok")
