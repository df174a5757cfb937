#!/bin/bash
# SPDX-License-Identifier: MIT
# The profile ring over an hour (docs/PERFORMANCE.md's targets): what a window costs on disk, what
# profqd holds in memory with a full 1 h ring of ~300 processes, how fast `profq top` answers
# over it, and whether a restart brings it back.
#
#   real   profqd at defaults (private socket and state dir; --max-memory from REAL_MEMORY) on
#          this host for REAL_DURATION seconds with a busy workload (bench/burn, a python and a
#          node program, all at nice 19), then SIGTERM: bytes per window on disk, from
#          `profq status` and from the segments themselves (profq-bench-ring inspect: the
#          bytes each window cost, its own record plus the definitions written for it)
#   ring   REPEATS times, for each generator profile of PROFILES: profq-bench-ring generate
#          writes an hour of simulated windows (360 x 10 s, ~300 processes) ending now with
#          profq's own writer; du of
#          the state dir; profqd at defaults starts on it with the workload running: start-up
#          time, then after SETTLE seconds VmRSS/VmHWM and `profq status` memory by part,
#          windows held and evicted (by retention, as expected, or for the memory budget);
#          `profq top` latency with hyperfine (RUNS runs each): system-wide and for the
#          busiest simulated process, --since 1h, plain and --json, through the daemon and
#          offline (`profq --state-dir`); then kill -9, restart on the same state dir: windows
#          loaded, and `profq top --pid` of a process that ran in the ring's newest 10 minutes
#          (not the last 2) must answer exactly as before the kill, and as offline.
#
# Profiles (PROFILES, "NAME=generate options;..."): "spec" is the shape the targets assume (each
# process has a fixed set of 20-200 stacks, so few stacks are new after a while); "host" adds
# --fresh 0.33: a third of the samples bring a stack never seen before, the rate the real runs
# on this host showed (node's JIT code and python's recursion keep making new stacks).
# Environment: REPEATS (3), REAL_DURATION seconds (600; 0 skips the real runs), REAL_MEMORY
# ("64M 256M": one real run per --max-memory; 64M is the default), SETTLE seconds (60), RUNS
# (30), OFFLINE_RUNS (10), PROFILES (see above), PROFQD_ARGS
# (more profqd options for the ring runs), SKIP_BUILD=1, BUILD, PROFQ_REF=<commit> (see lib.sh),
# REPORT_ONLY=1 (the table again from the raw file), RAW.
# Output: a table on stdout; raw lines in bench/results/ring.txt, the table in
# bench/results/ring.md. Needs root (BPF), hyperfine, jq; node and python3 for the workload
# (skipped when missing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEATS=${REPEATS:-3}
REAL_DURATION=${REAL_DURATION:-600}
REAL_MEMORY=${REAL_MEMORY:-64M 256M}
SETTLE=${SETTLE:-60}
RUNS=${RUNS:-30}
OFFLINE_RUNS=${OFFLINE_RUNS:-10}
PROFILES=${PROFILES:-spec=;host=--fresh 0.33}
PROFQD_ARGS=${PROFQD_ARGS:-}
RAW=${RAW:-$RESULTS/ring.txt}
TABLE=${TABLE:-${RAW%.txt}.md}
GEN=$BUILD/profq-bench-ring
RETENTION_S=3600 # profqd's default, which the runs keep

build() {
	if [[ -n $REV && ${SKIP_BUILD:-0} != 1 && ! -e $SRC/CMakeLists.txt ]]; then
		log "exporting commit $REV to $SRC"
		mkdir -p "$SRC"
		git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
	fi
	if [[ ${SKIP_BUILD:-0} != 1 ]]; then
		log "building profqd, profq and profq-bench-ring from $SRC in $BUILD, burn in $BENCH_BUILD"
		{
			cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROFQ_BUILD_TESTS=OFF &&
				cmake --build "$BUILD" -j2 --target profqd profq profq-bench-ring &&
				cmake -S "$BENCH_DIR" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
					-DPROFQ_ROOT="$SRC" &&
				cmake --build "$BENCH_BUILD" -j2 --target burn
		} >"$BENCH_TMP/build.log" 2>&1 || {
			tail -30 "$BENCH_TMP/build.log" >&2
			die "build failed (full log above; SKIP_BUILD=1 uses what is built)"
		}
	fi
	local f
	for f in "$PROFQD" "$PROFQ" "$GEN" "$BURN"; do
		[[ -x $f ]] || die "missing $f"
	done
	command -v hyperfine >/dev/null || die "needs hyperfine (apt-get install hyperfine)"
	command -v jq >/dev/null || die "needs jq"
}

