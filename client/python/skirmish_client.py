"""A minimal Skirmish client: the wire protocol from Python.

Dependencies: the Python standard library and the flatbuffers runtime
(Debian: python3-flatbuffers). The message classes are generated from the
schema, never committed:

    flatc --python -o /tmp/skirmish-py protocol/skirmish.fbs

and found through use_generated("/tmp/skirmish-py") (or PYTHONPATH).

    import skirmish_client as sk
    sk.use_generated("/tmp/skirmish-py")
    with sk.connect("127.0.0.1", 7777) as c:
        welcome = c.hello("ann")       # dict: player_id, token, ...
        rtt = c.ping(1)                # seconds
        c.queue()                      # QueueJoin; QueueStatus dict
        found = c.wait_match()         # MatchFound dict: game, params, your_slot, ...
        c.send_input(b"\x64\x00\x00")  # the game's own bytes (arena: move_x, move_y, buttons)
        snap = c.recv_snapshot()       # dict: tick, view (bytes, deltas applied), ...

Protocol version 2: the game is a module, so Input carries the game's
bytes and Snapshot the seat's view bytes, full (base_tick 0) or a generic
byte delta against an earlier view (PROTOCOL.md, "View deltas";
apply_delta below). The client knows no game: what the bytes mean is the
game's own header (games/<name>/<name>.h), read by the caller.

A frame is a little-endian u32 body length followed by one flatbuffer with
root Envelope and file identifier "SKRM" (protocol/PROTOCOL.md). The Python
flatbuffers runtime has no verifier: this client trusts the server it talks
to and is meant for tests, tools and examples, not for untrusted peers.
"""

import collections
import importlib
import socket
import struct
import sys
import time

FILE_IDENTIFIER = b"SKRM"
_HEADER = struct.Struct("<I")
# The server never sends frames near this; it only bounds what a broken
# stream can make the client buffer.
DEFAULT_MAX_FRAME_BYTES = 1 << 20

# Views kept per match for delta bases: the server deltas against a tick at
# most 7 older than the snapshot (PROTOCOL.md, "Delta bases").
VIEWS_KEPT = 32

__all__ = [
    "Client", "ConnectionClosed", "DeltaError", "ProtocolError", "ServerError", "ViewTracker",
    "apply_delta", "connect", "decode_body", "encode_delta", "encode_hello", "encode_input", "encode_ping",
    "encode_queue_join", "finish_frame", "proto", "ubyte_vector", "use_generated",
]


class ConnectionClosed(ConnectionError):
    """The server closed the connection (EOF)."""


class ProtocolError(Exception):
    """The server sent bytes that are not a Skirmish frame."""


class DeltaError(ValueError):
    """A view delta that does not decode; `name` is one of truncated,
    bad varint, too long, overrun, trailing (as protocol/view_delta.h)."""

    def __init__(self, name, detail=""):
        self.name = name
        super().__init__(name + (f": {detail}" if detail else ""))


class ServerError(Exception):
    """The server answered with Error{code, fatal, text}."""

    def __init__(self, code, fatal, text):
        self.code = code
        self.code_name = proto().error_code_names.get(code, str(code))
        self.fatal = fatal
        self.text = text
        super().__init__(f"{self.code_name} ({code}){' fatal' if fatal else ''}: {text}")


# ---- the generated code, imported on first use ----

class _Proto:
    """The generated skirmish.proto modules and a few tables built from them."""

    def __init__(self):
        def mod(name):
            return importlib.import_module("skirmish.proto." + name)

        self.flatbuffers = importlib.import_module("flatbuffers")
        self.Envelope = mod("Envelope")
        self.Hello = mod("Hello")
        self.Ping = mod("Ping")
        self.QueueJoin = mod("QueueJoin")
        self.Input = mod("Input")
        self.Message = mod("Message").Message
        self.ErrorCode = mod("ErrorCode").ErrorCode
        self.ProtocolVersion = mod("ProtocolVersion").ProtocolVersion
        self.QueueState = mod("QueueState").QueueState
        self.EndReason = mod("EndReason").EndReason
        self.message_names = _enum_names(self.Message)
        self.error_code_names = _enum_names(self.ErrorCode)
        # Union type -> generated table class, for every member of Message.
        self.message_classes = {}
        for value, name in self.message_names.items():
            if value != self.Message.NONE:
                self.message_classes[value] = getattr(mod(name), name)


