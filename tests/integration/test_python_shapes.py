#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shapes Python code takes, each named by profq with the share of the CPU the workload
(python/workload.py) measured for it with time.thread_time(): TOTAL% within 5 points, or Z
standard errors of the sample count where that is larger (each check says which).

shapes, on Debian's python3 (3.11) and, where installed, pyenv's 3.12 (which inlines list
comprehensions):
- recurse, 20 calls deep: one row, its TOTAL% the measured share (counted once per sample, not
  20 times), SELF% no more than that; in `tree`, a chain of exactly 20 nested recurse nodes;
- the generator produce (measured while it runs, between resumption and yield), under its
  consumer (shapes) in `tree`;
- the coroutine Pipeline.crunch (crunch before 3.11), run by an asyncio event loop;
- a lambda (<lambda>) whose time is in the native sorted() it calls;
- squares, a list comprehension: before 3.12 the comprehension is a frame of its own
  (squares.<locals>.<listcomp>, <listcomp> before 3.11) under squares; from 3.12 it is inlined,
  its time squares' own, and no <listcomp> row is shown;
- exec_work, defined by exec'd source compiled as "<exec-code>": its name and that file.

threads, on Debian's python3: Spinner.alpha, .beta and .gamma, each in a thread of its own for
the same time. Each function's share of the three functions' samples is its thread's measured
share of their CPU time (about a third each); `top --pid N --tid T` of each thread shows its own
function and not the others' (each thread has its own Python stack)."""

from harness import Daemon, Env, check, require_bpf
from pyharness import (check_share, debian_python, describe, exec_line, is_python_node,
                       of_process, py_row, py_rows, pyenv_python, python_names, query, run,
                       tolerance, version_of, walk)

require_bpf()
env = Env()

POINTS = 5
# Another thread's function on a thread's stack: none is expected; a few samples at most (a
# thread starting or ending as it is sampled). A walk of the wrong thread's stack gives two
# thirds.
OTHER_THREAD_PCT = 1.0
SECONDS = 4

interpreters = [("Debian python3", debian_python())]
py312, why = pyenv_python(12)
if py312:
    interpreters.append(("pyenv", py312))
else:
    print(f"SKIPPED (3.12, inlined comprehensions): {why}")


def nearest_python(path):
    return next((a for a in reversed(path) if is_python_node(a)), None)


def recursion_depth(tree, name):
    """The longest chain of nested Python nodes named name in a tree answer (native frames
    between them, as 3.8-3.10 have for every call, are passed over)."""
    best = 0
    for node, path in walk(tree["rows"]):
        if node["function"] != name or not is_python_node(node):
            continue
        depth = 1
        for a in reversed(path):
            if not is_python_node(a):
                continue
            if a["function"] != name:
                break
            depth += 1
        best = max(best, depth)
    return best


def check_shapes(d, label, python):
    pid, res = run(python, "shapes", SECONDS)
    version = version_of(res)
    label = f"{label} {'.'.join(map(str, version))}"
    qual = version >= (3, 11)
    crunch = "Pipeline.crunch" if qual else "crunch"
    print(f"\n{label} shapes (pid {pid}): measured {res['seconds']}, cpu {res['cpu']:.3f} s")
    check(crunch in res["seconds"],
          f"{label}: the interpreter names the coroutine {crunch} ({sorted(res['seconds'])})")
    top = query(d, "top", "--pid", str(pid), "-n", "1000")
    tree = query(d, "tree", "--pid", str(pid), "--min-pct", "0")
    if top is None:
        return
    n = top["samples"]
    print(f"{label}: {describe(top)}")
    for name in ("recurse", "produce", crunch, "<lambda>", "squares", "exec_work"):
        check_share(top, name, of_process(res, name), POINTS, what=f"TOTAL% ({label})")

    # Recursion: one row, counted once per sample.
    rec = py_rows(top, "recurse")
    want = of_process(res, "recurse")
    tol, which = tolerance(want, n, POINTS)
    check(len(rec) == 1, f"{label}: recurse has one row ({len(rec)})")
    if rec:
        r = rec[0]
        check(r["self_pct"] <= r["total_pct"] <= want + tol and r["self_pct"] <= want + tol,
              f"{label}: recurse SELF% {r['self_pct']} <= TOTAL% {r['total_pct']} <= measured "
              f"{want:.1f}% ({which}): not counted once per frame")

    # Comprehensions: a frame of their own before 3.12, inlined from 3.12.
    comp = [r["function"] for r in py_rows(top) if "<listcomp>" in r["function"]]
    if version >= (3, 12):
        check(not comp, f"{label}: the comprehension is inlined into squares: no <listcomp> "
              f"row ({comp})")
    else:
        name = "squares.<locals>.<listcomp>" if qual else "<listcomp>"
        check_share(top, name, of_process(res, "squares"), POINTS,
                    what=f"TOTAL% ({label}; the comprehension of squares, at most its time)")

    ex = py_row(top, "exec_work")
    check(ex is not None and "<exec-code>" in (ex.get("file") or ""),
          f"{label}: exec_work, from exec'd source, is in {ex and ex.get('file')!r} "
          f"(want '<exec-code>')")

    # lines of code that is not in a file: the lines, without text.
    line, _ = exec_line("# hot: exec")
    lx = query(d, "lines", "--pid", str(pid), "--function", "exec_work")
    if lx is not None:
        rows = lx.get("rows") or []
        r = rows[0] if rows else {}
        print(f"{label}: lines --function exec_work: "
              f"{[(x.get('file'), x.get('line'), x.get('text')) for x in rows[:4]]}")
        check(r.get("line") == line and "<exec-code>" in (r.get("file") or "") and
              r.get("text") is None,
              f"{label}: exec_work's hottest line is {r.get('file')}:{r.get('line')} "
              f"(want <exec-code>:{line}, the loop body) without text ({r.get('text')!r}: "
              "there is no file to read)")

    if tree is None:
        return
    depth = recursion_depth(tree, "recurse")
    check(depth == 20, f"{label}: tree: recurse nested {depth} deep (want 20)")
    parents = {}
    for node, path in walk(tree["rows"]):
        if is_python_node(node) and node["function"] in ("produce", "<listcomp>",
                                                    "squares.<locals>.<listcomp>"):
            p = nearest_python(path)
            key = (node["function"], p and p["function"])
            parents[key] = parents.get(key, 0) + node["total_samples"]
    gen = sum(v for (f, _), v in parents.items() if f == "produce")
    check(gen > 0 and parents.get(("produce", "shapes"), 0) == gen,
          f"{label}: tree: the generator produce runs under its consumer shapes "
          f"({parents})")
    if version < (3, 12):
        comp_samples = {p: v for (f, p), v in parents.items() if f != "produce"}
        check(comp_samples and set(comp_samples) == {"squares"},
              f"{label}: tree: the comprehension's frame is under squares ({comp_samples})")


