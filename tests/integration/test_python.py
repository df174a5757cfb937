#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python frames of Debian's /usr/bin/python3 (3.11), an unmodified interpreter (no flags)
running python/workload.py, whose functions' CPU time it measures itself with time.thread_time():

- a process started before profqd is named too: its methods' TOTAL% is their measured share;
- split, started while profqd runs: `top` rows for Worker.parse, Worker.render and Worker.digest
  carry "python": true and the .py file, with their measured shares (within 5 points, or Z
  standard errors of the sample count where that is larger); hardly any frame is left unnamed
  ([python]) but the bodies of modules being imported; `lines --function Worker.parse` puts
  the most samples on the loop body's line, with its text from the .py file; folded, flame
  and pprof carry the Python frames, on as many samples as top counts; `--no-python` shows the
  interpreter's native stacks (_PyEval_EvalFrameDefault) and no Python row;
- native code under Python: pack() calls zlib.compress in a loop: in `tree` every libz frame
  (deflate...) has pack as its nearest Python ancestor; with --no-python there is no Python node
  and the libz frames are under _PyEval_EvalFrameDefault;
- a 0.3 s script started while profqd runs: after it exited, `top --pid N` names its hot
  function, burst, as the Python row with the most samples of its own."""

import gzip
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

from harness import Daemon, Env, check, require_bpf, tempdir
from pyharness import (WORKLOAD, check_share, debian_python, describe, finish, frame_is, go,
                       is_python, is_python_node, marked_line, of_process, py_row, py_rows,
                       python_names, query, run, start, text_query, tolerance, walk)

require_bpf()
env = Env()
python = debian_python()
tmp = tempdir("profq-python-")

POINTS = 5
NAMES = ("Worker.parse", "Worker.render", "Worker.digest")
EVAL = "_PyEval_EvalFrameDefault"
# Samples whose Python frames may be missing or unnamed although every frame of the workload
# has a name: none is expected; 1% allows for the odd sample taken while the interpreter is
# between two consistent states. A walk that fails outright loses most of them. Not counted: the
# body of a module being imported (the frame PyEval_EvalCode runs), whose code object is released
# when the import ends, often before profqd reads it (more often the further profqd is behind).
UNNAMED = 0.01


def unnamed_frames(frames, module_body):
    """Does the stack have a [python] frame that is (module_body) or is not a module's body?"""
    return any(f == "[python]" and (i > 0 and frames[i - 1] == "PyEval_EvalCode") == module_body
               for i, f in enumerate(frames))


def folded_stacks(text):
    """[(frames, count)] of folded output."""
    stacks = []
    for line in text.splitlines():
        m = re.fullmatch(r"(\S.*) (\d+)", line)
        if m:
            stacks.append((m.group(1).split(";"), int(m.group(2))))
    return stacks


def with_frame(stacks, name):
    return sum(n for frames, n in stacks if any(frame_is(f, name) for f in frames))


def flame_samples(svg, name):
    """Samples of the boxes named name in a flame graph (data-name, data-n): boxes are
    siblings in document order, one per call path; these functions do not recurse, so no
    sample is in two of their boxes."""
    root = ET.parse(svg).getroot()
    return sum(int(g.get("data-n", "0")) for g in root.iter()
               if frame_is(g.get("data-name") or "", name))


def pprof_cum(pb):
    """{function: cum%} from go tool pprof -top -cum, or None."""
    go_tool = shutil.which("go")
    if not go_tool:
        print("SKIPPED (pprof): go is not installed")
        return None
    genv = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp, GOCACHE=os.path.join(tmp, "gocache"))
    p = subprocess.run([go_tool, "tool", "pprof", "-symbolize=none", "-top", "-cum",
                        "-sample_index=samples", "-nodecount=500", pb],
                       capture_output=True, text=True, timeout=120, env=genv)
    if not check(p.returncode == 0, f"go tool pprof reads the profile ({p.stderr.strip()[:300]})"):
        return None
    cum = {}
    for line in p.stdout.splitlines():
        w = line.split(None, 5)
        if len(w) == 6 and w[1].endswith("%") and w[4].endswith("%"):
            cum[w[5].strip()] = float(w[4][:-1])
    return cum


