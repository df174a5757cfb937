#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What a local user (or a second administrator) can do to a daemon that runs as root: start a
second profqd on the same state directory (refused, exit status 1 naming the directory; the
offline CLI still reads it)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from harness import Daemon, Env, check, fail, require_bpf

require_bpf()
env = Env()


def second_daemon():
    top = tempfile.mkdtemp(prefix="profq-lock-")
    state = os.path.join(top, "state")
    with Daemon(env, state_dir=state) as d:
        # Something on disk for the offline reader: one closed window.
        deadline = time.time() + 20
        while d.json("status")["persistence"]["windows_written"] < 1:
            if time.time() > deadline:
                fail("no window written within 20 s")
            time.sleep(0.2)
        sock = os.path.join(d.dir, "second.sock")
        p = subprocess.Popen([env.profqd, "--socket", sock, "--state-dir", d.state, "--config",
                              "/dev/null"], stderr=subprocess.PIPE, text=True)
        try:
            _, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            fail("a second profqd on the same state dir was still running after 15 s")
        check(p.returncode == 1, f"a second profqd on the same state dir exits 1 ({p.returncode})")
        check(d.state in err and "in use" in err,
              f"... saying the directory is in use: {err.strip()!r}")
        check(not os.path.exists(sock), "... before it made a socket")
        check(d.json("status")["persistence"]["enabled"], "the first one still writes")
        # The offline CLI reads the directory the daemon holds locked.
        q = subprocess.run([env.profq, "--socket", os.path.join(d.dir, "none.sock"),
                            "--state-dir", d.state, "status", "--json"],
                           capture_output=True, text=True, timeout=60)
        check(q.returncode == 0, f"profq --state-dir reads the locked directory ({q.stderr})")
        check(json.loads(q.stdout)["windows"] >= 1, "... and finds its windows")
        d.kill()
    # kill -9 leaves the lock file; the lock went with the process.
    with Daemon(env, state_dir=state) as d:
        check(d.json("status")["persistence"]["enabled"],
              "a restart after kill -9 takes the directory over")
    shutil.rmtree(top, ignore_errors=True)


second_daemon()
sys.exit(0)
