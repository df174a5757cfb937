# SPDX-License-Identifier: MIT
"""Integration test harness: starts the real profqd (real BPF) on private paths, runs
workloads, and queries it with the real profq. Tests exit 77 (skipped, with the reason on
stderr) when the machine cannot run BPF profilers: not root, no BTF, no perf_event BPF.

Checks: check() reports a failed check and goes on, so one failure does not hide the checks
after it; the test exits 1 at the end, after listing every failure. require() and fail() are
for what the rest of the test cannot do without: they stop it (an exception, so `with` blocks
and `finally` clauses run). Whatever the way out (the end, a failure, an exception, SIGTERM,
the test's own deadline), the daemons, workloads and temporary directories the harness made
are killed and removed.

Durations and deadlines are measured with time.monotonic(); wall time only where it is
compared with the daemon's timestamps or files' mtimes.

Thresholds follow from what the test measured: share_tolerance() is the sampling error of a
share estimated from n samples (and of the reference it is compared with)."""

import atexit
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
# How many standard errors a sampled figure may stray: about one failure in 16000 for a single
# check with a normal error; with some hundred statistical checks in the suite, a run in 150.
Z = 4.0
# The test's own deadline, before ctest's TIMEOUT (tests/integration/CMakeLists.txt) kills it
# without a chance to clean up.
DEADLINE_S = float(os.environ.get("PROFQ_TEST_DEADLINE", "280"))

_failures = []
_daemons = []
_procs = []
_dirs = []


class Fatal(Exception):
    """A failure the rest of the test cannot go on from (already reported)."""


def skip(reason):
    print(f"SKIPPED: {reason}", file=sys.stderr)
    sys.exit(SKIP)


def _report(msg):
    _failures.append(msg)
    print(f"FAIL: {msg}", flush=True)


def fail(msg):
    """Reports a failure and stops the test."""
    _report(msg)
    raise Fatal(msg)


def check(cond, msg):
    """Reports the outcome of a check; the test goes on either way. Returns cond as a bool."""
    if cond:
        print(f"ok: {msg}")
        return True
    _report(msg)
    return False


def require(cond, msg):
    """A check that what follows depends on: stops the test when it fails."""
    if not check(cond, msg):
        raise Fatal(msg)


def failures():
    return len(_failures)


def _on_signal(signum, frame):
    name = "the test's deadline" if signum == signal.SIGALRM else signal.Signals(signum).name
    fail(f"stopped by {name} ({DEADLINE_S:.0f} s)" if signum == signal.SIGALRM
         else f"stopped by {name}")


def _excepthook(kind, value, tb):
    if kind is Fatal:
        print(f"stopped: {value}", file=sys.stderr)
        return
    sys.__excepthook__(kind, value, tb)


def _cleanup():
    signal.alarm(0)
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _daemons:
        d.abandon()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    if _failures:
        print(f"\n{len(_failures)} check(s) failed:", file=sys.stderr)
        for msg in _failures:
            print(f"  FAIL: {msg}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # An exit handler cannot change the exit status otherwise.
        os._exit(1)


atexit.register(_cleanup)
sys.excepthook = _excepthook
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGALRM, _on_signal)
signal.alarm(int(DEADLINE_S))


def tempdir(prefix):
    """A temporary directory removed when the test ends."""
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d


def wait_for(probe, timeout, step=0.2):
    """Calls probe() every step seconds until it returns a true value or timeout seconds have
    passed; returns its last value. For what the daemon does in its own time (a worker's
    answer, a read it was asked for), instead of a fixed sleep a busy machine outlasts."""
    t_end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= t_end:
            return value
        time.sleep(step)


def wait_until(what, probe, timeout, step=0.2):
    """wait_for() that fails the test when the time runs out; returns probe()'s true value."""
    value = wait_for(probe, timeout, step)
    if not value:
        fail(f"timed out after {timeout}s waiting for {what}")
    return value


def popen(*args, **kwargs):
    """subprocess.Popen, killed when the test ends if still running."""
    p = subprocess.Popen(*args, **kwargs)
    _procs.append(p)
    return p


