// Unit tests of server/game/rules: determinism, the speed clamp against a
// cheating client, arena bounds, input checks, tagging, coins, the end of a
// match, results, and delta snapshots.
//
// Every random choice comes from a std::mt19937 with a fixed seed, so a
// failure reproduces exactly.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include "game/rules.h"

using namespace skirmish::game;

// Counts every operator new in this binary, so a test can prove that step()
// and the view helpers allocate nothing (they run on the tick hot path).
// Not under AddressSanitizer: it owns operator new, and memory it allocated
// inside its runtime would reach our operator delete (alloc-dealloc-mismatch).
#if defined(__SANITIZE_ADDRESS__)
#define SKIRMISH_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKIRMISH_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef SKIRMISH_COUNT_ALLOCATIONS
#define SKIRMISH_COUNT_ALLOCATIONS 1
#endif

namespace {
std::size_t g_allocations = 0;
}  // namespace

#if SKIRMISH_COUNT_ALLOCATIONS
void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

// A small, crowded arena so that tags and pickups happen often.
Params crowded_params() {
  Params p;
  p.arena_width = 10000;
  p.arena_height = 8000;
  p.max_speed = 6000;
  p.tick_rate_hz = 30;
  p.score_limit = 1000000;
  p.time_limit_s = 3600;
  p.coins = kMaxCoins;
  return p;
}

// Params with no coins, for tests that place everything by hand.
Params bare_params() {
  Params p;
  p.coins = 0;
  p.score_limit = 100;
  return p;
}

bool same_bytes(const MatchState& a, const MatchState& b) {
  return std::memcmp(&a, &b, sizeof(MatchState)) == 0;
}

// One tick of random inputs for every slot: mostly valid moves, sometimes
// tags, sometimes nothing, and now and then a stale or out-of-range input.
struct TickInputs {
  PlayerInput in[kMaxPlayers];
  bool has[kMaxPlayers];
};

TickInputs random_inputs(std::mt19937& rng, std::uint32_t* next_seq,
                         std::uint8_t players) {
  TickInputs t{};
  std::uniform_int_distribution<int> move(-100, 100);
  std::uniform_int_distribution<int> any8(-128, 127);
  std::uniform_int_distribution<int> pct(0, 99);
  for (std::uint8_t i = 0; i < players; ++i) {
    const int roll = pct(rng);
    if (roll < 10) continue;  // no input this tick
    PlayerInput& in = t.in[i];
    in.seq = ++next_seq[i];
    in.move_x = static_cast<std::int8_t>(move(rng));
    in.move_y = static_cast<std::int8_t>(move(rng));
    in.buttons = pct(rng) < 30 ? kButtonTag : 0;
    if (roll < 13) in.seq = next_seq[i] > 3 ? next_seq[i] - 3 : 0;  // stale
    else if (roll < 16)
      in.move_x = static_cast<std::int8_t>(any8(rng) >= 0 ? 101 + pct(rng) % 27
                                                          : -101 - pct(rng) % 28);
    else if (roll < 18) in.buttons = 0x82;                            // unknown bits
    t.has[i] = true;
  }
  return t;
}

void require_inside(const MatchState& s, const Params& p) {
  for (std::uint8_t i = 0; i < s.player_count; ++i) {
    REQUIRE(s.players[i].x >= 0);
    REQUIRE(s.players[i].x < p.arena_width);
    REQUIRE(s.players[i].y >= 0);
    REQUIRE(s.players[i].y < p.arena_height);
  }
  for (std::uint8_t c = 0; c < s.coin_count; ++c) {
    if (!s.coins[c].active) continue;
    REQUIRE(s.coins[c].x >= 0);
    REQUIRE(s.coins[c].x < p.arena_width);
    REQUIRE(s.coins[c].y >= 0);
    REQUIRE(s.coins[c].y < p.arena_height);
  }
}

PlayerInput input(std::uint32_t seq, int mx, int my, std::uint8_t buttons = 0) {
  return PlayerInput{seq, static_cast<std::int8_t>(mx),
                     static_cast<std::int8_t>(my), buttons, 0};
}

// Steps with input only for `slot` (others send nothing).
void step_one(MatchState& s, const Params& p, std::uint8_t slot,
              const PlayerInput& in) {
  PlayerInput ins[kMaxPlayers] = {};
  bool has[kMaxPlayers] = {};
  ins[slot] = in;
  has[slot] = true;
  step(s, p, ins, has);
}

