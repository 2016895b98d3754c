// skirmish-bench-game: CPU figures of the game-side hot paths (bench/README.md).
//
// Figures, not a test: it prints, it never passes or fails on a number.
// One process, one thread, no sockets, no shared-memory segment. Three
// questions, one section each:
//
//   1. matchmaking  How fast does matchmaking::form_matches group 10,000
//                   queued tickets (ratings ~ N(1500, 300), joined uniformly
//                   over the last 30 s, match_size 4, default Params)? Solo
//                   tickets only, then 20 % of the tickets in parties of 2.
//                   Each timed call gets a fresh copy of the same tickets;
//                   the copy is made outside the timed region.
//   2. ticks        How many match ticks does one core sustain? One tick is
//                   what a worker does per match: lock the match's robust
//                   mutex, copy the published 1 KiB state out of a ring of 8
//                   buffers, game::step it with 4 inputs, copy the result
//                   into the next buffer, publish the new index, unlock.
//                   Over --matches matches in a plain array, round robin,
//                   for --seconds; then step() alone on one state for
//                   reference.
//   3. snapshots    How big is a Snapshot frame of a 4-player match with
//                   default game Params (8 coins): full (every entity) vs
//                   delta (game::delta between the states at tick t-2 and
//                   t), over --snapshot-ticks ticks of play.
//
// Inputs ("wander"): each player holds a random move (-100..100 on each axis)
// for a random 5..60 ticks, then picks another; it presses tag on 1 tick in
// 8. That keeps the players crossing the arena (and finding coins) instead of
// jittering in place as independent per-tick random inputs would. Inputs are
// drawn in advance into a table, so the tick figures do not include an rng.
// A match that ends (score or time limit) is re-initialised in its slot with
// a new seed, so every counted tick is a real step.
//
// Everything is seeded from --seed: two runs with the same seed play the same
// games and form the same matches; only the times differ.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "game/rules.h"
#include "matchmaking/matchmaker.h"
#include "shm/robust_mutex.h"

namespace game = skirmish::game;
namespace mm = skirmish::matchmaking;
namespace proto = skirmish::proto;
namespace shm = skirmish::shm;

using Clock = std::chrono::steady_clock;

namespace {

// game::EntityView is documented to have proto::Entity's 20-byte layout, so a
// Snapshot is built by reinterpreting an array of views.
static_assert(sizeof(game::EntityView) == sizeof(proto::Entity));
static_assert(alignof(game::EntityView) == alignof(proto::Entity));
static_assert(sizeof(proto::Entity) == 20);

constexpr std::uint8_t kPlayers = 4;

struct Options {
  std::uint64_t seed = 1;
  double seconds = 2.0;             // ticks: measured seconds of each tick run
  std::uint32_t matches = 1000;     // ticks: matches in the array
  std::uint32_t mm_tickets = 10000; // matchmaking: tickets per call
  std::uint32_t mm_calls = 20;      // matchmaking: timed calls per case
  std::uint32_t snapshot_ticks = 1000;
};

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
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

// ------------------------------------------------------------ inputs

// Wander inputs for kPlayers players, drawn in advance: table[t][i] is
// player i's move at tick t (seq is filled in by the caller).
class InputTable {
 public:
  static constexpr std::uint32_t kTicks = 4096;  // a power of two

  explicit InputTable(std::uint64_t seed) : moves_(kTicks * kPlayers) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> axis(-game::kMaxMove, game::kMaxMove);
    std::uniform_int_distribution<int> hold(5, 60);
    std::uniform_int_distribution<int> press(0, 7);
    for (std::uint8_t i = 0; i < kPlayers; ++i) {
      int left = 0;
      std::int8_t mx = 0, my = 0;
      for (std::uint32_t t = 0; t < kTicks; ++t) {
        if (left-- <= 0) {
          mx = static_cast<std::int8_t>(axis(rng));
          my = static_cast<std::int8_t>(axis(rng));
          left = hold(rng);
        }
        game::PlayerInput& in = moves_[t * kPlayers + i];
        in = game::PlayerInput{0, mx, my, 0, 0};
        if (press(rng) == 0) in.buttons = game::kButtonTag;
      }
    }
  }

