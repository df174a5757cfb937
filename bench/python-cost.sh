#!/bin/bash
# SPDX-License-Identifier: MIT
# What naming Python frames (profqd --python yes, the default) costs, against --python no in
# the same run. Three phases (PHASES, in this order by default):
#
#   cost      every CPU busy with one pinned process per CPU: LOADS "native" (bench/burn, no
#             Python) and "python" (/usr/bin/python3 bench/pyburn.py, nested calls PYDEPTH
#             deep); for each of FREQS and each load, profqd with --python yes and then no,
#             and at 99 Hz on the python load `perf record -F 99 -a -g` as the peer. Per run
#             over DURATION seconds after WARMUP: the sampler's BPF ns per sample (bpf_stats:
#             run_time_ns / run_cnt of `status --json` bpf_prog_id), profqd's own CPU
#             (utime+stime) and all its BPF programs' run time as % of one core, VmRSS and
#             VmHWM, and the status python counters over the window.
#   coverage  one pyburn.py under each of INTERPRETERS at once (sharing the CPUs), profqd at
#             99 Hz: per process, its samples (`profq top --pid N --json`) and the largest
#             total_samples of a row with "python": true (every pyburn.py stack holds
#             <module> and main(), so that is the samples with at least one Python frame);
#             and the status counters samples_with_frames / samples over the window.
#   cache     profqd at defaults (99 Hz) for CACHE_DURATION seconds while CPython's own test
#             suite runs (/usr/lib/python3.11/test, Debian's libpython3.11-testsuite): one
#             `python3 -m test` of CACHE_TESTS in one process (one interpreter accumulating
#             code objects) and one `python3 -m test -j1` of the same (a worker process per
#             test: code objects of exited processes), each started again when it ends;
#             every CACHE_EVERY seconds a line of status: python.code_cache_entries,
#             memory.python, code reads, drops, VmRSS.
#
# Environment: PHASES ("cost coverage cache"), REPEATS (3), DURATION (20), WARMUP (5), FREQS
# ("99 999"), LOADS ("native python"), PYDEPTH (20), PYTHON (/usr/bin/python3), INTERPRETERS
# (python3 and pyenv's 3.8, 3.12, 3.13 where installed), COV_DURATION (30), CACHE_DURATION
# (1500), CACHE_EVERY (30), CACHE_TESTS, PROFQ_REF=<commit> (see lib.sh), SKIP_BUILD=1, BUILD.
# Output: tables on stdout; raw lines in bench/results/python-{cost,coverage,cache}.txt (RAW_*
# to choose), tables in the .md of the same names; REPORT_ONLY=1 prints them again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PHASES=${PHASES:-cost coverage cache}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
FREQS=${FREQS:-99 999}
LOADS=${LOADS:-native python}
PYDEPTH=${PYDEPTH:-20}
PYTHON=${PYTHON:-/usr/bin/python3}
PYBURN=$BENCH_DIR/pyburn.py
COV_DURATION=${COV_DURATION:-30}
CACHE_DURATION=${CACHE_DURATION:-1500}
CACHE_EVERY=${CACHE_EVERY:-30}
CACHE_TESTS=${CACHE_TESTS:-test_email test_argparse test_typing test_inspect test_pydoc test_ast
test_unittest test_lib2to3 test_statistics test_fractions test_datetime test_configparser
test_difflib test_logging test_asyncio test_tokenize test_decimal test_json test_enum
test_dataclasses test_traceback test_dis test_compile test_descr test_collections test_functools}
RAW_COST=${RAW_COST:-$RESULTS/python-cost.txt}
RAW_COV=${RAW_COV:-$RESULTS/python-coverage.txt}
RAW_CACHE=${RAW_CACHE:-$RESULTS/python-cache.txt}

default_interpreters() {
	local v p
	echo "$PYTHON"
	for v in 3.8 3.12 3.13; do
		p=$(ls -d /root/.pyenv/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -1) || true
		[[ -n $p ]] && echo "$p"
	done
}
INTERPRETERS=${INTERPRETERS:-$(default_interpreters | xargs)}

