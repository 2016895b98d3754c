#!/usr/bin/env bash
# The hand-off benchmark: skirmish-server against a plain libuv echo server,
# on loopback, in one run. Prints a table and a one-line JSON summary.
# Figures, not a pass/fail test (see bench/README.md for what each means).
#
#   usage: bench/run_handoff_bench.sh [BUILD_DIR]     (default: build/)
#
# Builds nothing: run `make build` first. Knobs (environment):
#   HANDOFF_TOTAL=20000    connections opened in the hand-off measurement
#   HANDOFF_CONNS=1000     most of them open at once
#   PING_CONNS="1 100 1000"  concurrency levels of the ping measurement
#   PING_DURATION_S=5      measured seconds per level (after PING_WARMUP_S)
#   PING_WARMUP_S=0.5
#   WORKERS=               passed as --workers to skirmish-server when set
#
# It starts exactly two processes (the server and the echo server), reads
# their ports from their logs with a deadline, and on exit stops exactly
# those two pids (SIGTERM, then SIGKILL after a deadline).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "bench: no build dir '${1:-build}': run 'make build' first" >&2; exit 2; }

HANDOFF_TOTAL=${HANDOFF_TOTAL:-20000}
HANDOFF_CONNS=${HANDOFF_CONNS:-1000}
PING_CONNS=${PING_CONNS:-"1 100 1000"}
PING_DURATION_S=${PING_DURATION_S:-5}
PING_WARMUP_S=${PING_WARMUP_S:-0.5}
WORKERS=${WORKERS:-}

SERVER_BIN=$BUILD/server/skirmish-server
BENCH_BIN=$BUILD/bench/skirmish-bench
ECHO_BIN=$BUILD/bench/skirmish-echo-server
for bin in "$SERVER_BIN" "$BENCH_BIN" "$ECHO_BIN"; do
  [[ -x $bin ]] || { echo "bench: $bin missing: run 'make build' first" >&2; exit 2; }
done

START_DEADLINE_S=15   # for a process to print its port and answer a handshake
STOP_DEADLINE_S=10    # for a process to exit on SIGTERM before SIGKILL

SHM_NAME=bench-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/skirmish-bench.XXXXXX")
SERVER_PID=
ECHO_PID=

now_ns() { date +%s%N; }

# Stops one pid we started: SIGTERM, poll until gone or the deadline, SIGKILL.
stop_pid() {
  local pid=$1 deadline
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(( $(now_ns) + STOP_DEADLINE_S * 1000000000 ))
  while kill -0 "$pid" 2>/dev/null && (( $(now_ns) < deadline )); do sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench: pid $pid did not stop in ${STOP_DEADLINE_S}s; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SERVER_PID"
  stop_pid "$ECHO_PID"
  # Our own segment, left only if the server was killed.
  [[ -e /dev/shm/$SHM_NAME ]] && rm -f "/dev/shm/$SHM_NAME"
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- descriptors: each side holds one fd per open connection ----
max_conns=$HANDOFF_CONNS
for c in $PING_CONNS; do (( c > max_conns )) && max_conns=$c; done
need_fds=$(( max_conns + 1024 ))
want_fds=$(( need_fds > 65536 ? need_fds : 65536 ))
ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < need_fds )); then
  echo "bench: open-file limit $(ulimit -n) < $need_fds needed for $max_conns connections" >&2
  exit 2
fi

# ---- the server's config: loadtest.toml (per-IP cap lifted) with the
# per-connection message rate lifted too, or one connection pinging flat out
# is rate limited. 100000/s is the highest messages_per_second the config
# accepts; one connection with one Ping in flight stays far below it.
CONFIG=$TMP/bench.toml
sed -e 's/^messages_per_second[[:space:]]*=[[:space:]]*[0-9]*/messages_per_second = 100000/' \
    -e 's/^message_burst[[:space:]]*=[[:space:]]*[0-9]*/message_burst = 1000000/' \
    "$ROOT/configs/loadtest.toml" > "$CONFIG"
if ! grep -q '^messages_per_second = 100000' "$CONFIG" || ! grep -q '^message_burst = 1000000' "$CONFIG"; then
  echo "bench: could not set [limits] messages_per_second/message_burst in a copy of configs/loadtest.toml" >&2
  exit 2
fi

# Prints the port from the first "listening on HOST:PORT" line of a log
# (not "admin listening on"), polling until a deadline; fails if the process
# dies first.
wait_port() {
  local name=$1 pid=$2 log=$3 deadline port
  deadline=$(( $(now_ns) + START_DEADLINE_S * 1000000000 ))
  while (( $(now_ns) < deadline )); do
    port=$(grep -m1 -oE '(^|: )listening on [0-9.]+:[0-9]+' "$log" 2>/dev/null | sed 's/.*://' || true)
    if [[ -n $port ]]; then echo "$port"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: $name exited before listening; its log:" >&2
      sed 's/^/  | /' "$log" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "bench: $name printed no 'listening on' line in ${START_DEADLINE_S}s; its log:" >&2
  sed 's/^/  | /' "$log" >&2
  return 1
}

