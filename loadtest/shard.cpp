#include "loadtest/shard.h"

#include <time.h>

#include <algorithm>
#include <cmath>

#include "module/module.h"

namespace skirmish::loadtest {

namespace {

constexpr uint32_t kClockSlots = 8;    // open model: bots spread over 8 phases of an input period
constexpr uint32_t kPingSlots = 10;    // pings spread over 10 phases of the ping interval
constexpr uint64_t kPublishMs = 250;
constexpr uint32_t kPending = 32;      // inputs awaiting their snapshot, per bot

uint64_t now_ns() { return uv_hrtime(); }

// A bundled module's name as module.h resolves it: anything else (a '/', a
// ".so", odd bytes) could make load() open a path of the server's choosing.
bool module_name_ok(std::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  for (char ch : n)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) return false;
  return true;
}

}  // namespace

const GameInfo* Games::get(std::string_view name, std::string_view server_version) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const GameInfo& g : games_)
    if (g.name == name) return &g;
  if (games_.size() >= kMaxGames) {
    if (refused_.error.empty()) {  // written once: shards read it without the lock
      refused_.name = "(other)";
      refused_.error = "more than " + std::to_string(kMaxGames) + " game names: not loaded";
    }
    return &refused_;
  }
  GameInfo& g = games_.emplace_back();
  g.name = std::string(name);
  g.server_version = std::string(server_version);
  if (name.empty()) {
    g.error = "MatchFound names no game";
  } else if (!module_name_ok(name)) {
    g.error = "not a bundled module name ([a-z0-9_-]{1,32}): not loaded";
  } else {
    std::string error;
    // The server checks state_bytes against its own limit; a bot only needs
    // the table (views are at most SKIRMISH_MAX_VIEW_BYTES whatever it says).
    auto m = module::load(g.name, module::Limits{.max_state_bytes = 1u << 30}, error);
    if (m) {
      g.table = m->game;
      g.module_path = m->path;
      g.module_version = m->game->version;
      if (!g.server_version.empty() && g.server_version != g.module_version)
        g.note = "the server runs version " + g.server_version + ", the module loaded here is " + g.module_version;
    } else {
      g.error = error + " (SKIRMISH_GAMES_DIR names the folder of " + g.name + ".so)";
    }
  }
  return &g;
}

std::vector<GameInfo> Games::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<GameInfo> out(games_.begin(), games_.end());
  if (!refused_.error.empty()) out.push_back(refused_);
  return out;
}

struct Shard::Bot {
  enum class Phase : uint8_t { Waiting, Connecting, Idle, Queued, Playing, Closed };

  Shard* shard;
  uint32_t id;
  Phase phase = Phase::Waiting;
  std::unique_ptr<client::Client> c;
  uint64_t rng;
  uint64_t connect_ns = 0, queue_ns = 0, ping_ns = 0;
  uint32_t ping_nonce = 0;
  bool status_asked = false;  // QueueStatus asked after a resume, not yet answered
  bool churning = false;      // closed by --churn: joins again as a new player once closed
  const GameInfo* game = nullptr;  // of the current match
  // Inputs sent and not yet seen applied: a ring of (seq, send time).
  uint32_t pend_seq[kPending];
  uint64_t pend_ns[kPending];
  uint32_t pend_head = 0, pend_n = 0;
  // The current match.
  uint32_t match_id = 0;
  uint32_t match_snapshots = 0;
  uint64_t first_snapshot_ns = 0, last_snapshot_ns = 0;

