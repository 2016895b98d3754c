// skirmish::client — the one C++ client library of Skirmish: the end-to-end
// tests, the load test (thousands of bots per process) and the terminal
// client all talk to the server through it.
//
// CONTRACT
//
// Ownership and threading
//   - A Client runs on a libuv loop that the CALLER owns and runs. It makes
//     no blocking call, starts no thread, reads no global state besides the
//     per-thread scratch below, and never logs. Use a Client only from the
//     thread that runs its loop.
//   - A Client is neither copyable nor movable (libuv holds pointers to it).
//     It may be destroyed at any time, also from inside any of its own
//     callbacks: an open connection is then detached and closed by libuv on
//     its own (no callback fires for it any more). Destroying it from a
//     callback also destroys that callback's closure: touch none of its
//     captures after the delete. Destroy every Client
//     before uv_loop_close(), and run the loop once more after destroying a
//     connected one so libuv can release the socket.
//   - The socket, its libuv requests and the write queue live in one small
//     heap block per connection (allocated by connect(), freed when libuv
//     has closed the handle), so a Client destroyed early never leaves
//     libuv with a dangling pointer.
//   - Per thread, all Clients share one 64 KiB read buffer and one frame
//     encoder (both thread_local): a frame from the server is decoded in
//     place from that buffer, and a message is encoded there and handed to
//     the kernel or copied into the connection's write queue at once.
//   - Writing to a socket the server has closed raises SIGPIPE. Like any
//     libuv program, the process must ignore it (signal(SIGPIPE, SIG_IGN));
//     the library does not change signal dispositions behind your back.
//
// Connection lifecycle
//   Idle --connect()--> Connecting --TCP up--> Handshaking --Welcome--> Ready
//   any state but Idle/Closed --close(), EOF, I/O or decode error--> Closing --> Closed
//   - connect() returns 0 or a libuv error. On 0, on_connected(status) fires
//     once (unless close() comes first) and on_closed(reason) fires exactly
//     once when the connection is over, also when the connect itself failed.
//     A connect() that returns an error fires neither (libuv's rule).
//   - With Options::auto_hello, Hello is queued before on_connected(0)
//     runs, so anything sent from on_connected goes after it. Without it,
//     send hello() or resume() yourself.
//   - After on_closed the Client may connect() again (e.g. to resume();
//     the token of the last Welcome is kept); stats() keep counting.
//   - Automatic resume (Options::reconnect.enabled): when a connection that
//     got a Welcome drops for any reason but close(), the Client does not
//     fire on_closed; it fires on_reconnecting(attempt, delay_ms, reason),
//     waits a jittered, doubling back-off, connects to the same address and
//     sends Resume with its token instead of Hello. Success is a Welcome with
//     resumed = true (on_welcome; the attempt count starts over). A failed
//     try (refused, closed, BadToken before the server noticed the drop) is
//     the next attempt. After max_tries attempts or max_ms since the drop,
//     or a VersionMismatch, it gives up and on_closed fires with the last
//     reason. close() or destruction stop it at any point.
//   - on_closed(reason): 0 = close() was called; UV_EOF = the server closed
//     the connection (after a fatal Error or ServerShutdown, or otherwise);
//     kClosedDecodeError (-1) = a server frame failed to decode (see
//     decode_error()); any other value = the libuv error of connect, read or
//     write. The Client does not close by itself on a fatal Error: the
//     server closes, and on_closed(UV_EOF) follows.
//
// Callbacks and re-entrancy
//   - Every callback runs from the loop, never from inside a call you made.
//     It is safe to call close(), any send function, connect() (from
//     on_closed) or to destroy the Client from inside any callback. After
//     close() or destruction no further message of the current read is
//     delivered.
//   - A message passed to a callback (proto::Welcome&, World&, text, ...)
//     is valid only until the callback returns: copy what you keep.
//   - Frames that arrive together are dispatched in order; replies sent
//     from their callbacks are coalesced and flushed once after the batch.
//
// Sending
//   - Every send returns 0 or a negative libuv-style code and never calls
//     a callback for a refused send: UV_ENOTCONN (not Handshaking/Ready),
//     UV_ENOBUFS (the write queue would pass Options::max_write_queue_bytes;
//     nothing is queued, stats().write_queue_full counts it), or the error
//     of a failed write (the connection is then closing).
//   - A frame is written with one send(2) on the socket straight from the encoder when
//     nothing is queued (the common case: no copy, no request); what the
//     kernel refuses is queued, and one uv_write at most is outstanding;
//     frames sent meanwhile are coalesced behind it.
//   - The library does not validate what you send (names, input ranges):
//     the server does, and tests rely on sending bad values.
//
// Receiving
//   - Each frame passes the codec's verifier (Options::max_frame_bytes,
//     depth and table limits) before a field is read. Nothing the server
//     sends is asserted on: a frame that fails to decode closes the
//     connection with kClosedDecodeError; a message only a client sends is
//     counted in stats().unexpected_messages and ignored.
//   - Snapshots are reconstructed into whole Worlds (snapshot_history.h):
//     the game's view bytes, rebuilt from generic byte deltas without
//     knowing the game; a delta whose base is not held, or that does not
//     decode, is counted and skipped. The newest
//     world's tick is sent as Input.ack_tick.
//
// Reading at the owner's pace (Options::poll_reads, off by default)
//   - By default a Client reads on readability: libuv wakes its loop for
//     every segment that arrives. With poll_reads it never starts reading;
//     the owner calls poll_read() when it wants what has arrived (a load
//     tester at its input phase slots: one wake-up for many sockets). fd()
//     gives the socket from on_connected(0) on, to put in an epoll set of
//     the owner's; an end of the connection (EOF, reset) is seen at the next
//     poll_read(). Everything else (decoding, callbacks, flushing the
//     replies of a batch once, closing) is as on readability.
//   - With rx_timestamps too, the socket asks the kernel for software RX
//     timestamps (SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE |
//     SOF_TIMESTAMPING_SOFTWARE) and each read is a recvmsg(); during the
//     callbacks of the frames a read carried, rx_realtime_ns() is the
//     kernel's receive time of that read (CLOCK_REALTIME). TCP reports the
//     time of the newest segment in the read, so a frame that arrived
//     earlier in the same read gets a later time than its own. The kernel
//     turns RX timestamping on for the whole stack on first use, from a work
//     queue: the first reads after the first such socket may come without a
//     time (rx_realtime_ns() 0, counted in reads_without_rx_time).
//   - stats().reads / reads_multi_snapshot count reads (in either mode) and
//     those that carried more than one Snapshot frame.
//
// Memory: per Client about 1.5 KiB (0.9 the object, 0.6 the socket block),
// plus the write queue (empty while the kernel keeps up; bounded by
// max_write_queue_bytes; given back above 16 KiB once drained) and, once a
// match starts, the snapshot ring. Once warm, sending and receiving
// allocate nothing.
#pragma once