# Polls with small hand-offs until one completes: the listener may be up
# before the process behind it (a worker) can answer.
wait_answering() {
  local name=$1 port=$2 deadline; shift 2
  deadline=$(( $(now_ns) + START_DEADLINE_S * 1000000000 ))
  while (( $(now_ns) < deadline )); do
    if "$BENCH_BIN" --port "$port" --mode handoff --total 50 --conns 10 --timeout-s 5 --label "$name-probe" "$@" \
         >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "bench: $name did not complete a handshake in ${START_DEADLINE_S}s" >&2
  return 1
}

server_args=(--config "$CONFIG" --port 0 --admin-port 0 --shm-name "$SHM_NAME")
[[ -n $WORKERS ]] && server_args+=(--workers "$WORKERS")
"$SERVER_BIN" "${server_args[@]}" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
"$ECHO_BIN" --port 0 >"$TMP/echo.log" 2>&1 &
ECHO_PID=$!

SERVER_PORT=$(wait_port skirmish-server "$SERVER_PID" "$TMP/server.log")
ECHO_PORT=$(wait_port skirmish-echo-server "$ECHO_PID" "$TMP/echo.log")
wait_answering skirmish "$SERVER_PORT"
wait_answering echo "$ECHO_PORT" --echo

workers=$(grep -m1 -oE 'workers [0-9]+( \(auto\))?' "$TMP/server.log" || echo "workers ?")
echo "skirmish-server on 127.0.0.1:$SERVER_PORT ($workers), echo server on 127.0.0.1:$ECHO_PORT;" \
     "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), open-file limit $(ulimit -n)"