  Bot(Shard* s, uint32_t bot_id, uint64_t seed) : shard(s), id(bot_id), rng(seed * 0x9E3779B97F4A7C15ull + bot_id + 1) {
    if (rng == 0) rng = 1;
    client::Options o;
    o.name = s->opts_.name_prefix + std::to_string(bot_id);
    o.reconnect.enabled = true;
    o.poll_reads = s->poll_mode_;
    o.rx_timestamps = s->opts_.rx_kernel;
    c = std::make_unique<client::Client>(&s->loop_, o);
    auto& cb = c->callbacks();
    cb.on_connected = [this](int status) {
      if (status != 0) ++shard->local_.connect_failures;
      else if (shard->use_set_) shard->reader_.add(c->fd(), id - shard->first_bot_);
    };
    cb.on_welcome = [this](const proto::Welcome& w) {
      if (w.resumed()) {
        ++shard->local_.resumes;
        if (w.match_id() != 0) {
          phase = Phase::Playing;  // MatchFound follows
        } else {
          // Queued still, or not (a QueueJoin lost with the old worker; a
          // match that ended meanwhile, whose MatchEnd follows): ask.
          phase = Phase::Queued;
          if (c->queue_status() == 0) status_asked = true;
        }
        return;
      }
      shard->local_.connect_welcome.record(rx_now() - connect_ns);
      if (const auto* v = w.server_version(); v != nullptr && shard->server_version_.empty()) {
        std::lock_guard<std::mutex> lock(shard->mu_);
        shard->server_version_ = v->str();
      }
      queue();
    };
    cb.on_reconnecting = [this](uint32_t attempt, uint32_t, int) {
      if (attempt == 1) ++shard->local_.drops;
      pend_n = 0;  // what was in flight is not measured across a drop
      phase = Phase::Connecting;
    };
    cb.on_pong = [this](uint32_t rtt_us, uint32_t) {
      // The library measures to the moment it dispatched the Pong; less the
      // read delay, it is measured to the kernel's receive time.
      const uint64_t read = now_ns(), delay = read - rx_now(read);
      const uint64_t rtt = uint64_t(rtt_us) * 1000;
      shard->local_.ping_rtt.record(rtt > delay ? rtt - delay : 0);
    };
    cb.on_match_found = [this](const proto::MatchFound& m) {
      if (m.match_id() == match_id && phase == Phase::Playing) return;  // again, after a resume
      if (phase == Phase::Queued) shard->local_.queue_match.record(rx_now() - queue_ns);
      ++shard->local_.matches_found;
      phase = Phase::Playing;
      match_id = m.match_id();
      const auto* gname = m.game();
      const auto* gver = m.game_version();
      game = shard->game(gname != nullptr ? gname->string_view() : std::string_view(),
                         gver != nullptr ? gver->string_view() : std::string_view());
      if (!game->has_bot_input()) ++shard->local_.matches_without_bot;
      match_snapshots = 0;
      pend_n = 0;
    };
    cb.on_snapshot = [this](const client::World& w) { on_snapshot(w); };
    cb.on_match_end = [this](const proto::MatchEnd&) {
      ++shard->local_.matches_ended;
      if (match_snapshots > 1 && last_snapshot_ns > first_snapshot_ns) {
        const double secs = double(last_snapshot_ns - first_snapshot_ns) / 1e9;
        shard->local_.snapshot_rate.record(uint64_t(double(match_snapshots - 1) / secs * 1000.0));
      }
      match_id = 0;
      queue();
    };
    cb.on_queue_status = [this](const proto::QueueStatus& st) {
      // Only the answer to our own question, with no QueueJoin sent since.
      if (status_asked && st.state() == proto::QueueState::Idle && phase == Phase::Queued) queue();
      status_asked = false;
    };
    cb.on_error = [this](proto::ErrorCode code, std::string_view, bool) {
      const size_t i = size_t(code);
      if (i < shard->local_.errors.size()) ++shard->local_.errors[i];
    };
    cb.on_closed = [this](int) {
      if (churning && !shard->stopping_) {
        churning = false;
        connect();  // a new player: Hello, not Resume
        return;
      }
      if (phase == Phase::Connecting && shard->stopping_ == false) ++shard->local_.connect_failures;
      phase = Phase::Closed;
    };
  }

  void connect() {
    phase = Phase::Connecting;
    pend_n = 0;
    match_id = 0;
    connect_ns = now_ns();
    if (c->connect(shard->opts_.host.c_str(), shard->opts_.port) != 0) {
      ++shard->local_.connect_failures;
      phase = Phase::Closed;
    }
  }

  void queue() {
    status_asked = false;  // a QueueJoin answers the question
    if (c->queue_join() == 0) {
      phase = Phase::Queued;
      queue_ns = now_ns();
    }
  }

  // The game's bot decides from the newest view of this match; nothing is
  // sent before the first view, or when the game has no bot_input.
  void send_input() {
    if (phase != Phase::Playing || c->state() != client::State::Ready) return;
    if (game == nullptr || !game->has_bot_input()) return;
    const client::World* w = c->world();
    if (w == nullptr || w->match_id != match_id) return;
    uint8_t in[SKIRMISH_MAX_INPUT_BYTES];
    const uint32_t cap = c->max_input_bytes() > 0 ? std::min<uint32_t>(sizeof in, c->max_input_bytes()) : sizeof in;
    const uint32_t n = game->table->bot_input(w->data(), w->size(), c->slot(), &rng, in, cap);
    if (rng == 0) rng = 1;  // the ABI promises the module a non-zero state
    if (n == 0 || n > cap) {
      ++shard->local_.bot_idle;
      return;
    }
    // The send time is taken before the send: after it, a preempted bot
    // thread could read the clock after the server had already answered
    // (the kernel clock dates the answer exactly, so that showed as a few
    // latencies < 0 in 500,000 at 1,000 bots).
    const uint64_t sent_ns = now_ns();
    if (c->send_input(in, n) != 0) return;
    ++shard->local_.inputs_sent;
    if (pend_n == kPending) {  // the oldest never came back in time: forget it
      pend_head = (pend_head + 1) % kPending;
      --pend_n;
    }
    const uint32_t at = (pend_head + pend_n) % kPending;
    pend_seq[at] = c->last_input_seq();
    pend_ns[at] = sent_ns;
    ++pend_n;
  }

