#!/usr/bin/python3
"""ctest python_client: the wire format from a second language.

Generates the Python message classes with flatc into a temporary directory,
starts the real skirmish-server on port 0, and drives it with
client/python/skirmish_client.py: Hello -> Welcome, Ping -> Pong, a v1
client (Error VersionMismatch and a close), the handshake frame cap, a
frame built with Finish plus a hand-packed length prefix, an arena match
played to its end over protocol v2 (inputs as the arena's bytes, views
decoded per games/arena/arena.h, deltas applied in Python), and
ServerShutdown on SIGTERM. The server must
exit 0 within 10 s of SIGTERM; it is killed by pid if it is still alive at
the end, and its log must hold no sanitizer report (ASan/UBSan builds).

Every wait has a deadline; nothing sleeps for a fixed time. Prints one line
per check and `N passed, M failed` last; exits non-zero on any failure.

Runs under /usr/bin/python3 (Debian's python3-flatbuffers is seen only by it).
"""

import argparse
import importlib
import os
import pathlib
import re
import shutil
import random
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
    p = sk.proto()
    expect(p.ProtocolVersion.Current == 2, f"ProtocolVersion.Current is {p.ProtocolVersion.Current}, want 2")
    # A v1 client (the protocol before game modules), and a version from the future.
    for version in (p.ProtocolVersion.V1, 3):
        with sk.connect(HOST, port) as c:
            expect_fatal_error_then_eof(sk, c, "VersionMismatch",
                                        lambda: c.hello("ann", protocol_version=version))


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


# ---- the arena, read from games/arena/arena.h (the client's side of a game) ----

ARENA_HEADER = struct.Struct("<IIBBBB")   # arena_view_header: 12 bytes
ARENA_ENTITY = struct.Struct("<HBBiiii")  # arena_entity: 20 bytes
ARENA_MAX_PLAYERS = 16
ARENA_KIND_PLAYER, ARENA_KIND_COIN = 0, 1


def arena_input(move_x, move_y, buttons=0):
    """arena_input: move_x i8, move_y i8, buttons u8 (3 bytes)."""
    return struct.pack("<bbB", move_x, move_y, buttons)


def decode_arena_view(view):
    """(header dict, players, coins) of an arena view; AssertionError when
    the bytes do not follow arena.h."""
    expect(len(view) >= ARENA_HEADER.size, f"view of {len(view)} bytes, shorter than the header")
    tick, time_left_ms, np, nc, ended, _ = ARENA_HEADER.unpack_from(view, 0)
    want = ARENA_HEADER.size + (np + nc) * ARENA_ENTITY.size
    expect(len(view) == want, f"view of {len(view)} bytes, header says {np} players + {nc} coins = {want}")
    ents = [dict(zip(("id", "kind", "flags", "x", "y", "score", "extra"),
                     ARENA_ENTITY.unpack_from(view, ARENA_HEADER.size + i * ARENA_ENTITY.size)))
            for i in range(np + nc)]
    players, coins = ents[:np], ents[np:]
    for i, e in enumerate(players):
        expect(e["id"] == i and e["kind"] == ARENA_KIND_PLAYER, f"player entity {i}: {e}")
    for i, e in enumerate(coins):
        expect(e["id"] == ARENA_MAX_PLAYERS + i and e["kind"] == ARENA_KIND_COIN, f"coin entity {i}: {e}")
    return {"tick": tick, "time_left_ms": time_left_ms, "ended": ended}, players, coins


