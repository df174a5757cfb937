#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""JIT code named from perf maps. A process running machine code it wrote into anonymous memory
(python ctypes, x86-64): its perf map's malformed lines are skipped and counted in status, and
an entry added after the map was first read names the code once the file has grown (also in
stacks seen before). node --perf-basic-prof's hot JavaScript function shows by name (module
[jit]) in top; a map owned by another user is ignored."""

import os
import platform
import shutil
import subprocess
import sys
import tempfile

from harness import Daemon, Env, check, popen, require_bpf, row, skip
from jitcode import JIT

require_bpf()
env = Env()


def perf_map_growth(d):
    p = popen([sys.executable, "-c", JIT], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    pid, addr, size = (int(w) for w in p.stdout.readline().split())
    perf_map = f"/tmp/perf-{pid}.map"
    # Other processes on the host may have perf maps too: count from here.
    before = d.json("status")["symbolizer"]

    def spin(seconds):
        p.stdin.write(f"{seconds}\n")
        p.stdin.flush()
        check(p.stdout.readline().strip() == "done", f"the JIT code ran {seconds} s")

    try:
        # First read: two malformed lines, and an entry for other code only.
        with open(perf_map, "w") as f:
            f.write(f"not a perf map line\n{addr:x} zz bad_size\n{addr + 4096:x} 10 other\n")
        spin(1)
        # Named only now: lookups that miss read the map again once it has grown.
        with open(perf_map, "a") as f:
            f.write(f"{addr:x} {size:x} profq_jit_spin\n")
        spin(3.5)
        p.stdin.close()
        check(p.wait(timeout=30) == 0, "the JIT process exited")
    finally:
        if os.path.exists(perf_map):
            os.unlink(perf_map)
    top = d.json("top", "--pid", str(pid), "-n", "50")
    hot = row(top, "profq_jit_spin")
    check(hot is not None and hot["module"] == "[jit]",
          f"the entry added later names the JIT code ({[r['function'] for r in top['rows'][:5]]})")
    # Of 4.5 s of spinning, 3.5 s came after the entry was written, less at most a second before
    # the map was read again: 55% or more. The stacks of the spinning code were cached
    # (symbolized, unnamed) in the first second; had they stayed so, or had the cache kept the
    # map from being read again, few samples would be named (16% and 29% in two runs).
    check(hot["self_pct"] >= 40, f"from the reload on ({hot['self_pct']}% of the samples)")
    check(row(top, "other") is None, "the entry for other code names nothing here")
    sym = d.json("status")["symbolizer"]
    reads = sym["perf_maps_read"] - before["perf_maps_read"]
    bad = sym["perf_map_bad_lines"] - before["perf_map_bad_lines"]
    check(reads >= 2, f"the map was read again ({reads} reads)")
    # The counter is the machine's: another test_jit running at the same time (another build's
    # suite) writes the same two lines, which this daemon reads too (4 seen, with no map dropped
    # or read again). That a map read again does not count its lines again is test-perfmap's.
    check(bad >= 2, f"the 2 malformed lines are counted ({bad})")
    _, text, _ = d.profq("status")
    check("malformed lines skipped" in text, "status shows the perf maps' malformed lines")


with Daemon(env) as d:
    if platform.machine() == "x86_64":
        perf_map_growth(d)
    else:
        print(f"the machine-code JIT part is for x86-64, not {platform.machine()}")

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
    p = popen([node, "--perf-basic-prof", script], cwd=tmp)
    perf_map = f"/tmp/perf-{p.pid}.map"
    try:
        check(p.wait(timeout=60) == 0, "node ran the script")
        # Asked after the exit: the map was read while the process ran.
        top = d.json("top", "--pid", str(p.pid), "-n", "20")
    finally:
        if os.path.exists(perf_map):
            os.unlink(perf_map)
    hot = [r for r in top["rows"] if "profqHotLoop" in r["function"]]
    check(len(hot) >= 1,
          f"the hot JS function is named ({[r['function'] for r in top['rows'][:5]]})")
    check(all(r["module"] == "[jit]" for r in hot), "its module is [jit]")
    self_pct = sum(r["self_pct"] for r in hot)
    check(self_pct >= 50, f"it has most of the samples ({self_pct:.1f}%)")
    check(not any(r["module"] == "[anon]" and r["self_pct"] > 10 for r in top["rows"]),
          "no big unnamed JIT rows left")

    # A perf map the process's user does not own is not read.
    p = popen([node, script], cwd=tmp)
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