void check_delta(const MatchState& base, const MatchState& cur) {
  EntityView eb[kMaxEntities], ec[kMaxEntities], changed[kMaxEntities],
      rebuilt[kMaxEntities];
  std::uint16_t removed[kMaxEntities];
  std::size_t n_changed = 99, n_removed = 99;
  const std::size_t nb = entities(base, eb);
  const std::size_t nc = entities(cur, ec);
  const std::size_t total =
      delta(base, cur, changed, &n_changed, removed, &n_removed);
  REQUIRE(total == n_changed + n_removed);
  for (std::size_t i = 1; i < n_changed; ++i)
    REQUIRE(changed[i - 1].id < changed[i].id);
  for (std::size_t i = 1; i < n_removed; ++i)
    REQUIRE(removed[i - 1] < removed[i]);
  for (std::size_t i = 0; i < n_removed; ++i) REQUIRE(removed[i] >= kFirstCoinId);
  const std::size_t nr =
      apply_delta(eb, nb, changed, n_changed, removed, n_removed, rebuilt);
  REQUIRE(nr == nc);
  REQUIRE(std::memcmp(rebuilt, ec, nc * sizeof(EntityView)) == 0);
}

}  // namespace

TEST_CASE("layout: MatchState fits the shm slot, EntityView is proto::Entity") {
  STATIC_REQUIRE(sizeof(MatchState) <= 1024);
  STATIC_REQUIRE(std::is_trivially_copyable_v<MatchState>);
  STATIC_REQUIRE(std::is_standard_layout_v<MatchState>);
  STATIC_REQUIRE(sizeof(EntityView) == 20);
  STATIC_REQUIRE(offsetof(EntityView, id) == 0);
  STATIC_REQUIRE(offsetof(EntityView, kind) == 2);
  STATIC_REQUIRE(offsetof(EntityView, flags) == 3);
  STATIC_REQUIRE(offsetof(EntityView, x) == 4);
  STATIC_REQUIRE(offsetof(EntityView, y) == 8);
  STATIC_REQUIRE(offsetof(EntityView, score) == 12);
  STATIC_REQUIRE(offsetof(EntityView, extra) == 16);
  STATIC_REQUIRE(kMaxEntities == 48);
}

TEST_CASE("params: defaults are playable, nonsense is named") {
  REQUIRE(check_params(Params{}) == nullptr);
  REQUIRE(check_params(crowded_params()) == nullptr);
  REQUIRE(speed_per_tick(Params{}) == 200);  // 6000 units/s at 30 Hz
  REQUIRE(stun_ticks(Params{}) == 15);       // tick_rate_hz / 2
  REQUIRE(coin_respawn_ticks(Params{}) == 60);
  REQUIRE(time_limit_ticks(Params{}) == 3600);
  Params p;
  p.max_speed = 7;
  p.tick_rate_hz = 30;
  REQUIRE(speed_per_tick(p) == 0);  // floor: never faster than configured
  REQUIRE(check_params(p) != nullptr);
  p = Params{};
  p.coins = kMaxCoins + 1;
  REQUIRE(check_params(p) != nullptr);
  p = Params{};
  p.arena_width = 0;
  REQUIRE(check_params(p) != nullptr);
  p = Params{};
  p.tick_rate_hz = 0;
  REQUIRE(check_params(p) != nullptr);
  REQUIRE(speed_per_tick(p) >= 0);  // no division by zero either way
  p = Params{};
  p.time_limit_s = 0xFFFFFFFFu;
  REQUIRE(check_params(p) != nullptr);
}