profqd_prog_id() {
	"$PROFQ" --socket "$1" status --json | jq -r '.bpf_prog_id // empty'
}

child_of() {
	pgrep -P "$1" | head -1
}

# Starts profqd with "$@" in directory $1; sets PQ_PID and PQ_IDS (the sampler's program id).
start_profqd() {
	local dir=$1
	shift
	mkdir -p "$dir"
	spawn "$dir/out" "$dir/err" "$PROFQD" --socket "$dir/sock" --state-dir "$dir/state" \
		--config /dev/null "$@"
	PQ_PID=$SPAWNED
	PQ_IDS=$(wait_for "$PQ_PID" profqd_prog_id "$dir/sock") || die "profqd did not start: $(cat "$dir/err")"
}

status_json() {
	"$PROFQ" --socket "$1/sock" status --json
}

# One pinned process per CPU running load $1.
start_load() {
	local cpu
	LOAD_PIDS=()
	for cpu in $(online_cpus); do
		case $1 in
		native) spawn /dev/null /dev/null taskset -c "$cpu" "$BURN" ;;
		python) spawn /dev/null /dev/null taskset -c "$cpu" "$PYTHON" "$PYBURN" "$PYDEPTH" ;;
		*) die "unknown load '$1'" ;;
		esac
		LOAD_PIDS+=("$SPAWNED")
	done
	sleep 0.5
}

stop_load() {
	local pid
	for pid in "${LOAD_PIDS[@]}"; do
		stop_pid "$pid" TERM 5
	done
	LOAD_PIDS=()
}

# The python counters of a status answer: "samples samples_with_frames" (0 0 without).
py_counts() {
	jq -r '"\(.python.samples // 0) \(.python.samples_with_frames // 0)"' <<<"$1"
}

