#!/usr/bin/python3
"""Soak: a server under bots with churn for a long time, sampled every 10 s.

Not a test (it runs for half an hour): it prints figures and a verdict.

    scripts/soak.py                         # 1,000 bots, 30 min, 20 % of them leave and rejoin per minute
    scripts/soak.py --bots 200 --minutes 2  # a quick look

Starts build/server/skirmish-server on configs/loadtest.toml (a free port, its
own shm name) and build/loadtest/skirmish-loadtest with --churn against it.
Every 10 s it samples the server's process tree from /proc (RSS and PSS in
KiB, open file descriptors, processes) and its /metrics (open connections,
players/tickets/matches rows in use, respawns) into a CSV; at the end it
joins the load test's per-second input->snapshot p99 (the worst second of
each 10 s window) and checks for growth after the warm-up: the last third's
mean private memory (PSS of anonymous pages), fds and player rows against
the second third's, within 5 % (plus a small absolute slack), and no
respawn. The shared segment's touched pages are reported, not judged: free
rows are handed out FIFO, so they grow until every row has been used once.
"""

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def tree(pid):
    """pid and its descendants, from /proc/<pid>/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def proc_sample(pid):
    """RSS, PSS, PSS of private memory (heap, stacks), PSS of the shared
    segment, open fds and processes of the server's tree, KiB."""
    rss = pss = anon = shmem = fds = n = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key == "Rss":
                        rss += int(rest.split()[0])
                    elif key == "Pss":
                        pss += int(rest.split()[0])
                    elif key == "Pss_Anon":
                        anon += int(rest.split()[0])
                    elif key == "Pss_Shmem":
                        shmem += int(rest.split()[0])
            fds += len(os.listdir(f"/proc/{p}/fd"))
            n += 1
        except OSError:
            pass
    return rss, pss, anon, shmem, fds, n


def metrics(admin_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).read().decode()
    vals = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, _, value = line.rpartition(" ")
        vals[name] = float(value)
    conns = sum(v for k, v in vals.items() if k.startswith("skirmish_connections_open{"))
    respawns = sum(v for k, v in vals.items() if k.startswith("skirmish_process_respawns_total{"))
    rows = {t: vals.get(f'skirmish_table_rows{{table="{t}"}}', -1) for t in ("players", "tickets", "matches")}
    return conns, rows, respawns