def _enum_names(cls):
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


_proto = None


def use_generated(path):
    """Puts the directory that flatc --python wrote into on sys.path."""
    global _proto
    path = str(path)
    if path not in sys.path:
        sys.path.insert(0, path)
    _proto = None


def proto():
    """The generated modules; ImportError with the fix if flatc was not run."""
    global _proto
    if _proto is None:
        try:
            _proto = _Proto()
        except ImportError as e:
            raise ImportError(
                f"{e}: generate the Python code with `flatc --python -o DIR protocol/skirmish.fbs` "
                "and call skirmish_client.use_generated(DIR) (or put DIR on PYTHONPATH); "
                "the flatbuffers runtime is Debian's python3-flatbuffers") from e
    return _proto


# ---- encoding ----

def finish_frame(builder, msg_type, msg, manual_prefix=False):
    """Wraps the message table `msg` (an offset in `builder`) of union type
    `msg_type` in an Envelope and returns the whole frame.

    With manual_prefix=False the builder writes the length itself
    (FinishSizePrefixed); with True it finishes a plain buffer and the length
    is packed here. The schema has no scalar wider than 32 bits, so both give
    the same bytes."""
    p = proto()
    p.Envelope.EnvelopeStart(builder)
    p.Envelope.EnvelopeAddMsgType(builder, msg_type)
    p.Envelope.EnvelopeAddMsg(builder, msg)
    env = p.Envelope.EnvelopeEnd(builder)
    if not manual_prefix:
        builder.FinishSizePrefixed(env, FILE_IDENTIFIER)
        return bytes(builder.Output())
    builder.Finish(env, FILE_IDENTIFIER)
    body = bytes(builder.Output())
    return _HEADER.pack(len(body)) + body


def encode_hello(name, protocol_version=None, manual_prefix=False):
    """The Hello frame. protocol_version defaults to ProtocolVersion.Current."""
    p = proto()
    if protocol_version is None:
        protocol_version = p.ProtocolVersion.Current
    b = p.flatbuffers.Builder(64)
    n = b.CreateString(name)
    p.Hello.HelloStart(b)
    p.Hello.HelloAddProtocolVersion(b, protocol_version)
    p.Hello.HelloAddName(b, n)
    return finish_frame(b, p.Message.Hello, p.Hello.HelloEnd(b), manual_prefix)


def encode_ping(nonce, client_time_us=0, manual_prefix=False):
    p = proto()
    b = p.flatbuffers.Builder(64)
    p.Ping.PingStart(b)
    p.Ping.PingAddClientTimeUs(b, client_time_us & 0xFFFFFFFF)
    p.Ping.PingAddNonce(b, nonce & 0xFFFFFFFF)
    return finish_frame(b, p.Message.Ping, p.Ping.PingEnd(b), manual_prefix)


def encode_queue_join(mode=0, party_key=0, party_size=1):
    p = proto()
    b = p.flatbuffers.Builder(64)
    p.QueueJoin.QueueJoinStart(b)
    p.QueueJoin.QueueJoinAddMode(b, mode)
    p.QueueJoin.QueueJoinAddPartyKey(b, party_key)
    p.QueueJoin.QueueJoinAddPartySize(b, party_size)
    return finish_frame(b, p.Message.QueueJoin, p.QueueJoin.QueueJoinEnd(b))


def encode_input(seq, data, ack_tick=0, client_tick=0):
    """The Input frame: `data` is the game's input bytes, sent as they are
    (None: no data field at all, which the server refuses as BadInput)."""
    p = proto()
    b = p.flatbuffers.Builder(64 + (len(data) if data else 0))
    vec = b.CreateByteVector(bytes(data)) if data is not None else None
    p.Input.InputStart(b)
    p.Input.InputAddSeq(b, seq & 0xFFFFFFFF)
    p.Input.InputAddClientTick(b, client_tick & 0xFFFFFFFF)
    p.Input.InputAddAckTick(b, ack_tick & 0xFFFFFFFF)
    if vec is not None:
        p.Input.InputAddData(b, vec)
    return finish_frame(b, p.Message.Input, p.Input.InputEnd(b))