  // When the bytes being dispatched arrived, on uv_hrtime's clock: the
  // kernel's RX timestamp (CLOCK_REALTIME) plus the shard's offset, or the
  // read time `read` without the kernel clock or a timestamp. TCP stamps a
  // read with its newest segment, so when one read carried two snapshots
  // the first is dated at the second's arrival: its samples look longer, by
  // at most the gap between the two (less than the time between two reads:
  // a slot). stats().reads_multi_snapshot counts such reads.
  uint64_t rx_now(uint64_t read) {
    if (!shard->opts_.rx_kernel) return read;
    const uint64_t rt = c->rx_realtime_ns();
    if (rt == 0) return read;  // counted by the library: reads_without_rx_time
    const uint64_t at = uint64_t(int64_t(rt) + shard->mono_minus_rt_ns_);
    if (at > read) {  // the offset is off: never date an arrival after its read
      ++shard->local_.rx_after_read;
      return read;
    }
    return at;
  }
  uint64_t rx_now() { return rx_now(now_ns()); }

  void on_snapshot(const client::World& w) {
    const uint64_t read = now_ns();
    const uint64_t now = rx_now(read);
    const bool kernel = shard->opts_.rx_kernel;
    ++shard->local_.snapshots;
    shard->local_.view_bytes += w.size();
    if (kernel) shard->local_.read_delay.record(read - now);
    if (match_snapshots++ == 0) first_snapshot_ns = now;
    last_snapshot_ns = now;
    while (pend_n > 0 && pend_seq[pend_head] <= w.last_input_seq) {
      const uint64_t sent = pend_ns[pend_head];
      if (now >= sent) shard->local_.input_snapshot.record(now - sent);
      else ++shard->local_.latency_negative;
      if (kernel && read >= sent) shard->local_.input_snapshot_read.record(read - sent);
      pend_head = (pend_head + 1) % kPending;
      --pend_n;
    }
    if (shard->opts_.rate <= 0) send_input();  // closed model: one input per snapshot
  }

  void ping() {
    if (c->state() == client::State::Ready) c->ping();
  }
};

Shard::Shard(const Options& opts, Games* games, uint32_t index, uint32_t first_bot, uint32_t bots)
    : opts_(opts), games_(games), index_(index), first_bot_(first_bot), n_bots_(bots) {}

const GameInfo* Shard::game(std::string_view name, std::string_view server_version) {
  if (last_game_ == nullptr || last_game_->name != name) last_game_ = games_->get(name, server_version);
  return last_game_;
}

Shard::~Shard() { join(); }

void Shard::start() {
  // The loop and its async exist before the thread does, so stop() is safe
  // from the moment start() returns; from then on only the thread touches
  // the loop.
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &stop_async_, [](uv_async_t* a) { static_cast<Shard*>(a->data)->close_all(); });
  stop_async_.data = this;
  thread_ = std::thread([this] { run(); });
}

void Shard::stop() { uv_async_send(&stop_async_); }

void Shard::join() {
  if (thread_.joinable()) thread_.join();
}

void Shard::take(Metrics& into, Gauges& g) {
  std::lock_guard<std::mutex> lock(mu_);
  into.merge(pending_);
  pending_ = Metrics();
  g.add(gauges_);
}

std::string Shard::server_version() {
  std::lock_guard<std::mutex> lock(mu_);
  return server_version_;
}

void Shard::sample_clock_offset() {
  // The midpoint of two CLOCK_MONOTONIC reads around one CLOCK_REALTIME
  // read (vDSO calls, well under a microsecond apart), the tightest of 4
  // tries, and kept only when its two reads are under 20 us apart: a thread
  // preempted between them would otherwise shift every arrival until the
  // next sample (it did: a few latencies < 0 at 1,000 bots). The two clocks
  // are slewed alike, so the offset moves only when the wall clock is
  // stepped; it is sampled again at every publish (4 times a second).
  uint64_t best_gap = UINT64_MAX;
  int64_t best = 0;
  for (int i = 0; i < 4; ++i) {
    timespec rt{};
    const uint64_t m1 = now_ns();
    clock_gettime(CLOCK_REALTIME, &rt);
    const uint64_t m2 = now_ns();
    const int64_t r = int64_t(rt.tv_sec) * 1000000000ll + int64_t(rt.tv_nsec);
    if (m2 - m1 < best_gap) {
      best_gap = m2 - m1;
      best = int64_t(m1 + (m2 - m1) / 2) - r;
    }
  }
  if (best_gap < 20000 || !offset_sampled_) mono_minus_rt_ns_ = best;
  offset_sampled_ = true;
}