TEST_CASE("check_input rejects stale and out-of-range inputs") {
  REQUIRE(check_input(0, input(1, 0, 0)) == InputVerdict::Ok);
  REQUIRE(check_input(0, input(0, 0, 0)) == InputVerdict::Stale);
  REQUIRE(check_input(7, input(7, 0, 0)) == InputVerdict::Stale);
  REQUIRE(check_input(7, input(3, 0, 0)) == InputVerdict::Stale);
  REQUIRE(check_input(7, input(8, 100, -100, kButtonTag)) == InputVerdict::Ok);
  REQUIRE(check_input(7, input(8, 101, 0)) == InputVerdict::OutOfRange);
  REQUIRE(check_input(7, input(8, 0, -101)) == InputVerdict::OutOfRange);
  REQUIRE(check_input(7, input(8, 127, 127)) == InputVerdict::OutOfRange);
  REQUIRE(check_input(7, input(8, -128, 0)) == InputVerdict::OutOfRange);
  REQUIRE(check_input(7, input(8, 0, 0, 0x02)) == InputVerdict::OutOfRange);
  REQUIRE(check_input(7, input(8, 0, 0, 0x80)) == InputVerdict::OutOfRange);
  // Stale is decided first.
  REQUIRE(check_input(7, input(7, 127, 0, 0xFF)) == InputVerdict::Stale);
  REQUIRE(check_input(0xFFFFFFFEu, input(0xFFFFFFFFu, 0, 0)) == InputVerdict::Ok);

  // step() ignores and counts what check_input refuses.
  const Params p = bare_params();
  MatchState s = init(p, 2, 1);
  const MatchState before = s;
  step_one(s, p, 0, input(0, 100, 0));
  step_one(s, p, 0, input(1, 101, 0));
  REQUIRE(s.players[0].x == before.players[0].x);
  REQUIRE(s.players[0].last_seq == 0);
  REQUIRE(s.inputs_stale == 1);
  REQUIRE(s.inputs_out_of_range == 1);
  step_one(s, p, 0, input(5, 100, 0));
  REQUIRE(s.players[0].last_seq == 5);
  REQUIRE(s.players[0].x == before.players[0].x + speed_per_tick(p));
}

TEST_CASE("isqrt_ceil and velocity: exact, symmetric, never above max speed") {
  for (std::uint64_t v = 0; v < 100000; ++v) {
    const std::uint64_t r = isqrt_ceil(v);
    REQUIRE(r * r >= v);
    REQUIRE((r == 0 || (r - 1) * (r - 1) < v));
  }
  REQUIRE(isqrt_ceil(0xFFFFFFFFFFFFFFFFull) == 0x100000000ull);

  for (std::int32_t speed : {1, 7, 200, 33333, 1000000}) {
    Params p;
    p.max_speed = speed;
    p.tick_rate_hz = 1;
    const std::int64_t s = speed_per_tick(p);
    REQUIRE(velocity(p, 100, 0).x == s);
    REQUIRE(velocity(p, 0, -100).y == -s);
    for (int mx = -128; mx <= 127; ++mx) {
      for (int my = -128; my <= 127; ++my) {
        const Velocity v = velocity(p, mx, my);
        REQUIRE(std::int64_t{v.x} * v.x + std::int64_t{v.y} * v.y <= s * s);
        const Velocity m = velocity(p, -mx, -my);
        if (mx > -128 && my > -128) {
          REQUIRE(m.x == -v.x);
          REQUIRE(m.y == -v.y);
        }
      }
    }
  }
}

TEST_CASE("init: spread spawns inside the arena, seeded coins, zeroed bytes") {
  const Params p = crowded_params();
  for (std::uint8_t n = kMinPlayers; n <= kMaxPlayers; ++n) {
    const MatchState s = init(p, n, 42);
    REQUIRE(s.player_count == n);
    REQUIRE(s.coin_count == kMaxCoins);
    REQUIRE(s.tick == 0);
    REQUIRE(s.ended == 0);
    require_inside(s, p);
    for (std::uint8_t i = 0; i < n; ++i)
      for (std::uint8_t j = i + 1; j < n; ++j)
        REQUIRE((s.players[i].x != s.players[j].x ||
                 s.players[i].y != s.players[j].y));
    for (std::uint8_t c = 0; c < s.coin_count; ++c) {
      REQUIRE(s.coins[c].active == 1);
      REQUIRE(s.coins[c].value >= kMinCoinValue);
      REQUIRE(s.coins[c].value <= kMaxCoinValue);
    }
    const PlayerState zero{};
    for (std::uint8_t i = n; i < kMaxPlayers; ++i)
      REQUIRE(std::memcmp(&s.players[i], &zero, sizeof zero) == 0);
  }
  // Same seed, same bytes; another seed, other bytes.
  const MatchState a = init(p, 4, 7), b = init(p, 4, 7), c = init(p, 4, 8);
  REQUIRE(same_bytes(a, b));
  REQUIRE_FALSE(same_bytes(a, c));
  // The player count is clamped, never out of bounds.
  REQUIRE(init(p, 0, 1).player_count == 1);
  REQUIRE(init(p, 200, 1).player_count == kMaxPlayers);
}

