# SPDX-License-Identifier: MIT
"""The Python benchmark workload: one busy CPython thread, a chain of nested function calls
DEPTH deep (three functions picked by a counter at every level, so a few hundred distinct
Python stacks), the leaf an arithmetic loop in Python code. Runs 3.8 and later.

    python3 pyburn.py [DEPTH [SECONDS]]

Runs until killed (or for SECONDS); prints nothing.
"""
import sys
import time

LEAF_SPIN = 2000


def leaf(path):
    x = path | 1
    for _ in range(LEAF_SPIN):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


def step_a(depth, path):
    return leaf(path) if depth == 0 else STEPS[path % 3](depth - 1, path // 3 + depth)


def step_b(depth, path):
    return leaf(path) if depth == 0 else STEPS[path % 3](depth - 1, path // 3 + 2 * depth)


def step_c(depth, path):
    return leaf(path) if depth == 0 else STEPS[path % 3](depth - 1, path // 3 + 3 * depth)


STEPS = (step_a, step_b, step_c)


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0
    end = time.monotonic() + seconds if seconds > 0 else None
    n = 0
    while end is None or time.monotonic() < end:
        step_a(depth, n)
        n += 1


main()
