#!/bin/bash
# SPDX-License-Identifier: MIT
# Symbolization throughput (docs/PERFORMANCE.md): profqd's own Symbolizer against addr2line
# (binutils), eu-addr2line (elfutils) and llvm-symbolizer on the same addresses of big binaries
# with full DWARF, and how often their answers agree with llvm-symbolizer's.
#
# For each binary and each count in COUNTS: COUNTS random addresses inside functions (a sized
# FUNC symbol drawn uniformly, then a byte of it; bench/symbolize.py, seeded), then REPEATS
# rounds of:
#   profq        bench/symbolize.c (profq-bench-symbolize) in one process: "cold" is the first
#                pass including reading the binary and indexing the CUs the addresses fall in,
#                "warm-index" the list again with the address cache dropped (indexes built),
#                "warm-cache" the list again from the address cache (an address seen before);
#   addr2line    addr2line -a -f -i -e BINARY < list
#   eu-addr2line eu-addr2line -a -f -i -e BINARY < list
#   llvm         llvm-symbolizer --obj=BINARY --output-style=GNU -a -f -i < list
# The tools' figure is their whole run (start-up, reading DWARF, every lookup): lookups/s =
# addresses / wall time. Medians over REPEATS, min-max beside them.
# Agreement (first round): the share of addresses where the innermost frame has the same
# function and line as llvm-symbolizer's ("leaf"), and where the whole inline chain does.
#
# Binaries: libpython3.11 of pyenv (built with debug info), and libc.so.6 when its debug file
# (libc6-dbg) is installed. BINARIES="name=path ..." to choose.
# Environment: REPEATS (5), COUNTS ("1000 10000"), SEED (1), TOOLS (all four), BINARIES,
# PROFQ_REF=<commit> (see lib.sh), SKIP_BUILD=1, BUILD.
# Output: a table on stdout; raw lines in bench/results/symbolize.txt, the table in
# bench/results/symbolize.md. Needs no root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEATS=${REPEATS:-5}
COUNTS=${COUNTS:-1000 10000}
SEED=${SEED:-1}
TOOLS=${TOOLS:-profq addr2line eu-addr2line llvm}
RAW=${RAW:-$RESULTS/symbolize.txt}
TABLE=${TABLE:-${RAW%.txt}.md}
DRIVER=$BUILD/profq-bench-symbolize
HELPER=$BENCH_DIR/symbolize.py
LLVM_SYMBOLIZER=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)

BENCH_TMP=$(mktemp -d /tmp/profq-bench-symbolize.XXXXXX)
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$RESULTS"

default_binaries() {
	local py libc id
	if command -v pyenv >/dev/null && py=$(pyenv prefix 3.11 2>/dev/null); then
		echo "libpython3.11=$py/lib/libpython3.11.so.1.0"
	fi
	libc=$(ldconfig -p | awk '$1 == "libc.so.6" && /x86-64/ {print $NF; exit}')
	id=$(readelf -n "$libc" 2>/dev/null | awk '/Build ID:/ {print $3}')
	if [[ -n $id && -e /usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug ]]; then
		echo "libc.so.6=$libc"
	else
		log "warning: no debug file for $libc (apt-get install libc6-dbg); skipping libc"
	fi
}
BINARIES=${BINARIES:-$(default_binaries | paste -sd ' ')}
[[ -n $BINARIES ]] || die "no binaries to symbolize"

# The file whose .symtab lists the functions: the binary's, else its debug file by build id.
symbol_file() {
	local bin=$1 id
	if readelf -SW "$bin" | grep -q ' \.symtab '; then
		echo "$bin"
		return
	fi
	id=$(readelf -n "$bin" | awk '/Build ID:/ {print $3}')
	echo "/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
	if [[ -n $REV && ! -e $SRC/CMakeLists.txt ]]; then
		log "exporting commit $REV to $SRC"
		mkdir -p "$SRC"
		git -C "$ROOT" archive "$REV" | tar -x -C "$SRC"
	fi
	log "building profq-bench-symbolize from $SRC in $BUILD"
	{
		cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROFQ_BUILD_TESTS=OFF &&
			cmake --build "$BUILD" -j2 --target profq-bench-symbolize
	} >"$BENCH_TMP/build.log" 2>&1 || {
		tail -30 "$BENCH_TMP/build.log" >&2
		die "build failed"
	}
fi
[[ -x $DRIVER ]] || die "missing $DRIVER"

# Runs tool $1 on binary $2 with address list $3, answers to $4; prints "pass seconds" lines.
run_tool() {
	local tool=$1 bin=$2 list=$3 out=$4 t0 t1
	case $tool in
	profq)
		"$DRIVER" --output "$out" "$bin" "$list" | awk '$1 ~ /^(cold|warm-index|warm-cache)$/ {print "profq-" $1, $2}'
		return
		;;
	esac
	t0=$(now_ns)
	case $tool in
	addr2line) addr2line -a -f -i -e "$bin" <"$list" >"$out" ;;
	eu-addr2line) eu-addr2line -a -f -i -e "$bin" <"$list" >"$out" ;;
	llvm) "$LLVM_SYMBOLIZER" --obj="$bin" --output-style=GNU -a -f -i <"$list" >"$out" ;;
	*) die "unknown tool $tool" ;;
	esac
	t1=$(now_ns)
	awk -v t="$tool" -v ns=$((t1 - t0)) 'BEGIN {printf "%s %.6f\n", t, ns / 1e9}'
}

