// skirmish-bench-game: CPU figures of the game-side hot paths (bench/README.md).
//
// Figures, not a test: it prints, it never passes or fails on a number.
// One process, one thread, no sockets, no shared-memory segment. The games
// are loaded as modules through server/module, exactly as the server loads
// them (--game, repeatable: a bundled name or a path; default arena and
// battleship). Three questions, one section each:
//
//   1. matchmaking  How fast does matchmaking::form_matches group 10,000
//                   queued tickets (ratings ~ N(1500, 300), joined uniformly
//                   over the last 30 s, match_size 4, default Params)? Solo
//                   tickets only, then 20 % of the tickets in parties of 2.
//                   Each timed call gets a fresh copy of the same tickets;
//                   the copy is made outside the timed region.
//   2. ticks        How many match ticks does one core sustain, per game?
//                   One tick is what a worker does per match: lock the
//                   match's robust mutex, copy the published state
//                   (state_bytes) out of a ring of 8 buffers, step() it with
//                   the tick's inputs, ask outcome() whether it ended, copy
//                   the result into the next buffer, publish the new index,
//                   unlock. Each rate is given by the wall clock and by this
//                   thread's CPU time (the one to compare on a shared
//                   machine). Over --matches matches in
//                   a plain array, round robin, for --seconds; then, on one
//                   state in cache, step() + outcome() (the server asks
//                   outcome() after every step: has the match ended?), that
//                   plus view() of every seat (one view for a SHARED_VIEW
//                   game), and outcome() alone, for reference.
//   3. snapshots    How big is a Snapshot frame of a match with default
//                   params: full (the view) vs delta (protocol/view_delta.h
//                   between the views at tick t-2 and t), per seat, over
//                   --snapshot-ticks ticks of play. Every delta is applied
//                   back and must rebuild the view byte for byte.
//
// Inputs. The arena ("wander"): each player holds a random move (-100..100
// on each axis) for a random 5..60 ticks, then picks another, and presses
// tag on 1 tick in 8, as the pre-module benchmark did, so the figures
// compare. Any other game ("bot"): the module's own bot_input, played
// ahead of time for kTicks ticks against a real match and recorded; every
// match replays that table (inputs of one match are valid bytes for
// another; the game ignores what does not apply). Inputs are drawn in
// advance, so the tick figures do not include an rng or a bot. A match
// that ends is re-initialised in its slot with a new seed, so every
// counted tick is a real step.
//
// Everything is seeded from --seed: two runs with the same seed play the
// same games and form the same matches; only the times differ.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "games/arena/arena.h"
#include "matchmaking/matchmaker.h"
#include "module/module.h"
#include "protocol/codec.h"
#include "protocol/view_delta.h"
#include "shm/robust_mutex.h"

namespace mm = skirmish::matchmaking;
namespace mod = skirmish::module;
namespace proto = skirmish::proto;
namespace shm = skirmish::shm;

using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::uint64_t seed = 1;
  double seconds = 2.0;             // ticks: measured seconds of each tick run
  std::uint32_t matches = 1000;     // ticks: matches in the array
  std::uint32_t players = 4;        // per match, clamped into the game's range
  std::uint32_t mm_tickets = 10000; // matchmaking: tickets per call
  std::uint32_t mm_calls = 20;      // matchmaking: timed calls per case
  std::uint32_t snapshot_ticks = 1000;
  std::vector<std::string> games;
  bool skip_matchmaking = false;
};

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// This thread's CPU time, s: on a shared machine the wall-clock rate is
// diluted by whoever else runs; the CPU-time rate is what one core does.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// "1234567" -> "1,234,567": the figures are easier to read with separators.
std::string grouped(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  std::string digits = buf;
  std::string out;
  const std::size_t start = (!digits.empty() && digits[0] == '-') ? 1 : 0;
  out = digits.substr(0, start);
  const std::size_t n = digits.size() - start;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[start + i];
  }
  return out;
}

// ------------------------------------------------------------ 1. matchmaking

