#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq exit codes and error output (docs/profq.1, EXIT STATUS): 0 ok, 1 nothing found, 2 usage, 3
daemon unreachable; in JSON mode stdout is always one valid JSON document."""

import json
import os
import pty
import shutil
import subprocess
import time

from harness import Daemon, Env, check, popen, require_bpf, run_workload, tempdir

NOBODY = 65534

require_bpf()
env = Env()


def profq(*args):
    p = subprocess.run([env.profq] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


# No daemon.
rc, out, err = profq("--socket", "/nonexistent/profq.sock", "status")
check(rc == 3, f"unreachable daemon: exit 3 (got {rc})")
check("profqd" in err, "the message names profqd")
rc, out, err = profq("--socket", "/nonexistent/profq.sock", "status", "--json")
check(rc == 3 and json.loads(out)["code"] == "unavailable", "JSON error when unreachable")

# Usage errors, before any connection.
for args in (["top", "--pid", "abc"], ["top", "--pid", "0"], ["top", "-n", "-1"],
             ["top", "--sort", "sideways"], ["top", "--since", "5 minutes"],
             ["ps", "--bogus"], ["frobnicate"], [], ["top", "extra"]):
    rc, out, err = profq("--socket", "/nonexistent", *args)
    check(rc == 2 and err, f"usage error {args}: exit 2 with a message")
# A missing value is said as such, not as an unknown option.
for args, opt in ((["lines", "--pid"], "--pid"), (["top", "-n"], "-n"), (["--socket"], "--socket")):
    rc, out, err = profq(*args)
    check(rc == 2 and f"option '{opt}' needs a value" in err and "unknown" not in err,
          f"{args}: '{opt}' needs a value (got {rc}: {err!r})")
# With --json, a usage error is the one JSON document on stdout, wherever --json is.
for args in (["top", "--json", "--pid"], ["top", "--pid", "0", "--json"], ["--json", "bogus"],
             ["--json", "ps", "--bogus"], ["--json"]):
    rc, out, err = profq("--socket", "/nonexistent", *args)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = {}
    check(rc == 2 and doc.get("code") == "bad_request" and doc.get("error"),
          f"usage error {args} with --json: one JSON document (got {rc}: {out!r})")
# A --state-dir that is not one: a usage error, not an unreachable daemon.
rc, out, err = profq("--state-dir", "/nonexistent/state", "ps")
check(rc == 2 and "/nonexistent/state" in err, f"a missing --state-dir: exit 2 (got {rc})")
rc, out, _ = profq("--help")
check(rc == 0 and "top" in out and "status" in out, "--help lists the commands")
rc, out, _ = profq("--version")
check(rc == 0 and out.startswith("profq "), "--version")
rc, out, _ = profq("top", "--help")
check(rc == 0 and "--sort" in out, "top --help")

with Daemon(env) as d:
    # A pid with no samples: exit 1.
    rc, out, err = d.profq("top", "--pid", "4194304", check_rc=False)
    check(rc == 1 and "No samples" in err, f"no samples: exit 1 (got {rc})")
    ans = d.json("top", "--pid", "4194304", expect_rc=1)
    check(ans["code"] == "not_found" and ans["error"], "not_found error answer")
    # --json accepted before the command too.
    rc, out, _ = d.profq("--json", "status")
    check(rc == 0 and "uptime_s" in json.loads(out), "global --json")
    # An empty range.
    pid = run_workload(env, "split", "--seconds", 1)
    rc, _, _ = d.profq("top", "--pid", str(pid), "--since", "1h", "--until", "30m",
                       check_rc=False)
    check(rc == 1, "a range before the workload ran has nothing")
    ans = d.json("top", "--pid", str(pid), "--since", "1h")
    check(ans["samples"] > 0, "a range that covers it has its samples")
    # ps over a range without samples finds nothing, as top does: exit 1, header printed.
    rc, out, err = d.profq("ps", "--since", "2h", "--until", "1h", check_rc=False)
    check(rc == 1 and "PID" in out and "No samples" in err,
          f"ps over an empty range: exit 1 (got {rc}: {out!r} {err!r})")
    ans = d.json("ps", "--since", "2h", "--until", "1h", expect_rc=1)
    check(ans["rows"] == [], "ps --json over an empty range: the answer, without rows")

    # Colour: on a terminal unless NO_COLOR is set (to anything but ""), --color to force it.
    def on_tty(*args, no_color=None):
        base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        if no_color is not None:
            base["NO_COLOR"] = no_color
        master, slave = pty.openpty()
        p = subprocess.Popen([env.profq, "--socket", d.socket, *args], stdout=slave,
                             stderr=subprocess.DEVNULL, env=base)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        p.wait(timeout=30)
        return out.decode(errors="replace")

    pid_args = ("--pid", str(pid), "--once", "-n", "3")
    for args, no_color, want in (((), None, True), ((), "1", False), ((), "", True),
                                 (("--color", "always"), "1", True),
                                 (("--color", "never"), None, False),
                                 (("--json", "--color", "always"), None, False)):
        out = on_tty("top", *pid_args, *args, no_color=no_color)
        check(("\x1b[" in out) == want and "spin" in out,
              f"top {' '.join(args)} on a terminal, NO_COLOR={no_color!r}: "
              f"{'coloured' if want else 'no colour'} ({out[:120]!r})")
    out = on_tty("--color", "always", "tree", "--pid", str(pid))
    check("\x1b[1m" in out, f"--color before tree: bold column names ({out[:120]!r})")
    rc, out, _ = d.profq("--color", "always", "lines", "--pid", str(pid), "-n", "3")
    check(rc == 0 and "\x1b[31m" in out, "--color always colours a pipe too (hot lines red)")
    rc, _, err = d.profq("top", "--color", "sometimes", check_rc=False)
    check(rc == 2 and "--color" in err, "--color sometimes: a usage error")

    # As an ordinary user (nobody, with a world-readable copy of profq).
    os.chmod(d.dir, 0o755)
    bindir = tempdir("profq-test-bin-")
    os.chmod(bindir, 0o755)
    user_profq = shutil.copy(env.profq, bindir)
    os.chmod(user_profq, 0o755)

    def as_nobody(*args):
        p = subprocess.run([user_profq] + list(args), capture_output=True, text=True,
                           timeout=60, user=NOBODY, group=NOBODY, extra_groups=[])
        return p.returncode, p.stdout, p.stderr

    # Root's process that sleeps (no samples): denied to top as to time, not "no samples".
    sleeper = popen(["sleep", "60"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if d.profq("time", "--pid", str(sleeper.pid), check_rc=False)[0] == 0:
            break
        time.sleep(0.2)
    for cmd in ("time", "top", "tree", "lines", "ps"):
        rc, out, err = as_nobody("--socket", d.socket, cmd, "--pid", str(sleeper.pid))
        check(rc == 4 and "Permission denied" in err,
              f"{cmd} --pid of root's idle process as nobody: exit 4 (got {rc}: {err!r})")
    sleeper.kill()
    sleeper.wait()
    # A state directory nobody may read (the daemon's, mode 0750): denied.
    rc, out, err = as_nobody("--state-dir", d.state, "ps")
    check(rc == 4 and "Permission denied" in err,
          f"an unreadable --state-dir: exit 4 (got {rc}: {err!r})")
    # A socket in a directory nobody may search: denied, not unreachable.
    os.chmod(d.dir, 0o700)
    rc, out, err = as_nobody("--socket", d.socket, "--json", "status")
    check(rc == 4 and json.loads(out)["code"] == "denied" and "Permission denied" in err,
          f"a socket nobody may open: exit 4 (got {rc}: {err!r})")

    # Without --socket and $PROFQ_SOCKET, the socket profqd's config file names
    # ($PROFQ_CONFIG here; /etc/profq/profqd.conf by default); then the built-in default.
    os.chmod(d.dir, 0o755)
    conf = os.path.join(d.dir, "profqd.conf")
    with open(conf, "w") as f:
        f.write(f"# profqd's\nsocket = {d.socket}\n")
    base = {k: v for k, v in os.environ.items() if k != "PROFQ_SOCKET"}
    p = subprocess.run([env.profq, "status", "--json"], capture_output=True, text=True,
                       timeout=30, env={**base, "PROFQ_CONFIG": conf})
    check(p.returncode == 0 and "uptime_s" in json.loads(p.stdout),
          f"the socket of profqd's config file (got {p.returncode}: {p.stderr!r})")
    p = subprocess.run([env.profq, "status"], capture_output=True, text=True, timeout=30,
                       env={**base, "PROFQ_CONFIG": conf, "PROFQ_SOCKET": "/nonexistent/s"})
    check(p.returncode == 3 and "/nonexistent/s" in p.stderr, "$PROFQ_SOCKET wins over it")
    os.chmod(conf, 0o600)
    p = subprocess.run([user_profq, "status"], capture_output=True, text=True, timeout=30,
                       env={**base, "PROFQ_CONFIG": conf}, user=NOBODY, group=NOBODY,
                       extra_groups=[])
    check(p.returncode == 3 and "/run/profq/profq.sock" in p.stderr,
          f"a config file the user cannot read: the default socket (got {p.stderr!r})")

    # Daemon-side validation of what the CLI cannot check.
    rc, _, err = d.profq("top", "--since", "5m", "--until", "10m", check_rc=False)
    check(rc == 2 and "range" in err, "until older than since: bad_request, exit 2")

# A socket file nobody listens on.
d2 = os.path.join("/tmp", f"profq-stale-{os.getpid()}.sock")
import socket
s = socket.socket(socket.AF_UNIX)
s.bind(d2)
s.close()
rc, _, err = profq("--socket", d2, "status")
os.unlink(d2)
check(rc == 3, "a stale socket: exit 3")
