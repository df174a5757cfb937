#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq top's live view (docs/profq.1, top), on a pseudo-terminal: its keys (q, s, p, h), the
time span in its header, the terminal given back as it was; a pid never seen, a pid that exited
and a process the user may not see end it with their message on the screen, after the last
clear, and the exit status profq(1) gives."""

import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import fcntl

from harness import Daemon, Env, check, fail, popen, require_bpf, run_workload, start_workload

CLEAR = b"\x1b[2J"
NOBODY = 65534

require_bpf()
env = Env()


class Live:
    """profq top on a 40x120 pseudo-terminal (stdin, stdout and stderr)."""

    def __init__(self, profq, socket, *args, user=None):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.slave = slave
        self.out = b""
        kwargs = {"user": user, "group": user, "extra_groups": []} if user else {}
        # A session of its own with the terminal as its controlling one, so that Ctrl-C on
        # the terminal is SIGINT to it.
        self.proc = popen([profq, "--socket", socket, "top"] + list(args), stdin=slave,
                          stdout=slave, stderr=slave, start_new_session=True,
                          preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0), **kwargs)

    def read_until(self, pattern, timeout=20):
        """Reads until pattern (bytes regex) appears after the last clear; returns the output
        since that clear, or None at the timeout or the end."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.out[self.out.rfind(CLEAR):] if CLEAR in self.out else self.out
            if re.search(pattern, screen):
                return screen
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the child is gone and the slave closed
                return None
            if not data:
                return None
            self.out += data

    def key(self, k):
        os.write(self.master, k)

    def drain(self, wait_s):
        """Reads what the view wrote within wait_s; False when the terminal is closed."""
        if not select.select([self.master], [], [], wait_s)[0]:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child is gone and the slave closed
            return False
        self.out += data
        return bool(data)

    def wait(self, timeout=15):
        """Waits for the view to exit, reading its screen meanwhile: a view that redraws into a
        terminal nobody reads blocks once the terminal's buffer is full."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                return None
            self.drain(min(left, 0.1))
        # What is left to read.
        while self.drain(0.2) and select.select([self.master], [], [], 0)[0]:
            pass
        return self.proc.returncode

    def echo(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def after_last_clear(out, text):
    """Whether text was printed and no clear came after it."""
    i = out.rfind(text)
    return i >= 0 and out.rfind(CLEAR) < i


with Daemon(env) as d:
    busy, busy_pid = start_workload(env, "split", "--seconds", 30)

    # Keys, the header, the terminal given back.
    live = Live(env.profq, d.socket, "-d", "0.3")
    try:
        # Up to the first row after the column names: a screen is written in more than one
        # piece, and a loaded machine may let us read between them.
        screen = live.read_until(rb"sorted by self[\s\S]*SELF%[^\n]*\n[^\n]*\n")
        check(screen is not None, f"the live view shows the hotspots: {live.out[-2000:]!r}")
        check(screen and re.search(rb"the last \d+s to \d\d:\d\d:\d\d", screen),
              f"the header shows the time span: {screen!r}")
        # System-wide: which process each function's samples are of; coloured on a terminal.
        check(screen and re.search(rb"COMM +MODULE", screen) and
              re.search(rb"\x1b\[1m +SELF%", screen),
              f"the live view has a COMM column and bold column names: {screen!r}")
        check(not live.echo(), "keys are read without echo while the view runs")
        live.key(b"s")
        check(live.read_until(rb"sorted by total") is not None, "s: sorted by TOTAL")
        live.key(b"s")
        check(live.read_until(rb"sorted by self") is not None, "s again: by SELF")
        live.key(b"p")
        check(live.read_until(rb"PAUSED") is not None, "p: paused")
        n = live.out.count(CLEAR)
        live.read_until(rb"never", timeout=1.5)
        check(live.out.count(CLEAR) == n, "paused: no refresh in 1.5 s (5 intervals)")
        live.key(b"p")
        check(live.read_until(rb"sorted by self") is not None, "p again: refreshing")
        live.key(b"h")
        check(live.read_until(rb"q\s+quit") is not None, "h: the keys")
        live.key(b"x")
        check(live.read_until(rb"sorted by") is not None, "any key: back to the view")
        live.key(b"?")
        check(live.read_until(rb"q\s+quit") is not None, "?: the keys")
        live.key(b" ")
        check(live.read_until(rb"sorted by") is not None, "back again")
        live.key(b"q")
        rc = live.wait()
        check(rc == 0, f"q: exit 0 (got {rc})")
        check(live.echo(), "the terminal echoes again after q")
    finally:
        live.close()

    # The processes, live: the busy workload among them.
    live = Live(env.profq, d.socket, "--by", "process", "-d", "0.3")
    try:
        screen = live.read_until(rb"\s%d  split" % busy_pid)
        check(screen is not None and b"SHARE%" in screen and b"by process" in screen,
              f"--by process: the live view ranks processes: {live.out[-1500:]!r}")
        live.key(b"q")
        check(live.wait() == 0, "--by process: q quits")
    finally:
        live.close()

    # Ctrl-C ends it too, the terminal restored.
    live = Live(env.profq, d.socket, "-d", "0.3")
    try:
        check(live.read_until(rb"sorted by self") is not None, "the view runs")
        live.key(b"\x03")
        rc = live.wait()
        check(rc == 0, f"Ctrl-C: exit 0 (got {rc})")
        check(live.echo(), "the terminal echoes again after Ctrl-C")
    finally:
        live.close()

    # A process that names itself with an escape sequence: shown, but not sent to the terminal.
    evil = popen([sys.executable, "-c",
                  "import ctypes, time\n"
                  "ctypes.CDLL(None).prctl(15, b'\\x1b[31mred', 0, 0, 0)\n"  # PR_SET_NAME
                  "print(flush=True)\n"
                  "end = time.monotonic() + 30\n"
                  "while time.monotonic() < end: pass\n"], stdout=subprocess.PIPE)
    evil.stdout.readline()
    live = Live(env.profq, d.socket, "--pid", str(evil.pid), "-d", "0.3")
    try:
        screen = live.read_until(rb"\?\[31mred")
        check(screen is not None and b"\x1b[31mred" not in live.out,
              f"a name's escape sequence is shown as ?: {live.out[-800:]!r}")
        live.key(b"q")
        live.wait()
    finally:
        live.close()
        evil.kill()
        evil.wait()

    # A pid never seen (pid_max is at most 4194304): said, exit 1, not "waiting" forever.
    live = Live(env.profq, d.socket, "--pid", "4194304", "-d", "0.3")
    try:
        rc = live.wait()
        check(rc == 1, f"a pid never seen: exit 1 (got {rc}): {live.out[-500:]!r}")
        check(after_last_clear(live.out, b"No process 4194304 is known"),
              f"a pid never seen is said, on the screen: {live.out[-500:]!r}")
    finally:
        live.close()

    # A pid that exited: its samples until they leave the view, then said, exit 1.
    pid = run_workload(env, "split", "--seconds", 1)
    live = Live(env.profq, d.socket, "--pid", str(pid), "-d", "0.3")
    try:
        rc = live.wait(timeout=60)
        check(rc == 1, f"an exited pid: exit 1 (got {rc}): {live.out[-500:]!r}")
        check(after_last_clear(live.out, f"pid {pid} (split) exited at".encode()),
              f"an exited pid is said, on the screen: {live.out[-500:]!r}")
    finally:
        live.close()

    # Another user's process, as an ordinary user: denied, and the message stays.
    os.chmod(d.dir, 0o755)
    bindir = os.path.join(d.dir, "bin")
    os.mkdir(bindir, 0o755)
    profq = shutil.copy(env.profq, bindir)
    os.chmod(profq, 0o755)
    live = Live(profq, d.socket, "--pid", str(busy_pid), "-d", "0.3", user=NOBODY)
    try:
        rc = live.wait()
        check(rc == 4, f"another user's process: exit 4 (got {rc}): {live.out[-500:]!r}")
        check(after_last_clear(live.out, b"Permission denied"),
              f"denied is said and stays on the screen: {live.out[-500:]!r}")
    finally:
        live.close()
    busy.kill()
    busy.wait()