std::vector<mm::Ticket> make_tickets(std::uint64_t seed, std::uint32_t count,
                                     double party_fraction, std::int64_t now_ms) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> rating(1500.0, 300.0);
  std::uniform_int_distribution<std::int64_t> age(0, 29999);  // last 30 s
  std::uniform_int_distribution<std::int64_t> party_lag(0, 2000);
  // Party members: an even number of tickets, paired in order.
  std::uint32_t in_parties =
      static_cast<std::uint32_t>(std::llround(count * party_fraction));
  in_parties -= in_parties % 2;

  std::vector<mm::Ticket> tickets;
  tickets.reserve(count);
  std::uint32_t party_key = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    mm::Ticket t{};
    t.id = i + 1;
    t.rating = static_cast<float>(rating(rng));
    t.joined_ms = now_ms - age(rng);
    t.mode = 0;
    t.party_size = 1;
    t.party_key = 0;
    if (i < in_parties) {
      if (i % 2 == 0) {
        ++party_key;
      } else {
        // The second member joins up to 2 s after the first (not in the
        // future), with its own rating: parties mix skill levels.
        t.joined_ms = std::min(now_ms, tickets.back().joined_ms + party_lag(rng));
      }
      t.party_key = party_key;
      t.party_size = 2;
    }
    tickets.push_back(t);
  }
  // The coordinator's table is in slot order, not in any useful order.
  std::shuffle(tickets.begin(), tickets.end(), rng);
  return tickets;
}

