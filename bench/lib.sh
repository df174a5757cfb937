# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by the bench scripts (sourced, not run): build, workload, process and BPF accounting,
# statistics, cleanup. Everything a script starts is registered and stopped on exit, and
# kernel.bpf_stats_enabled is put back as it was found.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# PROFQ_REF=<commit> benchmarks that commit (exported with git archive, built on the side)
# instead of the working tree, so edits in progress elsewhere in the repo cannot break or
# change a run. Default: the working tree, built in build-bench/.
PROFQ_REF=${PROFQ_REF:-}
if [[ -n $PROFQ_REF ]]; then
	REV=$(git -C "$ROOT" rev-parse --short "$PROFQ_REF^{commit}") || {
		echo "error: PROFQ_REF='$PROFQ_REF' is not a commit" >&2
		exit 1
	}
	SRC=$ROOT/build-bench/rev-$REV/src
	BUILD=${BUILD:-$ROOT/build-bench/rev-$REV/build}
else
	REV=
	SRC=$ROOT
	BUILD=${BUILD:-$ROOT/build-bench}
fi
BENCH_BUILD=$BUILD/bench
RESULTS=${RESULTS:-$BENCH_DIR/results}
PROFQD=$BUILD/daemon/profqd
PROFQ=$BUILD/cli/profq
BURN=$BENCH_BUILD/burn
LOADER=$BENCH_BUILD/profq-bench-load
CLK_TCK=$(getconf CLK_TCK)

BENCH_PIDS=()
BENCH_STATS_SAVED=
BENCH_TMP=

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

bench_cleanup() {
	local pid i
	for pid in "${BENCH_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${BENCH_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	BENCH_PIDS=()
	if [[ -n $BENCH_STATS_SAVED ]]; then
		sysctl -q -w kernel.bpf_stats_enabled="$BENCH_STATS_SAVED" || true
		BENCH_STATS_SAVED=
	fi
	if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
		rm -rf "$BENCH_TMP"
	fi
}

bench_init() {
	[[ $(id -u) -eq 0 ]] || die "needs root (BPF, perf events, bpf_stats)"
	BENCH_TMP=$(mktemp -d /tmp/profq-bench.XXXXXX)
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$RESULTS"
}

# Builds profq and the bench helpers (whose ring-buffer variants compile that tree's
# bpf/profq.bpf.c), unless SKIP_BUILD=1.
bench_build() {
	if [[ -n $REV && ${SKIP_BUILD:-0} != 1 && ! -e $SRC/CMakeLists.txt ]]; then
		log "exporting commit $REV to $SRC"
		mkdir -p "$SRC"
		git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
	fi
	if [[ ${SKIP_BUILD:-0} != 1 ]]; then
		log "building profq from $SRC in $BUILD and the bench helpers in $BENCH_BUILD"
		{
			cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROFQ_BUILD_TESTS=OFF &&
				cmake --build "$BUILD" -j2 --target profqd profq &&
				cmake -S "$BENCH_DIR" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
					-DPROFQ_ROOT="$SRC" &&
				cmake --build "$BENCH_BUILD" -j2
		} >"$BENCH_TMP/build.log" 2>&1 || {
			tail -30 "$BENCH_TMP/build.log" >&2
			die "build failed (full log above; SKIP_BUILD=1 uses what is built)"
		}
	fi
	local f
	for f in "$PROFQD" "$PROFQ" "$BURN" "$LOADER"; do
		[[ -x $f ]] || die "missing $f"
	done
}

# Runs "$@" in the background with stdout/stderr to $1/$2; prints the pid; registers it.
# "exec" makes the pid the command's own, not a subshell's.
spawn() {
	local out=$1 err=$2
	shift 2
	(exec "$@") >"$out" 2>"$err" </dev/null &
	BENCH_PIDS+=($!)
	SPAWNED=$!
}

# Stops one registered process: signal, wait up to $3 seconds, then SIGKILL.
stop_pid() {
	local pid=$1 sig=${2:-TERM} timeout=${3:-30} i
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${BENCH_PIDS[@]}"; do
		[[ $p == "$pid" ]] || keep+=("$p")
	done
	BENCH_PIDS=("${keep[@]}")
}

# One burn process pinned to every online CPU: all CPUs busy, 40-deep frame-pointer stacks,
# ~25% of the time in read(2) (kernel stacks). BURN_ARGS passes options to burn.
start_burners() {
	local cpu
	BURNER_PIDS=()
	for cpu in $(online_cpus); do
		# shellcheck disable=SC2086
		spawn /dev/null /dev/null taskset -c "$cpu" "$BURN" ${BURN_ARGS:-}
		BURNER_PIDS+=("$SPAWNED")
	done
	sleep 0.5
}