# A busy host, gently: burn (40-deep stacks, a quarter in read(2)), a python program and a node
# program with varied stacks; nice 19 so that other work on the machine goes first.
start_workload() {
	cat >"$BENCH_TMP/work.py" <<'EOF'
import json, re, random, hashlib
random.seed(1)
def rec(n, f):
    return f() if n == 0 else rec(n - 1, f)
def j():
    d = {str(i): [random.random() for _ in range(20)] for i in range(50)}
    return len(json.loads(json.dumps(d)))
def r():
    return len(re.findall(r"(\w+)@(\w+)\.com", "foo@bar.com x " * 200))
def h():
    return hashlib.sha256(b"x" * 100000).hexdigest()
def s():
    return sorted(random.random() for _ in range(5000))[0]
fs = [j, r, h, s]
while True:
    rec(random.randint(1, 30), random.choice(fs))
EOF
	cat >"$BENCH_TMP/work.js" <<'EOF'
function rec(n, f) { return n === 0 ? f() : rec(n - 1, f); }
const fs = [
  () => JSON.parse(JSON.stringify(Array.from({length: 500}, (_, i) => ({i, s: 'x' + i})))).length,
  () => ('foo@bar.com x '.repeat(200).match(/(\w+)@(\w+)\.com/g) || []).length,
  () => Array.from({length: 5000}, Math.random).sort((a, b) => a - b)[0],
  () => { let m = new Map(); for (let i = 0; i < 5000; i++) m.set('k' + i, i); return m.size; },
];
for (;;) rec(Math.floor(Math.random() * 30), fs[Math.floor(Math.random() * fs.length)]);
EOF
	WORKLOADS=("nice -n 19 $BURN")
	command -v python3 >/dev/null && WORKLOADS+=("nice -n 19 python3 $BENCH_TMP/work.py")
	# --perf-basic-prof: JIT frames named from /tmp/perf-PID.map (removed at the end). In the
	# scratch directory: node may write logs into its working directory.
	command -v node >/dev/null &&
		WORKLOADS+=("env -C $BENCH_TMP nice -n 19 node --perf-basic-prof $BENCH_TMP/work.js")
	WORKLOAD_DESC=$(printf '%s, ' "${WORKLOADS[@]}")
	WORKLOAD_DESC=${WORKLOAD_DESC%, }
	WORKLOAD_PIDS=()
	ensure_workload
	sleep 1
}

# Starts the workload processes that are not running (the first time: all). Something on this
# shared machine has been seen to kill burn: a restart is noted in the raw file.
ensure_workload() {
	local i
	for i in "${!WORKLOADS[@]}"; do
		if [[ -n ${WORKLOAD_PIDS[i]:-} ]] && kill -0 "${WORKLOAD_PIDS[i]}" 2>/dev/null; then
			continue
		fi
		if [[ -n ${WORKLOAD_PIDS[i]:-} ]]; then
			log "warning: workload '${WORKLOADS[i]}' (pid ${WORKLOAD_PIDS[i]}) is gone: restarting it"
			echo "# note: workload '${WORKLOADS[i]}' (pid ${WORKLOAD_PIDS[i]}) exited; restarted $(date -u +%T)" >>"$RAW"
			rm -f "/tmp/perf-${WORKLOAD_PIDS[i]}.map"
			forget_pid "${WORKLOAD_PIDS[i]}"
		fi
		# shellcheck disable=SC2086
		spawn /dev/null /dev/null ${WORKLOADS[i]}
		WORKLOAD_PIDS[i]=$SPAWNED
	done
}

