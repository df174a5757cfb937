#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq mem (docs/profq.1, "mem"): a process's resident set over time and its peak, against the
kernel's own high-water mark as the workload reads it (VmHWM); the timeline's shape (rises while
the workload touches memory, falls when it frees it, at most a point a second); the ranking;
the SVG plot rendered by a browser; the maximum resident set of `profq run` and `profq time`
against /usr/bin/time -v; a process the OOM killer ends in a memory-limited cgroup keeps its
timeline and shows the kill; and all of it again offline from the state dir."""

import json
import os
import shutil
import signal
import subprocess
import time
import zlib

from harness import (Daemon, Env, check, popen, require, require_bpf, run_workload, tempdir)

require_bpf()
env = Env()
tmp = tempdir("profq-mem-")
state = os.path.join(tmp, "state")
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
NCPU = os.cpu_count() or 1
# The kernel keeps each RSS counter (file, anon, shmem) as a per-CPU counter whose total lags by
# up to a batch of max(32, 2 x CPUs) pages on every CPU; /proc and the rss_stat tracepoint read
# the same total, so two readings of one state differ by at most that, per counter.
COUNTER_SLACK = 3 * NCPU * max(32, 2 * NCPU) * PAGE
BIG, SMALL, STEP_MS, HOLD_MS = 96, 32, 20, 800


def mem_of(d, pid, timeout=10):
    """The mem answer once the daemon has the process's exit point."""
    deadline = time.monotonic() + timeout
    while True:
        rc, out, err = d.profq("mem", "--pid", str(pid), "--json", check_rc=False)
        a = json.loads(out) if out else {}
        pts = a.get("points") or []
        if (rc == 0 and pts and pts[-1].get("exit")) or time.monotonic() > deadline:
            return a
        time.sleep(0.1)


