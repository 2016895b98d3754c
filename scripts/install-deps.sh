#!/usr/bin/env bash
# Installs what Skirmish needs from Debian's packages, and only what is
# missing: quiet and quick when everything is there. Idempotent; needs root
# (or sudo) only when something is missing. No other downloads, ever.
#
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also what the test suite uses
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config libuv1-dev flatbuffers-compiler
      libflatbuffers-dev catch2 libspdlog-dev libfmt-dev libtomlplusplus-dev
      libcli11-dev nlohmann-json3-dev libncurses-dev libssl-dev libsqlite3-dev libhiredis-dev)
if [[ "${1:-}" == "--test" ]]; then
  # procps: ps/pgrep in process tests; python3: wire-format example tests;
  # chromium: the load-test HTML report rendered headless; tmux: the
  # terminal client driven through a real terminal; python3-yaml: the
  # deploy/ manifests checked; prometheus: promtool checks /metrics;
  # clang and its runtime: the libFuzzer fuzzers (fuzz/); redis-server: the
  # fleet's tests start their own on a free loopback port (never the
  # package's service: the policy below keeps it from starting).
  pkgs+=(procps python3 python3-flatbuffers curl chromium tmux python3-yaml prometheus
         clang libclang-rt-14-dev redis-server)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
# Packages that ship a daemon (prometheus) must not start it: the tests want
# promtool, not a server on :9090. Where no policy-rc.d says so already, one
# that refuses every start stands for the duration of the install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && "${sudo[@]}" rm -f "$policy"' EXIT
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
