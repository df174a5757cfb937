# SPDX-License-Identifier: MIT
"""History beyond memory: windows evicted to stay within --max-memory stay in the state dir, and
queries whose range reaches them are answered from it, in a worker, while the daemon goes on
answering others; --max-disk deletes the oldest segments, and answers say what they lost.

The state dir is half an hour of simulated windows written by profq's own store and persistence
code (bench's profq-bench-ring generator), far more than a 16M budget holds: a restart loads
only the newest windows, and the old processes are only on disk."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Env, check, fail, require_bpf  # noqa: E402

require_bpf()
env = Env()
ring = os.path.join(env.build, "profq-bench-ring")
if not os.path.exists(ring):
    fail(f"{ring} was not built")

tmp = tempfile.mkdtemp(prefix="profq-history-")


def offline(state, *args):
    p = subprocess.run([env.profq, "--state-dir", state] + list(args) + ["--json"],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, json.loads(p.stdout)


def rows_by_function(answer):
    """What must agree between two answers over the same samples: the representative line of
    a function with several frames is the first the store happened to intern."""
    return sorted((r["function"], r["module"], r["self_samples"], r["total_samples"])
                  for r in answer["rows"])


try:
    state = os.path.join(tmp, "state")
    gen = subprocess.run([ring, "generate", "--duration", "1800", state], capture_output=True,
                         text=True, timeout=300, check=True).stdout.split("\n")
    picks = {line.split()[0]: int(line.split()[1]) for line in gen if line.startswith("pick_")}
    old_pid = picks["pick_exited"]
    busy_pid = picks["pick_busy"]
    rc, want_old = offline(state, "top", "--pid", str(old_pid), "-n", "100000")
    check(rc == 0 and want_old["samples"] > 0,
          f"offline: pid {old_pid} has {want_old.get('samples')} samples on disk")
    rc, want_busy = offline(state, "time", "--pid", str(busy_pid))
    check(rc == 0, f"offline: time of pid {busy_pid}")

    with Daemon(env, "--max-memory", "16M", state_dir=state, frequency=99, window="10s") as d:
        st = d.json("status")
        pers = st["persistence"]
        check("disk_history_since_s" in pers,
              f"a 16M budget left windows out, on disk since {pers.get('disk_history_since_s')}"
              f" ({st['windows']} windows in memory)")
        check(pers["segments_deleted"] == 0, "nothing was deleted from disk for memory")

        # The process is only on disk: answered from there, the same as offline.
        got_old = d.json("top", "--pid", str(old_pid), "-n", "100000")
        check(got_old["samples"] == want_old["samples"],
              f"top --pid {old_pid}: {got_old['samples']} samples, offline "
              f"{want_old['samples']}")
        check(rows_by_function(got_old) == rows_by_function(want_old),
              "top: the same functions with the same counts as offline")
        check("incomplete" not in got_old, "the whole range was read")
        got_busy = d.json("time", "--pid", str(busy_pid))
        check(got_busy["sampled"] == want_busy["sampled"],
              f"time --pid {busy_pid}: sampled {got_busy['sampled']} as offline")
        # A range within memory is not read from disk: the last second, once the open window
        # (windows are aligned to multiples of 10 s of wall-clock time) is 2 s old.
        while not 2 <= time.time() % 10 <= 8:
            time.sleep(0.2)
        before = d.json("status")["persistence"]["history_queries"]
        d.profq("ps", "--since", "1s", "--json", check_rc=False)
        after = d.json("status")["persistence"]["history_queries"]
        check(after == before, f"a range in memory reads no disk ({after - before} read)")
        check(after >= 2, f"the old ranges were read from disk ({after} queries)")

        # Others are answered while a worker reads the disk: a status round trip ends
        # before the history query it started after.
        done = {}

        def history_query():
            d.json("ps")
            done["history"] = time.monotonic()

        t = threading.Thread(target=history_query)
        t.start()
        running = 0
        status_done = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "history" not in done:
            s = d.json("status")["persistence"]
            if s["history_running"] > 0:
                running = s["history_running"]
                status_done = time.monotonic()
                break
        t.join()
        check(running > 0 and status_done is not None and status_done < done["history"],
              "status answered while the history worker ran")
        check(d.json("status")["persistence"]["history_failed"] == 0, "no worker failed")

    # A disk budget below what the dir holds (three times the samples of the first one): the
    # oldest segments go, and an answer over their range says that it is incomplete.
    big = os.path.join(tmp, "big")
    subprocess.run([ring, "generate", "--duration", "1800", "--frequency", "299", big],
                   capture_output=True, timeout=300, check=True)
    with Daemon(env, "--max-memory", "16M", "--max-disk", "16M", state_dir=big,
                frequency=99, window="10s") as d:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pers = d.json("status")["persistence"]
            if pers["segments_deleted"] > 0:
                break
            time.sleep(0.5)
        check(pers["segments_deleted"] > 0 and pers["disk_bytes"] <= 16 << 20,
              f"--max-disk 16M: {pers['segments_deleted']} segments deleted, "
              f"{pers['disk_bytes']} bytes left")
        ans = d.json("ps")
        check("incomplete" in ans and "--max-disk" in ans["incomplete"],
              f"ps over the whole range says it is incomplete: {ans.get('incomplete')!r}")
        _, _, err = d.profq("ps", check_rc=False)
        check("warning" in err and "--max-disk" in err,
              f"plain ps warns on stderr that its range is incomplete: {err.strip()!r}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