# Phase cost: tool $1 (yes, no: profqd --python; perf) at $2 Hz on load $3, repeat $4.
cost_run() {
	local tool=$1 freq=$2 load=$3 rep=$4 dir=$BENCH_TMP/cost.$1.$2.$3.$4 pid ids="" all=""
	local s0="0 0" s1="0 0" a0="0 0" a1="0 0" k0 k1 t0 t1 mem st0="" st1="" p0="0 0" p1="0 0"
	mkdir -p "$dir"
	case $tool in
	yes | no)
		start_profqd "$dir" --frequency "$freq" --python "$tool"
		pid=$PQ_PID ids=$PQ_IDS
		;;
	perf)
		spawn "$dir/out" "$dir/err" perf record -F "$freq" -a -g -o "$dir/perf.data"
		pid=$SPAWNED
		;;
	esac
	sleep "$WARMUP"
	if [[ -n $ids ]]; then
		all=$(prog_ids_of "$pid" any)
		# shellcheck disable=SC2086
		s0=$(prog_stats $ids) a0=$(prog_stats $all)
		st0=$(status_json "$dir")
		p0=$(py_counts "$st0")
	fi
	k0=$(cpu_ticks_ns "$pid")
	t0=$(now_ns)
	sleep "$DURATION"
	if [[ -n $ids ]]; then
		# shellcheck disable=SC2086
		s1=$(prog_stats $ids) a1=$(prog_stats $all)
		st1=$(status_json "$dir")
		p1=$(py_counts "$st1")
	fi
	k1=$(cpu_ticks_ns "$pid")
	t1=$(now_ns)
	mem=$(mem_kib "$pid")
	if [[ $tool == perf ]]; then
		stop_pid "$pid" INT 120
	else
		stop_pid "$pid" TERM 30
	fi
	rm -f "$dir/perf.data"
	local name=$tool
	[[ $tool != perf ]] && name=py-$tool
	awk -v name="$name" -v f="$freq" -v load="$load" -v rep="$rep" -v dt=$((t1 - t0)) \
		-v kt=$((k1 - k0)) -v bns=$((${s1% *} - ${s0% *})) -v runs=$((${s1#* } - ${s0#* })) \
		-v allns=$((${a1% *} - ${a0% *})) -v mem="$mem" \
		-v ps=$((${p1% *} - ${p0% *})) -v pf=$((${p1#* } - ${p0#* })) 'BEGIN {
		split(mem, m, " ")
		own = 100 * kt / dt; bpf = 100 * allns / dt
		printf "%-7s %4d %-6s %2d %8.3f %8.3f %8.3f %9.1f %8.1f %8d %8d %7d %7d %7.2f\n",
			name, f, load, rep, own, bpf, own + bpf, runs ? bns / runs : 0, runs / (dt / 1e9),
			m[1], m[2], ps, pf, dt / 1e9 }' >>"$RAW_COST"
	if [[ -n $st1 ]]; then
		echo "#   $name $freq Hz $load rep $rep: sampler $ids, all BPF ${all// /,}:" \
			"$(jq -c '{samples, lost, stack_errors, python: (.python // {} |
				{processes, samples, samples_with_frames, frames_read, frames_unnamed,
				code_cache_entries, walk_errors, walk_truncated, unmatched_stacks}),
				memory_python: .memory.python}' <<<"$st1")" >>"$RAW_COST"
	else
		echo "#   $name $freq Hz $load rep $rep: $(grep -E 'Captured|woken' "$dir/err" | tr '\n' ' ')" >>"$RAW_COST"
	fi
	log "$(tail -2 "$RAW_COST" | head -1)"
}

phase_cost() {
	{
		system_header | grep -v '^# workload'
		echo "# workload: $(online_cpus | wc -l) pinned processes of each load: native = bench/burn" \
			"(defaults), python = $PYTHON bench/pyburn.py $PYDEPTH ($($PYTHON --version 2>&1))"
		echo "# command: PHASES=cost REPEATS=$REPEATS DURATION=$DURATION WARMUP=$WARMUP" \
			"FREQS='$FREQS' LOADS='$LOADS'${PROFQ_REF:+ PROFQ_REF=$PROFQ_REF} bench/python-cost.sh"
		echo "# columns: tool Hz load repeat own_cpu_pct bpf_cpu_pct(all programs) total_pct" \
			"sampler_ns_per_sample samples_per_s vmrss_kib vmhwm_kib python_samples" \
			"python_samples_with_frames seconds"
	} >"$RAW_COST"
	local rep f load
	for ((rep = 1; rep <= REPEATS; rep++)); do
		for load in $LOADS; do
			start_load "$load"
			for f in $FREQS; do
				cost_run yes "$f" "$load" "$rep"
				cost_run no "$f" "$load" "$rep"
				if [[ $f == 99 && $load == python ]] && command -v perf >/dev/null; then
					cost_run perf "$f" "$load" "$rep"
				fi
			done
			stop_load
		done
	done
}

# Median [min–max] of column $5 for tool $1, $2 Hz, load $3 (format $4).
cost_cell() {
	awk -v t="$1" -v f="$2" -v l="$3" -v c="$5" '!/^#/ && $1 == t && $2 == f && $3 == l {print $c}' \
		"$RAW_COST" | stats | awk -v fmt="$4" '$4 > 0 {printf fmt " [" fmt "–" fmt "]", $1, $2, $3}'
}

# Median [min–max] over the repeats of column $4 of py-yes minus py-no, $1 Hz, load $2, the
# two runs of one repeat paired; $3: "diff" or "ratio".
cost_paired() {
	awk -v f="$1" -v l="$2" -v how="$3" -v c="$4" '!/^#/ && $2 == f && $3 == l {v[$1, $4] = $c; r[$4] = 1}
		END {for (k in r) if (v["py-yes", k] != "" && v["py-no", k] != "")
			print (how == "diff") ? v["py-yes", k] - v["py-no", k] : v["py-yes", k] / v["py-no", k]}' \
		"$RAW_COST" | stats | awk -v fmt="${5:-%.0f}" '$4 > 0 {printf fmt " [" fmt "–" fmt "]", $1, $2, $3}'
}

report_cost() {
	[[ -s $RAW_COST ]] || return 0
	local f load tool
	{
		echo "# python-cost: profqd --python yes against no, every CPU busy"
		echo
		sed -n 's/^# \(date\|host\|profq\|workload\|command\): /- \1: /p' "$RAW_COST"
		echo "- raw numbers: bench/results/$(basename "$RAW_COST"); medians [min–max] over the repeats;" \
			"yes − no and yes ÷ no paired per repeat"
		echo
		echo "| load | Hz | tool | sampler BPF ns/sample | own CPU % | BPF % (all programs) | total % | VmRSS KiB | Python samples with frames % |"
		echo "|---|---|---|---|---|---|---|---|---|"
		for load in $LOADS; do
			for f in $FREQS; do
				for tool in py-yes py-no perf; do
					[[ -n $(cost_cell "$tool" "$f" "$load" %.0f 8) || $tool != perf ]] || continue
					local bns bpf
					bns=$(cost_cell "$tool" "$f" "$load" %.0f 8) bpf=$(cost_cell "$tool" "$f" "$load" %.3f 6)
					[[ $tool == perf ]] && bns=– bpf="– (not measured: in the interrupt)"
					echo "| $load | $f | $tool | $bns |" \
						"$(cost_cell "$tool" "$f" "$load" %.3f 5) | $bpf |" \
						"$(cost_cell "$tool" "$f" "$load" %.3f 7) | $(cost_cell "$tool" "$f" "$load" %.0f 10) |" \
						"$(awk -v t="$tool" -v f="$f" -v l="$load" '!/^#/ && $1 == t && $2 == f &&
							$3 == l && $12 > 0 {print 100 * $13 / $12}' "$RAW_COST" | stats |
							awk '$4 > 0 {printf "%.1f [%.1f–%.1f]", $1, $2, $3}') |"
				done
			done
		done
		echo
		echo "| load | Hz | BPF ns/sample, yes − no | yes ÷ no | total CPU %, yes − no | VmRSS KiB, yes − no |"
		echo "|---|---|---|---|---|---|"
		for load in $LOADS; do
			for f in $FREQS; do
				echo "| $load | $f | $(cost_paired "$f" "$load" diff 8) | $(cost_paired "$f" "$load" ratio 8 %.2f) |" \
					"$(cost_paired "$f" "$load" diff 7 %.3f) | $(cost_paired "$f" "$load" diff 10) |"
			done
		done
	} >"${RAW_COST%.txt}.md"
	cat "${RAW_COST%.txt}.md"
}

# "samples with_python_frame python_rows" of process $2 in profqd's dir $1: its samples since
# it started, and the total_samples of its <module> row (every pyburn.py stack holds it).
pid_counts() {
	"$PROFQ" --socket "$1/sock" top --pid "$2" --since 10m -n 100000 --json |
		jq -r '"\(.samples) \([.rows[] | select(.python and .function == "<module>") |
			.total_samples] | max // 0) \([.rows[] | select(.python)] | length)"'
}

