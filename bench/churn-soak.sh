#!/bin/bash
# SPDX-License-Identifier: MIT
# profqd at defaults under process churn for DURATION seconds (docs/PERFORMANCE.md, "Churn
# soak"): does the resident set stay flat within --max-memory, does every window closed during
# the run stay answerable (from memory or, once evicted, from disk), are samples lost, and does
# the per-process bookkeeping stay bounded while thousands of processes a second come and go?
#
#   daemon  profqd at defaults (99 Hz, 10 s windows, 1 h retention, --max-memory 64M) on a
#           private socket and state dir, --config /dev/null
#   churn   STORMS shells (dash: it forks faster than bash) running /bin/true in a loop; one shell running short-lived processes
#           of distinct binaries (coreutils and a few others, each exits at once); a parallel
#           `cmake --build -j2` of a copy of this repository (git archive of HEAD) in a scratch
#           dir, cleaned and started again when done. All at nice CHURN_NICE.
#   samples every INTERVAL seconds: VmRSS/VmHWM of profqd, `profq status --json` (memory by
#           part, processes, processes_table, exited_processes, windows, evicted_windows, lost,
#           persistence), the processes alive on the host (/proc), forks since boot (/proc/stat
#           "processes"), load average, profqd's CPU time
#   checks  when the churn stops (the daemon still running): every whole window closed during
#           the run, one `profq ps --json` per window through the daemon (evicted windows are
#           read back from disk by a history worker, docs/profqd.8 PERSISTENCE) and the same
#           offline (`profq --state-dir COPY`, a copy of the state dir taken then): 10 s
#           covered, samples > 0, not "incomplete", the same samples both ways (and how long
#           each took); and one query over the whole run span each way. Then RSS (median, max,
#           the longest time over the budget, slope over the second half), what grew by memory
#           part, lost samples and the process table against the processes alive.
#
# Environment: DURATION seconds (600), INTERVAL seconds (5), STORMS (4), CHURN_NICE (19),
# MAX_MEMORY (64M), PROFQD_ARGS (more profqd options), SKIP_BUILD=1, BUILD, PROFQ_REF=<commit>
# (see lib.sh), RAW (bench/results/churn-soak.txt).
# Output: the summary on stdout; RAW holds a header, the samples as TSV (one row per sample,
# column names in the first non-comment row) and the summary as "# summary:" lines.
# Needs root (BPF), jq, cmake and a C toolchain (the build churn).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-5}
STORMS=${STORMS:-4}
CHURN_NICE=${CHURN_NICE:-19}
MAX_MEMORY=${MAX_MEMORY:-64M}
PROFQD_ARGS=${PROFQD_ARGS:-}
RAW=${RAW:-$RESULTS/churn-soak.txt}
WINDOW_S=10 # profqd's default, which the run keeps

build() {
	if [[ -n $REV && ${SKIP_BUILD:-0} != 1 && ! -e $SRC/CMakeLists.txt ]]; then
		log "exporting commit $REV to $SRC"
		mkdir -p "$SRC"
		git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
	fi
	if [[ ${SKIP_BUILD:-0} != 1 ]]; then
		log "building profqd and profq from $SRC in $BUILD"
		{
			cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROFQ_BUILD_TESTS=OFF &&
				cmake --build "$BUILD" -j2 --target profqd profq
		} >"$BENCH_TMP/build.log" 2>&1 || {
			tail -30 "$BENCH_TMP/build.log" >&2
			die "build failed (full log above; SKIP_BUILD=1 uses what is built)"
		}
	fi
	local f
	for f in "$PROFQD" "$PROFQ"; do
		[[ -x $f ]] || die "missing $f"
	done
	command -v jq >/dev/null || die "needs jq"
	command -v cmake >/dev/null || die "needs cmake"
}

# The churn runs in process groups of their own (setsid: the spawned pid leads its group), so
# that the compilers and short processes they start go with them.
CHURN_PIDS=()
stop_churn() {
	local pid
	for pid in "${CHURN_PIDS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	sleep 1
	for pid in "${CHURN_PIDS[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
		stop_pid "$pid" KILL 5
	done
	CHURN_PIDS=()
}

