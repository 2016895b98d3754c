#!/usr/bin/python3
"""ctest agones_sdk: the server speaks the Agones SDK REST API to a stand-in sidecar.

No real Agones (a Kubernetes cluster with its SDK sidecar) can run on the
build machines, so this stand-in is a small HTTP server (Python's stdlib)
that follows Agones' documented REST API
(https://agones.dev/site/docs/guides/client-sdks/rest/): POST /ready,
POST /health, POST /shutdown with body {}, and PATCH
/v1beta1/counters/players with {"count", "capacity"}; it answers 200 "{}"
and records every call. The real skirmish-server is started with
AGONES_SDK_HTTP_PORT pointing at it, as Agones sets it in the pod.

1. A stand-in that answers: /ready arrives once, and when it does every
   worker is up (the stand-in asks the server's own /status from inside the
   /ready handler); two or more /health follow at about
   agones.health_interval_ms; the players Counter follows a connected
   client; SIGTERM drains, and /shutdown arrives after every child has
   exited (no /proc entry left), last of all calls; the server exits 0.
2. A stand-in that is down (nothing listens on its port) and 3. one that
   accepts and never answers: the server still serves (Hello -> Welcome,
   Ping -> Pong, /readyz) well within a second, logs the failures, and
   still exits 0 on SIGTERM within the drain plus one request timeout.
"""

import argparse
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "client", "python")
LISTEN_RE = re.compile(r"\] info: (admin )?listening on [^ \n]+:(\d+)\n")
HEALTH_MS = 200
TIMEOUT_MS = 150
# The answering stand-in asks the server's /status inside its /ready
# handler, which takes longer than 150 ms under a sanitizer on a busy
# machine: give that run's calls more time.
ANSWERING_TIMEOUT_MS = 1000
READY_ANSWER_DELAY_S = 0.3  # > the server's 100 ms poll, < the call timeout
WORKERS = 2


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def need(cond, msg):
    if not cond:
        fail(msg)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    fail(f"timed out after {timeout} s waiting for {what}")