void bench_matchmaking(const Options& opt, const char* label, double party_fraction) {
  const std::int64_t now_ms = 10'000'000;
  const mm::Params params{};  // match_size 4 and the default windows
  const std::vector<mm::Ticket> tickets =
      make_tickets(opt.seed, opt.mm_tickets, party_fraction, now_ms);
  std::size_t party_tickets = 0;
  for (const mm::Ticket& t : tickets) party_tickets += t.party_key != 0;

  std::vector<double> ms;
  std::size_t match_count = 0;
  std::vector<mm::Match> last;
  for (std::uint32_t call = 0; call <= opt.mm_calls; ++call) {  // call 0: warm-up
    std::vector<mm::Ticket> copy = tickets;
    const auto t0 = Clock::now();
    std::vector<mm::Match> matches = mm::form_matches(params, copy, now_ms);
    const auto t1 = Clock::now();
    if (call > 0 && matches.size() != match_count) {
      std::fprintf(stderr, "matchmaking: not deterministic: %zu then %zu matches\n",
                   match_count, matches.size());
      std::exit(1);
    }
    match_count = matches.size();
    if (call > 0) ms.push_back(seconds_between(t0, t1) * 1e3);
    last = std::move(matches);
  }

  // Sanity: every match has match_size distinct tickets, each used once, and
  // (no unit is past max wait here) a spread within every unit's window.
  std::vector<const mm::Ticket*> by_id(opt.mm_tickets + 1, nullptr);
  for (const mm::Ticket& t : tickets) by_id[t.id] = &t;
  std::vector<bool> used(opt.mm_tickets + 1, false);
  double spread_sum = 0, spread_max = 0;
  std::size_t players = 0, window_violations = 0;
  for (const mm::Match& m : last) {
    if (m.tickets.size() != params.match_size) {
      std::fprintf(stderr, "matchmaking: a match of %zu tickets\n", m.tickets.size());
      std::exit(1);
    }
    for (std::uint32_t id : m.tickets) {
      if (id == 0 || id > opt.mm_tickets || used[id]) {
        std::fprintf(stderr, "matchmaking: ticket %u twice or unknown\n", id);
        std::exit(1);
      }
      used[id] = true;
    }
    // Units: a solo, or the adjacent members of one party (mean rating,
    // earliest join).
    double lo = 1e300, hi = -1e300, min_window = 1e300;
    for (std::size_t i = 0; i < m.tickets.size();) {
      const mm::Ticket& head = *by_id[m.tickets[i]];
      std::size_t end = i + 1;
      if (head.party_key != 0) {
        while (end < m.tickets.size() && by_id[m.tickets[end]]->party_key == head.party_key)
          ++end;
      }
      double sum = 0;
      std::int64_t joined = head.joined_ms;
      for (std::size_t k = i; k < end; ++k) {
        sum += by_id[m.tickets[k]]->rating;
        joined = std::min(joined, by_id[m.tickets[k]]->joined_ms);
      }
      const double r = sum / static_cast<double>(end - i);
      lo = std::min(lo, r);
      hi = std::max(hi, r);
      min_window = std::min<double>(min_window, mm::window_at(params, now_ms - joined));
      i = end;
    }
    if (hi - lo > min_window + 1e-3) ++window_violations;
    players += m.tickets.size();
    spread_sum += m.rating_spread;
    spread_max = std::max<double>(spread_max, m.rating_spread);
  }
  // Who is left: the tails of the rating curve, too young to reach anyone.
  std::size_t left = 0;
  double left_lo = 1e300, left_hi = -1e300;
  std::int64_t left_oldest_ms = 0;
  for (const mm::Ticket& t : tickets) {
    if (used[t.id]) continue;
    ++left;
    left_lo = std::min<double>(left_lo, t.rating);
    left_hi = std::max<double>(left_hi, t.rating);
    left_oldest_ms = std::max(left_oldest_ms, now_ms - t.joined_ms);
  }

  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
  const double median_ms = sorted[sorted.size() / 2];
  std::printf(
      "matchmaking (%s): %u tickets (%zu in parties of 2) -> %zu matches (%zu players, "
      "%.1f%%) in %.2f ms/call (median of %zu; mean %.2f, min %.2f, max %.2f) = %s matches/s\n",
      label, opt.mm_tickets, party_tickets, match_count, players,
      100.0 * players / opt.mm_tickets, median_ms, ms.size(), mean_ms, sorted.front(),
      sorted.back(), grouped(match_count / (median_ms / 1e3)).c_str());
  std::printf(
      "matchmaking (%s):   rating spread per match: mean %.1f, max %.1f; matches wider than "
      "a member's window: %zu\n",
      label, match_count ? spread_sum / match_count : 0.0, spread_max, window_violations);
  if (left > 0) {
    std::printf("matchmaking (%s):   left waiting: %zu tickets, ratings %.0f..%.0f, oldest "
                "waited %.1f s\n",
                label, left, left_lo, left_hi, left_oldest_ms / 1e3);
  }
}

// ------------------------------------------------------------ the game

// 16-byte aligned storage, as the server hands a module its state.
struct Aligned {
  explicit Aligned(std::size_t n) : raw(n + 64) {}
  std::uint8_t* data() {
    const auto a = reinterpret_cast<std::uintptr_t>(raw.data());
    return raw.data() + ((64 - (a & 63)) & 63);
  }
  std::vector<std::uint8_t> raw;
};

struct Game {
  const skirmish_game_v1_t* t = nullptr;
  mod::GameParams params;
  std::uint32_t players = 0;
  bool ended(const std::uint8_t* state) const {
    skirmish_outcome o;
    t->outcome(state, &o);
    return o.end != SKIRMISH_RUNNING;
  }
  std::uint32_t views_per_tick() const { return (t->flags & SKIRMISH_GAME_SHARED_VIEW) != 0 ? 1 : players; }
};

// Inputs drawn in advance: table[t] is tick t's inputs (at most one per
// seat), as bytes; seq is filled in per match. A seat's slot is the
// module's max_input_bytes wide, so a tick's row is as compact as the
// module allows (arena: 12 bytes) and the figure is the tick's cost, not
// this table's cache misses (56-byte slots made it a 900 KB table read at
// a random row per match: 4 cold lines a tick).
class InputTable {
 public:
  static constexpr std::uint32_t kTicks = 4096;  // a power of two