online_cpus() {
	local range a b
	for range in $(tr ',' ' ' </sys/devices/system/cpu/online); do
		a=${range%-*}
		b=${range#*-}
		seq "$a" "$b"
	done
}

bpf_stats_enable() {
	if [[ -z $BENCH_STATS_SAVED ]]; then
		BENCH_STATS_SAVED=$(sysctl -n kernel.bpf_stats_enabled)
	fi
	sysctl -q -w kernel.bpf_stats_enabled=1
}

# "run_time_ns run_cnt" summed over the given program ids (bpftool's own figures).
prog_stats() {
	local id t=0 c=0 line
	for id in "$@"; do
		line=$(bpftool prog show id "$id" --json | jq -r '"\(.run_time_ns // 0) \(.run_cnt // 0)"')
		t=$((t + ${line% *}))
		c=$((c + ${line#* }))
	done
	echo "$t $c"
}

# The BPF programs a process holds open, from /proc/PID/fdinfo: perf_event ones (prog_type 7)
# by default, all of them with "any".
prog_ids_of() {
	local pid=$1 type=${2:-7} pattern
	pattern='^prog_type:[[:space:]]*'$type'$'
	[[ $type == any ]] && pattern='^prog_type:'
	grep -l -s "$pattern" /proc/"$pid"/fdinfo/* 2>/dev/null |
		xargs -r grep -h '^prog_id:' | awk '{print $2}' | sort -un | paste -sd ' '
}

# "run_time_ns run_cnt" summed over a process's BPF programs (bpf_stats): all of them, or
# those named $2.
bpf_run_of() {
	local pid=$1 name=${2:-} id
	for id in $(prog_ids_of "$pid" any); do
		bpftool prog show id "$id" --json
	done | jq -s --arg n "$name" \
		'map(select($n == "" or .name == $n)) |
		 "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"' -r
}

# utime+stime of a process (all its threads, /proc/PID/stat) and of its children (profqd's
# worker processes: the live ones' own, the ended ones' through cutime+cstime), in nanoseconds.
cpu_ticks_ns() {
	local pid=$1 total=0 p stat
	for p in "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
		stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
		stat=${stat##*) } # comm may contain spaces
		# Integer arithmetic in bash: mawk's %d stops at 2^31 (2.1 s of CPU in ns).
		set -- $stat
		total=$((total + (${12} + ${13}) * 1000000000 / CLK_TCK))
		[[ $p == "$pid" ]] && total=$((total + (${14} + ${15}) * 1000000000 / CLK_TCK))
	done
	echo "$total"
}

# On-CPU time of a process's live threads and its live children's, from the scheduler (ns
# precision).
cpu_sched_ns() {
	local pid=$1
	cat /proc/"$pid"/task/*/schedstat \
		$(sed 's|[0-9]*|/proc/&/task/*/schedstat|g' /proc/"$pid"/task/*/children 2>/dev/null) \
		2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'
}

# "VmRSS VmHWM" in KiB.
mem_kib() {
	awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} END {print r + 0, h + 0}' /proc/"$1"/status
}

now_ns() { date +%s%N; }

# Reads numbers on stdin; prints "median min max n" (median of an even count: mean of the two
# middle values).
stats() {
	sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "nan nan nan 0"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		print m, v[1], v[NR], NR }'
}

# Column N of the raw lines of variant V in file F, through stats.
column_stats() {
	local file=$1 variant=$2 col=$3
	awk -v v="$variant" -v c="$col" '!/^#/ && $1 == v && $c != "nan" {print $c}' "$file" | stats
}

# Waits until command "$2..." prints something non-empty; prints it. Gives up after $WAIT_S
# seconds, or as soon as process $1 is gone.
wait_for() {
	local pid=$1 deadline=$((SECONDS + ${WAIT_S:-120})) out
	shift
	while ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null; do
		out=$("$@" 2>/dev/null) || true
		if [[ -n ${out// /} ]]; then
			echo "$out"
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# bcc compiles its programs at run time against kernel headers. A kernel without
# /lib/modules/$(uname -r)/build and without CONFIG_IKHEADERS (like this VM's) can still use
# Debian's linux-headers-amd64: bcc wants one directory, Debian splits it into -common and
# -amd64, so merge the two as a symlink farm in the build tree and point BCC_KERNEL_SOURCE at
# it. Returns 1 when there are no headers at all.
bcc_setup() {
	local arch common farm=$BENCH_BUILD/kheaders
	if [[ -n ${BCC_KERNEL_SOURCE:-} || -d /lib/modules/$(uname -r)/build ||
		-e /sys/kernel/kheaders.tar.xz ]]; then
		return 0
	fi
	arch=$(printf '%s\n' /usr/src/linux-headers-*-amd64 | grep -v '[*]' | sort -V | tail -1) || true
	common=${arch%-amd64}-common
	if [[ -z $arch || ! -d $common ]]; then
		log "warning: no kernel headers for bcc (apt-get install linux-headers-amd64); skipping bcc"
		return 1
	fi
	if [[ ! -e $farm/.from || $(cat "$farm/.from") != "$arch" ]]; then
		rm -rf "$farm"
		mkdir -p "$farm"
		cp -rs "$common/." "$farm/"
		cp -rsf --remove-destination "$arch/." "$farm/"
		echo "$arch" >"$farm/.from"
	fi
	export BCC_KERNEL_SOURCE=$farm
	log "bcc: kernel headers from $arch (+ -common), BCC_KERNEL_SOURCE=$farm"
}

# Other perf_event BPF programs loaded on the machine add their own samples: say so.
warn_foreign_programs() {
	local others
	others=$(bpftool prog show --json | jq -r '[.[] | select(.type == "perf_event")] | length')
	if [[ $others != 0 ]]; then
		log "warning: $others perf_event BPF program(s) already loaded by others:" \
			"$(bpftool prog show --json | jq -c '[.[] | select(.type == "perf_event") | {id, name}]')"
	fi
}

system_header() {
	echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# host: $(uname -r), $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
	if [[ -n $REV ]]; then
		echo "# profq: commit $REV (PROFQ_REF=$PROFQ_REF), built in $BUILD"
	else
		echo "# profq: working tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" \
			"+ $(git -C "$ROOT" status --porcelain -- . ':!bench' 2>/dev/null | wc -l)" \
			"uncommitted paths outside bench/, built in $BUILD (binaries of $(date -r "$PROFQD" +%FT%T))"
	fi
	echo "# workload: $(online_cpus | wc -l) x burn ${BURN_ARGS:-(defaults: --depth 40 --kernel-every 2)}, pinned one per CPU"
}
