#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq's off-CPU profile against a peer on the same run (docs/PERFORMANCE.md, "Off-CPU time").

The peer (tests/integration/offcpu_peer.py) is bpftrace on `sched:sched_switch` recording every
interval of the `waits` workload at its frame-pointer user stack. Each run starts profqd
(`--off-cpu yes`, private socket and state dir) and the peer, then `waits` (one thread:
compute, nap in nanosleep, wait_pipe blocked in read, a third of its wall time each), and
compares each function's share of the thread's off-CPU time, and the totals with the
workload's own (wall - CPU time of the three functions).

    bench/offcpu-peer.py --build build [--runs 3] [--seconds 8] [--frequency 99]

Needs root, BPF and bpftrace (mounts tracefs if it is not mounted).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
import offcpu_peer  # noqa: E402
from offcpu_peer import FUNCS  # noqa: E402


def one_run(env, args):
    with harness.Daemon(env, "--off-cpu", "yes", frequency=args.frequency) as d:
        peer = offcpu_peer.Peer(env.workload("waits"), os.path.join(d.dir, "peer.txt"))
        if not peer.ok():
            raise SystemExit("bpftrace did not start, or run's calls were not found")
        time.sleep(1)
        proc, pid = harness.start_workload(env, "waits", "--seconds", args.seconds)
        peer.follow(pid)
        lines = proc.stdout.read().splitlines()
        proc.wait()
        time.sleep(0.5)
        peer.stop()
        d.wait_caught_up()
        top = d.json("top", "--pid", str(pid), "--event", "off-cpu", "-n", "1000")
        theirs, s_peer = peer.shares(pid)
    rows = {r["function"]: r for r in top["rows"]}
    total = top["samples"]
    mine = {f: 100 * rows[f]["total_samples"] / total if f in rows else 0 for f in FUNCS}
    for marker, key in (("[off-cpu stack lost]", "lost"), ("[user callers not read]", "unread")):
        r = rows.get(marker)
        mine[key] = 100 * r["total_samples"] / total if r else 0
    truth = {}
    for line in lines:
        w = line.split()
        if w and w[0] in ("wall", "cpu"):
            truth[w[0]] = {w[i]: float(w[i + 1]) for i in range(1, len(w), 2)}
    return mine, theirs, total / 1e9, s_peer, truth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--frequency", type=int, default=99)
    args = ap.parse_args()
    harness.require_bpf()
    why = offcpu_peer.available()
    if why:
        raise SystemExit(why)
    env = harness.Env()
    diffs = []
    print("run  function   profq %  peer %  delta")
    for i in range(args.runs):
        mine, theirs, s_mine, s_peer, truth = one_run(env, args)
        truth_s = sum(truth["wall"][f] - truth["cpu"][f] for f in FUNCS)
        for f in FUNCS:
            diffs.append(abs(mine[f] - theirs[f]))
            print(f"{i + 1:3}  {f:9} {mine[f]:7.2f} {theirs[f]:7.2f} {mine[f] - theirs[f]:+6.2f}")
        print(f"     off-CPU s: profq {s_mine:.3f}, peer {s_peer:.3f}, workload {truth_s:.3f}; "
              f"profq's stacks lost to a full ring: {mine['lost']:.2f}%, whole intervals "
              f"without callers: {mine['unread']:.2f}%")
    print(f"largest |delta| {max(diffs):.2f} points, median {statistics.median(diffs):.2f}")


if __name__ == "__main__":
    main()