# ---- view deltas (PROTOCOL.md, "View deltas"; protocol/view_delta.h) ----

def _get_varint(delta, pos):
    """(value, next position) of the LEB128 varint at delta[pos]: at most 5
    bytes, below 2^32, minimal."""
    value = 0
    for i in range(5):
        if pos >= len(delta):
            raise DeltaError("truncated", "varint cut short")
        b = delta[pos]
        pos += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if i > 0 and b == 0:
                raise DeltaError("bad varint", "not minimal")
            if value > 0xFFFFFFFF:
                raise DeltaError("bad varint", "2^32 or more")
            return value, pos
    raise DeltaError("bad varint", "more than 5 bytes")


def _put_varint(out, v):
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def apply_delta(base, delta, max_len=1 << 16):
    """The view that `delta` makes of `base` (bytes in, bytes out), or
    DeltaError. delta := varint(new_len) { varint(skip) [varint(run)
    byte{run}] }: skip bytes come from the base (0 past its end), run bytes
    from the delta; after the last one the rest comes from the base."""
    new_len, pos = _get_varint(delta, 0)
    if new_len > max_len:
        raise DeltaError("too long", f"{new_len} bytes, at most {max_len}")
    out = bytearray(new_len)
    shared = min(len(base), new_len)
    out[:shared] = base[:shared]  # what no run replaces comes from the base (0 past its end)
    at = 0
    while pos < len(delta):
        if at >= new_len:
            raise DeltaError("trailing", f"bytes after the view is complete at delta offset {pos}")
        skip, pos = _get_varint(delta, pos)
        if skip > new_len - at:
            raise DeltaError("overrun", f"skip {skip} at view offset {at} of {new_len}")
        at += skip
        if pos == len(delta):
            break
        run, pos = _get_varint(delta, pos)
        if run == 0 or run > new_len - at:
            raise DeltaError("overrun", f"run {run} at view offset {at} of {new_len}")
        if len(delta) - pos < run:
            raise DeltaError("truncated", f"run of {run} with {len(delta) - pos} bytes left")
        out[at:at + run] = delta[pos:pos + run]
        at += run
        pos += run
    return bytes(out)


def encode_delta(base, cur):
    """The delta from base to cur, byte for byte what the server's encoder
    writes: changed runs separated by fewer than 3 unchanged bytes are
    merged, and the final skip is left out."""
    def old(i):
        return base[i] if i < len(base) else 0

    out = bytearray()
    _put_varint(out, len(cur))
    done = 0
    i = 0
    while i < len(cur):
        if cur[i] == old(i):
            i += 1
            continue
        end, same, j = i + 1, 0, i + 1
        while j < len(cur):
            if cur[j] == old(j):
                same += 1
                if same >= 3:
                    break
            else:
                same, end = 0, j + 1
            j += 1
        _put_varint(out, i - done)
        _put_varint(out, end - i)
        out += cur[i:end]
        done = i = end
    return bytes(out)


class ViewTracker:
    """The views of one match by tick, so deltas can be applied: call
    reset() on MatchFound and apply(snapshot) on every Snapshot. Keeps the
    newest VIEWS_KEPT views."""

    def __init__(self, max_view_bytes=1 << 16):
        self.max_view_bytes = max_view_bytes
        self.views = collections.OrderedDict()  # tick -> bytes
        self.full = 0
        self.deltas = 0

    def reset(self):
        self.views.clear()

    def newest_tick(self):
        return next(reversed(self.views)) if self.views else 0

    def apply(self, tick, base_tick, data):
        """The view of `tick` from a Snapshot's (base_tick, view bytes).
        Raises DeltaError for a delta that does not decode and KeyError for
        a base this tracker does not hold (both: keep the old views and
        ack what you have; a full snapshot follows)."""
        if base_tick == 0:
            if len(data) > self.max_view_bytes:
                raise DeltaError("too long", f"full view of {len(data)} bytes")
            view = bytes(data)
            self.full += 1
        else:
            if base_tick not in self.views:
                raise KeyError(f"delta on tick {base_tick}, which this client does not hold")
            view = apply_delta(self.views[base_tick], data, self.max_view_bytes)
            self.deltas += 1
        self.views[tick] = view
        self.views.move_to_end(tick)
        while len(self.views) > VIEWS_KEPT:
            self.views.popitem(last=False)
        return view