def perf_attached(pid):
    """Whether process pid (perf record) has its perf events open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                return True
        except OSError:
            pass
    return False


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


# The memory budget of a test daemon unless the test says otherwise (max_memory=None: profqd's
# default). profqd profiles the whole machine: at 999 Hz its ring buffer alone is 32 MiB
# resident, half the default budget, and where a build runs alongside, the symbols of its
# compilers take the other half, so that profqd evicts windows for memory and a test's
# workload is gone before it is asked about (measured on a 2-core VM with other builds
# running: RSS 75-95 MiB, 16-51 windows evicted within a minute). The tests of the budget
# itself (test_persist, test_ps_status) run with the default.
TEST_MAX_MEMORY = "512M"


class Daemon:
    """A profqd on a private socket and state dir. Leaving the `with` block normally stops it
    (SIGTERM, exit 0 checked); leaving it by an exception kills it. Either way its directory
    goes, and its log is printed when a check failed while it ran."""

    def __init__(self, env, *args, frequency=999, window="2s", extra_env=None, state_dir=None,
                 max_memory=TEST_MAX_MEMORY):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="profq-test-")
        self.socket = os.path.join(self.dir, "profq.sock")
        # state_dir: one that outlives this daemon (restarts, offline queries).
        self.state = state_dir or os.path.join(self.dir, "state")
        self.killed = False
        self.done = False
        self.failures_before = failures()
        self.log = os.path.join(self.dir, "profqd.log")
        cmd = [env.profqd, "--socket", self.socket, "--state-dir", self.state,
               "--config", "/dev/null", "--frequency", str(frequency), "--window", window]
        if max_memory and "--max-memory" not in args:
            cmd += ["--max-memory", max_memory]
        cmd += list(args)
        penv = dict(os.environ)
        penv.update(self._sanitizer_env())
        penv.update(extra_env or {})
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=penv)
        _daemons.append(self)
        self.wait_ready()

    def _sanitizer_env(self):
        """An ASan build (-DASAN=ON) of profqd checks for leaks at exit. After a file is
        truncated under libdw's mapping, profqd abandons that binary's libdw handles on purpose
        (daemon/symbolize/dwarfinfo.h): those, allocated inside libdw and libelf, are not
        reported. LSAN_OPTIONS set by the caller wins."""
        try:
            with open(os.path.join(self.env.build, "CMakeCache.txt")) as f:
                if "ASAN:BOOL=ON" not in f.read():
                    return {}
        except OSError:
            return {}
        if "LSAN_OPTIONS" in os.environ:
            return {}
        supp = os.path.join(self.dir, "lsan.supp")
        with open(supp, "w") as f:
            f.write("leak:libdw.so\nleak:libelf.so\n")
        return {"LSAN_OPTIONS": f"suppressions={supp}"}

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"profqd exited with {self.proc.returncode} at start:\n{self.read_log()}")
            if os.path.exists(self.socket):
                rc, _, _ = self.profq("status", check_rc=False)
                if rc == 0:
                    return
            time.sleep(0.05)
        fail(f"profqd did not answer within {timeout}s:\n{self.read_log()}")

    def wait_caught_up(self, timeout=60):
        """Waits until profqd has taken in what it sampled at start (its reader's queue, less
        the empty chunks it keeps, under 1 MiB: about 60 samples with their stack copies): on
        a busy machine the first
        samples of every process (each binary symbolized for the first time) take it
        seconds, and a process is followed (its Python interpreter, say) only once its
        first sample is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mem = self.json("status")["memory"]
            if mem["queue"] - mem.get("queue_spare", 0) < (1 << 20):
                return
            time.sleep(0.1)
        print(f"note: profqd's queue did not empty within {timeout} s", file=sys.stderr)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def profq(self, *args, check_rc=True, timeout=120):
        cmd = [self.env.profq, "--socket", self.socket] + list(args)
        for attempt in range(3):
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            # profq waits 30 s for an answer. A query first takes in what was sampled since
            # the last tick, symbolizing binaries new to profqd: on a machine with more
            # runnable threads than CPUs, a large one (a compiler's) can take longer than
            # that. Asked again, profqd answers once it is through.
            if p.returncode != 3 or "timed out" not in p.stderr:
                break
            print(f"note: profqd took over 30 s to answer {' '.join(args)}; asking again",
                  file=sys.stderr)
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

    def _print_log_if_failed(self):
        if failures() > self.failures_before:
            print(f"profqd's log:\n{self.read_log()}", file=sys.stderr)

    def stop(self):
        """SIGTERM; fails the test unless it exits 0 (or was killed on purpose)."""
        if self.done:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.abandon()
                fail("profqd did not stop within 20 s of SIGTERM")
        rc = self.proc.returncode
        if rc != 0 and not self.killed:
            _report(f"profqd exited {rc} after SIGTERM")
        self._print_log_if_failed()
        self._remove()

    def abandon(self):
        """kill -9 and remove everything: the way out after a failure."""
        if self.done:
            return
        rc = self.proc.poll()
        if rc is not None and not self.killed:
            how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
            _report(f"profqd {self.proc.pid} had ended by itself ({how})")
        if rc is None:
            self.proc.kill()
            self.proc.wait()
        self._print_log_if_failed()
        self._remove()

    def _remove(self):
        self.done = True
        self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            if not isinstance(exc, (Fatal, SystemExit)):
                _report(f"{exc_type.__name__}: {exc}")
            self.abandon()
        return False


