#!/bin/bash
# SPDX-License-Identifier: MIT
# The sampler's BPF run time per sample (kernel.bpf_stats_enabled: run_time_ns / run_cnt of
# `status --json` bpf_prog_id, over SECONDS after 2 s) with profqd at 999 Hz, for two loads:
#
#   common  two `/usr/bin/python3 bench/pyburn.py 20` pinned to CPUs 0 and 1: every thread in
#           py_threads (the common case);
#   walk    one Python process with 63 sleeping threads and a busy native thread (a pthread
#           from a small C library, no thread state): each of that thread's samples makes the
#           BPF program look through the whole thread list (64 states) and find nothing.
#
# usage: bench/python-walk.sh BUILD [SECONDS (8)] [LOADS ("common walk")]
# Needs root, bpftool, gcc. Prints one line per load: ns/sample, runs, status python counters.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SECONDS_=${2:-8}
LOADS=${3:-common walk}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/spin.c" <<'C'
#include <pthread.h>
static volatile unsigned long n;
static void *spin(void *a) { (void)a; for (;;) n++; return 0; }
int start(void) { pthread_t t; return pthread_create(&t, 0, spin, 0); }
C
gcc -O1 -shared -fPIC -o "$tmp/libspin.so" "$tmp/spin.c" -lpthread
cat > "$tmp/walk.py" <<'PY'
import ctypes, sys, threading, time
ev = threading.Event()
ts = [threading.Thread(target=ev.wait) for _ in range(63)]
for t in ts:
    t.start()
ctypes.CDLL(sys.argv[2]).start()
time.sleep(float(sys.argv[1]))
ev.set()
PY

prog_stats() {
	bpftool prog show id "$1" -j | python3 -c \
		'import json,sys; j=json.load(sys.stdin); print(j["run_time_ns"], j["run_cnt"])'
}

run() {
	local load=$1 d="$tmp/d" p l id r1 r2 py
	mkdir -p "$d"
	"$BUILD/daemon/profqd" --socket "$d/s" --state-dir "$d/st" --config /dev/null \
		--frequency 999 > "$d/log" 2>&1 &
	p=$!
	for _ in $(seq 100); do
		"$BUILD/cli/profq" --socket "$d/s" status > /dev/null 2>&1 && break
		sleep 0.1
	done
	local secs=$((SECONDS_ + 3))
	case $load in
	common)
		taskset -c 0 /usr/bin/python3 "$BENCH_DIR/pyburn.py" 20 "$secs" &
		l="$! "
		taskset -c 1 /usr/bin/python3 "$BENCH_DIR/pyburn.py" 20 "$secs" &
		l+=$!
		;;
	walk)
		/usr/bin/python3 "$tmp/walk.py" "$secs" "$tmp/libspin.so" &
		l=$!
		;;
	esac
	sleep 2
	id=$("$BUILD/cli/profq" --socket "$d/s" status --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["bpf_prog_id"])')
	r1=$(prog_stats "$id")
	sleep "$SECONDS_"
	r2=$(prog_stats "$id")
	py=$("$BUILD/cli/profq" --socket "$d/s" status --json | python3 -c 'import json,sys
p = json.load(sys.stdin)["python"]
print(" ".join(f"{k} {p.get(k)}" for k in ("samples", "samples_with_frames", "thread_found",
                                             "thread_unknown")))')
	# shellcheck disable=SC2086
	wait $l
	kill "$p"
	wait "$p" || true
	rm -rf "$d"
	set -- $r1 $r2
	echo "$load: $(( ($3 - $1) / ($4 - $2) )) ns/sample over $(( $4 - $2 )) runs; python: $py"
}

sysctl -qw kernel.bpf_stats_enabled=1
for load in $LOADS; do
	run "$load"
done
