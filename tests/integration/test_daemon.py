#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profqd start-up (docs/profqd.8, OPTIONS, CONFIGURATION FILE): bad options and config files exit 2
naming the option or file:line:key; the default config file may be missing, a named one may not;
SIGTERM exits 0; a second daemon on the same socket is refused."""

import os
import subprocess

from harness import Daemon, Env, check, require_bpf, tempdir

require_bpf()
env = Env()
tmp = tempdir("profq-daemon-")
sock = os.path.join(tmp, "s.sock")


def profqd(*args, timeout=20):
    p = subprocess.run([env.profqd, "--socket", sock, "--state-dir", tmp] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


for args, needle in ((["--frequency", "0"], "--frequency"),
                     (["--frequency", "10001"], "--frequency"),
                     (["--frequency", "abc"], "--frequency"),
                     (["--window", "0"], "--window"),
                     (["--retention", "forever"], "--retention"),
                     (["--max-memory", "1K"], "--max-memory"),
                     (["--window", "1m", "--retention", "30s"], "retention"),
                     (["--no-such-option"], "no-such-option"),
                     (["--socket", "relative.sock"], "--socket"),
                     (["stray-argument"], "stray-argument")):
    rc, err = profqd("--config", "/dev/null", *args)
    check(rc == 2 and needle in err, f"{args}: exit 2 naming {needle!r} ({err.strip()})")

conf = os.path.join(tmp, "profqd.conf")
for text, needle in (("frequency = 99\nbogus = 1\n", f"{conf}:2: unknown key 'bogus'"),
                     ("# comment\n\nwindow = 0s\n", f"{conf}:3: key 'window'"),
                     ("frequency = 99\nfrequency = 49\n",
                      f"{conf}:2: key 'frequency' is set twice"),
                     ("frequency\n", f"{conf}:1: expected 'key = value'"),
                     ("max-memory = \n", f"{conf}:1: key 'max-memory' has no value")):
    with open(conf, "w") as f:
        f.write(text)
    rc, err = profqd("--config", conf)
    check(rc == 2 and needle in err, f"config {text!r}: exit 2 with {needle!r} ({err.strip()})")

rc, err = profqd("--config", os.path.join(tmp, "missing.conf"))
check(rc == 2 and "missing.conf" in err, "a missing named config file: exit 2")

rc, out = subprocess.run([env.profqd, "--help"], capture_output=True, text=True).returncode, None
check(rc == 0, "--help exits 0")

# A good config file applies; the command line wins over it.
with open(conf, "w") as f:
    f.write("# profqd settings\nfrequency = 49   # Hz\nwindow = 5s\nretention = 10m\n")
with Daemon(env, "--config", conf, frequency=199) as d:
    st = d.json("status")
    check(st["frequency_hz"] == 199, "--frequency wins over the file")
    check(st["window_s"] == 2 and st["retention_s"] == 600,
          "the file's retention applies, the option's window wins")
    # A second daemon on the same socket must not steal it.
    rc, err = subprocess.run([env.profqd, "--socket", d.socket, "--config", "/dev/null"],
                             capture_output=True, text=True, timeout=30).returncode, None
    check(rc != 0, "a second profqd on a live socket fails")
    check(d.json("status")["uptime_s"] >= 0, "the first one still answers")