start_churn() {
	local i src=$BENCH_TMP/churn-src bld=$BENCH_TMP/churn-build
	log "churn: copying $ROOT (git archive HEAD) to $src and configuring it in $bld"
	mkdir -p "$src"
	git -C "$ROOT" archive HEAD | tar -x -C "$src"
	cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BENCH_TMP/churn-cmake.log" 2>&1 ||
		die "configuring the build churn failed: $(tail -5 "$BENCH_TMP/churn-cmake.log")"
	for ((i = 0; i < STORMS; i++)); do
		spawn /dev/null /dev/null setsid nice -n "$CHURN_NICE" dash -c 'while :; do /bin/true; done'
		CHURN_PIDS+=("$SPAWNED")
	done
	# Distinct binaries, each exiting at once.
	spawn /dev/null /dev/null setsid nice -n "$CHURN_NICE" bash -c '
		while :; do
			/bin/ls / ; /bin/date ; /usr/bin/id ; /bin/uname -a ; /usr/bin/env
			/usr/bin/seq 3 ; /usr/bin/basename /a/b ; /usr/bin/dirname /a/b ; /usr/bin/expr 1 + 1
			/bin/cat /proc/loadavg ; /usr/bin/head -c 1 /etc/hostname ; /usr/bin/wc -l /etc/passwd
			/bin/sed -n 1p /etc/passwd ; /usr/bin/awk "BEGIN {exit}" ; /bin/grep -c root /etc/passwd
			/usr/bin/sort /etc/hostname ; /usr/bin/stat / ; /bin/readlink /proc/self/exe
			/usr/bin/nproc ; /usr/bin/printf x ; /usr/bin/tr a b </etc/hostname ; /bin/sleep 0
			/usr/bin/python3 -c "" 2>/dev/null || true
		done'
	CHURN_PIDS+=("$SPAWNED")
	# The build: all of the project (tests included when cmocka is there), again when done.
	spawn "$BENCH_TMP/churn-build.log" "$BENCH_TMP/churn-build.err" setsid nice -n "$CHURN_NICE" \
		bash -c "n=0; while :; do cmake --build '$bld' -j2 >/dev/null 2>&1;
			n=\$((n + 1)); echo \"\$(date -u +%T) build \$n done\";
			cmake --build '$bld' --target clean >/dev/null 2>&1; done"
	CHURN_PIDS+=("$SPAWNED")
	CHURN_DESC="$STORMS x dash -c 'while :; do /bin/true; done'; 1 shell looping over 23 distinct short-lived binaries (coreutils, awk, sed, grep, python3 -c ''); cmake --build -j2 of git archive HEAD (tests included), cleaned and rebuilt in a loop; all at nice $CHURN_NICE"
}

status() {
	"$PROFQ" --socket "$SOCK" status --json
}

status_up() {
	status 2>/dev/null | jq -e 'has("uptime_s")' >/dev/null && echo up
}