# vtable offset of Snapshot.view (field 4: 4 + 2 * 4), as the generated
# Snapshot.View() reads it; tests/python checks the two agree.
SNAPSHOT_VIEW_VT = 12


def ubyte_vector(obj, vt_offset):
    """A [ubyte] field of a generated table as bytes in one slice (the
    generated accessor reads one byte per call)."""
    o = obj._tab.Offset(vt_offset)
    if o == 0:
        return b""
    start = obj._tab.Vector(o)
    return bytes(obj._tab.Bytes[start:start + obj._tab.VectorLen(o)])


def decode_body(body):
    """(type name, generated table object) of one frame body (no header)."""
    p = proto()
    if len(body) < 8 or not p.Envelope.Envelope.EnvelopeBufferHasIdentifier(body, 0):
        raise ProtocolError("frame body without file identifier SKRM")
    try:
        env = p.Envelope.Envelope.GetRootAs(body, 0)
        msg_type = env.MsgType()
        table = env.Msg()
    except (struct.error, IndexError) as e:
        raise ProtocolError(f"malformed flatbuffer: {e}") from e
    cls = p.message_classes.get(msg_type)
    if cls is None or table is None:
        raise ProtocolError(f"unknown union type {msg_type}")
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    return p.message_names[msg_type], obj


# ---- the connection ----

