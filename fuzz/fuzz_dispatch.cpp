// fuzz_dispatch: client messages of any type, in any order and state, into
// the real Worker dispatch (worker.cpp, play.cpp) with a real shared-memory
// segment, two workers and the real coordinator, without sockets.
//
// Per input (format: dispatch_input.h): a fresh segment (created, unlinked
// at once), a libuv loop, two Workers and a Coordinator. A session is the
// Worker's own Session, opened as accept_from does but on the write end of
// a pipe instead of a TCP socket, so everything the worker sends goes
// through its real write path (uv_try_write, uv_write, slow consumer) and is
// read back here. Bytes reach the session through Worker::on_read, as from
// libuv's read callback; the decoder verifies them, so only verified
// Envelopes reach on_frame. Time is a fake clock moved only by the input;
// the worker's timers are stopped and sweep() / step_owned() are called
// here instead. Mailbox events are delivered after every op.
//
// The game is the arena module, loaded once per process through
// module::load_game("arena") as the master loads it: found by module.h's
// search rules, i.e. $SKIRMISH_GAMES_DIR when set, else <exe dir>/../games
// (build-fuzz/games/arena.so, built and instrumented with the fuzzer).
// Two Games are kept: default params and coins = 0 (config2 bit 3).
//
// Checked, beyond "no crash, no sanitizer report, no leak":
//   - every byte the server writes decodes as verified frames of a message
//     the server may send (a cut last frame at a slow-consumer close is ok);
//   - every Snapshot's view is at most the game's max_view_bytes, and a
//     delta against a view this peer holds applies (protocol/view_delta.h);
//   - after close_all: no session left, no player still Connected, the
//     worker's player and match maps empty, every shm table consistent,
//     every connection counter back to 0, the loop closes cleanly.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uv.h>

#include <array>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "protocol/view_delta.h"
#include "config/config.h"
#include "coordinator/coordinator.h"
#include "core/process.h"
#include "fuzz/dispatch_input.h"
#include "module/module.h"
#include "shm/atomic_field.h"
#include "shm/segment.h"
#include "worker/worker.h"

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz_dispatch: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

namespace skirmish::worker {

// The Worker's test seam (worker.h: friend struct FuzzAccess).
struct FuzzAccess {
  // As Worker::accept_from after its uv_accept, on `fd` (a pipe's write end).
  static Session* open(Worker& w, int fd) {
    auto* s = new Session();
    s->worker = &w;
    s->id = w.next_session_id_++;
    s->node.owner = s;
    uv_tcp_init(w.loop_, &s->tcp);
    s->tcp.data = s;
    FUZZ_CHECK(uv_tcp_open(&s->tcp, fd) == 0);
    std::snprintf(s->peer, sizeof s->peer, "pipe:%d", fd);
    s->decoder = proto::FrameDecoder(proto::DecodeLimits{.max_frame_bytes = w.cfg_.max_frame_bytes_handshake});
    s->tokens = w.cfg_.message_burst;
    s->tokens_at_ms = w.now_ms();
    w.set_list(s, w.handshake_list_, w.now_ms());
    ++w.sessions_;
    ++w.stats_.accepted;
    if (w.row_ != nullptr) {
      shm::shared_add(w.row_->counters.connections_open, uint64_t(1));
      shm::shared_add(w.row_->counters.connections_accepted, uint64_t(1));
    }
    return s;
  }
  // What libuv's read callback does with `len` bytes read into read_buf_.
  static void read(Worker& w, Session* s, const uint8_t* data, size_t len) {
    FUZZ_CHECK(len <= w.read_buf_.size());
    std::memcpy(w.read_buf_.data(), data, len);
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w.read_buf_.data()), unsigned(len));
    w.on_read(s, ssize_t(len), &b);
  }
  static void eof(Worker& w, Session* s) {
    uv_buf_t b = uv_buf_init(nullptr, 0);
    w.on_read(s, UV_EOF, &b);
  }
  static void set_now(Worker& w, int64_t ms) { w.fake_now_ms_ = ms; }
  // Real timers would fire on the real clock: the fuzzer calls what they call.
  static void stop_timers(Worker& w) {
    uv_timer_stop(&w.sweep_timer_);
    uv_timer_stop(&w.tick_timer_);
  }
  static void sweep(Worker& w) { w.sweep(); }
  static void step(Worker& w) {
    if (!w.owned_.empty()) w.step_owned();
  }
  // A session is alive (not Closed, so not yet freed) iff it sits in one of
  // the deadline lists; the id guards against a reused address.
  static bool alive(Worker& w, const Session* s, uint64_t id) {
    for (ListNode* list : {&w.handshake_list_, &w.idle_list_, &w.closing_list_})
      for (ListNode* n = list->next; n != list; n = n->next)
        if (n->owner == s && n->owner->id == id) return true;
    return false;
  }
  // Every session not yet Closed is in exactly one deadline list, so
  // close_all reaches it: sessions_ counts them.
  static void check_linked(const Worker& w) {
    uint64_t n = 0;
    for (const ListNode* list : {&w.handshake_list_, &w.idle_list_, &w.closing_list_})
      for (const ListNode* i = list->next; i != list; i = i->next) {
        FUZZ_CHECK(i->owner->state != SessionState::Closed);
        ++n;
      }
    if (n != w.sessions_)
      std::fprintf(stderr, "fuzz_dispatch: worker %u: %lu sessions open, %lu in its lists\n", unsigned(w.index_),
                   static_cast<unsigned long>(w.sessions_), static_cast<unsigned long>(n));
    FUZZ_CHECK(n == w.sessions_);
  }
  static void check_clean(const Worker& w) {
    FUZZ_CHECK(w.sessions_ == 0);
    FUZZ_CHECK(w.by_player_.empty());
    FUZZ_CHECK(w.local_.empty());
  }
};

}  // namespace skirmish::worker

