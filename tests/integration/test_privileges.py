#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""profqd started without privileges (docs/profqd.8, PRIVILEGES): it stops at the first call the
kernel refuses and says that it needs root or CAP_BPF and CAP_PERFMON, with every other
capability the man page lists and what it is for, and how to run it; the way it suggests
(setpriv with those capabilities) starts it."""

import os
import re
import shutil
import subprocess

from harness import Env, check, require_bpf, skip, tempdir

NOBODY = 65534

require_bpf()
if not shutil.which("setpriv"):
    skip("needs setpriv to run profqd as another user")
env = Env()

# The capabilities the man page lists under PRIVILEGES.
page = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "profqd.8")
with open(page) as f:
    text = f.read()
section = text[text.index(".SH PRIVILEGES"):]
section = section[:section.index("\n.SH ", 1)]
caps = re.findall(r"^\.B (CAP_[A-Z_]+)$", section, re.MULTILINE)
check(len(caps) >= 6 and "CAP_BPF" in caps and "CAP_PERFMON" in caps,
      f"profqd.8 lists the capabilities: {caps}")

d = tempdir("profq-test-priv-")
os.chmod(d, 0o777)
profqd = shutil.copy(env.profqd, d)
os.chmod(profqd, 0o755)
args = [profqd, "--socket", os.path.join(d, "profq.sock"), "--state-dir",
        os.path.join(d, "state"), "--config", "/dev/null"]
user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

p = subprocess.run(user + args, capture_output=True, text=True, timeout=60)
check(p.returncode != 0, f"without privileges profqd does not start (exit {p.returncode})")
err = p.stderr
check("Permission denied" in err and "profqd needs root" in err,
      f"it says that it needs root: {err!r}")
for cap in caps:
    line = next((ln for ln in err.splitlines() if ln.strip().startswith(cap)), "")
    check(len(line.split()) > 2, f"it names {cap} and what it is for: {line!r}")
check("sudo profqd" in err and "systemctl start profqd" in err,
      "it says how to run it: as root, as the service")

# With CAP_PERFMON only, the sideband opens and loading the BPF program is what fails: the same.
p = subprocess.run(user + ["--inh-caps=+perfmon", "--ambient-caps=+perfmon"] + args,
                   capture_output=True, text=True, timeout=60)
check(p.returncode != 0 and "profqd needs root" in p.stderr and "CAP_BPF" in p.stderr,
      f"without CAP_BPF it says the same (exit {p.returncode}): {p.stderr!r}")

# The command it suggests, for nobody: profqd starts (and stops on SIGTERM).
m = re.search(r"--inh-caps=(\S+)", err)
check(m is not None, "it gives the capabilities for setpriv")
if m:
    cmd = user + [f"--inh-caps={m.group(1)}", f"--ambient-caps={m.group(1)}"] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = proc.stdout.readline()
    proc.terminate()
    out = first + proc.communicate(timeout=30)[0]
    check("Sampling" in first and proc.returncode == 0,
          f"with those capabilities it starts (exit {proc.returncode}): {out!r}")