class Client:
    """One connection to a Skirmish server. Not thread-safe."""

    def __init__(self, sock, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
        self.sock = sock
        self.max_frame_bytes = max_frame_bytes
        self._pending = collections.deque()  # received while waiting for something else
        self.seq = 0                           # the newest Input.seq sent
        self.match = None                      # the MatchFound dict of the current match
        self.tracker = ViewTracker()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw frames --

    def send_frame(self, frame):
        """Sends bytes as they are (a frame, several, or deliberately broken ones)."""
        self.sock.sendall(frame)

    def _recv_exact(self, n, at_boundary):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                where = "" if at_boundary and got == 0 else " in the middle of a frame"
                raise ConnectionClosed("server closed the connection" + where)
            got += k
        return bytes(buf)

    def recv_frame(self):
        """The next frame's body (without its length header)."""
        (n,) = _HEADER.unpack(self._recv_exact(4, at_boundary=True))
        if n == 0 or n > self.max_frame_bytes:
            raise ProtocolError(f"frame length {n} outside 1..{self.max_frame_bytes}")
        return self._recv_exact(n, at_boundary=False)

    def recv_message(self, timeout=None):
        """The next message as (type name, generated object), e.g.
        ("Welcome", <Welcome>). Raises ConnectionClosed at EOF and
        TimeoutError after `timeout` seconds (default: the socket's); a
        timeout in the middle of a frame leaves the stream unusable."""
        if self._pending:
            return self._pending.popleft()
        if timeout is None:
            return decode_body(self.recv_frame())
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return decode_body(self.recv_frame())
        finally:
            self.sock.settimeout(old)

    def _await(self, want):
        """Reads until want(kind, msg) is true; an Error raises ServerError;
        anything else is kept for recv_message."""
        seen = []
        try:
            while True:
                kind, msg = decode_body(self.recv_frame())
                if want(kind, msg):
                    return msg
                if kind == "Error":
                    raise ServerError(msg.Code(), bool(msg.Fatal()), _text(msg.Text()))
                seen.append((kind, msg))
        finally:
            self._pending.extend(seen)

    # -- the protocol --

    def hello(self, name, protocol_version=None):
        """Sends Hello and waits for Welcome; returns its fields as a dict.
        Raises ServerError if the server answers Error."""
        self.send_frame(encode_hello(name, protocol_version))
        w = self._await(lambda kind, _: kind == "Welcome")
        tok = w.Token()
        token = (tok.W0(), tok.W1(), tok.W2(), tok.W3()) if tok is not None else (0, 0, 0, 0)
        return {
            "protocol_version": w.ProtocolVersion(),
            "token": token,
            "token_hex": "".join(f"{x:08x}" for x in token),
            "player_id": w.PlayerId(),
            "worker_index": w.WorkerIndex(),
            "tick_rate_hz": w.TickRateHz(),
            "rating": w.Rating(),
            "resumed": bool(w.Resumed()),
            "match_id": w.MatchId(),
            "server_time_ms": w.ServerTimeMs(),
        }

    def queue(self, mode=0, party_key=0, party_size=1):
        """Sends QueueJoin and waits for its QueueStatus; returns its fields
        (state, waited_ms, window, queued_players). A MatchFound that comes
        first is kept for wait_match()."""
        self.send_frame(encode_queue_join(mode, party_key, party_size))
        st = self._await(lambda kind, _: kind == "QueueStatus")
        return {"state": st.State(), "waited_ms": st.WaitedMs(), "window": st.Window(),
                "queued_players": st.QueuedPlayers()}

    def wait_match(self, timeout=None):
        """Waits for MatchFound (other messages are kept); returns its fields
        as a dict, params as {key: (type name, value text)}, and resets the
        views kept for deltas."""
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            pending = [m for m in self._pending if m[0] == "MatchFound"]
            if pending:
                self._pending.remove(pending[0])
                m = pending[0][1]
            else:
                m = self._await(lambda kind, _: kind == "MatchFound")
        finally:
            self.sock.settimeout(old)
        type_names = {0: "Int", 1: "Float", 2: "Bool", 3: "String"}
        params = {}
        for i in range(m.ParamsLength()):
            gp = m.Params(i)
            params[_text(gp.Key())] = (type_names.get(gp.Type(), str(gp.Type())), _text(gp.Value()))
        players = []
        for i in range(m.PlayersLength()):
            pi = m.Players(i)
            players.append({"player_id": pi.PlayerId(), "slot": pi.Slot(), "team": pi.Team(),
                            "rating": pi.Rating(), "name": _text(pi.Name())})
        self.match = {
            "match_id": m.MatchId(), "your_slot": m.YourSlot(), "players": players,
            "tick_rate_hz": m.TickRateHz(), "game": _text(m.Game()), "game_version": _text(m.GameVersion()),
            "params": params, "max_input_bytes": m.MaxInputBytes(),
        }
        self.tracker.reset()
        return self.match

    def send_input(self, data, ack_tick=None, client_tick=0):
        """Sends one Input with the next seq; `data` is the game's bytes.
        ack_tick defaults to the newest view held. Returns the seq."""
        self.seq += 1
        if ack_tick is None:
            ack_tick = self.tracker.newest_tick()
        self.send_frame(encode_input(self.seq, data, ack_tick, client_tick))
        return self.seq

    def snapshot(self, msg):
        """A received Snapshot as a dict: match_id, tick, base_tick,
        last_input_seq, wire_bytes (its view field) and view (the whole view,
        the delta applied; DeltaError or KeyError as ViewTracker.apply)."""
        raw = ubyte_vector(msg, SNAPSHOT_VIEW_VT)
        view = self.tracker.apply(msg.Tick(), msg.BaseTick(), raw)
        return {"match_id": msg.MatchId(), "tick": msg.Tick(), "base_tick": msg.BaseTick(),
                "last_input_seq": msg.LastInputSeq(), "wire_bytes": len(raw), "view": view}

    def recv_snapshot(self, timeout=None):
        """Reads until the next Snapshot and returns snapshot() of it. Any
        other message is returned instead as (type name, object), so the
        caller sees MatchEnd and Errors in order."""
        kind, msg = self.recv_message(timeout)
        if kind == "Snapshot":
            return self.snapshot(msg)
        return kind, msg

    def send_ping(self, nonce, client_time_us=0):
        self.send_frame(encode_ping(nonce, client_time_us))

    def ping(self, nonce):
        """Sends Ping and waits for the Pong that echoes `nonce`; returns the
        round-trip time in seconds."""
        nonce &= 0xFFFFFFFF
        t0 = time.monotonic()
        self.send_ping(nonce, int(t0 * 1e6))
        self._await(lambda kind, m: kind == "Pong" and m.Nonce() == nonce)
        return time.monotonic() - t0


def _text(s):
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else (s or "")


def connect(host, port, timeout=5.0, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """Opens a TCP connection; `timeout` bounds the connect and every read."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Client(sock, max_frame_bytes)
