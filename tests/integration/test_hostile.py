#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile files: profqd (root) reads the binaries and debug files that processes point at, and
a local user controls some of them. A user created for the test runs workloads that point the
daemon (--max-memory 64M --frequency 499 --window 1) at crafted files:

- a stripped binary whose .gnu_debuglink names a root-only debug file by absolute path (CRC 0),
  or by a plain name that is a symlink to it: the user's profile shows none of its names;
- a debuglink to a sparse 8 GiB file (no build id, so only a CRC could match);
- 20 000 symbols over a 16 MiB string table without NULs;
- debug sections compressed to a few MiB that inflate to 1 GiB each (refused, counted);
- 8M section headers by extended numbering in a 24 KiB file;
- a binary copied over in place (same inode) between two runs: each run named by its build;
- a shared library truncated in a loop while the daemon walks its big compile unit (SIGBUS).

Throughout: profqd stays up, `profq status` answers within 100 ms (a second in the truncation
loop) of what a baseline phase measured on this machine just before (ordinary workloads, one
in an intact copy of the big library, under the same load) and of the scheduling delays met
(check_latency: what other jobs' libraries cost the daemon is allowed for apart), its
accounted memory stays within --max-memory and what it does not account for grows by at most
16 MiB over that baseline, and the samples it could not take in time are counted (status:
lost).

PROFQ_HOSTILE_TRACE=FILE writes every status poll (round trip, memory parts, RSS) to FILE as
JSON lines, and the daemon's smaps at the baseline and at its RSS peak beside it."""

import json
import os
import pwd
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Env, check, fail, require_bpf, skip, wait_for  # noqa: E402
from hostile_big import DLOPEN_C, big_cu_source  # noqa: E402

MAX_MEMORY = 64 << 20
STATUS_MAX_S = 0.100

SPIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void FN(double end)
{
	volatile unsigned long x = 0;

	while (now() < end)
		for (int i = 0; i < 100000; i++)
			x += i;
}

int main(int argc, char **argv)
{
	printf("%d\n", getpid());
	fflush(stdout);
	FN(now() + atof(argv[1]));
	return 0;
}
"""

# Maps each file named on the command line executable (as a library would be) before anything
# else, so that its first sample finds them mapped, then spins: the daemon reads every
# executable mapping of a sampled process.
MAPPER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	volatile unsigned long x = 0;

	for (int i = 2; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0 ||
		    mmap(NULL, st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			return 1;
	}
	printf("%d\n", getpid());
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 100000; i++)
			x += i;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while (b.tv_sec - a.tv_sec < atoi(argv[1]));
	return 0;
}
"""


def run(*cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        fail(f"{' '.join(str(c) for c in cmd)} exited {p.returncode}: {p.stderr}")
    return p.stdout


class User:
    """A user made for the test, deleted on exit."""

    def __init__(self):
        self.name = f"pqh{secrets.token_hex(3)}"

    def __enter__(self):
        run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", self.name)
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        return self

    def __exit__(self, *exc):
        for _ in range(20):
            p = subprocess.run(["userdel", self.name], capture_output=True, text=True)
            if p.returncode == 0:
                break
            time.sleep(0.25)
        else:
            print(f"warning: userdel {self.name}: {p.stderr.strip()}", file=sys.stderr)
        return False

    def popen(self, *cmd):
        p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, text=True,
                             user=self.uid, group=self.gid, extra_groups=[])
        line = p.stdout.readline()
        if not line.strip():
            p.wait()
            fail(f"{cmd} as the user printed no pid (exit {p.returncode})")
        return p, int(line)

    def run(self, *cmd):
        p, pid = self.popen(*cmd)
        p.stdout.read()
        p.wait()
        return pid


class Monitor(threading.Thread):
    """Asks for status every 50 ms until stopped; each poll records the round trip, how late
    the poll before it woke from its sleep, the daemon's RSS parts and its memory report."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.d = daemon
        self.stop_flag = threading.Event()
        self.failures = []
        self.phase = "start"
        self.polls = []
        self.worst_mem = 0
        self.trace = os.environ.get("PROFQ_HOSTILE_TRACE")
        if self.trace:
            open(self.trace, "w").close()
        self.smaps_peak = 0

    def rss_parts(self):
        fields = {}
        with open(f"/proc/{self.d.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssShmem", "RssFile"):
                    fields[key] = int(value.split()[0]) * 1024
        return fields

    def cpu_ticks(self):
        """User + system clock ticks of each of the daemon's threads, by tid."""
        out = {}
        base = f"/proc/{self.d.proc.pid}/task"
        try:
            for tid in os.listdir(base):
                with open(f"{base}/{tid}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
                out[int(tid)] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
        return out

    def status(self):
        # The daemon's own answer time, on the socket (the CLI's start-up on a loaded machine
        # is not the daemon's).
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(30)
            c.connect(self.d.socket)
            c.sendall(b'{"command":"status"}\n')
            with open("/proc/loadavg") as f:
                self.running = int(f.read().split()[3].partition("/")[0])
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                answer += chunk
        return json.loads(answer)

    def dump_smaps(self, name):
        if not self.trace:
            return
        try:
            shutil.copyfile(f"/proc/{self.d.proc.pid}/smaps", f"{self.trace}.{name}.smaps")
        except OSError:
            pass

    def run(self):
        late = 0.0
        while not self.stop_flag.is_set():
            if self.d.proc.poll() is not None:
                self.failures.append(f"profqd exited {self.d.proc.returncode}")
                return
            phase = self.phase
            cpu0 = self.cpu_ticks()
            t0 = time.monotonic()
            st = None
            try:
                st = self.status()
                self.worst_mem = max(self.worst_mem, st["memory_bytes"])
            except (OSError, ValueError, KeyError) as e:
                self.failures.append(f"status: {e}")
            took = time.monotonic() - t0
            cpu1 = self.cpu_ticks()
            mem = st.get("memory", {}) if st else {}
            poll = {"phase": phase, "t": t0, "took": took, "late": late,
                    "main_cpu_s": (cpu1.get(self.d.proc.pid, 0) - cpu0.get(self.d.proc.pid, 0))
                    / os.sysconf("SC_CLK_TCK"),
                    "queue": mem.get("queue", 0), "queue_peak": mem.get("queue_peak", 0),
                    "mem": mem, "running": getattr(self, "running", 0),
                    "memory_bytes": st.get("memory_bytes", 0) if st else 0,
                    "largest": st["symbolizer"].get("largest", []) if st else []}
            try:
                poll.update(self.rss_parts())
            except OSError:
                pass
            poll["rss"] = poll.get("RssAnon", 0) + poll.get("RssShmem", 0)
            self.polls.append(poll)
            if self.trace:
                with open(self.trace, "a") as f:
                    f.write(json.dumps(poll) + "\n")
            if self.trace and poll["rss"] > self.smaps_peak:
                self.smaps_peak = poll["rss"]
                self.dump_smaps("peak")
            # How late the sleep wakes: the wait for a CPU (and for the GIL) that any thread
            # of this machine met just then, the daemon's included.
            t1 = time.monotonic()
            time.sleep(0.05)
            late = time.monotonic() - t1 - 0.05

    def stop(self):
        self.stop_flag.set()
        self.join()

    def of(self, phases):
        return [p for p in self.polls if p["phase"] in phases]

    @property
    def worst_by_phase(self):
        """{phase: the slowest status round trip in it}."""
        worst = {}
        for p in self.polls:
            worst[p["phase"]] = max(worst.get(p["phase"], 0), p["took"])
        return worst


def debuglink_section(name, crc):
    data = name.encode() + b"\0"
    data += b"\0" * ((4 - len(data) % 4) % 4)
    return data + struct.pack("<I", crc)


def with_debuglink(src, out, name, crc, tmp, strip_build_id=False):
    """A stripped copy of src whose .gnu_debuglink says what its owner wants."""
    blob = os.path.join(tmp, "debuglink.bin")
    with open(blob, "wb") as f:
        f.write(debuglink_section(name, crc))
    args = ["objcopy", "--strip-all", "--remove-section", ".gnu_debuglink"]
    if strip_build_id:
        args += ["--remove-section", ".note.gnu.build-id"]
    run(*args, "--add-section", f".gnu_debuglink={blob}", src, out)


def craft_elf(path, sections, fix=None):
    """An ELF64 x86-64 shared object: sections (name, type, flags, addr, data, link, info,
    entsize) in order, then .shstrtab, then the section headers. fix(ehdr, shdrs) may patch the
    headers (lists of fields). Returns the offsets of the section data."""
    shstr = b"\0"
    names, offs = [], []
    body = bytearray(b"\0" * 64)
    for name, typ, flags, addr, data, link, info, entsize in sections:
        names.append(len(shstr))
        shstr += name.encode() + b"\0"
        while len(body) % 8:
            body.append(0)
        offs.append(len(body))
        body += data
    names.append(len(shstr))
    shstr += b".shstrtab\0"
    shstr_off = len(body)
    body += shstr
    while len(body) % 8:
        body.append(0)
    shoff = len(body)
    shdrs = [[0] * 10]
    for i, (name, typ, flags, addr, data, link, info, entsize) in enumerate(sections):
        shdrs.append([names[i], typ, flags, addr, offs[i], len(data), link, info, 1, entsize])
    shdrs.append([names[-1], 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0])
    ehdr = [3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, len(shdrs), len(shdrs) - 1]
    if fix:
        fix(ehdr, shdrs)
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    body[0:64] = ident + struct.pack("<HHIQQQIHHHHHH", *ehdr)
    for h in shdrs:
        body += struct.pack("<IIQQQQIIQQ", *h)
    with open(path, "wb") as f:
        f.write(body)
    return offs


def make_unterminated_names(path):
    n, size = 20000, 16 << 20
    syms = bytearray(24)
    for i in range(1, n + 1):
        syms += struct.pack("<IBBHQQ", size - (8 << 20) + i, 0x12, 0, 1, 0x1000 + 16 * i, 16)
    craft_elf(path, [(".text", 1, 6, 0x1000, b"\0" * ((n + 2) * 16), 0, 0, 0),
                     (".symtab", 2, 0, 0, bytes(syms), 3, 1, 24),
                     (".strtab", 3, 0, 0, b"\0" + b"A" * (size - 1), 0, 0, 0)])


def make_compressed_bomb(path):
    inflated = 1 << 30
    z = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    stream = b"".join(z.compress(chunk) for _ in range(inflated >> 20)) + z.flush()
    data = struct.pack("<IIQQ", 1, 0, inflated, 1) + stream
    syms = bytes(24) + struct.pack("<IBBHQQ", 1, 0x12, 0, 1, 0x1000, 0x100)
    craft_elf(path, [(".text", 1, 6, 0x1000, b"\0" * 0x1000, 0, 0, 0),
                     (".symtab", 2, 0, 0, syms, 3, 1, 24),
                     (".strtab", 3, 0, 0, b"\0bomb_func\0", 0, 0, 0),
                     (".debug_info", 1, 0x800, 0, data, 0, 0, 0),
                     (".debug_abbrev", 1, 0x800, 0, data, 0, 0, 0),
                     (".debug_line", 1, 0x800, 0, data, 0, 0, 0)])


def make_many_sections(path):
    def fix(ehdr, shdrs):
        ehdr[11] = 0          # e_shnum: see section 0
        shdrs[0][5] = 8 << 20  # section 0's sh_size: 8M sections

    craft_elf(path, [(".text", 1, 6, 0x1000, b"\0" * (24 << 10), 0, 0, 0)], fix)


def top_functions(d, pid, rows=False):
    # The samples are in once the window they fell in was drained (later on a loaded machine).
    for _ in range(40):
        rc, out, _ = d.profq("top", "--pid", str(pid), "--since", "10m", "-n", "1000", "--json",
                             check_rc=False)
        if rc == 0:
            answer = json.loads(out)["rows"]
            return answer if rows else [r.get("function") or "" for r in answer]
        time.sleep(0.5)
    st = d.json("status")
    fail(f"no samples of pid {pid} in 20 s (profq top: {rc}, daemon: samples {st['samples']}, "
         f"lost {st['lost']})")


# The phases of crafted files, and their bound beyond the baseline: what the daemon may spend on
# one of them before it answers (the truncation phase has its own, check_latency).
CRAFTED_PHASES = ("debuglink", "sparse", "crafted", "replaced")
TRUNCATE_ALLOWANCE_S = 1.0


# The parts of its memory the daemon accounts for (status memory.*, the queue between its
# reader thread and its main loop included); --max-memory bounds their sum (memory_bytes).
ACCOUNTED = ("store", "symbolizer", "processes", "perf_maps", "stack_cache", "mapping_log",
             "queue")


def own_rss(p):
    """The daemon's resident memory (anonymous and shared) that it does not account for: libdw's
    and libelf's allocations, malloc's arenas, anything a hostile file could make it hold
    unseen. The accounted parts follow the whole machine (the daemon names every process: the
    symbolizer held 17-44 MiB in one run as other jobs started and ended compilers and
    Pythons; the queue grows while a busy machine slows the main loop) and are bounded by
    --max-memory, checked on their own."""
    return p["rss"] - sum(p["mem"].get(k, 0) for k in ACCOUNTED)


def summary(mon):
    for phase in dict.fromkeys(p["phase"] for p in mon.polls):
        ps = mon.of({phase})
        took = sorted(p["took"] for p in ps)
        worst = max(ps, key=lambda p: p["took"])
        print(f"{phase}: {len(ps)} polls, status median {took[len(took) // 2] * 1000:.0f} ms, "
              f"worst {took[-1] * 1000:.0f} ms (daemon main thread "
              f"{worst['main_cpu_s'] * 1000:.0f} ms of CPU in it), "
              f"sleep late at worst {max(p['late'] for p in ps) * 1000:.0f} ms; "
              f"RSS at most {max(p['rss'] for p in ps) >> 20} MiB, unaccounted "
              f"{max(own_rss(p) for p in ps) / 2**20:.1f} MiB, symbolizer at most "
              f"{max(p['mem'].get('symbolizer', 0) for p in ps) / 2**20:.1f} MiB, queue at most "
              f"{max(p['queue'] for p in ps) / 2**20:.1f} MiB, file pages at most "
              f"{max(p.get('RssFile', 0) for p in ps) >> 20} MiB")


def module_sizes(p):
    return {m["module"]: m["symbols"] + m["cfi"] + m["dwarf"] + m["cache"]
            for m in p["largest"]}


def mark_other_libraries(mon, ours):
    """Marks the polls during which the daemon built the tables of a large binary that is not
    one of the test's files (ours: their names): one that entered the status's five largest
    above the smallest of them at the poll before, or grew there by 1 MiB. The daemon names
    every process of the machine, and reads a library's symbol and unwind tables and opens its
    DWARF on its loop, which status waits for: other jobs starting libLLVM or a libpython were
    seen to hold status 0.6-2.2 s under load (0.4-0.7 s of the daemon's CPU), no file of this
    test involved."""
    prev = {}
    for p in mon.polls:
        sizes = module_sizes(p)
        floor = min(prev.values()) if len(prev) >= 5 else 0
        p["other"] = sorted(m for m, n in sizes.items() if m not in ours and (
            n >= prev.get(m, 0) + (1 << 20) if m in prev else n > floor and n >= 1 << 20))
        prev = sizes


def check_latency(mon, ours):
    mark_other_libraries(mon, ours)
    base = [p for p in mon.of({"baseline"}) if not p["other"]] or mon.of({"baseline"})
    base_worst = max(p["took"] for p in base)
    for what, phases, allowance in (
            ("the crafted files", CRAFTED_PHASES, STATUS_MAX_S),
            ("libraries were indexed and truncated", ("truncate",), TRUNCATE_ALLOWANCE_S)):
        ps = mon.of(set(phases))
        late = max(p["late"] for p in ps)
        others = [p for p in ps if p["other"]]
        # What the machine explains, measured: the baseline's worst round trip (status behind
        # ordinary batches, the big library's intact copy among them, under the same load) twice,
        # since the phases poll ten times as often as the baseline and meet more of its tail;
        # and the worst wait for a CPU this phase met (how late our 50 ms sleep woke), once
        # for the daemon's wake-up and once for ours. What is left is the daemon's own, its
        # allowance. The crafted files' bound came to 0.2-0.9 s in the runs measured, 1.7 s at a
        # load average of 12: a stall of 2 s on a crafted file fails at these loads.
        bound = allowance + 2 * base_worst + 2 * late
        worst = max((p["took"] for p in ps if not p["other"]), default=0)
        check(worst < bound,
              f"status answered while {what} in {worst * 1000:.0f} ms at worst, under "
              f"{allowance * 1000:.0f} ms + twice the baseline's worst "
              f"{base_worst * 1000:.0f} ms + twice the worst scheduling delay "
              f"{late * 1000:.0f} ms = {bound * 1000:.0f} ms")
        # A poll that met another job's library may also take the CPU time the daemon's loop
        # spent in it, stretched by the CPU's share each runnable thread had (runnable threads
        # per CPU, /proc/loadavg, as the request was sent): indexing is work, not waiting.
        # A crafted file the daemon stalls on without working (blocked, sleeping) still fails
        # there; one it burns seconds of CPU on is missed only in the polls that also met
        # another library, at most a quarter of them (a machine where it is most polls leaves
        # nothing to check).
        ncpu = os.cpu_count() or 1
        over = None
        for p in others:
            p["allowed"] = bound + p["main_cpu_s"] * max(1.0, p["running"] / ncpu)
            print(f"{p['phase']}: status took {p['took'] * 1000:.0f} ms (of "
                  f"{p['allowed'] * 1000:.0f} allowed: its loop's {p['main_cpu_s'] * 1000:.0f} "
                  f"ms of CPU, {p['running']} threads runnable) while the daemon read "
                  f"{', '.join(p['other'])}")
            if over is None or p["took"] - p["allowed"] > over["took"] - over["allowed"]:
                over = p
        check(over is None or over["took"] < over["allowed"],
              f"status answered while {what} and other jobs' libraries were read within the "
              f"bound plus the daemon's CPU time stretched by the load" + (
                  f" (worst {over['took'] * 1000:.0f} ms of {over['allowed'] * 1000:.0f})"
                  if over else ""))
        check(len(others) * 4 < len(ps),
              f"fewer than a quarter of the polls while {what} met other jobs' libraries "
              f"({len(others)} of {len(ps)})")


def check_rss(mon, rounds):
    # The baseline measured the same way, at its worst: status and RSS are read one after the
    # other, so a poll may see memory the symbolizer freed or took in between.
    base = max(own_rss(p) for p in mon.of({"baseline"}))
    crafted = max(own_rss(p) for p in mon.of(set(CRAFTED_PHASES)))
    check(crafted <= base + (16 << 20),
          f"unaccounted RSS (anonymous + shared less the accounted parts) grew by at most "
          f"16 MiB over the crafted files ({base / 2**20:.1f} -> {crafted / 2**20:.1f} MiB)")
    # Each truncation round is a new library whose libdw state may be abandoned at a fault
    # (bounded: no DWARF for users' files after 16 faults), 8 MiB a round at most.
    worst = max(own_rss(p) for p in mon.polls)
    check(worst <= base + (16 << 20) + rounds * (8 << 20),
          f"unaccounted RSS grew by at most 16 MiB + 8 MiB for each of the {rounds} "
          f"truncation rounds ({base / 2**20:.1f} -> {worst / 2**20:.1f} MiB)")


def main():
    require_bpf()
    if not shutil.which("useradd") or not shutil.which("cc") or not shutil.which("objcopy"):
        skip("needs useradd, cc and objcopy")
    env = Env()
    tok = secrets.token_hex(3)
    top_dir = tempfile.mkdtemp(prefix="profq-hostile-")
    os.chmod(top_dir, 0o755)
    try:
        with User() as user, Daemon(env, "--max-memory", "64M", frequency=499,
                                    window="1s") as d:
            scenarios(env, d, user, top_dir, tok)
    finally:
        shutil.rmtree(top_dir, ignore_errors=True)


def scenarios(env, d, user, top_dir, tok):
    root_dir = os.path.join(top_dir, "root")
    os.mkdir(root_dir, 0o700)
    udir = os.path.join(top_dir, "user")
    os.mkdir(udir, 0o755)
    os.chown(udir, user.uid, user.gid)
    src = os.path.join(top_dir, "spin.c")
    with open(src, "w") as f:
        f.write(SPIN_C)

    def build(out, fn, *flags):
        run("cc", "-O1", "-g", f"-DFN={fn}", *flags, "-o", out, src)

    def give(path, mode=0o755):
        os.chown(path, user.uid, user.gid)
        os.chmod(path, mode)

    # Everything built first (the compiler would compete with the daemon for the CPU).
    secret_fn = f"secret_fn_{tok}"
    secret = os.path.join(root_dir, "secret")
    build(secret, secret_fn)
    a_fn, b_fn = f"alpha_{tok}", f"beta_{tok}"
    build_a, build_b = os.path.join(top_dir, "build-a"), os.path.join(top_dir, "build-b")
    build(build_a, a_fn)
    build(build_b, b_fn, "-DEXTRA=1", "-fno-inline")
    warm = os.path.join(udir, "warm")
    build(warm, f"warm_{tok}")
    give(warm)
    # Built with the project when it can be (not under sanitizers); else here.
    lib_built = os.path.join(env.build, "tests", "integration", "libhostile-big.so")
    if not os.path.exists(lib_built):
        lib_src = os.path.join(top_dir, "big.c")
        with open(lib_src, "w") as f:
            f.write(big_cu_source())
        lib_built = os.path.join(top_dir, "libbig.so")
        run("cc", "-O1", "-g", "-shared", "-fPIC", "-o", lib_built, lib_src, timeout=600)
    dl_src = os.path.join(top_dir, "dl.c")
    with open(dl_src, "w") as f:
        f.write(DLOPEN_C)
    dl = os.path.join(udir, "dl")
    run("cc", "-O1", "-o", dl, dl_src, "-ldl")
    give(dl)
    mapper_src = os.path.join(top_dir, "mapper.c")
    with open(mapper_src, "w") as f:
        f.write(MAPPER_C)
    mapper = os.path.join(udir, "mapper")
    run("cc", "-O1", "-o", mapper, mapper_src)
    give(mapper)

    names = os.path.join(udir, "names.so")
    make_unterminated_names(names)
    bomb = os.path.join(udir, "bomb.so")
    make_compressed_bomb(bomb)
    many = os.path.join(udir, "many.so")
    make_many_sections(many)

    # What any first profile costs the daemon (kallsyms, libc's DWARF), before the clock runs.
    check(f"warm_{tok}" in top_functions(d, user.run(warm, 2)), "a plain program is named")

    # The baseline: status asked while the daemon names ordinary workloads, one of them in an
    # intact copy of the big library (its compile unit indexed by the DWARF worker, as in the
    # truncation rounds but untruncated), under whatever else this machine
    # runs now. The bounds below are on what the hostile files add to it.
    mon = Monitor(d)
    mon.phase = "baseline"
    mon.start()
    t_end = time.monotonic() + 30
    base_lib = os.path.join(udir, "libbase.so")
    shutil.copyfile(lib_built, base_lib)
    give(base_lib, 0o644)
    p, base_pid = user.popen(dl, base_lib, 3)
    user.run(warm, 2)
    p.stdout.read()
    p.wait()
    rows = [r for r in top_functions(d, base_pid, rows=True)
            if (r.get("function") or "")[:1] == "f" and r["function"][1:].isdigit()]
    check(rows, f"the intact big library is named: {top_functions(d, base_pid)[:5]}")
    # Its compile unit, 170,000 DIEs, is indexed by the DWARF worker process; its functions are
    # named from the symbol table until the answer is in, and with their source files then.
    sym = d.json("status")["symbolizer"]
    check(sym.get("dwarf_worker_requests", 0) > 0 and sym.get("dwarf_worker_died", 1) == 0 and
          any(r.get("file") for r in rows),
          f"the big compile unit was indexed by the worker (requests "
          f"{sym.get('dwarf_worker_requests')}, lookups meanwhile {sym.get('dwarf_pending')}) "
          f"and then gave source files: {[(r['function'], r.get('file')) for r in rows[:3]]}")
    while len(mon.of({"baseline"})) < 40 and time.monotonic() < t_end:
        time.sleep(0.1)
    mon.dump_smaps("baseline")

    # 1. A debuglink to a root-only debug file.
    mon.phase = "debuglink"
    run("objcopy", "--only-keep-debug", secret, secret + ".debug")
    os.chmod(secret + ".debug", 0o600)
    app1 = os.path.join(udir, "app1")
    with_debuglink(secret, app1, secret + ".debug", 0, top_dir)
    app2 = os.path.join(udir, "app2")
    with_debuglink(secret, app2, "app2.debug", 0, top_dir)
    os.symlink(secret + ".debug", os.path.join(udir, "app2.debug"))
    app3 = os.path.join(udir, "app3")
    with_debuglink(secret, app3, "../root/secret.debug", 0, top_dir)
    for p in (app1, app2, app3):
        give(p)
    pids = [user.run(p, 2) for p in (app1, app2, app3)]
    time.sleep(2.5)
    for p, pid in zip(("absolute path", "symlink", "../"), pids):
        fns = top_functions(d, pid)
        check(fns, f"the user's stripped binary (debuglink by {p}) was sampled")
        check(not any(secret_fn in f for f in fns),
              f"no name from the root-only debug file (debuglink by {p}): {fns[:5]}")

    # 2. A debuglink to a sparse 8 GiB file, no build id: not read for a CRC.
    mon.phase = "sparse"
    app4 = os.path.join(udir, "app4")
    with_debuglink(secret, app4, "big.debug", 0x12345678, top_dir, strip_build_id=True)
    give(app4)
    big = os.path.join(udir, "big.debug")
    with open(big, "wb") as f:
        f.truncate(8 << 30)
    give(big, 0o644)
    user.run(app4, 2)

    # 3, 4, 5. Crafted files mapped executable by a process of the user.
    mon.phase = "crafted"
    for p in (names, bomb, many):
        give(p, 0o644)
    mpid = user.run(mapper, 4, names, bomb, many)
    time.sleep(2.5)
    check(top_functions(d, mpid), "the process mapping the crafted files was sampled")
    # The DWARF worker takes the bomb when it gets to it: on a busy machine after the above.
    refused = wait_for(lambda: d.json("status")["symbolizer"]["dwarf_refused"], 30)
    check(refused >= 1, f"the compressed bomb's DWARF was refused and counted "
          f"(dwarf_refused {refused})")

    # 6. Two builds of one program, the second copied over the first (same inode).
    mon.phase = "replaced"
    prog = os.path.join(udir, "prog")
    shutil.copyfile(build_a, prog)
    give(prog)
    ino = os.stat(prog).st_ino
    pid_a = user.run(prog, 2)
    time.sleep(1.5)
    shutil.copyfile(build_b, prog)  # opens the existing file with O_TRUNC: same inode
    check(os.stat(prog).st_ino == ino, "the second build was copied over the first in place")
    pid_b = user.run(prog, 2)
    time.sleep(2.5)
    fa, fb = top_functions(d, pid_a), top_functions(d, pid_b)
    check(a_fn in fa, f"the first build's run is named by the first build: {fa[:5]}")
    check(b_fn in fb and a_fn not in fb,
          f"the second build's run is named by the second build: {fb[:5]}")

    # 7. A library truncated while the daemon walks its big compile unit.
    faults = 0
    mon.phase = "truncate"
    for attempt in range(12):
        lib = os.path.join(udir, f"libbig{attempt}.so")
        shutil.copyfile(lib_built, lib)
        give(lib, 0o644)
        p, _ = user.popen(dl, lib, 3)
        # Truncate and restore in a loop while the daemon drains and symbolizes the samples.
        with open(lib_built, "rb") as f:
            content = f.read()
        end = time.monotonic() + 3
        while time.monotonic() < end:
            with open(lib, "r+b") as f:
                f.truncate(4096)
            time.sleep(0.002)
            with open(lib, "r+b") as f:
                f.write(content)
            time.sleep(0.02)
        p.kill()
        p.wait()
        # Caught in the worker (its libdw's faults), or the worker died of one.
        sym = d.json("status")["symbolizer"]
        faults = sym.get("dwarf_faults", 0) + sym.get("dwarf_worker_died", 0)
        if faults:
            break
    check(d.proc.poll() is None, f"profqd alive after the truncation loops ({attempt + 1})")
    print(f"dwarf_faults + dwarf_worker_died after {attempt + 1} rounds: {faults}")

    mon.stop()
    st = d.json("status")
    check(not mon.failures,
          f"status answered throughout ({len(mon.polls)} polls): {mon.failures}")
    summary(mon)
    check_latency(mon, set(os.listdir(udir)))
    check(mon.worst_mem <= MAX_MEMORY,
          f"memory within --max-memory throughout (worst {mon.worst_mem >> 20} MiB)")
    check_rss(mon, attempt + 1)
    check("lost" in st and st["samples"] > 0,
          f"samples {st['samples']}, losses counted: lost {st['lost']}")
    print(json.dumps(st["symbolizer"], indent=1))


if __name__ == "__main__":
    main()
