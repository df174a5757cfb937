#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz-sideband (tests/fuzz/corpus/sideband): runs of perf records
as the kernel lays them out (linux/perf_event.h, with the sample_id of PERF_SAMPLE_TID |
PERF_SAMPLE_TIME), for a fork, an exec, mappings and an exit, and a lost-records note.

    tests/fuzz/gen-sideband-corpus.py tests/fuzz/corpus/sideband"""

import os
import struct
import sys

MMAP2, COMM, EXIT, FORK, LOST = 10, 3, 4, 7, 2
MISC_COMM_EXEC = 1 << 13


def sample_id(pid, tid, time):
    return struct.pack("<IIQ", pid, tid, time)


def record(rtype, misc, body):
    size = 8 + len(body)
    pad = (-size) % 8
    return struct.pack("<IHH", rtype, misc, size + pad) + body + b"\0" * pad


def cstr(s):
    b = s.encode() + b"\0"
    return b + b"\0" * ((-len(b)) % 8)


def mmap2(pid, addr, length, pgoff, ino, path, time):
    body = struct.pack("<IIQQQIIQQII", pid, pid, addr, length, pgoff, 8, 1, ino, 0, 5, 2)
    return record(MMAP2, 0, body + cstr(path) + sample_id(pid, pid, time))


def comm(pid, name, time, exec_=True):
    return record(COMM, MISC_COMM_EXEC if exec_ else 0,
                  struct.pack("<II", pid, pid) + cstr(name) + sample_id(pid, pid, time))


def task(rtype, pid, ppid, time):
    return record(rtype, 0, struct.pack("<IIIIQ", pid, ppid, pid, ppid, time) +
                  sample_id(pid, pid, time))


def lost(n, time):
    return record(LOST, 0, struct.pack("<QQ", 1, n) + sample_id(0, 0, time))


def main(out):
    os.makedirs(out, exist_ok=True)
    t = 10_000_000_000
    life = (task(FORK, 200, 100, t) + comm(200, "worker", t + 10) +
            mmap2(200, 0x400000, 0x2000, 0, 1234, "/usr/bin/worker", t + 20) +
            mmap2(200, 0x7f0000000000, 0x1b000, 0x26000, 99, "/usr/lib/x86_64-linux-gnu/libc.so.6",
                  t + 30) +
            task(EXIT, 200, 100, t + 1000))
    seeds = {
        "life": life,
        "mmap": mmap2(300, 0x1000, 0x1000, 0, 7, "/tmp/a b/\xe9t\xe9", t),
        "rename": comm(400, "renamed", t, exec_=False),
        "lost": lost(17, t) + life,
        "thread": task(FORK, 500, 500, t) + task(EXIT, 501, 500, t + 5),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/sideband")
