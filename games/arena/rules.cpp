// The game rules; the contract and the order of a step are in rules.h.
//
// Integer math only. Distances are compared squared in int64: with
// coordinates below kMaxArenaUnits (10^7) a squared distance is below
// 2 * 10^14, far from overflow.
#include "rules.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

namespace arena {

namespace {

// ---------------------------------------------------------------- rng
// xorshift64* (Vigna): 64 bits of state, good enough for coin placement and
// trivially reproducible everywhere. The seed is spread by splitmix64 (a
// bijection on u64, so distinct seeds give distinct states); 0 is the one
// state xorshift cannot leave, so it is replaced.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint32_t next_u32(std::uint64_t& state) {
  std::uint64_t x = state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  state = x;
  return static_cast<std::uint32_t>((x * 0x2545F4914F6CDD1Dull) >> 32);
}

// Uniform-enough in [0, n) for n <= 2^32 (multiply-shift; bias < n / 2^32).
std::uint32_t next_below(std::uint64_t& state, std::uint32_t n) {
  return static_cast<std::uint32_t>(
      (static_cast<std::uint64_t>(next_u32(state)) * n) >> 32);
}

// ---------------------------------------------------------------- helpers

std::int32_t arena_w(const Params& p) {
  return std::clamp(p.arena_width, 1, kMaxArenaUnits);
}
std::int32_t arena_h(const Params& p) {
  return std::clamp(p.arena_height, 1, kMaxArenaUnits);
}

std::int32_t clamp_coord(std::int64_t v, std::int32_t size) {
  return static_cast<std::int32_t>(
      std::clamp<std::int64_t>(v, 0, static_cast<std::int64_t>(size) - 1));
}

std::int64_t dist2(std::int32_t ax, std::int32_t ay, std::int32_t bx,
                   std::int32_t by) {
  const std::int64_t dx = static_cast<std::int64_t>(ax) - bx;
  const std::int64_t dy = static_cast<std::int64_t>(ay) - by;
  return dx * dx + dy * dy;
}

std::int64_t radius2(std::int32_t r) {
  const std::int64_t c = std::clamp(r, 0, kMaxArenaUnits);
  return c * c;
}

std::uint16_t to_u16_ticks(std::uint32_t ticks) {
  return static_cast<std::uint16_t>(std::min<std::uint32_t>(ticks, 0xFFFFu));
}

void place_coin(CoinState& c, std::uint64_t& rng, const Params& p,
                std::uint32_t now) {
  // Fixed draw order (x, y, value): part of the deterministic contract.
  c.x = static_cast<std::int32_t>(
      next_below(rng, static_cast<std::uint32_t>(arena_w(p))));
  c.y = static_cast<std::int32_t>(
      next_below(rng, static_cast<std::uint32_t>(arena_h(p))));
  c.value = static_cast<std::uint16_t>(
      kMinCoinValue + next_below(rng, kMaxCoinValue - kMinCoinValue + 1));
  c.active = 1;
  c.respawn_at_tick = now;
}

// velocity() for a step's speed_per_tick (computed once per step, not per
// player). |move| <= 100, the common case, divides by the constant 100 (no
// square root, no divide instruction). The products fit in int32 (|move
// component| <= 100, speed <= kMaxArenaUnits = 10^7). Division truncates
// toward zero: symmetric, and |v| <= speed because len >= |move| and
// len >= 100.
Velocity velocity_at(std::int32_t speed, std::int32_t move_x, std::int32_t move_y) {
  const std::int32_t mx = std::clamp(move_x, -kMaxMove, kMaxMove);
  const std::int32_t my = std::clamp(move_y, -kMaxMove, kMaxMove);
  const std::int32_t m2 = mx * mx + my * my;  // <= 20000
  if (m2 <= kMaxMove * kMaxMove) return Velocity{mx * speed / kMaxMove, my * speed / kMaxMove};
  // ceil(|move|) is 101..142 here, so it is the max(100, ceil(|move|)) of rules.h.
  const std::int32_t len = static_cast<std::int32_t>(isqrt_ceil(static_cast<std::uint64_t>(m2)));
  return Velocity{mx * speed / len, my * speed / len};
}

// cos(k * 22.5 degrees) * 10000 for k = 0..15; sin(k) = cos(k - 4).
constexpr std::int32_t kCos16[16] = {10000,  9239,   7071,   3827,
                                     0,      -3827,  -7071,  -9239,
                                     -10000, -9239,  -7071,  -3827,
                                     0,      3827,   7071,   9239};

void end_if_over(MatchState& s, const Params& p) {
  for (std::uint8_t i = 0; i < s.player_count; ++i) {
    if (s.players[i].score >= 0 &&
        static_cast<std::uint32_t>(s.players[i].score) >=
            std::max<std::uint32_t>(p.score_limit, 1)) {
      s.ended = 1;
      s.end_reason = static_cast<std::uint8_t>(EndReason::ScoreLimit);
      return;
    }
  }
  if (s.tick >= time_limit_ticks(p)) {
    s.ended = 1;
    s.end_reason = static_cast<std::uint8_t>(EndReason::TimeLimit);
  }
}

}  // namespace

