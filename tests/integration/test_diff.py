#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profq diff (SPEC 11) between two runs of the split workload with different splits: work_a
goes from its measured share in the first to its measured share in the second, rows are ranked
by the size of the change, the same profile against itself changes nothing, and bad ranges are
usage errors."""

from harness import Daemon, Env, check, near, require_bpf, run_workload, truth_of

require_bpf()
env = Env()

with Daemon(env) as d:
    pa, out_a = run_workload(env, "split", "--seconds", 2.5, "--a", 80, output=True)
    pb, out_b = run_workload(env, "split", "--seconds", 2.5, "--a", 20, output=True)
    ta, tb = 100 * truth_of(out_a)["work_a"], 100 * truth_of(out_b)["work_a"]

    diff = d.json("diff", "--pid", str(pb), "--base-pid", str(pa), "--sort", "total", "-n", "50")
    check(diff["base"]["pid"] == pa and diff["with"]["pid"] == pb and
          diff["base"]["samples"] > 1000 and diff["with"]["samples"] > 1000,
          f"both sides answered ({diff['base']['samples']}, {diff['with']['samples']} samples)")
    rows = {r["function"]: r for r in diff["rows"]}
    wa, wb = rows.get("work_a"), rows.get("work_b")
    check(wa is not None and near(wa["base_total_pct"], ta, 5) and near(wa["with_total_pct"], tb, 5)
          and near(wa["delta_total_pct"], tb - ta, 7),
          f"work_a {wa and wa['base_total_pct']}% -> {wa and wa['with_total_pct']}% "
          f"(measured {ta:.1f}% -> {tb:.1f}%)")
    check(wb is not None and near(wb["delta_total_pct"], ta - tb, 7),
          f"work_b changed the other way ({wb and wb['delta_total_pct']})")
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