#include <uv.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "protocol/codec.h"
#include "client/lib/snapshot_history.h"

namespace skirmish::client {

enum class State : uint8_t {
  Idle,         // constructed, never connected
  Connecting,   // connect() returned 0; TCP not up yet
  Handshaking,  // TCP up; Hello (or Resume) sent or due, no Welcome yet
  Ready,        // Welcome received
  Closing,      // closing; on_closed follows
  Closed,       // on_closed has fired; connect() may be called again
};
const char* to_string(State s);

// on_closed reason when a frame from the server failed to decode.
inline constexpr int kClosedDecodeError = -1;

// The 128-bit session token of the last Welcome (w0..w3).
using Token = std::array<uint32_t, 4>;

inline constexpr size_t kErrorCodeCount = size_t(proto::ErrorCode::MAX) + 1;

struct ReconnectOptions {
  bool enabled = false;
  uint32_t max_tries = 10;          // attempts per drop
  uint32_t max_ms = 30000;          // from the drop to giving up
  uint32_t initial_delay_ms = 50;   // first back-off (then x2 each try)
  uint32_t max_delay_ms = 2000;     // back-off cap; each delay is jittered to 50..150 %
};

struct Options {
  std::string name = "player";     // Hello.name (the server wants 1..32 bytes)
  std::string auth_token;          // Hello.auth_token: a JWT from the studio's backend; "" = none
  bool auto_hello = true;          // send Hello as soon as TCP is up
  uint16_t protocol_version = proto::kProtocolVersion;  // of Hello and Resume; tests set a wrong one
  uint32_t max_frame_bytes = 64 * 1024;        // largest frame body accepted from the server
  size_t max_write_queue_bytes = 64 * 1024;    // unsent bytes held before a send is refused
  uint32_t snapshot_history = SnapshotHistory::kDefaultDepth;  // worlds kept as delta bases
  bool tcp_nodelay = true;         // the protocol is request/response small frames
  ReconnectOptions reconnect;      // automatic resume after a drop (off by default)
  // Opt-in (see "Reading at the owner's pace"): no reading on readability;
  // the owner calls poll_read(). Off: today's behaviour, unchanged.
  bool poll_reads = false;
  bool rx_timestamps = false;      // with poll_reads: kernel RX timestamps of each read
};

// One std::function per server message; an empty one is skipped.
struct Callbacks {
  std::function<void(int status)> on_connected;  // 0 or the libuv error of connect
  std::function<void(const proto::Welcome&)> on_welcome;
  std::function<void(uint32_t rtt_us, uint32_t nonce)> on_pong;
  std::function<void(const proto::QueueStatus&)> on_queue_status;
  std::function<void(const proto::MatchFound&)> on_match_found;
  std::function<void(const World&)> on_snapshot;
  std::function<void(const proto::MatchEnd&)> on_match_end;
  std::function<void(proto::ErrorCode code, std::string_view text, bool fatal)> on_error;
  std::function<void(const proto::ServerShutdown&)> on_server_shutdown;
  std::function<void(int reason)> on_closed;  // see the contract above
  // Automatic resume: a drop (reason) is being retried; the next connect is
  // in delay_ms. attempt counts from 1.
  std::function<void(uint32_t attempt, uint32_t delay_ms, int reason)> on_reconnecting;
};

// Counters over the Client's whole life (every connection).
struct Stats {
  uint64_t frames_in = 0;
  uint64_t bytes_in = 0;
  uint64_t frames_out = 0;   // frames accepted by a send
  uint64_t bytes_out = 0;    // their bytes (sent or queued)
  uint64_t snapshots_full = 0;
  uint64_t snapshots_delta = 0;
  uint64_t snapshot_bytes_full = 0;   // frame bytes (with the length header) of applied full snapshots
  uint64_t snapshot_bytes_delta = 0;  // ... and of applied deltas
  uint64_t snapshots_missing_base = 0;  // deltas skipped: base world not held
  uint64_t snapshots_bad_delta = 0;     // deltas skipped: did not decode
  uint64_t snapshots_stale = 0;         // not newer than the newest world; skipped
  uint64_t unexpected_messages = 0;     // client-only messages received; ignored
  uint64_t write_queue_full = 0;        // sends refused by max_write_queue_bytes
  uint64_t errors = 0;                  // Error messages received
  std::array<uint64_t, kErrorCodeCount> errors_by_code{};  // by ErrorCode value
  uint64_t errors_unknown_code = 0;     // codes newer than this build
  uint64_t reconnect_attempts = 0;      // automatic resume: connects tried
  uint64_t resumes = 0;                 // Welcome with resumed = true
  uint64_t reconnect_give_ups = 0;      // drops that ended in on_closed
  uint64_t reads = 0;                   // reads that returned bytes
  uint64_t reads_multi_snapshot = 0;    // ... of them, those that carried more than one Snapshot frame
  uint64_t reads_without_rx_time = 0;   // rx_timestamps: reads that came without a kernel timestamp

