#!/bin/bash
# SPDX-License-Identifier: MIT
# BPF run time per sample of profq's sampler against other designs and peer tools, with every
# CPU busy (one bench/burn per CPU: 40-deep frame-pointer stacks, ~25% of the time in read(2)).
#
# For each variant: start it, wait until its perf_event program is attached, let it warm up,
# then take the kernel's own bpf_stats (bpftool prog show id N: run_time_ns, run_cnt) and the
# reader process's CPU (utime+stime from /proc/PID/stat, and the scheduler's ns figure from
# /proc/PID/task/*/schedstat) at the start and end of DURATION seconds. Variants run in turn
# within each repeat, so drift on the VM hits all of them alike. Medians over REPEATS.
#
#   profqd    profqd itself (its program id from `profq status --json`)
#   rbnowake  the same BPF program in bench/variants/loader.c: ring buffer, BPF_RB_NO_WAKEUP,
#             drained every 100 ms by a reader that only counts records
#   rbwake    the same with a wakeup per sample (flags 0), reader blocked in ring_buffer__poll
#   stackmap  bcc-profile design in our own loader: bpf_get_stackid x2 + hash-map count
#   bpftrace  bpftrace -e 'profile:hz:F { @[kstack, ustack, comm] = count(); }'
#   bcc       profile-bpfcc -F F -f
#
# BREAKDOWN=1 measures instead where profq's program spends its time: rbnowake (all of it),
# and the same program (bench/variants/parts.bpf.c) with parts switched off before load:
#   nooutput  no bpf_ringbuf_output        kstack    kernel stack only (no user stack)
#   ustack    user stack only              nostack   neither stack (header + submit)
#   empty     a program that returns at once: the fixed cost of running any program
#
# Environment: REPEATS (5), DURATION seconds (20), WARMUP seconds (3), FREQ Hz (99),
# VARIANTS (all of the above), BREAKDOWN=1, REPORT_ONLY=1 (the tables again from the raw file),
# PROFQ_REF=<commit> (see lib.sh), SKIP_BUILD=1, BUILD, BURN_ARGS.
# Output: a table on stdout; raw numbers in bench/results/bpf-cost-FREQhz.txt (or
# bpf-breakdown-FREQhz.txt; RAW=FILE to choose), the table in the .md of the same name.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEATS=${REPEATS:-5}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
FREQ=${FREQ:-99}
if [[ ${BREAKDOWN:-0} == 1 ]]; then
	TAG=bpf-breakdown
	VARIANTS=${VARIANTS:-rbnowake nooutput kstack ustack nostack empty}
else
	TAG=bpf-cost
	VARIANTS=${VARIANTS:-profqd rbnowake rbwake stackmap bpftrace bcc}
fi
BASE=${BASE:-${VARIANTS%% *}} # the ratio column divides this variant's median by each

RAW=${RAW:-$RESULTS/$TAG-${FREQ}hz.txt}
TABLE=${TABLE:-${RAW%.txt}.md}

profqd_prog_id() {
	"$PROFQ" --socket "$1" status --json | jq -r '.bpf_prog_id // empty'
}

loader_prog_id() {
	awk '$1 == "prog_id" {print $2}' "$1"
}

