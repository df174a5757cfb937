#!/bin/bash
# SPDX-License-Identifier: MIT
# What running the profiler costs the machine, with every CPU busy (one bench/burn per CPU):
#
#   profqd  its own CPU (utime+stime, /proc/PID/stat) as % of one core, plus the run time of
#           all its BPF programs (kernel bpf_stats; the sampler and any others it holds, e.g.
#           exec/exit probes) as % of one core, and the sum; the sampler's ns per sample;
#           VmRSS and VmHWM at the end of the run; CPU it used over its whole life (start-up
#           and exit included)
#   profqd-fp  the same with --stack-copy 0 (frame-pointer stacks walked in BPF)
#   perf    `perf record -F HZ -a -g -o FILE`: its own CPU the same way, RSS, the data written,
#           and the CPU it spends after the stop (build-id processing). Its in-kernel cost
#           (callchain walks and copies in the sampling interrupt) is charged to the
#           interrupted tasks and is not in these figures.
#   perf-dwarf  the same with --call-graph dwarf,16384 (16 KiB of user stack per sample, as
#           profqd's default, unwound at `perf report` time, not measured here)
#
# Each of FREQS x {profqd, perf} runs DURATION seconds after WARMUP, REPEATS times, in turn;
# medians. The target (docs/PERFORMANCE.md): all profiler CPU <= 0.5% of one core at 99 Hz.
#
# Environment: REPEATS (3), DURATION seconds (60), WARMUP seconds (5), FREQS ("99 999"),
# TOOLS ("profqd perf"; also profqd-fp, perf-dwarf), REPORT_ONLY=1 (the table again from the raw file), PROFQ_REF=<commit>
# (see lib.sh), SKIP_BUILD=1, BUILD, BURN_ARGS, PROFQD_ARGS (more profqd options, e.g.
# "--stack-copy 0" for frame-pointer stacks).
# Output: a table on stdout; raw numbers in bench/results/daemon-cost.txt, the table in
# bench/results/daemon-cost.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEATS=${REPEATS:-3}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
FREQS=${FREQS:-99 999}
TOOLS=${TOOLS:-profqd perf}
PROFQD_ARGS=${PROFQD_ARGS:-}

RAW=$RESULTS/daemon-cost.txt
TABLE=$RESULTS/daemon-cost.md

child_of() {
	pgrep -P "$1" | head -1
}

profqd_prog_id() {
	"$PROFQ" --socket "$1" status --json | jq -r '.bpf_prog_id // empty'
}

