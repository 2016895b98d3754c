// A worker: one libuv loop serving the sessions handed to it.
//
// Contract
//   - accept_from(stream) takes one pending connection from a listening TCP
//     handle or from an IPC pipe that carries one (SCM_RIGHTS), and owns it
//     from then on.
//   - Per connection: the frame codec with the handshake frame cap until
//     Welcome and the full cap after; a whole-handshake deadline; an idle
//     deadline; a token bucket on messages; a capped write queue. Every
//     refusal is an Error(code) frame and, when fatal, a close after it.
//   - Deadlines live in three intrusive lists ordered by time (handshake,
//     idle, closing), swept by one timer: O(expired) per sweep, O(1) per
//     frame, no timer per connection.
//   - Reads go into one buffer per worker: the decoder verifies whole frames
//     in place and copies only split frames into the session, so an idle
//     connection holds no read buffer.
//   - Writes are batched per loop iteration by a check handle.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>

#include "codec.h"
#include "config/config.h"
#include "shm/segment.h"
#include "worker/session.h"

namespace skirmish::worker {

// Counters this worker keeps; later mirrored into its shared-memory row.
struct Stats {
  uint64_t accepted = 0;
  uint64_t closed = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t errors_sent = 0;
  uint64_t slow_consumers = 0;
  uint64_t decode_errors = 0;
  uint64_t handshake_timeouts = 0;
  uint64_t idle_timeouts = 0;
  uint64_t rate_limited = 0;
};

class Worker {
 public:
  // `seg` may be null (no shared state: tests of the session layer alone);
  // with it, players are recorded in its table and counters published.
  Worker(uv_loop_t* loop, const config::Config& cfg, uint16_t index, int64_t start_ms,
         shm::Segment* seg);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Takes one pending connection. Returns false if it could not.
  bool accept_from(uv_stream_t* server);

  // Applies the keys that may change live (timeouts, rates, frame caps for
  // new frames).
  void apply_config(const config::Config& cfg);

  // Sends ServerShutdown to every session and stops reading from them; each
  // connection closes once its queue is flushed or `drain_ms` passes.
  void shutdown_all(uint32_t drain_ms);

  // Closes every handle the worker owns so the loop can end.
  void close_all();

  size_t session_count() const { return sessions_; }
  // Copies the counters into this worker's process row (called on the
  // heartbeat, not per frame, so the hot path touches no shared line).
  void publish_stats(shm::ProcessRow& row) const;
  const Stats& stats() const { return stats_; }
  uint16_t index() const { return index_; }

  // Called with the number of live sessions whenever it changes.

 private:
  friend struct Callbacks;

  void on_read(Session* s, ssize_t nread, const uv_buf_t* buf);
  bool on_frame(Session* s, const proto::Frame& f);
  bool on_hello(Session* s, const proto::Hello* m);
  void on_ping(Session* s, const proto::Ping* m);

  // Queues a frame; false if the session was closed as a slow consumer.
  bool send(Session* s, std::span<const uint8_t> frame);
  void send_error(Session* s, proto::ErrorCode code, bool fatal, std::string_view text);
  void begin_close(Session* s);  // flush what is queued, then close
  void close_now(Session* s);
  void release_player(Session* s);
  void mark_dirty(Session* s);
  void flush(Session* s);
  void flush_dirty();
  void sweep();
  bool take_token(Session* s, int64_t now);
  void set_list(Session* s, ListNode& list, int64_t since);
  int64_t now_ms() const;

  uv_loop_t* loop_;
  config::Config cfg_;
  uint16_t index_;
  int64_t start_ms_;  // server start, for server_time_ms
  shm::Segment* seg_;
  shm::ProcessRow* row_ = nullptr;
  uint64_t next_session_id_ = 1;
  size_t sessions_ = 0;
  Stats stats_;

  ListNode handshake_list_, idle_list_, closing_list_;
  Session* dirty_head_ = nullptr;
  uv_check_t flush_check_;
  uv_timer_t sweep_timer_;
  proto::FrameEncoder enc_;
  alignas(16) std::array<uint8_t, 64 * 1024> read_buf_;
  bool read_buf_busy_ = false;
};

}  // namespace skirmish::worker