def check_arena_match(sk, port, match_size, time_limit_s):
    """match_size clients queue, get one arena match, play it to MatchEnd:
    every view decodes, deltas apply, each player moves the way it steers,
    bad input bytes get a non-fatal BadInput."""
    p = sk.proto()
    rng = random.Random(13)
    clients = [sk.connect(HOST, port, timeout=10.0) for _ in range(match_size)]
    try:
        for i, c in enumerate(clients):
            c.hello(f"py{i}")
        for c in clients:
            st = c.queue()
            expect(st["state"] in (p.QueueState.Searching, p.QueueState.Matched),
                   f"QueueStatus state {st['state']} after QueueJoin")
        found = [c.wait_match(timeout=15.0) for c in clients]
        f0 = found[0]
        expect(len({f["match_id"] for f in found}) == 1, f"one match for all: {[f['match_id'] for f in found]}")
        expect(sorted(f["your_slot"] for f in found) == list(range(match_size)),
               f"seats {[f['your_slot'] for f in found]}")
        expect(f0["game"] == "arena", f"MatchFound.game {f0['game']!r}")
        expect(f0["game_version"] != "", "MatchFound.game_version is empty")
        expect(f0["max_input_bytes"] == 3, f"max_input_bytes {f0['max_input_bytes']}, the arena's input is 3 bytes")
        for key in ("width", "height", "max_speed", "time_limit_s"):
            expect(key in f0["params"], f"MatchFound.params without {key}: {sorted(f0['params'])}")
        expect(f0["params"]["time_limit_s"] == ("Int", str(time_limit_s)),
               f"time_limit_s {f0['params']['time_limit_s']}, config says {time_limit_s}")
        width, height = int(f0["params"]["width"][1]), int(f0["params"]["height"][1])

        # Seat k steers right (even) or left (odd), and a little up or down.
        steer = {f["your_slot"]: (100 if f["your_slot"] % 2 == 0 else -100, 30) for f in found}
        first_x, last_x = {}, {}
        ends, bad_inputs, snapshots = {}, 0, 0
        delta_bytes = view_bytes = 0
        sent_bad = False
        deadline = time.monotonic() + time_limit_s + 15
        while len(ends) < match_size:
            expect(time.monotonic() < deadline, f"no MatchEnd within {time_limit_s + 15} s "
                                                f"({snapshots} snapshots, {len(ends)} ends)")
            for c, f in zip(clients, found):
                if c in ends:
                    continue
                got = c.recv_snapshot(timeout=5.0)
                if isinstance(got, tuple):
                    kind, msg = got
                    if kind == "MatchEnd":
                        ends[c] = msg
                    elif kind == "Error" and msg.Code() == p.ErrorCode.BadInput:
                        expect(not msg.Fatal(), "BadInput is fatal")
                        bad_inputs += 1
                    elif kind == "Error":
                        raise AssertionError(f"Error {p.error_code_names.get(msg.Code())}: {msg.Text()}")
                    continue
                snapshots += 1
                expect(got["match_id"] == f["match_id"], f"snapshot of match {got['match_id']:#x}")
                if got["base_tick"] != 0:
                    delta_bytes += got["wire_bytes"]
                    view_bytes += len(got["view"])
                header, players, coins = decode_arena_view(got["view"])
                expect(header["tick"] == got["tick"], f"view tick {header['tick']}, snapshot tick {got['tick']}")
                expect(len(players) == match_size, f"{len(players)} players in the view, match of {match_size}")
                me = players[f["your_slot"]]
                expect(0 <= me["x"] < width and 0 <= me["y"] < height, f"player off the field: {me}")
                first_x.setdefault(c, me["x"])
                last_x[c] = me["x"]
                mx, my = steer[f["your_slot"]]
                c.send_input(arena_input(mx, my, 1 if rng.random() < 0.1 else 0))
                if not sent_bad and snapshots > 10 * match_size:
                    sent_bad = True
                    clients[0].send_input(b"\x01\x02\x03\x04")      # 4 bytes: malformed
                    clients[0].send_input(arena_input(101, 0))        # move_x 101: out of range
                    clients[0].send_input(bytes([0, 0, 0x80]))        # an unknown button
                    clients[0].send_input(b"")                        # empty data
        # Each MatchEnd: the arena's limit, one result per seat.
        for c, m in ends.items():
            expect(m.Reason() in (p.EndReason.TimeLimit, p.EndReason.ScoreLimit),
                   f"MatchEnd reason {m.Reason()}")
            expect(m.ResultsLength() == match_size, f"{m.ResultsLength()} results")
            expect(m.FinalTick() > 0, "final_tick 0")
        expect(bad_inputs == 4, f"{bad_inputs} BadInput errors for the 4 bad inputs")
        for c, f in zip(clients, found):
            sign = 1 if steer[f["your_slot"]][0] > 0 else -1
            expect(c in first_x and sign * (last_x[c] - first_x[c]) > 0,
                   f"seat {f['your_slot']} steered {sign:+d} but x went {first_x.get(c)} -> {last_x.get(c)}")
            expect(c.tracker.full >= 1, "no full snapshot")
            expect(c.tracker.deltas > 0, f"seat {f['your_slot']}: no delta snapshot in {snapshots} snapshots")
        expect(delta_bytes < view_bytes, f"deltas took {delta_bytes} bytes for {view_bytes} bytes of views")
        print(f"  arena match {f0['match_id']:#x}: {snapshots} snapshots, deltas {delta_bytes} bytes "
              f"for {view_bytes} bytes of views", flush=True)
    finally:
        for c in clients:
            c.close()