# Starts variant $1 (repeat $2); sets READER (pid) and IDS (program ids).
start_variant() {
	local v=$1 rep=$2 dir=$BENCH_TMP/$1.$2
	mkdir -p "$dir"
	case $v in
	profqd)
		spawn "$dir/out" "$dir/err" "$PROFQD" --socket "$dir/sock" --state-dir "$dir/state" \
			--config /dev/null --frequency "$FREQ"
		READER=$SPAWNED
		IDS=$(wait_for "$READER" profqd_prog_id "$dir/sock") || die "profqd did not start: $(cat "$dir/err")"
		;;
	rbnowake | rbwake | stackmap)
		spawn "$dir/out" "$dir/err" "$LOADER" "$v" --frequency "$FREQ"
		READER=$SPAWNED
		IDS=$(wait_for "$READER" loader_prog_id "$dir/out") || die "$v did not start: $(cat "$dir/err")"
		;;
	nooutput | kstack | ustack | nostack | empty)
		local args=(parts)
		case $v in
		nooutput) args+=(--skip output) ;;
		kstack) args+=(--skip ustack) ;;
		ustack) args+=(--skip kstack) ;;
		nostack) args+=(--skip "kstack,ustack") ;;
		empty) args=(empty) ;;
		esac
		spawn "$dir/out" "$dir/err" "$LOADER" "${args[@]}" --frequency "$FREQ"
		READER=$SPAWNED
		IDS=$(wait_for "$READER" loader_prog_id "$dir/out") || die "$v did not start: $(cat "$dir/err")"
		;;
	bpftrace)
		spawn "$dir/out" "$dir/err" bpftrace -e \
			"profile:hz:$FREQ { @[kstack, ustack, comm] = count(); }"
		READER=$SPAWNED
		IDS=$(wait_for "$READER" prog_ids_of "$READER") || die "bpftrace did not start: $(cat "$dir/err")"
		;;
	bcc)
		spawn "$dir/out" "$dir/err" profile-bpfcc -F "$FREQ" -f
		READER=$SPAWNED
		IDS=$(wait_for "$READER" prog_ids_of "$READER") || die "bcc profile did not start: $(cat "$dir/err")"
		;;
	*)
		die "unknown variant '$v'"
		;;
	esac
}

# What the variant says about its own run (lost samples, errors), for the raw file.
variant_notes() {
	local v=$1 dir=$BENCH_TMP/$1.$2
	case $v in
	rbnowake | rbwake | stackmap | nooutput | kstack | ustack | nostack | empty)
		tail -1 "$dir/err"
		;;
	profqd)
		echo "$PROFQD_STATUS"
		;;
	*)
		echo "stderr: $(head -c 200 "$dir/err" | tr '\n' ' ')"
		;;
	esac
}

