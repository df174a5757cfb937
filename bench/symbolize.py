#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helpers of bench/symbolize.sh.

  symbolize.py addresses SYMFILE N SEED     N random addresses inside functions: a function
                                            (sized FUNC symbol of SYMFILE, per `nm -S`) drawn
                                            uniformly, then a byte of it; one hex a line
  symbolize.py agree REF FILE [--show K]    how often FILE's answers match REF's

Answers are what `addr2line -a -f -i` prints (also `llvm-symbolizer --output-style=GNU -a -f
-i`, eu-addr2line's dialect and profq-bench-symbolize --output): an address line, then for each
frame, innermost first, a function line and a file:line line. "agree" prints the share of REF's
addresses where the innermost frame has the same function and line ("leaf"), and where the
whole inline chain does ("chain"): percentages and counts.
"""
import random
import re
import subprocess
import sys

CODE_TYPES = set("tTwWi")
LOCATION = re.compile(r"^(.*?):(\d+|\?)(?::\d+)?(?: \(discriminator \d+\))?$")


def addresses(symfile, n, seed):
    out = subprocess.run(["nm", "-S", "--defined-only", symfile], check=True,
                         capture_output=True, text=True).stdout
    funcs = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] not in CODE_TYPES:
            continue
        addr, size = int(parts[0], 16), int(parts[1], 16)
        if addr and size:
            funcs[addr] = max(size, funcs.get(addr, 0))
    rng = random.Random(seed)
    table = sorted(funcs.items())
    for _ in range(n):
        addr, size = rng.choice(table)
        print("0x%x" % (addr + rng.randrange(size)))


def parse(path):
    """{address: [(function, line), ...]} innermost first; function None and line 0 unknown."""
    answers, cur = {}, None
    with open(path, errors="replace") as f:
        lines = [l.rstrip("\n") for l in f]
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"0x[0-9a-f]+", line):
            cur = answers.setdefault(int(line, 16), [])
            i += 1
            continue
        if cur is None or i + 1 >= len(lines):
            raise SystemExit("%s:%d: unexpected '%s'" % (path, i + 1, line))
        # eu-addr2line: "inner inlined at file:line:col in outer".
        fn = line.split(" inlined at ")[0]
        fn = None if fn in ("??", "") else fn
        m = LOCATION.match(lines[i + 1])
        lineno = int(m.group(2)) if m and m.group(2) != "?" and m.group(1) != "??" else 0
        cur.append((fn, lineno))
        i += 2
    return answers


def agree(ref_path, path, show):
    ref, got = parse(ref_path), parse(path)
    leaf = chain = 0
    shown = 0
    for addr, want in ref.items():
        have = got.get(addr, [])
        if have[:1] == want[:1]:
            leaf += 1
        if have == want:
            chain += 1
        elif shown < show:
            shown += 1
            print("0x%x: %s, reference %s" % (addr, have, want), file=sys.stderr)
    n = len(ref)
    print("leaf %.1f %d chain %.1f %d n %d" % (100.0 * leaf / n, leaf, 100.0 * chain / n,
                                               chain, n))


def main(argv):
    if len(argv) >= 5 and argv[1] == "addresses":
        addresses(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) >= 4 and argv[1] == "agree":
        show = int(argv[5]) if len(argv) >= 6 and argv[4] == "--show" else 0
        agree(argv[2], argv[3], show)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