class StandIn:
    """The Agones SDK sidecar's REST API, as documented; records each call."""

    def __init__(self, on_ready=None):
        self.calls = []  # (monotonic time, method, path, body as parsed JSON)
        self.lock = threading.Lock()
        self.on_ready = on_ready
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_call(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = ("unparsable", raw)
                extra = outer.on_ready() if self.path == "/ready" and outer.on_ready else None
                with outer.lock:
                    outer.calls.append((time.monotonic(), self.command, self.path, body,
                                        self.headers.get("Content-Type"), extra))
                out = b"{}"
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server gave up on this call (its timeout): it counts and retries

            do_POST = do_PATCH = do_PUT = handle_call

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def paths(self):
        with self.lock:
            return [c[2] for c in self.calls]

    def of(self, path):
        with self.lock:
            return [c for c in self.calls if c[2] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Server:
    def __init__(self, binary, config, sdk_port, name):
        env = dict(os.environ, AGONES_SDK_HTTP_PORT=str(sdk_port))
        self.proc = subprocess.Popen(
            [binary, "--config", config, "--port", "0", "--admin-port", "0", "--workers", str(WORKERS),
             "--shm-name", f"agones-{name}-{os.getpid()}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.log_lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        ports = wait_for(self._ports, 15, "the server's listening lines")
        self.game, self.admin = ports

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            with self.lock:
                self.log_lines.append(line.decode("utf-8", "replace"))

    def log(self):
        with self.lock:
            return "".join(self.log_lines)

    def _ports(self):
        if self.proc.poll() is not None:
            fail(f"server exited {self.proc.returncode}: {self.log()[-2000:]}")
        found = {("admin" if m.group(1) else "game"): int(m.group(2)) for m in LISTEN_RE.finditer(self.log())}
        return (found["game"], found["admin"]) if len(found) == 2 else None

    def get(self, target, timeout=2.0):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{target}", timeout=timeout) as r:
            return r.status, r.read().decode()

    def status(self):
        return json.loads(self.get("/status")[1])

    def stop(self, timeout):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail(f"server did not exit within {timeout} s of SIGTERM: {self.log()[-2000:]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def serves(sk, srv, what):
    """Hello -> Welcome, Ping -> Pong and /readyz, each well within a second."""
    t0 = time.monotonic()
    code, _ = srv.get("/readyz", timeout=1.0)
    need(code == 200, f"{what}: /readyz answered {code}")
    with sk.connect("127.0.0.1", srv.game, timeout=1.0) as c:
        c.hello("agones-test")
        c.ping(7)
    took = time.monotonic() - t0
    need(took < 1.0, f"{what}: serving took {took:.3f} s")
    return took


def test_answering(sk, binary, config):
    health_ms = ANSWERING_TIMEOUT_MS
    srv_box = {}

    def workers_at_ready():
        # Runs inside the /ready handler: the server is waiting for this
        # answer, and its loop must still serve /status meanwhile.
        st = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{srv_box['s'].admin}/status", timeout=2).read())
        # A sidecar that takes its time with the answer (well within the
        # call's timeout): the server's poll runs meanwhile and must not
        # queue a second Ready behind the one in flight.
        time.sleep(READY_ANSWER_DELAY_S)
        return [p["state"] for p in st["processes"] if p["role"] == "worker" and p["state"] != "down"]

    sdk = StandIn(on_ready=workers_at_ready)
    srv = None
    try:
        srv = Server(binary, config, sdk.port, "ok")
        srv_box["s"] = srv
        wait_for(lambda: sdk.of("/ready"), 10, "POST /ready")
        t_ready, method, _, body, ctype, states = sdk.of("/ready")[0]
        need(method == "POST" and body == {} and ctype == "application/json", f"/ready call: {method} {body} {ctype}")
        need(all(c[5] == ["up"] * WORKERS for c in sdk.of("/ready")),
             f"/ready came before every worker was up: {[c[5] for c in sdk.of('/ready')]}")
        print(f"ok   POST /ready once every worker was up ({states})", flush=True)

        wait_for(lambda: len([c for c in sdk.of("/health") if c[0] > t_ready]) >= 2, 10, "two POST /health")
        hs = [c[0] for c in sdk.of("/health")]
        gaps = [b - a for a, b in zip(hs, hs[1:])]
        need(all(g < 3 * health_ms / 1000 for g in gaps), f"health pings spaced {gaps}")
        need(all(c[1] == "POST" and c[3] == {} for c in sdk.of("/health")), "health calls are POST {}")
        print(f"ok   {len(hs)} POST /health, gaps {min(gaps):.3f}..{max(gaps):.3f} s "
              f"(agones.health_interval_ms = {health_ms})", flush=True)

        def counter_says(n):
            return [c for c in sdk.of("/v1beta1/counters/players") if c[1] == "PATCH"
                    and isinstance(c[3], dict) and c[3].get("count") == str(n)]
        wait_for(lambda: counter_says(0), 10, "the players Counter at 0")
        with sk.connect("127.0.0.1", srv.game, timeout=2.0) as c:
            c.hello("counted")
            wait_for(lambda: counter_says(1), 10, "the players Counter at 1 with a client connected")
        wait_for(lambda: len(counter_says(0)) >= 2, 10, "the players Counter back at 0")
        cap = counter_says(1)[0][3].get("capacity")
        need(cap == "10000", f"Counter capacity {cap} (limits.max_players)")
        print("ok   PATCH /v1beta1/counters/players follows a client: 0, 1, 0 (capacity 10000)", flush=True)

        # Once accepted, never again (a call the server timed out on is
        # retried, which Agones takes as the same Ready).
        need(srv.log().count("agones: Ready accepted") == 1,
             "Ready accepted more than once, or never: " + "".join(l for l in srv.log_lines if "agones" in l))
        n_ready = len(sdk.of("/ready"))
        need(n_ready == 1 or "agones: Ready to 127.0.0.1" in srv.log(),  # a timed-out one is retried
             f"/ready sent {n_ready} times without a failure that explains it")
        children = [p["pid"] for p in srv.status()["processes"] if p["role"] != "master" and p["pid"] > 0]
        need(len(children) == WORKERS + 1, f"children {children}")
        rc = srv.stop(timeout=40)
        need(rc == 0, f"server exited {rc} after SIGTERM")
        shut = sdk.of("/shutdown")
        need(len(shut) == 1 and shut[0][1] == "POST" and shut[0][3] == {}, f"/shutdown calls: {shut}")
        need(sdk.paths()[-1] == "/shutdown", f"calls after /shutdown: {sdk.paths()[-3:]}")
        need("agones: Shutdown accepted" in srv.log(), "no 'Shutdown accepted' in the log")
        # Each child's exit was logged before the call went out: the drain ended.
        log = srv.log()
        at = log.index("agones: Shutdown accepted")
        for pid in children:
            m = re.search(rf"\(pid {pid}\) exited with status 0", log)
            need(m and m.start() < at, f"child {pid} not reaped before /shutdown")
        print("ok   SIGTERM: every child exited, then POST /shutdown, the last call; exit 0", flush=True)
    finally:
        if srv:
            srv.kill()
        sdk.close()


def test_unreachable(sk, binary, config, kind):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    accepted = []
    if kind == "down":
        holder.close()  # nothing listens: every call is refused
    else:
        holder.listen(16)  # accepts (the kernel does) and never answers

        def hold():
            holder.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(holder.accept()[0])
                except OSError:
                    pass
        stop = threading.Event()
        threading.Thread(target=hold, daemon=True).start()
    srv = None
    try:
        srv = Server(binary, config, port, kind)
        want = "connection refused" if kind == "down" else "no answer in time"
        wait_for(lambda: re.search(r"agones: \w+ to 127\.0\.0\.1:\d+ failed: " + want, srv.log()), 10,
                 f"a logged failure ({want})")
        worst = max(serves(sk, srv, f"SDK server {kind}") for _ in range(5))
        fails = len(re.findall(r"agones: .* failed", srv.log()))
        t0 = time.monotonic()
        rc = srv.stop(timeout=40)
        took = time.monotonic() - t0
        need(rc == 0, f"server exited {rc} after SIGTERM with the SDK server {kind}")
        need(took < 5, f"drain with the SDK server {kind} took {took:.1f} s")
        print(f"ok   SDK server {kind}: served in at most {worst * 1000:.0f} ms, {fails} rate-limited failure "
              f"lines, SIGTERM exit 0 in {took:.2f} s", flush=True)
    finally:
        if srv:
            srv.kill()
        if kind != "down":
            stop.set()
            for s in accepted:
                s.close()
            holder.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--flatc", required=True)
    ap.add_argument("--schema", required=True)
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="skirmish-agones-")
    gen = subprocess.run([opts.flatc, "--python", "-o", tmp, opts.schema], capture_output=True, text=True, timeout=60)
    need(gen.returncode == 0, f"flatc --python failed: {gen.stderr}")
    sys.path.insert(0, CLIENT_DIR)
    import skirmish_client as sk
    sk.use_generated(tmp)
    sk.proto()
    config = os.path.join(tmp, "agones.toml")
    with open(config, "w") as f:
        f.write(f"[agones]\nhealth_interval_ms = {HEALTH_MS}\nrequest_timeout_ms = {TIMEOUT_MS}\n")
    try:
        answering = os.path.join(tmp, "answering.toml")
        with open(answering, "w") as f:
            f.write(f"[agones]\nhealth_interval_ms = {ANSWERING_TIMEOUT_MS}\n"
                    f"request_timeout_ms = {ANSWERING_TIMEOUT_MS}\n")
        test_answering(sk, opts.server, answering)
        test_unreachable(sk, opts.server, config, "down")
        test_unreachable(sk, opts.server, config, "slow")
    finally:
        subprocess.run(["rm", "-rf", tmp])
    print("ok   agones_sdk", flush=True)


if __name__ == "__main__":
    main()
