#!/usr/bin/env bash
# Builds the fuzzers (clang, -DSKIRMISH_FUZZ=ON, in build-fuzz/), writes the
# seed corpora, and runs each fuzzer for FUZZ_SECONDS, one after the other.
# Exits non-zero if any fuzzer finds a crash, a leak, a timeout or an
# out-of-memory; prints exec/s and total executions per fuzzer.
#
#   fuzz/run.sh                        all of them, 60 s each
#   FUZZ_SECONDS=3600 fuzz/run.sh dispatch
#
# Names: frame_decoder, dispatch, config, view_delta, game, record. `game` runs
# fuzz_game once per module the build holds ($build/games/*.so: arena, and
# battleship once it is built), FUZZ_SECONDS each, with
# SKIRMISH_FUZZ_GAME=<name> and its own corpus corpus/game_<name> (the
# generic seeds of corpus/game are read as a second corpus). Environment:
#   FUZZ_SECONDS    seconds per fuzzer (default 60)
#   FUZZ_BUILD_DIR  build directory (default build-fuzz next to this folder)
#   FUZZ_NO_BUILD   1: skip configure and build (ctest -L fuzz sets it)
#   FUZZ_ARGS       more libFuzzer flags, e.g. "-jobs=2 -workers=2" (then the
#                   figures are in $FUZZ_BUILD_DIR/logs/fuzz-N.log)
# The corpus grows in $FUZZ_BUILD_DIR/corpus/<name> across runs; a crash is
# saved in $FUZZ_BUILD_DIR/artifacts/<name>/ (fuzz/README.md: reproduce it).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath -m "${FUZZ_BUILD_DIR:-$root/build-fuzz}")"
seconds="${FUZZ_SECONDS:-60}"
all=(frame_decoder dispatch config view_delta game record)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")
for n in "${names[@]}"; do
  [[ " ${all[*]} " == *" $n "* ]] || { echo "fuzz/run.sh: unknown fuzzer '$n' (one of: ${all[*]})" >&2; exit 2; }
done

if [[ "${FUZZ_NO_BUILD:-0}" != 1 ]]; then
  for tool in clang clang++; do
    command -v "$tool" >/dev/null || { echo "fuzz/run.sh: $tool missing: apt-get install clang libclang-rt-14-dev" >&2; exit 2; }
  done
  mkdir -p "$build"
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DSKIRMISH_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 1; }
  cmake --build "$build" --target make_seed_corpus $(printf 'fuzz_%s ' "${names[@]}")
fi

"$build/fuzz/make_seed_corpus" "$build/corpus" "$root/configs"
mkdir -p "$build/logs"
cd "$build/logs"  # with -jobs, libFuzzer writes fuzz-N.log into the current directory

# One run per fuzzer; `game` expands to one run per module (game:<name>).
runs=()
for n in "${names[@]}"; do
  if [[ $n == game ]]; then
    found=0
    for so in "$build"/games/*.so; do
      [[ -f $so ]] || continue
      runs+=("game:$(basename "$so" .so)")
      found=1
    done
    [[ $found == 1 ]] || { echo "fuzz/run.sh: no game module in $build/games (build the arena target)" >&2; exit 1; }
  else
    runs+=("$n")
  fi
done

failed=0
summary=()
for run in "${runs[@]}"; do
  n="${run%%:*}"
  game=""
  [[ $run == *:* ]] && game="${run#*:}"
  tag="$n"
  extra=()
  if [[ $n == game ]]; then
    tag="game_$game"
    mkdir -p "$build/corpus/$tag"
    extra=("$build/corpus/game")  # the generic seeds, read only
  fi
  corpus="$build/corpus/$tag"
  artifacts="$build/artifacts/$tag/"
  log="$build/logs/$tag.log"
  mkdir -p "$artifacts"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048
        -artifact_prefix="$artifacts")
  [[ -f "$build/corpus/$n.dict" ]] && args+=(-dict="$build/corpus/$n.dict")
  # shellcheck disable=SC2206  # FUZZ_ARGS is split on purpose
  args+=(${FUZZ_ARGS:-})
  echo "== fuzz_$n${game:+ ($game)}: ${seconds}s, corpus $corpus, log $log"
  status=0
  SKIRMISH_FUZZ_GAME="$game" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$build/fuzz/fuzz_$n" "${args[@]}" "$corpus" "${extra[@]}" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  units="$(ls "$corpus" | wc -l)"
  if [[ $status -ne 0 ]]; then
    failed=1
    echo "!! fuzz_$tag FAILED (exit $status); the end of $log:" >&2
    tail -n 60 "$log" >&2
    ls -1 "$artifacts" 2>/dev/null | sed "s|^|   artifact: $artifacts|" >&2
    summary+=("fuzz_$tag: FAILED (exit $status) after ${execs:-?} execs")
  else
    summary+=("fuzz_$tag: ${execs:-?} execs in ${seconds}s, ${rate:-?} exec/s, corpus ${units} inputs, 0 crashes")
  fi
done

echo "== summary"
printf '  %s\n' "${summary[@]}"
exit "$failed"
