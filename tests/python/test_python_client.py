#!/usr/bin/python3
"""ctest python_client: the wire format from a second language.

Generates the Python message classes with flatc into a temporary directory,
starts the real skirmish-server on port 0, and drives it with
client/python/skirmish_client.py: Hello -> Welcome, Ping -> Pong, a version
mismatch, the handshake frame cap, a frame built with Finish plus a
hand-packed length prefix, and ServerShutdown on SIGTERM. The server must
exit 0 within 10 s of SIGTERM; it is killed by pid if it is still alive at
the end, and its log must hold no sanitizer report (ASan/UBSan builds).

Every wait has a deadline; nothing sleeps for a fixed time. Prints one line
per check and `N passed, M failed` last; exits non-zero on any failure.

Runs under /usr/bin/python3 (Debian's python3-flatbuffers is seen only by it).
"""

import argparse
import os
import pathlib
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback

HERE = pathlib.Path(__file__).resolve().parent
CLIENT_DIR = HERE.parent.parent / "client" / "python"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
EXIT_TIMEOUT_S = 10.0
# Game listener line; the admin line reads "... info: admin listening on ...".
LISTEN_RE = re.compile(r"\] info: listening on [^ \n]+:(\d+)$", re.MULTILINE)


class Server:
    """The server process, its merged stdout/stderr read by a thread so the
    pipe never fills and the log can be awaited."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._log = []
        self._eof = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self._log.append(line.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def log(self):
        with self._cond:
            return "".join(self._log)

    def wait_log(self, regex, timeout):
        """The first match of `regex` in the log, or None once the deadline
        passes or the server closed its output (exited)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = regex.search("".join(self._log))
                if m or self._eof:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def alive(self):
        return self.proc.poll() is None


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # a failed check must not stop the others
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=3, file=sys.stdout)
            return False
        self.passed += 1
        print(f"PASS {name}", flush=True)
        return True


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- the checks ----

def check_hello_welcome(sk, port, tick_rate_hz):
    p = sk.proto()
    with sk.connect(HOST, port) as a, sk.connect(HOST, port) as b:
        wa = a.hello("ann")
        wb = b.hello("bob")
    expect(wa["protocol_version"] == p.ProtocolVersion.Current,
           f"protocol_version {wa['protocol_version']}, want {p.ProtocolVersion.Current}")
    expect(any(wa["token"]), "session token is zero")
    expect(wa["token"] != wb["token"], "two sessions got the same token")
    expect(wa["player_id"] != wb["player_id"], "two sessions got the same player_id")
    expect(wa["tick_rate_hz"] == tick_rate_hz,
           f"tick_rate_hz {wa['tick_rate_hz']}, config says {tick_rate_hz}")
    expect(not wa["resumed"], "a fresh Hello is marked resumed")


def check_ping_pong(sk, port):
    with sk.connect(HOST, port) as c:
        # Ping is allowed before Welcome as well as after it.
        for phase in ("before Hello", "after Welcome"):
            c.send_ping(0xDEADBEEF, client_time_us=123456)
            kind, pong = c.recv_message()
            expect(kind == "Pong", f"{phase}: got {kind}, want Pong")
            expect(pong.Nonce() == 0xDEADBEEF, f"{phase}: nonce {pong.Nonce():#x} not echoed")
            expect(pong.ClientTimeUs() == 123456, f"{phase}: client_time_us {pong.ClientTimeUs()} not echoed")
            if phase == "before Hello":
                c.hello("ann")
        rtt = c.ping(7)
        expect(0 <= rtt < 5, f"rtt {rtt}")


def expect_fatal_error_then_eof(sk, c, code_name, send):
    p = sk.proto()
    want = getattr(p.ErrorCode, code_name)
    try:
        send()
        kind, msg = c.recv_message()
    except sk.ServerError as e:  # hello() raises what recv_message would return
        kind, code, fatal = "Error", e.code, e.fatal
    else:
        expect(kind == "Error", f"got {kind}, want Error")
        code, fatal = msg.Code(), bool(msg.Fatal())
    expect(code == want, f"Error code {p.error_code_names.get(code, code)}, want {code_name}")
    expect(fatal, "Error is not marked fatal")
    try:
        kind, _ = c.recv_message()
    except sk.ConnectionClosed:
        return
    raise AssertionError(f"got {kind} after a fatal Error, want EOF")


def check_version_mismatch(sk, port):
    with sk.connect(HOST, port) as c:
        expect_fatal_error_then_eof(sk, c, "VersionMismatch",
                                    lambda: c.hello("ann", protocol_version=2))


def check_handshake_frame_cap(sk, port, cap):
    # The length is judged before any body byte is sent or buffered.
    with sk.connect(HOST, port) as c:
        expect_fatal_error_then_eof(sk, c, "FrameTooLarge",
                                    lambda: c.send_frame(struct.pack("<I", cap + 1)))