// ---------------------------------------------------------------- params

const char* check_params(const Params& p) {
  if (p.arena_width < 1 || p.arena_width > kMaxArenaUnits)
    return "arena_width out of range (1..10000000 units)";
  if (p.arena_height < 1 || p.arena_height > kMaxArenaUnits)
    return "arena_height out of range (1..10000000 units)";
  if (p.tick_rate_hz < 1 || p.tick_rate_hz > 1000)
    return "tick_rate_hz out of range (1..1000)";
  if (p.max_speed < 1 || p.max_speed > kMaxArenaUnits)
    return "max_speed out of range (1..10000000 units/s)";
  if (speed_per_tick(p) < 1)
    return "max_speed below tick_rate_hz: less than 1 unit per tick";
  if (p.score_limit < 1 || p.score_limit > 1'000'000)
    return "score_limit out of range (1..1000000)";
  if (p.time_limit_s < 1 ||
      static_cast<std::uint64_t>(p.time_limit_s) * p.tick_rate_hz >
          std::numeric_limits<std::uint32_t>::max())
    return "time_limit_s out of range (>= 1, time_limit_s * tick_rate_hz < 2^32)";
  if (p.coins > kMaxCoins) return "coins out of range (0..32)";
  if (p.tag_radius < 0 || p.tag_radius > kMaxArenaUnits)
    return "tag_radius out of range";
  if (p.pickup_radius < 0 || p.pickup_radius > kMaxArenaUnits)
    return "pickup_radius out of range";
  for (std::uint32_t ms : {p.stun_ms, p.tag_cooldown_ms, p.tag_miss_cooldown_ms,
                           p.coin_respawn_ms}) {
    if (static_cast<std::uint64_t>(ms) * p.tick_rate_hz / 1000 > 0xFFFFu)
      return "a stun, cooldown or respawn time exceeds 65535 ticks";
  }
  return nullptr;
}

std::int32_t speed_per_tick(const Params& p) {
  const std::int32_t speed = std::clamp(p.max_speed, 0, kMaxArenaUnits);
  return speed / static_cast<std::int32_t>(
                     std::clamp<std::uint32_t>(p.tick_rate_hz, 1, 1000));
}

std::uint32_t ms_to_ticks(const Params& p, std::uint32_t ms) {
  const std::uint64_t hz = std::clamp<std::uint32_t>(p.tick_rate_hz, 1, 1000);
  const std::uint64_t t = static_cast<std::uint64_t>(ms) * hz / 1000;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(t, 1, 0xFFFFu));
}

std::uint32_t time_limit_ticks(const Params& p) {
  const std::uint64_t t =
      static_cast<std::uint64_t>(p.time_limit_s) * p.tick_rate_hz;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(
      t, std::numeric_limits<std::uint32_t>::max()));
}