# ---- a process started before profqd ----
early, early_pid = start(python, "split", 3, wait=True)
with Daemon(env) as d:
    d.wait_caught_up()
    go(early)
    res = finish(early)
    # What profqd could sample: from "go" on (it was ready before).
    share = {n: 100 * res["seconds"][n] / (res["cpu"] - res["cpu_start"]) for n in NAMES}
    top = query(d, "top", "--pid", str(early_pid), "-n", "1000")
    if top is not None:
        print(f"started before profqd (pid {early_pid}): {describe(top)}")
        for name in NAMES:
            check_share(top, name, share[name], POINTS, what="TOTAL% (started before profqd)")

    # ---- split, started while profqd runs ----
    pid, res = run(python, "split", 4)
    print(f"\nsplit (pid {pid}): measured {res['seconds']}, cpu {res['cpu']:.3f} s")
    top = query(d, "top", "--pid", str(pid), "-n", "1000")
    if top is not None:
        n = top["samples"]
        print(f"top: {describe(top)}")
        for name in NAMES:
            check_share(top, name, of_process(res, name), POINTS)
            r = py_row(top, name)
            if r:
                check(r.get("file") and os.path.realpath(r["file"]) == WORKLOAD,
                      f"{name}'s file is {r.get('file')} (want {WORKLOAD})")
        check(all(not is_python(r) for r in top["rows"]
                  if r["function"] in ("_PyEval_EvalFrameDefault", "PyObject_Free")),
              "native rows do not carry \"python\": true")
        plain = text_query(d, "top", "--pid", str(pid), "--once", "-n", "50")
        check(plain is not None and "Worker.parse" in plain,
              "the plain table shows Worker.parse")

    # lines: the loop body is the hot line, with its text.
    line, text = marked_line("# hot: parse")
    ln = query(d, "lines", "--pid", str(pid), "--function", "Worker.parse")
    if ln is not None:
        rows = ln.get("rows") or []
        print(f"lines --function Worker.parse: "
              f"{[(r.get('line'), r.get('self_samples'), r.get('text')) for r in rows[:5]]}")
        r = rows[0] if rows else {}
        check(r.get("line") == line and r.get("function") == "Worker.parse" and
              os.path.realpath(r.get("file") or "/") == WORKLOAD,
              f"the hottest line of Worker.parse is {r.get('file')}:{r.get('line')} "
              f"(want {WORKLOAD}:{line}, the loop body)")
        check(r.get("text") == text,
              f"it carries its text: {r.get('text')!r} (want {text!r})")

    # Exports: the Python frames, on as many samples as top counts.
    counts = {name: (py_row(top, name) or {}).get("total_samples") for name in NAMES} \
        if top else {}
    folded = text_query(d, "folded", "--pid", str(pid))
    if folded is not None and top is not None:
        stacks = folded_stacks(folded)
        n = top["samples"]
        unnamed = sum(c for frames, c in stacks if unnamed_frames(frames, module_body=False))
        bodies = sum(c for frames, c in stacks if unnamed_frames(frames, module_body=True))
        if not check(unnamed <= UNNAMED * n,
                     f"Python frames left unnamed ([python]) other than module bodies: {unnamed} "
                     f"of {n} samples (at most {100 * UNNAMED:g}%: every frame of this workload "
                     f"has a name; module bodies unnamed on {bodies})"):
            print(f"  status.python: {d.json('status').get('python')}")
        for name in NAMES:
            got = with_frame(stacks, name)
            check(counts[name] is not None and got == counts[name] and got > 0,
                  f"folded: {got} samples with {name} on the stack (top: {counts[name]})")
    svg = os.path.join(tmp, "flame.svg")
    if text_query(d, "flame", "--pid", str(pid), "-o", svg) is not None and top is not None:
        try:
            for name in NAMES:
                got = flame_samples(svg, name)
                want = counts[name]
                # Boxes narrower than the graph shows are left out: at most 1% of the samples.
                check(want is not None and want - 0.01 * top["samples"] <= got <= want,
                      f"flame: {name}'s boxes hold {got} samples (top: {want})")
        except ET.ParseError as e:
            check(False, f"the SVG is well-formed XML: {e}")
    pb = os.path.join(tmp, "cpu.pb.gz")
    if text_query(d, "pprof", "--pid", str(pid), "-o", pb) is not None and top is not None:
        with open(pb, "rb") as f:
            check(len(gzip.decompress(f.read())) > 0, "pprof wrote a gzip file")
        cum = pprof_cum(pb) or {}
        for name in NAMES:
            got = next((v for f, v in cum.items() if frame_is(f, name)), None)
            want = (py_row(top, name) or {}).get("total_pct")
            # Both round to hundredths of a percent.
            check(got is not None and want is not None and abs(got - want) <= 0.02,
                  f"pprof: {name} cum {got}% (top: {want}%)")

    # --no-python: the native stacks the interpreter ran.
    native = query(d, "top", "--pid", str(pid), "-n", "1000", "--no-python")
    if native is not None:
        print(f"top --no-python: {describe(native)}")
        check(not py_rows(native) and not any(r["function"] in NAMES for r in native["rows"]),
              f"--no-python: no Python rows ({python_names(native)})")
        ev = next((r for r in native["rows"] if r["function"] == EVAL), None)
        want = 100 * sum(res["seconds"].values()) / res["cpu"]
        tol, which = tolerance(want, native["samples"], POINTS)
        check(ev is not None and ev["total_pct"] >= want - tol,
              f"--no-python: {EVAL} total {ev and ev['total_pct']}% >= the methods' "
              f"{want:.1f}% ({which})")
    if folded is not None:
        nf = text_query(d, "folded", "--pid", str(pid), "--no-python")
        if nf is not None:
            frames = {f for s, _ in folded_stacks(nf) for f in s}
            check(any(frame_is(f, EVAL) for f in frames) and
                  not any(frame_is(f, name) for f in frames for name in NAMES),
                  f"folded --no-python: {EVAL} and none of {NAMES} on the stacks")

    # ---- native code under Python: zlib.compress -> deflate ----
    zpid, zres = run(python, "zlib", 2.5)
    tree = query(d, "tree", "--pid", str(zpid), "--min-pct", "0")
    if tree is not None:
        n = tree["samples"]
        libz_all = libz_under = 0
        parents = set()
        for node, path in walk(tree["rows"]):
            if "libz" not in (node.get("module") or "") or \
                    any("libz" in (a.get("module") or "") for a in path):
                continue  # only the outermost libz frame of each path
            libz_all += node["total_samples"]
            nearest = next((a for a in reversed(path) if is_python_node(a)), None)
            parents.add(nearest and nearest["function"])
            if nearest and nearest["function"] == "pack":
                libz_under += node["total_samples"]
        print(f"zlib (pid {zpid}): libz frames on {libz_all} of {n} samples, under pack "
              f"{libz_under}; their nearest Python frames: {parents}")
        pack = next((x for x, _ in walk(tree["rows"]) if x["function"] == "pack" and
                     is_python_node(x)), None)
        want = of_process(zres, "pack")
        tol, which = tolerance(want, n, POINTS)
        check(pack is not None and abs(pack["total_pct"] - want) <= tol,
              f"tree: pack total {pack and pack['total_pct']}% vs measured {want:.1f}% "
              f"({which})")
        check(libz_all > 0 and libz_all - libz_under <= UNNAMED * n,
              f"tree: the libz frames are under the Python function pack "
              f"({libz_under} of {libz_all} samples, all but {100 * UNNAMED:g}% of the "
              f"process's {n}; nearest Python frames {parents})")
    ntree = query(d, "tree", "--pid", str(zpid), "--min-pct", "0", "--no-python")
    if ntree is not None:
        nodes = list(walk(ntree["rows"]))
        check(not any(is_python_node(x) or x["function"] == "pack" for x, _ in nodes),
              "tree --no-python: no Python node")
        libz = [(x, p) for x, p in nodes if "libz" in (x.get("module") or "") and
                not any("libz" in (a.get("module") or "") for a in p)]
        under_eval = sum(x["total_samples"] for x, p in libz
                         if any(a["function"] == EVAL for a in p))
        total = sum(x["total_samples"] for x, _ in libz)
        # A native unwind can stop short inside libz (a stack copy too short): those few
        # samples reach no caller at all, as in the check above.
        check(total > 0 and total - under_eval <= UNNAMED * ntree["samples"],
              f"tree --no-python: the libz frames are under {EVAL} ({under_eval} of {total}, "
              f"all but {100 * UNNAMED:g}% of the process's {ntree['samples']})")

    # ---- a 0.3 s script ----
    bpid, bres = run(python, "burst", 0.3)
    top = query(d, "top", "--pid", str(bpid), "-n", "1000")
    if top is not None:
        want = of_process(bres, "burst")
        rows = sorted(py_rows(top), key=lambda r: -r["self_samples"])
        r = py_row(top, "burst")
        print(f"burst (pid {bpid}, exited): measured {want:.1f}% of {bres['cpu']:.3f} s; "
              f"profq {r and r['total_pct']}% of {top['samples']} samples; {describe(top)}")
        check(rows and rows[0]["function"] == "burst",
              f"a 0.3 s script, after it exited: its hot function burst is the Python row with "
              f"the most samples ({python_names(top)})")
