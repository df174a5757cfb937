#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Access control (docs/profqd.8, ACCESS CONTROL): a second, unprivileged user created for the test
sees its own process, is denied root's (exit 4, no frames), lists only its own in ps and gets no
kernel addresses anywhere; a member of --group sees everything. The users and the group are removed
again at the end."""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Daemon, Env, check, fail, popen, require_bpf, skip,  # noqa: E402
                     start_workload)

# A kernel-half address: 0xffff followed by 12 more hex digits, with or without 0x.
KERNEL_ADDR = re.compile(r"(0x)?ffff[0-9a-f]{12}", re.IGNORECASE)


def run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


class Accounts:
    """A group and two users (one in the group), deleted on exit."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.group = f"pqg{tag}"
        self.user = f"pqu{tag}"
        self.member = f"pqm{tag}"
        self.made = []

    def __enter__(self):
        run("groupadd", self.group)
        self.made.append(("groupdel", self.group))
        for name, extra in ((self.user, []), (self.member, ["-G", self.group])):
            run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", *extra, name)
            self.made.insert(0, ("userdel", name))
        import pwd
        self.uid = pwd.getpwnam(self.user).pw_uid
        self.gid = pwd.getpwnam(self.user).pw_gid
        self.member_uid = pwd.getpwnam(self.member).pw_uid
        self.member_gid = pwd.getpwnam(self.member).pw_gid
        import grp
        self.group_gid = grp.getgrnam(self.group).gr_gid
        return self

    def __exit__(self, *exc):
        for cmd, name in self.made:
            # userdel refuses while a process of the user is still going away: retry.
            for _ in range(20):
                p = subprocess.run([cmd, name], capture_output=True, text=True)
                if p.returncode == 0:
                    break
                time.sleep(0.25)
            else:
                print(f"warning: {cmd} {name} failed: {p.stderr.strip()}", file=sys.stderr)
        return False