namespace {

using namespace skirmish;
using skirmish::fuzz::Op;
using skirmish::fuzz::Reader;
using worker::FuzzAccess;

constexpr uint32_t kWorkers = 2;
constexpr size_t kMaxLiveSessions = 8;
constexpr size_t kMaxSessions = 32;  // opened per input
constexpr size_t kMaxTokens = 16;
constexpr int64_t kTickMs = 100;  // tick_rate_hz = 10

// FUZZ_DISPATCH_TRACE=1: each input prints what it reached (seed checks).
bool g_trace = false;

// The arena, loaded once (LLVMFuzzerInitialize): [1] with coins = 0. Never
// moved after load: public_params points into the Game's own params.
std::optional<module::Game> g_games[2];

void load_games() {
  for (int i = 0; i < 2; ++i) {
    std::vector<module::GameParam> params{
        {.key = "score_limit", .type = SKIRMISH_PARAM_INT, .i = 3},
        {.key = "time_limit_s", .type = SKIRMISH_PARAM_INT, .i = 5},
    };
    if (i == 1) params.push_back({.key = "coins", .type = SKIRMISH_PARAM_INT, .i = 0});
    std::string error;
    g_games[i].emplace();
    auto g = module::load_game("arena", module::Limits{}, std::move(params), uint32_t(1000 / kTickMs), 4, error);
    if (!g) {
      std::fprintf(stderr, "fuzz_dispatch: %s (build the arena target; or set SKIRMISH_GAMES_DIR)\n", error.c_str());
      std::exit(2);
    }
    // Rebuilt in place: a copied Game's public_params would point into the
    // source's params.
    g_games[i]->module = g->module;
    g_games[i]->params = g->params;
    g_games[i]->public_params = module::public_params(g_games[i]->module, g_games[i]->params);
  }
}

config::Config make_config(uint8_t sel, uint8_t sel2) {
  config::Config c;
  c.workers = kWorkers;
  c.workers_auto = false;
  c.match_size = std::array<uint32_t, 4>{2, 3, 4, 2}[sel & 3];
  c.resume_grace_ms = (sel & 4) ? 0 : 2000;
  c.max_players = (sel & 8) ? 3 : 8;
  c.write_queue_bytes = std::array<uint32_t, 4>{65536, 4096, 8192, 65536}[(sel >> 4) & 3];
  if (sel & 64) {
    c.messages_per_second = 5;
    c.message_burst = 10;
  }
  c.max_matches = (sel & 128) ? 1 : 4;
  c.mailbox_depth = 64;
  c.handshake_timeout_ms = 1000;
  c.idle_timeout_ms = 5000;
  c.tick_rate_hz = 1000 / kTickMs;
  c.max_wait_ms = 2000;
  if (sel2 & 1) c.resume_grace_ms = 30000;
  c.max_inputs_queued = (sel2 & 2) ? 1 : 4;
  if (sel2 & 4) {
    c.max_frame_bytes_handshake = 64;
    c.max_frame_bytes = 256;
  }
  std::string error;
  FUZZ_CHECK(config::validate(c, error));
  return c;
}

shm::Sizes sizes_of(const config::Config& c) {  // as the master's
  return shm::Sizes{.max_workers = c.workers,
                    .max_players = c.max_players,
                    .max_tickets = c.max_players,
                    .max_matches = c.max_matches,
                    .mailbox_depth = c.mailbox_depth};
}

// The client end of one session.
struct Peer {
  worker::Worker* w = nullptr;
  worker::Session* s = nullptr;  // valid while !gone
  uint64_t id = 0;
  int rfd = -1;  // read end of the pipe the server writes to; -1 once at EOF
  bool stalled = false;
  bool gone = false;
  proto::FrameDecoder dec{proto::DecodeLimits{.max_frame_bytes = 1u << 24}};
  std::map<uint32_t, std::vector<uint8_t>> views;  // tick -> view, this match, newest 32
};

constexpr size_t kViewsKept = 32;

bool server_may_send(proto::Message t) {
  using M = proto::Message;
  switch (t) {
    case M::Welcome:
    case M::Pong:
    case M::QueueStatus:
    case M::MatchFound:
    case M::Snapshot:
    case M::MatchEnd:
    case M::Error:
    case M::ServerShutdown:
      return true;
    default:
      return false;
  }
}

class Harness {
 public:
  Harness(uint8_t config_sel, uint8_t config_sel2)
      : cfg_(make_config(config_sel, config_sel2)), game_(&*g_games[(config_sel2 & 8) ? 1 : 0]) {
    std::string error;
    seg_ = shm::Segment::create("skirmish-fuzz-" + std::to_string(getpid()), sizes_of(cfg_), error);
    if (!seg_) std::fprintf(stderr, "fuzz_dispatch: %s\n", error.c_str());
    FUZZ_CHECK(seg_.has_value());
    seg_->unlink();  // the mapping is all we need; nothing is left in /dev/shm
    for (uint32_t i = 0; i < kWorkers; ++i) {
      shm::shared_store(seg_->process(i).pid, int32_t(getpid()));
      shm::shared_store(seg_->process(i).state, shm::ProcessState::Up);
    }
    FUZZ_CHECK(uv_loop_init(&loop_) == 0);
    now_ = core::monotonic_ms();
    for (uint32_t i = 0; i < kWorkers; ++i) {
      workers_[i] = std::make_unique<worker::Worker>(&loop_, cfg_, uint16_t(i), now_, &*seg_, game_);
      FuzzAccess::stop_timers(*workers_[i]);
      FuzzAccess::set_now(*workers_[i], now_);
    }
    coord_ = std::make_unique<coordinator::Coordinator>(cfg_, &*seg_, seg_->coordinator_index(), game_);
  }

