#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The exports (docs/profq.1, "folded", "flame", "pprof") of the split workload, whose CPU split the
workload measures itself: `profq folded` lines sum to the process's samples and give work_a and
work_b their measured shares; `profq flame` writes a well-formed SVG whose work_a box is as wide as
that share (and, where chromium is installed, whose search finds that share in a headless browser);
`profq pprof` writes a gzipped profile that `go tool pprof` reads, with the same shares, the inlined
spin() as an inline frame of work_a, and the samples' CPU time; offline answers are the same; bad
requests and failed writes exit as docs/profq.1 (EXIT STATUS) says."""

import gzip
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

from harness import (Daemon, Env, SplitTruth, check, fail, near, require, require_bpf,
                     run_two_programs, run_workload, share_tolerance, tempdir)

require_bpf()
env = Env()
tmp = tempdir("profq-export-")
state = os.path.join(tmp, "state")
SVG = "{http://www.w3.org/2000/svg}"


def folded_of(text):
    """{stack line: count} of folded output; every line must be 'frames count'."""
    stacks = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(\S.*) (\d+)", line)
        if not m:
            fail(f"not a folded line: {line!r}")
        if m.group(1) in stacks:
            fail(f"a stack on two lines: {m.group(1)!r}")
        stacks[m.group(1)] = int(m.group(2))
    return stacks


def share(stacks, frame):
    """Percentage of the samples whose stack has frame on it."""
    total = sum(stacks.values())
    return 100 * sum(n for s, n in stacks.items() if frame in s.split(";")) / total


def box_widths(svg_path, function):
    """(widest box of function, the widest box of all): from each box's <title>, which starts
    with the function's name, and its <rect>."""
    root = ET.parse(svg_path).getroot()  # raises on malformed XML
    widths, most = [], 0.0
    for g in root.iter():
        title = g.find(f"{SVG}title")
        rect = g.find(f"{SVG}rect")
        if title is None or rect is None or rect.get("width") is None:
            continue
        w = float(rect.get("width"))
        most = max(most, w)
        if (title.text or "").startswith(function + " "):
            widths.append(w)
    return (max(widths) if widths else 0.0), most


