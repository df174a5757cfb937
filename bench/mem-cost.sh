#!/bin/bash
# SPDX-License-Identifier: MIT
# What memory tracking (profqd --memory yes, the default) costs, against --memory no in the same
# run, on a workload faulting in RATE MiB/s (bench/memfault.c: 64 MiB mapped, a byte written per
# page, unmapped, paced): per run over DURATION seconds, the rss_stat program's BPF ns per event
# and events/s (kernel.bpf_stats_enabled: run_time_ns / run_cnt), all of profqd's BPF programs
# and profqd's own CPU (utime+stime) as % of one core, and the points kept. Then the other
# design's cost: reading /proc/PID/statm of every process once (ns per process).
# Environment: REPEATS (3), DURATION (15), RATE (1024), FREQ (99), BUILD (build).
# Output: one line per run on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-15}
RATE=${RATE:-1024}
FREQ=${FREQ:-99}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
TMP=$(mktemp -d /tmp/profq-memcost.XXXXXX)
SAVED=$(sysctl -n kernel.bpf_stats_enabled)
DAEMON=
cleanup() {
	[[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
	sysctl -q -w kernel.bpf_stats_enabled="$SAVED"
	rm -rf "$TMP"
}
trap cleanup EXIT
[[ $(id -u) -eq 0 ]] || { echo "needs root" >&2; exit 1; }
cc -O2 -o "$TMP/memfault" "$ROOT/bench/memfault.c"
sysctl -q -w kernel.bpf_stats_enabled=1

run() {
	local mem=$1 c0 c1 b0 b1 r0 r1 t0 t1 rate pts
	rm -rf "$TMP/state"
	"$BUILD/daemon/profqd" --socket "$TMP/s.sock" --state-dir "$TMP/state" --config /dev/null \
		--frequency "$FREQ" --memory "$mem" >"$TMP/d.log" 2>&1 &
	DAEMON=$!
	for _ in $(seq 50); do [[ -S $TMP/s.sock ]] && break; sleep 0.1; done
	sleep 3
	c0=$(cpu_ticks_ns "$DAEMON"); b0=$(bpf_run_of "$DAEMON"); r0=$(bpf_run_of "$DAEMON" profq_rss_stat)
	t0=$(date +%s%N)
	rate=$("$TMP/memfault" fault "$RATE" "$DURATION")
	t1=$(date +%s%N)
	c1=$(cpu_ticks_ns "$DAEMON"); b1=$(bpf_run_of "$DAEMON"); r1=$(bpf_run_of "$DAEMON" profq_rss_stat)
	pts=$("$BUILD/cli/profq" --socket "$TMP/s.sock" status --json |
		jq '.rss_tracking.points // 0')
	kill "$DAEMON"; wait "$DAEMON" || true; DAEMON=
	awk -v mem="$mem" -v rate="$rate" -v el=$((t1 - t0)) -v c="$((c1 - c0))" \
		-v bt="$(( ${b1% *} - ${b0% *} ))" -v rt="$(( ${r1% *} - ${r0% *} ))" \
		-v rc="$(( ${r1#* } - ${r0#* } ))" -v pts="$pts" 'BEGIN {
		printf "memory=%-3s fault_MiB/s=%s rss_stat_ns/event=%.0f rss_events/s=%.0f " \
			"bpf_all_%%core=%.2f profqd_%%core=%.2f points=%s\n", mem, rate,
			rc ? rt / rc : 0, rc / (el / 1e9), 100 * bt / el, 100 * c / el, pts }'
}

for i in $(seq "$REPEATS"); do
	run yes
	run no
done
read -r procs ns < <("$TMP/memfault" statm 20)
echo "statm: $procs processes, $ns ns per /proc/PID/statm read"
