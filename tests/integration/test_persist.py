#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Persistence (docs/profqd.8, PERSISTENCE): after kill -9 a restart on the same state
dir answers for an earlier process as before; `profq --state-dir` answers offline, without a
daemon, the same; with a 20 s retention old windows, records and segment files go and memory
stays flat and within --max-memory (docs/profqd.8, --max-memory: the resident set may pass the
budget for a moment, until the next pass a second later); on a full disk profqd keeps
profiling in memory, says so in status, and writes again once there is room."""

import json
import os
import re
import statistics
import subprocess
import threading
import time

from harness import (Daemon, Env, check, fail, popen, require, require_bpf, run_workload,
                     rusage_of, sample_bounds, steal_s, tempdir, wait_until)

require_bpf()
env = Env()
tmp = tempdir("profq-persist-")
# profqd compares its resident set with --max-memory once a second (docs/profqd.8).
PASS_S = 1.0


def persistence(d):
    return d.json("status")["persistence"]


def wait_written(d, more):
    """Waits until `more` further windows are on disk; returns the persistence status."""
    start = persistence(d)["windows_written"]
    return wait_until(f"{more} more windows written",
                      lambda: (lambda p: p if p["windows_written"] >= start + more else None)(
                          persistence(d)), 20)


def offline(state, *args, expect_rc=0):
    """profq answering from a state dir; the socket named does not exist, so no daemon helps."""
    cmd = [env.profq, "--socket", os.path.join(tmp, "no", "such.sock"), "--state-dir", state,
           *args, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != expect_rc:
        fail(f"{' '.join(cmd)} exited {p.returncode} (wanted {expect_rc}): {p.stderr}")
    try:
        return json.loads(p.stdout)
    except ValueError:
        fail(f"{' '.join(cmd)} printed invalid JSON: {p.stdout!r}")


def same_top(a, b):
    """Same rows: function, module, samples and the percentages made of them."""
    keys = ("function", "module", "self_samples", "total_samples", "self_pct", "total_pct")
    return a["samples"] == b["samples"] and len(a["rows"]) == len(b["rows"]) and all(
        all(x[k] == y[k] for k in keys) for x, y in zip(a["rows"], b["rows"]))


TIME_KEYS = ("pid", "comm", "cmdline", "start_time", "exit_time", "exited", "exit_code", "real_s",
             "user_s", "sys_s", "cpu_pct", "accounting")


def same_time(a, b):
    return all(a.get(k) == b.get(k) for k in TIME_KEYS) and a["sampled"] == b["sampled"]


# ---- kill -9, restart on the same state dir, then offline ----

state = os.path.join(tmp, "state")
with Daemon(env, window="1s", state_dir=state) as d1:
    lost0, steal0 = d1.json("status")["lost"], steal_s()
    t0 = time.monotonic()
    pid, out = run_workload(env, "split", "--seconds", 3, "--a", 70, output=True)
    wall = time.monotonic() - t0
    cpu = sum(rusage_of(out))
    # The window that saw the workload's end closes within a second; two more make it sure.
    p1 = wait_written(d1, 2)
    top1 = d1.json("top", "--pid", str(pid), "-n", "20")
    time1 = d1.json("time", "--pid", str(pid))
    lost, steal = d1.json("status")["lost"] - lost0, steal_s() - steal0
    # The CPUs may be shared: the samples follow the CPU time the workload got (its own
    # getrusage), less what was lost anywhere meanwhile.
    lo, hi = sample_bounds(cpu, 999, lost, steal)
    check(lo <= top1["samples"] <= hi,
          f"workload sampled ({top1['samples']} samples in [{lo:.0f}, {hi:.0f}] for "
          f"{cpu:.3f} s of CPU: {lost} lost, {steal:.2f} s stolen)")
    check(p1["write_errors"] == 0 and p1["error"] is None and p1["segments"] >= 1,
          f"windows on disk ({p1['windows_written']} in {p1['segments']} segments)")
    written = persistence(d1)["windows_written"]
    d1.kill()

with Daemon(env, window="1s", state_dir=state) as d2:
    log = d2.read_log()
    m = re.search(r"Loaded (\d+) windows from (\d+) segments", log)
    check(m is not None, f"the restart says what it loaded ({log.strip()!r})")
    loaded = int(m.group(1))
    # A window may have closed between the last status and the kill.
    check(written <= loaded <= written + 1,
          f"it loaded every window written before the kill ({loaded}, {written} written)")
    p2 = persistence(d2)
    check(p2["windows_loaded"] == loaded and p2["corrupt_segments"] == 0,
          "status: windows loaded, no damaged segment")
    # By its start time: on a busy machine the pid may belong to another process by now.
    start = f"{time1['start_time']:.3f}"
    top2 = d2.json("top", "--pid", str(pid), "--start", start, "-n", "20")
    time2 = d2.json("time", "--pid", str(pid), "--start", start)
    check(same_top(top1, top2), f"top --pid {pid} after kill -9 and restart: the same answer")
    check(same_time(time1, time2), f"time --pid {pid} after restart: the same ({time2['real_s']}"
          f" s real, {time2['user_s']} s user, exited {time2['exited']})")
    check(time2["exited"] and time2["accounting"] == "kernel" and
          3 - 0.0005 <= time2["real_s"] <= wall + 0.0005,
          f"the exited process keeps its record and the kernel's accounting (real "
          f"{time2['real_s']} s: 3 s to the {wall:.3f} s the test waited)")
    ps2 = [r for r in d2.json("ps", "-n", "1000")["rows"] if r["pid"] == pid and
           abs(r["start_time"] - time1["start_time"]) < 0.001]
    status2 = d2.json("status")
# Stopped (SIGTERM): the open window was written too.

st = offline(state, "status")
check(st.get("offline") is True and st["corrupt_segments"] == 0,
      f"offline status: {st['windows']} windows in {st['segments']} segments, none damaged")
check(status2["windows"] <= st["windows"] <= status2["windows"] + 1,
      f"offline holds the daemon's windows ({st['windows']}, daemon had {status2['windows']})")
check(same_top(top2, offline(state, "top", "--pid", str(pid), "--start", start, "-n", "20")),
      "offline top --pid: the same answer as online")
check(same_time(time2, offline(state, "time", "--pid", str(pid), "--start", start)),
      "offline time --pid: the same answer as online")
ps3 = [r for r in offline(state, "ps", "-n", "1000")["rows"] if r["pid"] == pid and
       abs(r["start_time"] - time1["start_time"]) < 0.001]
check(len(ps2) == 1 and len(ps3) == 1 and
      all(ps2[0][k] == ps3[0][k] for k in ("comm", "samples", "start_time", "exited")),
      "offline ps: the same row for the process")
offline(state, "top", "--pid", "4194304", expect_rc=1)

# ---- disk full ----

fs = os.path.join(tmp, "small")
os.mkdir(fs)
mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", fs],
                         capture_output=True, text=True)
if mounted.returncode != 0:
    print(f"SKIPPED (disk full): cannot mount a tmpfs: {mounted.stderr.strip()}")
else:
    try:
        with Daemon(env, window="1s", state_dir=os.path.join(fs, "state")) as d:
            # 256 KiB hold a window or two at 999 Hz; fill what is left so that it is now.
            fd = os.open(os.path.join(fs, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 4096) > 0:
                    pass
            except OSError:
                pass
            os.close(fd)
            p = wait_until("a failed write",
                           lambda: (lambda p: p if p["write_errors"] > 0 else None)(
                               persistence(d)), 20)
            check("space" in (p["error"] or ""),
                  f"status says why writes fail ({p['error']!r}, {p['write_errors']} errors)")
            before, steal0 = d.json("status"), steal_s()
            pid, out = run_workload(env, "split", "--seconds", 2, output=True)
            cpu = sum(rusage_of(out))
            # The window that saw the end closes and fails to be written.
            errors = before["persistence"]["write_errors"]
            after = wait_until("a window closed after the workload", lambda: (
                lambda st: st if st["windows"] > before["windows"] + 1 and
                st["persistence"]["write_errors"] > errors else None)(d.json("status")), 20)
            top = d.json("top", "--pid", str(pid))
            lost = after["lost"] - before["lost"]
            lo, _ = sample_bounds(cpu, 999, lost, steal_s() - steal0)
            check(top["samples"] >= lo,
                  f"still profiling into memory ({top['samples']} samples of {pid} for "
                  f"{cpu:.3f} s of CPU, >= {lo:.0f}: {lost} lost)")
            p = after["persistence"]
            check(after["windows"] > before["windows"] and p["write_errors"] > 1 and
                  "space" in (p["error"] or ""),
                  f"windows kept in memory ({after['windows']}), {p['write_errors']} writes failed")
            files = os.listdir(os.path.join(fs, "state", "segments"))
            check(len(files) == p["segments"] and len(files) <= 2,
                  f"no empty segment per failed window ({len(files)} files)")

            # Room again.
            subprocess.run(["mount", "-o", "remount,size=16m", fs], check=True)
            written = p["windows_written"]
            p = wait_until("writes to resume",
                           lambda: (lambda p: p if p["windows_written"] > written
                                    and p["error"] is None else None)(persistence(d)), 20)
            check(p["windows_written"] > written,
                  f"writes resumed ({p['windows_written']} windows written, error cleared)")
        st = offline(os.path.join(fs, "state"), "status")
        check(st["corrupt_segments"] <= 1,
              f"on disk: {st['windows']} windows; at most the segment cut by the full disk is"
              f" damaged ({st['corrupt_segments']})")
    finally:
        subprocess.run(["umount", "-l", fs])

# ---- retention: 20 s, a minute of short processes ----

pids_file = os.path.join(tmp, "pids")
state = os.path.join(tmp, "state-retention")
# At 99 Hz, with the default budget: what --max-memory bounds includes the BPF ring buffer,
# 2 MiB mapped twice. At 999 Hz it is 16 MiB, 32 MiB resident once the kernel has written all
# of it: half the default budget, the most profqd takes off it for what lies outside its
# accounting, and with code, libraries and libdw's mappings (10-20 MB) the RSS stays over the
# budget (measured: 75-95 MiB; profqd warns of it at start-up).


def resident(pid):
    """VmRSS of a process in bytes, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class RssWatch(threading.Thread):
    """Reads a process's resident set from /proc ten times a second: [(monotonic, bytes)]."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.rss = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            r = resident(self.pid)
            if r is None:
                break
            self.rss.append((time.monotonic(), r))
            self.stopping.wait(0.1)

    def stop(self):
        self.stopping.set()
        self.join()


def excursions(rss, budget):
    """The spans [(start, end, peak)] during which the resident set was over the budget: from
    the first reading over it to the first one back within it (or the last reading)."""
    spans, start, peak = [], None, 0
    for t, r in rss:
        if r > budget:
            if start is None:
                start, peak = t, r
            peak = max(peak, r)
        elif start is not None:
            spans.append((start, t, peak))
            start = None
    if start is not None:
        spans.append((start, rss[-1][0], peak))
    return spans


with Daemon(env, "--retention", "20s", window="2s", state_dir=state, frequency=99,
            max_memory=None) as d:
    watch = RssWatch(d.proc.pid)
    watch.start()
    loop = popen(["sh", "-c", f"while :; do {env.workload('split')} --seconds 0.1 "
                  f">> {pids_file}; sleep 0.1; done"])
    samples = []
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            st = d.json("status")
            st["t"] = time.monotonic() - t0
            samples.append(st)
            time.sleep(2)
        st = d.json("status")
        st["t"] = time.monotonic() - t0
        samples.append(st)
        spawned = []
        with open(pids_file) as f:
            for line in f:
                if line.strip().isdigit():
                    spawned.append(int(line))
    finally:
        loop.kill()
        loop.wait()
        watch.stop()
    seg_dir = os.path.join(d.state, "segments")
    # Wall time: compared with the files' mtimes.
    ages = [time.time() - os.stat(os.path.join(seg_dir, n)).st_mtime for n in os.listdir(seg_dir)]

    check(len(spawned) > 100, f"{len(spawned)} short processes ran")
    # 20 s / 2 s closed windows and the open one; for a moment at a boundary one more: a
    # sample's timestamp can close a window a few ms before the clock that eviction uses
    # reaches the window's end.
    most = max(s["windows"] for s in samples)
    check(most <= 12, f"windows held stay within 20 s / 2 s + the open one (max {most})")
    check(samples[-1]["evicted_windows"] >= 15,
          f"old windows went ({samples[-1]['evicted_windows']} evicted)")

    # Memory. After 20 s the ring is full and holds the same amount of the same kind of data;
    # records of processes older than the retention go with their windows: memory must stay
    # within the budget, and flat. profqd profiles the whole machine, though, and a program
    # that other work starts adds its binary's symbols (measured: +1 to +12 MB when a few
    # dozen new binaries appear). So flatness counts only the growth between two status
    # samples with the same number of binaries loaded, summed over the 40 s after the ring
    # filled: at most a quarter of what the daemon held at 20 s. Caches still filling
    # (addresses, raw stacks) were measured at +5% to +15% there; a leak of 20 KB or more per
    # short process (about 200 of them run in those 40 s) grows past it. Finer leaks are for
    # the unit tests and the fuzzers, which check that every reference goes.
    # What profqd accounts may pass the budget as the resident set does (below): binaries read
    # at once between two passes (bpftool, which every test runs, maps libLLVM), until the
    # pass that sees it. So: within the budget at every status sample but those taken while
    # new binaries were read, and never over in two samples in a row (2 s: two passes).
    budget = samples[-1]["max_memory_bytes"]
    over = [(round(s["t"], 1), s["memory_bytes"], b["symbolizer"]["binaries"] -
             a["symbolizer"]["binaries"])
            for a, s, b in zip(samples, samples[1:], samples[2:])
            if s["memory_bytes"] > budget]
    check(all(n > 0 for _, _, n in over) and
          not any(a["memory_bytes"] > budget and b["memory_bytes"] > budget
                  for a, b in zip(samples, samples[1:])) and
          samples[0]["memory_bytes"] <= budget and samples[-1]["memory_bytes"] <= budget,
          f"memory within --max-memory ({budget}) but for a sample at a time while binaries "
          f"were read (t, bytes, binaries read around it: {over})")
    # The budget bounds the whole process, not only what profqd accounts (docs/profqd.8,
    # --max-memory): once a second profqd compares its resident set with it and frees what
    # is over. Between two passes the RSS can pass the budget (measured under load: binaries
    # newly seen, a compiler's symbols and libdw's mappings of its debug information, +5 to
    # +10 MB at once); the pass that sees it brings it back. So each excursion over the
    # budget, as /proc shows the RSS ten times a second, ends within two passes, and the
    # RSS is within the budget most of the time. While binaries new to profqd are read (other
    # work starting programs, as tests running beside this one do: chromium, go), each pass
    # frees what is over and the next binary takes it again: such an excursion may last a
    # few passes more (measured: 3.1 s while 5 binaries were read), never the whole run.
    budget_rss = samples[-1]["max_memory_bytes"]
    rss = watch.rss
    require(len(rss) > 100, f"the daemon's RSS read from /proc ({len(rss)} readings)")
    spans = excursions(rss, budget_rss)

    def binaries_read(a, b):
        """Binaries profqd read between the status samples around [a, b] (monotonic)."""
        before = [x for x in samples if x["t"] <= a - t0] or samples[:1]
        after = [x for x in samples if x["t"] >= b - t0] or samples[-1:]
        return (after[0]["symbolizer"]["binaries"] - before[-1]["symbolizer"]["binaries"])

    quiet = [b - a for a, b, _ in spans if binaries_read(a, b) <= 0]
    busy = [b - a for a, b, _ in spans if binaries_read(a, b) > 0]
    over = [(round(a - rss[0][0], 1), round(b - a, 1), p >> 20, binaries_read(a, b))
            for a, b, p in spans]
    print(f"measured: RSS over the budget (start s, span s, peak MiB, binaries read): {over}")
    check(max(quiet, default=0) <= 2 * PASS_S + 0.2 and max(busy, default=0) <= 6 * PASS_S,
          f"resident set back within --max-memory within two passes of exceeding it, six "
          f"while new binaries are read (longest {max(quiet, default=0):.1f} s and "
          f"{max(busy, default=0):.1f} s of {len(spans)} excursions, peak "
          f"{max((p for _, _, p in spans), default=0) >> 20} MiB, budget {budget_rss >> 20} MiB)")
    median = statistics.median(r for _, r in rss)
    check(median <= budget_rss,
          f"resident set within --max-memory most of the time (median {median / 2**20:.1f} "
          f"MiB, {len([1 for _, r in rss if r > budget_rss])} of {len(rss)} readings over)")
    print("measured: t s, RSS, data, its parts (store, symbolizer, processes, stack cache, "
          "mapping log), outside the accounting, data budget (MiB); binaries, windows:")
    for s in samples:
        m = s["memory"]
        largest = [(b["module"], (b["symbols"] + b["cfi"] + b["dwarf"] + b["cache"]) >> 20)
                   for b in s["symbolizer"]["largest"][:3]]
        print(f"  {s['t']:5.1f} " + " ".join(f"{v / 2**20:5.1f}" for v in (
            m["rss_bytes"], s["memory_bytes"], m["store"], m["symbolizer"], m["processes"],
            m["stack_cache"], m["mapping_log"], m["outside_bytes"], m["data_budget_bytes"])) +
            f" {s['symbolizer']['binaries']} {s['windows']} {largest}")
    reported = [s["memory"]["rss_bytes"] for s in samples]
    print(f"measured: rss {reported} B; outside the accounting "
          f"{[s['memory']['outside_bytes'] for s in samples]} B")
    check(all(r > 0 for r in reported) and
          min(r for _, r in rss) <= statistics.median(reported) <= max(r for _, r in rss),
          "status reports the resident set /proc shows")
    steady = [s for s in samples if s["t"] >= 20]
    base = steady[0]["memory_bytes"]
    same = [(a, b) for a, b in zip(steady, steady[1:])
            if a["symbolizer"]["binaries"] == b["symbolizer"]["binaries"]]
    grown = sum(b["memory_bytes"] - a["memory_bytes"] for a, b in same)
    with_binaries = steady[-1]["memory_bytes"] - base - grown
    news = steady[-1]["symbolizer"]["binaries"] - steady[0]["symbolizer"]["binaries"]
    if len(same) >= len(steady) // 2:
        check(grown <= base // 4, f"memory flat: {grown:+} B from {base} B over 40 s "
              f"({with_binaries:+} B more with {news} new binaries)")
    else:
        print(f"not measured: memory flatness (other work loaded binaries all along: {news})")
    mid = [s for s in samples if 20 <= s["t"] < 40]
    last = [s for s in samples if s["t"] >= 40]

    # Disk: a segment file is last written when its last window closes, and deleted by the
    # first sweep (every 10 s) after that window leaves the retention: none older than
    # 20 + 10 s (and some slack); their number and bytes stay flat.
    segs = [s["persistence"]["segments"] for s in samples if s["t"] >= 20]
    disk_mid = max(s["persistence"]["disk_bytes"] for s in mid)
    disk_last = max(s["persistence"]["disk_bytes"] for s in last)
    check(max(ages) < 20 + 10 + 4, f"no segment file older than the retention lingers "
          f"(oldest {max(ages):.0f} s, {len(ages)} files)")
    # At most one segment per 2 s window of those 34 s (windows that leave memory end their
    # segment) and the one being written.
    check(max(segs) <= 34 // 2 + 1, f"segments on disk bounded (max {max(segs)})")
    # Flat: what is on disk was written within the retention, the sweep interval and a
    # segment's span (20 + 10 + 4 s), whatever the rate of writing (segments are cut short
    # when windows leave memory, which repeats definitions; a busy machine writes more).
    excess = []
    for b in (s for s in samples if s["t"] >= 40):
        earlier = [a for a in samples if 34 <= b["t"] - a["t"] <= 38]
        if earlier:
            a = earlier[-1]
            written = b["persistence"]["bytes_written"] - a["persistence"]["bytes_written"]
            excess.append((b["persistence"]["disk_bytes"] - written, round(b["t"])))
    check(excess and max(excess)[0] <= 0,
          f"disk flat: never more on disk than written in the 34-38 s before (worst excess "
          f"{max(excess) if excess else None} B, s; {disk_mid} B in the middle third, "
          f"{disk_last} B in the last)")
    final = samples[-1]["persistence"]
    check(final["write_errors"] == 0 and final["windows_written"] >= 25,
          f"{final['windows_written']} windows written, no error")
    print(f"measured: memory {[s['memory_bytes'] for s in samples]} B; binaries "
          f"{[s['symbolizer']['binaries'] for s in samples]}; disk {disk_mid} -> {disk_last} B;"
          f" segments {max(segs)}")

    # A process that exited well over 20 s ago is gone; a recent one is there.
    # (A busy machine may have given such a pid to another process since: pid_max can be as
    # low as 32768, and a fork storm wraps it in seconds. That one is not the old process.)
    old = spawned[:20]

    def old_found(cmd, p):
        rc, out, _ = d.profq(cmd, "--pid", str(p), "--json", check_rc=False)
        return rc == 0 and json.loads(out).get("comm") == "split"

    found_old = [p for p in old if old_found("top", p)]
    check(not found_old, f"top for pids gone > 40 s ago: not found ({found_old} found)")
    check(not old_found("time", old[0]), f"time for pid {old[0]}: not found either")
    recent = spawned[-30:-5]
    found = sum(d.profq("time", "--pid", str(p), check_rc=False)[0] == 0 for p in recent)
    # All but those whose events were lost: a process of 0.1 s that no sample caught is known
    # from its exec and exit events only, and a busy machine may drop some (status counts
    # them, for every process on the machine).
    dropped = samples[-1]["lost_events"] - samples[0]["lost_events"]
    check(found >= len(recent) - dropped,
          f"recent processes are there ({found}/{len(recent)}, {dropped} events lost)")


# What is left on disk is the last half minute or so: segments that ended within 20 s of the
# last sweep (every 10 s), each of two 2 s windows, and the window written at the stop: at
# most 18 windows. The old process is not in it.
st = offline(state, "status")
check(st["windows"] <= 18 and st["corrupt_segments"] == 0,
      f"on disk: {st['windows']} windows in {st['segments']} segments")
print(f"measured: {st['disk_bytes'] / st['windows']:.0f} B per 2 s window on disk, about "
      f"{st['disk_bytes'] / st['windows'] * 30 / 1024:.0f} KiB per minute")
offline(state, "top", "--pid", str(old[0]), expect_rc=1)
