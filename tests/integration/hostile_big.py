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

# A program that dlopens the big library (argv[1]), prints its pid and calls big_entry(100) for
# argv[2] seconds: test_hostile's workload, and bench/dwarf-slice.py's.
DLOPEN_C = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW);
	int (*entry)(int);
	struct timespec a, b;
	volatile int s = 0;

	if (!h || argc < 3)
		return 1;
	entry = (int (*)(int))dlsym(h, "big_entry");
	printf("%d\n", getpid());
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		s += entry(100);
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while (b.tv_sec - a.tv_sec < atoi(argv[2]));
	return 0;
}
"""


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
