// hostile_attacker.h: skirmish-hostile's attacker, the one class that runs
// every attack (loadtest/README.md, "skirmish-hostile").
//
// The timing constants, what a connection waits for (Expect), one attacker
// connection (Conn, in an intrusive list) and the Hostile class that opens,
// drives and judges them on one libuv loop. Private to skirmish-hostile:
// hostile.h is its interface to hostile_main.cpp and hostile_report.cpp.
#pragma once

#include <uv.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loadtest/hostile.h"
#include "protocol/codec.h"

namespace skirmish::hostile::attacker {

using namespace skirmish::proto;

// The attacks that --rate spreads its new connections over.
constexpr Attack kRateAttacks[] = {Attack::Garbage,      Attack::Truncated,  Attack::Huge,
                                   Attack::Unverifiable, Attack::WrongState, Attack::ResetStorm};

constexpr uint64_t kMs = 1000000;            // ns
constexpr uint64_t kTickMs = 10;
constexpr uint64_t kConnectTimeoutMs = 3000;
constexpr uint64_t kEarlySlackMs = 100;      // a handshake close this much before the deadline is early
constexpr uint64_t kHoldMs = 200;            // a non-fatal Error: the connection must stay open this long
constexpr uint32_t kMaxSpawnPerTick = 100;   // new connections per tick per kind; a backlog is dropped
constexpr uint64_t kFloodPauseMs = 100;      // between two new flood connections
constexpr uint64_t kBadInputPauseMs = 250;   // between two new badinput connections: each takes a seat
                                             // in a match that lingers, so a few a second is plenty
constexpr uint64_t kRefusedPauseMs = 1000;   // kept-open attacks: no reopen for this long after a refusal
constexpr size_t kFloodBatch = 64;           // pings per write
constexpr uint64_t kFloodMaxBytes = 16 << 20;
constexpr uint64_t kNoReadInputMs = 33;
constexpr int kNoReadRcvbuf = 4096;
constexpr size_t kMaxSamples = 20;           // unexpected reasons kept for the report

// What a connection waits for: an Error with `code` by `deadline_ns`. A
// fatal one must be followed by the server's close within the grace (and,
// for a handshake deadline, by `deadline_ns` too: the whole connection
// lasts at most handshake + grace); a non-fatal one must leave the
// connection open for kHoldMs.
struct Expect {
  bool armed = false;
  ErrorCode code = ErrorCode::None;
  bool fatal = true;
  uint64_t deadline_ns = 0;    // the Error by then
  uint64_t not_before_ns = 0;  // and not before (handshake deadlines only)
  bool got = false;
  uint64_t got_ns = 0;

  uint64_t close_by_ns(uint64_t grace_ns) const {
    return not_before_ns != 0 ? std::min(deadline_ns, got_ns + grace_ns) : got_ns + grace_ns;
  }
};

class Hostile;

struct Conn {
  Conn* prev = nullptr;
  Conn* next = nullptr;
  Hostile* h = nullptr;
  Attack attack{};
  uint8_t variant = 0;
  uint32_t source = 0;  // index into Options::sources
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  bool inited = false, connected = false, closing = false, done = false;
  uint8_t step = 0;  // attack progress: 1 = waiting for Welcome, 2 = after it, 3 = QueueStatus seen
                     // (wrongstate), 4 = MatchFound seen (badinput)
  uint64_t started_ns = 0;
  uint64_t next_ns = 0;   // next timed action (slowloris byte, noread input, flood end)
  uint64_t welcome_deadline_ns = 0;
  uint64_t match_deadline_ns = 0;  // badinput: MatchFound by then
  Expect want;
  FrameDecoder dec{DecodeLimits{.max_frame_bytes = 1u << 20}};
  std::vector<uint8_t> bytes;  // slowloris: the Hello it trickles
  size_t sent = 0;
  uint32_t seq = 0;
  bool flooding = false;
  uint64_t flood_bytes = 0;
};

struct WriteReq {
  uv_write_t req;
  Conn* c;
  std::vector<uint8_t> data;
};

inline uint64_t now_ns() { return uv_hrtime(); }

inline void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

inline std::string error_name(ErrorCode code, bool fatal) {
  return std::string("Error(") + EnumNameErrorCode(code) + (fatal ? ", fatal)" : ")");
}

// The run: every attacker connection, the tick, the counters. Its member
// functions are in hostile.cpp (the run, the tick, the output),
// hostile_attacks.cpp (frames, what each attack sends) and hostile_io.cpp
// (reads, writes, closes, verdicts).
class Hostile {
 public:
  explicit Hostile(const Options& o);
  // Runs for o.duration_s (or until SIGINT/SIGTERM); prints the table; the exit code.
  int run();