TEST_CASE("determinism over 10,000 random input sequences") {
  const Params p = crowded_params();
  std::mt19937 rng(20240601);
  std::uint64_t tags = 0, coins = 0, stale = 0, out_of_range = 0;
  // The second state lives in a byte buffer, as in shared memory: each tick
  // it is copied out, stepped, and copied back (an adopting worker does
  // exactly this), starting from storage full of garbage.
  alignas(64) unsigned char shm_slot[kMatchStateBytes];
  for (int sequence = 0; sequence < 10000; ++sequence) {
    const std::uint8_t players =
        static_cast<std::uint8_t>(kMinPlayers + sequence % (kMaxPlayers - 1));
    const std::uint32_t seed = static_cast<std::uint32_t>(rng());
    MatchState a = init(p, players, seed);
    std::memset(shm_slot, 0xA5, sizeof shm_slot);
    const MatchState b0 = init(p, players, seed);
    std::memcpy(shm_slot, &b0, sizeof b0);
    std::uint32_t next_seq[kMaxPlayers] = {};
    for (int t = 0; t < 30; ++t) {
      if (rng() % 50 == 0) {
        const auto slot = static_cast<std::uint8_t>(rng() % players);
        const bool up = rng() % 2 == 0;
        set_connected(a, slot, up);
        MatchState b;
        std::memcpy(&b, shm_slot, sizeof b);
        set_connected(b, slot, up);
        std::memcpy(shm_slot, &b, sizeof b);
      }
      const TickInputs in = random_inputs(rng, next_seq, players);
      step(a, p, in.in, in.has);
      MatchState b;
      std::memset(&b, 0x5A, sizeof b);
      std::memcpy(&b, shm_slot, sizeof b);
      step(b, p, in.in, in.has);
      std::memcpy(shm_slot, &b, sizeof b);
      REQUIRE(std::memcmp(&a, shm_slot, sizeof a) == 0);
    }
    tags += a.tags;
    coins += a.coins_collected;
    stale += a.inputs_stale;
    out_of_range += a.inputs_out_of_range;
  }
  // The sequences exercised every rule, not just movement.
  CHECK(tags > 1000);
  CHECK(coins > 1000);
  CHECK(stale > 1000);
  CHECK(out_of_range > 1000);

  // A different seed gives a different state, also after the same inputs.
  MatchState x = init(p, 8, 1), y = init(p, 8, 2);
  REQUIRE_FALSE(same_bytes(x, y));
  std::uint32_t sx[kMaxPlayers] = {}, sy[kMaxPlayers] = {};
  std::mt19937 r1(5), r2(5);
  for (int t = 0; t < 100; ++t) {
    const TickInputs a = random_inputs(r1, sx, 8);
    const TickInputs b = random_inputs(r2, sy, 8);
    step(x, p, a.in, a.has);
    step(y, p, b.in, b.has);
  }
  REQUIRE_FALSE(same_bytes(x, y));
}

TEST_CASE("step and the snapshot helpers allocate nothing") {
  if (!SKIRMISH_COUNT_ALLOCATIONS) {
    WARN("allocation counting is off under AddressSanitizer");
    return;
  }
  const Params p = crowded_params();
  MatchState s = init(p, kMaxPlayers, 3);
  std::mt19937 rng(8);
  std::uint32_t seq[kMaxPlayers] = {};
  TickInputs ticks[64];
  for (TickInputs& t : ticks) t = random_inputs(rng, seq, kMaxPlayers);
  EntityView views[kMaxEntities], changed[kMaxEntities], out[kMaxEntities];
  std::uint16_t removed[kMaxEntities];
  Placing placings[kMaxPlayers];
  const std::size_t before = g_allocations;
  for (const TickInputs& t : ticks) {
    const MatchState base = s;
    step(s, p, t.in, t.has);
    std::size_t nch = 0, nrm = 0;
    const std::size_t nv = entities(base, views);
    delta(base, s, changed, &nch, removed, &nrm);
    apply_delta(views, nv, changed, nch, removed, nrm, out);
    results(s, placings);
  }
  REQUIRE(g_allocations == before);
  // The counter does see allocations (the test is not vacuous).
  std::vector<int> probe(4);
  REQUIRE(g_allocations > before);
}

