#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""README's two commands, scripts/demo and scripts/test, work as written both in a root shell
without sudo (a container) and for a user with sudo: they ask for root themselves. Run with
stand-ins on PATH for id, sudo and cmake, so that nothing is built: cmake is where a script
that got its root goes on."""

import os
import subprocess
import sys

from harness import Env, check, skip, tempdir

Env()  # --build, as every test takes it
repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
system_path = "/usr/sbin:/usr/bin:/sbin:/bin"
if any(os.access(os.path.join(d, "sudo"), os.X_OK) for d in system_path.split(":")):
    skip("sudo is installed: a root shell without sudo cannot be made here")
if os.geteuid() != 0:
    skip("needs root, as the scripts do")


def stand_ins(**scripts):
    d = tempdir("profq-test-scripts-")
    for name, body in scripts.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
    return d


def run(script, bindir):
    env = dict(os.environ, PATH=f"{bindir}:{system_path}")
    p = subprocess.run([os.path.join("scripts", script), "--flag"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


CMAKE = 'echo "cmake reached" >&2; exit 3'
for script in ("demo", "test"):
    # A root shell without sudo: straight on (to cmake).
    rc, out, err = run(script, stand_ins(cmake=CMAKE))
    check(rc == 3 and "cmake reached" in err and "sudo" not in err,
          f"{script} in a root shell without sudo goes on (exit {rc}): {err[-300:]!r}")
    # A user without sudo: told to be root, before anything is done.
    rc, out, err = run(script, stand_ins(cmake=CMAKE, id='echo 1000'))
    check(rc == 1 and "needs root" in err and "cmake reached" not in err,
          f"{script} as a user without sudo says it needs root (exit {rc}): {err[-300:]!r}")
    # A user with sudo: the script asks sudo to run itself, with its arguments.
    rc, out, err = run(script, stand_ins(cmake=CMAKE, id='echo 1000',
                                         sudo='echo "sudo $*"; exit 0'))
    check(rc == 0 and f"sudo -- scripts/{script} --flag" in out and "cmake reached" not in err,
          f"{script} as a user with sudo runs itself through sudo (exit {rc}): {out!r}")
sys.exit(0)
