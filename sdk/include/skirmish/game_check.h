// skirmish/game_check.h: a determinism and bounds harness for game modules.
//
// A testing tool of the SDK (C++20, header-only; the ABI itself, game.h,
// stays plain C). It loads nothing: it takes a table, however the caller
// got it (dlopen, skirmish::module::load, or a module linked into a unit
// test), and
//   1. runs check_params and then init() twice from the same seed into two
//      buffers that start with different garbage: init must write every
//      byte, so the two states must be equal;
//   2. steps both states N ticks with the same random inputs (the module's
//      bot_input from each seat's view when it has one, and random bytes of
//      random lengths, every input classified by check_input first; only
//      SKIRMISH_INPUT_OK ones reach step), the second state moved to a
//      fresh buffer before each step as an adopting worker would, and
//      compares the bytes after every step (a difference is a divergence,
//      named by its tick);
//   3. calls view() for every seat and the spectator on both states: the
//      length must be within max_view_bytes, bytes past it untouched, the
//      two views equal, and with SKIRMISH_GAME_SHARED_VIEW every seat's
//      view the same; outcome() must name a known end and places within
//      1..players.
// A match that ends is started again from the next seed, so every counted
// tick is a real step. Everything is seeded: the same Options give the
// same run. Allocates only up front (the buffers), never per tick.
//
//   skirmish::game_check::Options o;  o.ticks = 5000;  o.seed = 7;
//   auto r = skirmish::game_check::run(skirmish_game_v1(), o);
//   if (r.status != skirmish::game_check::Status::Ok) puts(r.message.c_str());
//
// The command-line form is skirmish-game-check (docs/games.md).
#ifndef SKIRMISH_GAME_CHECK_H
#define SKIRMISH_GAME_CHECK_H

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "skirmish/game.h"

