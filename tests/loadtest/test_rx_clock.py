#!/usr/bin/python3
"""ctest loadtest_rx_clock: the kernel receive clock agrees with the read time at low load.

skirmish-loadtest can date a snapshot's arrival by the kernel's software RX
timestamp (SO_TIMESTAMPING) instead of the moment a bot read it; reading at
the input phase slots (the default of the open model) depends on it. Against
one real skirmish-server (configs/loadtest.toml, port 0, its own shm name),
8 bots at --rate 30 for 10 s each:

1. Reading on readability through the epoll set (--read-at-slots=false
   --rx-clock kernel): the load tester records every input->snapshot sample
   twice, by the kernel time and by the read time. At low load a readable
   socket is read at once, so the two p50s must agree: within 3 ms or 20 %
   of the read-time p50, whichever is larger. The bound is what a loaded CI
   machine may add between a wake-up and the read; it fails when the
   timestamp is of the wrong clock or unconverted (off by seconds), stale (a
   previous read's: a tick, 33 ms, early), or missing. These are the very
   same samples, so the two figures differ by the read delay only. (Two
   separate runs are not compared: each match has its own tick phase
   against the bots' send slots, so with 8 bots the p50 of one run differs
   from the next by up to ~8 ms whatever the clock.)
2. Reading at the slots (the default with --rate): the kernel clock is
   used, every read after the warm-up carried a timestamp, none is later than its
   read, no latency sample is negative, and the read-time figure (what the
   old clock would say now that reads wait for a slot) is not below it.
3. Reading on readability with libuv and the read clock (today's path,
   --read-at-slots=false): still works, says "read".

In every run: exit code 0 with an error SLO of zero, and the receive clock
named in the printed summary and in the JSON report.
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import shutil

from ltsupport import fail, start_server, stop_server

BOTS = 8
RATE = 30
DURATION_S = 10
WARMUP_S = 2
MIN_SAMPLES = BOTS * RATE * (DURATION_S - WARMUP_S - 2)  # the run's steady part, less slack


def run_loadtest(opts, port, tmp, name, extra):
    report = os.path.join(tmp, name)
    cmd = [opts.loadtest, "--target", f"127.0.0.1:{port}", "--bots", str(BOTS), "--rate", str(RATE),
           "--duration", str(DURATION_S), "--warmup", str(WARMUP_S), "--max-error-rate", "0",
           "--report", report] + extra
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=DURATION_S + 60)
    if run.returncode != 0:
        fail(f"{name}: skirmish-loadtest exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
    with open(report + ".json") as f:
        rep = json.load(f)
    line = re.search(r"(?m)^receive clock: +(.*)$", run.stdout)
    if not line:
        fail(f"{name}: no 'receive clock:' line in the summary:\n{run.stdout[-2000:]}")
    return rep, line.group(1)


def check_kernel_invariants(name, rep):
    st = rep["steady"]
    lat = st["latency_ms"]
    n = lat["input_to_snapshot"]["count"]
    if n < MIN_SAMPLES:
        fail(f"{name}: {n} input->snapshot samples, expected at least {MIN_SAMPLES}")
    if lat["input_to_snapshot_read_clock"]["count"] != n:
        fail(f"{name}: {lat['input_to_snapshot_read_clock']['count']} read-clock samples for {n} kernel ones")
    tot = rep["total"]
    # After the warm-up: the kernel turns RX timestamping on from a work
    # queue at the first such socket, so a first read may come without one.
    if st["reads"] == 0 or st["reads_without_rx_time"] != 0:
        fail(f"{name}: {st['reads_without_rx_time']} of {st['reads']} reads after the warm-up came without a "
             f"kernel timestamp")
    if tot["rx_after_read"] != 0:
        fail(f"{name}: {tot['rx_after_read']} kernel receive times later than their read")
    if tot["latency_negative"] != 0 or lat["input_to_snapshot"]["min"] < 0:
        fail(f"{name}: {tot['latency_negative']} negative latency samples (min {lat['input_to_snapshot']['min']})")
    if lat["read_delay"]["count"] == 0 or lat["read_delay"]["min"] < 0:
        fail(f"{name}: read delay {lat['read_delay']}")
    return lat


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--loadtest", required=True)
    ap.add_argument("--config", required=True)
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="skirmish-rx-")
    server, port = start_server(opts.server, opts.config, f"lt-rx-{os.getpid()}")
    try:
        # 1. The same samples by both clocks, read on readability.
        rep, line = run_loadtest(opts, port, tmp, "readable", ["--read-at-slots=false", "--rx-clock", "kernel"])
        if rep["rx_clock"] != "kernel" or rep["options"]["read_mode"] != "readable-epoll" or \
                not line.startswith("kernel RX timestamps"):
            fail(f"readable: clock {rep['rx_clock']} mode {rep['options']['read_mode']}: '{line}'")
        lat = check_kernel_invariants("readable", rep)
        k50 = lat["input_to_snapshot"]["p50"]
        r50 = lat["input_to_snapshot_read_clock"]["p50"]
        bound = max(3.0, 0.2 * r50)
        if abs(k50 - r50) > bound:
            fail(f"readable: p50 by the kernel clock {k50:.2f} ms, by the read time {r50:.2f} ms: more than "
                 f"{bound:.2f} ms apart")
        print(f"ok   on readability: input->snapshot p50 {k50:.2f} ms by the kernel clock, {r50:.2f} ms by the "
              f"read time (bound {bound:.2f} ms); read delay p50 {lat['read_delay']['p50']:.3f} ms", flush=True)

        # 2. At the slots (the open model's default): the kernel clock, exact.
        rep, line = run_loadtest(opts, port, tmp, "slots", [])
        if rep["rx_clock"] != "kernel" or rep["options"]["read_mode"] != "slots-all" or \
                "at the input phase slots" not in line:
            fail(f"slots: clock {rep['rx_clock']} mode {rep['options']['read_mode']}: '{line}'")
        lat = check_kernel_invariants("slots", rep)
        k50 = lat["input_to_snapshot"]["p50"]
        r50 = lat["input_to_snapshot_read_clock"]["p50"]
        if r50 < k50:
            fail(f"slots: the read-time p50 {r50:.2f} ms is below the kernel one {k50:.2f} ms")
        tot = rep["total"]
        print(f"ok   at the slots: p50 {k50:.2f} ms by the kernel clock ({r50:.2f} ms by the read time), "
              f"{tot['reads_multi_snapshot']} of {tot['reads']} reads with more than one snapshot", flush=True)

        # 3. Today's path: libuv reads on readability, the read time.
        rep, line = run_loadtest(opts, port, tmp, "libuv", ["--read-at-slots=false"])
        if rep["rx_clock"] != "read" or rep["options"]["read_mode"] != "readable-libuv" or \
                not line.startswith("read time"):
            fail(f"libuv: clock {rep['rx_clock']} mode {rep['options']['read_mode']}: '{line}'")
        if rep["steady"]["latency_ms"]["input_to_snapshot"]["count"] < MIN_SAMPLES:
            fail(f"libuv: {rep['steady']['latency_ms']['input_to_snapshot']['count']} samples")
        if rep["steady"]["latency_ms"]["input_to_snapshot_read_clock"]["count"] != 0:
            fail("libuv: read-clock duplicates recorded without the kernel clock")
        print(f"ok   on readability (libuv, read time): p50 "
              f"{rep['steady']['latency_ms']['input_to_snapshot']['p50']:.2f} ms", flush=True)
    finally:
        rc = stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        fail(f"server exited with {rc} after SIGTERM")
    print("ok   loadtest_rx_clock", flush=True)


if __name__ == "__main__":
    main()
