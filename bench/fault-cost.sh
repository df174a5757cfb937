#!/bin/bash
# SPDX-License-Identifier: MIT
# What the page fault profile (profqd --faults yes, the default) costs, against --faults no in
# the same run, on a workload faulting in RATE MiB/s (bench/memfault.c: 64 MiB mapped, a byte
# written per page, unmapped, paced): per run over DURATION seconds, the fault program's BPF
# ns per sample and samples/s (kernel.bpf_stats_enabled: run_time_ns / run_cnt), all of
# profqd's BPF programs and profqd's own CPU (utime+stime) as % of one core, the fault records
# dropped, the median bytes a window takes on disk and its fault entries (profq-bench-ring
# inspect; the rest of the machine's work is in them too). Then the
# other design: a tp_btf/page_fault_user program that sees every fault and only counts
# (bench/variants/pfuser.bpf.c, loaded by bench/pfload.c): its ns per fault.
# Environment: REPEATS (3), DURATION (25), RATE (1024), FREQ (99), BUILD (build).
# Output: one line per run on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-25}
RATE=${RATE:-1024}
FREQ=${FREQ:-99}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
TMP=$(mktemp -d /tmp/profq-faultcost.XXXXXX)
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
cc -O2 -o "$TMP/pfload" "$ROOT/bench/pfload.c" -lbpf
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
	-c "$ROOT/bench/variants/pfuser.bpf.c" -o "$TMP/pfuser.o"
sysctl -q -w kernel.bpf_stats_enabled=1

run() {
	local faults=$1 c0 c1 b0 b1 r0 r1 t0 t1 rate st seg wins
	rm -rf "$TMP/state"
	"$BUILD/daemon/profqd" --socket "$TMP/s.sock" --state-dir "$TMP/state" --config /dev/null \
		--frequency "$FREQ" --faults "$faults" >"$TMP/d.log" 2>&1 &
	DAEMON=$!
	for _ in $(seq 50); do [[ -S $TMP/s.sock ]] && break; sleep 0.1; done
	sleep 3
	c0=$(cpu_ticks_ns "$DAEMON"); b0=$(bpf_run_of "$DAEMON"); r0=$(bpf_run_of "$DAEMON" profq_fault)
	t0=$(date +%s%N)
	rate=$("$TMP/memfault" fault "$RATE" "$DURATION")
	t1=$(date +%s%N)
	c1=$(cpu_ticks_ns "$DAEMON"); b1=$(bpf_run_of "$DAEMON"); r1=$(bpf_run_of "$DAEMON" profq_fault)
	st=$("$BUILD/cli/profq" --socket "$TMP/s.sock" status --json |
		jq -r '"\(.faults.dropped)/\(.faults.shed_ring) \(.faults.stored)"')
	kill "$DAEMON"; wait "$DAEMON" || true; DAEMON=
	# The windows on disk: median bytes per window, and fault entries per window.
	seg=$("$BUILD/profq-bench-ring" inspect "$TMP/state" |
		awk '$1 == "window_disk_bytes" {print $2}')
	wins=$("$BUILD/profq-bench-ring" inspect "$TMP/state" |
		awk '$1 == "window_fault_entries" {print $2}')
	awk -v f="$faults" -v rate="$rate" -v el=$((t1 - t0)) -v c="$((c1 - c0))" \
		-v bt="$(( ${b1% *} - ${b0% *} ))" -v rt="$(( ${r1% *} - ${r0% *} ))" \
		-v rc="$(( ${r1#* } - ${r0#* } ))" -v st="$st" -v seg="$seg" -v wins="$wins" 'BEGIN {
		split(st, s, " ")
		printf "faults=%-3s fault_MiB/s=%s fault_ns/sample=%.0f fault_samples/s=%.0f " \
			"bpf_all_%%core=%.2f profqd_%%core=%.2f dropped/shed_ring=%s stored=%s " \
			"window_disk_bytes=%s fault_entries/window=%s\n", f, rate, rc ? rt / rc : 0, rc / (el / 1e9),
			100 * bt / el, 100 * c / el, s[1], s[2], seg, wins }'
}

for i in $(seq "$REPEATS"); do
	run yes
	run no
done
"$TMP/pfload" "$TMP/pfuser.o" "$TMP/memfault" fault "$RATE" "$DURATION" |
	sed 's/^/page_fault_user (every fault, counting only): /'