namespace skirmish::game_check {

enum class Status { Ok = 0, Divergence = 1, BadModule = 2 };

struct Options {
  std::uint32_t ticks = 1000;                // steps in all (over as many matches as it takes)
  std::uint64_t seed = 1;                    // of the match seeds and of the inputs
  std::uint32_t players = 0;                 // 0: the module's min_players
  const skirmish_params* params = nullptr;   // nullptr: no [game.params] (the defaults)
  std::uint32_t tick_rate_hz = 0;            // with params == nullptr; 0: the module's min
  std::uint32_t views_every = 1;             // call view() every this many ticks (>= 1)
};

struct Result {
  Status status = Status::Ok;
  std::uint32_t tick = 0;        // Divergence / BadModule: the tick it happened at (0 = init)
  std::string message;           // one line; empty when Ok
  std::uint64_t steps = 0;       // steps compared
  std::uint32_t matches = 0;     // matches started (a match that ended starts another)
  std::uint32_t matches_ended = 0;
  std::uint64_t inputs_ok = 0;   // inputs that passed check_input and reached step
  std::uint64_t inputs_refused = 0;
  std::uint64_t views = 0;       // view() calls checked
};

namespace detail {

inline std::uint64_t next(std::uint64_t& x) {
  if (x == 0) x = 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 0x2545F4914F6CDD1Dull;
}

// 16-byte aligned storage of n bytes (the server's guarantee to a module).
struct Buffer {
  explicit Buffer(std::size_t n) : raw(n + 16) {}
  std::uint8_t* data() {
    const auto a = reinterpret_cast<std::uintptr_t>(raw.data());
    return raw.data() + ((16 - (a & 15)) & 15);
  }
  std::vector<std::uint8_t> raw;
};

inline std::string line(const char* f, auto... args) {
  char buf[400];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}

}  // namespace detail

inline Result run(const skirmish_game_v1_t* t, const Options& opt) {
  using detail::line;
  Result r;
  auto bad = [&](std::uint32_t tick, std::string m) {
    r.status = Status::BadModule;
    r.tick = tick;
    r.message = std::move(m);
    return r;
  };
  if (t == nullptr) return bad(0, "the table is NULL");
  if (t->abi_version != SKIRMISH_GAME_ABI_VERSION)
    return bad(0, line("abi_version %u (this SDK is %u)", t->abi_version, SKIRMISH_GAME_ABI_VERSION));
  if (t->table_bytes < sizeof(skirmish_game_v1_t))
    return bad(0, line("table_bytes %u < %zu", t->table_bytes, sizeof(skirmish_game_v1_t)));
  if (t->check_params == nullptr || t->init == nullptr || t->step == nullptr || t->check_input == nullptr ||
      t->view == nullptr || t->outcome == nullptr)
    return bad(0, "check_params, init, step, check_input, view and outcome must all be set");
  if (t->state_bytes < 1 || t->state_bytes > (1u << 24)) return bad(0, line("state_bytes %u", t->state_bytes));
  if (t->max_input_bytes < 1 || t->max_input_bytes > SKIRMISH_MAX_INPUT_BYTES)
    return bad(0, line("max_input_bytes %u (allowed: 1..%u)", t->max_input_bytes, SKIRMISH_MAX_INPUT_BYTES));
  if (t->max_view_bytes < 1 || t->max_view_bytes > SKIRMISH_MAX_VIEW_BYTES)
    return bad(0, line("max_view_bytes %u (allowed: 1..%u)", t->max_view_bytes, SKIRMISH_MAX_VIEW_BYTES));
  if (t->min_players < 1 || t->min_players > t->max_players || t->max_players > SKIRMISH_MAX_SEATS)
    return bad(0, line("players %u..%u", unsigned(t->min_players), unsigned(t->max_players)));
  const std::uint32_t players = opt.players != 0 ? opt.players : t->min_players;
  if (players < t->min_players || players > t->max_players)
    return bad(0, line("players = %u is out of range (allowed: %u..%u)", players, unsigned(t->min_players),
                       unsigned(t->max_players)));

  skirmish_params none{nullptr, 0, opt.tick_rate_hz != 0 ? opt.tick_rate_hz : t->min_tick_rate_hz};
  const skirmish_params* params = opt.params != nullptr ? opt.params : &none;
  char err[256] = {};
  if (t->check_params(params, players, err, sizeof err) != 0) {
    err[sizeof err - 1] = '\0';
    return bad(0, std::string("check_params refused: ") + err);
  }

  const std::uint32_t n = t->state_bytes, vcap = t->max_view_bytes, guard = 64;
  detail::Buffer a(n), b(n), b2(n), va(vcap + guard), vb(vcap + guard), v0(vcap + guard);
  std::vector<std::vector<std::uint8_t>> last_view(players);
  std::vector<skirmish_input> items(players * SKIRMISH_MAX_QUEUED_INPUTS);
  std::vector<std::uint8_t> bytes(items.size() * SKIRMISH_MAX_INPUT_BYTES);
  std::vector<std::uint32_t> seq(players, 0);
  std::uint64_t rng = opt.seed ^ 0x6761'6d65'6368'6b21ull;
  std::uint64_t match_seed = opt.seed;
  std::uint8_t* sa = a.data();
  std::uint8_t* sb = b.data();
  std::uint8_t* spare = b2.data();

  auto start = [&](std::uint32_t tick) -> bool {
    std::memset(sa, 0xA5, n);
    std::memset(sb, 0x5A, n);
    t->init(sa, params, players, match_seed);
    t->init(sb, params, players, match_seed);
    ++r.matches;
    for (auto& v : last_view) v.clear();
    if (std::memcmp(sa, sb, n) != 0) {
      r.status = Status::Divergence;
      r.tick = tick;
      r.message = line("init(seed %llu) wrote different bytes into two buffers (a byte left unwritten?)",
                       (unsigned long long)match_seed);
      return false;
    }
    return true;
  };

  // Views of both states for every seat and the spectator: bounds, equal
  // bytes, the shared-view flag. Keeps each seat's view for bot_input.
  auto check_views = [&](std::uint32_t tick) -> bool {
    for (std::uint32_t k = 0; k <= players; ++k) {
      const std::uint32_t seat = k < players ? k : SKIRMISH_SPECTATOR;
      std::memset(va.data(), 0xEE, vcap + guard);
      std::memset(vb.data(), 0xEE, vcap + guard);
      const std::uint32_t la = t->view(sa, seat, va.data(), vcap);
      const std::uint32_t lb = t->view(sb, seat, vb.data(), vcap);
      ++r.views;
      if (la > vcap) {
        bad(tick, line("view(seat %u) returned %u bytes (max_view_bytes %u)", seat, la, vcap));
        return false;
      }
      for (std::uint32_t g = 0; g < guard; ++g)
        if (va.data()[vcap + g] != 0xEE) {
          bad(tick, line("view(seat %u) wrote past cap (%u bytes)", seat, vcap));
          return false;
        }
      if (la != lb || std::memcmp(va.data(), vb.data(), la) != 0) {
        r.status = Status::Divergence;
        r.tick = tick;
        r.message = line("tick %u: view(seat %u) differs between two equal states", tick, seat);
        return false;
      }
      if ((t->flags & SKIRMISH_GAME_SHARED_VIEW) != 0) {
        const std::uint32_t l0 = t->view(sa, 0, v0.data(), vcap);
        if (l0 != la || std::memcmp(v0.data(), va.data(), la) != 0) {
          bad(tick, line("flags has SKIRMISH_GAME_SHARED_VIEW but seat %u sees other bytes than seat 0", seat));
          return false;
        }
      }
      if (k < players) last_view[k].assign(va.data(), va.data() + la);
    }
    return true;
  };

  auto check_outcome = [&](std::uint32_t tick, bool& ended) -> bool {
    skirmish_outcome oa{}, ob{};
    t->outcome(sa, &oa);
    t->outcome(sb, &ob);
    if (std::memcmp(&oa, &ob, sizeof oa) != 0) {
      r.status = Status::Divergence;
      r.tick = tick;
      r.message = line("tick %u: outcome() differs between two equal states", tick);
      return false;
    }
    if (oa.end > SKIRMISH_END_TIME_LIMIT) {
      bad(tick, line("outcome().end = %u is not a skirmish_end", oa.end));
      return false;
    }
    for (std::uint32_t s = 0; s < players && oa.end != SKIRMISH_RUNNING; ++s)
      if (oa.seats[s].place < 1 || oa.seats[s].place > players) {
        bad(tick, line("outcome(): seat %u has place %u (allowed: 1..%u)", s, unsigned(oa.seats[s].place), players));
        return false;
      }
    ended = oa.end != SKIRMISH_RUNNING;
    return true;
  };

  if (!start(0) || !check_views(0)) return r;
  const std::uint32_t every = opt.views_every != 0 ? opt.views_every : 1;
  std::uint32_t match_tick = 0;
  for (std::uint32_t tick = 1; tick <= opt.ticks; ++tick) {
    // This tick's inputs: per seat 0..2 of them, from the bot or random bytes.
    std::uint32_t count = 0;
    std::uint32_t connected = players >= 32 ? 0xFFFFFFFFu : (1u << players) - 1;
    if (detail::next(rng) % 64 == 0) connected &= ~(1u << (detail::next(rng) % players));
    for (std::uint32_t s = 0; s < players; ++s) {
      const std::uint32_t want = std::uint32_t(detail::next(rng) % 3);
      for (std::uint32_t q = 0; q < want; ++q) {
        std::uint8_t* in = &bytes[count * SKIRMISH_MAX_INPUT_BYTES];
        std::uint32_t len = 0;
        if (t->bot_input != nullptr && (detail::next(rng) & 3) != 0 && !last_view[s].empty()) {
          std::uint64_t bot_rng = detail::next(rng) | 1;
          len = t->bot_input(last_view[s].data(), std::uint32_t(last_view[s].size()), s, &bot_rng, in,
                             t->max_input_bytes);
          if (len > t->max_input_bytes) {
            bad(tick, line("bot_input returned %u bytes (max_input_bytes %u)", len, t->max_input_bytes));
            return r;
          }
        } else {
          len = 1 + std::uint32_t(detail::next(rng) % t->max_input_bytes);
          const std::uint64_t mode = detail::next(rng) % 4;
          for (std::uint32_t i = 0; i < len; ++i) {
            const std::uint64_t x = detail::next(rng);
            in[i] = std::uint8_t(mode == 0 ? x : x % 12);  // small values pass range checks more often
          }
        }
        if (len == 0) continue;
        const std::uint32_t verdict = t->check_input(in, len);
        if (verdict > SKIRMISH_INPUT_OUT_OF_RANGE) {
          bad(tick, line("check_input returned %u (not a skirmish_input_verdict)", verdict));
          return r;
        }
        if (verdict != SKIRMISH_INPUT_OK) {
          ++r.inputs_refused;
          continue;
        }
        ++r.inputs_ok;
        items[count] = skirmish_input{std::uint8_t(s), std::uint8_t(len), 0, ++seq[s], in};
        ++count;
      }
    }
    const skirmish_inputs ins{count != 0 ? items.data() : nullptr, count, connected};
    ++match_tick;
    t->step(sa, &ins, match_tick);
    std::memcpy(spare, sb, n);  // adoption: the next step runs on another buffer
    std::swap(sb, spare);
    std::memset(spare, 0xCC, n);
    t->step(sb, &ins, match_tick);
    ++r.steps;
    if (std::memcmp(sa, sb, n) != 0) {
      std::uint32_t at = 0;
      while (at < n && sa[at] == sb[at]) ++at;
      r.status = Status::Divergence;
      r.tick = tick;
      r.message = line("tick %u (match %u, its tick %u): two steps of the same state and inputs differ "
                       "(first at state byte %u)",
                       tick, r.matches, match_tick, at);
      return r;
    }
    bool ended = false;
    if ((tick % every == 0 && !check_views(tick)) || !check_outcome(tick, ended)) return r;
    if (ended) {
      ++r.matches_ended;
      ++match_seed;
      match_tick = 0;
      if (!start(tick) || !check_views(tick)) return r;
    }
  }
  return r;
}

}  // namespace skirmish::game_check

#endif  // SKIRMISH_GAME_CHECK_H