def check_delta_codec(sk):
    """The Python delta codec against PROTOCOL.md's rules, and the generated
    accessor for Snapshot.view against ubyte_vector()."""
    r = random.Random(7)
    for _ in range(300):
        base = bytes(r.randrange(256) for _ in range(r.randrange(200)))
        cur = bytearray(base[:r.randrange(len(base) + 1)]) + bytes(r.randrange(2) for _ in range(r.randrange(40)))
        for _ in range(r.randrange(8)):
            if cur:
                cur[r.randrange(len(cur))] = r.randrange(256)
        d = sk.encode_delta(base, bytes(cur))
        expect(sk.apply_delta(base, d) == bytes(cur), f"round trip of {len(base)} -> {len(cur)} bytes")
    for bad, name in ((b"", "truncated"), (b"\x80\x00", "bad varint"), (b"\x80\x80\x80\x80\x80\x01", "bad varint"),
                      (b"\x04\x00\x00", "overrun"), (b"\x04\x05", "overrun"), (b"\x00\x00", "trailing"),
                      (b"\x04\x01\x02\xaa", "truncated")):
        try:
            sk.apply_delta(b"\x01\x02\x03\x04", bad)
        except sk.DeltaError as e:
            expect(e.name == name, f"{bad.hex()}: {e.name}, want {name}")
        else:
            raise AssertionError(f"{bad.hex()} decoded")
    try:
        sk.apply_delta(b"", b"\x10", max_len=15)
        raise AssertionError("a 16-byte view under a 15-byte cap decoded")
    except sk.DeltaError as e:
        expect(e.name == "too long", e.name)
    # Snapshot.view read in one slice == the generated per-byte accessor.
    p = sk.proto()
    snapshot_mod = importlib.import_module("skirmish.proto.Snapshot")
    b = p.flatbuffers.Builder(64)
    vec = b.CreateByteVector(bytes(range(50)))
    snapshot_mod.SnapshotStart(b)
    snapshot_mod.SnapshotAddTick(b, 9)
    snapshot_mod.SnapshotAddView(b, vec)
    frame = sk.finish_frame(b, p.Message.Snapshot, snapshot_mod.SnapshotEnd(b))
    kind, msg = sk.decode_body(frame[4:])
    expect(kind == "Snapshot", kind)
    expect(sk.ubyte_vector(msg, sk.SNAPSHOT_VIEW_VT) == bytes(msg.View(i) for i in range(msg.ViewLength())),
           "ubyte_vector disagrees with Snapshot.View()")


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
        # The same config with a short match: the arena's smallest time limit.
        with open(opts.config, encoding="utf-8") as f:
            text = f.read()
        time_limit_s = 5
        text, n = re.subn(r"(?m)^time_limit_s = \d+", f"time_limit_s = {time_limit_s}", text)
        if n != 1:
            text = text.replace("[game.params]\n", f"[game.params]\ntime_limit_s = {time_limit_s}\n", 1)
        config_path = os.path.join(tmp, "skirmish.toml")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(text)

        server = Server([opts.server, "--config", config_path, "--port", "0",
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
        checks.run("the Python view-delta codec follows PROTOCOL.md", check_delta_codec, sk)
        checks.run("an arena match over protocol v2: inputs, views, deltas, MatchEnd",
                   check_arena_match, sk, port, cfg.get("game", {}).get("match_size", 4), time_limit_s)
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
