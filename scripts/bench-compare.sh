#!/usr/bin/env bash
# Skirmish against its floor (bench/floor/) and, where ../shared/peers/colyseus
# exists, against the same game on Colyseus: every bot count in one
# invocation, each side back to back on the same machine, then ONE markdown
# table with the ratios (bench/README.md, "The floor and bench-compare.sh").
# Figures, not a test. Builds nothing.
#
#   scripts/bench-compare.sh [BOTS...]                  (default 1000 2000 2500)
#   DURATION=20 BUILD=build scripts/bench-compare.sh 1000 2000
#
# Per bot count, each run after waiting (bounded) for a quiet machine:
#   floor     skirmish-floor-server --procs WORKERS --read tick, and
#             skirmish-floor-client --conns N --read slots --server-pid
#   skirmish  skirmish-server on configs/loadtest.toml (--port 0, its own
#             --shm-name), skirmish-loadtest --bots N --rate 30 --server-pid
#             --report (p99 and CPU read from the report's JSON)
#   colyseus  the peer's run.sh from a writable copy (COLYSEUS_DIR), its own
#             session so it and its children are stopped by its pid
#
# Env (defaults): DURATION (20; SECONDS is read too when set in the
# environment) measured seconds per run; BUILD (build); CONFIG
# (configs/loadtest.toml) the server's config; WORKERS (nproc)
# skirmish --workers = floor --procs; THREADS (1) load-test and floor-client
# threads; RAMP (1000) connects/s; QUIET_WAIT (60) s and QUIET_PCT (10) %
# busy for the quiet wait; FLOOR_READ (tick|wakeup), FLOOR_CLIENT_READ
# (slots|wakeup); COLYSEUS (1; 0 skips it), COLYSEUS_SRC
# (../shared/peers/colyseus), COLYSEUS_DIR ($TMPDIR/colyseus-peer),
# COLYSEUS_RAMP (200) and COLYSEUS_WORKERS (2) are its RAMP and WORKERS; OUT (a new /tmp/bench-compare.XXXXXX) for the logs.
#
# Stops only what it started, by pid (trap on EXIT); every wait is bounded.
set -euo pipefail
# bash's own SECONDS starts from its environment value: read it before any
# time passes, so SECONDS=30 in the environment means 30 s.
RUN_S=${DURATION:-$((SECONDS > 0 ? SECONDS : 20))}
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
CONFIG=${CONFIG:-$ROOT/configs/loadtest.toml}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
if (($# > 0)); then BOTS_LIST=("$@"); else BOTS_LIST=(1000 2000 2500); fi
WORKERS=${WORKERS:-$(nproc)}
THREADS=${THREADS:-1}
RAMP=${RAMP:-1000}
QUIET_WAIT=${QUIET_WAIT:-60}
QUIET_PCT=${QUIET_PCT:-10}
FLOOR_READ=${FLOOR_READ:-tick}
FLOOR_CLIENT_READ=${FLOOR_CLIENT_READ:-slots}
COLYSEUS=${COLYSEUS:-1}
COLYSEUS_SRC=${COLYSEUS_SRC:-../shared/peers/colyseus}
[[ $COLYSEUS_SRC = /* ]] || COLYSEUS_SRC=$ROOT/$COLYSEUS_SRC
COLYSEUS_DIR=${COLYSEUS_DIR:-${TMPDIR:-/tmp}/colyseus-peer}
COLYSEUS_RAMP=${COLYSEUS_RAMP:-200}
COLYSEUS_WORKERS=${COLYSEUS_WORKERS:-2}

FLOOR_SERVER=$BUILD/bench/floor/skirmish-floor-server
FLOOR_CLIENT=$BUILD/bench/floor/skirmish-floor-client
SERVER=$BUILD/server/skirmish-server
LOADTEST=$BUILD/loadtest/skirmish-loadtest
for b in "$FLOOR_SERVER" "$FLOOR_CLIENT" "$SERVER" "$LOADTEST"; do
  [[ -x $b ]] || { echo "missing $b: build first (make build, or BUILD=DIR)" >&2; exit 2; }
done
for n in "${BOTS_LIST[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a bot count: $n" >&2; exit 2; }
done
if command -v jq >/dev/null; then
  json_get() { jq -r "$2 // empty" "$1" 2>/dev/null || true; }
else
  json_get() { python3 - "$1" "$2" <<'EOF' 2>/dev/null || true
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].lstrip('.').split('.'):
    v = v.get(k) if isinstance(v, dict) else None
print('' if v is None else v)
EOF
  }
fi
OUT=${OUT:-$(mktemp -d /tmp/bench-compare.XXXXXX)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

round1() { awk -v v="${1:-}" 'BEGIN { if (v != "") printf "%.1f", v }'; }
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$1" | head -1; }  # FILE KEY: a RESULT line's value
declare -A F_SRV F_CLI F_NOTE S_SRV S_CLI S_P99 S_NOTE C_SRV C_P99 C_NOTE BUSY

run_floor() {
  local n=$1 log=$OUT/floor-$1 srv port cl rc=0
  "$FLOOR_SERVER" --port 0 --procs "$WORKERS" --hz 30 --out 200 --read "$FLOOR_READ" \
    --secs $((n / RAMP + RUN_S + 60)) >"$log.server.log" 2>&1 &
  srv=$!; PIDS+=("$srv")
  port=$(port_from_log 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log.server.log" "$srv")
  if [[ -z $port ]]; then
    F_NOTE[$n]="floor server did not listen ($log.server.log)"; stop_pid "$srv"; forget "$srv"; return
  fi
  "$FLOOR_CLIENT" --target "127.0.0.1:$port" --conns "$n" --hz 30 --in 40 --out 200 --phases 8 \
    --threads "$THREADS" --ramp "$RAMP" --warmup 3 --secs "$RUN_S" --read "$FLOOR_CLIENT_READ" \
    --server-pid "$srv" >"$log.result" 2>"$log.client.log" &
  cl=$!; PIDS+=("$cl")
  wait "$cl" || rc=$?
  forget "$cl"; stop_pid "$srv"; forget "$srv"
  F_SRV[$n]=$(kv "$log.result" server_cores_per_1000)
  F_CLI[$n]=$(kv "$log.result" client_cores_per_1000)
  F_NOTE[$n]="floor $(kv "$log.result" connected)/$n connected, $(kv "$log.result" inputs_per_s) inputs/s and $(kv "$log.result" snapshots_per_s) snapshots/s of $(kv "$log.result" expected_per_s), closed $(kv "$log.result" closed), rc $rc"
}

run_skirmish() {
  local n=$1 log=$OUT/skirmish-$1 shm=bench-compare-$$-$1 srv port lt warm rc=0 rep
  warm=$((n / RAMP + 5))
  SHM_NAMES+=("$shm")
  "$SERVER" --config "$CONFIG" --port 0 --admin-port 0 --workers "$WORKERS" \
    --shm-name "$shm" >"$log.server.log" 2>&1 &
  srv=$!; PIDS+=("$srv")
  port=$(port_from_log 's/.*\] info: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log.server.log" "$srv")
  if [[ -z $port ]]; then
    S_NOTE[$n]="skirmish-server did not listen ($log.server.log)"; stop_pid "$srv"; forget "$srv"; return
  fi
  "$LOADTEST" --target "127.0.0.1:$port" --bots "$n" --rate 30 --ramp "$RAMP" --threads "$THREADS" \
    --warmup "$warm" --duration $((warm + RUN_S)) --server-pid "$srv" --report "$log" >"$log.loadtest.log" 2>&1 &
  lt=$!; PIDS+=("$lt")
  wait "$lt" || rc=$?
  forget "$lt"; stop_pid "$srv"; forget "$srv"; rm -f "/dev/shm/$shm"
  rep=$log.json
  if [[ ! -s $rep ]]; then S_NOTE[$n]="no report from skirmish-loadtest (rc $rc, $log.loadtest.log)"; return; fi
  S_SRV[$n]=$(json_get "$rep" .server.cpu_cores_per_1000_bots)
  S_CLI[$n]=$(awk -v c="$(json_get "$rep" .loadtest_cpu_cores)" -v n="$n" 'BEGIN { if (c != "") printf "%.3f", c / (n / 1000) }')
  S_P99[$n]=$(round1 "$(json_get "$rep" .steady.latency_ms.input_to_snapshot.p99)")
  S_NOTE[$n]="skirmish p50 $(round1 "$(json_get "$rep" .steady.latency_ms.input_to_snapshot.p50)") ms, errors $(json_get "$rep" .total.errors_total), failed connects $(json_get "$rep" .total.connect_failures), drops $(json_get "$rep" .total.drops), rc $rc"
}

# A copy of the peer in a writable place; files copied with their times kept
# (cp -p) and only when they changed, so its npm ci runs once, not per run.
sync_colyseus() {
  local f
  mkdir -p "$COLYSEUS_DIR"
  for f in "$COLYSEUS_SRC"/* "$COLYSEUS_SRC"/.gitignore; do
    [[ -f $f ]] || continue
    cmp -s "$f" "$COLYSEUS_DIR/$(basename "$f")" || cp -pf "$f" "$COLYSEUS_DIR/"
  done
}

free_port() {  # the first port from $1 with nothing listening on 127.0.0.1
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

run_colyseus() {
  local n=$1 log=$OUT/colyseus-$1 pid rc=0 line port
  port=$(free_port 2567)
  # exec all the way down: $! is run.sh itself, the leader of its own session
  (cd "$COLYSEUS_DIR" && exec env PORT="$port" QUIET_WAIT="$QUIET_WAIT" RAMP="$COLYSEUS_RAMP" \
    WORKERS="$COLYSEUS_WORKERS" setsid ./run.sh "$n" "$RUN_S") >"$log.json" 2>"$log.log" &
  pid=$!; GROUPS_+=("$pid")
  wait "$pid" || rc=$?
  GROUPS_=()
  line=$(grep '^{' "$log.json" | tail -1 || true)
  if [[ -z $line ]]; then C_NOTE[$n]="no JSON from run.sh (rc $rc, $log.log)"; return; fi
  echo "$line" >"$log.json"
  # per bot that joined: a run with failed joins is flagged in the notes
  C_SRV[$n]=$(awk -v c="$(json_get "$log.json" .server_cpu_pct)" -v n="$(json_get "$log.json" .connected)" \
    'BEGIN { if (c != "" && n + 0 > 0) printf "%.3f", c / 100 / (n / 1000) }')
  C_P99[$n]=$(round1 "$(json_get "$log.json" .p99_ms)")
  C_NOTE[$n]="colyseus $(json_get "$log.json" .connected)/$n joined, failed $(json_get "$log.json" .failed), bots $(awk -v c="$(json_get "$log.json" .bot_cpu_pct)" 'BEGIN { if (c != "") printf "%.2f", c / 100 }') cores, other CPU $(json_get "$log.json" .other_cpu_pct) %"
}

have_colyseus=0
if [[ $COLYSEUS != 0 && -d $COLYSEUS_SRC && -f $COLYSEUS_SRC/run.sh ]]; then
  if command -v node >/dev/null && command -v npm >/dev/null; then have_colyseus=1; sync_colyseus
  else echo "colyseus peer skipped: node/npm not found" >&2; fi
fi

echo "bench-compare: bots ${BOTS_LIST[*]}, $RUN_S s per run, workers/procs $WORKERS, threads $THREADS, ramp $RAMP/s," \
  "floor read $FLOOR_READ/$FLOOR_CLIENT_READ, colyseus $([[ $have_colyseus = 1 ]] && echo yes || echo no);" \
  "$(nproc) CPUs; $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); $(date -u +%FT%TZ); logs $OUT" >&2
for n in "${BOTS_LIST[@]}"; do
  echo "[$n bots] floor ..." >&2
  BUSY[$n]="$(quiet)"
  run_floor "$n"
  echo "[$n bots] skirmish ..." >&2
  BUSY[$n]+="/$(quiet)"
  run_skirmish "$n"
  if [[ $have_colyseus = 1 ]]; then
    echo "[$n bots] colyseus ..." >&2
    BUSY[$n]+="/$(quiet)"   # run.sh waits for a quiet machine again itself
    run_colyseus "$n"
  fi
done

# ---- the table
cell() { [[ -n ${1:-} ]] && echo "$1" || echo "–"; }
ratio() {  # VALUE FLOOR: "VALUE (R×)"
  if [[ -z ${1:-} ]]; then echo "–"; return; fi
  awk -v v="$1" -v f="${2:-}" 'BEGIN { if (f != "" && f + 0 > 0) printf "%.3f (%.2f×)", v, v / f; else printf "%.3f", v }'
}
echo
echo "| bots | floor server cores/1000 bots | skirmish server cores/1000 bots (× floor) | floor client cores/1000 bots | skirmish-loadtest cores/1000 bots (× floor) | skirmish p99 ms | colyseus server cores/1000 bots (× floor) | colyseus p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${BOTS_LIST[@]}"; do
  echo "| $n | $(cell "${F_SRV[$n]:-}") | $(ratio "${S_SRV[$n]:-}" "${F_SRV[$n]:-}") | $(cell "${F_CLI[$n]:-}") |" \
    "$(ratio "${S_CLI[$n]:-}" "${F_CLI[$n]:-}") | $(cell "${S_P99[$n]:-}") | $(ratio "${C_SRV[$n]:-}" "${F_SRV[$n]:-}") |" \
    "$(cell "${C_P99[$n]:-}") |"
done
echo
for n in "${BOTS_LIST[@]}"; do
  echo "- $n bots: ${F_NOTE[$n]:-floor not run}; ${S_NOTE[$n]:-}$([[ $have_colyseus = 1 ]] && echo "; ${C_NOTE[$n]:-}"); host busy before the runs ${BUSY[$n]} %"
done
echo
echo "$RUN_S s measured per run, $(nproc) CPUs, bots on the same machine; logs and reports in $OUT"
