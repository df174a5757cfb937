#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profqd as a systemd service (docs/profqd.8, SYSTEMD).

The installed unit: `cmake --install` puts profqd.service, the sysusers.d entry, the default
config and the man pages in place; `systemd-analyze verify` is silent about the unit;
`systemd-analyze security --offline=true` rates it no worse than EXPOSURE_MAX; the sysusers
entry creates the unit's user; the default config names every key of `profqd --help`, and
uncommented it is a config profqd accepts.

The notify protocol: with $NOTIFY_SOCKET on a datagram socket of ours, profqd sends READY=1
only once its query socket answers, WATCHDOG=1 well within $WATCHDOG_USEC (and none when the
watchdog is not for it), STATUS= lines with a plausible samples/s, STOPPING=1 at SIGTERM, all
from its main pid.

The restrictions: profqd run the way the unit runs it, as far as this machine can without
systemd as PID 1: as the unit's user (or a stand-in uid when that user does not exist here),
with exactly its ambient and bounding capabilities, no new privileges, the unit's system call
filter (built from `systemd-analyze syscall-filter`, with RestrictAddressFamilies= and
MemoryDenyWriteExecute=), a read-only root but for its runtime and state directories, and
network and IPC namespaces of its own (PrivateNetwork=, PrivateIPC=). It
must sample, symbolize what each capability is there for (another user's binary in a private
directory, a deleted binary, a binary in another mount namespace, kernel frames), persist
windows, notify, and stop cleanly. The same run with only CAP_BPF and CAP_PERFMON shows that
those probes do detect a missing capability."""

import atexit
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from harness import Daemon, Env, check, fail, popen, require_bpf, skip

# `systemd-analyze security --offline=true` of the installed unit, measured with systemd 252
# when the unit was written. Lower it when the unit gets tighter; never raise it without a
# measured reason in the unit's comments.
EXPOSURE_MAX = 2.1
WORKLOAD_SECONDS = 5
# Modest rates: what is checked is the protocol and the privileges, and a daemon starved of CPU
# by other work on a small machine stalls its loop at 999 Hz.
NOTIFY_HZ = 99
RESTRICTED_HZ = 199

env = Env()
analyze = shutil.which("systemd-analyze")
if not analyze:
    skip("systemd-analyze is not installed (package systemd)")
manifest = os.path.join(env.build, "install_manifest.txt")
if not os.access(manifest if os.path.exists(manifest) else env.build, os.W_OK):
    skip(f"cannot write {manifest}, which cmake --install writes")
TMP = tempfile.mkdtemp(prefix="profq-systemd-", dir="/run" if os.access("/run", os.W_OK)
                       else None)
os.chmod(TMP, 0o755)
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
# The daemons' private socket and state directories go here too (the harness uses tempfile).
tempfile.tempdir = TMP


def run(*cmd, env_extra=None, timeout=60):
    penv = dict(os.environ)
    penv.update(env_extra or {})
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       env=penv)
    return p.returncode, p.stdout, p.stderr


def cmake_command():
    """The cmake that configured the build tree."""
    with open(os.path.join(env.build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith("CMAKE_COMMAND:"):
                return line.split("=", 1)[1].strip()
    return shutil.which("cmake") or fail("cmake not found")


def parse_unit(path):
    """[(section, key, value)] in file order; comments are kept apart as one text."""
    entries, comments, section = [], [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(("#", ";")):
                comments.append(line)
            elif line.startswith("["):
                section = line.strip("[]")
            elif "=" in line:
                k, v = line.split("=", 1)
                entries.append((section, k.strip(), v.strip()))
    return entries, "\n".join(comments)


def size_bytes(s):
    m = re.fullmatch(r"(\d+)([KMGT]?)", s)
    if not m:
        fail(f"not a size: {s!r}")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2) or " "))


# --- The installed unit ---------------------------------------------------------------------

prefix = os.path.join(TMP, "inst")
rc, out, err = run(cmake_command(), "--install", env.build, "--prefix", prefix)
check(rc == 0, f"cmake --install --prefix {prefix} {err.strip()}")
files = {
    "unit": "lib/systemd/system/profqd.service",
    "sysusers": "lib/sysusers.d/profq.conf",
    "conf": "etc/profq/profqd.conf",
    "profq.1": "share/man/man1/profq.1",
    "profqd.8": "share/man/man8/profqd.8",
    "profqd": "sbin/profqd",
    "profq": "bin/profq",
}
for name, rel in files.items():
    check(os.path.isfile(os.path.join(prefix, rel)), f"installed {rel}")
inst = {name: os.path.join(prefix, rel) for name, rel in files.items()}
unit_entries, unit_comments = parse_unit(inst["unit"])
svc = {}
for section, k, v in unit_entries:
    if section == "Service":
        svc.setdefault(k, []).append(v)


def one(key):
    return svc.get(key, [""])[-1]


check(one("ExecStart").split()[:3] == [inst["profqd"], "--config", inst["conf"]],
      f"ExecStart runs the installed profqd with the installed config ({one('ExecStart')})")

# verify checks directives, the ExecStart binary and that the Documentation= pages resolve.
rc, out, err = run(analyze, "verify", inst["unit"],
                   env_extra={"MANPATH": os.path.join(prefix, "share", "man") + ":"})
check(rc == 0 and not (out + err).strip(),
      f"systemd-analyze verify: no complaint (rc {rc}) {(out + err).strip()}")

rc, out, err = run(analyze, "security", "--offline=true", inst["unit"])
m = re.search(r"Overall exposure level for profqd\.service: ([\d.]+)", out + err)
if not m:
    fail(f"no exposure level in systemd-analyze security output:\n{out}{err}")
exposure = float(m.group(1))
check(exposure <= EXPOSURE_MAX,
      f"systemd-analyze security --offline=true: exposure {exposure} <= {EXPOSURE_MAX}")
check(re.search(r"✓ User=/DynamicUser=", out) is not None, "the analysis sees a non-root user")

# What docs/profqd.8 (SYSTEMD) says of the unit, and the reasons for what is left out.
check(one("Type") == "notify" and one("Restart") == "on-failure" and one("WatchdogSec"),
      "Type=notify, Restart=on-failure, WatchdogSec= set")
check(one("RuntimeDirectory") == "profq" and one("StateDirectory") == "profq",
      "RuntimeDirectory=profq and StateDirectory=profq, the defaults of --socket/--state-dir")
bounding = set(one("CapabilityBoundingSet").split())
ambient = set(one("AmbientCapabilities").split())
check(bounding and bounding == ambient and "CAP_SYS_ADMIN" not in bounding,
      f"ambient = bounding capabilities, without CAP_SYS_ADMIN: {sorted(bounding)}")
check(one("NoNewPrivileges") == "yes" and one("ProtectSystem") == "strict",
      "NoNewPrivileges=yes, ProtectSystem=strict")
_, help_text, _ = run(env.profqd, "--help")
m = re.search(r"--max-memory SIZE.*\(default (\w+)\)", help_text)
budget = size_bytes(m.group(1)) if m else fail("no --max-memory default in profqd --help")
high, hard = size_bytes(one("MemoryHigh")), size_bytes(one("MemoryMax"))
check(budget < high < hard, f"--max-memory {budget >> 20}M < MemoryHigh={one('MemoryHigh')} "
      f"< MemoryMax={one('MemoryMax')}")
for key, good in (("PrivateTmp", "yes"), ("ProtectHome", "yes"), ("ProtectKernelTunables", "yes"),
                  ("ProtectKernelLogs", "yes"), ("PrivateUsers", "yes"), ("ProtectProc", None),
                  ("ProcSubset", None)):
    if one(key) != good:
        check(re.search(rf"\b{key}=", unit_comments) is not None,
              f"{key}={one(key) or '(default)'} is explained in a comment")

# The sysusers entry creates the unit's user and group.
sysusers = shutil.which("systemd-sysusers")
if sysusers:
    root = os.path.join(TMP, "sysroot")
    os.makedirs(os.path.join(root, "etc"))
    rc, out, err = run(sysusers, f"--root={root}", inst["sysusers"])
    with open(os.path.join(root, "etc", "passwd")) as f:
        users = {line.split(":")[0]: line.strip().split(":") for line in f}
    with open(os.path.join(root, "etc", "group")) as f:
        groups = {line.split(":")[0]: line.split(":")[2] for line in f}
    user = users.get(one("User"))
    check(rc == 0 and user is not None and groups.get(one("Group")) == user[3]
          and user[6].endswith("nologin"),
          f"systemd-sysusers creates user {one('User')} (group {one('Group')}, no login)"
          + ("" if rc == 0 else f": {err.strip()}"))
else:
    print("note: systemd-sysusers is not installed; the sysusers entry is not checked")

# The default config names every key of --help, commented out; uncommented, profqd takes it.
with open(inst["conf"]) as f:
    conf = f.read()
keys = sorted(set(re.findall(r"^  --([a-z][a-z-]*) ", help_text, flags=re.M))
              - {"config", "help", "version"})
missing = [k for k in keys if not re.search(rf"^#{k} = \S", conf, flags=re.M)]
check(keys and not missing, f"the default config shows every key, commented out "
      f"(missing: {missing})")
check(not re.search(r"^[a-z]", conf, flags=re.M), "no key of the default config is set")
uncommented = os.path.join(TMP, "uncommented.conf")
with open(uncommented, "w") as f:
    f.write(re.sub(r"^#([a-z-]+ = )", r"\1", conf, flags=re.M))
p = popen([env.profqd, "--config", uncommented, "--socket",
                      os.path.join(TMP, "conf.sock"), "--state-dir", os.path.join(TMP, "cs")],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
try:
    p.wait(timeout=3)
except subprocess.TimeoutExpired:
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
err = p.stderr.read()
check(p.returncode != 2 and "profqd.conf" not in err,
      f"profqd accepts the default config with every key uncommented (exit {p.returncode}) "
      f"{err.strip()[:300]}")

# --- The notify protocol --------------------------------------------------------------------

require_bpf()


class Listener:
    """A datagram socket standing in for systemd's notify socket; records (time, pid, text)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []

    def receive(self, timeout):
        """The next message, or None after timeout seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        msg = (time.monotonic(), pid, data.decode())
        self.messages.append(msg)
        return msg

    def collect(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.receive(end - time.monotonic())

    def lines(self, prefix):
        return [(t, pid, line) for t, pid, text in self.messages for line in text.split("\n")
                if line.startswith(prefix)]

    def close(self):
        self.sock.close()


class NotifiedDaemon(Daemon):
    """A Daemon that counts as started when READY=1 arrives, and must answer at once."""

    def __init__(self, env_, listener, *args, extra_env=None, **kw):
        self.listener = listener
        self.ready_at = None
        penv = {"NOTIFY_SOCKET": listener.path}
        penv.update(extra_env or {})
        super().__init__(env_, *args, extra_env=penv, **kw)

    def wait_ready(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                fail(f"profqd exited with {self.proc.returncode} at start:\n{self.read_log()}")
            msg = self.listener.receive(min(0.2, end - time.monotonic()))
            if msg and "READY=1" in msg[2].split("\n"):
                self.ready_at = msg[0]
                rc, _, err = self.profq("status", check_rc=False)
                check(rc == 0, f"profq status answers at once when READY=1 arrives {err}")
                return
        fail(f"no READY=1 within {timeout}s:\n{self.read_log()}")


def watchdog_gaps(listener, since):
    times = [t for t, _, _ in listener.lines("WATCHDOG=1") if t >= since]
    return times, [b - a for a, b in zip(times, times[1:])]


listener = Listener(os.path.join(TMP, "notify.sock"))
# profqd's default budget: STATUS= names it.
with NotifiedDaemon(env, listener, extra_env={"WATCHDOG_USEC": "1000000"},
                    frequency=NOTIFY_HZ, max_memory=None) as d:
    pid = d.proc.pid
    ready = [m for m in listener.messages if "READY=1" in m[2]]
    check(len(ready) == 1 and ready[0][1] == pid, f"READY=1 once, from profqd's pid {pid}")
    busy = popen([env.workload("chain"), "--seconds", "8"], stdout=subprocess.PIPE)
    # 6 s at least, and until a STATUS= line with a rate (every 5 s) and a few keep-alives came:
    # later if the loop is busy reading the symbols of every binary running on a loaded machine.
    end = time.monotonic() + 30
    while time.monotonic() < end and (
            time.monotonic() < d.ready_at + 6 or len(listener.lines("WATCHDOG=1")) < 5
            or not any("samples/s" in line for _, _, line in listener.lines("STATUS="))):
        listener.receive(0.5)
    busy.kill()
    busy.wait()
    times, gaps = watchdog_gaps(listener, d.ready_at)
    gaps = sorted(gaps) or [0.0]
    # Every quarter interval, never every 100 ms tick. A tick that reads a large binary's
    # symbols comes late (seconds on a loaded machine: hence WatchdogSec=60s in the unit), so
    # the smallest gap is what shows the pacing.
    check(len(times) >= 4 and gaps[0] >= 0.2,
          f"WATCHDOG=1 repeated, every quarter of WATCHDOG_USEC=1s or later: {len(times)} "
          f"messages, gaps {gaps[0]:.2f} s to {gaps[-1]:.2f} s, median "
          f"{gaps[len(gaps) // 2]:.2f} s")
    status = [line for _, _, line in listener.lines("STATUS=") if "samples/s" in line]
    check(len(status) >= 1, f"a STATUS= line with samples/s: {status}")
    st = d.json("status")
    m = re.fullmatch(r"STATUS=Sampling (\d+) CPUs at (\d+) Hz: (\d+) samples/s, (\d+) lost, "
                     r"(\d+) processes, memory ([\d.]+[KMGT]?B?) of ([\d.]+[KMGT]?B?)",
                     status[0])
    if not m:
        fail(f"STATUS= line not understood: {status[0]!r}")
    cpus, hz, rate = int(m.group(1)), int(m.group(2)), int(m.group(3))
    check(cpus == st["cpus"] and hz == st["frequency_hz"] == NOTIFY_HZ,
          f"STATUS= names {cpus} CPUs at {hz} Hz, as profq status does")
    check(0.5 * hz <= rate <= 1.05 * cpus * hz,
          f"STATUS= samples/s {rate} fits one busy CPU of {cpus} at {hz} Hz")
    check(int(m.group(5)) > 0 and m.group(7) == "64.0M", f"processes and budget: {status[0]}")
    check(all(p == pid for _, p, _ in listener.messages), "every message is from the main pid")
    listener.messages.clear()
while listener.receive(2) and not listener.lines("STOPPING=1"):
    pass
check(listener.lines("STOPPING=1"), f"STOPPING=1 at SIGTERM ({listener.messages[-3:]})")

# A watchdog meant for another process (WATCHDOG_PID) is not ours to feed.
listener.messages.clear()
with NotifiedDaemon(env, listener, extra_env={"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"},
                    frequency=NOTIFY_HZ) as d:
    listener.collect(1.5)
    check(not listener.lines("WATCHDOG=1"),
          f"no WATCHDOG=1 when WATCHDOG_PID is another process ({listener.messages})")
listener.close()

# --- Under the unit's restrictions ----------------------------------------------------------

SECCOMP_HELPER = r'''
"""Installs a seccomp filter from a JSON policy, then execs argv[2:]."""
import ctypes, json, os, struct, sys
policy = json.load(open(sys.argv[1]))
RET_ALLOW, RET_ERRNO, RET_KILL = 0x7fff0000, 0x00050000, 0x80000000
LD_ABS, JEQ, JSET, AND, RET = 0x20, 0x15, 0x45, 0x54, 0x06
prog = []
def ins(code, k, jt=0, jf=0):
    prog.append(struct.pack("HBBI", code, jt, jf, k))
deny = RET_ERRNO | policy["errno"] if policy["errno"] else RET_KILL
ins(LD_ABS, 4)                                   # arch
ins(JEQ, policy["arch"], 1, 0)
ins(RET, RET_KILL)
ins(LD_ABS, 0)                                   # nr
if policy["socket"] is not None:                 # RestrictAddressFamilies=
    ins(JEQ, policy["socket"], 0, 4)
    ins(LD_ABS, 16)
    ins(JEQ, policy["family"], 0, 1)
    ins(RET, RET_ALLOW)
    ins(RET, RET_ERRNO | 97)                     # EAFNOSUPPORT
for nr in policy["mmap"]:                        # MemoryDenyWriteExecute=: not W and X
    ins(JEQ, nr, 0, 5)
    ins(LD_ABS, 32)                              # prot
    ins(AND, 6)
    ins(JEQ, 6, 0, 1)
    ins(RET, RET_ERRNO | 1)
    ins(RET, RET_ALLOW)
for nr in policy["mprotect"]:                    # ... and never X later
    ins(JEQ, nr, 0, 4)
    ins(LD_ABS, 32)
    ins(JSET, 4, 0, 1)
    ins(RET, RET_ERRNO | 1)
    ins(RET, RET_ALLOW)
for nr in policy["allow"]:
    ins(JEQ, nr, 0, 1)
    ins(RET, RET_ALLOW)
ins(RET, deny)
code = b"".join(prog)
buf = ctypes.create_string_buffer(code, len(code))
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
    sys.exit(f"seccomp: {os.strerror(ctypes.get_errno())}")
os.execv(sys.argv[2], sys.argv[2:])
'''


def header_numbers(path, prefix):
    """{name: number} of the #defines PREFIXname N in a kernel UAPI header, or {}."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}
    return {m.group(1): int(m.group(2))
            for m in re.finditer(rf"^#define {prefix}(\w+)\s+(\d+)\s*$", text, flags=re.M)}


