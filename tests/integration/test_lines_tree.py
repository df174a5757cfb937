#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq tree and profq lines against workloads with known splits: the tree nests the split
workload's callers (main -> run -> outer_a -> work_a) with its measured shares; lines puts the
samples on the source lines inside the hot functions, with the workload's file name and source
text, and reproduces the `lines` workload's two-line split; offline answers are the same."""

import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import Daemon, Env, check, fail, near, require_bpf, run_workload, truth_of

require_bpf()
env = Env()
tmp = tempfile.mkdtemp(prefix="profq-lines-")
state = os.path.join(tmp, "state")
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workloads")


def child(node, function):
    for c in node["children"]:
        if c["function"] == function:
            return c
    return None


def path_of(rows, names):
    """The node at the end of a chain of function names, searched from any root."""
    def walk(nodes, rest):
        for n in nodes:
            if n["function"] == rest[0]:
                if len(rest) == 1:
                    return n
                found = walk(n["children"], rest[1:])
                if found:
                    return found
            found = walk(n["children"], rest)
            if found:
                return found
        return None
    return walk(rows, names)


def source_line(name, line):
    with open(os.path.join(SRC, name)) as f:
        return f.read().splitlines()[line - 1]


with Daemon(env, state_dir=state) as d:
    pid, out = run_workload(env, "split", "--seconds", 4, "--a", 70, output=True)
    truth = truth_of(out)
    ta, tb = 100 * truth["work_a"], 100 * truth["work_b"]
    lpid, lout = run_workload(env, "lines", "--seconds", 4, "--a", 70, output=True)
    w = lout[-1].split()
    line_a, line_b = int(w[1]), int(w[4])
    la, lb = float(w[2]), float(w[5])
    share_a = 100 * la / (la + lb)

    # ---- tree ----
    tree = d.json("tree", "--pid", str(pid))
    n = tree["samples"]
    check(tree["pid"] == pid and n >= 2000, f"tree answers for pid {pid} ({n} samples)")
    main = path_of(tree["rows"], ["main"])
    check(main is not None and near(main["total_pct"], 100, 3),
          f"main is near the root with ~100% ({main and main['total_pct']}%)")
    run = child(main, "run")
    check(run is not None and near(run["total_pct"], 100, 3), "main -> run")
    oa, ob = child(run, "outer_a"), child(run, "outer_b")
    check(oa is not None and ob is not None, "run -> outer_a and run -> outer_b")
    wa, wb = child(oa, "work_a"), child(ob, "work_b")
    check(wa is not None and near(wa["total_pct"], ta, 5),
          f"outer_a -> work_a with total {wa and wa['total_pct']}% ~ measured {ta:.1f}%")
    check(wb is not None and near(wb["total_pct"], tb, 5),
          f"outer_b -> work_b with total {wb and wb['total_pct']}% ~ measured {tb:.1f}%")
    check(child(oa, "work_b") is None and child(ob, "work_a") is None,
          "work_a only under outer_a, work_b only under outer_b")
    spin = child(wa, "spin")
    check(spin is not None and spin["inlined"] and near(spin["self_pct"], ta, 5),
          f"the inlined spin is work_a's child and holds its self time ({spin and spin['self_pct']}%)")
    check(all(c["total_samples"] <= wa["total_samples"] for c in wa["children"]),
          "a child's total never exceeds its parent's")
    check(wa["self_samples"] + sum(c["total_samples"] for c in wa["children"])
          <= wa["total_samples"], "self + children's totals <= total")
    check(wa["file"].endswith("split.c") and wa["line"] > 0,
          f"a node names where its function is ({wa['file']}:{wa['line']})")
    order = [c["total_samples"] for c in run["children"]]
    check(order == sorted(order, reverse=True), "children are sorted by total, hottest first")

    def all_nodes(nodes):
        for x in nodes:
            yield x
            yield from all_nodes(x["children"])
    shown = list(all_nodes(tree["rows"]))
    check(all(x["total_pct"] >= 0.5 for x in shown), "nothing below --min-pct 0.5 is shown")
    check(len(shown) == tree["nodes_shown"] <= tree["nodes"], "nodes_shown counts the nodes")
    big = d.json("tree", "--pid", str(pid), "--min-pct", "20")
    check(all(x["total_pct"] >= 20 for x in all_nodes(big["rows"])) and
          path_of(big["rows"], ["outer_a", "work_a"]) is not None and
          path_of(big["rows"], ["outer_b", "work_b"]) is not None,
          "--min-pct 20 keeps only the hot paths")
    noinl = d.json("tree", "--pid", str(pid), "--no-inline")
    nwa = path_of(noinl["rows"], ["outer_a", "work_a"])
    check(nwa is not None and near(nwa["self_pct"], ta, 5) and child(nwa, "spin") is None,
          f"--no-inline: work_a holds its own self time ({nwa and nwa['self_pct']}%)")
    _, text, _ = d.profq("tree", "--pid", str(pid))
    lines = text.splitlines()
    ia = next((i for i, x in enumerate(lines) if " outer_a [split]" in x), None)
    check(ia is not None and " work_a [split]" in lines[ia + 1] and
          lines[ia + 1].index("work_a") > lines[ia].index("outer_a"),
          f"plain tree indents work_a under outer_a:\n{text}")

    # ---- lines: split ----
    ln = d.json("lines", "--pid", str(pid), "-n", "50")
    top = ln["rows"][0]
    spin_line = source_line("split.c", top["line"]) if top["file"] else ""
    # The loop is a handful of instructions from two lines (the for and its body); which of them
    # the timer interrupt lands on is the CPU's business (earlier hosts put nearly all samples on
    # one line, this AMD EPYC puts 81/19 on the two, perf agreeing), so spin's lines are checked
    # together.
    spin_rows = [r for r in ln["rows"] if r["function"] == "spin" and r["file"].endswith("split.c")]
    spin_pct = sum(r["self_pct"] for r in spin_rows)
    check(top["function"] == "spin" and top["file"].endswith("split.c") and
          near(spin_pct, 100, 3) and top["self_pct"] >= 50,
          f"the hottest line is the inlined spin's, in split.c ({top['file']}:{top['line']}, "
          f"{top['self_pct']}%), and spin's lines hold the samples "
          f"({[(r['line'], r['self_pct']) for r in spin_rows]})")
    check(top["text"] is not None and top["text"] == spin_line,
          f"the row carries the source text of its line ({top['text']!r})")
    fields = ("file", "line", "function", "self_samples", "self_pct", "text")
    check(all(k in r for r in ln["rows"] for k in fields), f"every row has {fields}")
    check(abs(sum(r["self_samples"] for r in ln["rows"]) - ln["samples"]) <= ln["samples"] * 0.02,
          "the lines' samples add up to the process's")
    fa = d.json("lines", "--pid", str(pid), "--function", "work_a")
    r = fa["rows"][0]
    check(near(fa["function_pct"], ta, 5) and r["function"] == "work_a" and
          r["file"].endswith("split.c") and "spin(" in (r["text"] or "") and
          near(r["function_pct"], 100, 3) and near(r["callee_samples"], r["self_samples"], 3),
          f"--function work_a: its samples on the line calling the inlined spin "
          f"({r['file']}:{r['line']} {r['text']!r}, {fa['function_pct']}% of all)")
    nl = d.json("lines", "--pid", str(pid), "--no-inline")
    ra, rb = nl["rows"][0], nl["rows"][1]
    check(ra["function"] == "work_a" and near(ra["self_pct"], ta, 5) and
          rb["function"] == "work_b" and near(rb["self_pct"], tb, 5) and ra["line"] != rb["line"],
          f"--no-inline: work_a's line {ra['line']} {ra['self_pct']}%, work_b's line {rb['line']} "
          f"{rb['self_pct']}% ~ measured {ta:.1f}/{tb:.1f}")
    d.json("lines", "--pid", str(pid), "--function", "no_such_function", expect_rc=1)

    # ---- lines: two hot lines of one function ----
    two = d.json("lines", "--pid", str(lpid), "--function", "hot")
    rows = {r["line"]: r for r in two["rows"]}
    check(line_a in rows and line_b in rows, f"hot's lines {line_a} and {line_b} have samples")
    a_pct = 100 * rows[line_a]["self_samples"] / two["samples"]
    b_pct = 100 * rows[line_b]["self_samples"] / two["samples"]
    check(near(a_pct, share_a, 5) and near(b_pct, 100 - share_a, 5),
          f"the split between the two lines, {a_pct:.1f}/{b_pct:.1f}, is the measured "
          f"{share_a:.1f}/{100 - share_a:.1f} within 5 points")
    check(all(rows[x]["file"].endswith("lines.c") and
              rows[x]["text"] == source_line("lines.c", x) for x in (line_a, line_b)),
          "both rows name lines.c and carry their line's text")
    # The workload is compiled in tests/ as "workloads/lines.c": its line table's directory is
    # relative, joined with the compilation directory into the source file's own path.
    raw = subprocess.run(["readelf", "--debug-dump=rawline", env.workload("lines")],
                         capture_output=True, text=True).stdout
    check(re.search(r"\s(\(.*\): )?workloads$", raw, re.M) is not None,
          "the lines workload's line table names the directory 'workloads', relative")
    check(os.path.realpath(rows[line_a]["file"]) == os.path.realpath(os.path.join(SRC, "lines.c")),
          f"profq names the absolute source file ({rows[line_a]['file']})")
    check(two["rows"][0]["line"] == line_a, "sorted by samples: the 70% line first")
    _, text, _ = d.profq("lines", "--pid", str(lpid))
    check(f"lines.c:{line_a}" in text and "6364136223846793005ULL" in text,
          "plain output shows file:line and the source text")
    online_tree = d.json("tree", "--pid", str(lpid))
    online_lines = d.json("lines", "--pid", str(lpid))

    # Errors: a pid is needed, bad values are usage errors, unknown pids are not found.
    rc, _, _ = d.profq("lines", check_rc=False)
    check(rc == 2, "lines without --pid is a usage error")
    rc, _, _ = d.profq("tree", "--pid", str(pid), "--min-pct", "101", check_rc=False)
    check(rc == 2, "--min-pct 101 is a usage error")
    d.json("tree", "--pid", "4194304", expect_rc=1)

# ---- offline: the same answers from the state dir ----
def offline(*args):
    cmd = [env.profq, "--socket", os.path.join(tmp, "none.sock"), "--state-dir", state, *args,
           "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


check(offline("tree", "--pid", str(lpid)) == online_tree, "offline tree is the same answer")
check(offline("lines", "--pid", str(lpid)) == online_lines, "offline lines is the same answer")
shutil.rmtree(tmp, ignore_errors=True)
