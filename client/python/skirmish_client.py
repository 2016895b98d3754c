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
        kind, msg = c.recv_message()   # ("Pong", <Pong>), ...

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

__all__ = [
    "Client", "ConnectionClosed", "ProtocolError", "ServerError", "connect",
    "decode_body", "encode_hello", "encode_ping", "finish_frame", "proto", "use_generated",
]


class ConnectionClosed(ConnectionError):
    """The server closed the connection (EOF)."""


class ProtocolError(Exception):
    """The server sent bytes that are not a Skirmish frame."""


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
        self.Message = mod("Message").Message
        self.ErrorCode = mod("ErrorCode").ErrorCode
        self.ProtocolVersion = mod("ProtocolVersion").ProtocolVersion
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