// ---------------------------------------------------------------- inputs

InputVerdict check_input(std::uint32_t last_seq, const PlayerInput& in) {
  if (in.seq <= last_seq) return InputVerdict::Stale;
  if (in.move_x < -kMaxMove || in.move_x > kMaxMove || in.move_y < -kMaxMove ||
      in.move_y > kMaxMove || (in.buttons & ~kKnownButtons) != 0)
    return InputVerdict::OutOfRange;
  return InputVerdict::Ok;
}

std::uint64_t isqrt_ceil(std::uint64_t v) {
  if (v == 0) return 0;
  // Bit-by-bit floor sqrt from the highest power of 4 <= v, then round up.
  std::uint64_t rem = v, root = 0;
  std::uint64_t bit = std::uint64_t{1} << ((std::bit_width(v) - 1) & ~1u);
  while (bit != 0) {
    if (rem >= root + bit) {
      rem -= root + bit;
      root = (root >> 1) + bit;
    } else {
      root >>= 1;
    }
    bit >>= 2;
  }
  if (root * root < v) ++root;
  return root;
}

Velocity velocity(const Params& p, std::int32_t move_x, std::int32_t move_y) {
  return velocity_at(speed_per_tick(p), move_x, move_y);
}

// ---------------------------------------------------------------- state

MatchState init(const Params& p, std::uint8_t players, std::uint32_t seed) {
  MatchState s{};  // value-init: every byte, reserved ones included, is 0
  s.player_count = std::clamp<std::uint8_t>(players, 1, kMaxPlayers);
  s.coin_count = static_cast<std::uint8_t>(
      std::min<std::uint32_t>(p.coins, kMaxCoins));
  s.rng = splitmix64(seed);
  if (s.rng == 0) s.rng = 0x9E3779B97F4A7C15ull;

  const std::int32_t w = arena_w(p), h = arena_h(p);
  const std::int64_t cx = w / 2, cy = h / 2;
  const std::int64_t r = std::min(w, h) * std::int64_t{3} / 8;
  for (std::uint8_t i = 0; i < s.player_count; ++i) {
    // Evenly spread over 16 directions: slot i of n faces direction i*16/n.
    const unsigned k = static_cast<unsigned>(i) * 16u / s.player_count;
    PlayerState& pl = s.players[i];
    pl.x = clamp_coord(cx + r * kCos16[k] / 10000, w);
    pl.y = clamp_coord(cy + r * kCos16[(k + 12) % 16] / 10000, h);
  }
  for (std::uint8_t c = 0; c < s.coin_count; ++c)
    place_coin(s.coins[c], s.rng, p, 0);
  return s;
}

