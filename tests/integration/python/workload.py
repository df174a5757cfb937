# SPDX-License-Identifier: MIT
"""Python workloads with a known CPU split, for the integration tests of profq's Python frames
(tests/integration/test_python*.py). Runs on CPython 3.8 and later, standard library only.

    python3 workload.py MODE [--seconds S] [--wait]

Prints its pid first. With --wait it then reads a line from standard input before it starts
(so that a profiler can attach first). It runs MODE for S seconds of wall time and prints, as
its last line, one JSON object: "seconds", the CPU time each function took (the thread's CPU
clock, time.thread_time(), read around every call, or inside a generator or coroutine between
its resumption and its suspension), keyed by the name profq is to show (co_qualname where the
interpreter has it, 3.11+, else co_name); "cpu", the process's user + system time before that
line, and "cpu_start", before the work started (getrusage); "version"; and what the mode
adds.

Modes:
  split   Worker.parse, Worker.render and Worker.digest in turns with the weights 50/30/20:
          three methods whose CPU split is measured.
  shapes  recurse (20 deep), the generator produce, the coroutine Pipeline.crunch, a lambda,
          squares (a list comprehension: its own frame before 3.12, inlined after) and
          exec_work, defined by exec'd source ("<exec-code>").
  threads Spinner.alpha, Spinner.beta and Spinner.gamma, each in a thread of its own for the
          same time; "threads" gives each thread's native id, its function, and its CPU time.
  zlib    pack, which calls zlib.compress (deflate in libz) in a loop.
  burst   burst for S seconds (a short-lived process).

Each unit of work is a millisecond or so: the split is measured over thousands of units, and a
unit is short against the run and long against the clock reads around it."""

import json
import os
import resource
import sys
import time

thread_time = time.thread_time


def name_of(fn):
    code = fn.__code__
    return getattr(code, "co_qualname", code.co_name)


class Worker:
    """Three methods of one loop shape: the CPU each takes follows its iteration count."""

    def parse(self, n):
        acc = 1
        for i in range(n):
            acc = (acc * 31 + i * i) % 1000003 ^ (i >> 3)  # hot: parse
        return acc

    def render(self, n):
        acc = 3
        for i in range(n):
            acc = (acc * 17 + i * 5) % 999983 ^ (i >> 2)
        return acc

    def digest(self, n):
        acc = 7
        for i in range(n):
            acc = (acc * 13 + i * 3) % 1000033 ^ (i >> 4)
        return acc


UNIT = 10000  # iterations of those loops a call: about a millisecond