# Drops a pid that is gone (reaped) from the cleanup list: the number may be reused.
forget_pid() {
	local keep=() p
	wait "$1" 2>/dev/null || true
	for p in "${BENCH_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	BENCH_PIDS=("${keep[@]}")
}

WORKLOAD_PIDS=()
cleanup_perfmap() {
	local pid
	for pid in "${WORKLOAD_PIDS[@]}"; do
		rm -f "/tmp/perf-$pid.map"
	done
}

status() {
	"$PROFQ" --socket "$1" status --json
}

# Prints "up" once profqd answers on socket $1 (errors are JSON on stdout too).
status_up() {
	status "$1" 2>/dev/null | jq -e 'has("uptime_s")' >/dev/null && echo up
}

# Starts profqd on socket $1, state dir $2 with more options "${@:3}"; waits until it answers.
# Sets DAEMON_PID and START_S (spawn to first answer: loading the state dir included).
start_daemon() {
	local sock=$1 state=$2 t0
	shift 2
	t0=$(now_ns)
	spawn "$sock.out" "$sock.err" "$PROFQD" --socket "$sock" --state-dir "$state" \
		--config /dev/null "$@"
	DAEMON_PID=$SPAWNED
	WAIT_S=300 wait_for "$DAEMON_PID" status_up "$sock" >/dev/null ||
		die "profqd did not start: $(cat "$sock.err")"
	START_S=$(awk -v ns=$(($(now_ns) - t0)) 'BEGIN {printf "%.3f", ns / 1e9}')
}

# One "mem" raw line: VmRSS/VmHWM and status figures of profqd $1 on socket $2.
# $3: label, three words (KIND NAME PHASE: "real 64M end", "spec 2 settled"). The generated
# ring: begin $4 and end $5 (ns), count $6 windows (0: none).
mem_line() {
	local pid=$1 sock=$2 label=$3 begin=${4:-0} end=${5:-0} count=${6:-0} now m
	now=$(now_ns)
	m=$(mem_kib "$pid")
	status "$sock" | jq -r --arg m "$m" --arg lbl "$label" --argjson now "$now" \
		--argjson begin "$begin" --argjson endns "$end" --argjson count "$count" \
		--argjson ret "$RETENTION_S" '
		# Ring windows that fell out of the retention by now: evicted, or not loaded.
		(if $count > 0 then
			[range(0; $count) | select($begin + (. + 1) * ($endns - $begin) / $count <= $now - $ret * 1e9)] | length
		 else 0 end) as $aged
		| (if $count > 0 then $aged - ($count - .persistence.windows_loaded) else 0 end) as $retention
		| "mem \($lbl) \($m) \(.memory_bytes) \(.memory.store) \(.memory.symbolizer)"
		+ " \(.memory.processes) \(.memory.stack_cache) \(.memory.mapping_log) \(.windows)"
		+ " \(.evicted_windows) \([.evicted_windows - $retention, 0] | max)"
		+ " \(.persistence.windows_loaded) \(.persistence.windows_written) \(.processes)"
		+ " \(.exited_processes) \(.max_memory_bytes)"' >>"$RAW"
}

# profq-bench-ring inspect DIR as raw lines "inspect LABEL key values...".
inspect_lines() {
	"$GEN" inspect "$2" | sed "s/^/inspect $1 /" >>"$RAW"
}