# ---- CPU of a process tree, in clock ticks (for the saturation notes) ----
CLK_TCK=$(getconf CLK_TCK)
tree_pids() {  # the pid and its descendants (a preforking server has children)
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      for (i = 1; i <= NR; i++) {
        p = pids[i]
        for (hops = 0; p != "" && p != 0 && hops < 64; hops++) {
          if (p == root) { print pids[i]; break }
          p = parent[p]
        }
      }
    }'
}
cpu_ticks() {
  local total=0 p stat fields
  for p in $(tree_pids "$1"); do
    stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    stat=${stat##*) }          # past "pid (comm) ": comm may hold spaces
    read -r -a fields <<<"$stat"
    total=$(( total + fields[11] + fields[12] ))   # utime, stime (fields 14, 15)
  done
  echo "$total"
}

# ---- one client run; its "result k=v ..." line goes to $TMP/results ----
declare -A R
run() {  # run KEY LABEL PORT PID [client flags...]
  local key=$1 label=$2 port=$3 pid=$4 line t0 t1 c0 c1 rc=0 kv
  shift 4
  c0=$(cpu_ticks "$pid"); t0=$(now_ns)
  line=$("$BENCH_BIN" --port "$port" --label "$label" "$@" 2>"$TMP/client.err") || rc=$?
  t1=$(now_ns); c1=$(cpu_ticks "$pid")
  sed 's/^/  /' "$TMP/client.err" >&2
  line=$(grep '^result ' <<<"$line" || true)
  R[$key:ok]=$(( rc == 0 && ${#line} > 0 ))
  for kv in $line; do
    [[ $kv == *=* ]] && R[$key:${kv%%=*}]=${kv#*=}
  done
  R[$key:server_cpu_pct]=$(awk -v d="$((c1 - c0))" -v hz="$CLK_TCK" -v ns="$((t1 - t0))" \
                             'BEGIN { printf "%.0f", (ns > 0) ? (100 * d / hz / (ns / 1e9)) : 0 }')
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bench: the $label server died during '$key'; its log:" >&2
    tail -20 "$TMP/$( [[ $label == echo ]] && echo echo || echo server ).log" | sed 's/^/  | /' >&2
    exit 1
  fi
}

KEYS=()
echo "hand-off: $HANDOFF_TOTAL connections, at most $HANDOFF_CONNS open at once"
for target in skirmish echo; do
  if [[ $target == skirmish ]]; then port=$SERVER_PORT pid=$SERVER_PID extra=(); else port=$ECHO_PORT pid=$ECHO_PID extra=(--echo); fi
  run "handoff:$target" "$target" "$port" "$pid" --mode handoff --total "$HANDOFF_TOTAL" --conns "$HANDOFF_CONNS" "${extra[@]}"
done
KEYS+=(handoff)
for c in $PING_CONNS; do
  echo "ping: $c connection(s), one Ping in flight each, ${PING_WARMUP_S}s warm-up + ${PING_DURATION_S}s measured"
  for target in skirmish echo; do
    if [[ $target == skirmish ]]; then port=$SERVER_PORT pid=$SERVER_PID extra=(); else port=$ECHO_PORT pid=$ECHO_PID extra=(--echo); fi
    run "ping$c:$target" "$target" "$port" "$pid" --mode ping --conns "$c" \
        --duration-s "$PING_DURATION_S" --warmup-s "$PING_WARMUP_S" "${extra[@]}"
  done
  KEYS+=("ping$c")
done

# ---- the table and the JSON line ----
val() { local v=${R[$1]:-}; [[ -n $v && ${R[${1%:*}:ok]:-0} == 1 ]] && echo "$v" || echo "n/a"; }
# fmt VALUE SCALE DECIMALS: VALUE / SCALE, or n/a
fmt() {
  if [[ $1 == n/a ]]; then echo n/a; return; fi
  awk -v v="$1" -v s="$2" -v d="$3" 'BEGIN { printf ("%." d "f"), v / s }'
}
ratio() {
  if [[ $1 == n/a || $2 == n/a ]]; then echo n/a; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'
}

ROWS=()   # "json_key|title|field|scale|decimals" for each row of the table
for k in "${KEYS[@]}"; do
  if [[ $k == handoff ]]; then
    ROWS+=("handoff_per_s|handoffs/s (connect->Welcome, ${HANDOFF_CONNS} open)|handoff:rate_per_s|1|0"
           "handoff_p50_ms|  connect->Welcome p50 (ms)|handoff:p50_us|1000|2"
           "handoff_p99_ms|  connect->Welcome p99 (ms)|handoff:p99_us|1000|2")
  else
    c=${k#ping}
    ROWS+=("ping_${c}_rt_per_s|ping round trips/s, ${c} conn$([[ $c == 1 ]] || echo s)|$k:rate_per_s|1|0"
           "ping_${c}_p50_us|  RTT p50 (us)|$k:p50_us|1|1"
           "ping_${c}_p99_us|  RTT p99 (us)|$k:p99_us|1|1")
  fi
done

echo
printf '%-44s %12s %12s %14s\n' "measurement" "skirmish" "echo" "skirmish/echo"
printf '%-44s %12s %12s %14s\n' "--------------------------------------------" "------------" "------------" "--------------"
json=""
for row in "${ROWS[@]}"; do
  IFS='|' read -r jkey title field scale dec <<<"$row"
  m=${field%%:*}; fld=${field#*:}
  s=$(fmt "$(val "$m:skirmish:$fld")" "$scale" "$dec")
  e=$(fmt "$(val "$m:echo:$fld")" "$scale" "$dec")
  r=$(ratio "$s" "$e")
  printf '%-44s %12s %12s %14s\n' "$title" "$s" "$e" "$r"
  js=$([[ $s == n/a ]] && echo null || echo "$s"); je=$([[ $e == n/a ]] && echo null || echo "$e")
  jr=$([[ $r == n/a ]] && echo null || echo "$r")
  json+="\"$jkey\":{\"skirmish\":$js,\"echo\":$je,\"ratio\":$jr},"
done

echo
echo "saturation and errors (cpu over each client run; 100% = one core):"
printf '  %-12s %-9s %12s %12s %10s %10s\n' "measurement" "target" "client cpu%" "server cpu%" "failed" "errors"
all_ok=true
for k in "${KEYS[@]}"; do
  for target in skirmish echo; do
    key=$k:$target
    failed=$(( ${R[$key:failed]:-0} + ${R[$key:setup_failed]:-0} ))
    errors=$(( ${R[$key:error_frames]:-0} + ${R[$key:decode_errors]:-0} + ${R[$key:connect_errors]:-0} ))
    [[ ${R[$key:ok]:-0} == 1 && $failed == 0 ]] || all_ok=false
    printf '  %-12s %-9s %12s %12s %10s %10s\n' "$k" "$target" "${R[$key:client_cpu_pct]:-n/a}" \
           "${R[$key:server_cpu_pct]:-n/a}" "$failed" "$errors"
  done
done
echo "  rates: skirmish/echo < 1 means skirmish is slower; latencies: > 1 means skirmish is slower."
echo
workers_n=$(grep -oE '[0-9]+' <<<"$workers" || echo null)
echo "{\"bench\":\"handoff\",\"cpus\":$(nproc),\"server_workers\":$workers_n,${json}\"all_runs_clean\":$all_ok}"