def split(deadline, seconds):
    w = Worker()
    units = ((w.parse, 50), (w.render, 30), (w.digest, 20))
    for fn, _ in units:
        seconds[name_of(fn)] = 0.0
    # A round: 10 calls split by weight (5, 3 and 2), so that the rounds interleave finely.
    while time.monotonic() < deadline:
        for fn, weight in units:
            key = name_of(fn)
            for _ in range(weight // 10):
                t0 = thread_time()
                fn(UNIT)
                seconds[key] += thread_time() - t0


# ---- shapes ----

def recurse(depth, n):
    if depth > 1:
        return recurse(depth - 1, n) + 1
    acc = 0
    for i in range(n):
        acc = (acc * 7 + i) % 65521
    return acc


def produce(n, chunk, seconds, key):
    """A generator: its frame is on the stack from each resumption to the next yield, and only
    then; that is the time measured."""
    acc = 0
    t0 = thread_time()
    for i in range(n):
        acc = (acc * 11 + i) % 65519
        if i % chunk == chunk - 1:
            seconds[key] += thread_time() - t0
            yield acc
            t0 = thread_time()
    seconds[key] += thread_time() - t0


class Pipeline:
    async def crunch(self, n, chunk, seconds, key):
        """A coroutine that suspends every chunk iterations; measured while it runs."""
        import asyncio
        acc = 0
        t0 = thread_time()
        for i in range(n):
            acc = (acc * 19 + i) % 65497
            if i % chunk == chunk - 1:
                seconds[key] += thread_time() - t0
                await asyncio.sleep(0)
                t0 = thread_time()
        seconds[key] += thread_time() - t0
        return acc


# A lambda whose time is a native call under it (sorted: no Python frames in between).
sort_desc = lambda xs: sorted(xs, reverse=True)  # noqa: E731


def squares(n):
    return [i * i % 7 for i in range(n)]


EXEC_SOURCE = """
def exec_work(n):
    acc = 5
    for i in range(n):
        acc = (acc * 23 + i) % 65479  # hot: exec
    return acc
"""


def shapes(deadline, seconds):
    import asyncio
    import random
    ns = {}
    exec(compile(EXEC_SOURCE, "<exec-code>", "exec"), ns)
    exec_work = ns["exec_work"]
    data = list(range(6000))
    random.Random(1).shuffle(data)
    loop = asyncio.new_event_loop()
    pipe = Pipeline()
    calls = ((recurse, (20, 16000)), (sort_desc, (data,)), (squares, (20000,)),
             (exec_work, (16000,)))
    for fn, _ in calls:
        seconds[name_of(fn)] = 0.0
    gen_key = name_of(produce)
    coro_key = name_of(Pipeline.crunch)
    seconds[gen_key] = seconds[coro_key] = 0.0
    while time.monotonic() < deadline:
        for fn, args in calls:
            t0 = thread_time()
            fn(*args)
            seconds[name_of(fn)] += thread_time() - t0
        for _ in produce(12000, 1000, seconds, gen_key):
            pass
        loop.run_until_complete(pipe.crunch(12000, 1000, seconds, coro_key))
    loop.close()


# ---- threads ----

class Spinner:
    def alpha(self, n):
        acc = 1
        for i in range(n):
            acc = (acc * 29 + i) % 65413
        return acc

    def beta(self, n):
        acc = 2
        for i in range(n):
            acc = (acc * 29 + i) % 65413
        return acc

    def gamma(self, n):
        acc = 3
        for i in range(n):
            acc = (acc * 29 + i) % 65413
        return acc


def threads(deadline, seconds, extra):
    import threading
    s = Spinner()
    fns = (s.alpha, s.beta, s.gamma)
    info = []
    lock = threading.Lock()
    ready = threading.Barrier(len(fns))

    def body(fn):
        key = name_of(fn)
        spent = 0.0
        ready.wait()
        start = thread_time()
        while time.monotonic() < deadline:
            t0 = thread_time()
            fn(8000)
            spent += thread_time() - t0
        with lock:
            seconds[key] = spent
            info.append({"tid": threading.get_native_id(), "function": key, "in_function": spent,
                         "cpu": thread_time() - start})

    ts = [threading.Thread(target=body, args=(fn,)) for fn in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    extra["threads"] = info


# ---- zlib ----

def warm_up(until):
    """Python work before the measured part: profqd follows a process from its first sample
    and knows its thread from the first read of its thread list a moment later; the libz frames
    of the samples before that could have no Python caller."""
    n = 0
    while time.monotonic() < until:
        n += 1
    return n


def pack(deadline, seconds):
    import random
    import zlib
    rng = random.Random(2)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    data = b" ".join(rng.choice(words) for _ in range(30000))
    key = name_of(pack)
    seconds[key] = 0.0
    n = 0
    while time.monotonic() < deadline:
        t0 = thread_time()
        n += len(zlib.compress(data, 6))
        seconds[key] += thread_time() - t0
    return n


# ---- burst ----

def burst(deadline, seconds):
    key = name_of(burst)
    t0 = thread_time()
    acc = 0
    i = 0
    while time.monotonic() < deadline:
        for j in range(1000):
            acc = (acc * 37 + j) % 65449
        i += 1
    seconds[key] = thread_time() - t0
    return acc


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    args = sys.argv[1:]
    mode = args[0]
    secs = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 4.0
    print(os.getpid(), flush=True)
    if "--wait" in args:
        sys.stdin.readline()
    seconds, extra = {}, {}
    cpu_start = cpu()
    deadline = time.monotonic() + secs
    if mode == "split":
        split(deadline, seconds)
    elif mode == "shapes":
        shapes(deadline, seconds)
    elif mode == "threads":
        threads(deadline, seconds, extra)
    elif mode == "zlib":
        warm_up(min(deadline, time.monotonic() + 0.3))
        pack(deadline, seconds)
    elif mode == "burst":
        burst(deadline, seconds)
    else:
        sys.exit(f"unknown mode {mode!r}")
    out = {"seconds": seconds, "cpu": cpu(), "cpu_start": cpu_start,
           "version": list(sys.version_info[:3]), "pid": os.getpid()}
    out.update(extra)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