measure() {
	local v=$1 rep=$2 dir=$BENCH_TMP/$1.$2 t0 t1 s0 s1 k0 k1 c0 c1 dt runs ns
	start_variant "$v" "$rep"
	sleep "$WARMUP"
	# The program set is stable by now (bpftrace/bcc may load probe programs at start).
	if [[ $v == bpftrace || $v == bcc ]]; then
		IDS=$(prog_ids_of "$READER")
	fi
	# shellcheck disable=SC2086
	s0=$(prog_stats $IDS)
	k0=$(cpu_ticks_ns "$READER")
	c0=$(cpu_sched_ns "$READER")
	t0=$(now_ns)
	sleep "$DURATION"
	# shellcheck disable=SC2086
	s1=$(prog_stats $IDS)
	k1=$(cpu_ticks_ns "$READER")
	c1=$(cpu_sched_ns "$READER")
	t1=$(now_ns)
	PROFQD_STATUS=
	if [[ $v == profqd ]]; then
		PROFQD_STATUS=$("$PROFQ" --socket "$dir/sock" status --json |
			jq -c '{samples, stored, idle, lost, stack_errors, memory_bytes}')
	fi
	stop_pid "$READER" TERM 30

	dt=$((t1 - t0))
	runs=$((${s1#* } - ${s0#* }))
	ns=$((${s1% *} - ${s0% *}))
	((runs > 0)) || die "$v: its program never ran (ids '$IDS')"
	awk -v v="$v" -v rep="$rep" -v ids="${IDS// /,}" -v runs="$runs" -v ns="$ns" -v dt="$dt" \
		-v kt=$((k1 - k0)) -v cs=$((c1 - c0)) 'BEGIN {
		printf "%-9s %3d %-9s %8d %12d %10.1f %8.1f %8.3f %8.3f %7.2f\n", v, rep, ids, runs,
			ns, ns / runs, runs / (dt / 1e9), 100 * kt / dt, 100 * cs / dt, dt / 1e9 }' >>"$RAW"
	echo "#   $v rep $rep: $(variant_notes "$v" "$rep")" >>"$RAW"
	log "$v rep $rep: $(tail -2 "$RAW" | head -1)"
}

# Median over the repeats of BASE's ns/sample divided by variant $1's in the same repeat:
# pairing the two runs of one repeat cancels the slow drift of the VM.
paired_ratio() {
	awk -v b="$BASE" -v v="$1" '!/^#/ && ($1 == b || $1 == v) {ns[$1, $2] = $6; reps[$2] = 1}
		END {for (r in reps) if (ns[b, r] != "" && ns[v, r] + 0 > 0) print ns[b, r] / ns[v, r]}' \
		"$RAW" | stats | awk '{printf($4 > 0 ? "%.2f [%.2f–%.2f]" : "–", $1, $2, $3)}'
}

report() {
	local v med min max n rmed rmin rmax kmed base
	base=$(column_stats "$RAW" "$BASE" 6 | awk '{print $1}')
	{
		echo "| variant | BPF ns/sample median [min–max] | $BASE ÷ variant (medians) | $BASE ÷ variant, paired per repeat, median [min–max] | samples/s | reader CPU % of a core, utime+stime median [min–max] | reader CPU %, schedstat median |"
		echo "|---|---|---|---|---|---|---|"
		for v in $VARIANTS; do
			read -r med min max n < <(column_stats "$RAW" "$v" 6)
			read -r rmed rmin rmax _ < <(column_stats "$RAW" "$v" 8)
			kmed=$(column_stats "$RAW" "$v" 9 | awk '{print $1}')
			awk -v v="$v" -v med="$med" -v min="$min" -v max="$max" -v n="$n" -v base="$base" \
				-v sps="$(column_stats "$RAW" "$v" 7 | awk '{print $1}')" -v paired="$(paired_ratio "$v")" \
				-v rmed="$rmed" -v rmin="$rmin" -v rmax="$rmax" -v kmed="$kmed" 'BEGIN {
				ratio = (base == "" || base == "nan" || med == 0) ? "–" : sprintf("%.2f", base / med)
				printf "| %s | %.0f [%.0f–%.0f] (n=%d) | %s | %s | %.0f | %.3f [%.3f–%.3f] | %.3f |\n",
					v, med, min, max, n, ratio, paired, sps, rmed, rmin, rmax, kmed }'
		done
	} >"$TABLE.tmp"
	{
		echo "# $TAG: BPF run time per sample at $FREQ Hz, all CPUs busy"
		echo
		sed -n 's/^# \(date\|host\|profq\|workload\): /- \1: /p' "$RAW"
		sed -n 's/^# command: /- command: /p' "$RAW"
		echo "- raw numbers: bench/results/$(basename "$RAW")"
		echo "- BPF ns/sample: the program's run_time_ns / run_cnt (kernel.bpf_stats_enabled), medians [min–max] over the repeats"
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
	command -v bpftrace >/dev/null || VARIANTS=${VARIANTS//bpftrace/}
	if ! command -v profile-bpfcc >/dev/null || ! bcc_setup; then
		VARIANTS=${VARIANTS//bcc/}
	fi
	warn_foreign_programs
	start_burners
	bpf_stats_enable
	{
		system_header
		echo "# command: REPEATS=$REPEATS DURATION=$DURATION WARMUP=$WARMUP FREQ=$FREQ" \
			"BREAKDOWN=${BREAKDOWN:-0}${PROFQ_REF:+ PROFQ_REF=$PROFQ_REF} bench/bpf-cost.sh" \
			"(variants: $VARIANTS)"
		echo "# columns: variant repeat prog_ids run_cnt run_time_ns ns_per_sample samples_per_s" \
			"reader_cpu_pct(utime+stime) reader_cpu_pct(schedstat) seconds"
	} >"$RAW"
	local rep v
	for ((rep = 1; rep <= REPEATS; rep++)); do
		for v in $VARIANTS; do
			measure "$v" "$rep"
		done
	done
	report
}

main "$@"