  InputTable(const Game& g, std::uint64_t seed) : g_(g), players_(g.players), slot_(g.t->max_input_bytes) {
    bytes_.assign(std::size_t(kTicks) * players_ * slot_, 0);
    lens_.assign(std::size_t(kTicks) * players_, 0);
    if (std::string(g.t->name) == "arena") wander(seed);
    else record_bots(seed);
  }

  // Tick `t`'s inputs into items (at most `players` of them); seq = tick,
  // strictly increasing within a match.
  std::uint32_t fill(std::uint32_t t, std::uint32_t seq, skirmish_input* items) const {
    const std::uint32_t row = t & (kTicks - 1);
    std::uint32_t n = 0;
    for (std::uint32_t s = 0; s < players_; ++s) {
      const std::uint8_t len = lens_[row * players_ + s];
      if (len == 0) continue;
      items[n++] = skirmish_input{std::uint8_t(s), len, 0, seq, &bytes_[(std::size_t(row) * players_ + s) * slot_]};
    }
    return n;
  }
  const char* kind() const { return kind_; }

 private:
  std::uint8_t* at(std::uint32_t t, std::uint32_t s) {
    return &bytes_[(std::size_t(t) * players_ + s) * slot_];
  }

  void wander(std::uint64_t seed) {
    kind_ = "wander";
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> axis(-ARENA_MAX_MOVE, ARENA_MAX_MOVE);
    std::uniform_int_distribution<int> hold(5, 60);
    std::uniform_int_distribution<int> press(0, 7);
    for (std::uint32_t i = 0; i < players_; ++i) {
      int left = 0;
      std::int8_t mx = 0, my = 0;
      for (std::uint32_t t = 0; t < kTicks; ++t) {
        if (left-- <= 0) {
          mx = static_cast<std::int8_t>(axis(rng));
          my = static_cast<std::int8_t>(axis(rng));
          left = hold(rng);
        }
        const arena_input in{mx, my, std::uint8_t(press(rng) == 0 ? ARENA_BUTTON_TAG : 0)};
        std::memcpy(at(t, i), &in, sizeof in);
        lens_[t * players_ + i] = ARENA_INPUT_BYTES;
      }
    }
  }

  // The module's bot, against a real match (restarted when it ends).
  void record_bots(std::uint64_t seed) {
    kind_ = g_.t->bot_input != nullptr ? "bot" : "none (no bot_input)";
    if (g_.t->bot_input == nullptr) return;
    Aligned st(g_.t->state_bytes), view(g_.t->max_view_bytes);
    std::uint64_t match_seed = seed;
    g_.t->init(st.data(), g_.params.view(), players_, match_seed);
    std::vector<std::uint64_t> rng(players_);
    for (std::uint32_t s = 0; s < players_; ++s) rng[s] = seed * 2654435761u + s + 1;
    std::vector<skirmish_input> items(players_);
    for (std::uint32_t t = 0; t < kTicks; ++t) {
      for (std::uint32_t s = 0; s < players_; ++s) {
        const std::uint32_t len = g_.t->view(st.data(), s, view.data(), g_.t->max_view_bytes);
        const std::uint32_t n = g_.t->bot_input(view.data(), len, s, &rng[s], at(t, s), g_.t->max_input_bytes);
        lens_[t * players_ + s] =
            std::uint8_t(n <= g_.t->max_input_bytes && g_.t->check_input(at(t, s), n) == SKIRMISH_INPUT_OK ? n : 0);
      }
      const std::uint32_t n = fill(t, t + 1, items.data());
      const skirmish_inputs in{items.data(), n, 0xFFFFu};
      g_.t->step(st.data(), &in, t + 1);
      if (g_.ended(st.data())) g_.t->init(st.data(), g_.params.view(), players_, ++match_seed);
    }
  }

  const Game& g_;
  std::uint32_t players_;
  std::uint32_t slot_;  // bytes per seat and tick: the module's max_input_bytes
  std::vector<std::uint8_t> bytes_;
  std::vector<std::uint8_t> lens_;
  const char* kind_ = "";
};