TEST_CASE("a client asking for 10x the speed moves at most max speed per tick") {
  Params p = Params{};
  p.time_limit_s = 3600;
  const std::int64_t limit = speed_per_tick(p) + 1;
  MatchState s = init(p, 2, 3);
  std::mt19937 rng(77);
  std::uniform_int_distribution<int> any8(-128, 127);
  std::uint32_t seq = 0;
  std::uint64_t moved_ticks = 0;
  for (int t = 0; t < 20000; ++t) {
    PlayerInput in;
    if (t % 3 == 0) in = input(++seq, 100, 100);            // diagonal, both full
    else if (t % 3 == 1) in = input(++seq, 127, -128);      // beyond the range
    else in = input(++seq, any8(rng), any8(rng));           // anything an int8 holds
    // A flood of inputs in one tick still applies one of them.
    if (t % 7 == 0) seq += 9;
    const PlayerState before = s.players[0];
    step_one(s, p, 0, in);
    REQUIRE_FALSE(s.ended);
    const std::int64_t dx = s.players[0].x - before.x;
    const std::int64_t dy = s.players[0].y - before.y;
    REQUIRE(dx * dx + dy * dy <= limit * limit);
    if (check_input(before.last_seq, in) != InputVerdict::Ok) {
      REQUIRE(dx == 0);
      REQUIRE(dy == 0);
    }
    if (dx != 0 || dy != 0) ++moved_ticks;
  }
  REQUIRE(moved_ticks > 1000);
  REQUIRE(s.inputs_out_of_range > 1000);
}

TEST_CASE("no entity ever leaves the arena") {
  SECTION("random walks into the walls, 10,000 ticks") {
    Params p = crowded_params();
    MatchState s = init(p, kMaxPlayers, 9);
    std::mt19937 rng(123);
    std::uint32_t seq[kMaxPlayers] = {};
    int dir_x[kMaxPlayers] = {}, dir_y[kMaxPlayers] = {};
    for (int t = 0; t < 10000; ++t) {
      PlayerInput ins[kMaxPlayers];
      bool has[kMaxPlayers];
      for (int i = 0; i < kMaxPlayers; ++i) {
        // Keep a heading for a while, mostly straight at a wall or corner.
        if (t % 97 == 0) {
          dir_x[i] = static_cast<int>(rng() % 3) * 100 - 100;
          dir_y[i] = static_cast<int>(rng() % 3) * 100 - 100;
        }
        ins[i] = input(++seq[i], dir_x[i], dir_y[i], rng() % 4 == 0 ? 1 : 0);
        has[i] = true;
      }
      step(s, p, ins, has);
      require_inside(s, p);
    }
  }
  SECTION("a speed larger than the arena, and degenerate arenas") {
    for (auto [w, h] : {std::pair{1, 1}, {1, 7}, {999, 2}, {1000, 1000}}) {
      Params p;
      p.arena_width = w;
      p.arena_height = h;
      p.max_speed = 1000000;
      p.coins = 4;
      REQUIRE(check_params(p) == nullptr);
      MatchState s = init(p, kMaxPlayers, 1);
      require_inside(s, p);
      std::mt19937 rng(w * 31 + h);
      std::uint32_t seq[kMaxPlayers] = {};
      for (int t = 0; t < 500 && !s.ended; ++t) {
        const TickInputs in = random_inputs(rng, seq, kMaxPlayers);
        step(s, p, in.in, in.has);
        require_inside(s, p);
      }
    }
  }
}

