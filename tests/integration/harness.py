# SPDX-License-Identifier: MIT
"""Integration test harness: starts the real profqd (real BPF) on private paths, runs
workloads, and queries it with the real profq. Tests exit 77 (skipped, with the reason on
stderr) when the machine cannot run BPF profilers: not root, no BTF, no perf_event BPF."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77


def skip(reason):
    print(f"SKIPPED: {reason}", file=sys.stderr)
    sys.exit(SKIP)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok: {msg}")


def require_bpf():
    """Skip unless this machine can load perf_event BPF programs."""
    if os.geteuid() != 0:
        skip("needs root (CAP_BPF and CAP_PERFMON) to load the BPF sampler")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("kernel has no BTF (/sys/kernel/btf/vmlinux)")
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if os.path.exists(bpftool):
        out = subprocess.run([bpftool, "feature", "probe", "kernel"],
                             capture_output=True, text=True).stdout
        if "program_type perf_event is available" not in out:
            skip("kernel cannot run perf_event BPF programs")


class Env:
    """Paths of the build tree (argv: --build DIR)."""

    def __init__(self):
        build = None
        args = sys.argv[1:]
        if "--build" in args:
            build = args[args.index("--build") + 1]
        if not build:
            fail("usage: TEST --build BUILD_DIR")
        self.build = os.path.abspath(build)
        self.profqd = os.path.join(self.build, "daemon", "profqd")
        self.profq = os.path.join(self.build, "cli", "profq")
        self.workloads = os.path.join(self.build, "tests", "workloads")

    def workload(self, name):
        return os.path.join(self.workloads, name)


class Daemon:
    """A profqd on a private socket and state dir; stopped (SIGTERM, exit 0 checked) on exit."""

    def __init__(self, env, *args, frequency=999, window="2s", extra_env=None, state_dir=None):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="profq-test-")
        self.socket = os.path.join(self.dir, "profq.sock")
        # state_dir: one that outlives this daemon (restarts, offline queries).
        self.state = state_dir or os.path.join(self.dir, "state")
        self.killed = False
        self.log = os.path.join(self.dir, "profqd.log")
        cmd = [env.profqd, "--socket", self.socket, "--state-dir", self.state,
               "--config", "/dev/null", "--frequency", str(frequency), "--window", window]
        cmd += list(args)
        penv = dict(os.environ)
        penv.update(extra_env or {})
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=penv)
        self.wait_ready()

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"profqd exited with {self.proc.returncode} at start:\n{self.read_log()}")
            if os.path.exists(self.socket):
                rc, _, _ = self.profq("status", check_rc=False)
                if rc == 0:
                    return
            time.sleep(0.05)
        fail(f"profqd did not answer within {timeout}s:\n{self.read_log()}")

    def read_log(self):
        with open(self.log) as f:
            return f.read()

    def profq(self, *args, check_rc=True, timeout=60):
        cmd = [self.env.profq, "--socket", self.socket] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check_rc and p.returncode != 0:
            fail(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}")
        return p.returncode, p.stdout, p.stderr

    def json(self, *args, expect_rc=0):
        rc, out, err = self.profq(*args, "--json", check_rc=False)
        if rc != expect_rc:
            fail(f"profq {' '.join(args)} --json exited {rc} (wanted {expect_rc}): {err}")
        try:
            return json.loads(out)
        except ValueError:
            fail(f"profq {' '.join(args)} --json printed invalid JSON: {out!r}")

    def kill(self):
        """kill -9: the daemon gets no chance to flush anything."""
        self.proc.kill()
        self.proc.wait()
        self.killed = True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("profqd did not stop within 20 s of SIGTERM")
        self.logf.close()
        rc = self.proc.returncode
        if rc != 0 and not self.killed:
            fail(f"profqd exited {rc} after SIGTERM:\n{self.read_log()}")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            if self.proc.poll() is None:
                self.proc.kill()
            print(self.read_log(), file=sys.stderr)
        return False


def run_workload(env, name, *args, output=False):
    """Runs a workload to completion; returns its pid (the workload prints it first), and with
    output=True also the rest of what it printed."""
    p = subprocess.run([env.workload(name)] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        fail(f"workload {name} {args} exited {p.returncode}: {p.stderr}")
    lines = p.stdout.splitlines()
    pid = int(lines[0])
    return (pid, lines[1:]) if output else pid


def rusage_of(lines):
    """(user, sys) seconds from split's last line "user U sys S"."""
    words = lines[-1].split()
    return float(words[1]), float(words[3])


def truth_of(lines):
    """{function: share of the measured CPU time} from split's "work_a S work_b S ..." line."""
    words = next(line for line in lines if line.startswith("work_a ")).split()
    secs = {words[i]: float(words[i + 1]) for i in range(0, len(words), 2)}
    total = sum(secs.values()) or 1
    return {k: v / total for k, v in secs.items()}


def start_workload(env, name, *args):
    """Starts a workload; returns (Popen, pid)."""
    p = subprocess.Popen([env.workload(name)] + [str(a) for a in args], stdout=subprocess.PIPE,
                         text=True)
    pid = int(p.stdout.readline())
    return p, pid


def row(answer, function):
    """The top row of a function, or None."""
    for r in answer["rows"]:
        if r["function"] == function:
            return r
    return None


def near(value, want, tolerance):
    return abs(value - want) <= tolerance