  uint64_t errors_for(proto::ErrorCode c) const {
    size_t i = size_t(c);
    return i < kErrorCodeCount ? errors_by_code[i] : errors_unknown_code;
  }
};

class Client {
 public:
  Client(uv_loop_t* loop, Options options, Callbacks callbacks = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) = delete;
  Client& operator=(Client&&) = delete;

  // Set or change callbacks at any time; from inside a callback, replace
  // any but the one that is running (on_closed excepted: it may replace itself).
  Callbacks& callbacks() { return cb_; }

  // Numeric IPv4 (or IPv6) address, no host names. 0 or a libuv error
  // (UV_EINVAL bad address, UV_EBUSY not Idle/Closed, or uv_tcp_connect's).
  int connect(const char* ip, uint16_t port);
  // Stops reading, drops frames not yet handed to the kernel, closes the
  // socket; on_closed(0) follows from the loop. No-op when Idle, Closing or
  // Closed.
  void close();

  // ---- sending (see "Sending" above for the return values) ----
  int hello();  // Hello{protocol_version, name}; automatic with auto_hello
  // Ping{client_time_us = uv_hrtime in us (wraps), nonce = 1, 2, 3, ...};
  // on_pong reports the round trip. *nonce_out gets the nonce if non-null and the send was taken.
  int ping(uint32_t* nonce_out = nullptr);
  int queue_join(uint8_t mode = 0, uint32_t party_key = 0, uint8_t party_size = 1);
  int queue_leave();
  int queue_status();  // an empty QueueStatus: asks for the current one
  // Input{seq = ++last_seq, client_tick = ticks since Welcome at the
  // server's tick rate, ack_tick = acked_tick(), data = the game's input
  // bytes}. The game's own client header says what the bytes are
  // (games/<name>/<name>.h); the server refuses more than
  // MatchFound.max_input_bytes.
  int send_input(const uint8_t* data, size_t len);
  // Resume{protocol_version, token(), last_tick = acked_tick()}: instead of
  // Hello on a new connection (auto_hello = false).
  int resume();