// ------------------------------------------------------------ 2. ticks

constexpr std::uint32_t kRing = 8;

struct alignas(64) BenchMatch {
  shm::RobustMutex mu;
  std::uint32_t index;        // the published buffer
  std::uint32_t input_phase;  // where this match reads the input table
  std::uint32_t tick;         // steps since its init
  std::uint64_t seed;
  std::uint8_t* ring;         // kRing buffers of `stride` bytes
};

void bench_ticks(const Options& opt, const Game& g) {
  const skirmish_game_v1_t* t = g.t;
  const InputTable inputs(g, opt.seed ^ 0x7469636bull);
  const std::size_t stride = (t->state_bytes + 63) / 64 * 64;
  Aligned storage(stride * kRing * opt.matches);
  std::vector<BenchMatch> matches(opt.matches);
  std::mt19937_64 rng(opt.seed);
  for (std::uint32_t m = 0; m < opt.matches; ++m) {
    BenchMatch& bm = matches[m];
    std::memset(static_cast<void*>(&bm), 0, sizeof bm);
    if (int rc = shm::init_robust_mutex(bm.mu); rc != 0) {
      std::fprintf(stderr, "ticks: init_robust_mutex: %s\n", std::strerror(rc));
      std::exit(1);
    }
    bm.seed = rng();
    bm.input_phase = static_cast<std::uint32_t>(rng());
    bm.ring = storage.data() + stride * kRing * m;
    t->init(bm.ring, g.params.view(), g.players, bm.seed);
  }

  Aligned local(stride);
  std::vector<skirmish_input> items(g.players);
  std::uint64_t restarts = 0;
  auto tick = [&](BenchMatch& bm) {
    shm::Guard guard(bm.mu);
    if (!guard.ok()) {
      std::fprintf(stderr, "ticks: lock failed: %s\n", std::strerror(guard.error()));
      std::exit(1);
    }
    std::uint8_t* s = local.data();
    std::memcpy(s, bm.ring + stride * bm.index, t->state_bytes);  // out of the published buffer
    if (g.ended(s)) {
      t->init(s, g.params.view(), g.players, ++bm.seed);
      bm.tick = 0;
      ++restarts;
    }
    ++bm.tick;
    const std::uint32_t n = inputs.fill(bm.input_phase + bm.tick, bm.tick, items.data());
    const skirmish_inputs in{items.data(), n, 0xFFFFu};
    t->step(s, &in, bm.tick);
    const std::uint32_t next = (bm.index + 1) % kRing;
    std::memcpy(bm.ring + stride * next, s, t->state_bytes);  // into the next buffer
    bm.index = next;                                          // publish
  };

  for (BenchMatch& bm : matches) tick(bm);  // warm-up: one round (faults the pages in)
  restarts = 0;
  std::uint64_t ticks = 0;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(opt.seconds);
  auto t1 = t0;
  do {
    for (BenchMatch& bm : matches) tick(bm);
    ticks += matches.size();
    t1 = Clock::now();
  } while (t1 < deadline);
  const double s = seconds_between(t0, t1);
  const double cpu_rate = ticks / std::max(cpu_seconds() - c0, 1e-9);
  const double rate = ticks / s;
  const std::uint32_t hz = g.params.view()->tick_rate_hz;
  std::printf("%s ticks (lock + copy %u B + step + outcome + copy + publish + unlock): %u matches x %u players, "
              "inputs %s, %s ticks in %.2f s = %s ticks/s, %.1f ns/tick on one core (= %s matches at %u Hz); "
              "CPU time: %s ticks/s, %.1f ns/tick; %" PRIu64 " restarts\n",
              t->name, t->state_bytes, opt.matches, g.players, inputs.kind(),
              grouped(static_cast<double>(ticks)).c_str(), s, grouped(rate).c_str(), 1e9 / rate,
              grouped(rate / hz).c_str(), hz, grouped(cpu_rate).c_str(), 1e9 / cpu_rate, restarts);

  // step() alone, then step() + view(), on one state in cache.
  Aligned view(t->max_view_bytes);
  for (int with_view = 0; with_view < 2; ++with_view) {
    std::uint8_t* st = local.data();
    std::uint64_t seed = opt.seed;
    t->init(st, g.params.view(), g.players, seed);
    std::uint32_t mt = 0;
    std::uint64_t steps = 0, step_restarts = 0, view_bytes = 0;
    const double uc0 = cpu_seconds();
    const auto u0 = Clock::now();
    const auto udeadline = u0 + std::chrono::duration<double>(opt.seconds / 2);
    auto u1 = u0;
    do {
      for (int k = 0; k < 1024; ++k) {
        if (g.ended(st)) {
          t->init(st, g.params.view(), g.players, ++seed);
          mt = 0;
          ++step_restarts;
        }
        ++mt;
        const std::uint32_t n = inputs.fill(mt, mt, items.data());
        const skirmish_inputs in{items.data(), n, 0xFFFFu};
        t->step(st, &in, mt);
        if (with_view != 0)
          for (std::uint32_t v = 0; v < g.views_per_tick(); ++v)
            view_bytes += t->view(st, v, view.data(), t->max_view_bytes);
      }
      steps += 1024;
      u1 = Clock::now();
    } while (u1 < udeadline);
    const double us = seconds_between(u0, u1);
    const double urate = steps / us;
    const double ucpu = steps / std::max(cpu_seconds() - uc0, 1e-9);
    std::printf("%s ticks (%s, one state in cache): %s steps in %.2f s = %s steps/s, %.1f ns/step; "
                "CPU time: %s steps/s, %.1f ns/step (%" PRIu64 " restarts%s)\n",
                t->name, with_view ? "step() + outcome() + view() of every seat" : "step() + outcome()",
                grouped(static_cast<double>(steps)).c_str(), us, grouped(urate).c_str(), 1e9 / urate,
                grouped(ucpu).c_str(), 1e9 / ucpu, step_restarts,
                with_view ? (", " + std::to_string(g.views_per_tick()) + " view(s)/tick, mean " +
                             std::to_string(view_bytes / std::max<std::uint64_t>(steps, 1) / g.views_per_tick()) + " B")
                                .c_str()
                          : "");
  }

  // outcome() alone: the server asks it after every step (has it ended?),
  // so it is in every figure above; this is its share.
  std::uint8_t* st = local.data();
  t->init(st, g.params.view(), g.players, opt.seed);
  std::uint64_t calls = 0, ends = 0;
  const double oc0 = cpu_seconds();
  const auto o0 = Clock::now();
  const auto odeadline = o0 + std::chrono::duration<double>(opt.seconds / 4);
  auto o1 = o0;
  do {
    for (int k = 0; k < 1024; ++k) {
      skirmish_outcome o;
      t->outcome(st, &o);
      ends += o.end;
    }
    calls += 1024;
    o1 = Clock::now();
  } while (o1 < odeadline);
  const double os = seconds_between(o0, o1), ocpu = cpu_seconds() - oc0;
  std::printf("%s ticks (outcome() alone): %.1f ns/call; CPU time: %.1f ns/call (%" PRIu64 " ended)\n", t->name,
              os * 1e9 / calls, ocpu * 1e9 / calls, ends);
}

