# SPDX-License-Identifier: MIT
"""A peer for profq's off-CPU profile: the classic off-CPU recipe written for bpftrace on the
`sched:sched_switch` tracepoint (offcputime-bpfcc attaches a kprobe to finish_task_switch,
which a kernel without kprobes cannot run). At a thread's switch-out it keeps the time and the
thread's user stack (frame pointers); at its switch-in it adds the interval to that stack. It
records every interval, none sampled: exact where profq estimates.

It follows the `waits` workload (tests/workloads/waits.c). Its frame-pointer stacks skip the
function that called into libc (libc's leaf functions keep no frame pointer), and the workload
has exited when bpftrace prints its map (no symbols then): its stacks are told apart by the
return address in the workload's `run`, which names the call site."""

import os
import re
import shutil
import subprocess
import time

FUNCS = ("compute", "nap", "wait_pipe")

SCRIPT = r"""
BEGIN { printf("ready\n"); }
tracepoint:sched:sched_switch
/comm == "waits" || @start[args->next_pid]/
{
	if (comm == "waits") {
		@start[args->prev_pid] = nsecs;
		@stk[args->prev_pid] = ustack(perf);
		@tgid[args->prev_pid] = pid;
	}
	if (@start[args->next_pid]) {
		@off[@tgid[args->next_pid], @stk[args->next_pid]] =
			sum(nsecs - @start[args->next_pid]);
		delete(@start[args->next_pid]);
	}
}
END { clear(@start); clear(@stk); clear(@tgid); }
"""


def available():
    """None if the peer can run here, else why not. Mounts tracefs if it is not mounted."""
    if not shutil.which("bpftrace"):
        return "bpftrace is not installed"
    if not os.path.isdir("/sys/kernel/tracing/events"):
        p = subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return f"tracefs cannot be mounted: {p.stderr.strip()}"
    return None


def call_sites(binary):
    """run's return addresses (link-time) after its call of each function of FUNCS."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True,
                         text=True, check=True).stdout
    sites, in_run, pending = {}, False, None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(\S+)>:", line)
        if m:
            in_run = m.group(2) == "run"
            continue
        m = re.match(r"^\s+([0-9a-f]+):", line)
        if not in_run or not m:
            continue
        if pending:
            sites[int(m.group(1), 16)] = pending
            pending = None
        call = re.search(r"call\s+\S+ <(\w+)>", line)
        if call and call.group(1) in FUNCS:
            pending = call.group(1)
    return sites


def load_base(pid, binary):
    """Where pid has binary loaded: the start of its mapping at file offset 0."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            w = line.split()
            if len(w) >= 6 and w[5] == binary and int(w[2], 16) == 0:
                return int(w[0].split("-")[0], 16)
    return None


class Peer:
    """bpftrace running the script until stop(); started before the workload. bpftrace runs
    BEGIN once every probe is attached."""

    def __init__(self, binary, out_path, timeout=60):
        self.sites = call_sites(binary)
        self.binary = binary
        self.out_path = out_path
        self.out = open(out_path, "w")
        self.proc = subprocess.Popen(["bpftrace", "-e", SCRIPT], stdout=self.out,
                                     stderr=subprocess.DEVNULL)
        self.ready = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None and not self.ready:
            with open(out_path) as f:
                self.ready = "ready" in f.read()
            time.sleep(0.05)
        self.base = None

    def ok(self):
        return (sorted(self.sites.values()) == sorted(FUNCS) and self.ready and
                self.proc.poll() is None)

    def follow(self, pid):
        """Notes where the workload pid has its binary (while it runs)."""
        self.base = load_base(pid, self.binary)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()

    def shares(self, pid):
        """Each function's share of pid's off-CPU time in percent, and the total seconds."""
        with open(self.out_path) as f:
            text = f.read()
        got = dict.fromkeys(FUNCS, 0)
        total = 0
        for m in re.finditer(r"@off\[(\d+), \n(.*?)\]: (\d+)", text, re.S):
            if int(m.group(1)) != pid:
                continue
            ns = int(m.group(3))
            total += ns
            for frame in m.group(2).split():
                if (self.base is not None and re.fullmatch(r"[0-9a-f]+", frame) and
                        int(frame, 16) - self.base in self.sites):
                    got[self.sites[int(frame, 16) - self.base]] += ns
                    break
        return {f: 100 * got[f] / total if total else 0 for f in FUNCS}, total / 1e9