  void run(Reader& r) {
    while (!r.empty()) {
      switch (Op(r.u8() % uint8_t(Op::Count))) {
        case Op::Open: open(r.u8() % kWorkers); break;
        case Op::Msg: msg(r); break;
        case Op::Frame: frame(r); break;
        case Op::Raw: {
          Peer* p = pick(r.u8());
          auto bytes = r.bytes(r.u8());
          if (p != nullptr) FuzzAccess::read(*p->w, p->s, bytes.data(), bytes.size());
          break;
        }
        case Op::Eof:
          if (Peer* p = pick(r.u8())) FuzzAccess::eof(*p->w, p->s);
          break;
        case Op::Stall:
          if (!peers_.empty()) {
            Peer& p = peers_[r.u8() % peers_.size()];
            p.stalled = !p.stalled;
          }
          break;
        case Op::Clock:
          advance(r.u16());
          for (auto& w : workers_) FuzzAccess::sweep(*w);
          break;
        case Op::Coord: {
          const uint8_t f = r.u8();
          coord_->round(now_);
          if (f & 1) coord_->sweep(now_);
          break;
        }
        case Op::Tick: {
          const int passes = 1 + r.u8() % 16;
          for (int i = 0; i < passes; ++i) {
            advance(kTickMs);
            for (auto& w : workers_) FuzzAccess::step(*w);
            deliver();
            for (auto& w : workers_) FuzzAccess::sweep(*w);
            pump();
          }
          break;
        }
        case Op::Control: {
          const uint8_t what = r.u8() % 4;
          const uint32_t i = r.u8() % kWorkers;
          if (what == 3) {
            reload(r);
          } else if (what == 0) {
            workers_[i]->shutdown_all(1000);
            draining_[i] = true;  // its process would accept no more
          } else if (what == 1) {
            workers_[i]->hand_over(1000);
          } else {
            workers_[i]->take_owned_matches();
          }
          break;
        }
        case Op::Count: break;
      }
      deliver();
      pump();
      for (auto& w : workers_) FuzzAccess::check_linked(*w);
    }
  }