def check_threads(d, python):
    pid, res = run(python, "threads", SECONDS)
    threads = res.get("threads") or []
    names = [t["function"] for t in threads]
    print(f"\nthreads (pid {pid}): {threads}")
    if not check(len(threads) == 3, f"the workload ran 3 threads ({names})"):
        return
    top = query(d, "top", "--pid", str(pid), "-n", "1000")
    if top is not None:
        print(f"threads: {describe(top)}")
        rows = {t: py_row(top, t) for t in names}
        n3 = sum(r["total_samples"] for r in rows.values() if r)
        spent = sum(t["in_function"] for t in threads)
        for t in threads:
            want = 100 * t["in_function"] / spent
            r = rows[t["function"]]
            got = 100 * r["total_samples"] / n3 if r and n3 else None
            tol, which = tolerance(want, n3, POINTS)
            check(got is not None and abs(got - want) <= tol,
                  f"{t['function']}: {got and round(got, 1)}% of the three functions' "
                  f"{n3} samples vs its thread's measured {want:.1f}% ({which})"
                  + ("" if r else f"; {python_names(top)}"))
    for t in threads:
        tt = query(d, "top", "--pid", str(pid), "--tid", str(t["tid"]), "-n", "1000")
        if tt is None:
            continue
        want = 100 * t["in_function"] / t["cpu"] if t["cpu"] > 0 else 0
        print(f"tid {t['tid']} ({t['function']}): {describe(tt)}")
        # Of the thread's samples that carry its Python stack: those taken before profqd read
        # the new thread from the interpreter's list (its first samples are what tell it to,
        # handled a few tens of ms later on a loaded machine) have the native stack only.
        # Its outermost Python frame (threading's bootstrap) is on every one of the others.
        outer = max((r["total_samples"] for r in py_rows(tt)), default=0)
        r = py_row(tt, t["function"])
        got = 100 * r["total_samples"] / outer if r and outer else None
        tol, which = tolerance(want, outer, POINTS)
        print(f"tid {t['tid']}: {outer} of {tt['samples']} samples carry Python frames")
        check(got is not None and abs(got - want) <= tol,
              f"{t['function']}: {got and round(got, 1)}% of thread {t['tid']}'s {outer} "
              f"samples with Python frames vs measured {want:.1f}% ({which})"
              + ("" if r else f"; {python_names(tt)}"))
        check(outer >= tt["samples"] * 0.8,
              f"thread {t['tid']}: most of its samples carry Python frames "
              f"({outer} of {tt['samples']})")
        others = {o: (py_row(tt, o) or {}).get("total_pct", 0) for o in names
                  if o != t["function"]}
        check(all(v <= OTHER_THREAD_PCT for v in others.values()),
              f"thread {t['tid']} ({t['function']}): the other threads' functions are not on "
              f"its stack ({others}, at most {OTHER_THREAD_PCT}%)")


with Daemon(env) as d:
    for label, python in interpreters:
        check_shapes(d, label, python)
    check_threads(d, debian_python())