real_run() {
	local maxmem=$1 dir=$BENCH_TMP/real.$1 pid
	mkdir -p "$dir"
	log "real: profqd --max-memory $maxmem for ${REAL_DURATION}s with the workload"
	ensure_workload
	start_daemon "$dir/sock" "$dir/state" --max-memory "$maxmem"
	pid=$DAEMON_PID
	sleep "$REAL_DURATION"
	ensure_workload
	mem_line "$pid" "$dir/sock" "real $maxmem end"
	status "$dir/sock" | jq -r --arg l "$maxmem" '"status real \($l) windows_written \(.persistence.windows_written) disk_bytes \(.persistence.disk_bytes) segments \(.persistence.segments) samples \(.samples) lost \(.lost) uptime_s \(.uptime_s)"' >>"$RAW"
	stop_pid "$pid" TERM 30
	echo "du real $maxmem $(du -sb "$dir/state" | cut -f1)" >>"$RAW"
	inspect_lines "real-$maxmem" "$dir/state"
	log "real --max-memory $maxmem: $(grep "^inspect real-$maxmem bytes_per_window" "$RAW")"
}

# hyperfine over name=command pairs; appends "lat LABEL NAME median min max mean runs" (ms),
# LABEL two words (PROFILE REP).
latency() {
	local label=$1 runs=$2 json=$BENCH_TMP/hf.json args=() spec
	shift 2
	for spec in "$@"; do
		args+=(-n "${spec%%=*}" "${spec#*=}")
	done
	hyperfine -N --style none --warmup 3 --runs "$runs" --export-json "$json" "${args[@]}" \
		>/dev/null 2>"$BENCH_TMP/hf.err" || {
		cat "$BENCH_TMP/hf.err" >&2
		die "hyperfine failed"
	}
	jq -r --arg lbl "$label" '.results[] | "lat \($lbl) \(.command) \(.median * 1e3) \(.min * 1e3) \(.max * 1e3) \(.mean * 1e3) \(.times | length)"' \
		"$json" >>"$RAW"
}

# A process's top as one line, or "absent" when the ring holds none of its samples (a ring
# that the memory budget keeps shorter than the pick's age).
top_pid_json() {
	local out
	if ! out=$("$PROFQ" "$@" --json 2>/dev/null); then
		echo absent
		return
	fi
	jq -S -c '{samples: .samples, rows: [.rows[] | [.["function"], .["module"], .self_samples, .total_samples]]}' <<<"$out"
}

samples_of() {
	if [[ $1 == absent ]]; then echo absent; else jq .samples <<<"$1"; fi
}