# Phase coverage: repeat $1.
coverage_run() {
	local rep=$1 dir=$BENCH_TMP/cov.$1 py pids=() i st0 st1 p0 p1 pid c0=() c1
	start_profqd "$dir" --frequency 99
	for py in $INTERPRETERS; do
		spawn /dev/null "$dir/py.$((${#pids[@]})).err" "$py" "$PYBURN" "$PYDEPTH"
		pids+=("$SPAWNED")
	done
	sleep "$WARMUP"
	st0=$(status_json "$dir")
	for pid in "${pids[@]}"; do
		c0+=("$(pid_counts "$dir" "$pid")")
	done
	sleep "$COV_DURATION"
	st1=$(status_json "$dir")
	p0=$(py_counts "$st0") p1=$(py_counts "$st1")
	i=0
	for py in $INTERPRETERS; do
		c1=$(pid_counts "$dir" "${pids[i]}")
		# shellcheck disable=SC2086
		set -- ${c0[i]} $c1
		echo "$("$py" --version 2>&1 | awk '{print $2}') $rep $(($4 - $1)) $(($5 - $2)) $4 $5 $6 $py" \
			>>"$RAW_COV"
		i=$((i + 1))
	done
	echo "status $rep $((${p1% *} - ${p0% *})) $((${p1#* } - ${p0#* })) - - - -" \
		"$(jq -c '.python | {processes, attached, frames_unnamed, walk_errors, walk_truncated,
			unmatched_stacks, thread_unknown}' <<<"$st1")" >>"$RAW_COV"
	for pid in "${pids[@]}"; do
		stop_pid "$pid" TERM 5
	done
	stop_pid "$PQ_PID" TERM 30
	log "coverage rep $rep: $(tail -$((${#pids[@]} + 1)) "$RAW_COV" | tr '\n' ';')"
}

