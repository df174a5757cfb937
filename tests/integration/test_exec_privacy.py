# SPDX-License-Identifier: MIT
"""Privacy across exec (profqd(8), ACCESS CONTROL): a root process that works in a function of
its own, then drops to a user and execs a workload, is the user's from the exec on; the user's
`profq top --pid` shows the workload and never the root phase, which root still sees as an
earlier incarnation of the pid. The user is created for the test and removed again."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Env, check, fail, require_bpf, skip  # noqa: E402
from test_access import Accounts  # noqa: E402

# The root phase: a Python function with a name of its own, on the CPU for a second, then the
# drop to the user and the exec.
ROOT_PHASE = """
import os, sys, time
def root_only_phase_secret():
    end = time.monotonic() + 1.0
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
root_only_phase_secret()
os.setgroups([])
os.setgid(int(sys.argv[2]))
os.setuid(int(sys.argv[1]))
os.execv(sys.argv[3], sys.argv[3:])
"""


def main():
    require_bpf()
    if not shutil.which("useradd") or not shutil.which("groupadd"):
        skip("needs useradd and groupadd to create a test user")
    env = Env()
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    with Accounts() as acc, Daemon(env, window="1s") as d:
        os.chmod(d.dir, 0o755)
        bindir = os.path.join(d.dir, "bin")
        os.mkdir(bindir, 0o755)
        profq = shutil.copy(env.profq, bindir)
        split = shutil.copy(env.workload("split"), bindir)
        for p in (profq, split):
            os.chmod(p, 0o755)
        proc = subprocess.Popen([python, "-c", ROOT_PHASE, str(acc.uid), str(acc.gid), split,
                                 "--seconds", "2"], stdout=subprocess.PIPE, text=True)
        pid = int(proc.stdout.readline())
        proc.wait(timeout=60)
        check(proc.returncode == 0, f"the root phase, drop and exec ran (pid {pid})")

        def functions(answer):
            return {r["function"] for r in answer.get("rows", [])}

        # Root's view first: the process by its start time (on a busy machine the pid may
        # belong to another process by now, as pid_max can be 32768).
        ps = d.json("ps", "-n", "100000")
        mine_rows = [r for r in ps["rows"] if r["pid"] == pid and
                     (r["cmdline"] or "").startswith(split)]
        if not mine_rows:
            fail(f"root's ps has no row for pid {pid} after the exec: "
                 f"{[r for r in ps['rows'] if r['pid'] == pid]}")
        start = f"{mine_rows[0]['start_time']:.3f}"
        rows = [r for r in ps["rows"] if r["pid"] == pid and
                abs(r["start_time"] - mine_rows[0]["start_time"]) < 0.01]
        p = subprocess.run([profq, "--socket", d.socket, "--json", "top", "--pid", str(pid),
                            "--start", start, "-n", "1000"], capture_output=True, text=True,
                           timeout=60, user=acc.uid, group=acc.gid, extra_groups=[])
        if p.returncode != 0:
            fail(f"the user's top --pid {pid} --start {start} exited {p.returncode}: "
                 f"{p.stderr} (root's rows: {rows})")
        mine = json.loads(p.stdout)
        check("work_a" in functions(mine) and mine["comm"] == "split",
              f"the user sees the workload it exec'd ({mine['samples']} samples)")
        check(not any("root_only_phase" in f or f.startswith("_PyEval") or "PyObject" in f
                      for f in functions(mine)),
              "the user sees nothing of the root phase (no Python frames)")
        check("root_only_phase" not in p.stdout, "no trace of the root phase in the answer")

        # Root sees both: the process, and the root phase as an earlier incarnation.
        check(len(rows) == 2 and sum("python" in (r["cmdline"] or "") for r in rows) == 1,
              f"root's ps lists pid {pid} twice: before and after the exec "
              f"({[(r['comm'], r['samples']) for r in rows]})")
        st = d.json("status")
        check(st["exec_splits"] >= 1, f"status counts the split ({st['exec_splits']})")


if __name__ == "__main__":
    main()