  // close_all on every worker, the loop run dry, then the end-state checks.
  void finish() {
    if (g_trace) {
      for (auto& w : workers_) {
        const worker::Stats& st = w->stats();
        std::fprintf(stderr,
                     "worker %u: accepted %lu frames_in %lu errors %lu decode_errors %lu rate_limited %lu "
                     "slow %lu hs_timeouts %lu idle_timeouts %lu tickets %lu/%lu inputs %lu (dropped %lu "
                     "rejected %lu) ticks %lu ended %lu snapshots %lu/%lu resumes %lu/%lu\n",
                     unsigned(w->index()), st.connections_accepted, st.frames_in,
                     std::accumulate(std::begin(st.errors_by_code), std::end(st.errors_by_code), uint64_t{0}),
                     st.decode_errors,
                     st.rate_limited, st.slow_consumers, st.handshake_timeouts, st.idle_timeouts,
                     st.tickets_created, st.tickets_cancelled, st.inputs, st.inputs_dropped, st.inputs_rejected,
                     st.ticks, st.matches_ended, st.snapshots_full, st.snapshots_delta, st.resumes,
                     st.resume_failures);
      }
    }
    for (uint32_t i = 0; i < kWorkers; ++i) workers_[i]->publish_stats(seg_->process(i));
    for (auto& w : workers_) w->close_all();
    for (int i = 0; i < 1000 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    FUZZ_CHECK(!uv_loop_alive(&loop_));
    for (Peer& p : peers_) {
      p.stalled = false;
      drain(p);
      FUZZ_CHECK(p.rfd < 0);  // the server closed every write end
    }
    for (auto& w : workers_) FuzzAccess::check_clean(*w);
    std::string why;
    FUZZ_CHECK(seg_->players().check_consistent(&why));
    FUZZ_CHECK(seg_->tickets().check_consistent(&why));
    FUZZ_CHECK(seg_->matches().check_consistent(&why));
    seg_->players().for_each_used([](shm::Handle, shm::PlayerRow& row) {
      FUZZ_CHECK(shm::shared_load(row.state) != shm::PlayerState::Connected);
    });
    for (uint32_t i = 0; i < kWorkers; ++i)
      FUZZ_CHECK(shm::shared_load(seg_->process(i).counters.connections_open) == 0);
    coord_.reset();
    for (auto& w : workers_) w.reset();
    FUZZ_CHECK(uv_loop_close(&loop_) == 0);
  }

 private:
  Peer* pick(uint8_t sel) {
    if (peers_.empty()) return nullptr;
    Peer& p = peers_[sel % peers_.size()];
    return p.gone ? nullptr : &p;
  }

  // SIGHUP: new values of the live keys (core/live_config.h) for every
  // process, as the master sends them after validating the file.
  void reload(Reader& r) {
    config::Config c = cfg_;
    c.handshake_timeout_ms = 100 + 100u * r.u8();
    c.idle_timeout_ms = 1000 + 100u * r.u8();
    c.resume_grace_ms = 200u * r.u8();
    c.messages_per_second = 1 + r.u8();
    c.message_burst = 1 + r.u8();
    c.max_inputs_queued = 1 + r.u8() % 8;
    std::string error;
    FUZZ_CHECK(config::validate(c, error));
    for (auto& w : workers_) w->apply_config(c);
    coord_->apply_config(c);
  }

  void advance(int64_t ms) {
    now_ += ms;
    for (auto& w : workers_) FuzzAccess::set_now(*w, now_);
  }

  void open(uint32_t wi) {
    size_t live = 0;
    for (const Peer& p : peers_) live += !p.gone;
    if (draining_[wi] || live >= kMaxLiveSessions || peers_.size() >= kMaxSessions) return;
    int fds[2];
    FUZZ_CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    // The smallest pipe: a client that stops reading is felt at once.
    fcntl(fds[1], F_SETPIPE_SZ, 4096);
    Peer& p = peers_.emplace_back();
    p.w = workers_[wi].get();
    p.rfd = fds[0];
    p.s = FuzzAccess::open(*p.w, fds[1]);
    p.id = p.s->id;
  }

  // One client message built from the input, sent 1..16 times in one read,
  // maybe split in two reads.
  void msg(Reader& r) {
    Peer* p = pick(r.u8());
    const uint8_t type = r.u8() % 16;
    const uint8_t shape = r.u8();
    auto& b = enc_.builder();
    flatbuffers::Offset<void> m;
    auto version = [&](uint8_t v) {
      return v == 0 ? proto::ProtocolVersion::Current : v == 1 ? proto::ProtocolVersion::Unknown
                                                               : proto::ProtocolVersion(v);
    };
    auto text = [&](size_t max) {
      auto t = r.bytes(r.u8() % max);
      return b.CreateString(reinterpret_cast<const char*>(t.data()), t.size());
    };
    switch (proto::Message(type)) {
      case proto::Message::Hello: {
        const auto v = version(r.u8());
        auto name = text(48);
        m = proto::CreateHello(b, v, name).Union();
        break;
      }
      case proto::Message::Welcome: m = proto::CreateWelcome(b).Union(); break;
      case proto::Message::Ping: {
        const uint32_t t = r.u32();
        m = proto::CreatePing(b, t, r.u32()).Union();
        break;
      }
      case proto::Message::Pong: m = proto::CreatePong(b).Union(); break;
      case proto::Message::QueueJoin: {
        const uint8_t mode = r.u8();
        const uint8_t key = r.u8();
        m = proto::CreateQueueJoin(b, mode, key, r.u8()).Union();
        break;
      }
      case proto::Message::QueueLeave: m = proto::CreateQueueLeave(b).Union(); break;
      case proto::Message::QueueStatus: m = proto::CreateQueueStatus(b).Union(); break;
      case proto::Message::MatchFound: m = proto::CreateMatchFound(b).Union(); break;
      case proto::Message::Input: {
        const uint16_t seq = r.u16();
        const uint16_t client_tick = r.u16();
        const uint16_t ack = r.u16();
        const uint8_t len = r.u8();
        flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
        if (len == fuzz::kInputNoData) {
          // no data field: the server must refuse it as BadInput
        } else if (len & fuzz::kInputArena) {
          const uint8_t a = r.u8(), c = r.u8();
          const auto in = fuzz::arena_input_of(a, c, r.u8());
          data = b.CreateVector(in.data(), in.size());
        } else {
          auto raw = r.bytes(len & fuzz::kInputRawMask);
          data = b.CreateVector(raw.data(), raw.size());
        }
        m = proto::CreateInput(b, seq, client_tick, ack, data).Union();
        break;
      }
      case proto::Message::Snapshot: m = proto::CreateSnapshot(b).Union(); break;
      case proto::Message::MatchEnd: m = proto::CreateMatchEnd(b).Union(); break;
      case proto::Message::Resume: {
        const auto v = version(r.u8());
        const uint8_t sel = r.u8();
        std::optional<proto::SessionToken> tok;
        if (sel == 0xFF) {
          const uint32_t w0 = r.u32(), w1 = r.u32(), w2 = r.u32();
          tok.emplace(w0, w1, w2, r.u32());
        } else if (sel != 0xFE && !tokens_.empty()) {
          auto t = tokens_[(sel & 15) % tokens_.size()];
          if (sel & 0x80) t[1] ^= 1;
          if (sel & 0x40) t[0] ^= 1;
          tok.emplace(t[0], t[1], t[2], t[3]);
        }
        m = proto::CreateResume(b, v, tok ? &*tok : nullptr, r.u16()).Union();
        break;
      }
      case proto::Message::Error: {
        const uint8_t code = r.u8();
        const bool fatal = r.u8() & 1;
        auto t = text(256);
        m = proto::CreateError(b, proto::ErrorCode(code), fatal, t).Union();
        break;
      }
      case proto::Message::ServerShutdown: m = proto::CreateServerShutdown(b).Union(); break;
      case proto::Message::NONE: break;  // an Envelope without a message
      default: m = proto::CreatePing(b).Union(); break;  // a type this build does not know
    }
    const auto frame = enc_.finish_union(proto::Message(type), m);
    if (p == nullptr) return;
    const size_t reps = 1 + (shape & 15);
    std::vector<uint8_t>& buf = scratch_;
    buf.clear();
    for (size_t i = 0; i < reps && buf.size() + frame.size() <= 65536; ++i)
      buf.insert(buf.end(), frame.begin(), frame.end());
    const size_t cut = buf.size() * (shape >> 4) / 16;
    if (cut > 0) FuzzAccess::read(*p->w, p->s, buf.data(), cut);
    // The first part may have closed it (a fatal error): as a real peer,
    // what it sent next still arrives, and on_read drops it.
    FuzzAccess::read(*p->w, p->s, buf.data() + cut, buf.size() - cut);
  }

  // A length header and any body.
  void frame(Reader& r) {
    Peer* p = pick(r.u8());
    const uint16_t len = r.u16();
    auto body = r.bytes(std::min<size_t>(len, 65536 - proto::kFrameHeaderBytes));
    if (p == nullptr) return;
    std::vector<uint8_t>& buf = scratch_;
    buf.resize(proto::kFrameHeaderBytes);
    const auto n = uint32_t(body.size());
    for (size_t i = 0; i < proto::kFrameHeaderBytes; ++i) buf[i] = uint8_t(n >> (8 * i));
    buf.insert(buf.end(), body.begin(), body.end());
    FuzzAccess::read(*p->w, p->s, buf.data(), buf.size());
  }

  // Events from the mailboxes: the workers' to on_event, the others dropped
  // (the coordinator's TicketChanged only wakes it; rounds are ops here).
  void deliver() {
    shm::Event evs[64];
    for (int pass = 0; pass < 8; ++pass) {
      bool any = false;
      for (uint32_t i = 0; i < seg_->process_count(); ++i) {
        while (size_t n = seg_->mailbox(i).pop_batch(evs, 64)) {
          any = true;
          if (i >= kWorkers) continue;
          for (size_t k = 0; k < n; ++k) workers_[i]->on_event(evs[k]);
        }
      }
      if (!any) break;
    }
  }

  // One loop iteration (flush, write completions, closes), then read what
  // the server wrote. Sessions closed by now may be freed: forget them.
  void pump() {
    for (int round = 0; round < 2; ++round) {
      for (auto& w : workers_) FuzzAccess::stop_timers(*w);
      uv_run(&loop_, UV_RUN_NOWAIT);
      for (Peer& p : peers_) {
        if (!p.gone && !FuzzAccess::alive(*p.w, p.s, p.id)) {
          p.gone = true;
          p.s = nullptr;
        }
        if (!p.stalled) drain(p);
      }
    }
  }

  // A full view is kept as is; a delta is applied to the view of its base
  // tick when this peer holds it (a base it does not hold is not the
  // server's fault here: the fuzzer acks any tick).
  void snapshot(Peer& p, const proto::Snapshot& snap) {
    const uint32_t max_view = game_->table()->max_view_bytes;
    const auto* v = snap.view();
    const uint8_t* bytes = v != nullptr ? v->data() : nullptr;
    const size_t len = v != nullptr ? v->size() : 0;
    std::vector<uint8_t> view;
    if (snap.base_tick() == 0) {
      FUZZ_CHECK(len <= max_view);
      view.assign(bytes, bytes + len);
    } else {
      auto base = p.views.find(snap.base_tick());
      if (base == p.views.end()) return;
      view.resize(max_view);
      size_t out_len = 0;
      const proto::DeltaError e = proto::apply_delta(base->second.data(), base->second.size(), bytes, len, view.data(),
                                                     view.size(), &out_len);
      if (e != proto::DeltaError::None)
        std::fprintf(stderr, "fuzz_dispatch: a delta on base %u does not apply: %s\n", snap.base_tick(),
                     proto::delta_error_name(e));
      FUZZ_CHECK(e == proto::DeltaError::None);
      view.resize(out_len);
    }
    p.views[snap.tick()] = std::move(view);
    while (p.views.size() > kViewsKept) p.views.erase(p.views.begin());
  }

  void drain(Peer& p) {
    if (p.rfd < 0) return;
    static uint8_t buf[16384];  // not on the stack: ASan would poison it per call
    for (;;) {
      const ssize_t n = ::read(p.rfd, buf, sizeof buf);
      if (n > 0) {
        const auto e = p.dec.feed(buf, size_t(n), [&](const proto::Frame& f) {
          FUZZ_CHECK(server_may_send(f.type));
          if (f.type == proto::Message::Error)
            FUZZ_CHECK(f.envelope->msg_as_Error()->code() != proto::ErrorCode::None);
          if (f.type == proto::Message::MatchFound) p.views.clear();
          if (f.type == proto::Message::Snapshot) snapshot(p, *f.envelope->msg_as_Snapshot());
          if (f.type == proto::Message::Welcome && tokens_.size() < kMaxTokens) {
            if (const auto* t = f.envelope->msg_as_Welcome()->token())
              tokens_.push_back({t->w0(), t->w1(), t->w2(), t->w3()});
          }
          return true;
        });
        if (e != proto::DecodeError::None)
          std::fprintf(stderr, "fuzz_dispatch: the server wrote an undecodable stream: %s\n", proto::to_string(e));
        FUZZ_CHECK(e == proto::DecodeError::None);
        continue;
      }
      if (n == 0) {  // the server closed the connection
        close(p.rfd);
        p.rfd = -1;
      }
      return;  // EAGAIN: all read for now
    }
  }

  config::Config cfg_;
  const module::Game* game_;
  std::optional<shm::Segment> seg_;
  uv_loop_t loop_;
  int64_t now_ = 0;
  std::array<std::unique_ptr<worker::Worker>, kWorkers> workers_;
  std::array<bool, kWorkers> draining_{};
  std::unique_ptr<coordinator::Coordinator> coord_;
  std::vector<Peer> peers_;
  std::vector<std::array<uint32_t, 4>> tokens_;  // from the Welcomes read
  proto::FrameEncoder enc_;
  std::vector<uint8_t> scratch_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);  // as the server
  g_trace = std::getenv("FUZZ_DISPATCH_TRACE") != nullptr;
  load_games();
  // Every log line is still formatted (format bugs count), then dropped.
  auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const uint8_t sel = r.u8();
  Harness h(sel, r.u8());
  h.run(r);
  h.finish();
  return 0;
}