void step(MatchState& s, const Params& p, const PlayerInput* inputs,
          const bool* has_input) {
  if (s.ended) return;
  const std::uint8_t n = std::min(s.player_count, kMaxPlayers);
  const std::uint8_t nc = std::min(s.coin_count, kMaxCoins);
  const std::uint32_t now = s.tick + 1;
  const std::int32_t w = arena_w(p), h = arena_h(p);
  const std::int32_t speed = speed_per_tick(p);

  // 1. timers.
  bool frozen[kMaxPlayers] = {};
  bool tag_attempt[kMaxPlayers] = {};
  for (std::uint8_t i = 0; i < n; ++i) {
    PlayerState& pl = s.players[i];
    if (pl.stun_ticks > 0) {
      frozen[i] = true;
      --pl.stun_ticks;
    }
    if (pl.stun_ticks == 0) pl.flags &= static_cast<std::uint8_t>(~kFlagStunned);
    if (pl.tag_cooldown > 0) --pl.tag_cooldown;
  }

  // 2. inputs and movement.
  if (inputs != nullptr && has_input != nullptr) {
    for (std::uint8_t i = 0; i < n; ++i) {
      PlayerState& pl = s.players[i];
      if (!has_input[i] || (pl.flags & kFlagDisconnected)) continue;
      const PlayerInput& in = inputs[i];
      switch (check_input(pl.last_seq, in)) {
        case InputVerdict::Stale: ++s.inputs_stale; continue;
        case InputVerdict::OutOfRange: ++s.inputs_out_of_range; continue;
        case InputVerdict::Ok: break;
      }
      pl.last_seq = in.seq;
      if (frozen[i]) continue;
      const Velocity v = velocity_at(speed, in.move_x, in.move_y);
      pl.x = clamp_coord(static_cast<std::int64_t>(pl.x) + v.x, w);
      pl.y = clamp_coord(static_cast<std::int64_t>(pl.y) + v.y, h);
      tag_attempt[i] = (in.buttons & kButtonTag) != 0;
    }
  }

  // 3. tags, sequential by index.
  const std::int64_t tag_r2 = radius2(p.tag_radius);
  for (std::uint8_t i = 0; i < n; ++i) {
    PlayerState& tagger = s.players[i];
    if (!tag_attempt[i] || frozen[i] || (tagger.flags & kFlagStunned) ||
        tagger.tag_cooldown > 0)
      continue;
    int target = -1;
    std::int64_t best = 0;
    for (std::uint8_t j = 0; j < n; ++j) {
      const PlayerState& o = s.players[j];
      if (j == i || frozen[j] ||
          (o.flags & (kFlagStunned | kFlagDisconnected)) != 0)
        continue;
      const std::int64_t d2 = dist2(tagger.x, tagger.y, o.x, o.y);
      if (d2 <= tag_r2 && (target < 0 || d2 < best)) {
        target = j;
        best = d2;
      }
    }
    if (target < 0) {
      tagger.tag_cooldown = to_u16_ticks(tag_miss_cooldown_ticks(p));
      continue;
    }
    PlayerState& victim = s.players[target];
    victim.stun_ticks = to_u16_ticks(stun_ticks(p));
    victim.flags |= kFlagStunned;
    tagger.score += 1;
    tagger.tag_cooldown = to_u16_ticks(tag_cooldown_ticks(p));
    ++s.tags;
  }

  // 4. coin respawns.
  for (std::uint8_t c = 0; c < nc; ++c) {
    CoinState& coin = s.coins[c];
    if (!coin.active && coin.respawn_at_tick <= now)
      place_coin(coin, s.rng, p, now);
  }

  // 5. pickups.
  const std::int64_t pick_r2 = radius2(p.pickup_radius);
  const std::uint32_t respawn = coin_respawn_ticks(p);
  for (std::uint8_t i = 0; i < n; ++i) {
    PlayerState& pl = s.players[i];
    if (frozen[i] || (pl.flags & kFlagDisconnected)) continue;
    const std::int32_t px = pl.x, py = pl.y;  // not reloaded after each coin store
    for (std::uint8_t c = 0; c < nc; ++c) {
      CoinState& coin = s.coins[c];
      if (!coin.active || dist2(px, py, coin.x, coin.y) > pick_r2) continue;
      pl.score += coin.value;
      coin.active = 0;
      coin.respawn_at_tick = now + respawn;  // wraps only after ~4.5 years at 30 Hz
      ++s.coins_collected;
    }
  }

  // 6. the clock and the end.
  s.tick = now;
  end_if_over(s, p);
}

void abandon(MatchState& s) {
  if (s.ended) return;
  s.ended = 1;
  s.end_reason = static_cast<std::uint8_t>(EndReason::Abandoned);
}

std::uint32_t time_left_ms(const MatchState& s, const Params& p) {
  const std::uint32_t limit = time_limit_ticks(p);
  if (s.ended || s.tick >= limit) return 0;
  const std::uint64_t hz = std::clamp<std::uint32_t>(p.tick_rate_hz, 1, 1000);
  const std::uint64_t ms = static_cast<std::uint64_t>(limit - s.tick) * 1000 / hz;
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(ms, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace arena
