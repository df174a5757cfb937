#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A binary on a FUSE file system whose daemon never answers profqd (docs/ARCHITECTURE.md,
"Files users control"): a user's FUSE daemon can leave any request unanswered, and a read or
even a stat() of the file would hold profqd's main loop for as long. The test serves the split
workload from its own FUSE file system (tests/integration/fusefs.py), answering everyone but
profqd, and runs it from there: profqd must not send the file system a single request, keep
answering, count the refusal, and still count the workload's samples. The same for a perf map:
a process running JIT code with that file system as its /tmp (a mount namespace of its own).
And for the memory of a Python process, which profqd reads in a child of its own: a fake
interpreter (python/fakepy.c) whose code object's name lies in an untouched page of a file on
that file system; the read waits, the child is killed after the time limit, and status goes on
answering meanwhile. And for a separate debug file: a stripped binary on an ordinary file system
whose debug link names a file in .debug/ beside it, where a FUSE file system is mounted that
answers profqd's DWARF worker (which reads the DWARF from it) and never profqd itself, which
must not touch the file the worker names. And for a process gone before profqd took in its
samples (profqd stopped meanwhile), whose binary's directory then got a FUSE mount over it:
profqd opens the binary by path then, and must not look it up through that file system."""

import json
import os
import shutil
import signal
import subprocess
import time

from fusefs import FuseFS
from harness import Daemon, Env, check, popen, require, require_bpf, skip, tempdir
from jitcode import JIT

require_bpf()
env = Env()
if not os.path.exists("/dev/fuse"):
    skip("no /dev/fuse")

mnt = tempdir("profq-test-fuse-")
with open(env.workload("split"), "rb") as f:
    binary = f.read()
FAKEPY_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python", "fakepy.c")


def poll_status(d, p, done=None):
    """Asks for status every 0.2 s while p runs (or until done(status) says what the caller
    waits for happened), and at least 5 times (or until 5 went unanswered in 10 s each): how
    many answers came, and the slowest round trip."""
    worst, answered, unanswered = 0.0, 0, 0
    while (p.poll() is None or answered < 5) and unanswered < 5:
        t = time.monotonic()
        try:
            q = subprocess.run([env.profq, "--socket", d.socket, "status", "--json"],
                               capture_output=True, timeout=10)
            answered += q.returncode == 0
            if q.returncode == 0 and done and done(json.loads(q.stdout)):
                done = None
                p.kill()
        except subprocess.TimeoutExpired:
            unanswered += 1
        worst = max(worst, time.monotonic() - t)
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


def python_with_fuse_page(d, fs):
    """Runs a fake Python 3.11 whose code object's name is in a page of the FUSE file system's
    file "page", until a read of its memory waited on the page and timed out (at most 30 s);
    status asked meanwhile. Its pid, how many status answers came, the slowest, and the python
    counters before and after."""
    fake = os.path.join(tempdir("profq-test-fakepy-"), "python3.11")
    subprocess.run(["cc", "-O1", "-rdynamic", "-o", fake, FAKEPY_C, "-lpthread"], check=True)
    before = d.json("status")["python"]
    held = fs.held
    p = popen([fake, "mapped", "fuse", "30"], stdout=subprocess.PIPE, text=True,
              env=dict(os.environ, FAKEPY_MAP=os.path.join(mnt, "page")))
    pid = int(p.stdout.readline())
    answered, worst = poll_status(
        d, p, lambda st: (fs.held > held and
                          st["python"]["mem_timeouts"] > before["mem_timeouts"]))
    d.wait_caught_up()
    return pid, answered, worst, before, d.json("status")["python"]


with Daemon(env) as d:
    try:
        fs = FuseFS(mnt, {"split": binary, "page": b"A" * (64 << 10)})
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
        held = fs.held
        py_pid, py_answered, py_worst, py_before, py_after = python_with_fuse_page(d, fs)
    finally:
        fs.close()

check(held == 0, f"profqd sent the FUSE file system no request for the binary or the perf map "
      f"({held} left unanswered)")
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
check(fs.held > held, f"the Python process's page was read through the FUSE file system "
      f"({fs.held - held} requests left unanswered)")
check(py_answered >= 5, f"status answered while the Python process's memory read waited "
      f"({py_answered} times, the slowest in {py_worst:.2f} s)")
timeouts = py_after["mem_timeouts"] - py_before["mem_timeouts"]
check(timeouts >= 1, f"the read that waited timed out and was counted (python.mem_timeouts "
      f"{timeouts}, reader children {py_after['mem_readers']})")


# ---- a debug file on FUSE, found by the DWARF worker ----
work = tempdir("profq-test-fuse-debug-")
stripped = os.path.join(work, "split-fuse")
debug_name = "split-fuse.debug"
subprocess.run(["objcopy", "--only-keep-debug", env.workload("split"),
                os.path.join(work, debug_name)], check=True)
subprocess.run(["objcopy", "--strip-debug",
                f"--add-gnu-debuglink={os.path.join(work, debug_name)}", env.workload("split"),
                stripped], check=True)
with open(os.path.join(work, debug_name), "rb") as f:
    debug_bytes = f.read()
os.unlink(os.path.join(work, debug_name))
os.mkdir(os.path.join(work, ".debug"))
with Daemon(env) as d:
    fs = FuseFS(os.path.join(work, ".debug"), {debug_name: debug_bytes})
    try:
        fs.hold.add(d.proc.pid)
        fs.hold_children = False  # the worker is answered
        p = subprocess.Popen([stripped, "--seconds", "3"], stdout=subprocess.PIPE, text=True)
        dpid = int(p.stdout.readline())
        d_answered, d_worst = poll_status(d, p)
        p.wait()
        d_held = fs.held
        st_d = d.json("status") if d_answered else None
        top_d = d.json("top", "--pid", str(dpid), "-n", "20", "--no-inline") if st_d else None
    finally:
        fs.close()
check(d_answered >= 5 and d_held == 0,
      f"status answered while the worker read a debug file on FUSE ({d_answered} times, the "
      f"slowest in {d_worst:.2f} s; {d_held} of profqd's requests left unanswered)")
check(st_d is not None and st_d["symbolizer"]["dwarf_worker_requests"] > 0,
      f"the DWARF worker was asked ({st_d and st_d['symbolizer']['dwarf_worker_requests']})")
names = {r["function"] for r in (top_d or {}).get("rows", [])}
check(top_d is not None and top_d["samples"] > 0 and "work_a" in names,
      f"the binary's functions are named from its symbol table ({top_d and top_d['samples']} "
      f"samples; {sorted(names)[:8]})")


# ---- a gone process's binary, under a FUSE mount made over its directory after it exited ----
gone_dir = tempdir("profq-test-fuse-gone-")
os.chmod(gone_dir, 0o755)
sub = os.path.join(gone_dir, "d")
os.mkdir(sub)
gone_app = os.path.join(sub, "split-gone")
shutil.copy(env.workload("split"), gone_app)  # an inode profqd has never seen
if os.major(os.stat(gone_app).st_dev) == 0:
    skip("the temporary directory is on an anonymous device (tmpfs?), refused for a gone "
         "process before its path is touched: nothing to test")
with Daemon(env) as d:
    d.wait_caught_up()
    # Stopped: the process's samples and its exit wait in the ring buffer.
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        q = subprocess.run([gone_app, "--seconds", "1"], capture_output=True, text=True,
                           timeout=60)
        require(q.returncode == 0 and q.stdout.strip(),
                f"the workload ran (exit {q.returncode}, {q.stdout!r} {q.stderr!r})")
        gone_pid = int(q.stdout.splitlines()[0])
        fs = FuseFS(sub, {"split-gone": binary})
        fs.hold.add(d.proc.pid)
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    try:
        g_answered, g_worst = poll_status(d, popen(["sleep", "3"]))
        g_held = fs.held
        top_g = d.json("top", "--pid", str(gone_pid), "-n", "5") if g_answered else None
    finally:
        fs.close()
check(g_answered >= 5 and g_held == 0,
      f"status answered while profqd took in a gone process whose binary's directory is now "
      f"FUSE ({g_answered} times, the slowest in {g_worst:.2f} s; {g_held} of profqd's "
      f"requests left unanswered)")
gone_mods = {r["module"] for r in (top_g or {}).get("rows", [])}
check(top_g is not None and top_g["samples"] > 0 and "split-gone" in gone_mods,
      f"its samples are counted, its frames by module ({top_g and top_g['samples']} samples; "
      f"modules {sorted(gone_mods)})")