def main():
    # SIGTERM stops the soak like Ctrl-C: the finally below stops the server.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--bots", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--churn", type=float, default=0.2, help="share of the bots leaving and rejoining per minute")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=f"/tmp/skirmish-soak-{int(time.time())}")
    opts = ap.parse_args()
    server = os.path.join(opts.build, "server", "skirmish-server")
    loadtest = os.path.join(opts.build, "loadtest", "skirmish-loadtest")
    for b in (server, loadtest):
        if not os.access(b, os.X_OK):
            sys.exit(f"missing {b}: make build first")
    os.makedirs(opts.out, exist_ok=True)
    duration = int(opts.minutes * 60)

    log = open(os.path.join(opts.out, "server.log"), "wb")
    srv = subprocess.Popen([server, "--config", os.path.join(ROOT, "configs", "loadtest.toml"), "--port", "0",
                            "--admin-port", "0", "--shm-name", f"soak-{os.getpid()}"],
                           stdout=log, stderr=subprocess.STDOUT)
    port = admin = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not admin:
        time.sleep(0.1)
        text = open(os.path.join(opts.out, "server.log"), errors="replace").read()
        m1 = re.search(r"\] info: listening on [^ \n]+:(\d+)", text)
        m2 = re.search(r"admin listening on [^ \n]+:(\d+)", text)
        if m1 and m2:
            port, admin = int(m1.group(1)), int(m2.group(1))
    if not admin:
        srv.kill()
        sys.exit("server did not start; see " + log.name)
    lt_out = open(os.path.join(opts.out, "loadtest.txt"), "wb")
    report = os.path.join(opts.out, "report")
    lt = subprocess.Popen([loadtest, "--target", f"127.0.0.1:{port}", "--bots", str(opts.bots), "--duration",
                           str(duration), "--threads", str(opts.threads), "--churn", str(opts.churn), "--warmup",
                           "30", "--server-pid", str(srv.pid), "--report", report], stdout=lt_out,
                          stderr=subprocess.STDOUT)
    print(f"soak: server pid {srv.pid} on 127.0.0.1:{port}, {opts.bots} bots, {opts.minutes} min, "
          f"churn {opts.churn}/min; output in {opts.out}", flush=True)

    rows = []
    start = time.monotonic()
    try:
        next_t = start
        while lt.poll() is None and time.monotonic() - start < duration + 60:
            next_t += 10
            time.sleep(max(0.0, next_t - time.monotonic()))
            rss, pss, anon, shmem, fds, nproc = proc_sample(srv.pid)
            try:
                conns, tables, respawns = metrics(admin)
            except OSError:
                conns, tables, respawns = -1, {"players": -1, "tickets": -1, "matches": -1}, -1
            row = {"t_s": round(time.monotonic() - start), "rss_kib": rss, "pss_kib": pss,
                   "private_pss_kib": anon, "shm_pss_kib": shmem, "fds": fds,
                   "processes": nproc, "connections": int(conns), "players": int(tables["players"]),
                   "tickets": int(tables["tickets"]), "matches": int(tables["matches"]), "respawns": int(respawns)}
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        lt.wait(timeout=120)
    finally:
        if lt.poll() is None:
            lt.kill()
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()

    # Join the load test's per-second p99 (its series' t is seconds since its start).
    try:
        with open(report + ".json") as f:
            series = json.load(f)["series"]
    except (OSError, ValueError, KeyError):
        series = []
    for row in rows:
        window = [s["input_to_snapshot_ms"]["p99"] for s in series if row["t_s"] - 10 < s["t"] <= row["t_s"]]
        row["p99_ms"] = round(max(window), 1) if window else ""
    path = os.path.join(opts.out, "soak.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["t_s"])
        w.writeheader()
        w.writerows(rows)

    # Growth after warm-up: the last third against the second third.
    verdict = []
    n = len(rows)
    if n >= 6:
        mid, last = rows[n // 3: 2 * n // 3], rows[2 * n // 3:]
        # Private memory, not RSS: the slot tables hand out free rows FIFO
        # (a stale handle meets a reused row as late as possible), so the
        # segment's pages are touched one by one until every row has been
        # used once; that shared part grows up to the configured table
        # sizes and is reported, not judged.
        for key, slack in (("private_pss_kib", 2048), ("fds", 16), ("players", 50)):
            a = sum(r[key] for r in mid) / len(mid)
            b = sum(r[key] for r in last) / len(last)
            grew = b > a * 1.05 + slack
            verdict.append(f"{key}: {a:.0f} -> {b:.0f} ({'GROWS' if grew else 'flat'})")
        if rows[-1]["respawns"] > 0:
            verdict.append(f"respawns: {rows[-1]['respawns']} (a process died)")
    p99s = [r["p99_ms"] for r in rows if r.get("p99_ms") != ""]
    print(f"soak: {n} samples in {path}")
    if rows:
        print(f"soak: shared segment touched (PSS) {rows[0]['shm_pss_kib']} -> {rows[-1]['shm_pss_kib']} KiB, "
              f"RSS {rows[0]['rss_kib']} -> {rows[-1]['rss_kib']} KiB (bounded by the table sizes)")
    if p99s:
        print(f"soak: input->snapshot p99 per 10 s window: min {min(p99s)} ms, max {max(p99s)} ms")
    for v in verdict:
        print("soak: " + v)
    lt_text = open(os.path.join(opts.out, "loadtest.txt"), errors="replace").read()
    for line in lt_text.splitlines():
        if line.startswith(("input->snapshot", "frames in/out", "server:", "SLO")):
            print("loadtest: " + line)
    bad = any("GROWS" in v or "respawns" in v for v in verdict)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