  // The inputs of tick `t` for state `s`: seq = last applied + 1, so every
  // input is Ok.
  void fill(std::uint32_t t, const game::MatchState& s, game::PlayerInput* out) const {
    const game::PlayerInput* row = &moves_[(t & (kTicks - 1)) * kPlayers];
    for (std::uint8_t i = 0; i < kPlayers; ++i) {
      out[i] = row[i];
      out[i].seq = s.players[i].last_seq + 1;
    }
  }

 private:
  std::vector<game::PlayerInput> moves_;
};

constexpr bool kAllInputs[kPlayers] = {true, true, true, true};

// ------------------------------------------------------------ 2. ticks

// One ring buffer: the state, padded to the 1 KiB a MatchRow holds.
struct StateBuffer {
  game::MatchState state;
  unsigned char pad[game::kMatchStateBytes - sizeof(game::MatchState)];
};
static_assert(sizeof(StateBuffer) == game::kMatchStateBytes);
static_assert(std::is_trivially_copyable_v<StateBuffer>);

constexpr std::uint32_t kRing = 8;

struct alignas(64) BenchMatch {
  shm::RobustMutex mu;
  std::uint32_t index;        // the published buffer
  std::uint32_t input_phase;  // where this match reads the input table
  std::uint32_t seed;
  alignas(64) StateBuffer ring[kRing];
};

void bench_ticks(const Options& opt, const game::Params& gp) {
  const InputTable inputs(opt.seed ^ 0x7469636bull);
  std::vector<BenchMatch> matches(opt.matches);
  std::mt19937_64 rng(opt.seed);
  for (std::uint32_t m = 0; m < opt.matches; ++m) {
    BenchMatch& bm = matches[m];
    std::memset(static_cast<void*>(&bm), 0, sizeof bm);
    if (int rc = shm::init_robust_mutex(bm.mu); rc != 0) {
      std::fprintf(stderr, "ticks: init_robust_mutex: %s\n", std::strerror(rc));
      std::exit(1);
    }
    bm.seed = static_cast<std::uint32_t>(rng());
    bm.input_phase = static_cast<std::uint32_t>(rng());
    bm.index = 0;
    bm.ring[0].state = game::init(gp, kPlayers, bm.seed);
  }

  // The worker's per-tick work for one match; returns 1 when the match had
  // ended and was restarted in its slot.
  std::uint64_t restarts = 0;
  auto tick = [&](BenchMatch& bm) {
    shm::Guard guard(bm.mu);
    if (!guard.ok()) {
      std::fprintf(stderr, "ticks: lock failed: %s\n", std::strerror(guard.error()));
      std::exit(1);
    }
    StateBuffer local = bm.ring[bm.index];  // 1 KiB out of the published buffer
    if (local.state.ended) {
      local.state = game::init(gp, kPlayers, ++bm.seed);
      ++restarts;
    }
    game::PlayerInput in[kPlayers];
    inputs.fill(bm.input_phase + local.state.tick, local.state, in);
    game::step(local.state, gp, in, kAllInputs);
    const std::uint32_t next = (bm.index + 1) % kRing;
    bm.ring[next] = local;  // 1 KiB into the next buffer
    bm.index = next;        // publish
  };

  // Warm-up: one round (faults the pages in).
  for (BenchMatch& bm : matches) tick(bm);
  restarts = 0;

  std::uint64_t ticks = 0;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(opt.seconds);
  auto t1 = t0;
  do {
    for (BenchMatch& bm : matches) tick(bm);
    ticks += matches.size();
    t1 = Clock::now();
  } while (t1 < deadline);
  const double s = seconds_between(t0, t1);
  const double rate = ticks / s;
  std::uint64_t check = 0;
  for (const BenchMatch& bm : matches) check += bm.ring[bm.index].state.tick;
  std::printf(
      "ticks (lock + copy 1 KiB + step + copy + publish + unlock): %u matches x %u players, "
      "%s ticks in %.2f s = %s ticks/s, %.1f ns/tick on one core (= %s matches at %u Hz)\n",
      opt.matches, kPlayers, grouped(static_cast<double>(ticks)).c_str(), s,
      grouped(rate).c_str(), 1e9 / rate, grouped(rate / gp.tick_rate_hz).c_str(),
      gp.tick_rate_hz);
  std::printf("ticks:   %" PRIu64 " matches ended and were restarted in their slot "
              "(checksum %" PRIu64 ")\n",
              restarts, check);

  // step() alone: one state, no lock, no copies (the state stays in L1).
  game::MatchState st = game::init(gp, kPlayers, static_cast<std::uint32_t>(opt.seed));
  std::uint32_t seed = static_cast<std::uint32_t>(opt.seed);
  std::uint64_t steps = 0, step_restarts = 0;
  game::PlayerInput in[kPlayers];
  const auto u0 = Clock::now();
  const auto udeadline = u0 + std::chrono::duration<double>(opt.seconds / 2);
  auto u1 = u0;
  do {
    for (int k = 0; k < 1024; ++k) {
      if (st.ended) {
        st = game::init(gp, kPlayers, ++seed);
        ++step_restarts;
      }
      inputs.fill(st.tick, st, in);
      game::step(st, gp, in, kAllInputs);
    }
    steps += 1024;
    u1 = Clock::now();
  } while (u1 < udeadline);
  const double us = seconds_between(u0, u1);
  const double urate = steps / us;
  std::printf(
      "ticks (step() alone, one state in cache, for reference): %s steps in %.2f s = %s "
      "steps/s, %.1f ns/step (%" PRIu64 " restarts)\n",
      grouped(static_cast<double>(steps)).c_str(), us, grouped(urate).c_str(), 1e9 / urate,
      step_restarts);
  std::printf("ticks:   the locked ring tick costs %.1f ns more than step() alone (%.2fx)\n",
              1e9 / rate - 1e9 / urate, urate / rate);
}

