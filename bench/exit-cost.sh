#!/bin/bash
# SPDX-License-Identifier: MIT
# BPF run time of profqd's exit program (tp_btf/sched_process_exit, profq_exit), per run, over
# FORKS runs of /bin/true (one thread each) and THREADED runs of a process whose THREADS threads
# are spinning when it calls exit() (every thread's exit runs the program; the last one sums the
# group's times over the threads still listed). kernel.bpf_stats_enabled: run_time_ns / run_cnt.
# Compare commits with PROFQ_REF (lib.sh), alternating: every run prints one line.
# Environment: FORKS (3000), THREADED (20), THREADS (8), FREQ (99), PROFQ_REF, SKIP_BUILD.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORKS=${FORKS:-3000}
THREADED=${THREADED:-20}
THREADS=${THREADS:-8}
FREQ=${FREQ:-99}

bench_init
bench_build
bpf_stats_enable
cat >"$BENCH_TMP/threads.c" <<'C'
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static void *spin(void *a) { for (;;) (void)a; return NULL; }
int main(int argc, char **argv)
{
	pthread_t t;
	for (int i = 1; i < atoi(argv[1]); i++)
		pthread_create(&t, NULL, spin, NULL);
	usleep(10000);
	exit(0);
}
C
cc -O2 -pthread -o "$BENCH_TMP/threads" "$BENCH_TMP/threads.c"

spawn "$BENCH_TMP/d.out" "$BENCH_TMP/d.err" "$PROFQD" --socket "$BENCH_TMP/s.sock" \
	--state-dir "$BENCH_TMP/state" --config /dev/null --frequency "$FREQ"
DAEMON=$SPAWNED
WAIT_S=30 wait_for "$DAEMON" find "$BENCH_TMP/s.sock" -maxdepth 0 -type s >/dev/null ||
	die "profqd did not start: $(cat "$BENCH_TMP/d.err")"
sleep 1
read -r t0 c0 < <(bpf_run_of "$DAEMON" profq_exit)
for ((i = 0; i < FORKS; i++)); do /bin/true; done
for ((i = 0; i < THREADED; i++)); do "$BENCH_TMP/threads" "$THREADS"; done
read -r t1 c1 < <(bpf_run_of "$DAEMON" profq_exit)
stop_pid "$DAEMON"
((c1 > c0)) || die "the exit program did not run"
echo "${REV:-worktree} runs $((c1 - c0)) ns/run $(((t1 - t0) / (c1 - c0)))"
