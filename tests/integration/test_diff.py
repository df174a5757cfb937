#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq diff (docs/profq.1, "diff") between two runs of the split workload with different splits:
work_a goes from its measured share in the first to its measured share in the second, rows are
ranked by the size of the change, the same profile against itself changes nothing, and bad ranges
are usage errors. Shares are compared within the sampling error of each side's samples."""

import math

from harness import (Z, Daemon, Env, SplitTruth, check, near, require, require_bpf, run_workload,
                     share_error, share_tolerance)

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
