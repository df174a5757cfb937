#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq diff (docs/profq.1, "diff") between two runs of the split workload with different splits:
work_a goes from its measured share in the first to its measured share in the second, rows are
ranked by the size of the change, the same profile against itself changes nothing, and bad ranges
are usage errors. Shares are compared within the sampling error of each side's samples. diff -o
writes a differential flame graph whose colours and figures are the table's; flame --icicle puts
the roots at the top."""

import math
import os
import re
import xml.etree.ElementTree as ET

from harness import (Z, Daemon, Env, SplitTruth, check, near, require, require_bpf, run_workload,
                     share_error, share_tolerance, tempdir)

SVG = "{http://www.w3.org/2000/svg}"

require_bpf()
env = Env()

with Daemon(env) as d:
    pa, out_a = run_workload(env, "split", "--seconds", 2.5, "--a", 80, output=True)
    pb, out_b = run_workload(env, "split", "--seconds", 2.5, "--a", 20, output=True)
    sa, sb = SplitTruth(out_a), SplitTruth(out_b)
    ta, tb = sa.of_process("work_a"), sb.of_process("work_a")

    diff = d.json("diff", "--pid", str(pb), "--base-pid", str(pa), "--sort", "total", "-n", "50")
    na, nb = diff["base"]["samples"], diff["with"]["samples"]
    require(diff["base"]["pid"] == pa and diff["with"]["pid"] == pb and na > 0 and nb > 0,
            f"both sides answered ({na}, {nb} samples)")
    rows = {r["function"]: r for r in diff["rows"]}
    wa, wb = rows.get("work_a"), rows.get("work_b")
    tol_a, tol_b = share_tolerance(ta / 100, na), share_tolerance(tb / 100, nb)
    # Two independent estimates: their errors add in quadrature.
    tol_d = 100 * Z * math.hypot(share_error(ta / 100, na), share_error(tb / 100, nb))
    check(wa is not None and near(wa["base_total_pct"], ta, tol_a) and
          near(wa["with_total_pct"], tb, tol_b) and near(wa["delta_total_pct"], tb - ta, tol_d),
          f"work_a {wa and wa['base_total_pct']}% -> {wa and wa['with_total_pct']}% "
          f"(measured {ta:.1f}% ±{tol_a:.1f} -> {tb:.1f}% ±{tol_b:.1f})")
    ua, ub = sa.of_process("work_b"), sb.of_process("work_b")
    tol_d = 100 * Z * math.hypot(share_error(ua / 100, na), share_error(ub / 100, nb))
    check(wb is not None and near(wb["delta_total_pct"], ub - ua, tol_d),
          f"work_b changed the other way ({wb and wb['delta_total_pct']}, measured "
          f"{ub - ua:+.1f} ±{tol_d:.1f})")
    deltas = [abs(r["delta_total_pct"]) for r in diff["rows"]]
    # outer_a and outer_b move with work_a and work_b (they call nothing else).
    first = [r["function"] for r in diff["rows"][:4]]
    check(deltas == sorted(deltas, reverse=True) and "work_a" in first and "work_b" in first,
          f"ranked by the size of the change: {first}")
    same = d.json("diff", "--pid", str(pb), "--base", "all", "-n", "100")
    check(len(same["rows"]) > 0 and all(r["delta_self_pct"] == 0 for r in same["rows"]),
          f"a profile against itself: no change ({len(same['rows'])} rows)")
    rc, text, _ = d.profq("diff", "--pid", str(pb), "--base-pid", str(pa), "--sort", "total")
    check(rc == 0 and "work_a" in text and "CHANGE" in text, "plain output")
    for bad in (["--base", "5m..10m"], ["--base", "yesterday"], []):
        rc, _, err = d.profq("diff", "--pid", str(pb), *bad, check_rc=False)
        check(rc == 2, f"diff {' '.join(bad)}: usage error ({err.strip().splitlines()[0]})")
    rc, _, _ = d.profq("diff", "--pid", str(pb), "--base-pid", "4194304", check_rc=False)
    check(rc == 1, f"a base without samples: nothing found ({rc})")

    # -o: a differential flame graph, the with side's boxes coloured by the change of their
    # share: work_a (its share fell) blue, work_b (rose) red, the root unchanged (white); its
    # title gives both shares and the change, which are those of the table's rows (their
    # total%: a box holds every sample with its path, and work_a has one path here).
    svg_path = os.path.join(tempdir("profq-test-diff-"), "diff.svg")
    rc, _, err = d.profq("diff", "--pid", str(pb), "--base-pid", str(pa), "-o", svg_path)
    check(rc == 0 and "Wrote" in err, f"diff -o wrote the SVG ({err.strip()})")
    boxes = {}
    for g in ET.parse(svg_path).getroot().iter(SVG + "g"):
        if g.get("class") == "f":
            boxes.setdefault(g.get("data-name"), []).append(g)
    legend = " ".join(t.text or "" for t in ET.parse(svg_path).getroot().iter(SVG + "text"))

    def fill(name):
        m = re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", boxes[name][0].get("data-fill"))
        return tuple(map(int, m.groups()))

    def title(name):
        return boxes[name][0].find(SVG + "title").text

    require("work_a" in boxes and "work_b" in boxes and "all" in boxes,
            f"the boxes of the with side ({sorted(boxes)[:8]})")
    ra, ga, ba = fill("work_a")
    rb, gb, bb = fill("work_b")
    check(ba == 255 and ra < 255 and rb == 255 and bb < 255 and fill("all") == (255, 255, 255),
          f"work_a blue {fill('work_a')}, work_b red {fill('work_b')}, all white")
    m = re.search(r"(\d+\.\d+)% \(base (\d+\.\d+)%: ([-+]\d+\.\d+) points\)", title("work_a"))
    check(m is not None and len(boxes["work_a"]) == 1 and
          near(float(m.group(1)), wa["with_total_pct"], 0.02) and
          near(float(m.group(2)), wa["base_total_pct"], 0.02) and
          near(float(m.group(3)), wa["delta_total_pct"], 0.02),
          f"work_a's box: {title('work_a')!r} (the table: {wa['base_total_pct']}% -> "
          f"{wa['with_total_pct']}%)")
    check("share grew" in legend and "share shrank" in legend, "a legend for the colours")
    rc, _, err = d.profq("diff", "--pid", str(pb), "--base-pid", str(pa), "-o", "-",
                         check_rc=False)
    check(rc == 2, f"diff -o -: usage error (the table is on standard output): {err.strip()}")

    # flame --icicle: the roots at the top (the "all" box above every other), a legend.
    rc, _, _ = d.profq("flame", "--pid", str(pb), "--icicle", "-o", svg_path)
    ys = {}
    for g in ET.parse(svg_path).getroot().iter(SVG + "g"):
        if g.get("class") == "f":
            ys.setdefault(g.get("data-name"), float(g.find(SVG + "rect").get("y")))
    legend = " ".join(t.text or "" for t in ET.parse(svg_path).getroot().iter(SVG + "text"))
    check(rc == 0 and ys["all"] == min(ys.values()) and ys["all"] < ys["work_b"],
          f"--icicle: the root at the top (y {ys['all']}, work_b {ys['work_b']})")
    check(all(w in legend for w in ("native code", "kernel", "inlined", "Python", "JIT")),
          "the flame graph's legend names its colours")