phase_coverage() {
	{
		system_header | grep -v '^# workload'
		echo "# workload: $PYBURN $PYDEPTH under each of: $INTERPRETERS (at once, unpinned)"
		echo "# command: PHASES=coverage REPEATS=$REPEATS COV_DURATION=$COV_DURATION" \
			"WARMUP=$WARMUP${PROFQ_REF:+ PROFQ_REF=$PROFQ_REF} bench/python-cost.sh"
		echo "# columns: version repeat samples_in_window with_python_frames_in_window" \
			"samples_since_start with_python_frames_since_start python_rows interpreter" \
			"(top --pid N: samples, and the total_samples of the <module> row); status lines:" \
			"repeat python.samples python.samples_with_frames over the window (all CPython processes)"
	} >"$RAW_COV"
	local rep
	for ((rep = 1; rep <= REPEATS; rep++)); do
		coverage_run "$rep"
	done
}

# Median [min–max] of the awk expression $2 over the lines of interpreter version $1.
cov_cell() {
	awk -v v="$1" '!/^#/ && $1 == v {x = '"$2"'; if (x != "nan") print x}' "$RAW_COV" | stats |
		awk -v fmt="${3:-%.0f}" '$4 > 0 {printf fmt " [" fmt "–" fmt "]", $1, $2, $3}'
}

report_coverage() {
	[[ -s $RAW_COV ]] || return 0
	{
		echo "# python-coverage: samples of a CPython process that carry Python frames"
		echo
		sed -n 's/^# \(date\|host\|profq\|workload\|command\): /- \1: /p' "$RAW_COV"
		echo "- raw numbers: bench/results/$(basename "$RAW_COV"); medians [min–max] over the repeats"
		echo
		echo "| interpreter | samples in the window | with a Python frame % | since the process started: samples | with a Python frame % | Python functions named |"
		echo "|---|---|---|---|---|---|"
		awk '!/^#/ && $1 != "status" {print $1}' "$RAW_COV" | awk '!seen[$0]++' | while read -r v; do
			echo "| $v | $(cov_cell "$v" '$3') | $(cov_cell "$v" '$3 > 0 ? 100 * $4 / $3 : "nan"' %.1f) |" \
				"$(cov_cell "$v" '$5') | $(cov_cell "$v" '$5 > 0 ? 100 * $6 / $5 : "nan"' %.1f) |" \
				"$(cov_cell "$v" '$7') |"
		done
		echo "| all CPython processes on the host (status python.samples_with_frames / samples) |" \
			"$(cov_cell status '$3') | $(cov_cell status '$3 > 0 ? 100 * $4 / $3 : "nan"' %.1f) | | | |"
	} >"${RAW_COV%.txt}.md"
	cat "${RAW_COV%.txt}.md"
}

