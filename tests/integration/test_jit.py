#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""JIT code named from perf maps: node --perf-basic-prof's hot JavaScript function shows by
name (module [jit]) in top, read from /tmp/perf-PID.map while it grows; a map owned by another
user is ignored."""

import os
import shutil
import subprocess
import tempfile

from harness import Daemon, Env, check, require_bpf, skip

require_bpf()
env = Env()
node = shutil.which("node")
if not node:
    skip("node is not installed")

SCRIPT = """
function profqHotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
const t = Date.now();
while (Date.now() - t < 3000) profqHotLoop(1e6);
"""

with tempfile.TemporaryDirectory() as tmp, Daemon(env) as d:
    script = os.path.join(tmp, "hot.js")
    with open(script, "w") as f:
        f.write(SCRIPT)
    p = subprocess.Popen([node, "--perf-basic-prof", script], cwd=tmp)
    perf_map = f"/tmp/perf-{p.pid}.map"
    try:
        check(p.wait(timeout=60) == 0, "node ran the script")
        # Asked after the exit: the map was read while the process ran.
        top = d.json("top", "--pid", str(p.pid), "-n", "20")
    finally:
        if os.path.exists(perf_map):
            os.unlink(perf_map)
    hot = [r for r in top["rows"] if "profqHotLoop" in r["function"]]
    check(len(hot) >= 1, f"the hot JS function is named ({[r['function'] for r in top['rows'][:5]]})")
    check(all(r["module"] == "[jit]" for r in hot), "its module is [jit]")
    self_pct = sum(r["self_pct"] for r in hot)
    check(self_pct >= 50, f"it has most of the samples ({self_pct:.1f}%)")
    check(not any(r["module"] == "[anon]" and r["self_pct"] > 10 for r in top["rows"]),
          "no big unnamed JIT rows left")

    # A perf map the process's user does not own is not read.
    p = subprocess.Popen([node, script], cwd=tmp)
    perf_map = f"/tmp/perf-{p.pid}.map"
    try:
        with open(perf_map, "w") as f:
            f.write("0 7fffffffffff forged_by_someone_else\n")
        os.chown(perf_map, 65534, 65534)
        check(p.wait(timeout=60) == 0, "node ran the script again")
        top = d.json("top", "--pid", str(p.pid), "-n", "50")
    finally:
        os.unlink(perf_map)
    check(not any("forged" in r["function"] for r in top["rows"]),
          "a perf map owned by someone else is ignored")
print("ok")