  // ---- reading at the owner's pace (Options::poll_reads) ----
  // Reads what the kernel holds (non-blocking recv/recvmsg, at most
  // max_reads reads of 64 KiB, stopping at EAGAIN or a short read) and
  // dispatches its frames as a read on readability would. Returns the bytes
  // read (0: nothing there, not open, or not poll_reads), UV_EBUSY when
  // called from inside a callback of another read, or the error that closed
  // the connection (UV_EOF, ...; on_closed follows from the loop). A
  // callback may destroy the Client: then touch it no more after the call.
  int poll_read(uint32_t max_reads = 8);
  int fd() const;  // the socket, or -1 when there is none
  // Kernel receive time (CLOCK_REALTIME, ns) of the read whose frames are
  // being dispatched; 0 when unknown (no rx_timestamps, or none came).
  uint64_t rx_realtime_ns() const { return rx_realtime_ns_; }
  bool rx_timestamps_enabled() const { return rx_ts_on_; }  // setsockopt took it

  // ---- state ----
  State state() const { return state_; }
  uint32_t player_id() const { return player_id_; }    // 0 before Welcome
  const Token& token() const { return token_; }        // zeros before Welcome
  void set_token(const Token& t) { token_ = t; }       // to resume a session held elsewhere
  uint16_t worker_index() const { return worker_index_; }
  uint16_t tick_rate_hz() const { return tick_rate_hz_; }
  uint32_t acked_tick() const { return history_.ack_tick(); }  // next Input.ack_tick
  uint32_t last_input_seq() const { return last_seq_; }        // last Input.seq sent
  uint8_t slot() const { return slot_; }                       // seat of the last MatchFound
  uint16_t max_input_bytes() const { return max_input_bytes_; }  // of the last MatchFound
  const World* world() const { return history_.newest(); }     // newest world or nullptr
  const Stats& stats() const { return stats_; }
  proto::DecodeError decode_error() const { return decoder_.error(); }
  size_t write_queue_bytes() const;  // unsent bytes held now
  const Options& options() const { return opts_; }
  uv_loop_t* loop() const { return loop_; }

 private:
  struct Conn;
  struct RetryTimer;
  friend struct ClientIo;

  void on_connect(int status);
  void on_read(ssize_t nread, const uint8_t* data);
  bool deliver(const uint8_t* data, size_t n);  // decode + dispatch one read; false: `this` was destroyed
  void on_write_done(int status);
  void on_handle_closed();
  void dispatch(const proto::Frame& f);
  void on_snapshot_msg(const proto::Snapshot& s, size_t frame_bytes);
  int try_send(const uint8_t* data, size_t len);  // send(2); bytes taken or a libuv error
  int send_frame(const uint8_t* data, size_t len);
  int flush();
  int start_write(size_t done);  // hand `out` (less `done` bytes) to one uv_write
  void shut(int reason);  // begin closing the connection with `reason`
  bool schedule_reconnect(int reason);  // false: give up
  void on_retry_timer();
  bool open() const { return state_ == State::Handshaking || state_ == State::Ready; }

  uv_loop_t* loop_;
  Options opts_;
  Callbacks cb_;
  State state_ = State::Idle;
  Conn* conn_ = nullptr;
  proto::FrameDecoder decoder_;
  SnapshotHistory history_;
  Token token_{};
  uint32_t player_id_ = 0;
  uint16_t worker_index_ = 0;
  uint16_t tick_rate_hz_ = 0;
  uint32_t last_seq_ = 0;
  uint8_t slot_ = 0;
  uint16_t max_input_bytes_ = 0;
  uint32_t ping_nonce_ = 0;
  uint64_t welcome_ms_ = 0;   // uv_now at Welcome
  int close_reason_ = 0;
  // Automatic resume.
  std::string peer_ip_;
  uint16_t peer_port_ = 0;
  RetryTimer* retry_ = nullptr;  // heap: libuv may outlive the Client
  bool resuming_ = false;        // the current connection sends Resume
  bool user_closed_ = false;     // close() since the last connect()
  bool no_resume_ = false;       // VersionMismatch: retrying cannot help
  uint32_t attempt_ = 0;         // tries since the drop
  uint64_t dropped_ms_ = 0;      // uv_now of the drop
  uint64_t jitter_ = 0x9E3779B97F4A7C15ull;
  bool corked_ = false;       // inside a read batch: flush once after it
  bool* alive_ = nullptr;     // set while dispatching; the destructor clears *alive_
  uint32_t read_snapshots_ = 0;  // Snapshot frames of the current read
  uint64_t rx_realtime_ns_ = 0;  // poll_reads + rx_timestamps: of the current read
  bool rx_ts_on_ = false;
  Stats stats_;
};

}  // namespace skirmish::client