// ------------------------------------------------------------ 3. snapshots

std::size_t encode_snapshot(proto::FrameEncoder& enc, std::uint32_t tick, std::uint32_t base_tick,
                            const std::uint8_t* bytes, std::size_t len) {
  auto& b = enc.builder();
  const auto v = b.CreateVector(bytes, len);
  const auto snap = proto::CreateSnapshot(b, 0x00010001, tick, base_tick, tick, v);
  const std::span<const std::uint8_t> frame = enc.finish(snap);
  const proto::Envelope* env = nullptr;
  if (proto::verify_body(frame.data() + proto::kFrameHeaderBytes, frame.size() - proto::kFrameHeaderBytes,
                         proto::DecodeLimits{}, &env) != proto::DecodeError::None ||
      env->msg_type() != proto::Message::Snapshot || env->msg_as_Snapshot()->view()->size() != len) {
    std::fprintf(stderr, "snapshots: a frame does not verify\n");
    std::exit(1);
  }
  return frame.size();
}

struct Summary {
  double mean = 0;
  std::size_t min = 0, p50 = 0, p99 = 0, max = 0;
};

Summary summarize(std::vector<std::size_t> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  s.min = v.front();
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  s.max = v.back();
  return s;
}

void bench_snapshots(const Options& opt, const Game& g) {
  const skirmish_game_v1_t* t = g.t;
  const InputTable inputs(g, opt.seed ^ 0x736e6170ull);
  proto::FrameEncoder enc;
  const std::uint32_t nv = g.views_per_tick(), cap = t->max_view_bytes;
  // hist[k][seat]: the views at t-2, t-1, t.
  std::vector<std::uint8_t> hist(3 * nv * std::size_t(cap));
  std::uint32_t hist_len[3][SKIRMISH_MAX_SEATS] = {};
  auto slot = [&](std::uint32_t k, std::uint32_t v) { return &hist[(std::size_t(k) * nv + v) * cap]; };
  std::vector<std::uint8_t> delta(proto::delta_bound(cap)), rebuilt(cap);
  Aligned st(t->state_bytes);
  std::uint64_t seed = opt.seed;
  t->init(st.data(), g.params.view(), g.players, seed);
  std::uint32_t have = 0, mt = 0, matches_played = 1, ended = 0;
  std::vector<skirmish_input> items(g.players);
  std::vector<std::size_t> full_bytes, delta_bytes, view_len;
  std::uint32_t samples = 0;
  while (samples < opt.snapshot_ticks) {
    ++mt;
    const std::uint32_t n = inputs.fill(mt, mt, items.data());
    const skirmish_inputs in{items.data(), n, 0xFFFFu};
    t->step(st.data(), &in, mt);
    // Shift the history and take this tick's views.
    if (have == 3) {
      std::memmove(slot(0, 0), slot(1, 0), 2 * nv * std::size_t(cap));
      std::memmove(hist_len[0], hist_len[1], sizeof hist_len[0] * 2);
    } else {
      ++have;
    }
    const std::uint32_t k = have - 1;
    for (std::uint32_t v = 0; v < nv; ++v) hist_len[k][v] = t->view(st.data(), v, slot(k, v), cap);
    if (have == 3) {
      ++samples;
      for (std::uint32_t v = 0; v < nv; ++v) {
        const std::uint8_t* base = slot(0, v);
        const std::uint8_t* cur = slot(2, v);
        full_bytes.push_back(encode_snapshot(enc, mt, 0, cur, hist_len[2][v]));
        view_len.push_back(hist_len[2][v]);
        const std::size_t dl = proto::encode_delta(base, hist_len[0][v], cur, hist_len[2][v], delta.data(), delta.size());
        if (dl == 0) {
          std::fprintf(stderr, "snapshots: encode_delta refused its bound\n");
          std::exit(1);
        }
        delta_bytes.push_back(encode_snapshot(enc, mt, mt - 2, delta.data(), dl));
        std::size_t out_len = 0;
        if (proto::apply_delta(base, hist_len[0][v], delta.data(), dl, rebuilt.data(), rebuilt.size(), &out_len) !=
                proto::DeltaError::None ||
            out_len != hist_len[2][v] || std::memcmp(rebuilt.data(), cur, out_len) != 0) {
          std::fprintf(stderr, "snapshots: apply_delta(base, delta) != view at tick %u (seat %u)\n", mt, v);
          std::exit(1);
        }
      }
    }
    if (g.ended(st.data())) {  // a new match; deltas never span two matches
      ++ended;
      ++matches_played;
      t->init(st.data(), g.params.view(), g.players, ++seed);
      have = 0;
      mt = 0;
    }
  }
  const Summary f = summarize(full_bytes), d = summarize(delta_bytes), l = summarize(view_len);
  const std::uint32_t hz = g.params.view()->tick_rate_hz;
  std::printf("%s snapshots: %u players, %u view(s) per tick, %u ticks sampled over %u match(es) (%u ended); "
              "view %.1f B mean (max %zu); frame bytes include the 4-byte length header\n",
              t->name, g.players, nv, samples, matches_played, ended, l.mean, l.max);
  std::printf("%s snapshots: full  (the view):         mean %.1f B, p50 %zu, min %zu, max %zu\n", t->name, f.mean,
              f.p50, f.min, f.max);
  std::printf("%s snapshots: delta (t-2 -> t):         mean %.1f B, p50 %zu, p99 %zu, max %zu\n", t->name, d.mean,
              d.p50, d.p99, d.max);
  std::printf("%s snapshots: delta / full = %.2f (mean bytes); at %u Hz a player receives %s B/s full, %s B/s delta\n",
              t->name, d.mean / f.mean, hz, grouped(f.mean * hz).c_str(), grouped(d.mean * hz).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"skirmish-bench-game: matchmaking, match ticks and snapshot sizes "
               "(bench/README.md)"};
  app.add_option("--seed", opt.seed, "seed of every random choice");
  app.add_option("--game", opt.games, "a game module (bundled name or path); repeatable; default arena, battleship");
  app.add_option("--players", opt.players, "players per match, clamped into the game's range")
      ->check(CLI::Range(1u, 16u));
  app.add_option("--seconds", opt.seconds, "ticks: measured seconds of the locked run "
                                           "(step() alone and step() + view() get half each)")
      ->check(CLI::Range(0.05, 600.0));
  app.add_option("--matches", opt.matches, "ticks: matches in the array")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--mm-tickets", opt.mm_tickets, "matchmaking: tickets per call")
      ->check(CLI::Range(4u, 10000000u));
  app.add_option("--mm-calls", opt.mm_calls, "matchmaking: timed calls per case")
      ->check(CLI::Range(1u, 10000u));
  app.add_flag("--no-matchmaking", opt.skip_matchmaking, "skip section 1");
  app.add_option("--snapshot-ticks", opt.snapshot_ticks, "snapshots: ticks sampled")
      ->check(CLI::Range(1u, 10000000u));
  CLI11_PARSE(app, argc, argv);
  if (opt.games.empty()) opt.games = {"arena", "battleship"};

  std::printf("skirmish-bench-game: seed %" PRIu64 ", one thread\n", opt.seed);
  if (!opt.skip_matchmaking) {
    bench_matchmaking(opt, "solo", 0.0);
    bench_matchmaking(opt, "20% in parties of 2", 0.2);
  }
  for (const std::string& name : opt.games) {
    std::string error;
    const auto m = mod::load(name, mod::Limits{}, error);
    if (!m) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 2;
    }
    Game g;
    g.t = m->game;
    g.players = std::clamp<std::uint32_t>(opt.players, g.t->min_players, g.t->max_players);
    const std::uint32_t hz = std::clamp<std::uint32_t>(30, g.t->min_tick_rate_hz, g.t->max_tick_rate_hz);
    g.params = mod::GameParams({}, hz);  // the game's defaults
    if (!mod::check_match(*m, g.params, g.players, error)) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), error.c_str());
      return 2;
    }
    std::printf("game %s %s (%s): state %u B, view <= %u B, %s\n", g.t->name, g.t->version, m->path.c_str(),
                g.t->state_bytes, g.t->max_view_bytes,
                (g.t->flags & SKIRMISH_GAME_SHARED_VIEW) != 0 ? "one shared view" : "a view per seat");
    bench_ticks(opt, g);
    bench_snapshots(opt, g);
  }
  return 0;
}