void Shard::run() {
  poll_mode_ = opts_.read_at_slots || opts_.rx_kernel;
  use_set_ = poll_mode_ && !(opts_.read_at_slots && opts_.slot_reads_own);
  sample_clock_offset();
  if (use_set_) {
    reader_.init([this](uint32_t i) {
      if (i < bots_.size()) bots_[i]->c->poll_read();
    }, n_bots_);
    // Not at the slots: the set is drained whenever any bot is readable.
    if (!opts_.read_at_slots) reader_.on_readable(&loop_);
  }
  bots_.reserve(n_bots_);
  for (uint32_t i = 0; i < n_bots_; ++i) bots_.push_back(std::make_unique<Bot>(this, first_bot_ + i, opts_.seed));
  start_ns_ = now_ns();

  auto init_timer = [this](uv_timer_t& t) {
    uv_timer_init(&loop_, &t);
    t.data = this;
  };
  init_timer(ramp_timer_);
  init_timer(clock_timer_);
  init_timer(ping_timer_);
  init_timer(publish_timer_);
  init_timer(churn_timer_);
  if (opts_.churn_per_min > 0)
    uv_timer_start(&churn_timer_, [](uv_timer_t* t) { static_cast<Shard*>(t->data)->on_churn(); }, 1000, 1000);
  uv_timer_start(&ramp_timer_, [](uv_timer_t* t) { static_cast<Shard*>(t->data)->on_ramp(); }, 0, 10);
  if (opts_.rate > 0) {
    const double slot_ms = 1000.0 / opts_.rate / kClockSlots;
    uv_timer_start(&clock_timer_, [](uv_timer_t* t) { static_cast<Shard*>(t->data)->on_clock(); }, 1,
                   std::max<uint64_t>(1, uint64_t(slot_ms)));
  }
  const uint64_t ping_ms = std::max<uint64_t>(10, uint64_t(opts_.ping_interval_s * 1000 / kPingSlots));
  uv_timer_start(&ping_timer_, [](uv_timer_t* t) { static_cast<Shard*>(t->data)->on_pings(); }, ping_ms, ping_ms);
  uv_timer_start(&publish_timer_, [](uv_timer_t* t) { static_cast<Shard*>(t->data)->on_publish(); }, 0, kPublishMs);

  uv_run(&loop_, UV_RUN_DEFAULT);
  on_publish();  // the last interval
  bots_.clear();
  for (int i = 0; i < 100 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
  }
  uv_loop_close(&loop_);
}

void Shard::on_ramp() {
  // This shard's share of the ramp, by elapsed time.
  const double per_s = opts_.ramp / double(std::max<uint32_t>(1, opts_.threads));
  const double secs = double(now_ns() - start_ns_) / 1e9;
  const uint32_t due = std::min<uint32_t>(n_bots_, uint32_t(per_s * secs) + 1);
  while (connected_ < due) bots_[connected_++]->connect();
  if (connected_ == n_bots_) uv_timer_stop(&ramp_timer_);
}

void Shard::on_clock() {
  // Slots are due by elapsed time, so a late timer catches up: the input
  // schedule is the clock's, not the loop's.
  const double slot_ns = 1e9 / opts_.rate / kClockSlots;
  const uint64_t due = uint64_t(double(now_ns() - start_ns_) / slot_ns);
  // Reading at the slots: first what has arrived for every bot of the
  // thread (one epoll_wait, one read per socket that has bytes), so each
  // bot decides its input from its newest view.
  const bool own = opts_.read_at_slots && !use_set_;
  if (opts_.read_at_slots && use_set_ && clock_slots_done_ < due) reader_.drain(n_bots_);
  uint32_t guard = 0;
  while (clock_slots_done_ < due && guard++ < kClockSlots * 4) {
    const uint32_t slot = uint32_t(clock_slots_done_ % kClockSlots);
    if (own)  // --slot-reads own: only this slot's bots, one read each
      for (uint32_t i = slot; i < connected_; i += kClockSlots) bots_[i]->c->poll_read();
    for (uint32_t i = slot; i < connected_; i += kClockSlots) bots_[i]->send_input();
    ++clock_slots_done_;
  }
  if (clock_slots_done_ < due) clock_slots_done_ = due;  // more than 4 periods behind: skip, not burst
}

