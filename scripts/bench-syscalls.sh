#!/usr/bin/env bash
# Every syscall and every heap allocation of the workers, per bot-tick, under
# load (issue 14 item 4). Figures, not a test. Builds nothing; run as root
# (perf tracepoints and uprobes, strace -p).
#
#   scripts/bench-syscalls.sh [BOTS]          (default 1000)
#   WINDOW=10 BUILD=build scripts/bench-syscalls.sh 1000
#
# One skirmish-server (CONFIG, --port 0, its own --shm-name) and one
# skirmish-loadtest (--bots BOTS --rate 30). Once every bot is in play:
#   1. perf stat, WINDOW s, on every worker at once: raw_syscalls:sys_enter
#      and the main syscalls one by one (tracepoints: a counter in the
#      kernel, the workers run at their normal speed), and uprobes on libc's
#      malloc, calloc, realloc and free (every operator new and delete goes
#      through them): a counting allocator without changing the binary;
#   2. strace -c -f, WINDOW s, on worker 0, for the full table (strace stops
#      the worker at every syscall, so a worker batches more under it: its
#      counts per bot-tick are a lower bound; perf's are the figure).
# A bot-tick is one Snapshot sent (one per seat per tick): the workers'
# skirmish_snapshots_sent_total from /metrics across the same window.
#
# Env (defaults): WINDOW (10) s; BUILD (build); CONFIG
# (configs/loadtest.toml); WORKERS (nproc); RAMP (1000) connects/s;
# LOADTEST_ARGS (empty) more skirmish-loadtest flags; OUT (a new
# /tmp/bench-syscalls.XXXXXX) for the logs.
#
# Stops only what it started, by pid (trap on EXIT); removes the uprobes it
# added; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BOTS=${1:-1000}
WINDOW=${WINDOW:-10}
BUILD=${BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
CONFIG=${CONFIG:-$ROOT/configs/loadtest.toml}
WORKERS=${WORKERS:-$(nproc)}
RAMP=${RAMP:-1000}
QUIET_WAIT=${QUIET_WAIT:-60}
QUIET_PCT=${QUIET_PCT:-10}
SERVER=$BUILD/server/skirmish-server
LOADTEST=$BUILD/loadtest/skirmish-loadtest
for b in "$SERVER" "$LOADTEST"; do [[ -x $b ]] || { echo "missing $b: build first" >&2; exit 2; }; done
[[ $BOTS =~ ^[1-9][0-9]*$ ]] || { echo "not a bot count: $BOTS" >&2; exit 2; }
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || { echo "WINDOW: whole seconds, got $WINDOW" >&2; exit 2; }
for t in perf strace curl python3; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
OUT=${OUT:-$(mktemp -d /tmp/bench-syscalls.XXXXXX)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

LIBC=$(ldd "$SERVER" | awk '/libc\.so\.6/ { print $3 }')
PROBES=()
drop_probes() { local p; for p in ${PROBES[@]+"${PROBES[@]}"}; do perf probe -q -d "probe_libc:$p" 2>/dev/null || true; done; }
trap 'drop_probes; cleanup' EXIT
for f in malloc calloc realloc free; do
  if perf probe -q -x "$LIBC" -a "skm_$f=$f" 2>>"$OUT/perf-probe.log"; then PROBES+=("skm_$f"); fi
done

shm=bench-syscalls-$$
SHM_NAMES+=("$shm")
"$SERVER" --config "$CONFIG" --port 0 --admin-port 0 --workers "$WORKERS" --shm-name "$shm" >"$OUT/server.log" 2>&1 &
srv=$!; PIDS+=("$srv")
port=$(port_from_log 's/.*\] info: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$OUT/server.log" "$srv")
admin=$(port_from_log 's/.*\] info: admin listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$OUT/server.log" "$srv")
[[ -n $port && -n $admin ]] || { echo "skirmish-server did not listen ($OUT/server.log)" >&2; exit 1; }
warm=$((BOTS / RAMP + 5))
# shellcheck disable=SC2086
"$LOADTEST" --target "127.0.0.1:$port" --bots "$BOTS" --rate 30 --ramp "$RAMP" --warmup "$warm" \
  --duration $((warm + 3 * WINDOW + 10)) --server-pid "$srv" ${LOADTEST_ARGS:-} >"$OUT/loadtest.log" 2>&1 &
lt=$!; PIDS+=("$lt")

# The workers' pids, and their snapshots sent so far (full + delta), from the admin port.
workers() { curl -sf "127.0.0.1:$admin/status" | python3 -c '
import json, sys
print(",".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"] if p["role"] == "worker"))'; }
snapshots() { curl -sf "127.0.0.1:$admin/metrics" | awk '/^skirmish_snapshots_sent_total\{role="worker"/ { s += $2 } END { printf "%d", s }'; }

# Every bot seated (bounded: the ramp and 30 s more), then one more second.
for _ in $(seq 1 $(((BOTS / RAMP + 30) * 10))); do
  kill -0 "$lt" 2>/dev/null || { echo "skirmish-loadtest ended early ($OUT/loadtest.log)" >&2; exit 1; }
  s1=$(snapshots); sleep 0.1; s2=$(snapshots)
  # a second's worth of snapshots at 30 Hz per bot in 0.1 s: all are playing
  (( (s2 - s1) * 10 >= BOTS * 30 * 9 / 10 )) && break
done
sleep 1
pids=$(workers)
[[ -n $pids ]] || { echo "no workers in /status" >&2; exit 1; }

events=raw_syscalls:sys_enter
for s in read write writev recvfrom sendto epoll_wait epoll_ctl futex; do events+=",syscalls:sys_enter_$s"; done
for p in ${PROBES[@]+"${PROBES[@]}"}; do events+=",probe_libc:$p"; done
s0=$(snapshots)
perf stat -x, -e "$events" -p "$pids" -- sleep "$WINDOW" 2>"$OUT/perf-stat.csv" >/dev/null
s1=$(snapshots)
ticks=$((s1 - s0))

w0=${pids%%,*}
s2=$(snapshots)
timeout -s INT "$WINDOW" strace -c -f -p "$w0" -o "$OUT/strace-c.txt" 2>/dev/null || true
s3=$(snapshots)

echo "bench-syscalls: $BOTS bots at --rate 30, workers $WORKERS (pids $pids), ${WINDOW} s windows;" \
  "$(nproc) CPUs; $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); $(date -u +%FT%TZ); logs $OUT"
echo
echo "perf stat, every worker, $WINDOW s: $ticks bot-ticks (snapshots sent)"
echo "| event | count | per bot-tick |"
echo "|---|---|---|"
awk -F, -v t="$ticks" '$1 ~ /^[0-9]+$/ {
  n = $3; sub(/^(raw_)?syscalls:sys_enter_?/, "", n); sub(/^probe_libc:skm_/, "", n)
  if (n == "") n = "all syscalls"; else if ($3 ~ /probe_libc/) n = n " calls"
  printf "| %s | %d | %.4f |\n", n, $1, (t > 0 ? $1 / t : 0) }' "$OUT/perf-stat.csv"
[[ ${#PROBES[@]} -gt 0 ]] || echo "(no uprobes on libc's allocator: $OUT/perf-probe.log)"
echo
# worker 0's share of the bot-ticks: the workers split the bots about evenly
nw=$(tr ',' '\n' <<<"$pids" | wc -l)
echo "strace -c, worker $w0, $WINDOW s: about $(((s3 - s2) / nw)) bot-ticks (1/$nw of $((s3 - s2)))"
sed -n '1,/^------ ----------- ----------- --------- --------- -*$/d; /^------/d; p' "$OUT/strace-c.txt" | head -20 |
  awk -v t="$(((s3 - s2) / nw))" 'NF >= 5 && $NF != "syscall" {
    calls = ($4 ~ /^[0-9]+$/) ? $4 : $3
    printf "  %-14s %9d calls  %.4f per bot-tick\n", $NF, calls, (t > 0 ? calls / t : 0) }'
# The load test is stopped here (trap): strace slowed the workers, so its
# latency and CPU figures are not figures.