 private:
  // ---- frames ----
  std::vector<uint8_t> copy(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }
  std::vector<uint8_t> frame_hello();
  std::vector<uint8_t> frame_ping(uint32_t nonce);
  std::vector<uint8_t> frame_queue_join();
  std::vector<uint8_t> frame_input(uint32_t seq, const std::vector<uint8_t>* data);
  std::vector<uint8_t> frame_input(uint32_t seq);
  std::optional<std::vector<uint8_t>> bad_data(uint8_t v, const std::string& game, uint32_t max_input);

  uint64_t rnd() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545F4914F6CDD1Dull;
  }
  void fill_random(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = uint8_t(rnd() >> 32);
  }

  DecodeError judge(const std::vector<uint8_t>& bytes, bool* complete);

  // ---- connections ----
  void open(Attack a, uint8_t variant = 0);
  static void on_connect_cb(uv_connect_t* req, int status);
  void on_connect(Conn* c, int status);
  void on_welcome(Conn* c);
  void on_match_found(Conn* c, const MatchFound& m);
  void arm(Conn* c, ErrorCode code, bool fatal, uint64_t deadline_ns);

  // ---- I/O ----
  void write(Conn* c, std::vector<uint8_t> bytes);
  static void write_cb(uv_write_t* req, int status);
  void write_failed(Conn* c);
  void flood_write(Conn* c);
  static void alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf);
  static void read_cb(uv_stream_t* st, ssize_t n, const uv_buf_t* buf);
  void on_bytes(Conn* c, const uint8_t* p, size_t n);
  void on_frame(Conn* c, const Frame& f);
  void on_peer_closed(Conn* c);
  void note_close_time(Conn* c);
  void close(Conn* c);
  static void on_closed_cb(uv_handle_t* hd);
  void forget(Conn* c);
  void fail_connect(Conn* c, const std::string& why);

  // ---- verdicts ----
  enum class Verdict { Expected, Unexpected, Capped, Unfinished, StillOpen };

  void verdict(Conn* c, Verdict v);
  void unexpected(Conn* c, const std::string& why);

  // ---- the tick: open, send timed bytes, judge deadlines ----
  void on_tick();

  uint64_t live() const {
    uint64_t n = 0;
    for (uint64_t x : open_) n += x;
    return n;
  }

  void spawn(uint64_t now);
  void tick_conn(Conn* c, uint64_t now);

  static std::string ms_since(const Conn* c, uint64_t t_ns) {
    return std::to_string((t_ns - c->started_ns) / kMs) + " ms of the connect";
  }

  void stop();

  // ---- output ----
  void print_status(bool last);
  int finish() const;

  // ---- bookkeeping ----
  Counters& k(Attack a) { return r_.by_attack[size_t(a)]; }
  Counters& k(const Conn* c) { return r_.by_attack[size_t(c->attack)]; }
  void link(Conn* c) {
    c->prev = head_.prev;
    c->next = &head_;
    head_.prev->next = c;
    head_.prev = c;
  }
  static void unlink(Conn* c) {
    c->prev->next = c->next;
    c->next->prev = c->prev;
  }

  Options o_;
  uint64_t rng_;
  uv_loop_t loop_{};
  uv_timer_t tick_{}, status_{}, end_{};
  uv_signal_t signals_[2]{};
  FrameEncoder enc_;
  std::vector<uint8_t> flood_batch_;
  std::vector<Attack> rate_attacks_;
  Conn head_{.prev = &head_, .next = &head_};
  Results r_;
  std::array<uint64_t, kAttacks> open_{};
  std::array<uint64_t, kAttacks> paused_until_{};  // ns; top-ups wait after a refusal
  std::vector<uint64_t> held_;                     // open connections by source address
  uint64_t start_ns_ = 0, flood_next_ns_ = 0, badinput_next_ns_ = 0;
  uint64_t rate_spawned_ = 0, rate_next_ = 0, wrongstate_next_ = 0, badinput_next_ = 0, names_ = 0;
  uint64_t next_source_ = 0, max_open_ = 0;
  bool stopping_ = false, tty_ = false;
};

}  // namespace skirmish::hostile::attacker
