#!/usr/bin/env bash
# The README benchmark: a skirmish-server on configs/loadtest.toml (a free
# port, its own shm name) and skirmish-loadtest against it on this machine;
# prints the load test's summary, including the game played (the config's
# [game] module, as MatchFound names it), bytes per snapshot full and
# delta, the server's CPU per 1,000 bots and memory per bot read from
# /proc. Figures, not a test.
#
#   scripts/bench-load.sh [BOTS] [DURATION_S]      (defaults 5000, 60)
#   WORKERS=1 THREADS=1 RATE=30 REPORT=/tmp/run scripts/bench-load.sh 5000 60
#   CONFIG=/tmp/battleship.toml scripts/bench-load.sh 1000 30   (another game: the config decides)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BOTS=${1:-5000}
DURATION=${2:-60}
WORKERS=${WORKERS:-auto}
THREADS=${THREADS:-1}
RATE=${RATE:-0}
RAMP=${RAMP:-1000}
WARMUP=${WARMUP:-$(( BOTS / RAMP + 10 ))}
REPORT=${REPORT:-/tmp/skirmish-bench-load}
CONFIG=${CONFIG:-configs/loadtest.toml}
SERVER=$BUILD/server/skirmish-server
LOADTEST=$BUILD/loadtest/skirmish-loadtest
[[ -x $SERVER && -x $LOADTEST ]] || { echo "build first: make build" >&2; exit 2; }

log=$(mktemp)
ulimit -n 65536 2>/dev/null || true
"$SERVER" --config "$CONFIG" --port 0 --admin-port 0 --workers "$WORKERS" \
  --shm-name "bench-load-$$" >"$log" 2>&1 &
srv=$!
trap 'kill -TERM $srv 2>/dev/null; wait $srv 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 150); do  # 15 s at most
  port=$(sed -n 's/.*\] info: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | head -1)
  [[ -n $port ]] && break
  kill -0 $srv 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { echo "server did not listen" >&2; cat "$log" >&2; exit 1; }
echo "server pid $srv (workers $WORKERS, config $CONFIG) on 127.0.0.1:$port; $(nproc) CPUs; $(date -u +%FT%TZ)"
echo "$BOTS bots, $DURATION s, load-test threads $THREADS, input rate ${RATE} (0 = one per snapshot)"
"$LOADTEST" --target "127.0.0.1:$port" --bots "$BOTS" --duration "$DURATION" --ramp "$RAMP" \
  --warmup "$WARMUP" --threads "$THREADS" --rate "$RATE" --server-pid "$srv" --report "$REPORT" \
  | grep -v '^\[' || true
