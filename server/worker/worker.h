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
//   - Sockets are read with recv(2) from the worker's read set (read_set.h),
//     through libuv's read only where the set cannot take one.
//   - Reads go into one buffer per worker: the decoder verifies whole frames
//     in place and copies only split frames into the session, so an idle
//     connection holds no read buffer.
//   - Writes are batched per loop iteration by a check handle.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/codec.h"
#include "config/config.h"
#include "match/match_store.h"
#include "match/worker_set.h"
#include "module/module.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "worker/read_set.h"
#include "worker/session.h"

namespace skirmish::auth {
class JwtVerifier;
}
namespace skirmish::store {
class PlayerStore;
struct PlayerRecord;
enum class LoadResult : uint8_t;
}

namespace skirmish::worker {

// What this worker counts: its entries of the table in shm/counters.h,
// copied into its process row by publish_stats.
using Stats = shm::Counters;

// MatchRow::end_reason holds proto::EndReason + 1 (0: not ended).
inline constexpr uint32_t end_code(proto::EndReason r) { return uint32_t(r) + 1; }
inline constexpr uint32_t kEndShutdownDeadline = end_code(proto::EndReason::ShutdownDeadline);
inline constexpr uint32_t kEndAbandoned = end_code(proto::EndReason::Abandoned);
inline constexpr uint32_t kEndGameError = end_code(proto::EndReason::GameError);

// Copies what MatchFound needs out of the match row (seat count, player
// wires, ids, ratings before); false if it is gone or not Running. play.cpp.
bool read_seats(shm::SlotTable<shm::MatchRow> matches, uint32_t wire, uint32_t& n, uint32_t* wires,
                uint32_t* ids, float* ratings);

class Worker {
 public:
  enum class Leave : uint8_t { No, Drain, HandOver };  // see shutdown_all() / hand_over()
  // `seg` may be null (no shared state: tests of the session layer alone);
  // with it, players are recorded in its table and counters published.
  // `game` is the hosted game module (module::load_game), never null.
  // `jwt` verifies Hello.auth_token ([auth]); null = auth off. With
  // [store] path set (and a segment) the worker opens its own connection
  // to the players store (worker/identity.cpp).
  Worker(uv_loop_t* loop, const config::Config& cfg, uint16_t index, int64_t start_ms,
         shm::Segment* seg, const module::Game* game, const auth::JwtVerifier* jwt = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Takes one pending connection. Returns false if it could not.
  bool accept_from(uv_stream_t* server);
  // The next socket from the master's IPC pipe: accept_from with its
  // handoff number recorded (and reported when it closes, even if the
  // accept fails).
  bool accept_handoff(uv_stream_t* ipc);
  // The next handoff number; published at once in the row (handoffs_taken),
  // so the master can let go of its copy of the socket.
  uint64_t take_handoff_seq() {
    const uint64_t seq = handoff_seq_++;
    if (row_ != nullptr) shm::shared_store(row_->handoffs_taken, handoff_seq_);
    return seq;
  }
 private:
  bool accept_session(uv_stream_t* server, uint64_t seq);

 public:

  // Applies the keys that may change live (timeouts, rates, frame caps for
  // new frames).
  void apply_config(const config::Config& cfg);

  // Leaving: how a worker's sessions end before it exits, one mechanism for
  // a drain and for a binary upgrade's hand-over (worker.cpp).
  //   Both: a session seated in a match stays, playing, and gets
  //   ServerShutdown right after its MatchEnd; every other session gets
  //   ServerShutdown and closes (a matched ticket whose MatchFound is still
  //   in flight counts as seated). The matches this worker ticks go on.
  //   shutdown_all (SIGTERM, a drain): the server is going away. Handshake
  //   sessions leave too; a Waiting ticket is cancelled first and its
  //   session told with Error(ShuttingDown); a QueueJoin is answered
  //   Error(ShuttingDown). At `drain_ms` every match still ticked here ends
  //   with EndReason::ShutdownDeadline (results, no rating change), and
  //   kDeadlineGraceMs later any session still here gets ServerShutdown.
  //   hand_over (SIGUSR2): a new generation serves on. Tickets are kept
  //   (the player resumes there with it, ServerShutdown says retry at
  //   once); a match still running at `drain_ms` is left for the new
  //   generation to adopt.
  // The first call wins; later ones (either kind) are ignored. Both return
  // how many sessions were sent on.
  size_t shutdown_all(uint32_t drain_ms);
  size_t hand_over(uint32_t drain_ms);
  bool leaving() const { return leaving_ != Leave::No; }
  // True once the process may exit: no session left and no match to tick,
  // or its time is up (a hand-over at the deadline; a drain at the deadline
  // plus the time to deliver the deadline's MatchEnds).
  bool left() const;

  // Closed connections are reported to the master (which counts open
  // connections per address for limits.max_connections_per_ip): the
  // handoff number of each (the nth socket taken from the IPC pipe is n,
  // counted from 0), 8 bytes, written on `s` (the IPC pipe) once per loop
  // iteration. Without a stream nothing is reported (tests).
  void set_report_stream(uv_stream_t* s) { report_ = s; }
  void report_closed(uint64_t seq);

  // Closes every handle the worker owns so the loop can end.
  void close_all();

  // Match events from the mailbox (MatchCreated, MatchFound, MatchTicked,
  // MatchEnded); the process loop hands every other event type elsewhere.
  void on_event(const shm::Event& e);
  // At start (also after a respawn): take up the matches this worker owns.
  void take_owned_matches();

  // Before each loop pass (core::ChildLoop::run_on_quantum): `quantum` =
  // the pass runs on the I/O quantum; its sockets are read now, before
  // the pass's timers (the tick) run.
  void on_pass(bool quantum);

  size_t session_count() const { return sessions_; }
  size_t owned_matches() const { return owned_.size(); }
  // Copies the counters into this worker's process row (called on the
  // heartbeat, not per frame, so the hot path touches no shared line).
  void publish_stats(shm::ProcessRow& row);
  const Stats& stats() const { return stats_; }
  uint16_t index() const { return index_; }

  // Called with the number of live sessions whenever it changes.

 private:
  friend struct Callbacks;
  // Test seam for fuzz/fuzz_dispatch.cpp only (nothing in the server uses
  // it): opens sessions on pipes, feeds bytes through on_read, and runs
  // sweep() and step_owned() on a fake clock (fake_now_ms_).
  friend struct FuzzAccess;

  void on_read(Session* s, ssize_t nread, const uv_buf_t* buf);
  void start_reading(Session* s);  // the read set, or libuv's read where it cannot
  void stop_reading(Session* s);
  void read_ready(Session* s);     // the read set's callback: one recv(2)
  bool on_frame(Session* s, const proto::Frame& f);
  // Identity (worker/identity.cpp).
  bool on_hello(Session* s, const proto::Hello* m);
  bool on_resume(Session* s, const proto::Resume* m);
  void open_store();
  bool store_on() const;  // [store] path or [fleet] redis set (and a segment)
  void start_load(Session* s, std::string account, std::string name);
 public:  // called from the threadpool's completion callbacks
  void finish_load(uint64_t session_id, const std::string& account, const std::string& name,
                   store::LoadResult result, const store::PlayerRecord* rec, const std::string& error);
  void finish_save(bool ok, size_t records, const std::string& error);
 private:
  // The row, then Welcome; `rec` = the stored record (nullptr: new).
  bool complete_hello(Session* s, std::string_view name, std::string_view account, const store::PlayerRecord* rec);
  // A rated match ended: its seats with an account are written (threadpool).
  void persist_results(uint32_t n, const uint32_t* wires);
  // Worker slot `index` has a running process (not Down, not exited).
  bool worker_alive(uint32_t index) const;
  void on_ping(Session* s, const proto::Ping* m);

  // Play (worker/play.cpp).
  void on_queue_join(Session* s, const proto::QueueJoin* m);
  void on_queue_leave(Session* s);
  void send_queue_status(Session* s);
  void on_input(Session* s, const proto::Input* m);
  void on_match_created(uint32_t wire);
  void on_match_found(uint32_t wire);
  // Seats `s` in match `wire` on this worker and sends it MatchFound; a
  // full Snapshot follows at the next tick.
  void seat_session(Session* s, uint32_t wire, uint32_t seat, uint32_t n, const uint32_t* wires,
                    const uint32_t* ids, const float* ratings);
  void on_match_ended(uint32_t wire);
  std::span<const uint8_t> build_match_end(uint32_t wire);  // in enc_
  void deliver_match_end(Session* s, uint32_t wire, std::span<const uint8_t> frame);
  // Everything queued for `s` is in the kernel (called by flush and
  // write_done): a MatchEnd among it is delivered.
  void on_flushed(Session* s);
  // Running, Ended, or Forming for a match that is gone (or wire 0).
  shm::MatchState match_state(uint32_t wire) const;
  bool match_forming(uint32_t wire) const;  // the row exists and is Forming
  void clear_stale_match(shm::PlayerRow* p, uint32_t wire);
  shm::PlayerRow* p_row(const Session* s) const;  // the session's player row or nullptr
  void send_snapshots(uint32_t wire);  // snapshots.cpp
  void init_view_scratch();
  match::Ring ring_of(const shm::MatchRow& row) const;
  // Steps one owned match under its lock (crash marks, budget); play.cpp.
  match::StepOutcome step_one(shm::MatchRow& row, uint32_t wire, uint32_t connected, bool& quarantine);
  void tick();
  void arm_tick(uint64_t delay_ms);  // the tick timer: marks it due (Callbacks::tick_due)
  void step_owned();
  // Ends an owned match from its published state: places, ratings, the row
  // Ended, MatchEnded posted. `forced_reason` (kEndAbandoned,
  // kEndShutdownDeadline, kEndGameError) ends it for a reason of the
  // server's, with the ratings left as they were; 0 = the game's own end
  // (its outcome()).
  void end_match(uint32_t wire, uint32_t forced_reason = 0);
  // Ends every match this worker ticks for the shutdown deadline.
  void end_owned_for_shutdown();
  void post(uint32_t index, const shm::Event& e);
  void forget(Session* s);  // from the close callback: drop it from the play maps

  // Queues a frame; false if the session was closed as a slow consumer.
  bool send(Session* s, std::span<const uint8_t> frame);
  void send_error(Session* s, proto::ErrorCode code, bool fatal, std::string_view text);
  void begin_close(Session* s);  // flush what is queued, then close
  // Leaving (worker.cpp).
  size_t leave(Leave how, uint32_t drain_ms);
  size_t send_on_unseated();     // every session that has no match to wait for
  bool about_to_be_seated(const Session* s);  // its ticket matched, MatchFound in flight
  void sweep_leaving();          // from sweep(): the deadline and the stragglers
  void send_on(Session* s);      // ServerShutdown, then close
  void cancel_ticket_for_shutdown(Session* s);  // drain: Error(ShuttingDown) if one was Waiting
  void close_now(Session* s);
  void release_player(Session* s);
  void mark_dirty(Session* s);
  void flush(Session* s);
  ssize_t try_send(Session* s, const uint8_t* data, size_t len);  // worker.cpp
  void flush_dirty();
  void flush_reports();
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
  Stats stats_{};  // value-initialised: every count 0

  ListNode handshake_list_, idle_list_, closing_list_;
  Session* dirty_head_ = nullptr;
  uv_check_t flush_check_;
  uv_timer_t sweep_timer_;
  proto::FrameEncoder enc_;
  proto::FrameEncoder error_enc_;  // for the slow-consumer Error inside send()

  // Play state. local_: matches with a session of this worker in them.
  struct LocalMatch {
    std::vector<Session*> sessions;
    uint32_t last_sent_tick = UINT32_MAX;
  };
  std::unordered_map<uint32_t, LocalMatch> local_;
  std::unordered_map<uint32_t, Session*> by_player_;  // player wire id -> session
  struct Owned {  // a match this worker ticks, with its seats cached
    uint32_t wire;
    uint32_t n;
    uint32_t players[shm::kMaxMatchPlayers];
  };
  std::vector<Owned> owned_;
  // Workers a match event goes to, reused for every match (no allocation
  // per tick); sized from the segment's slots, both banks.
  match::WorkerSet fanout_{seg_ != nullptr ? seg_->worker_slots() : 0};
  const module::Game* game_;
  const auth::JwtVerifier* jwt_;
  std::unique_ptr<store::PlayerStore> store_;  // [store] on and open; else null
  std::unordered_map<uint64_t, Session*> loading_;  // session id -> session whose record is being read
  int64_t store_logged_ms_ = 0;  // rate limit of the store's warnings
  // Snapshot scratch (snapshots.cpp), sized once from max_view_bytes.
  static constexpr uint32_t kViewKeys = shm::kMaxMatchPlayers;       // one view per seat at most
  static constexpr uint32_t kMaxSessionsPerMatch = shm::kMaxMatchPlayers;
  static constexpr uint32_t kMaxDeltaJobs = shm::kMaxMatchPlayers;   // (view, base) pairs per tick
  static constexpr uint8_t kNoJob = 0xFF;
  uint32_t view_cap_ = 0;
  size_t delta_cap_ = 0;
  std::vector<uint8_t> cur_views_;  // kViewKeys views of view_cap_
  std::vector<uint8_t> base_view_;  // one view of view_cap_
  std::vector<uint8_t> deltas_;     // kMaxDeltaJobs deltas of delta_cap_
  int64_t budget_logged_ms_ = 0;    // rate limit of the step-budget warning
  int64_t record_lost_logged_ms_ = 0;  // rate limit of the record-ring warning
  uv_timer_t tick_timer_;
  uv_idle_t tick_idle_;    // active while a tick is due: that pass polls without blocking
  bool tick_due_ = false;  // the tick timer fired; the check phase steps
  uint64_t next_tick_us_ = 0;  // due time of the next pass (uv_hrtime us), 0 idle
  ReadSet read_set_;  // sessions' sockets, read with recv(2) (worker/read_set.h)
  alignas(16) std::array<uint8_t, 64 * 1024> read_buf_;
  bool read_buf_busy_ = false;
  int64_t fake_now_ms_ = -1;  // >= 0: what now_ms() returns (FuzzAccess only)
  Leave leaving_ = Leave::No;  // see shutdown_all() / hand_over()
  int64_t leave_deadline_ms_ = 0;  // now_ms() at which drain_ms is up
  bool deadline_passed_ = false;   // a drain's matches were ended at the deadline
  bool grace_passed_ = false;      // ... and the stragglers sent on
  uv_stream_t* report_ = nullptr;
  uint64_t handoff_seq_ = 0;
  std::vector<uint8_t> report_buf_;  // address keys of closed connections, not yet written
  size_t report_off_ = 0;
  static constexpr size_t kMaxReportBytes = 1 << 20;
  uint32_t leave_drain_ms_ = 0;
  proto::FrameEncoder leave_enc_{256};  // ServerShutdown, Error(ShuttingDown)
};

}  // namespace skirmish::worker
