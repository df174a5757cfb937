#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The source of test_hostile.py's big library: one compile unit of many functions with inlined
calls and locals, hundreds of thousands of DWARF entries for the daemon to walk when a sample
lands in it. The build compiles it ahead (libhostile-big.so in the build's tests/integration,
tests/integration/CMakeLists.txt), so that the serial test phase does not spend its 15-20 s of
compiling; `hostile_big.py OUT [FUNCTIONS]` writes it (the unit tests' fixture-dwarf-big is a
smaller one: test-symbolizer-dwarf indexes its compile unit a slice at a time)."""

import sys

BIG_CU_FUNCS = 6000


def big_cu_source(funcs=BIG_CU_FUNCS):
    out = ["static inline __attribute__((always_inline)) int leaf(int a, int b)"
           " { int c = a * 3 + b; int d = c ^ (a >> 2); return c + d; }"]
    for i in range(funcs):
        out.append(f"int f{i}(int x) {{ int a = x + {i}; int b = leaf(a, x); int c = leaf(b, a);"
                   f" {{ int d = leaf(c, b); a += d; }} return a + b + c; }}")
    out.append("int big_entry(int n) { int s = 0; for (int k = 0; k < n; k++) {")
    for i in range(0, funcs, 50):
        out.append(f" s += f{i}(k);")
    out.append(" } return s; }")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], "w") as f:
        f.write(big_cu_source(*(int(a) for a in sys.argv[2:3])))