# Runs tool $1 at $2 Hz (repeat $3) and appends one raw line.
measure() {
	local tool=$1 freq=$2 rep=$3 dir=$BENCH_TMP/$1.$2.$3 wrapper pid ids="" all="" t0 t1 k0 k1 c0 c1
	local s0="0 0" s1="0 0" a0="0 0" a1="0 0" mem notes life post_ns
	mkdir -p "$dir"
	# GNU time reports the tool's lifetime CPU and peak RSS after it exits.
	case $tool in
	profqd | profqd-fp)
		local mode=()
		[[ $tool == profqd-fp ]] && mode=(--stack-copy 0)
		spawn "$dir/out" "$dir/err" /usr/bin/time -f "%e %U %S %M" -o "$dir/time" \
			"$PROFQD" --socket "$dir/sock" --state-dir "$dir/state" --config /dev/null \
			--frequency "$freq" "${mode[@]}" $PROFQD_ARGS
		wrapper=$SPAWNED
		pid=$(wait_for "$wrapper" child_of "$wrapper") || die "profqd did not start"
		BENCH_PIDS+=("$pid") # time(1) dies on SIGTERM without passing it on
		ids=$(wait_for "$pid" profqd_prog_id "$dir/sock") || die "profqd did not start: $(cat "$dir/err")"
		;;
	perf | perf-dwarf)
		local graph=(-g)
		[[ $tool == perf-dwarf ]] && graph=(--call-graph dwarf,16384)
		spawn "$dir/out" "$dir/err" /usr/bin/time -f "%e %U %S %M" -o "$dir/time" \
			perf record -F "$freq" -a "${graph[@]}" -o "$dir/perf.data"
		wrapper=$SPAWNED
		pid=$(wait_for "$wrapper" child_of "$wrapper") || die "perf did not start"
		BENCH_PIDS+=("$pid")
		;;
	*)
		die "unknown tool '$tool'"
		;;
	esac
	sleep "$WARMUP"

	if [[ -n $ids ]]; then
		all=$(prog_ids_of "$pid" any)
		# shellcheck disable=SC2086
		s0=$(prog_stats $ids) a0=$(prog_stats $all)
	fi
	k0=$(cpu_ticks_ns "$pid")
	c0=$(cpu_sched_ns "$pid")
	t0=$(now_ns)
	sleep "$DURATION"
	if [[ -n $ids ]]; then
		# shellcheck disable=SC2086
		s1=$(prog_stats $ids) a1=$(prog_stats $all)
	fi
	k1=$(cpu_ticks_ns "$pid")
	c1=$(cpu_sched_ns "$pid")
	t1=$(now_ns)
	mem=$(mem_kib "$pid")

	if [[ $tool == profqd* ]]; then
		notes=$("$PROFQ" --socket "$dir/sock" status --json |
			jq -c '{samples, stored, idle, lost, stack_errors, memory_bytes, processes,
				stack_cache_hits: .symbolizer.stack_cache_hits}')
		kill -TERM "$pid"
	else
		kill -INT "$pid"
	fi
	# Signal 0: only wait (up to 120 s: perf collects build-ids first) for the tool to exit
	# and time(1) to report.
	stop_pid "$wrapper" 0 120
	stop_pid "$pid" 0 1 # gone with it; forget it
	if [[ $tool == perf* ]]; then
		notes="data_bytes=$(stat -c %s "$dir/perf.data") $(grep -E 'Captured|woken' "$dir/err" | tr '\n' ' ')"
	fi
	# The last line: time(1) puts "Command exited with non-zero status N" before it.
	life=$(tail -1 "$dir/time" 2>/dev/null | awk '{print $2 + $3}')
	post_ns=$(awk -v l="$life" -v k="$k1" 'BEGIN {printf "%d", l * 1e9 - k}')
	rm -f "$dir/perf.data"

	awk -v tool="$tool" -v f="$freq" -v rep="$rep" -v dt=$((t1 - t0)) -v kt=$((k1 - k0)) \
		-v cs=$((c1 - c0)) -v bns=$((${s1% *} - ${s0% *})) -v runs=$((${s1#* } - ${s0#* })) \
		-v allns=$((${a1% *} - ${a0% *})) \
		-v mem="$mem" -v life="$life" -v post="$post_ns" 'BEGIN {
		split(mem, m, " ")
		own = 100 * kt / dt; bpf = 100 * allns / dt
		printf "%-6s %4d %2d %8.3f %8.3f %8.3f %8.3f %9.1f %8.1f %8d %8d %8.2f %8.2f %7.2f\n",
			tool, f, rep, own, 100 * cs / dt, bpf, own + bpf,
			runs ? bns / runs : 0, runs / (dt / 1e9), m[1], m[2], life, post / 1e9, dt / 1e9 }' >>"$RAW"
	echo "#   $tool $freq Hz rep $rep: sampler $ids, all BPF programs ${all:-none}: $notes" >>"$RAW"
	log "$tool $freq Hz rep $rep: $(tail -2 "$RAW" | head -1)"
}

# Median [min–max] of column $3 for tool $1 at $2 Hz.
cell() {
	awk -v t="$1" -v f="$2" -v c="$3" '!/^#/ && $1 == t && $2 == f {print $c}' "$RAW" | stats |
		awk -v fmt="${4:-%.3f}" '{printf fmt " [" fmt "–" fmt "]", $1, $2, $3}'
}

report() {
	local tool f
	{
		echo "| tool | Hz | own CPU % of a core (utime+stime) | own CPU %, schedstat | BPF % of a core | total % | BPF ns/sample | VmRSS KiB | VmHWM KiB | lifetime CPU s | CPU after stop s |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		for f in $FREQS; do
			for tool in $TOOLS; do
				echo "| $tool | $f | $(cell "$tool" "$f" 4) | $(cell "$tool" "$f" 5) |" \
					"$(cell "$tool" "$f" 6) | $(cell "$tool" "$f" 7) | $(cell "$tool" "$f" 8 %.0f) |" \
					"$(cell "$tool" "$f" 10 %.0f) | $(cell "$tool" "$f" 11 %.0f) |" \
					"$(cell "$tool" "$f" 12 %.2f) | $(cell "$tool" "$f" 13 %.2f) |"
			done
		done
	} >"$TABLE.tmp"
	{
		echo "# daemon-cost: profiler CPU and memory, all CPUs busy"
		echo
		sed -n 's/^# \(date\|host\|profq\|workload\|command\): /- \1: /p' "$RAW"
		echo "- raw numbers: bench/results/daemon-cost.txt; medians [min–max] over the repeats"
		echo "- perf's BPF column is 0: it samples without BPF, and its in-kernel cost is not measured"
		echo
		cat "$TABLE.tmp"
	} >"$TABLE"
	rm -f "$TABLE.tmp"
	cat "$TABLE"
}

main() {
	if [[ ${REPORT_ONLY:-0} == 1 ]]; then
		report
		return
	fi
	bench_init
	bench_build
	command -v perf >/dev/null || TOOLS=$(tr ' ' '\n' <<<"$TOOLS" | grep -v '^perf' | xargs)
	warn_foreign_programs
	start_burners
	bpf_stats_enable
	{
		system_header
		echo "# command: REPEATS=$REPEATS DURATION=$DURATION WARMUP=$WARMUP FREQS='$FREQS'" \
			"TOOLS='$TOOLS'${PROFQ_REF:+ PROFQ_REF=$PROFQ_REF}${PROFQD_ARGS:+ PROFQD_ARGS='$PROFQD_ARGS'} bench/daemon-cost.sh"
		echo "# columns: tool Hz repeat own_cpu_pct(utime+stime) own_cpu_pct(schedstat) bpf_cpu_pct" \
			"total_pct bpf_ns_per_sample samples_per_s vmrss_kib vmhwm_kib lifetime_cpu_s" \
			"cpu_after_stop_s seconds"
	} >"$RAW"
	local rep f tool
	for ((rep = 1; rep <= REPEATS; rep++)); do
		for f in $FREQS; do
			for tool in $TOOLS; do
				measure "$tool" "$f" "$rep"
			done
		done
	done
	report
}

main "$@"