TEST_CASE("tagging stuns the nearest player and scores, with a cooldown") {
  const Params p = bare_params();
  MatchState s = init(p, 4, 1);
  // 0 at the centre; 1 and 2 at the same distance (tie: lower index);
  // 3 just outside the tag radius.
  s.players[0].x = 50000; s.players[0].y = 50000;
  s.players[1].x = 51000; s.players[1].y = 50000;
  s.players[2].x = 49000; s.players[2].y = 50000;
  s.players[3].x = 50000; s.players[3].y = 50000 + p.tag_radius + 1;
  std::uint32_t seq0 = 0;

  step_one(s, p, 0, input(++seq0, 0, 0, kButtonTag));
  REQUIRE(s.players[0].score == 1);
  REQUIRE(s.tags == 1);
  REQUIRE((s.players[1].flags & kFlagStunned) != 0);
  REQUIRE(s.players[1].stun_ticks == stun_ticks(p));
  REQUIRE((s.players[2].flags & kFlagStunned) == 0);

  // The stunned player cannot move for stun_ticks steps, nor tag.
  std::uint32_t seq1 = 0;
  const std::int32_t x1 = s.players[1].x;
  for (std::uint32_t t = 0; t < stun_ticks(p); ++t) {
    step_one(s, p, 1, input(++seq1, 100, 0, kButtonTag));
    REQUIRE(s.players[1].x == x1);
    REQUIRE(s.players[1].score == 0);
  }
  REQUIRE((s.players[1].flags & kFlagStunned) == 0);
  step_one(s, p, 1, input(++seq1, 100, 0));
  REQUIRE(s.players[1].x == x1 + speed_per_tick(p));

  // Player 0 is on cooldown: pressing tag next to 2 does nothing until it
  // runs out (tag_cooldown_ticks after the hit).
  s = init(p, 4, 1);
  s.players[0].x = 50000; s.players[0].y = 50000;
  s.players[1].x = 51000; s.players[1].y = 50000;
  s.players[2].x = 49500; s.players[2].y = 50000;  // nearer than 1
  s.players[3].x = 10000; s.players[3].y = 10000;
  seq0 = 0;
  step_one(s, p, 0, input(++seq0, 0, 0, kButtonTag));
  REQUIRE((s.players[2].flags & kFlagStunned) != 0);  // the nearest one
  REQUIRE(s.players[0].score == 1);
  std::uint32_t waited = 1;
  while (s.players[0].score == 1) {
    step_one(s, p, 0, input(++seq0, 0, 0, kButtonTag));
    ++waited;
    REQUIRE(waited <= tag_cooldown_ticks(p) + 1);
  }
  REQUIRE(waited == tag_cooldown_ticks(p) + 1);
  REQUIRE(s.players[0].score == 2);

  // A miss costs the miss cooldown; a disconnected player cannot be tagged.
  s = init(p, 2, 1);
  s.players[0].x = 50000; s.players[0].y = 50000;
  s.players[1].x = 50100; s.players[1].y = 50000;
  set_connected(s, 1, false);
  seq0 = 0;
  step_one(s, p, 0, input(++seq0, 0, 0, kButtonTag));
  REQUIRE(s.players[0].score == 0);
  REQUIRE(s.players[0].tag_cooldown == tag_miss_cooldown_ticks(p));
  set_connected(s, 1, true);
  for (std::uint32_t t = 0; t < tag_miss_cooldown_ticks(p); ++t)
    step_one(s, p, 0, input(++seq0, 0, 0, kButtonTag));
  REQUIRE(s.players[0].score == 1);

  // Same-tick mutual tag: the lower index acts first.
  s = init(p, 2, 1);
  s.players[0].x = 50000; s.players[0].y = 50000;
  s.players[1].x = 50100; s.players[1].y = 50000;
  PlayerInput both[2] = {input(1, 0, 0, kButtonTag), input(1, 0, 0, kButtonTag)};
  bool has[2] = {true, true};
  step(s, p, both, has);
  REQUIRE(s.players[0].score == 1);
  REQUIRE(s.players[1].score == 0);
}

TEST_CASE("disconnected players stand still and their inputs are ignored") {
  const Params p = bare_params();
  MatchState s = init(p, 2, 1);
  set_connected(s, 1, false);
  REQUIRE((s.players[1].flags & kFlagDisconnected) != 0);
  const std::int32_t x = s.players[1].x;
  step_one(s, p, 1, input(1, 100, 0));
  REQUIRE(s.players[1].x == x);
  REQUIRE(s.players[1].last_seq == 0);
  set_connected(s, 1, true);
  step_one(s, p, 1, input(1, 100, 0));
  REQUIRE(s.players[1].x == std::min(x + speed_per_tick(p), p.arena_width - 1));
  set_connected(s, 200, false);  // ignored, no out-of-bounds write
}