def run_workload(env, name, *args, output=False, timeout=120):
    """Runs a workload to completion; returns its pid (the workload prints it first), and with
    output=True also the rest of what it printed."""
    p = subprocess.run([env.workload(name)] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        fail(f"workload {name} {args} exited {p.returncode}: {p.stderr}")
    lines = p.stdout.splitlines()
    pid = int(lines[0])
    return (pid, lines[1:]) if output else pid


def rusage_of(lines):
    """(user, sys) seconds from split's line "user U sys S" (its last)."""
    words = next(line for line in reversed(lines) if line.startswith("user ")).split()
    return float(words[1]), float(words[3])


def seconds_of(lines):
    """{function: CPU seconds} from split's "work_a S work_b S ..." line."""
    words = next(line for line in lines if line.startswith("work_a ")).split()
    return {words[i]: float(words[i + 1]) for i in range(0, len(words), 2)}


def truth_of(lines):
    """{function: share of the measured CPU time} from split's "work_a S work_b S ..." line."""
    secs = seconds_of(lines)
    total = sum(secs.values()) or 1
    return {k: v / total for k, v in secs.items()}


class SplitTruth:
    """What the split workload measured of itself (its last two lines): shares of work_a,
    work_b and work_sys in the CPU time measured around every unit (`share`, 0..1), the
    seconds of that time (`in_units`, all of it inside run()), and the kernel's user + sys
    for the whole process (`cpu`); `outside` is the share of `cpu` spent outside the units
    (start-up, exit, the loop's own clock reads)."""

    def __init__(self, lines):
        self.seconds = seconds_of(lines)
        self.in_units = sum(self.seconds.values())
        self.share = {k: v / (self.in_units or 1) for k, v in self.seconds.items()}
        self.user, self.sys = rusage_of(lines)
        self.cpu = self.user + self.sys
        self.in_units_share = min(self.in_units / self.cpu, 1.0) if self.cpu > 0 else 0
        self.outside = 1 - self.in_units_share

    def pct(self, function):
        """A function's share of the units' CPU time, in percent."""
        return 100 * self.share[function]

    def of_process(self, function):
        """A function's share of the process's CPU time (what a sample share estimates), in
        percent: its time in the units out of the kernel's user + sys."""
        return 100 * self.seconds[function] / self.cpu if self.cpu > 0 else 0


def run_two_programs(env):
    """A shell that runs the cxx workload, then split (1 s each): a process tree of three
    names. Returns (cxx's pid, the shell's pid)."""
    out = subprocess.run(["sh", "-c", f"{env.workload('cxx')} --seconds 1 && "
                          f"{env.workload('split')} --seconds 1 --a 70 >/dev/null; echo $$"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    return int(out[0]), int(out[-1])


def start_workload(env, name, *args):
    """Starts a workload (killed when the test ends if still running); returns (Popen, pid)."""
    p = popen([env.workload(name)] + [str(a) for a in args], stdout=subprocess.PIPE, text=True)
    pid = int(p.stdout.readline())
    return p, pid


def row(answer, function):
    """The top row of a function, or None."""
    for r in answer["rows"]:
        if r["function"] == function:
            return r
    return None


def kernel_leaf_pct(top):
    """The share (percent) of a top answer's samples whose leaf is a kernel frame. The CPU time
    a workload measures around its own work includes the interrupts and softirqs that came
    while it ran (the kernel charges them to the running task); their samples end in kernel
    frames, not in the workload's function. A top answer must list all rows (-n large)."""
    n = top["samples"] or 1
    return 100 * sum(r["self_samples"] for r in top["rows"] if r.get("kernel")) / n


def near(value, want, tolerance):
    return value is not None and abs(value - want) <= tolerance


def share_error(p, n):
    """Standard error of a share p (0..1) estimated from n independent samples."""
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / max(n, 1))


def share_tolerance(p, n, n_ref=None, z=Z, pct=True):
    """How far a share estimated from n samples may stray from p: z standard errors, with those
    of the reference when it is itself estimated from n_ref samples, and at least one sample's
    worth (a share is a whole number of samples). In percentage points unless pct=False."""
    var = share_error(p, n) ** 2 + (share_error(p, n_ref) ** 2 if n_ref else 0)
    tol = max(z * math.sqrt(var), 1 / max(n, 1))
    return 100 * tol if pct else tol


def count_tolerance(expected, z=Z):
    """How far a count of independent events may stray from its expectation (Poisson)."""
    return z * math.sqrt(max(expected, 1))


def steal_s():
    """CPU time the hypervisor took from this machine's CPUs so far (/proc/stat "steal", all
    CPUs): while a CPU is not running, the timer behind cpu-clock samples cannot fire, and the
    periods it missed are not sampled."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def sample_bounds(cpu, frequency, lost=0, steal=0.0):
    """(low, high): how many samples a process that used `cpu` seconds should have at
    `frequency`: Poisson bounds at worst, less what was lost (status "lost") and what the
    hypervisor's steal time may have kept from being sampled."""
    want = cpu * frequency
    tol = count_tolerance(want)
    return want - tol - lost - steal * frequency, want + tol


def kernel_hz():
    """The scheduler tick rate that the kernel's user/sys split is sampled at (CONFIG_HZ), from
    /proc/config.gz or /boot/config-*; 100 (the lowest, the widest error) when neither says."""
    import gzip
    import platform
    for path, opener in (("/proc/config.gz", gzip.open),
                         (f"/boot/config-{platform.release()}", open)):
        try:
            with opener(path, "rt") as f:
                for line in f:
                    if line.startswith("CONFIG_HZ="):
                        return int(line.split("=")[1])
        except OSError:
            pass
    return 100