# Profile $1 (generate options $2), repeat $3.
ring_run() {
	local prof=$1 gargs=$2 rep=$3 dir=$BENCH_TMP/ring.$1.$3 gen begin end count busy exited pid
	local sock a b c
	mkdir -p "$dir"
	sock=$dir/sock
	ensure_workload
	log "ring $prof rep $rep: generating an hour of windows (generate $gargs)"
	# shellcheck disable=SC2086
	gen=$("$GEN" generate $gargs "$dir/state")
	sed "s/^/gen $prof $rep /" <<<"$gen" >>"$RAW"
	begin=$(awk '$1 == "generated_begin_ns" {print $2}' <<<"$gen")
	end=$(awk '$1 == "generated_end_ns" {print $2}' <<<"$gen")
	count=$(awk '$1 == "generated_windows" {print $2}' <<<"$gen")
	busy=$(awk '$1 == "pick_busy" {print $2}' <<<"$gen")
	exited=$(awk '$1 == "pick_exited" {print $2}' <<<"$gen")
	echo "du $prof $rep $(du -sb "$dir/state" | cut -f1)" >>"$RAW"
	((rep > 1)) || inspect_lines "$prof" "$dir/state"

	# shellcheck disable=SC2086
	start_daemon "$sock" "$dir/state" $PROFQD_ARGS
	pid=$DAEMON_PID
	echo "start $prof $rep $START_S" >>"$RAW"
	mem_line "$pid" "$sock" "$prof $rep loaded" "$begin" "$end" "$count"
	sleep "$SETTLE"
	ensure_workload
	mem_line "$pid" "$sock" "$prof $rep settled" "$begin" "$end" "$count"
	log "ring $prof rep $rep: $(tail -1 "$RAW")"

	log "ring $prof rep $rep: top latency"
	latency "$prof $rep" "$RUNS" \
		"status=$PROFQ --socket $sock status --json" \
		"top=$PROFQ --socket $sock top --since 1h" \
		"top-json=$PROFQ --socket $sock top --since 1h --json" \
		"top-pid=$PROFQ --socket $sock top --pid $busy --since 1h" \
		"top-pid-json=$PROFQ --socket $sock top --pid $busy --since 1h --json"
	latency "$prof $rep" "$OFFLINE_RUNS" \
		"offline-top=$PROFQ --socket $dir/none.sock --state-dir $dir/state top --since 1h" \
		"offline-top-pid=$PROFQ --socket $dir/none.sock --state-dir $dir/state top --pid $busy --since 1h"
	mem_line "$pid" "$sock" "$prof $rep queried" "$begin" "$end" "$count"

	log "ring $prof rep $rep: kill -9 and restart"
	a=$(top_pid_json --socket "$sock" top --pid "$exited")
	stop_pid "$pid" KILL 5
	# shellcheck disable=SC2086
	start_daemon "$sock" "$dir/state" $PROFQD_ARGS
	pid=$DAEMON_PID
	echo "restart $prof $rep $START_S" >>"$RAW"
	mem_line "$pid" "$sock" "$prof $rep restarted" "$begin" "$end" "$count"
	b=$(top_pid_json --socket "$sock" top --pid "$exited")
	c=$(top_pid_json --socket "$dir/none.sock" --state-dir "$dir/state" top --pid "$exited")
	echo "persist $prof $rep pid $exited samples $(samples_of "$a")" \
		"restart_same $([[ $a == "$b" ]] && echo yes || echo no)" \
		"offline_same $([[ $a == "$c" ]] && echo yes || echo no)" \
		"restart_samples $(samples_of "$b") offline_samples $(samples_of "$c")" >>"$RAW"
	log "ring $prof rep $rep: $(tail -1 "$RAW")"
	stop_pid "$pid" TERM 30
	rm -rf "$dir/state"
}

# Column $5 of the raw lines whose fields 1-4 match $1-$4 ("*": any).
sel() {
	awk -v a="$1" -v b="$2" -v c="$3" -v d="$4" -v col="$5" '
		($1 == a) && (b == "*" || $2 == b) && (c == "*" || $3 == c) && (d == "*" || $4 == d) {print $col}' "$RAW"
}

# "median [min–max]" of numbers on stdin, divided by $2, printed with format $1.
cellfmt() {
	stats | awk -v fmt="${1:-%.1f}" -v s="${2:-1}" '$4 == 0 {print "–"; next}
		{printf fmt " [" fmt "–" fmt "]", $1 / s, $2 / s, $3 / s}'
}

# Value $3 (1: the first after the key) of the inspect line with label $1 and key $2.
ival() {
	awk -v l="$1" -v k="$2" -v c="${3:-1}" '$1 == "inspect" && $2 == l && $3 == k {print $(c + 3)}' "$RAW"
}

profiles_in_raw() {
	awk '$1 == "gen" {print $2}' "$RAW" | awk '!seen[$0]++'
}