TEST_CASE("coins are collected and respawn") {
  Params p = bare_params();
  p.coins = 2;
  MatchState s = init(p, 2, 11);
  s.players[0].x = 20000; s.players[0].y = 20000;
  s.players[1].x = 20000; s.players[1].y = 20000;  // same spot: 0 goes first
  s.coins[0].x = 20000 + p.pickup_radius; s.coins[0].y = 20000;  // on the edge
  s.coins[1].x = 90000; s.coins[1].y = 90000;
  const std::int32_t value = s.coins[0].value;

  step(s, p, nullptr, nullptr);  // standing on it is enough
  REQUIRE(s.players[0].score == value);
  REQUIRE(s.players[1].score == 0);
  REQUIRE(s.coins[0].active == 0);
  REQUIRE(s.coins[0].respawn_at_tick == 1 + coin_respawn_ticks(p));
  REQUIRE(s.coins_collected == 1);
  EntityView views[kMaxEntities];
  REQUIRE(entities(s, views) == 2 + 1);  // the collected coin is omitted

  // Move both players away, then wait for the respawn.
  s.players[0].x = 1000; s.players[1].x = 1000;
  s.players[0].y = 1000; s.players[1].y = 1000;
  while (s.tick + 1 < s.coins[0].respawn_at_tick) {
    step(s, p, nullptr, nullptr);
    REQUIRE(s.coins[0].active == 0);
  }
  step(s, p, nullptr, nullptr);
  REQUIRE(s.coins[0].active == 1);
  REQUIRE(s.coins[0].respawn_at_tick == s.tick);  // extra = tick it appeared
  REQUIRE(s.coins[0].value >= kMinCoinValue);
  REQUIRE(s.coins[0].value <= kMaxCoinValue);
  require_inside(s, p);
  REQUIRE(entities(s, views) == 2 + 2);

  // A stunned player does not collect.
  s.coins[1].x = 1000; s.coins[1].y = 30000;
  s.players[0].x = 1000; s.players[0].y = 30000;
  s.players[0].stun_ticks = 2;
  s.players[0].flags |= kFlagStunned;
  s.players[1].x = 90000; s.players[1].y = 90000;
  const std::int32_t score = s.players[0].score;
  step(s, p, nullptr, nullptr);
  REQUIRE(s.coins[1].active == 1);
  step(s, p, nullptr, nullptr);
  REQUIRE(s.coins[1].active == 1);
  step(s, p, nullptr, nullptr);  // stun over
  REQUIRE(s.coins[1].active == 0);
  REQUIRE(s.players[0].score == score + s.coins[1].value);
}

TEST_CASE("a match ends by score limit or time limit, then stands still") {
  SECTION("score limit") {
    Params p = bare_params();
    p.score_limit = 2;
    MatchState s = init(p, 2, 1);
    s.players[0].x = 50000; s.players[0].y = 50000;
    s.players[1].x = 50100; s.players[1].y = 50000;
    std::uint32_t seq = 0;
    while (!s.ended) step_one(s, p, 0, input(++seq, 0, 0, kButtonTag));
    REQUIRE(s.end_reason == static_cast<std::uint8_t>(EndReason::ScoreLimit));
    REQUIRE(s.players[0].score == 2);
    const MatchState done = s;
    step_one(s, p, 0, input(++seq, 100, 100, kButtonTag));
    REQUIRE(same_bytes(s, done));
    abandon(s);
    REQUIRE(same_bytes(s, done));
  }
  SECTION("time limit") {
    Params p = bare_params();
    p.time_limit_s = 2;
    MatchState s = init(p, 3, 1);
    for (std::uint32_t t = 1; t < time_limit_ticks(p); ++t) {
      step(s, p, nullptr, nullptr);
      REQUIRE_FALSE(s.ended);
    }
    REQUIRE(time_left_ms(s, p) == 1000 / p.tick_rate_hz);
    step(s, p, nullptr, nullptr);
    REQUIRE(s.ended == 1);
    REQUIRE(s.end_reason == static_cast<std::uint8_t>(EndReason::TimeLimit));
    REQUIRE(s.tick == time_limit_ticks(p));
    REQUIRE(time_left_ms(s, p) == 0);
  }
  SECTION("score wins over time on the same tick") {
    Params p = bare_params();
    p.time_limit_s = 1;
    p.score_limit = 1;
    MatchState s = init(p, 2, 1);
    for (std::uint32_t t = 1; t < time_limit_ticks(p); ++t) step(s, p, nullptr, nullptr);
    s.players[0].x = 50000; s.players[0].y = 50000;
    s.players[1].x = 50100; s.players[1].y = 50000;
    step_one(s, p, 0, input(1, 0, 0, kButtonTag));
    REQUIRE(s.end_reason == static_cast<std::uint8_t>(EndReason::ScoreLimit));
  }
  SECTION("abandoned") {
    const Params p = bare_params();
    MatchState s = init(p, 2, 1);
    abandon(s);
    REQUIRE(s.ended == 1);
    REQUIRE(s.end_reason == static_cast<std::uint8_t>(EndReason::Abandoned));
  }
}

