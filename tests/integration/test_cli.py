#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq exit codes and error output (docs/profq.1, EXIT STATUS): 0 ok, 1 nothing found, 2 usage, 3
daemon unreachable; in JSON mode stdout is always one valid JSON document."""

import json
import os
import subprocess

from harness import Daemon, Env, check, require_bpf, run_workload

require_bpf()
env = Env()


def profq(*args):
    p = subprocess.run([env.profq] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


# No daemon.
rc, out, err = profq("--socket", "/nonexistent/profq.sock", "status")
check(rc == 3, f"unreachable daemon: exit 3 (got {rc})")
check("profqd" in err, "the message names profqd")
rc, out, err = profq("--socket", "/nonexistent/profq.sock", "status", "--json")
check(rc == 3 and json.loads(out)["code"] == "unavailable", "JSON error when unreachable")

# Usage errors, before any connection.
for args in (["top", "--pid", "abc"], ["top", "--pid", "0"], ["top", "-n", "-1"],
             ["top", "--sort", "sideways"], ["top", "--since", "5 minutes"],
             ["ps", "--bogus"], ["frobnicate"], [], ["top", "extra"]):
    rc, out, err = profq("--socket", "/nonexistent", *args)
    check(rc == 2 and err, f"usage error {args}: exit 2 with a message")
rc, out, _ = profq("--help")
check(rc == 0 and "top" in out and "status" in out, "--help lists the commands")
rc, out, _ = profq("--version")
check(rc == 0 and out.startswith("profq "), "--version")
rc, out, _ = profq("top", "--help")
check(rc == 0 and "--sort" in out, "top --help")

with Daemon(env) as d:
    # A pid with no samples: exit 1.
    rc, out, err = d.profq("top", "--pid", "4194304", check_rc=False)
    check(rc == 1 and "No samples" in err, f"no samples: exit 1 (got {rc})")
    ans = d.json("top", "--pid", "4194304", expect_rc=1)
    check(ans["code"] == "not_found" and ans["error"], "not_found error answer")
    # --json accepted before the command too.
    rc, out, _ = d.profq("--json", "status")
    check(rc == 0 and "uptime_s" in json.loads(out), "global --json")
    # An empty range.
    pid = run_workload(env, "split", "--seconds", 1)
    rc, _, _ = d.profq("top", "--pid", str(pid), "--since", "1h", "--until", "30m",
                       check_rc=False)
    check(rc == 1, "a range before the workload ran has nothing")
    ans = d.json("top", "--pid", str(pid), "--since", "1h")
    check(ans["samples"] > 0, "a range that covers it has its samples")
    # Daemon-side validation of what the CLI cannot check.
    rc, _, err = d.profq("top", "--since", "5m", "--until", "10m", check_rc=False)
    check(rc == 2 and "range" in err, "until older than since: bad_request, exit 2")

# A socket file nobody listens on.
d2 = os.path.join("/tmp", f"profq-stale-{os.getpid()}.sock")
import socket
s = socket.socket(socket.AF_UNIX)
s.bind(d2)
s.close()
rc, _, err = profq("--socket", d2, "status")
os.unlink(d2)
check(rc == 3, "a stale socket: exit 3")