_groups = {}


def syscalls(name):
    """The system call names a SystemCallFilter= word stands for (groups resolved)."""
    if not name.startswith("@"):
        return {name}
    if name not in _groups:
        rc, out, err = run(analyze, "syscall-filter", name)
        if rc != 0:
            fail(f"systemd-analyze syscall-filter {name}: {err}")
        found = set()
        for line in out.splitlines()[1:]:
            word = line.strip()
            if word and not word.startswith("#"):
                found |= syscalls(word)
        _groups[name] = found
    return _groups[name]


def seccomp_policy():
    """The unit's SystemCallFilter= as systemd builds it: an allow list starts from @default;
    a ~ line removes, any other adds. None when this machine lacks the syscall table."""
    numbers = header_numbers("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "__NR_")
    if not numbers or os.uname().machine != "x86_64":
        return None
    filters = svc.get("SystemCallFilter", [])
    if not filters or filters[0].startswith("~"):
        fail("expected the unit's SystemCallFilter= to be an allow list")
    allowed = syscalls("@default")
    for line in filters:
        words = line.lstrip("~").split()
        names = set().union(*(syscalls(w) for w in words))
        allowed = allowed - names if line.startswith("~") else allowed | names
    families = one("RestrictAddressFamilies").split()
    errno_name = one("SystemCallErrorNumber")
    errnos = {"EPERM": 1, "EACCES": 13, "ENOSYS": 38}
    mdwe = one("MemoryDenyWriteExecute") == "yes"
    return {
        "arch": 0xC000003E,  # AUDIT_ARCH_X86_64: SystemCallArchitectures=native
        "allow": sorted(numbers[n] for n in allowed if n in numbers),
        "errno": errnos.get(errno_name, 0) if errno_name else 0,
        "socket": numbers["socket"] if families == ["AF_UNIX"] else None,
        "family": socket.AF_UNIX,
        "mmap": [numbers["mmap"]] if mdwe else [],
        "mprotect": [numbers[n] for n in ("mprotect", "pkey_mprotect")] if mdwe else [],
    }


def unit_identity():
    """(uid, gid, what): the unit's user, or an unused uid/gid standing in for it."""
    try:
        u = pwd.getpwnam(one("User"))
        return u.pw_uid, grp.getgrnam(one("Group")).gr_gid, f"user {one('User')}"
    except KeyError:
        pass
    for uid in range(60900, 61000):
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            return uid, uid, f"uid {uid} (no user {one('User')} here)"
    fail("no unused uid/gid in 60900..60999")


CAP_NUMBERS = header_numbers("/usr/include/linux/capability.h", "CAP_")


def wrapper(caps, uid, gid, policy):
    """A script that runs profqd (with the harness's arguments) the way the unit does."""
    capl = ",".join(["-all"] + ["+" + c[4:].lower() for c in sorted(caps)])
    path = os.path.join(TMP, f"restricted-{len(os.listdir(TMP))}.sh")
    helper = os.path.join(TMP, "seccomp-exec.py")
    with open(helper, "w") as f:
        f.write(SECCOMP_HELPER)
    policy_file = path + ".json"
    if policy:
        with open(policy_file, "w") as f:
            json.dump(policy, f)
    seccomp = f"/usr/bin/python3 {helper} {policy_file}" if policy else ""
    nnp = "--no-new-privs" if one("NoNewPrivileges") == "yes" else ""
    # ProtectSystem=strict: a read-only root; the directory holding the socket and state dir
    # (the harness's private dir, as RuntimeDirectory=/StateDirectory=) stays writable.
    strict = one("ProtectSystem") == "strict"
    private_tmp = "mount -t tmpfs -o mode=1777 tmpfs /tmp && " if one("PrivateTmp") == "yes" else ""
    # PrivateNetwork=, PrivateIPC=: namespaces of its own (the query socket is a file).
    namespaces = "-m" + ("n" if one("PrivateNetwork") == "yes" else "") + \
        ("i" if one("PrivateIPC") == "yes" else "")
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
prev=
for a; do
  if [ "$prev" = --socket ]; then dir=$(dirname "$a"); chown {uid}:{gid} "$dir"; fi
  prev=$a
done
exec unshare {namespaces} --propagation private sh -c '
  {private_tmp}{'mount --bind "$0" "$0" && mount -o remount,bind,ro / && ' if strict else ''}
  exec setpriv --reuid={uid} --regid={gid} --clear-groups {nnp} \\
    --inh-caps={capl} --ambient-caps={capl} --bounding-set={capl} {seccomp} {env.profqd} "$@"
' "$dir" "$@"
""")
    os.chmod(path, 0o755)
    return path


def private_workloads(tmp):
    """Three chain processes that only a capability lets profqd read: another user's binary in
    its private directory (CAP_DAC_READ_SEARCH), a deleted binary (map_files:
    CAP_CHECKPOINT_RESTORE), a binary in another mount namespace (/proc/PID/root and map_files:
    CAP_SYS_PTRACE). {name: (Popen, pid)}."""
    nobody = pwd.getpwnam("nobody")
    chain = env.workload("chain")
    secs = str(WORKLOAD_SECONDS)
    private = os.path.join(tmp, "private")
    os.makedirs(private)
    shutil.copy(chain, os.path.join(private, "chain"))
    os.chown(os.path.join(private, "chain"), nobody.pw_uid, nobody.pw_gid)
    os.chmod(os.path.join(private, "chain"), 0o500)
    os.chown(private, nobody.pw_uid, nobody.pw_gid)
    os.chmod(private, 0o700)
    deleted = os.path.join(tmp, "deleted-chain")
    shutil.copy(chain, deleted)
    other_ns = os.path.join(tmp, "mnt")
    os.makedirs(other_ns)
    cmds = {
        "private": ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                    "--clear-groups", os.path.join(private, "chain"), "--seconds", secs],
        "deleted": [deleted, "--seconds", secs],
        "mount-ns": ["unshare", "-m", "--propagation", "private", "sh", "-c",
                     f"mount -t tmpfs tmpfs {other_ns} && cp {chain} {other_ns}/chain && "
                     f"exec {other_ns}/chain --seconds {secs}"],
    }
    procs = {}
    for name, cmd in cmds.items():
        p = popen(cmd, stdout=subprocess.PIPE, text=True)
        procs[name] = (p, int(p.stdout.readline()))
    os.unlink(deleted)
    return procs


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def restricted_run(caps, policy, notify):
    """Starts the workloads, then profqd restricted; returns what the checks need."""
    uid, gid, who = unit_identity()
    work = tempfile.mkdtemp(prefix="work-")
    os.chmod(work, 0o755)
    procs = private_workloads(work)
    listener = Listener(os.path.join(work, "notify.sock")) if notify else None
    saved = env.profqd
    env.profqd = wrapper(caps, uid, gid, policy)
    try:
        if listener:
            d = NotifiedDaemon(env, listener, frequency=RESTRICTED_HZ)
        else:
            d = Daemon(env, frequency=RESTRICTED_HZ)
    finally:
        env.profqd = saved
    res = {"who": who, "uid": uid, "pid": d.proc.pid}
    with d:
        res["proc"] = proc_status(d.proc.pid)
        with open(f"/proc/{d.proc.pid}/comm") as f:
            res["comm"] = f.read().strip()
        # Its worker processes (the DWARF worker starts with it).
        with open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children") as f:
            res["workers"] = [proc_status(int(pid)) for pid in f.read().split()]
        for p, _ in procs.values():
            p.wait()
        time.sleep(2.5)  # a window closes and is written
        res["status"] = d.json("status")
        for name, (_, pid) in procs.items():
            res[name] = d.json("top", "--pid", str(pid), "-n", "200", "--no-inline")
        res["top"] = d.json("top", "-n", "500", "--no-inline")
        res["log"] = d.read_log()
    if listener:
        res["notify"] = list(listener.messages)
        listener.close()
    shutil.rmtree(work, ignore_errors=True)
    return res


def resolved(top):
    """(share of the samples in the chain's own leaf functions, unresolved frames of chain)."""
    hot = sum(r["self_samples"] for r in top["rows"] if r["function"] in ("leaf_a", "leaf_b"))
    unresolved = [r["function"] for r in top["rows"]
                  if r["module"] == "chain" and "+0x" in r["function"]]
    return hot / max(top["samples"], 1), unresolved


def kernel_frames(top):
    named = sum(1 for r in top["rows"] if r["module"] == "[kernel.kallsyms]"
                and "+0x" not in r["function"])
    raw = sum(1 for r in top["rows"] if r["module"] == "[kernel.kallsyms]"
              and "+0x" in r["function"])
    return named, raw


def cap_mask(caps):
    return sum(1 << CAP_NUMBERS[c[4:]] for c in caps)


if not CAP_NUMBERS or not shutil.which("setpriv") or not shutil.which("unshare"):
    skip("needs setpriv, unshare and linux/capability.h to run profqd restricted")
policy = seccomp_policy()
if policy is None:
    print("note: no x86_64 syscall table here; the system call filter is not applied")

res = restricted_run(bounding, policy, notify=True)
proc = res["proc"]
mask = f"{cap_mask(bounding):016x}"
check(res["comm"] == "profqd" and proc["Uid"].split() == [str(res["uid"])] * 4,
      f"profqd runs as {res['who']}")
check(proc["CapEff"] == proc["CapAmb"] == proc["CapBnd"] == mask,
      f"with exactly the unit's capabilities ({mask}: {proc['CapEff']} effective, "
      f"{proc['CapAmb']} ambient, {proc['CapBnd']} bounding)")
check(proc["NoNewPrivs"] == "1" and (policy is None or proc["Seccomp"] == "2"),
      f"no new privileges, seccomp filter mode {proc['Seccomp']}")
# Under the unit's filter (which refuses seccomp() but not prctl()), each worker adds its own,
# and keeps at most CAP_DAC_READ_SEARCH (the DWARF worker, to find debug files) of the unit's.
workers = [(w["Name"], w.get("Seccomp_filters"), w["CapEff"]) for w in res["workers"]]
dac_read_search = 1 << CAP_NUMBERS["DAC_READ_SEARCH"]
check(workers and all(int(n or 0) > int(proc.get("Seccomp_filters") or 0)
                      and int(caps, 16) & ~dac_read_search == 0 for _, n, caps in workers),
      f"its workers filtered further, with at most CAP_DAC_READ_SEARCH: {workers} "
      f"(profqd's filters: {proc.get('Seccomp_filters')})")
st = res["status"]
# Losses are not the point here: on a loaded machine profqd drops samples while it reads the
# symbols of every binary running, restricted or not.
check(st["samples"] > 500 and st["stored"] > 500,
      f"it samples: {st['samples']} taken, {st['stored']} stored, {st['lost']} lost")
for name in ("private", "deleted", "mount-ns"):
    hot, unresolved = resolved(res[name])
    check(hot >= 0.8 and not unresolved,
          f"{name} binary symbolized: {hot:.0%} of {res[name]['samples']} samples in the leaves, "
          f"unresolved {unresolved[:3]}")
named, raw = kernel_frames(res["top"])
check(st["symbolizer"]["kernel_symbols"] > 1000 and named > 0 and raw <= named // 20,
      f"kernel frames symbolized: {st['symbolizer']['kernel_symbols']} symbols, {named} named "
      f"rows, {raw} raw")
pers = st["persistence"]
check(pers["windows_written"] >= 1 and pers["write_errors"] == 0 and not pers["error"],
      f"windows persisted: {pers['windows_written']} written, {pers['write_errors']} errors")
ready = [m for m in res["notify"] if "READY=1" in m[2]]
check(len(ready) == 1 and ready[0][1] == res["pid"] and "Failed to notify" not in res["log"],
      "READY=1 arrives through the system call filter and the address family restriction")
refused = [line for line in res["log"].splitlines()
           if "Permission denied" in line or "not permitted" in line]
check(not refused, f"nothing was refused in profqd's log {refused}")

# The control: without the four capabilities the probes above are for, each probe notices.
res = restricted_run({"CAP_BPF", "CAP_PERFMON"}, policy, notify=False)
lost = [name for name in ("private", "deleted", "mount-ns") if resolved(res[name])[0] < 0.2]
named, raw = kernel_frames(res["top"])
check(lost == ["private", "deleted", "mount-ns"] and named == 0 and raw > 0
      and res["status"]["symbolizer"]["kernel_symbols"] == 0,
      f"with CAP_BPF and CAP_PERFMON only, those binaries ({lost}) and kernel frames ({raw} raw) "
      f"stay unresolved: the probes detect a missing capability")