with Daemon(env, state_dir=state) as d:
    pid, out = run_workload(env, "split", "--seconds", 4, "--a", 70, output=True)
    truth = SplitTruth(out)
    ta, tb = truth.of_process("work_a"), truth.of_process("work_b")
    top = d.json("top", "--pid", str(pid))
    n = top["samples"]
    require(n > 0, f"the workload sampled ({n} samples; measured work_a {ta:.1f}%)")
    # Every share below is compared within the sampling error of n samples.
    tol_a, tol_b = share_tolerance(ta / 100, n), share_tolerance(tb / 100, n)
    print(f"measured: work_a {ta:.1f}% ±{tol_a:.1f}, work_b {tb:.1f}% ±{tol_b:.1f} of {n}")

    # ---- folded ----
    _, text, _ = d.profq("folded", "--pid", str(pid))
    stacks = folded_of(text)
    check(sum(stacks.values()) == n, f"folded lines sum to the samples ({sum(stacks.values())})")
    sa, sb = share(stacks, "work_a"), share(stacks, "work_b")
    check(near(sa, ta, tol_a) and near(sb, tb, tol_b),
          f"folded: work_a {sa:.1f}% (measured {ta:.1f}%), work_b {sb:.1f}% ({tb:.1f}%)")
    hot = max(stacks, key=stacks.get)
    check(hot.startswith("_start;") and hot.endswith(";work_a;spin_[i]") and
          ";main;run;outer_a;work_a;" in hot,
          f"outermost frame first, the inlined leaf marked _[i]: {hot}")
    check(any(s.split(";")[-1].endswith("_[k]") for s in stacks), "kernel frames marked _[k]")
    check(list(stacks) == sorted(stacks), "lines sorted")
    _, noinl, _ = d.profq("folded", "--pid", str(pid), "--no-inline")
    nf = folded_of(noinl)
    check(not any(f.startswith("spin") for s in nf for f in s.split(";")) and
          near(share(nf, "work_a"), ta, tol_a),
          "--no-inline folds spin into work_a")
    raw = d.json("folded", "--pid", str(pid))
    check(raw["samples"] == n and raw["truncated_samples"] == 0 and
          sum(s["samples"] for s in raw["stacks"]) == n and
          all(0 <= i < len(raw["frames"]) for s in raw["stacks"] for i in s["frames"]),
          f"folded --json: the stacks answer ({len(raw['stacks'])} stacks, "
          f"{len(raw['frames'])} frames)")
    path = os.path.join(tmp, "out.folded")
    d.profq("folded", "--pid", str(pid), "-o", path)
    with open(path) as f:
        check(f.read() == text, "-o FILE holds what standard output got")

    # ---- flame ----
    svg = os.path.join(tmp, "flame.svg")
    _, _, err = d.profq("flame", "--pid", str(pid), "-o", svg)
    check(os.path.getsize(svg) > 1000 and "Wrote" in err, f"flame wrote {svg}: {err.strip()}")
    try:
        wa, full = box_widths(svg, "work_a")
    except ET.ParseError as e:
        fail(f"the SVG is not well-formed XML: {e}")
    check(full > 0 and near(100 * wa / full, ta, tol_a),
          f"work_a's box is {100 * wa / full if full else 0:.1f}% of the width "
          f"(measured {ta:.1f}%)")
    with open(svg) as f:
        body = f.read()
    check(f"pid {pid} (split)" in body and "<script" in body and "http://" not in
          body.replace("http://www.w3.org/", ""),
          "titled, interactive, nothing loaded from elsewhere")
    # The script runs in a browser: a "#search=" link paints work_a and says its share.
    chromium = shutil.which("chromium")
    if not chromium:
        print("SKIPPED (flame in a browser): no chromium")
    else:
        p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--user-data-dir=" + os.path.join(tmp, "chromium"), "--dump-dom",
                            f"file://{svg}#search=^work_a$"],
                           capture_output=True, text=True, timeout=120)
        m = re.search(r'id="matched"[^>]*>Matched: ([0-9.]+)%<', p.stdout)
        check(m is not None and near(float(m.group(1)), ta, tol_a) and
              "rgb(230,0,230)" in p.stdout,
              f"chromium: search matched {m and m.group(1)}% (measured {ta:.1f}%)")
    summary = d.json("flame", "--pid", str(pid), "-o", svg)
    check(summary["samples"] == n and summary["output"] == svg, "flame --json: a summary")

    # ---- --from: stacks through a function, rooted at it ----
    _, ftext, _ = d.profq("folded", "--pid", str(pid), "--from", "outer_a")
    fa = folded_of(ftext)
    full_a = sum(c for st, c in stacks.items() if "outer_a" in st.split(";"))
    check(fa and all(st.split(";")[0] == "outer_a" for st in fa) and
          sum(fa.values()) == full_a,
          f"folded --from outer_a: every stack starts at outer_a, with its {full_a} samples "
          f"({sum(fa.values())})")

    # ---- --children: a root frame per process name ----
    cxx_pid, sh_pid = run_two_programs(env)
    cxx_n = d.json("top", "--pid", str(cxx_pid))["samples"]
    _, ftext, _ = d.profq("folded", "--pid", str(sh_pid), "--children")
    fc = folded_of(ftext)
    roots = {}
    for st, c in fc.items():
        roots[st.split(";")[0]] = roots.get(st.split(";")[0], 0) + c
    check(roots.get("cxx") == cxx_n and "split" in roots and
          all(not st.startswith("_start") for st in fc),
          f"folded --children: a root per process name, cxx's with its {cxx_n} samples "
          f"({roots})")
    _, ftext, _ = d.profq("folded", "--pid", str(sh_pid), "--children", "--group", "none")
    check(all(not st.startswith(("cxx;", "split;")) for st in folded_of(ftext)),
          "--group none: no process roots")
    svg_c = os.path.join(tmp, "children.svg")
    d.profq("flame", "--pid", str(sh_pid), "--children", "-o", svg_c)
    wc, full_c = box_widths(svg_c, "cxx")
    check(full_c > 0 and near(100 * wc / full_c, 100 * cxx_n / sum(roots.values()), 1),
          f"flame --children: cxx's box is its share ({100 * wc / full_c if full_c else 0:.1f}%)")

    # ---- pprof ----
    pb = os.path.join(tmp, "cpu.pb.gz")
    d.profq("pprof", "--pid", str(pid), "-o", pb)
    with open(pb, "rb") as f:
        check(gzip.decompress(f.read())[:1] != b"", "pprof wrote a gzip file")
    go = shutil.which("go")
    if not go:
        fail("go tool pprof is needed (scripts/install-deps installs golang-go)")
    genv = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp, GOCACHE=os.path.join(tmp, "gocache"))

    def pprof_top(*args):
        p = subprocess.run([go, "tool", "pprof", "-symbolize=none", *args, pb],
                           capture_output=True, text=True, timeout=120, env=genv)
        if p.returncode != 0:
            fail(f"go tool pprof {' '.join(args)} failed: {p.stderr}")
        return p.stdout

    cum = pprof_top("-top", "-cum", "-sample_index=samples", "-nodecount=200")
    m = re.search(r"of (\d+) total", cum)
    check(m is not None and int(m.group(1)) == n,
          f"go tool pprof reads it: {m and m.group(1)} samples in all")
    rows = {}
    for line in cum.splitlines():
        w = line.split()
        if len(w) >= 6 and w[1].endswith("%") and w[4].endswith("%"):
            rows[w[5]] = (float(w[1][:-1]), float(w[4][:-1]))
    check("work_a" in rows and near(rows["work_a"][1], ta, tol_a) and
          "work_b" in rows and near(rows["work_b"][1], tb, tol_b),
          f"pprof cum: work_a {rows.get('work_a')}, work_b {rows.get('work_b')} "
          f"(measured {ta:.1f}%, {tb:.1f}%)")
    # spin is all of work_a's and work_b's bodies, inlined: their samples are its samples (a
    # sample on a call or return instruction of theirs aside; interrupts taken while it ran are
    # its callees). Compared with what the same profile gives them, which the check above
    # compares with what the workload measured: a start-up that takes a larger share of a
    # loaded machine's CPU moves both alike.
    works = rows.get("work_a", (0, 0))[1] + rows.get("work_b", (0, 0))[1]
    # Their own instructions' samples (flat) are not spin's; one sample's worth; and pprof's
    # rounding of the three figures to hundredths (a sample short failed by 1e-14 once).
    tol = rows.get("work_a", (0, 0))[0] + rows.get("work_b", (0, 0))[0] + 100 / n + 3 * 0.005
    check("spin" in rows and rows["spin"][1] >= works - tol and
          rows["spin"][0] > rows.get("work_a", (100, 0))[0],
          f"the inlined spin holds the time ({rows.get('spin')} flat, cum; >= work_a + work_b "
          f"{works:.2f}% -{tol:.2f}, measured {ta + tb:.1f}%)")
    raw_text = pprof_top("-raw")
    check("cpu/nanoseconds" in raw_text and "samples/count" in raw_text,
          "sample types samples/count and cpu/nanoseconds")
    # -raw lists each location's lines, the innermost first and each caller it is inlined
    # into on a continuation line: "  7: 0x0 M=1 spin split.c:30 s=0\n          work_a ..."
    inl = re.search(r"^\s+\d+: .*\bspin\b.*\n\s+work_a\b", raw_text, re.M)
    check(inl is not None,
          "a location holds spin with work_a, which it is inlined into: "
          + (inl.group(0).split("\n")[0].strip() if inl else raw_text[-2000:]))

    # ---- errors ----
    rc, _, err = d.profq("folded", check_rc=False)
    check(rc == 2 and "--pid" in err, f"folded without --pid: usage error ({rc})")
    rc, _, _ = d.profq("flame", "--pid", str(pid), check_rc=False)
    check(rc == 2, f"flame without -o: usage error ({rc})")
    rc, _, err = d.profq("pprof", "--pid", str(pid), "-o", os.path.join(tmp, "no", "x.pb.gz"),
                         check_rc=False)
    check(rc == 2 and "Failed to open" in err, f"an output that cannot be made: {err.strip()}")
    rc, _, _ = d.profq("folded", "--pid", "4194304", check_rc=False)
    check(rc == 1, f"a pid without samples: nothing found ({rc})")
    rc, _, err = d.profq("flame", "--pid", str(pid), "-o", "/dev/full", check_rc=False)
    check(rc == 2 and "Failed to write '/dev/full'" in err and "No space" in err,
          f"a write that fails: said, exit 2 ({err.strip()})")
    # -o replaces a file whole or not at all: on a full disk the old one stays.
    small = os.path.join(tmp, "small")
    os.mkdir(small)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", small],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f"SKIPPED (full disk): cannot mount a tmpfs: {mounted.stderr.strip()}")
    else:
        try:
            old = os.path.join(small, "flame.svg")
            with open(old, "w") as f:
                f.write("old")
            rc, _, err = d.profq("flame", "--pid", str(pid), "-o", old, check_rc=False)
            with open(old) as f:
                kept = f.read()
            check(rc == 2 and kept == "old" and os.listdir(small) == ["flame.svg"],
                  f"disk full: the old file kept, no temporary left ({rc}, {err.strip()})")
        finally:
            subprocess.run(["umount", small])
    # a new file is 0666 less the umask, as > makes it
    umasked = os.path.join(tmp, "umask.folded")
    p = subprocess.run(["sh", "-c", 'umask 027; exec "$@"', "sh", env.profq, "--socket",
                        d.socket, "folded", "--pid", str(pid), "-o", umasked],
                       capture_output=True, text=True, timeout=60)
    mode = os.stat(umasked).st_mode & 0o777
    check(p.returncode == 0 and mode == 0o640, f"a new file: mode {mode:o} under umask 027")

# ---- offline, from the state dir the daemon left ----
p = subprocess.run([env.profq, "--state-dir", state, "folded", "--pid", str(pid)],
                   capture_output=True, text=True, timeout=60)
check(p.returncode == 0 and p.stdout == text, "offline folded: the same lines")