def png_pixels(path):
    """{(r, g, b)} of an 8-bit RGB/RGBA PNG (what headless Chromium writes), unfiltered."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, width, height, kind = 8, b"", 0, 0, 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            require(body[8] == 8 and body[9] in (2, 6), "an 8-bit RGB(A) screenshot")
            kind = body[9]
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if kind == 2 else 4
    raw, stride, prev, colours = zlib.decompress(idat), width * bpp, None, set()
    for y in range(height):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i] if prev else 0
            c = prev[i - bpp] if prev and i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            colours.add(tuple(line[x:x + 3]))
        prev = line
    return colours


def near_colour(colours, want, tol=24):
    return any(all(abs(c[i] - want[i]) <= tol for i in range(3)) for c in colours)


def cgroup_memory_limited(limit):
    """A memory cgroup of our own with the limit (v2 memory.max, or v1 memory.limit_in_bytes
    on hybrid hosts) and no swap: (directory, procs file) or None."""
    base = f"profq-test-mem-{os.getpid()}"
    v2 = "/sys/fs/cgroup"
    if os.path.exists(f"{v2}/cgroup.controllers"):
        with open(f"{v2}/cgroup.controllers") as f:
            if "memory" in f.read().split():
                # The children of the root get the controller only when it is enabled there.
                with open(f"{v2}/cgroup.subtree_control") as sc:
                    if "memory" not in sc.read().split():
                        with open(f"{v2}/cgroup.subtree_control", "w") as w:
                            w.write("+memory")
                d = os.path.join(v2, base)
                os.mkdir(d)
                with open(f"{d}/memory.max", "w") as f:
                    f.write(str(limit))
                if os.path.exists(f"{d}/memory.swap.max"):
                    with open(f"{d}/memory.swap.max", "w") as f:
                        f.write("0")
                return d
    v1 = "/sys/fs/cgroup/memory"
    if os.path.exists(f"{v1}/memory.limit_in_bytes"):
        d = os.path.join(v1, base)
        os.mkdir(d)
        with open(f"{d}/memory.limit_in_bytes", "w") as f:
            f.write(str(limit))
        try:
            with open(f"{d}/memory.swappiness", "w") as f:
                f.write("0")
        except OSError:
            pass
        return d
    return None


with Daemon(env, "--memory", "yes", frequency=99, state_dir=state) as d:
    # ---- A process's timeline and peak, against its own VmHWM ----
    pid, lines = run_workload(env, "memgrow", BIG, SMALL, STEP_MS, HOLD_MS, output=True)
    hwm = int(next(x for x in lines if x.startswith("VmHWM")).split()[1]) * 1024
    a = mem_of(d, pid)
    for key in ("peak_rss_bytes", "peak_time", "points", "oom_killed", "exited"):
        check(key in a, f"mem answer has '{key}'")
    pts = a["points"]
    require(len(pts) >= 3, f"at least 3 points ({len(pts)})")
    for p in pts:
        for key in ("time", "rss_bytes", "anon_bytes", "file_bytes", "shmem_bytes"):
            check(key in p, f"point has '{key}'")
        check(p["rss_bytes"] == p["anon_bytes"] + p["file_bytes"] + p["shmem_bytes"],
              f"rss = anon + file + shmem at {p['time']}")
    peak = a["peak_rss_bytes"]
    tol = min(COUNTER_SLACK, 0.05 * hwm)
    check(abs(peak - hwm) <= tol,
          f"peak {peak} = the workload's VmHWM {hwm} (within {tol} bytes: per-CPU counters)")
    check(pts[0]["time"] <= a["peak_time"] <= pts[-1]["time"],
          f"peak time {a['peak_time']} within the points")
    check(a["oom_killed"] is False and a["exited"] is True, "exited, not OOM-killed")
    # Rises: from under a MiB-scale start to the peak over several points (one a second at
    # most while it grows for (BIG + SMALL) x STEP_MS); falls by the freed BIG MiB.
    rss = [p["rss_bytes"] for p in pts]
    top = rss.index(max(rss))
    grow_s = (BIG + SMALL) * STEP_MS / 1000
    check(0 < top < len(rss) - 1, f"the largest point {top} is neither first nor last ({rss})")
    check(rss[0] < max(rss) / 4, f"the timeline starts low ({rss[0]} of {max(rss)})")
    rising = rss[:top + 1]
    check(all(x <= y + COUNTER_SLACK for x, y in zip(rising, rising[1:])),
          f"rises up to the peak: {rising}")
    check(top >= int(grow_s) - 1, f"{top} points while growing for {grow_s:.1f} s")
    check(max(rss) - COUNTER_SLACK <= peak, "no point above the peak")
    check(min(rss[top:]) <= max(rss) - (BIG * MIB) * 3 // 4,
          f"falls by the {BIG} MiB freed: {rss[top:]}")
    steady = [int(p["time"]) for p in pts if not p.get("exit") and not p.get("oom_kill")]
    check(len(set(steady)) == len(steady), f"at most a point per second: {steady}")

    # ---- Page faults: the memory each function faulted in, against what it touched ----
    # memgrow touched BIG MiB in grow_big() and SMALL MiB in grow_small(), every page once: a
    # profile of the bytes faulted in splits between them as BIG:SMALL. One sample stands for
    # a period of faults of a CPU (status says how many), so each share is off by about a
    # sample per CPU: tolerance of 5 points at most, tighter when the samples allow it.
    st = d.json("status")["faults"]
    check(st["enabled"] and st["period"] > 0, f"status: page faults sampled ({st})")
    f = d.json("top", "--event", "faults", "--pid", str(pid), "-n", "0")
    check(f["event"] == "faults" and f["unit"] == "bytes", "--event faults: counts in bytes")
    tot = {r["function"]: r["total_pct"] for r in f["rows"]}
    want_big = 100 * BIG / (BIG + SMALL)
    sample = st["period"] * PAGE
    tol = min(5.0, max(1.0, 100 * 4 * NCPU * sample / ((BIG + SMALL) * MIB)))
    big, small = tot.get("grow_big", 0), tot.get("grow_small", 0)
    check(abs(big / max(big + small, 1e-9) * 100 - want_big) <= tol,
          f"faults: grow_big {big:.1f}% : grow_small {small:.1f}% is {BIG}:{SMALL} "
          f"(within {tol:.1f} points)")
    touched = (BIG + SMALL) * MIB
    check(abs(f["samples"] - touched) <= max(0.1 * touched, 4 * NCPU * sample),
          f"faults: {f['samples']} bytes faulted in, the {touched} touched")
    rc, out, _ = d.profq("top", "--event", "faults", "--pid", str(pid))
    check("Faulted in:" in out and "MiB" in out, f"the table shows bytes: {out[:200]!r}")
    ln = d.json("lines", "--event", "faults", "--pid", str(pid), "--function", "touch")
    check(ln["unit"] == "bytes" and len(ln["rows"]) >= 1 and
          max(r["total_pct"] for r in ln["rows"]) >= 0.9 * (big + small),
          "lines --event faults --function touch: its memset line faulted the memory in")

    # ---- The ranking ----
    r = d.json("mem", "-n", "0")
    rows = r["rows"]
    mine = [x for x in rows if x["pid"] == pid]
    check(len(mine) == 1 and mine[0]["peak_rss_bytes"] == peak, "ranked with its peak")
    peaks = [x["peak_rss_bytes"] for x in rows]
    check(peaks == sorted(peaks, reverse=True), "ranked by peak, largest first")
    g = d.json("mem", "-n", "0", "--sort", "growth")["rows"]
    growth = [x["growth_bytes"] for x in g]
    check(growth == sorted(growth, reverse=True), "--sort growth: largest growth first")

    # ---- The plot, rendered by a browser ----
    svg = os.path.join(tmp, "mem.svg")
    d.profq("mem", "--pid", str(pid), "-o", svg)
    with open(svg) as f:
        text = f.read()
    check(text.startswith("<?xml") and 'id="peak"' in text and 'id="rss"' in text,
          "SVG with the timeline and the peak marked")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        png = os.path.join(tmp, "mem.png")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--screenshot={png}", "--window-size=960,480", f"file://{svg}"],
                       capture_output=True, timeout=60)
        require(os.path.exists(png), "chromium wrote a screenshot")
        colours = png_pixels(png)
        check(near_colour(colours, (0xe6, 0x55, 0x0d)), "the rendered plot shows the peak mark")
        check(near_colour(colours, (0x08, 0x51, 0x9c)), "the rendered plot shows the RSS line")
    else:
        print("note: no chromium: the SVG is not rendered")

    # ---- profq run and profq time against /usr/bin/time -v ----
    args = [env.workload("memgrow"), "64", "16", "5", "300"]
    p = subprocess.run([env.profq, "--socket", d.socket, "run", "--json", "--"] + args,
                       capture_output=True, text=True, timeout=60)
    require(p.returncode == 0, f"profq run exited {p.returncode}: {p.stderr}")
    run = json.loads(p.stdout)
    run_pid, run_peak = run["runs"][0]["pid"], run["peak_rss_bytes"]
    run_hwm = int(next(x for x in p.stderr.splitlines() if x.startswith("VmHWM")).split()[1])
    check(abs(run_peak - run_hwm * 1024) <= COUNTER_SLACK,
          f"profq run's peak {run_peak} = the run's VmHWM {run_hwm} KiB")
    if os.path.exists("/usr/bin/time"):
        t = subprocess.run(["/usr/bin/time", "-v"] + args, capture_output=True, text=True,
                           timeout=60)
        peer = int(next(x for x in t.stderr.splitlines()
                        if "Maximum resident set size" in x).split()[-1]) * 1024
        peer_hwm = int(next(x for x in t.stdout.splitlines()
                            if x.startswith("VmHWM")).split()[1]) * 1024
        # Two runs of one program differ by what their own VmHWM says they differ by.
        tol = abs(peer_hwm - run_hwm * 1024) + COUNTER_SLACK
        check(abs(run_peak - peer) <= tol,
              f"profq run's peak {run_peak} = /usr/bin/time -v's {peer} (within {tol})")
    else:
        print("note: no /usr/bin/time: profq run not compared with it")
    deadline = time.monotonic() + 10
    while True:
        tm = d.json("time", "--pid", str(run_pid))
        if tm.get("peak_rss_bytes") and tm.get("exited") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(tm.get("peak_rss_bytes") is not None and
          abs(tm["peak_rss_bytes"] - run_peak) <= COUNTER_SLACK,
          f"profq time's peak {tm.get('peak_rss_bytes')} = profq run's {run_peak}")

    # ---- An OOM kill in a memory-limited cgroup ----
    limit = 48 * MIB
    cg = cgroup_memory_limited(limit)
    oom_pid = None
    if cg:
        try:
            procs = os.path.join(cg, "cgroup.procs")

            def enter():
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

            w = popen([env.workload("memgrow"), "256", "0", "2", "100"],
                      stdout=subprocess.PIPE, text=True, preexec_fn=enter)
            oom_pid = int(w.stdout.readline())
            rc = w.wait(timeout=60)
            check(rc == -signal.SIGKILL, f"the workload was killed (status {rc})")
        finally:
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    time.sleep(0.1)
        o = mem_of(d, oom_pid)
        check(o.get("oom_killed") is True, "mem says the OOM killer ended it")
        kills = [p for p in o.get("points", []) if p.get("oom_kill")]
        check(len(kills) == 1, "one point marks the kill")
        check(len(o.get("points", [])) >= 2, "the timeline is kept")
        # File pages (libc) may be charged to another cgroup: the limit bounds the rest.
        if kills:
            anon = kills[0]["anon_bytes"] + kills[0]["shmem_bytes"]
            check(limit / 2 <= anon <= limit + COUNTER_SLACK,
                  f"anonymous memory at the kill {anon} up to the {limit} limit")
        check(o.get("peak_rss_bytes", 0) >= max(p["rss_bytes"] for p in o.get("points", [{}])),
              "the peak is at least every point")
        rc, out, _ = d.profq("mem", "--pid", str(oom_pid))
        check("OOM" in out, "the table shows the OOM kill")
    else:
        print("note: no memory cgroup controller: the OOM kill is not tested")

# ---- Offline, from the state dir: the same answers ----
off = subprocess.run([env.profq, "--state-dir", state, "mem", "--pid", str(pid), "--json"],
                     capture_output=True, text=True, timeout=60)
require(off.returncode == 0, f"offline mem exited {off.returncode}: {off.stderr}")
o = json.loads(off.stdout)
check(o["peak_rss_bytes"] == peak and o["points"] == pts, "offline: the same peak and points")
if oom_pid:
    off = subprocess.run([env.profq, "--state-dir", state, "mem", "--pid", str(oom_pid),
                          "--json"], capture_output=True, text=True, timeout=60)
    check(off.returncode == 0 and json.loads(off.stdout).get("oom_killed") is True,
          "offline: the OOM kill is kept")
