#!/bin/bash
# SPDX-License-Identifier: MIT
# What off-CPU recording costs: the sched_switch program's BPF run time per context switch and
# per captured stack, and the profiler's total CPU (profqd + all its BPF programs) on a
# context-switch storm, against the same run with --off-cpu no.
#
# Scenarios, each for DURATION seconds after WARMUP, with profqd at FREQ Hz:
#   storm     bench/pingpong pipe: two threads passing a byte over pipes (100k+ switches/s);
#             almost no switch-out is captured (the CPU's budget): the per-switch cost
#   sleepers  bench/pingpong sleepers: SLEEPERS threads sleeping 150 ms in a loop: waits
#             captured (the thread waits rarely) up to the CPU's cap, the others sent whole
#             at the switch-in (they are long): the per-capture and per-whole costs mixed
# From the kernel's bpf_stats (bpftool prog show id N: run_time_ns, run_cnt) and the status
# counters (switches, captured): ns per run c = c0 + f * c1 in each scenario, f the share of
# runs that captured; c0 and c1 solved from the two (c1 holds the whole intervals' cost too,
# meaningful only when the sleepers are mostly captured: a lower SLEEPERS or a higher FREQ). The daemon's CPU is utime + stime of
# /proc/PID/stat.
#
# Environment: REPEATS (3), DURATION (10), WARMUP (3), FREQ (99), SLEEPERS (200), BUILD (the
# build tree with profqd and profq: build). Needs root (bpf_stats).
# Output: a table on stdout; raw numbers in bench/results/offcpu-cost-FREQhz.txt.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
FREQ=${FREQ:-99}
SLEEPERS=${SLEEPERS:-200}
PROFQD=$BUILD/daemon/profqd
PROFQ=$BUILD/cli/profq
RAW=${RAW:-$BENCH_DIR/results/offcpu-cost-${FREQ}hz.txt}
[[ $(id -u) -eq 0 ]] || { echo "needs root" >&2; exit 1; }
[[ -x $PROFQD && -x $PROFQ ]] || { echo "build profqd and profq in $BUILD first" >&2; exit 1; }

TMP=$(mktemp -d /tmp/profq-offcpu.XXXXXX)
SAVED=$(sysctl -n kernel.bpf_stats_enabled)
DAEMON=
cleanup() {
	[[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
	sysctl -q -w kernel.bpf_stats_enabled="$SAVED"
	rm -rf "$TMP"
}
trap cleanup EXIT
sysctl -q -w kernel.bpf_stats_enabled=1
cc -O2 -pthread -o "$TMP/pingpong" "$BENCH_DIR/pingpong.c"

prog() { # id -> "run_time_ns run_cnt"
	bpftool prog show id "$1" --json | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "# scenario offcpu repeat daemon_cpu_s sample_bpf_ns switch_bpf_ns switch_runs" \
	"switches captured work" >"$RAW"
for rep in $(seq "$REPEATS"); do
	for scenario in storm sleepers; do
		for mode in yes no; do
			dir=$TMP/$scenario-$mode-$rep
			mkdir -p "$dir"
			"$PROFQD" --socket "$dir/sock" --state-dir "$dir/state" --config /dev/null \
				--frequency "$FREQ" --off-cpu "$mode" >"$dir/log" 2>&1 &
			DAEMON=$!
			for _ in $(seq 100); do
				"$PROFQ" --socket "$dir/sock" status >/dev/null 2>&1 && break
				sleep 0.1
			done
			st=$("$PROFQ" --socket "$dir/sock" status --json)
			sid=$(jq -r .bpf_prog_id <<<"$st")
			oid=$(jq -r '.off_cpu.bpf_prog_id // 0' <<<"$st")
			sleep "$WARMUP"
			# Other benchmarks on the host may turn the statistics off: on again, and the
			# run is kept only if they stayed on.
			sysctl -q -w kernel.bpf_stats_enabled=1
			if [[ $scenario == storm ]]; then
				"$TMP/pingpong" pipe "$DURATION" >"$dir/work" &
			else
				"$TMP/pingpong" sleepers "$DURATION" "$SLEEPERS" >"$dir/work" &
			fi
			work=$!
			read -r s0 _ < <(prog "$sid")
			o0=(0 0)
			[[ $oid != 0 ]] && read -r -a o0 < <(prog "$oid")
			c0=$(cpu_ticks "$DAEMON")
			st0=$("$PROFQ" --socket "$dir/sock" status --json)
			wait "$work"
			read -r s1 _ < <(prog "$sid")
			o1=(0 0)
			[[ $oid != 0 ]] && read -r -a o1 < <(prog "$oid")
			c1=$(cpu_ticks "$DAEMON")
			st1=$("$PROFQ" --socket "$dir/sock" status --json)
			kill "$DAEMON"
			wait "$DAEMON" || true
			DAEMON=
			if [[ $(sysctl -n kernel.bpf_stats_enabled) != 1 || $s1 == "$s0" ]]; then
				echo "$scenario $mode $rep: bpf_stats turned off meanwhile, run dropped" >&2
				continue
			fi
			echo "$scenario $mode $rep" \
				"$(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" \
					'BEGIN {printf "%.3f", (b - a) / t}')" \
				"$((s1 - s0)) $((o1[0] - o0[0])) $((o1[1] - o0[1]))" \
				"$(($(jq .off_cpu.switches <<<"$st1") - $(jq .off_cpu.switches <<<"$st0")))" \
				"$(($(jq .off_cpu.captured <<<"$st1") - $(jq .off_cpu.captured <<<"$st0")))" \
				"$(cat "$dir/work")" | tee -a "$RAW"
		done
	done
done

# Medians per scenario and mode; then c0 and c1.
awk '
!/^#/ {
	k = $1 " " $2
	n[k]++
	cpu[k, n[k]] = $4; sbpf[k, n[k]] = $5; obpf[k, n[k]] = $6; runs[k, n[k]] = $7
	cap[k, n[k]] = $9
}
function median(a, k, m,    i, j, t, v) {
	for (i = 1; i <= m; i++) v[i] = a[k, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
END {
	printf "| scenario, off-cpu | profqd CPU s | sampler BPF s | switch BPF s | ns/run | captured share |\n"
	printf "|---|---|---|---|---|---|\n"
	for (k in n) {
		m = n[k]; r = median(runs, k, m); c = median(cap, k, m)
		ns[k] = r ? median(obpf, k, m) / r : 0; f[k] = r ? c / r : 0
		total[k] = median(cpu, k, m) + (median(sbpf, k, m) + median(obpf, k, m)) / 1e9
		printf "| %s | %.3f | %.3f | %.3f | %.1f | %.4f |\n", k, median(cpu, k, m), \
			median(sbpf, k, m) / 1e9, median(obpf, k, m) / 1e9, ns[k], f[k]
	}
	a = "storm yes"; b = "sleepers yes"
	if (f[b] > f[a]) {
		c1 = (ns[b] - ns[a]) / (f[b] - f[a]); c0 = ns[a] - f[a] * c1
		printf "\nper switch (nothing captured): %.0f ns; per captured stack: %.0f ns\n", c0, c1
	}
	if (total["storm no"] > 0)
		printf "storm: profiler CPU (profqd + BPF) %.3f s with off-CPU, %.3f s without: x%.2f\n", \
			total["storm yes"], total["storm no"], total["storm yes"] / total["storm no"]
}' "$RAW"