# utime+stime of process $1 in seconds (not through lib.sh's cpu_ticks_ns: mawk's printf %d
# stops at 2^31, 2.1 s of CPU in nanoseconds).
cpu_s() {
	local stat
	stat=$(cat /proc/"$1"/stat 2>/dev/null) || {
		echo 0
		return
	}
	stat=${stat##*) }
	awk -v tck="$CLK_TCK" '{printf "%.2f\n", ($12 + $13) / tck}' <<<"$stat"
}

forks_total() { awk '$1 == "processes" {print $2}' /proc/stat; }
procs_alive() {
	local d n=0
	for d in /proc/[0-9]*; do
		n=$((n + 1))
	done
	echo "$n"
}

COLUMNS_TSV="t_s vmrss_kib vmhwm_kib memory_bytes store symbolizer processes_mem perf_maps stack_cache mapping_log outside_bytes data_budget processes processes_table exited_processes windows evicted_windows samples lost lost_events lost_sideband exits_unseen segments disk_bytes windows_written segments_deleted disk_history_since_s host_procs forks_total load1 cpu_s"

# One TSV row.
sample() {
	local t m
	t=$(awk -v ns=$(($(now_ns) - T0_NS)) 'BEGIN {printf "%.1f", ns / 1e9}')
	m=$(mem_kib "$DAEMON_PID")
	status | jq -r --arg t "$t" --arg m "$m" --arg hp "$(procs_alive)" --arg f "$(forks_total)" \
		--arg l "$(cut -d' ' -f1 /proc/loadavg)" \
		--arg cpu "$(cpu_s "$DAEMON_PID")" '
		[$t, ($m | split(" ") | .[0], .[1]), .memory_bytes, .memory.store, .memory.symbolizer,
		 .memory.processes, .memory.perf_maps, .memory.stack_cache, .memory.mapping_log,
		 .memory.outside_bytes, .memory.data_budget_bytes, .processes, .processes_table,
		 .exited_processes, .windows, .evicted_windows, .samples, .lost, .lost_events,
		 .lost_sideband, .exits_unseen, .persistence.segments, .persistence.disk_bytes,
		 .persistence.windows_written, .persistence.segments_deleted,
		 (.persistence.disk_history_since_s // "-"), $hp, $f, $l, $cpu]
		| map(tostring) | join("\t")' >>"$RAW"
}

# "elapsed_s samples incomplete ms" of `profq WHERE ps ARGS --json` (WHERE: "--socket S" or
# "--state-dir D"; ms: how long it took); "- 0 error ms: MESSAGE" when it failed.
ps_line() {
	local out t0 ms
	t0=$(now_ns)
	out=$("$PROFQ" "$1" "$2" ps "${@:3}" --json 2>"$BENCH_TMP/ps.err") || true
	ms=$((($(now_ns) - t0) / 1000000))
	[[ -n $out ]] || out='{}'
	jq -r --arg ms "$ms" --arg err "$(head -c 200 "$BENCH_TMP/ps.err" | tr '\n' ' ')" '
		if has("rows") then
			"\(.elapsed_s) \([.rows[].samples] | add // 0) \(.incomplete // "-" | gsub(" "; "_")) \($ms) rows=\(.rows | length)"
		else "- 0 error \($ms): \(.error // "") \($err)" end' <<<"$out" 2>/dev/null ||
		echo "- 0 error $ms: $(head -c 200 "$BENCH_TMP/ps.err")"
}

# Every whole window in [FIRST_B, LAST_E): one query through the daemon and one offline, the
# range put in the middle of the window (ranges are rounded out to whole windows).
check_windows() {
	local b now d o
	WIN_TOTAL=0 WIN_DAEMON_OK=0 WIN_OFFLINE_OK=0 WIN_SAME=0
	for ((b = FIRST_B; b + WINDOW_S <= LAST_E; b += WINDOW_S)); do
		now=$(date +%s)
		d=$(ps_line --socket "$SOCK" --since $((now - b - 3)) --until $((now - b - 7)))
		now=$(date +%s)
		o=$(ps_line --state-dir "$COPY" --since $((now - b - 3)) --until $((now - b - 7)))
		echo "# window $(date -u -d "@$b" +%T) daemon $d offline $o" >>"$RAW"
		WIN_TOTAL=$((WIN_TOTAL + 1))
		window_ok "$d" && WIN_DAEMON_OK=$((WIN_DAEMON_OK + 1))
		window_ok "$o" && WIN_OFFLINE_OK=$((WIN_OFFLINE_OK + 1))
		[[ $(cut -d' ' -f1-3 <<<"$d") == "$(cut -d' ' -f1-3 <<<"$o")" ]] && WIN_SAME=$((WIN_SAME + 1))
	done
}

# "elapsed samples incomplete": one window covered, samples, complete.
window_ok() {
	local e s i _
	read -r e s i _ <<<"$1"
	[[ $e != - && $i == - && $s -gt 0 ]] &&
		awk -v e="$e" -v w="$WINDOW_S" 'BEGIN {exit !(e >= w - 0.5 && e <= w + 0.5)}'
}

summary() {
	local budget_kib
	budget_kib=$(numfmt --from=iec "$MAX_MEMORY")
	budget_kib=$((budget_kib / 1024))
	awk -F'\t' -v budget="$budget_kib" -v interval="$INTERVAL" '
	function med(a, n,    i, j, t, b) {
		for (i = 1; i <= n; i++) b[i] = a[i]
		for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
		return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
	}
	function mib(k) { return sprintf("%.1f", k / 1024) }
	function mb(b) { return sprintf("%.2f", b / 1048576) }
	/^#/ { next }
	$1 == "t_s" { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{
		n++
		for (c in col) v[n, c] = $col[c]
		rss[n] = $col["vmrss_kib"]
	}
	END {
		if (n == 0) { print "# summary: no samples"; exit 1 }
		mx = 0; over = 0; run = 0; longest = 0
		for (i = 1; i <= n; i++) {
			if (rss[i] > mx) { mx = rss[i]; tmx = v[i, "t_s"] }
			if (rss[i] > budget) {
				over++
				if (run == 0) start = v[i, "t_s"]
				run = 1; end = (i < n) ? v[i + 1, "t_s"] : v[i, "t_s"]
				if (end - start > longest) longest = end - start
			} else run = 0
		}
		# Least-squares slope of VmRSS over the second half (MiB per minute).
		h = int(n / 2) + 1; sx = sy = sxx = sxy = k = 0
		for (i = h; i <= n; i++) { x = v[i, "t_s"] / 60; y = rss[i] / 1024; k++; sx += x; sy += y; sxx += x * x; sxy += x * y }
		slope = (k > 1 && k * sxx - sx * sx != 0) ? (k * sxy - sx * sy) / (k * sxx - sx * sx) : 0
		printf "# summary: samples %d over %.0f s, every %d s\n", n, v[n, "t_s"], interval
		printf "# summary: VmRSS MiB median %s max %s (at %s s) end %s; VmHWM end %s; budget %s\n", mib(med(rss, n)), mib(mx), tmx, mib(rss[n]), mib(v[n, "vmhwm_kib"]), mib(budget)
		printf "# summary: VmRSS over the budget in %d of %d samples; longest excursion %.0f s\n", over, n, longest
		printf "# summary: VmRSS slope over the second half %+.3f MiB/min\n", slope
		# Memory parts: 60 s in (the first sample at or after it), at the end, and the largest.
		for (i = 1; i <= n && v[i, "t_s"] < 60; i++) ;
		if (i > n) i = 1
		split("memory_bytes store symbolizer processes_mem perf_maps stack_cache mapping_log outside_bytes data_budget", parts, " ")
		for (p = 1; p in parts; p++) {
			c = parts[p]; pm = 0
			for (j = 1; j <= n; j++) if (v[j, c] > pm) pm = v[j, c]
			printf "# summary: %s MiB at %s s %s, end %s, max %s\n", c, v[i, "t_s"], mb(v[i, c]), mb(v[n, c]), mb(pm)
		}
		mp = mt = me = mh = 0; md = -1
		for (j = 1; j <= n; j++) {
			if (v[j, "processes"] > mp) mp = v[j, "processes"]
			if (v[j, "processes_table"] > mt) mt = v[j, "processes_table"]
			if (v[j, "exited_processes"] > me) me = v[j, "exited_processes"]
			if (v[j, "host_procs"] > mh) mh = v[j, "host_procs"]
			d = v[j, "processes_table"] - v[j, "host_procs"]
			if (d > md) { md = d; td = v[j, "t_s"] }
			r = v[j, "processes_table"] / v[j, "host_procs"]
			if (r > mr) mr = r
			# What the table may hold by design: the processes alive plus those that
			# exited since the last sweep (every 10 s, 2 s of grace): forks of the last
			# 15 s, a rate from the samples of that span.
			for (k = j; k > 1 && v[k - 1, "t_s"] >= v[j, "t_s"] - 15; k--) ;
			if (k < j) {
				bound = v[j, "host_procs"] + (v[j, "forks_total"] - v[k, "forks_total"]) * 15 / (v[j, "t_s"] - v[k, "t_s"])
				r = v[j, "processes_table"] / bound
				if (r > mb15) { mb15 = r; tb15 = v[j, "t_s"] }
			}
		}
		printf "# summary: processes (profqd, running) max %d; processes_table max %d (end %d); exited_processes max %d (end %d); host processes alive max %d\n", mp, mt, v[n, "processes_table"], me, v[n, "exited_processes"], mh
		printf "# summary: processes_table - host processes alive: max %d (at %s s); processes_table / host processes: max %.2f\n", md, td, mr
		printf "# summary: processes_table / (host processes alive + forks of the last 15 s): max %.2f (at %s s)\n", mb15, tb15
		dt = v[n, "t_s"] - v[1, "t_s"]
		printf "# summary: forks/s (host, /proc/stat) %.0f; load1 start %s end %s\n", (v[n, "forks_total"] - v[1, "forks_total"]) / dt, v[1, "load1"], v[n, "load1"]
		printf "# summary: profqd CPU %.2f%% of a core (own, sampled span)\n", 100 * (v[n, "cpu_s"] - v[1, "cpu_s"]) / dt
		printf "# summary: samples %d, lost %d (%.4f%%), lost_events %d, lost_sideband %d, exits_unseen %d\n", v[n, "samples"], v[n, "lost"], v[n, "samples"] ? 100 * v[n, "lost"] / v[n, "samples"] : 0, v[n, "lost_events"], v[n, "lost_sideband"], v[n, "exits_unseen"]
		printf "# summary: windows in memory end %d, evicted_windows %d, windows_written %d, segments %d, disk MiB %s, segments_deleted %d, disk_history_since_s %s\n", v[n, "windows"], v[n, "evicted_windows"], v[n, "windows_written"], v[n, "segments"], mb(v[n, "disk_bytes"]), v[n, "segments_deleted"], v[n, "disk_history_since_s"]
	}' "$RAW" >"$BENCH_TMP/summary"
	cat "$BENCH_TMP/summary" >>"$RAW"
}

main() {
	bench_init
	trap 'stop_churn; bench_cleanup' EXIT
	build
	local dir=$BENCH_TMP/daemon t_end span now d o load0
	mkdir -p "$dir"
	SOCK=$dir/sock
	COPY=$BENCH_TMP/state-copy
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	start_churn
	{
		system_header | grep -v '^# workload'
		echo "# workload: $CHURN_DESC"
		echo "# daemon: profqd --socket PRIVATE --state-dir PRIVATE --config /dev/null --max-memory $MAX_MEMORY $PROFQD_ARGS (99 Hz, 10 s windows, 1 h retention: defaults)"
		echo "# command: DURATION=$DURATION INTERVAL=$INTERVAL STORMS=$STORMS CHURN_NICE=$CHURN_NICE MAX_MEMORY=$MAX_MEMORY bench/churn-soak.sh"
		echo "# note: load average before the churn $load0; other profqd instances running: $(pgrep -cx profqd || true)"
	} >"$RAW"
	sleep 2
	log "starting profqd (--max-memory $MAX_MEMORY) for ${DURATION}s under the churn"
	T0_NS=$(now_ns)
	T0=$((T0_NS / 1000000000))
	# shellcheck disable=SC2086
	spawn "$dir/profqd.out" "$dir/profqd.err" "$PROFQD" --socket "$SOCK" --state-dir "$dir/state" \
		--config /dev/null --max-memory "$MAX_MEMORY" $PROFQD_ARGS
	DAEMON_PID=$SPAWNED
	WAIT_S=120 wait_for "$DAEMON_PID" status_up >/dev/null ||
		die "profqd did not start: $(cat "$dir/profqd.err")"
	echo "# note: profqd answered $(awk -v ns=$(($(now_ns) - T0_NS)) 'BEGIN {printf "%.2f", ns / 1e9}') s after spawn, at $(date -u +%T)" >>"$RAW"
	echo "$COLUMNS_TSV" | tr ' ' '\t' >>"$RAW"
	local next=$T0_NS
	while (($(now_ns) - T0_NS < DURATION * 1000000000)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || die "profqd exited: $(tail -5 "$dir/profqd.err")"
		sample
		next=$((next + INTERVAL * 1000000000))
		sleep "$(awk -v ns=$((next - $(now_ns))) 'BEGIN {s = ns / 1e9; printf "%.3f", (s > 0 ? s : 0)}')"
	done
	sample
	echo "# note: load average at the end $(cut -d' ' -f1-3 /proc/loadavg); builds done: $(wc -l <"$BENCH_TMP/churn-build.log")" >>"$RAW"
	stop_churn
	t_end=$(date +%s)
	log "churn stopped; checking every window closed during the run"
	# The windows closed during the run: whole ones from the first boundary after the start.
	FIRST_B=$(((T0 + WINDOW_S) / WINDOW_S * WINDOW_S))
	LAST_E=$((t_end / WINDOW_S * WINDOW_S))
	sleep 2 # the window that ended at LAST_E is written
	cp -a "$dir/state" "$COPY"
	check_windows
	span=$(($(date +%s) - FIRST_B))
	d=$(ps_line --socket "$SOCK" --since "$(($(date +%s) - FIRST_B))")
	o=$(ps_line --state-dir "$COPY" --since "$(($(date +%s) - FIRST_B))")
	status | jq -r '"# note: at the checks: windows \(.windows) evicted_windows \(.evicted_windows) history_queries \(.persistence.history_queries) history_failed \(.persistence.history_failed) history_timeouts \(.persistence.history_timeouts) history_busy \(.persistence.history_busy)"' >>"$RAW"
	stop_pid "$DAEMON_PID" TERM 30
	summary
	{
		echo "# summary: windows closed during the run $WIN_TOTAL ($(date -u -d "@$FIRST_B" +%T)-$(date -u -d "@$LAST_E" +%T)): answered by the daemon $WIN_DAEMON_OK, offline $WIN_OFFLINE_OK, same answer both ways $WIN_SAME"
		echo "# summary: whole run span (--since ${span}s): daemon elapsed_s samples incomplete ms = $d; offline = $o"
	} | tee -a "$BENCH_TMP/summary" >>"$RAW"
	cat "$BENCH_TMP/summary"
	log "raw samples and summary: $RAW"
}

main "$@"