# SIGTERM to process $1 and all its descendants (by pid), then forgets $1.
kill_tree() {
	local pid=$1 all=() next=() p
	next=("$pid")
	while ((${#next[@]})); do
		all+=("${next[@]}")
		mapfile -t next < <(for p in "${next[@]}"; do pgrep -P "$p" || true; done)
	done
	kill -TERM "${all[@]}" 2>/dev/null || true
	stop_pid "$pid" TERM 10
}

# Phase cache: runs `python3 -m test ARGS` again and again until the file $1 exists.
test_loop() {
	local stop=$1
	shift
	while [[ ! -e $stop ]]; do
		# shellcheck disable=SC2086
		nice -n 5 "$PYTHON" -m test "$@" $CACHE_TESTS || true
	done
}

phase_cache() {
	local dir=$BENCH_TMP/cache start st one=() many=()
	[[ -d /usr/lib/python3.11/test ]] ||
		die "no /usr/lib/python3.11/test: apt-get install libpython3.11-testsuite"
	start_profqd "$dir"
	{
		system_header | grep -v '^# workload'
		echo "# workload: $PYTHON -m test (one process) and -m test -j1 (a worker per test), each" \
			"started again when done, tests: $(xargs <<<"$CACHE_TESTS")"
		echo "# command: PHASES=cache CACHE_DURATION=$CACHE_DURATION CACHE_EVERY=$CACHE_EVERY" \
			"${PROFQ_REF:+ PROFQ_REF=$PROFQ_REF} bench/python-cost.sh (profqd at defaults)"
		echo "# columns: seconds code_cache_entries memory_python_bytes code_reads code_read_errors" \
			"code_changed code_cache_drops python_processes python_samples samples_with_frames" \
			"frames_unnamed memory_bytes rss_bytes"
	} >"$RAW_CACHE"
	local loop
	loop="$(declare -f test_loop); PYTHON=$PYTHON CACHE_TESTS='$(xargs <<<"$CACHE_TESTS")'; test_loop $dir/stop"
	spawn "$dir/one.out" "$dir/one.err" bash -c "$loop -v"
	one=("$SPAWNED")
	spawn "$dir/many.out" "$dir/many.err" bash -c "$loop -j1"
	many=("$SPAWNED")
	start=$SECONDS
	while ((SECONDS - start < CACHE_DURATION)); do
		sleep "$CACHE_EVERY"
		st=$(status_json "$dir")
		jq -r --argjson t $((SECONDS - start)) '[$t, .python.code_cache_entries, .memory.python,
			.python.code_reads, .python.code_read_errors, .python.code_changed,
			.python.code_cache_drops, .python.processes, .python.samples,
			.python.samples_with_frames, .python.frames_unnamed, .memory_bytes,
			.memory.rss_bytes] | map(tostring) | join(" ")' <<<"$st" >>"$RAW_CACHE"
		log "cache: $(tail -1 "$RAW_CACHE")"
	done
	touch "$dir/stop"
	echo "# status at the end: $(jq -c '{samples, lost, python, memory}' <<<"$st")" >>"$RAW_CACHE"
	echo "# tests started: $(cat "$dir/one.out" "$dir/many.out" | grep -cE '^(0:[0-9:]+ load avg: [0-9.]+ )?\[ *[0-9]+/[0-9]+')" >>"$RAW_CACHE"
	kill_tree "${one[0]}"
	kill_tree "${many[0]}"
	stop_pid "$PQ_PID" TERM 30
}

report_cache() {
	[[ -s $RAW_CACHE ]] || return 0
	{
		echo "# python-cache: profqd's code-object cache under CPython's test suite"
		echo
		sed -n 's/^# \(date\|host\|profq\|workload\|command\): /- \1: /p' "$RAW_CACHE"
		echo "- raw numbers: bench/results/$(basename "$RAW_CACHE")"
		echo
		echo "| seconds | code_cache_entries | memory.python KiB | code reads | drops | VmRSS MiB |"
		echo "|---|---|---|---|---|---|"
		awk '!/^#/ {printf "| %d | %d | %.0f | %d | %d | %.1f |\n", $1, $2, $3 / 1024, $4, $7, $13 / 1048576}' \
			"$RAW_CACHE"
	} >"${RAW_CACHE%.txt}.md"
	cat "${RAW_CACHE%.txt}.md"
}

main() {
	local phase
	if [[ ${REPORT_ONLY:-0} == 1 ]]; then
		report_cost
		report_coverage
		report_cache
		return
	fi
	bench_init
	bench_build
	[[ -x $PYTHON ]] || die "no $PYTHON"
	warn_foreign_programs
	bpf_stats_enable
	for phase in $PHASES; do
		case $phase in
		cost) phase_cost && report_cost ;;
		coverage) phase_coverage && report_coverage ;;
		cache) phase_cache && report_cache ;;
		*) die "unknown phase '$phase'" ;;
		esac
	done
}

main "$@"
