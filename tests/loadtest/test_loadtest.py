#!/usr/bin/python3
"""ctest loadtest_short: skirmish-loadtest against a real server, 200 bots, 10 s.

Starts skirmish-server (port 0, its own shm name) with configs/loadtest.toml,
runs skirmish-loadtest with --report, and checks: exit code 0 with an error
SLO of zero, every bot got Welcome and a match, the JSON report has every
expected field (the game played, arena, named with its module and bot;
bytes per snapshot full and delta, deltas smaller), and the HTML report
renders in headless Chromium with no console message and three or more
charts. Chromium is Debian's (installed by
scripts/install-deps.sh --test); where it is missing the HTML check is
skipped with a message, nothing else is.

First, 80 bots against a server on configs/skirmish.toml (what `make run`
starts: 64 connections per address): the load tester prints the Error codes
the bots got by code (TooManyConnections for the 16 or more refused) and
names configs/loadtest.toml.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

from ltsupport import fail, start_server, stop_server

BOTS = 200
DURATION_S = 10
CAPPED_BOTS = 80  # more than configs/skirmish.toml's 64 per address
GAME = "arena"  # configs/loadtest.toml's [game] module


def check_json(path):
    with open(path) as f:
        rep = json.load(f)
    for key in ("tool", "started_at", "elapsed_s", "options", "machine", "server", "total", "steady", "series",
                "slo", "error_rate", "loadtest_cpu_cores"):
        if key not in rep:
            fail(f"report has no '{key}'")
    if rep["options"]["bots"] != BOTS:
        fail(f"options.bots = {rep['options']['bots']}")
    for key in ("hostname", "kernel", "cpus", "mem_total_kib"):
        if key not in rep["machine"]:
            fail(f"machine has no '{key}'")
    if not rep["server"]["version"]:
        fail("server.version is empty (Welcome carries it)")
    total = rep["total"]
    for metric in ("connect_to_welcome", "ping_rtt", "queue_to_match_found", "input_to_snapshot"):
        h = total["latency_ms"][metric]
        for q in ("count", "p50", "p90", "p99", "max"):
            if q not in h:
                fail(f"total.latency_ms.{metric} has no '{q}'")
    lat = total["latency_ms"]
    if lat["connect_to_welcome"]["count"] != BOTS:
        fail(f"{lat['connect_to_welcome']['count']} Welcomes for {BOTS} bots")
    if total["matches_found"] < BOTS:
        fail(f"only {total['matches_found']} MatchFound for {BOTS} bots")
    if lat["input_to_snapshot"]["count"] < BOTS * 30:
        fail(f"only {lat['input_to_snapshot']['count']} input->snapshot samples")
    if total["errors_total"] != 0 or total["connect_failures"] != 0 or total["drops"] != 0:
        fail(f"errors {total['errors']} failed connects {total['connect_failures']} drops {total['drops']}")
    games = rep["games"]
    if len(games) != 1 or games[0]["name"] != GAME or not games[0]["loaded"] or not games[0]["bot_input"]:
        fail(f"games {games}: expected the one game {GAME}, loaded here, played by its bot_input")
    if not games[0]["module_path"].endswith(f"/{GAME}.so") or games[0]["module_version"] != games[0]["server_version"]:
        fail(f"game module {games[0]}: not {GAME}.so of the server's version")
    if total["matches_without_bot"] != 0:
        fail(f"{total['matches_without_bot']} matches without a bot")
    snap = total["snapshot_bytes"]
    full, delta = snap["full"], snap["delta"]
    if full["count"] < BOTS or delta["count"] < BOTS * 30 or snap["bad_delta"] != 0:
        fail(f"snapshot_bytes {snap}: expected a full view per bot and match, then deltas, none bad")
    if not 0 < delta["mean"] < full["mean"] or full["count"] + delta["count"] > total["snapshots"] + BOTS:
        fail(f"snapshot_bytes {snap} against {total['snapshots']} snapshots: deltas not smaller than full views")
    series = rep["series"]
    if len(series) < DURATION_S - 1:
        fail(f"{len(series)} samples for {DURATION_S} s")
    if max(s["in_match"] for s in series) != BOTS:
        fail(f"never all {BOTS} bots in a match at once: {[s['in_match'] for s in series]}")
    for s in series:
        for key in ("t", "connected", "queued", "in_match", "frames_in", "frames_out", "input_to_snapshot_ms"):
            if key not in s:
                fail(f"series sample has no '{key}'")
    if not rep["slo"]["passed"]:
        fail(f"SLO failures: {rep['slo']['failures']}")
    print(f"ok   JSON report: {BOTS} bots, {total['matches_found']} matches of {GAME} found, input->snapshot p99 "
          f"{lat['input_to_snapshot']['p99']:.1f} ms, bytes per snapshot full {full['mean']:.1f} delta "
          f"{delta['mean']:.1f}", flush=True)


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check_html(path):
    chromium = chromium_binary()
    if chromium is None:
        print("SKIP HTML report in Chromium: no chromium on this machine (scripts/install-deps.sh --test "
              "installs Debian's)", flush=True)
        return
    profile = tempfile.mkdtemp(prefix="skirmish-chromium-")
    try:
        run = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                              "--no-first-run", "--disable-background-networking", "--disable-component-update",
                              "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                              "--dump-dom", "file://" + os.path.abspath(path)],
                             capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if run.returncode != 0:
        fail(f"chromium exited {run.returncode}: {run.stderr[-2000:]}")
    console = [l for l in run.stderr.splitlines() if "CONSOLE" in l]
    if console:
        fail(f"console messages while loading the report: {console[:5]}")
    dom = run.stdout
    charts = dom.count("<svg")
    if charts < 3 or "polyline" not in dom:
        fail(f"{charts} charts in the rendered report")
    if "skirmish-loadtest" not in dom:
        fail("the rendered report has no title")
    print(f"ok   HTML report renders in Chromium with {charts} charts and no console message", flush=True)


def check_refusals_reported(opts):
    """make run's server (configs/skirmish.toml: 64 connections per address)
    against more bots than that: the load tester names the Error codes the
    bots got, with counts, and points at configs/loadtest.toml."""
    server, port = start_server(opts.server, opts.default_config, f"lttest-cap-{os.getpid()}")
    try:
        bots = CAPPED_BOTS
        run = subprocess.run([opts.loadtest, "--target", f"127.0.0.1:{port}", "--bots", str(bots),
                              "--duration", "3", "--ramp", "400", "--warmup", "1"],
                             capture_output=True, text=True, timeout=60)
    finally:
        rc = stop_server(server)
    out = run.stdout
    m = re.search(r"(?m)^errors by code:.*\bTooManyConnections (\d+)", out)
    if not m:
        fail(f"no 'errors by code: ... TooManyConnections N' line after {bots} bots against a 64-per-address "
             f"server:\n{out[-2000:]}")
    if int(m.group(1)) < bots - 64:
        fail(f"TooManyConnections {m.group(1)}, expected at least {bots - 64}")
    if "configs/loadtest.toml" not in out or "max_connections_per_ip" not in out:
        fail(f"the refusal hint does not name configs/loadtest.toml and the key:\n{out[-2000:]}")
    if rc != 0:
        fail(f"server exited with {rc} after SIGTERM")
    print(f"ok   {bots} bots against configs/skirmish.toml: '{m.group(0)}' and the hint naming "
          "configs/loadtest.toml", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--loadtest", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--default-config", required=True, help="configs/skirmish.toml (what make run uses)")
    opts = ap.parse_args()
    check_refusals_reported(opts)
    tmp = tempfile.mkdtemp(prefix="skirmish-lt-")
    shm_name = f"lttest-{os.getpid()}"
    server, port = start_server(opts.server, opts.config, shm_name)
    try:
        report = os.path.join(tmp, "report")
        run = subprocess.run([opts.loadtest, "--target", f"127.0.0.1:{port}", "--bots", str(BOTS),
                              "--duration", str(DURATION_S), "--ramp", "400", "--warmup", "3",
                              "--max-error-rate", "0", "--server-pid", str(server.pid), "--report", report],
                             capture_output=True, text=True, timeout=DURATION_S + 60)
        print(run.stdout, flush=True)
        if run.returncode != 0:
            fail(f"skirmish-loadtest exited {run.returncode}: {run.stderr[-2000:]}")
        if not re.search(rf"(?m)^game: +{GAME} \S+ \(.*{GAME}\.so\): inputs from its bot_input", run.stdout):
            fail(f"no 'game: {GAME} VERSION (...{GAME}.so): inputs from its bot_input' line in the output")
        if not re.search(r"(?m)^snapshots: +full \d+, mean [\d.]+ bytes; delta \d+, mean [\d.]+ bytes", run.stdout):
            fail("no 'snapshots: full N, mean B bytes; delta N, mean B bytes' line in the output")
        check_json(report + ".json")
        check_html(report + ".html")
    finally:
        rc = stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        fail(f"server exited with {rc} after SIGTERM")
    print("ok   loadtest_short", flush=True)


if __name__ == "__main__":
    main()