def main():
    require_bpf()
    if not shutil.which("useradd") or not shutil.which("groupadd"):
        skip("needs useradd and groupadd to create a test user")
    env = Env()
    with open("/proc/sys/kernel/perf_event_paranoid") as f:
        paranoid = int(f.read())
    kernel_names = paranoid <= 1
    print(f"perf_event_paranoid = {paranoid}: unprivileged kernel frames "
          f"{'by name' if kernel_names else 'as one [kernel] frame'}")

    with Accounts() as acc, Daemon(env, "--group", acc.group, window="1s") as d:
        # The user must reach the socket and run the binaries: a world-readable copy.
        os.chmod(d.dir, 0o755)
        bindir = os.path.join(d.dir, "bin")
        os.mkdir(bindir, 0o755)
        profq = shutil.copy(env.profq, bindir)
        split = shutil.copy(env.workload("split"), bindir)
        for p in (profq, split):
            os.chmod(p, 0o755)

        def as_user(uid, gid, groups, *args):
            p = subprocess.run([profq, "--socket", d.socket, "--json"] + list(args),
                               capture_output=True, text=True, timeout=60, user=uid, group=gid,
                               extra_groups=groups)
            return p.returncode, p.stdout, p.stderr

        answers = []  # every unprivileged answer, for the address scan

        def user(*args):
            rc, out, err = as_user(acc.uid, acc.gid, [], *args)
            answers.append(out + err)
            try:
                return rc, json.loads(out)
            except ValueError:
                fail(f"profq {' '.join(args)} as {acc.user} printed invalid JSON: {out!r}")

        def member(*args):
            rc, out, err = as_user(acc.member_uid, acc.member_gid, [acc.group_gid], *args)
            try:
                return rc, json.loads(out)
            except ValueError:
                fail(f"profq {' '.join(args)} as {acc.member} printed invalid JSON: {out!r}")

        # The user's workload (forked by root, setuid, then exec: the user's from the exec
        # on), root's, and a process of the user that made itself undumpable.
        mine = popen([split, "--seconds", "4", "--sys", "30"], stdout=subprocess.PIPE,
                                text=True, user=acc.uid, group=acc.gid, extra_groups=[])
        mine_pid = int(mine.stdout.readline())
        rootp, root_pid = start_workload(env, "split", "--seconds", "4", "--sys", "30")
        # The system's python: the test's own may live where the user cannot read.
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        nodump = popen(
            [python, "-c",
             "import ctypes, time\n"
             "ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"  # PR_SET_DUMPABLE, 0
             "print(flush=True)\n"
             "end = time.monotonic() + 4\n"
             "while time.monotonic() < end: pass\n"],
            stdout=subprocess.PIPE, text=True, user=acc.uid, group=acc.gid, extra_groups=[])
        nodump.stdout.readline()
        nodump_pid = nodump.pid
        for p in (mine, rootp, nodump):
            p.communicate(timeout=60)
        time.sleep(1.5)  # the last window closes

        # Own process: visible, with frames.
        rc, a = user("top", "--pid", str(mine_pid))
        check(rc == 0 and a.get("pid") == mine_pid and a["rows"],
              f"the user sees its own process {mine_pid} (rc {rc})")
        check(any(r["function"] == "work_a" for r in a["rows"]), "its frames are named")
        kernel_rows = [r for r in a["rows"] if r.get("kernel")]
        if kernel_names:
            check(all(not KERNEL_ADDR.search(r["function"]) for r in kernel_rows),
                  "kernel frames by name, without addresses")
        else:
            check(all(r["function"] == "[kernel]" and r["symbol"] is None for r in kernel_rows),
                  f"kernel frames collapse into one [kernel] frame ({len(kernel_rows)} rows)")
        rc, a = user("time", "--pid", str(mine_pid))
        check(rc == 0 and a.get("pid") == mine_pid, "time of its own process")

        # Root's process: denied, exit 4, nothing of it.
        for cmd in (["top", "--pid", str(root_pid)], ["time", "--pid", str(root_pid)],
                    ["ps", "--pid", str(root_pid), "--threads"],
                    ["folded", "--pid", str(root_pid)]):
            rc, a = user(*cmd)
            check(rc == 4 and a.get("code") == "denied" and "rows" not in a
                  and "work_a" not in json.dumps(a),
                  f"{' '.join(cmd[:1])} of root's {root_pid}: exit 4, denied, no data")
        rc, a = user("top", "--pid", str(nodump_pid))
        check(rc == 4 and a.get("code") == "denied",
              f"its own undumpable process {nodump_pid} is denied too")

        # System-wide: only its own.
        rc, a = user("ps", "-n", "100000")
        pids = {r["pid"] for r in a["rows"]}
        check(rc == 0 and mine_pid in pids and root_pid not in pids and nodump_pid not in pids,
              f"ps lists its own process and neither root's nor the undumpable one ({pids})")
        check(all(r["uid"] == acc.uid for r in a["rows"]), "ps rows are all the user's")
        # By total: work_a's own loop is an inlined spin(), so by self work_a has none, and
        # the rows can be full of one-sample functions of the user's other processes.
        rc, a = user("top", "--sort", "total", "-n", "100000")
        check(rc == 0 and "work_a" in json.dumps(a), "top without --pid shows its own")
        rc, a = user("status")
        check(rc == 0 and a.get("limited") is True and "persistence" not in a
              and "bpf_prog_id" not in a and "samples" in a,
              "status: the health figures only")

        # A member of --group sees everything.
        rc, a = member("top", "--pid", str(root_pid))
        check(rc == 0 and a.get("pid") == root_pid, "a group member sees root's process")
        rc, a = member("ps", "-n", "100000")
        pids = {r["pid"] for r in a["rows"]}
        check(root_pid in pids and mine_pid in pids and nodump_pid in pids,
              "a group member's ps lists every process")
        rc, a = member("status")
        check(rc == 0 and "persistence" in a, "a group member gets the full status")

        # Root: kernel addresses may appear for root (unresolved frames) — not for the user.
        hits = [m.group(0) for text in answers for m in KERNEL_ADDR.finditer(text)]
        check(not hits, f"no kernel-half address in {len(answers)} unprivileged answers "
                        f"({hits[:3]})")


if __name__ == "__main__":
    main()
