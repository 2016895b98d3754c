# Sourced by the bench scripts (bench-compare.sh, bench-syscalls.sh): what a
# script started and how it is stopped (by pid, bounded), a quiet-machine
# wait and a port read from a log. Not a script of its own.
# Uses QUIET_WAIT and QUIET_PCT; defines PIDS, GROUPS_, SHM_NAMES and a trap
# on EXIT that stops them.

# ---- what this script started, and how it is stopped
PIDS=()      # plain processes: SIGTERM, a second SIGTERM, then SIGKILL
GROUPS_=()   # session leaders (setsid): the same, to the whole group
SHM_NAMES=() # /dev/shm segments of the skirmish servers it started
stop_pid() {  # PID [group]: bounded, ~8 s at most
  local pid=$1 target=$1 i
  [[ ${2:-} = group ]] && target=-$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM -- "$target" 2>/dev/null || true
  for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  # skirmish-server: the first signal drains, a second one stops at once
  if kill -0 "$pid" 2>/dev/null; then kill -TERM -- "$target" 2>/dev/null || true; fi
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "$target" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local p s
  for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_pid "$p"; done
  for p in ${GROUPS_[@]+"${GROUPS_[@]}"}; do stop_pid "$p" group; done
  for s in ${SHM_NAMES[@]+"${SHM_NAMES[@]}"}; do rm -f "/dev/shm/$s"; done
}
trap cleanup EXIT
forget() { local keep=() p; for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p = "$1" ]] || keep+=("$p"); done; PIDS=(${keep[@]+"${keep[@]}"}); }

# Waits (at most QUIET_WAIT s) until the host is under QUIET_PCT % busy over
# 0.5 s, as the Colyseus peer's run.sh does; prints the last busy % seen.
quiet() {
  local end=$(($(date +%s) + QUIET_WAIT)) a b tot idle busy i
  while :; do
    read -ra a </proc/stat; sleep 0.5; read -ra b </proc/stat
    tot=0; for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
    idle=$((b[4] - a[4] + b[5] - a[5]))
    busy=$((100 * (tot - idle) / (tot > 0 ? tot : 1)))
    if ((busy < QUIET_PCT)) || (($(date +%s) >= end)); then echo "$busy"; return; fi
  done
}

# PATTERN LOG PID: the port from the first line of LOG matching the sed
# PATTERN (15 s at most); empty if PID died or nothing came.
port_from_log() {
  local port="" i
  for i in $(seq 1 150); do
    port=$(sed -n "$1" "$2" | head -1)
    [[ -n $port ]] && break
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "$port"
}