report() {
	local mm lbl n prof phase name
	{
		echo "# ring: the profile ring over an hour"
		echo
		sed -n 's/^# \(date\|host\|profq\|workload\|command\|note\): /- \1: /p' "$RAW"
		echo "- raw lines: bench/results/$(basename "$RAW"); medians [min–max] over the repeats"
		echo
		if grep -q '^inspect real-' "$RAW"; then
			echo "## Real windows on this host (profqd at defaults but --max-memory, the workload running)"
			echo
			echo "| --max-memory | windows | segments | disk bytes | bytes/window (mean) | per window: median [min–max] | first in a segment | later in a segment | entries/window | samples/window | processes/window | new stacks/window | share of bytes: strings frames stacks procs windows | memory_bytes at the end | windows evicted |"
			echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
			for mm in $(awk '$1 == "du" && $2 == "real" {print $3}' "$RAW"); do
				lbl=real-$mm
				n=$(ival "$lbl" windows)
				echo "| $mm | $n | $(ival "$lbl" segments) | $(ival "$lbl" bytes) |" \
					"$(printf '%.0f' "$(ival "$lbl" bytes_per_window)") |" \
					"$(ival "$lbl" window_disk_bytes 1) [$(ival "$lbl" window_disk_bytes 2)–$(ival "$lbl" window_disk_bytes 3)] |" \
					"$(ival "$lbl" window_disk_bytes_first_in_segment) | $(ival "$lbl" window_disk_bytes_later_in_segment) |" \
					"$(ival "$lbl" window_entries) | $(ival "$lbl" window_samples) | $(ival "$lbl" window_processes) |" \
					"$(awk -v s="$(ival "$lbl" records_stack)" -v n="$n" 'BEGIN {printf "%.0f", s / n}') |" \
					"$(for t in string frame stack proc window; do printf '%s ' "$(ival "$lbl" "records_$t" 5)"; done)|" \
					"$(sel mem real "$mm" end 7) | $(sel mem real "$mm" end 14) |"
			done
			echo
			echo "Who brought the new stacks (new_stacks_by_comm, the first process to use each):"
			echo
			for mm in $(awk '$1 == "du" && $2 == "real" {print $3}' "$RAW"); do
				echo "- --max-memory $mm: $(awk -v l="real-$mm" '$1 == "inspect" && $2 == l && $3 == "new_stacks_by_comm" {printf "%s%s %s", sep, $4, $5; sep = ", "}' "$RAW")"
			done
			echo
		fi
		echo "## The simulated hour (profq-bench-ring generate; first repeat's segments)"
		echo
		echo "| profile | windows | processes (incarnations; alive at most) | samples/window | entries/window | processes/window | stacks written | bytes/window (mean) | per window, later in a segment | first in a segment | disk bytes for the hour (du) |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		for prof in $(profiles_in_raw); do
			echo "| $prof | $(ival "$prof" windows) |" \
				"$(sel gen "$prof" 1 generated_processes 5); $(sel gen "$prof" 1 generated_peak_alive 5) |" \
				"$(ival "$prof" window_samples) | $(ival "$prof" window_entries) | $(ival "$prof" window_processes) |" \
				"$(ival "$prof" records_stack) | $(printf '%.0f' "$(ival "$prof" bytes_per_window)") |" \
				"$(ival "$prof" window_disk_bytes_later_in_segment) | $(ival "$prof" window_disk_bytes_first_in_segment) |" \
				"$(sel du "$prof" '*' '*' 4 | cellfmt %.0f) |"
		done
		echo
		echo "## profqd at defaults on that hour (the workload running), MiB"
		echo
		echo "| profile | when | VmRSS | VmHWM | memory_bytes | store | symbolizer | processes | stack cache | mapping log | windows | evicted (all) | evicted for memory |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		for prof in $(profiles_in_raw); do
			for phase in loaded settled queried restarted; do
				echo "| $prof | $phase | $(sel mem "$prof" '*' "$phase" 5 | cellfmt %.1f 1024) |" \
					"$(sel mem "$prof" '*' "$phase" 6 | cellfmt %.1f 1024) |" \
					"$(sel mem "$prof" '*' "$phase" 7 | cellfmt %.1f 1048576) |" \
					"$(sel mem "$prof" '*' "$phase" 8 | cellfmt %.1f 1048576) |" \
					"$(sel mem "$prof" '*' "$phase" 9 | cellfmt %.1f 1048576) |" \
					"$(sel mem "$prof" '*' "$phase" 10 | cellfmt %.2f 1048576) |" \
					"$(sel mem "$prof" '*' "$phase" 11 | cellfmt %.2f 1048576) |" \
					"$(sel mem "$prof" '*' "$phase" 12 | cellfmt %.2f 1048576) |" \
					"$(sel mem "$prof" '*' "$phase" 13 | cellfmt %.0f) |" \
					"$(sel mem "$prof" '*' "$phase" 14 | cellfmt %.0f) |" \
					"$(sel mem "$prof" '*' "$phase" 15 | cellfmt %.0f) |"
			done
		done
		echo
		echo "Start-up with the hour to load (spawn to first answer), s:"
		for prof in $(profiles_in_raw); do
			echo "$prof $(sel start "$prof" '*' '*' 4 | cellfmt %.2f), after kill -9 $(sel restart "$prof" '*' '*' 4 | cellfmt %.2f);"
		done
		echo
		echo "## Query latency over the full ring (hyperfine, ms: median of the repeats' medians [min–max of them])"
		echo
		echo "| profile | command | median | mean | fastest run | slowest run |"
		echo "|---|---|---|---|---|---|"
		for prof in $(profiles_in_raw); do
			for name in status top top-json top-pid top-pid-json offline-top offline-top-pid; do
				[[ -n $(sel lat "$prof" '*' "$name" 5) ]] || continue
				echo "| $prof | $name | $(sel lat "$prof" '*' "$name" 5 | cellfmt %.1f) |" \
					"$(sel lat "$prof" '*' "$name" 8 | cellfmt %.1f) |" \
					"$(sel lat "$prof" '*' "$name" 6 | stats | awk '{printf "%.1f", $2}') |" \
					"$(sel lat "$prof" '*' "$name" 7 | stats | awk '{printf "%.1f", $3}') |"
			done
		done
		echo
		echo "## Persistence (kill -9, restart on the same state dir)"
		echo
		echo "| profile | repeat | pid | its samples before the kill / after / offline | same top after restart | same top offline | windows loaded at restart | windows held before the kill |"
		echo "|---|---|---|---|---|---|---|---|"
		awk '$1 == "persist" {print $2, $3, $5, $7, $9, $11, $13, $15}' "$RAW" |
			while read -r prof w pid n same off nb nc; do
				echo "| $prof | $w | $pid | $n / ${nb:-?} / ${nc:-?} | $same | $off |" \
					"$(sel mem "$prof" "$w" restarted 16) | $(sel mem "$prof" "$w" queried 13) |"
			done
	} >"$TABLE"
	cat "$TABLE"
}