report() {
	local raw=$1 bin count tool row base_warm
	echo "| binary | addresses | method | lookups/s median [min–max] | × addr2line | leaf agrees with llvm-symbolizer | whole chain agrees |"
	echo "|---|---|---|---|---|---|---|"
	for bin in $(awk '!/^#/ {print $1}' "$raw" | awk '!seen[$0]++'); do
		for count in $(awk -v b="$bin" '!/^#/ && $1 == b {print $2}' "$raw" | sort -un); do
			base_warm=$(awk -v b="$bin" -v c="$count" '!/^#/ && $1 == b && $2 == c && $4 == "addr2line" {print c / $5}' "$raw" | stats | awk '{print $1}')
			for tool in profq-cold profq-warm-index profq-warm-cache addr2line eu-addr2line llvm; do
				row=$(awk -v b="$bin" -v c="$count" -v t="$tool" '!/^#/ && $1 == b && $2 == c && $4 == t {print c / $5}' "$raw" | stats)
				[[ ${row##* } != 0 ]] || continue
				read -r med lo hi _ <<<"$row"
				agree=$(awk -v b="$bin" -v c="$count" -v t="${tool%%-cold}" '$1 == "#agree" && $2 == b && $3 == c && $4 == t {printf "%s%% (%s/%s) | %s%% (%s/%s)", $6, $7, $12, $9, $10, $12}' "$raw")
				[[ -n $agree ]] || agree="| "
				printf '| %s | %s | %s | %s [%s–%s] | %s | %s |\n' "$bin" "$count" "$tool" \
					"$(printf '%.0f' "$med")" "$(printf '%.0f' "$lo")" "$(printf '%.0f' "$hi")" \
					"$(awk -v m="$med" -v a="$base_warm" 'BEGIN {printf "%.1f", m / a}')" "$agree"
			done
		done
	done
}

if [[ ${REPORT_ONLY:-0} != 1 ]]; then
	{
		echo "# symbolize.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "# profq: $(git -C "$ROOT" rev-parse --short HEAD)${REV:+ (PROFQ_REF=$PROFQ_REF)}; $(addr2line --version | head -1); $(eu-addr2line --version | head -1); $("$LLVM_SYMBOLIZER" --version | grep -i 'llvm version' | head -1 | sed 's/^ *//')"
		echo "# command: REPEATS=$REPEATS COUNTS=\"$COUNTS\" SEED=$SEED TOOLS=\"$TOOLS\" BINARIES=\"$BINARIES\" bench/symbolize.sh"
		echo "# binary count repeat method seconds"
	} >"$RAW"
	for spec in $BINARIES; do
		name=${spec%%=*}
		bin=${spec#*=}
		[[ -r $bin ]] || die "cannot read $bin"
		symfile=$(symbol_file "$bin")
		echo "# $name: $bin ($(stat -c %s "$bin") bytes), functions from $symfile" >>"$RAW"
		for count in $COUNTS; do
			list=$BENCH_TMP/$name.$count.addr
			python3 "$HELPER" addresses "$symfile" "$count" "$SEED" >"$list"
			for ((rep = 1; rep <= REPEATS; rep++)); do
				for tool in $TOOLS; do
					log "$name $count addresses, round $rep/$REPEATS: $tool"
					run_tool "$tool" "$bin" "$list" "$BENCH_TMP/$name.$count.$tool.out" |
						while read -r method seconds; do
							echo "$name $count $rep $method $seconds"
						done >>"$RAW"
				done
				if ((rep == 1)) && [[ " $TOOLS " == *" llvm "* ]]; then
					for tool in $TOOLS; do
						[[ $tool != llvm ]] || continue
						echo "#agree $name $count $tool $(python3 "$HELPER" agree \
							"$BENCH_TMP/$name.$count.llvm.out" "$BENCH_TMP/$name.$count.$tool.out")" >>"$RAW"
					done
				fi
			done
		done
	done
fi

{
	echo "# Symbolization throughput"
	echo
	grep '^# ' "$RAW" | sed 's/^# /    /'
	echo
	report "$RAW"
} | tee "$TABLE"
