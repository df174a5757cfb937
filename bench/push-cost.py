#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What `profqd --push` costs and how fast it delivers (docs/PERFORMANCE.md, "Pushing").

Runs two profqd side by side for the same SECONDS, on private sockets and state dirs, with the
same settings (defaults unless given): one pushes to a local ingest endpoint (a Python
http.server in this process that answers 200 and records each upload), the other does not.
Both sample the whole machine, so both see the same load (and each other). Reports:
  - uploads per window, gzipped pprof bytes per upload (per process) and per window;
  - each daemon's CPU (utime + stime from /proc/PID/stat over the run; the BPF program's time
    is the sampled tasks', the same for both), the push thread's own, and the main loop's time
    building uploads (status: push.build_ms);
  - window close to arrival: each upload's arrival time minus its window's end (`until`;
    windows end on whole seconds), and per window the arrival of its last upload.

    bench/push-cost.py --build build [--seconds 120] [--window 10s] [--frequency 99]

Needs root (BPF). A workload is not started: the machine's own load is profiled.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def push_tid(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == "profqd-push":
                return tid
    return None


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--window", default="10s")
    ap.add_argument("--frequency", default="99")
    a = ap.parse_args()
    profqd = os.path.join(a.build, "daemon", "profqd")
    profq = os.path.join(a.build, "cli", "profq")
    tmp = tempfile.mkdtemp(prefix="profq-push-bench-")
    uploads = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            t = time.time()
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            # The multipart part's payload: the body less the form's boundaries and headers.
            m = re.search(rb"\r\n\r\n(.*)\r\n--[^\r\n]+--\r\n$", body, re.S)
            with lock:
                uploads.append({"t": t, "until": int(q["until"][0]), "from": int(q["from"][0]),
                                "bytes": len(m.group(1)) if m else len(body),
                                "name": q["name"][0]})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    daemons = {}
    for name, extra in (("push", ["--push", url]), ("nopush", [])):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        sock = os.path.join(d, "sock")
        log = open(os.path.join(d, "log"), "w")
        p = subprocess.Popen([profqd, "--config", "/dev/null", "--socket", sock, "--state-dir",
                              os.path.join(d, "state"), "--window", a.window, "--frequency",
                              a.frequency, *extra], stdout=log, stderr=subprocess.STDOUT)
        daemons[name] = (p, sock)
    for name, (p, sock) in daemons.items():
        for _ in range(600):
            if os.path.exists(sock) and subprocess.run(
                    [profq, "--socket", sock, "status"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            sys.exit(f"profqd ({name}) did not start")
    cpu0 = {name: cpu_s(p.pid) for name, (p, _) in daemons.items()}
    tid = push_tid(daemons["push"][0].pid)
    thread0 = cpu_s(daemons["push"][0].pid, tid)
    t0 = time.time()
    time.sleep(a.seconds)
    cpu1 = {name: cpu_s(p.pid) for name, (p, _) in daemons.items()}
    thread1 = cpu_s(daemons["push"][0].pid, tid)
    elapsed = time.time() - t0
    status = json.loads(subprocess.run([profq, "--socket", daemons["push"][1], "status",
                                        "--json"], capture_output=True, text=True).stdout)
    for p, _ in daemons.values():
        p.terminate()
        p.wait()
    server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

    # Whole windows that closed during the measured run.
    with lock:
        ups = [u for u in uploads if u["from"] >= t0]
    by_window = {}
    for u in ups:
        by_window.setdefault(u["until"], []).append(u)
    sizes = [u["bytes"] for u in ups]
    lat = [u["t"] - u["until"] for u in ups]
    last = [max(u["t"] for u in w) - until for until, w in by_window.items()]
    per_window = [sum(u["bytes"] for u in w) for w in by_window.values()]
    print(f"run: {elapsed:.0f} s, window {a.window}, {a.frequency} Hz, "
          f"{len(by_window)} windows, {len(ups)} uploads")
    counts = [len(w) for w in by_window.values()] or [0]
    print(f"uploads per window: median {statistics.median(counts)}")
    print(f"bytes per upload (one process, one window): median "
          f"{statistics.median(sizes or [0]):.0f}, p90 {pct(sizes, 90)}, max {max(sizes or [0])}")
    print(f"bytes per window (all processes): median {statistics.median(per_window or [0]):.0f}, "
          f"max {max(per_window or [0])}; {sum(sizes) / elapsed / 1024:.1f} KiB/s")
    for name in daemons:
        used = cpu1[name] - cpu0[name]
        print(f"profqd {name}: {1000 * used / elapsed:.2f} ms CPU per s "
              f"({100 * used / elapsed:.3f}% of a core)")
    print(f"push thread: {1000 * (thread1 - thread0) / elapsed:.3f} ms CPU per s; building "
          f"uploads in the loop: {status['push']['build_ms']} ms in all "
          f"({status['push']['uploads']} uploads, {status['push']['upload_failed']} failed)")
    print(f"window close -> arrival, per upload: median "
          f"{1000 * statistics.median(lat or [0]):.0f} ms, p90 {1000 * pct(lat, 90):.0f} ms, "
          f"max {1000 * max(lat or [0]):.0f} ms")
    print(f"window close -> its last upload's arrival: median "
          f"{1000 * statistics.median(last or [0]):.0f} ms, max {1000 * max(last or [0]):.0f} ms")
    print(f"target: {json.dumps(status['push']['targets'][0])}")


if __name__ == "__main__":
    main()