def check_manual_prefix(sk, port):
    prefixed = sk.encode_hello("cy")
    manual = sk.encode_hello("cy", manual_prefix=True)
    expect(manual == prefixed,
           f"Finish + own prefix differs from FinishSizePrefixed:\n  {manual.hex()}\n  {prefixed.hex()}")
    (n,) = struct.unpack_from("<I", manual)
    expect(n == len(manual) - 4, f"length header {n}, body is {len(manual) - 4} bytes")
    expect(manual[8:12] == b"SKRM", "file identifier not at body offset 4")
    with sk.connect(HOST, port) as c:
        c.send_frame(manual)
        kind, _ = c.recv_message()
        expect(kind == "Welcome", f"got {kind}, want Welcome")


def check_sigterm(sk, server, port):
    c = sk.connect(HOST, port)
    try:
        c.hello("dee")
        server.proc.send_signal(signal.SIGTERM)
        kind, msg = c.recv_message(timeout=EXIT_TIMEOUT_S)
        expect(kind == "ServerShutdown", f"got {kind}, want ServerShutdown")
        try:
            kind, _ = c.recv_message(timeout=EXIT_TIMEOUT_S)
            raise AssertionError(f"got {kind} after ServerShutdown, want EOF")
        except sk.ConnectionClosed:
            pass
    finally:
        c.close()
    try:
        rc = server.proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"server still running {EXIT_TIMEOUT_S:.0f} s after SIGTERM")
    expect(rc == 0, f"server exited with {rc}, want 0")


SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: "
                          r"|UndefinedBehaviorSanitizer")


def check_no_sanitizer_report(log):
    m = SANITIZER_RE.search(log)
    expect(m is None, f"sanitizer output in the server log: {m and log[m.start():m.start() + 200]!r}")


# ---- main ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="skirmish-server binary")
    ap.add_argument("--flatc", required=True, help="flatc binary")
    ap.add_argument("--schema", required=True, help="protocol/skirmish.fbs")
    ap.add_argument("--config", required=True, help="configs/skirmish.toml")
    opts = ap.parse_args()

    checks = Checks()
    tmp = tempfile.mkdtemp(prefix="skirmish-py-")
    shm_name = f"pytest-{os.getpid()}"
    server = None
    try:
        gen = subprocess.run([opts.flatc, "--python", "-o", tmp, opts.schema],
                             capture_output=True, text=True, timeout=60)
        if gen.returncode != 0:
            raise RuntimeError(f"flatc --python failed ({gen.returncode}): {gen.stderr.strip()}")
        sys.dont_write_bytecode = True  # no __pycache__ in the source tree
        sys.path.insert(0, str(CLIENT_DIR))
        import skirmish_client as sk
        sk.use_generated(tmp)
        sk.proto()  # fail here, once, if the generated code or runtime is missing

        with open(opts.config, "rb") as f:
            cfg = tomllib.load(f)

        server = Server([opts.server, "--config", opts.config, "--port", "0",
                         "--admin-port", "0", "--shm-name", shm_name])
        m = server.wait_log(LISTEN_RE, READY_TIMEOUT_S)
        if m is None:
            rc = server.proc.poll()
            raise RuntimeError(f"no 'listening on' line within {READY_TIMEOUT_S:.0f} s" if rc is None
                               else f"server exited with {rc} before listening")
        port = int(m.group(1))
        print(f"server pid {server.proc.pid} listening on {HOST}:{port}", flush=True)

        checks.run("Hello gets Welcome with a token and the protocol version",
                   check_hello_welcome, sk, port, cfg.get("game", {}).get("tick_rate_hz", 30))
        checks.run("Ping gets Pong with nonce and client time echoed", check_ping_pong, sk, port)
        checks.run("a version mismatch gets Error VersionMismatch, then EOF",
                   check_version_mismatch, sk, port)
        checks.run("a frame over the handshake cap gets Error FrameTooLarge, then EOF",
                   check_handshake_frame_cap, sk, port,
                   cfg.get("limits", {}).get("max_frame_bytes_handshake", 256))
        checks.run("Finish + own length prefix is the same frame and is accepted",
                   check_manual_prefix, sk, port)
        if server.alive():
            checks.run("SIGTERM sends ServerShutdown, closes, and the server exits 0",
                       check_sigterm, sk, server, port)
        else:
            checks.run("server still running before SIGTERM", lambda: expect(False, "it died"))
    except Exception as e:
        checks.failed += 1
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
    finally:
        if server is not None:
            if server.alive():
                server.proc.kill()
            server.proc.wait()
            server._reader.join(timeout=5)
            checks.run("the server log holds no sanitizer report", check_no_sanitizer_report, server.log())
            if checks.failed:
                print("---- server log ----\n" + server.log(), end="", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            os.unlink(f"/dev/shm/{shm_name}")  # left behind only if it had to be killed
        except OSError:
            pass

    print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
