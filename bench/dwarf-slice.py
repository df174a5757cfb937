#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How long `profq status` waits while profqd indexes one very large DWARF compile unit
(docs/PERFORMANCE.md, "A compile unit of half a million DIEs").

The library is test_hostile's big compile unit (tests/integration/hostile_big.py) with
--funcs functions: 20,000 make about 580,000 DIEs, which take profqd's indexer about a third of a
second of CPU in one go. Each run starts profqd (private socket and state dir, 99 Hz) from each
build given, then a program that dlopens the library and calls into it for --seconds, and asks
status on the socket every 20 ms meanwhile: the round trip (the daemon's answer, not the CLI's
start-up), and when the first stack with a source line in the library shows in `profq top`.
Builds alternate within a run, so both meet the same machine.

    bench/dwarf-slice.py --build build [--build OLD_BUILD] [--runs 3] [--funcs 20000] [--lib SO]

Needs root and BPF.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from hostile_big import DLOPEN_C, big_cu_source  # noqa: E402


def env_of(build):
    e = harness.Env.__new__(harness.Env)
    e.build = os.path.abspath(build)
    e.profqd = os.path.join(e.build, "daemon", "profqd")
    e.profq = os.path.join(e.build, "cli", "profq")
    e.workloads = os.path.join(e.build, "tests", "workloads")
    return e


def status(path):
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(60)
        c.connect(path)
        c.sendall(b'{"command":"status"}\n')
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            answer += chunk
    return time.monotonic() - t0, json.loads(answer)


def one_run(build, lib, driver, seconds):
    with harness.Daemon(env_of(build), frequency=99) as d:
        d.wait_caught_up()
        status(d.socket)
        proc = subprocess.Popen([driver, lib, str(seconds)], stdout=subprocess.PIPE, text=True)
        pid = int(proc.stdout.readline())
        t0 = time.monotonic()
        took, lines_at, next_top = [], None, t0 + 0.5
        while proc.poll() is None:
            t, st = status(d.socket)
            took.append(t)
            now = time.monotonic()
            if lines_at is None and now >= next_top:
                next_top = now + 0.5
                rc, out, _ = d.profq("top", "--pid", str(pid), "-n", "5", "--json",
                                     check_rc=False)
                rows = json.loads(out).get("rows", []) if rc == 0 else []
                if any(r.get("file") and r.get("function", "").startswith("f") for r in rows):
                    lines_at = now - t0
            time.sleep(0.02)
        sym = st["symbolizer"]
        return {"worst": max(took), "median": statistics.median(took), "polls": len(took),
                "lines_at": lines_at, "slices": sym.get("dwarf_slices"),
                "pending": sym.get("dwarf_pending")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--funcs", type=int, default=20000)
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--lib", help="a library hostile_big.py's source made (else compiled here)")
    args = ap.parse_args()
    harness.require_bpf()
    with tempfile.TemporaryDirectory(prefix="profq-dwarf-slice.") as tmp:
        src, lib = os.path.join(tmp, "big.c"), os.path.join(tmp, "libbig.so")
        driver = os.path.join(tmp, "driver")
        with open(driver + ".c", "w") as f:
            f.write(DLOPEN_C)
        if args.lib:
            lib = os.path.abspath(args.lib)
        else:
            with open(src, "w") as f:
                f.write(big_cu_source(args.funcs))
            subprocess.run(["cc", "-O1", "-g", "-shared", "-fPIC", "-o", lib, src], check=True)
        subprocess.run(["cc", "-O1", "-o", driver, driver + ".c", "-ldl"], check=True)
        dies = subprocess.run(f"readelf --debug-dump=info {lib} | grep -c '^ <[0-9]*><'",
                              shell=True, capture_output=True, text=True).stdout.strip()
        print(f"library: {dies} DIEs in one compile unit")
        print("run  build                          status median  worst   lines after  "
              "slices  pending")
        results = {b: [] for b in args.build}
        for i in range(args.runs):
            for b in args.build:
                r = one_run(b, lib, driver, args.seconds)
                results[b].append(r)
                lines = f"{r['lines_at']:.1f} s" if r["lines_at"] is not None else "never"
                print(f"{i + 1:3}  {b[-30:]:30} {r['median'] * 1000:10.1f} ms "
                      f"{r['worst'] * 1000:6.0f} ms  {lines:>11}  {r['slices']!s:>6}  "
                      f"{r['pending']!s:>7}", flush=True)
        for b, rs in results.items():
            print(f"{b}: worst status median of runs "
                  f"{statistics.median(r['worst'] for r in rs) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
