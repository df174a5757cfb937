#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Processes by their labels (docs/profq.1, "SELECTING PROCESSES"): the cgroup, unit, slice and
container profqd keeps with every process, and the selectors --unit, --cgroup, --comm that sum
every process that matches. systemd cannot start a transient unit where it is not PID 1, so
the test makes the cgroups itself, under the host's cgroup v2 mount: a slice with two "units",
workloads moved into them before they exec (as a service manager does). Checked against the
cgroup files themselves, against the per-pid answers of the same daemon, and against the
kernel's accounting as the workloads and their parent read it (getrusage, wait4)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from harness import (Daemon, Env, check, fail, kernel_hz, near, popen, require_bpf,
                     rusage_of, seconds_of, share_tolerance, skip, tempdir)

require_bpf()
env = Env()
tmp = tempdir("profq-labels-")
TICK = 1 / kernel_hz()
MS = 0.0005  # the JSON's seconds are rounded to milliseconds
N = os.getpid()
SLICE = f"profq-test-{N}.slice"
UNIT = f"test-{N}.service"
OTHER = f"other-{N}.service"
COMM = f"pq-pf-{N % 100000}"  # a comm holds 15 bytes


def cgroup2_mount():
    """Where the host mounts cgroup v2 (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
    host), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


MOUNT = cgroup2_mount()
if not MOUNT or not os.access(MOUNT, os.W_OK):
    skip("needs a writable cgroup v2 mount")
made = []


def make_cgroup(*parts):
    path = os.path.join(MOUNT, *parts)
    os.mkdir(path)
    made.insert(0, path)
    return path


def remove_cgroups():
    """rmdir each test cgroup once its processes have gone (an exited process leaves its
    cgroup a moment after wait() returns)."""
    for path in made:
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        else:
            print(f"warning: could not remove {path}", file=sys.stderr)


def start_in(cgroup, argv, user=None):
    """Starts argv inside cgroup: a shell moves itself there, then execs it (dropping to user,
    if given, with setpriv). Returns (Popen, pid): the workload prints its pid first."""
    drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    p = popen(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup] + drop + argv,
              stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def finish(p):
    """Waits for a workload; its output after the pid."""
    out, _ = p.communicate(timeout=60)
    if p.returncode != 0:
        fail(f"workload exited {p.returncode}")
    return out.splitlines()


def pids_of(answer):
    return sorted(r["pid"] for r in answer["rows"])


def family(rows, roots):
    """The pids of rows that are roots or children of theirs."""
    return sorted(r["pid"] for r in rows if r["pid"] in roots or r.get("ppid") in roots)


def unit_test(d, split, unit_cg, other_cg):
    """Two workers of one unit, one restarted (a new pid), and a worker of another unit in the
    same slice: the unit's answers sum exactly its three processes."""
    cgroup = f"/{SLICE}/{UNIT}"
    a, a_pid = start_in(unit_cg, [split, "--seconds", "3", "--a", "70"])
    o, o_pid = start_in(other_cg, [split, "--seconds", "3", "--a", "20"])
    b1, b1_pid = start_in(unit_cg, [split, "--seconds", "1.5", "--a", "70"])
    b1_out = finish(b1)
    b2, b2_pid = start_in(unit_cg, [split, "--seconds", "1.5", "--a", "70"])
    outs = {a_pid: finish(a), b1_pid: b1_out, b2_pid: finish(b2)}
    finish(o)
    workers = sorted(outs)
    print(f"unit {UNIT}: workers {a_pid}, {b1_pid} then {b2_pid}; {OTHER}: {o_pid}")

    # The unit's processes: its three workers, and any children of theirs (an ASan build's
    # leak checker forks one at exit), in the unit as children are; nothing else.
    ps = d.json("ps", "--unit", UNIT, "-n", "0")
    members = family(ps["rows"], workers)
    check(set(workers) <= set(members) and pids_of(ps) == members,
          f"ps --unit: the unit's three workers ({pids_of(ps)}; children {len(members) - 3})")
    check(ps["processes"] == len(members) and ps["hidden"] == 0,
          f"ps --unit counts {len(members)} processes, none hidden ({ps['processes']}, "
          f"{ps['hidden']})")
    for r in ps["rows"]:
        check((r["unit"], r["slice"], r["cgroup"], r["container"]) == (UNIT, SLICE, cgroup, None),
              f"pid {r['pid']}: unit, slice, cgroup, container as made "
              f"({r['unit']}, {r['slice']}, {r['cgroup']}, {r['container']})")
    # As systemctl takes names: without a type, a service; globs; the slice's cgroup holds both.
    short = d.json("ps", "--unit", f"test-{N}", "-n", "0")
    check(pids_of(short) == members, f"--unit test-{N} means {UNIT} ({pids_of(short)})")
    glob = d.json("ps", "--unit", f"*-{N}.service", "-n", "0")
    others = family(glob["rows"], [o_pid])
    check(o_pid in others and pids_of(glob) == sorted(members + others),
          f"--unit '*-{N}.service' matches both units ({pids_of(glob)})")
    sl = d.json("ps", "--cgroup", SLICE, "-n", "0")
    check(pids_of(sl) == sorted(members + others),
          f"--cgroup {SLICE}: the cgroup and those below it ({pids_of(sl)})")
    rc, _, _ = d.profq("ps", "--unit", f"none-{N}.service", check_rc=False)
    check(rc == 1, f"a unit without processes is not found (exit {rc})")
    plain = d.profq("ps", "-n", "0")[1]
    check(any(line.split()[0] == str(a_pid) and UNIT in line for line in plain.splitlines()),
          "plain ps shows the unit in its UNIT column")

    # top sums the unit's samples: exactly those of its processes, and the split they measured.
    top = d.json("top", "--unit", UNIT, "-n", "0", "--no-inline")
    per_pid = sum(r["samples"] for r in ps["rows"])
    check(top["samples"] == per_pid,
          f"top --unit samples {top['samples']} = the unit's processes' in ps ({per_pid})")
    tops = sum(d.json("top", "--pid", str(p), "-n", "1")["samples"] for p in members)
    check(top["samples"] == tops, f"... = the sum of top --pid of each ({tops})")
    # The other answers over the same selection sum the same samples.
    tree = d.json("tree", "--unit", UNIT)
    check(tree["samples"] == top["samples"], f"tree --unit samples {tree['samples']}")
    rc, folded, _ = d.profq("folded", "--unit", UNIT)
    n = sum(int(line.rsplit(" ", 1)[1]) for line in folded.splitlines() if line)
    check(n == top["samples"], f"folded --unit: {n} samples in its stacks")
    diff = d.json("diff", "--unit", UNIT, "--base-unit", OTHER, "-n", "0", "--no-inline")
    check(diff["base"]["processes"] == len(others) and
          diff["with"]["processes"] == len(members) and
          diff["with"]["samples"] == top["samples"],
          f"diff --unit {UNIT} --base-unit {OTHER}: {len(members)} processes against "
          f"{len(others)} ({diff['with']}, {diff['base']})")
    # The unit's workers spend 70% of their units in work_a, the other unit's worker 20%.
    a = next((r for r in diff["rows"] if r["function"] == "work_a"), None)
    tol = share_tolerance(0.7, diff["with"]["samples"]) + share_tolerance(
        0.2, diff["base"]["samples"]) + 10  # + the time outside the units (start, exit)
    check(a is not None and near(a["delta_self_pct"], 50, tol),
          f"diff: work_a up by {a and a['delta_self_pct']} points (50, within {tol:.1f})")
    secs = {}
    for lines in outs.values():
        for k, v in seconds_of(lines).items():
            secs[k] = secs.get(k, 0) + v
    want = 100 * secs["work_a"] / sum(secs.values())
    got = next((r["self_pct"] for r in top["rows"] if r["function"] == "work_a"), 0)
    tol = share_tolerance(want / 100, top["samples"]) + 5  # + outside the units (start, exit)
    check(near(got, want, tol), f"work_a {got:.1f}% of the unit = the workers' {want:.1f}% "
          f"(within {tol:.1f})")

    # time sums the kernel's accounting of the unit's processes (every one known, sampled or
    # not): as each one's time answer, and for the workers as they read it before exiting.
    t = d.json("time", "--unit", UNIT, "-n", "0")
    known = family(t["rows"], workers)
    check(set(workers) <= set(known) and t["processes"] == len(t["rows"]) == len(known),
          f"time --unit: the workers and their children ({t['processes']} processes, "
          f"{len(t['rows'])} rows)")
    one = [d.json("time", "--pid", str(p)) for p in known]
    for k in ("real_s", "user_s", "sys_s"):
        s = sum(x[k] for x in one)
        check(near(t[k], s, (len(one) + 1) * MS),
              f"time --unit {k} {t[k]} = the sum of time --pid ({s:.3f})")
    user = sum(rusage_of(lines)[0] for lines in outs.values())
    sys_ = sum(rusage_of(lines)[1] for lines in outs.values())
    mine = sum(r["user_s"] + r["sys_s"] for r in t["rows"] if r["pid"] in workers)
    # Per process: between its getrusage and its exit it prints and returns (two ticks).
    check(near(mine, user + sys_, 3 * (2 * TICK + MS)),
          f"time --unit: the workers' user+sys {mine:.3f} = their getrusage ({user + sys_:.3f})")
    check(t["accounting"] == "kernel", f"exited processes: the kernel's ({t['accounting']})")
    span = max(x["exit_time"] for x in one) - min(x["start_time"] for x in one)
    check(near(t["span_s"], span, 3 * MS), f"span {t['span_s']} = first start to last exit "
          f"({span:.3f})")

    # ps --by unit ranks the units: the test's unit sums its processes.
    by = d.json("ps", "--by", "unit", "-n", "0")
    row = next((r for r in by["rows"] if r["unit"] == UNIT), None)
    check(row is not None and row["processes"] == len(members) and row["samples"] == per_pid,
          f"ps --by unit: {UNIT} with {len(members)} processes and {per_pid} samples ({row})")
    return workers