main() {
	local rep mm
	if [[ ${REPORT_ONLY:-0} == 1 ]]; then
		report
		return
	fi
	bench_init
	trap 'cleanup_perfmap; bench_cleanup' EXIT
	build
	start_workload
	{
		system_header | grep -v '^# workload'
		echo "# workload: $WORKLOAD_DESC"
		echo "# command: REPEATS=$REPEATS REAL_DURATION=$REAL_DURATION REAL_MEMORY='$REAL_MEMORY'" \
			"SETTLE=$SETTLE RUNS=$RUNS OFFLINE_RUNS=$OFFLINE_RUNS PROFILES='$PROFILES'" \
			"${PROFQD_ARGS:+PROFQD_ARGS='$PROFQD_ARGS' }${PROFQ_REF:+PROFQ_REF=$PROFQ_REF }bench/ring.sh"
		echo "# note: load average at start $(cut -d' ' -f1-3 /proc/loadavg); other profqd" \
			"instances running: $(pgrep -c -x profqd || true)"
		echo "# columns: mem KIND NAME PHASE vmrss_kib vmhwm_kib memory_bytes store symbolizer processes" \
			"stack_cache mapping_log windows evicted evicted_for_memory windows_loaded" \
			"windows_written processes exited_processes max_memory_bytes"
		echo "# columns: lat PROFILE REP NAME median_ms min_ms max_ms mean_ms runs"
	} >"$RAW"
	if ((REAL_DURATION > 0)); then
		for mm in $REAL_MEMORY; do
			real_run "$mm"
		done
	fi
	for ((rep = 1; rep <= REPEATS; rep++)); do
		while IFS= read -r spec; do
			[[ -n $spec ]] && ring_run "${spec%%=*}" "${spec#*=}" "$rep"
		done < <(tr ';' '\n' <<<"$PROFILES")
	done
	report
}

main "$@"