void Shard::on_churn() {
  // This second's share of the churn; the fraction carries over.
  churn_due_ += double(n_bots_) * opts_.churn_per_min / 60.0;
  uint64_t& rng = churn_rng_;
  for (uint32_t tries = 0; churn_due_ >= 1.0 && tries < 4 * n_bots_ && connected_ > 0; ++tries) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    Bot& b = *bots_[rng % connected_];
    if (b.churning || b.phase == Bot::Phase::Waiting || b.phase == Bot::Phase::Connecting ||
        b.phase == Bot::Phase::Closed)
      continue;
    b.churning = true;
    ++local_.churned;
    churn_due_ -= 1.0;
    b.c->close();  // mid-match or not: players leave when they leave
  }
}

void Shard::on_pings() {
  for (uint32_t i = ping_slot_; i < connected_; i += kPingSlots) bots_[i]->ping();
  ping_slot_ = (ping_slot_ + 1) % kPingSlots;
}

void Shard::on_publish() {
  sample_clock_offset();
  uint64_t fi = 0, fo = 0, bi = 0, bo = 0, wqf = 0, rd = 0, rdm = 0, rdn = 0;
  Snap sn;
  Gauges g;
  for (const auto& b : bots_) {
    const auto& st = b->c->stats();
    fi += st.frames_in;
    fo += st.frames_out;
    bi += st.bytes_in;
    bo += st.bytes_out;
    wqf += st.write_queue_full;
    rd += st.reads;
    rdm += st.reads_multi_snapshot;
    rdn += st.reads_without_rx_time;
    sn.full += st.snapshots_full;
    sn.delta += st.snapshots_delta;
    sn.bytes_full += st.snapshot_bytes_full;
    sn.bytes_delta += st.snapshot_bytes_delta;
    sn.missing_base += st.snapshots_missing_base;
    sn.bad_delta += st.snapshots_bad_delta;
    switch (b->phase) {
      case Bot::Phase::Waiting:
      case Bot::Phase::Connecting: ++g.connecting; break;
      case Bot::Phase::Idle: ++g.idle; break;
      case Bot::Phase::Queued: ++g.queued; break;
      case Bot::Phase::Playing: ++g.in_match; break;
      case Bot::Phase::Closed: ++g.closed; break;
    }
  }
  // What came since the last publish; the totals are kept for the next one.
  const auto since = [](uint64_t now, uint64_t& last) {
    const uint64_t d = now - last;
    last = now;
    return d;
  };
  local_.frames_in = since(fi, last_frames_in_);
  local_.frames_out = since(fo, last_frames_out_);
  local_.bytes_in = since(bi, last_bytes_in_);
  local_.bytes_out = since(bo, last_bytes_out_);
  local_.write_queue_full = since(wqf, last_wqf_);
  local_.reads = since(rd, last_reads_);
  local_.reads_multi_snapshot = since(rdm, last_reads_multi_);
  local_.reads_without_rx_time = since(rdn, last_reads_no_ts_);
  local_.snapshots_full = sn.full - last_snap_.full;
  local_.snapshots_delta = sn.delta - last_snap_.delta;
  local_.snapshot_bytes_full = sn.bytes_full - last_snap_.bytes_full;
  local_.snapshot_bytes_delta = sn.bytes_delta - last_snap_.bytes_delta;
  local_.snapshots_missing_base = sn.missing_base - last_snap_.missing_base;
  local_.snapshots_bad_delta = sn.bad_delta - last_snap_.bad_delta;
  last_snap_ = sn;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.merge(local_);
  local_ = Metrics();
  gauges_ = g;
}

void Shard::close_all() {
  stopping_ = true;
  // Matches still running count for the snapshot rate too (a short run
  // may end none).
  for (auto& b : bots_)
    if (b->phase == Bot::Phase::Playing && b->match_snapshots > 1 && b->last_snapshot_ns > b->first_snapshot_ns) {
      const double secs = double(b->last_snapshot_ns - b->first_snapshot_ns) / 1e9;
      local_.snapshot_rate.record(uint64_t(double(b->match_snapshots - 1) / secs * 1000.0));
    }
  for (auto& b : bots_) b->c->close();
  for (uv_timer_t* t : {&ramp_timer_, &clock_timer_, &ping_timer_, &publish_timer_, &churn_timer_})
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_async_), nullptr);
  reader_.close();
}

}  // namespace skirmish::loadtest