def short_test(d, short_cg):
    """Processes gone before profqd reads their /proc (they exec and exit at once): their
    cgroup comes from the id the kernel gave with the exec and exit events."""
    pids = []
    for _ in range(3):
        p = popen(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec true', short_cg])
        p.wait(timeout=30)
        pids.append(p.pid)
    unit = f"short-{N}.service"
    deadline = time.monotonic() + 10
    while True:
        rc, out, _ = d.profq("time", "--unit", unit, "-n", "0", "--json", check_rc=False)
        got = sorted(r["pid"] for r in json.loads(out)["rows"]) if rc == 0 else []
        if got == sorted(pids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(got == sorted(pids), f"time --unit {unit}: the three short processes ({got})")
    st = d.json("status")
    print(f"status: cgroup_reads {st['cgroup_reads']}, cgroup_errors {st['cgroup_errors']}, "
          f"cgroup_from_id {st['cgroup_from_id']}")


def container_test(d, split, container_cg, cid):
    """A process in a cgroup named as docker names a container's: its id, by a prefix."""
    p, pid = start_in(container_cg, [split, "--seconds", "1", "--a", "50"])
    finish(p)
    ps = d.json("ps", "--container", cid[:12], "-n", "0")
    members = family(ps["rows"], [pid])
    check(pid in members and pids_of(ps) == members,
          f"ps --container {cid[:12]}: the container's process ({pids_of(ps)})")
    r = next((x for x in ps["rows"] if x["pid"] == pid), {})
    check(r.get("container") == cid and r.get("unit") == f"docker-{cid}.scope",
          f"its container id and unit ({r.get('container')}, {r.get('unit')})")
    by = d.json("ps", "--by", "container", "-n", "0")
    row = next((x for x in by["rows"] if x["container"] == cid), None)
    check(row is not None and row["processes"] == len(members) and
          row["samples"] == sum(x["samples"] for x in ps["rows"]),
          f"ps --by container: {cid[:12]} with its process ({row})")


def prefork_test(d):
    """A parent with three children of the same name (a pre-forking server): --comm sums the
    children, checked against what the parent's wait4 says they used."""
    code = (
        "import ctypes, os, resource, sys, time\n"
        f"ctypes.CDLL(None).prctl(15, b'{COMM}', 0, 0, 0)\n"  # PR_SET_NAME
        "kids = []\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        end = time.monotonic() + 2\n"
        "        while time.monotonic() < end: pass\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(' '.join(map(str, kids)), flush=True)\n"
        "cpu = 0.0\n"
        "for _ in kids:\n"
        "    _, status, ru = os.wait4(-1, 0)\n"
        "    cpu += ru.ru_utime + ru.ru_stime\n"
        "print(cpu, flush=True)\n")
    p = popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    kids = sorted(int(x) for x in p.stdout.readline().split())
    cpu = float(p.stdout.readline())
    p.wait(timeout=30)
    print(f"pre-forked {COMM}: parent {p.pid}, children {kids}, their CPU {cpu:.3f}s")

    ps = d.json("ps", "--comm", f"pq-pf-*{N % 100000}", "-n", "0")
    got = [x for x in pids_of(ps) if x != p.pid]
    check(got == kids, f"ps --comm (a glob): the three children ({pids_of(ps)})")
    top = d.json("top", "--comm", COMM, "-n", "1")
    check(top["samples"] == sum(r["samples"] for r in ps["rows"]),
          f"top --comm samples {top['samples']} = those of ps --comm")
    t = d.json("time", "--comm", COMM)
    kid_rows = [r for r in t["rows"] if r["pid"] in kids]
    s = sum(r["user_s"] + r["sys_s"] for r in kid_rows)
    check(len(kid_rows) == 3, f"time --comm has the three children ({len(kid_rows)})")
    check(near(s, cpu, 3 * (TICK + MS)),
          f"their user+sys {s:.3f} = what wait4 gave the parent ({cpu:.3f})")
    by = d.json("ps", "--by", "comm", "-n", "0")
    row = next((r for r in by["rows"] if r["comm"] == COMM), None)
    check(row is not None and row["processes"] == len(ps["rows"]),
          f"ps --by comm: {COMM} with {len(ps['rows'])} processes ({row})")


def hidden_test(d, split, unit_cg, workers):
    """A user sees the unit's processes that are theirs, and how many others match."""
    os.chmod(d.dir, 0o755)
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, mode=0o755, exist_ok=True)
    os.chmod(tmp, 0o755)
    profq = shutil.copy(env.profq, bindir)
    split = shutil.copy(split, bindir)
    for f in (profq, split):
        os.chmod(f, 0o755)
    p, pid = start_in(unit_cg, [split, "--seconds", "1", "--a", "50"], user=65534)
    finish(p)

    def as_nobody(*args):
        q = subprocess.run([profq, "--socket", d.socket, "--json"] + list(args),
                           capture_output=True, text=True, timeout=60, user=65534,
                           group=65534, extra_groups=[])
        return q.returncode, json.loads(q.stdout)

    # Root's records: the workers, and the part of nobody's process before its exec (setpriv,
    # as root), which the exec keeps from its new owner.
    all_ = d.json("ps", "--unit", UNIT, "-n", "0")
    roots = sum(1 for r in all_["rows"] if r["uid"] != 65534)
    check(roots >= len(workers), f"root's records in the unit: {roots}")
    rc, ps = as_nobody("ps", "--unit", UNIT, "-n", "0")
    check(rc == 0 and pids_of(ps) == family(ps["rows"], [pid]) and pid in pids_of(ps) and
          ps["hidden"] == roots,
          f"as nobody: its own process of the unit, and {roots} hidden "
          f"({pids_of(ps) if rc == 0 else ps}, hidden {ps.get('hidden')})")
    rc, top = as_nobody("top", "--unit", UNIT, "-n", "1")
    mine = sum(r["samples"] for r in all_["rows"] if r["uid"] == 65534)
    check(rc == 0 and top["samples"] == mine and top["hidden"] == roots,
          f"top --unit as nobody: its own samples only ({top.get('samples')} = {mine}), "
          f"{top.get('hidden')} processes hidden")
    return all_
    rc, err = as_nobody("ps", "--unit", f"other-{N}.service")
    check(rc == 4 and err.get("code") == "denied",
          f"a unit of root's processes only: denied (exit {rc}, {err})")


def main():
    split = env.workload("split")
    make_cgroup(SLICE)
    unit_cg = make_cgroup(SLICE, UNIT)
    other_cg = make_cgroup(SLICE, OTHER)
    short_cg = make_cgroup(SLICE, f"short-{N}.service")
    cid = hashlib.sha256(str(N).encode()).hexdigest()
    container_cg = make_cgroup(SLICE, f"docker-{cid}.scope")
    try:
        state = os.path.join(tmp, "state")
        with Daemon(env, window="1s", state_dir=state) as d:
            workers = unit_test(d, split, unit_cg, other_cg)
            short_test(d, short_cg)
            container_test(d, split, container_cg, cid)
            prefork_test(d)
            before = hidden_test(d, split, unit_cg, workers)
        # The labels are kept in the state dir: a new daemon (and the offline CLI) has them.
        want = [(r["pid"], r["samples"]) for r in before["rows"]]
        with Daemon(env, window="1s", state_dir=state) as d:
            ps = d.json("ps", "--unit", UNIT, "-n", "0")
            got = [(r["pid"], r["samples"]) for r in ps["rows"]]
            check(sorted(got) == sorted(want),
                  f"after a restart: the unit's processes and samples ({got})")
    finally:
        remove_cgroups()
    off = subprocess.run([env.profq, "--state-dir", state, "--json", "ps", "--unit", UNIT,
                          "-n", "0"], capture_output=True, text=True)
    got = [(r["pid"], r["samples"]) for r in json.loads(off.stdout)["rows"]] \
        if off.returncode == 0 else off.stderr
    check(sorted(got) == sorted(want), f"offline from the state dir: the same ({got})")


main()
