#!/bin/bash
# SPDX-License-Identifier: MIT
# The profiler's total CPU (profqd's utime + stime and the BPF run time of all its programs,
# from kernel.bpf_stats_enabled) at FREQ Hz on a machine whose CPUs are all busy with ordinary
# work (one busy loop per CPU, nothing that switches much), with --off-cpu yes against no,
# alternated REPEATS times, DURATION seconds each after WARMUP. What off-CPU recording costs
# when the host computes rather than storms (bench/offcpu-cost.sh has the storm).
#
# Environment: REPEATS (3), DURATION (20), WARMUP (3), FREQ (99), BUILD (build). Needs root.
# Output: one line per run, then the medians, as % of one core.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
FREQ=${FREQ:-99}
[[ $(id -u) -eq 0 ]] || { echo "needs root" >&2; exit 1; }
TMP=$(mktemp -d /tmp/profq-offcpu-busy.XXXXXX)
SAVED=$(sysctl -n kernel.bpf_stats_enabled)
BURNERS=()
DAEMON=
cleanup() {
  [[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  for b in "${BURNERS[@]}"; do kill "$b" 2>/dev/null || true; done
  sysctl -qw kernel.bpf_stats_enabled="$SAVED"
  rm -rf "$TMP"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1
for _ in $(seq "$(nproc)"); do
  bash -c 'while :; do :; done' &
  BURNERS+=($!)
done

# Sum of run_time_ns of the BPF programs named profq_* (only this daemon's are loaded).
bpf_ns() {
  bpftool -j prog show | python3 -c '
import json, sys
print(sum(p.get("run_time_ns", 0) for p in json.load(sys.stdin)
          if p.get("name", "").startswith("profq_")))'
}
cpu_ns() { awk '{ print ($14 + $15) * 10000000 }' "/proc/$1/stat"; }

run() {
  local off=$1
  "$BUILD/daemon/profqd" --socket "$TMP/s.sock" --state-dir "$TMP/state-$off" --config /dev/null \
    --frequency "$FREQ" --off-cpu "$off" >"$TMP/log" 2>&1 &
  DAEMON=$!
  sleep "$WARMUP"
  local b0 c0 b1 c1
  b0=$(bpf_ns) c0=$(cpu_ns "$DAEMON")
  sleep "$DURATION"
  b1=$(bpf_ns) c1=$(cpu_ns "$DAEMON")
  kill "$DAEMON" && wait "$DAEMON" 2>/dev/null || true
  DAEMON=
  rm -rf "$TMP/state-$off"
  python3 -c "
d = $DURATION * 1e9
print(f'off-cpu $off: daemon {100 * ($c1 - $c0) / d:.3f}% BPF {100 * ($b1 - $b0) / d:.3f}% '
      f'total {100 * ($c1 - $c0 + $b1 - $b0) / d:.3f}% of one core')"
}

for _ in $(seq "$REPEATS"); do
  run yes | tee -a "$TMP/yes"
  run no | tee -a "$TMP/no"
done
for off in yes no; do
  python3 -c "
import statistics, sys
t = [float(l.split('total ')[1].split('%')[0]) for l in open('$TMP/$off')]
print(f'median total, off-cpu $off: {statistics.median(t):.3f}% of one core ({sorted(t)})')"
done
