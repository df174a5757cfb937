#!/bin/bash
# SPDX-License-Identifier: MIT
# profqd's resident set at rest: each given profqd binary started at defaults (private socket
# and state dir, --config /dev/null), idle for WAIT seconds (20), then its RSS, the part of it
# backed by files (code and shared libraries, from /proc/PID/smaps) and the number of shared
# objects it maps. ROUNDS (3) rounds, the binaries alternating within each.
#
#   bench/idle-rss.sh OLD/daemon/profqd NEW/daemon/profqd
#
# Needs root (BPF). Output: one line per run.
set -euo pipefail
WAIT=${WAIT:-20}
ROUNDS=${ROUNDS:-3}
(($# > 0)) || {
	echo "usage: $0 PROFQD..." >&2
	exit 2
}
for ((round = 1; round <= ROUNDS; round++)); do
	for bin in "$@"; do
		dir=$(mktemp -d)
		"$bin" --socket "$dir/sock" --state-dir "$dir/state" --config /dev/null \
			>"$dir/out" 2>&1 &
		pid=$!
		sleep "$WAIT"
		rss=$(awk '/^Rss:/ {print $2}' "/proc/$pid/smaps_rollup")
		file=$(awk '/^[0-9a-f]+-/ {name = $6} /^Rss:/ {if (name ~ /^\//) s += $2} END {print s}' \
			"/proc/$pid/smaps")
		libs=$(awk '$6 ~ /\.so/ {print $6}' "/proc/$pid/maps" | sort -u | wc -l)
		kill "$pid"
		wait "$pid" || true
		rm -rf "$dir"
		echo "round $round $bin rss_kib $rss file_backed_kib $file shared_objects $libs"
	done
done
