#!/usr/bin/env bash
# The drain with many players (issue 12): BOTS bots (default 1,000) in
# 4-player matches of 8 s on a 2-worker server (configs/loadtest.toml),
# SIGTERM 3 s after every bot is seated; prints how many matches finished
# during the drain, the bots that missed MatchEnd or the ServerShutdown
# after it, and how long the drain took. Figures, and a non-zero exit if a
# match did not finish. It is test_drain's hidden case "[drain1000]", which
# ctest also runs at 1,000 bots on the optimized build (about 10 s).
#
#   scripts/bench-drain.sh [BOTS]        (default 1000; at least 8)
#   BUILD=build-asan scripts/bench-drain.sh 200
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
TEST=$BUILD/tests/test_drain
[[ -x $TEST ]] || { echo "build first: make build" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || true
SKIRMISH_DRAIN_BOTS=${1:-1000} exec "$TEST" "[drain1000]"