// ------------------------------------------------------------ 3. snapshots

std::size_t encode_snapshot(proto::FrameEncoder& enc, std::uint32_t match_id,
                            const game::MatchState& s, const game::Params& gp,
                            std::uint32_t base_tick, const game::EntityView* views,
                            std::size_t n_views, const std::uint16_t* removed,
                            std::size_t n_removed) {
  auto& b = enc.builder();
  const auto ents = b.CreateVectorOfStructs(
      reinterpret_cast<const proto::Entity*>(views), n_views);
  flatbuffers::Offset<flatbuffers::Vector<std::uint16_t>> rem;
  if (n_removed > 0) rem = b.CreateVector(removed, n_removed);
  const auto snap = proto::CreateSnapshot(b, match_id, s.tick, base_tick,
                                          s.players[0].last_seq,
                                          game::time_left_ms(s, gp), ents, rem);
  const std::span<const std::uint8_t> frame = enc.finish(snap);
  // The frame must be a valid Snapshot that reads back as what went in.
  const proto::Envelope* env = nullptr;
  if (proto::verify_body(frame.data() + proto::kFrameHeaderBytes,
                         frame.size() - proto::kFrameHeaderBytes, proto::DecodeLimits{},
                         &env) != proto::DecodeError::None ||
      env->msg_type() != proto::Message::Snapshot) {
    std::fprintf(stderr, "snapshots: a frame does not verify\n");
    std::exit(1);
  }
  const proto::Snapshot* sn = env->msg_as_Snapshot();
  if (sn->entities()->size() != n_views ||
      (n_views > 0 && std::memcmp(sn->entities()->Get(0), views,
                                  n_views * sizeof(game::EntityView)) != 0)) {
    std::fprintf(stderr, "snapshots: entities do not read back\n");
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

void bench_snapshots(const Options& opt, const game::Params& gp) {
  const InputTable inputs(opt.seed ^ 0x736e6170ull);
  proto::FrameEncoder enc;
  const std::uint32_t match_id = 0x00010001;  // any handle: 4 bytes either way
  std::uint32_t seed = static_cast<std::uint32_t>(opt.seed);
  game::MatchState hist[3];  // states at t-2, t-1, t
  std::size_t have = 0;
  std::uint32_t matches_played = 1, ended = 0;
  hist[0] = game::init(gp, kPlayers, seed);
  have = 1;

  std::vector<std::size_t> full_bytes, delta_bytes, changed_counts, removed_counts;
  game::PlayerInput in[kPlayers];
  game::EntityView all[game::kMaxEntities], base_all[game::kMaxEntities],
      changed[game::kMaxEntities], applied[game::kMaxEntities];
  std::uint16_t removed[game::kMaxEntities];
  while (full_bytes.size() < opt.snapshot_ticks) {
    game::MatchState cur = hist[have - 1];
    inputs.fill(cur.tick, cur, in);
    game::step(cur, gp, in, kAllInputs);
    if (have == 3) {
      hist[0] = hist[1];
      hist[1] = hist[2];
      hist[2] = cur;
    } else {
      hist[have++] = cur;
    }
    if (have == 3) {
      const game::MatchState& base = hist[0];
      const std::size_t n_all = game::entities(cur, all);
      full_bytes.push_back(encode_snapshot(enc, match_id, cur, gp, 0, all, n_all, nullptr, 0));
      std::size_t n_changed = 0, n_removed = 0;
      game::delta(base, cur, changed, &n_changed, removed, &n_removed);
      delta_bytes.push_back(encode_snapshot(enc, match_id, cur, gp, base.tick, changed,
                                            n_changed, removed, n_removed));
      changed_counts.push_back(n_changed);
      removed_counts.push_back(n_removed);
      // Sanity: base + delta == cur, entity for entity.
      const std::size_t n_base = game::entities(base, base_all);
      const std::size_t n_applied = game::apply_delta(base_all, n_base, changed, n_changed,
                                                      removed, n_removed, applied);
      if (n_applied != n_all ||
          std::memcmp(applied, all, n_all * sizeof(game::EntityView)) != 0) {
        std::fprintf(stderr, "snapshots: apply_delta(base, delta) != entities(cur) at tick %u\n",
                     cur.tick);
        std::exit(1);
      }
    }
    if (cur.ended) {  // a new match; deltas never span two matches
      ++ended;
      ++matches_played;
      hist[0] = game::init(gp, kPlayers, ++seed);
      have = 1;
    }
  }

  const Summary f = summarize(full_bytes);
  const Summary d = summarize(delta_bytes);
  const Summary c = summarize(changed_counts);
  const Summary r = summarize(removed_counts);
  std::printf(
      "snapshots: %u players, %u coins, %zu ticks sampled over %u match(es) (%u ended); "
      "frame bytes include the 4-byte length header\n",
      kPlayers, gp.coins, full_bytes.size(), matches_played, ended);
  std::printf("snapshots: full  (all entities):      mean %.1f B, p50 %zu, min %zu, max %zu\n",
              f.mean, f.p50, f.min, f.max);
  std::printf(
      "snapshots: delta (t-2 -> t):           mean %.1f B, p50 %zu, p99 %zu, max %zu "
      "(entities changed: mean %.2f, max %zu; removed: mean %.3f, max %zu)\n",
      d.mean, d.p50, d.p99, d.max, c.mean, c.max, r.mean, r.max);
  std::printf("snapshots: delta / full = %.2f (mean bytes); at %u Hz a player receives "
              "%s B/s full, %s B/s delta\n",
              d.mean / f.mean, gp.tick_rate_hz, grouped(f.mean * gp.tick_rate_hz).c_str(),
              grouped(d.mean * gp.tick_rate_hz).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"skirmish-bench-game: matchmaking, match ticks and snapshot sizes "
               "(bench/README.md)"};
  app.add_option("--seed", opt.seed, "seed of every random choice");
  app.add_option("--seconds", opt.seconds, "ticks: measured seconds of the locked run "
                                           "(step() alone gets half)")
      ->check(CLI::Range(0.05, 600.0));
  app.add_option("--matches", opt.matches, "ticks: matches in the array")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--mm-tickets", opt.mm_tickets, "matchmaking: tickets per call")
      ->check(CLI::Range(4u, 10000000u));
  app.add_option("--mm-calls", opt.mm_calls, "matchmaking: timed calls per case")
      ->check(CLI::Range(1u, 10000u));
  app.add_option("--snapshot-ticks", opt.snapshot_ticks, "snapshots: ticks sampled")
      ->check(CLI::Range(1u, 10000000u));
  CLI11_PARSE(app, argc, argv);

  const game::Params gp{};  // the defaults: 100 m arena, 30 Hz, 8 coins
  if (const char* why = game::check_params(gp)) {
    std::fprintf(stderr, "game params: %s\n", why);
    return 1;
  }
  std::printf("skirmish-bench-game: seed %" PRIu64 ", one thread\n", opt.seed);
  bench_matchmaking(opt, "solo", 0.0);
  bench_matchmaking(opt, "20% in parties of 2", 0.2);
  bench_ticks(opt, gp);
  bench_snapshots(opt, gp);
  return 0;
}