TEST_CASE("results place by score and equal scores share a place") {
  const Params p = bare_params();
  MatchState s = init(p, 5, 1);
  const std::int32_t scores[5] = {5, 7, 5, 2, 7};
  for (int i = 0; i < 5; ++i) s.players[i].score = scores[i];
  Placing out[kMaxPlayers];
  results(s, out);
  const Placing want[5] = {{1, 1, 7}, {4, 1, 7}, {0, 3, 5}, {2, 3, 5}, {3, 5, 2}};
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    REQUIRE(out[i].slot == want[i].slot);
    REQUIRE(out[i].place == want[i].place);
    REQUIRE(out[i].score == want[i].score);
  }
  MatchState t = init(p, 3, 1);  // all 0: everyone first
  results(t, out);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(out[i].place == 1);
    REQUIRE(out[i].slot == i);
  }
}

TEST_CASE("delta + apply_delta reconstruct entities exactly") {
  const Params p = crowded_params();
  MatchState s = init(p, 12, 99);
  std::vector<MatchState> history{s};
  std::mt19937 rng(4242);
  std::uint32_t seq[kMaxPlayers] = {};
  std::size_t nonempty = 0, with_removed = 0;
  for (int t = 1; t <= 3000; ++t) {
    const TickInputs in = random_inputs(rng, seq, s.player_count);
    step(s, p, in.in, in.has);
    history.push_back(s);
    for (int back : {1, 5, 30}) {
      if (t < back) continue;
      check_delta(history[static_cast<std::size_t>(t - back)], s);
    }
    check_delta(history[0], s);
    EntityView ch[kMaxEntities];
    std::uint16_t rm[kMaxEntities];
    std::size_t nch = 0, nrm = 0;
    if (delta(history[static_cast<std::size_t>(t - 1)], s, ch, &nch, rm, &nrm) != 0)
      ++nonempty;
    if (nrm != 0) ++with_removed;
  }
  REQUIRE(nonempty > 100);
  REQUIRE(with_removed > 10);

  // Bases with fewer and with more coins than the current state.
  MatchState fewer = s, more = s;
  for (std::uint8_t c = 0; c < s.coin_count; c += 2) fewer.coins[c].active = 0;
  for (std::uint8_t c = 0; c < s.coin_count; ++c) more.coins[c].active = 1;
  check_delta(fewer, s);
  check_delta(more, s);
  check_delta(s, fewer);
  MatchState no_coins = init(bare_params(), 12, 99);
  check_delta(no_coins, s);
  check_delta(s, no_coins);
}

TEST_CASE("the delta of an unchanged state is empty") {
  const Params p = crowded_params();
  const MatchState s = init(p, 16, 5);
  EntityView ch[kMaxEntities];
  std::uint16_t rm[kMaxEntities];
  std::size_t nch = 99, nrm = 99;
  REQUIRE(delta(s, s, ch, &nch, rm, &nrm) == 0);
  REQUIRE(nch == 0);
  REQUIRE(nrm == 0);
  // A state that only changed counters or rng has no visible change either.
  MatchState t = s;
  t.inputs_stale += 3;
  t.rng ^= 1;
  REQUIRE(delta(s, t, ch, &nch, rm, &nrm) == 0);
}

TEST_CASE("apply_delta tolerates unsorted input and skips bad ids") {
  const EntityView a{0, 0, 0, 1, 2, 3, 4};
  const EntityView b{17, 1, 0, 5, 6, 1, 0};
  const EntityView c{20, 1, 0, 7, 8, 2, 0};
  const EntityView base[3] = {c, a, b};
  const EntityView a2{0, 0, 1, 9, 9, 9, 9};
  const EntityView junk{static_cast<std::uint16_t>(kMaxEntities), 1, 0, 0, 0, 0, 0};
  const EntityView changed[2] = {junk, a2};
  const std::uint16_t removed[3] = {17, 60000, 5};
  EntityView out[kMaxEntities];
  const std::size_t n = apply_delta(base, 3, changed, 2, removed, 3, out);
  REQUIRE(n == 2);
  REQUIRE(out[0] == a2);
  REQUIRE(out[1] == c);
  REQUIRE(apply_delta(nullptr, 0, nullptr, 0, nullptr, 0, out) == 0);
}
