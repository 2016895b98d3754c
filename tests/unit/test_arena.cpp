// Unit tests of the arena module (games/arena), driven through its
// skirmish_game_v1 table exactly as the server drives it: loaded by
// server/module's load() by name, params as typed pairs, inputs as bytes,
// everything observed through view() and outcome(). Nothing here includes
// the arena's internals (rules.h); the port of the old tests/unit/
// test_rules.cpp: determinism, the speed clamp against a cheating client,
// arena bounds, input checks, tagging, coins, the end of a match, places,
// and the view's fixed-slot layout.
//
// Every random choice comes from a std::mt19937 with a fixed seed, so a
// failure reproduces exactly.
#include <catch2/catch.hpp>

// GCC 12 sees the replaced operator new/delete below as a malloc/free
// mismatch once they are inlined into std::vector (a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "games/arena/arena.h"
#include "module/module.h"

namespace mod = skirmish::module;

// Counts every operator new in this process (the module's calls bind to it
// too), so a test can prove that step(), view() and outcome() allocate
// nothing. Not under AddressSanitizer, which owns operator new.
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

const skirmish_game_v1_t* arena() {
  static const skirmish_game_v1_t* t = [] {
    std::string error;
    auto m = mod::load("arena", mod::Limits{}, error);
    if (!m) FAIL(error);
    return m->game;
  }();
  return t;
}

using Params = std::vector<mod::GameParam>;

mod::GameParam kv(const char* key, std::int64_t v) { return mod::GameParam{key, SKIRMISH_PARAM_INT, v, 0, ""}; }

// A small, crowded arena so that tags and pickups happen often.
Params crowded() {
  return {kv("width", 10000), kv("height", 8000), kv("max_speed", 6000), kv("score_limit", 10000),
          kv("time_limit_s", 3600), kv("coins", 32)};
}
// No coins, for tests that only move and tag.
Params bare() { return {kv("coins", 0), kv("score_limit", 100)}; }

struct View {
  arena_view_header h{};
  std::vector<arena_entity> players, coins;
};

struct In {
  std::uint8_t seat;
  std::uint32_t seq;
  int mx, my;
  std::uint8_t buttons = 0;
};

// One match through the table, its state in a 16-byte aligned buffer.
struct Match {
  explicit Match(const Params& p, std::uint32_t players, std::uint64_t seed, std::uint32_t hz = 30)
      : params(p, hz), raw(arena()->state_bytes + 16) {
    std::memset(raw.data(), 0xA5, raw.size());
    t->init(state(), params.view(), players, seed);
  }
  std::uint8_t* state() {
    const auto a = reinterpret_cast<std::uintptr_t>(raw.data());
    return raw.data() + ((16 - (a & 15)) & 15);
  }
  std::vector<std::uint8_t> bytes() { return {state(), state() + t->state_bytes}; }
  void step(const std::vector<In>& ins) {
    std::uint8_t buf[SKIRMISH_MAX_SEATS * SKIRMISH_MAX_QUEUED_INPUTS][3];
    skirmish_input items[SKIRMISH_MAX_SEATS * SKIRMISH_MAX_QUEUED_INPUTS];
    std::uint32_t n = 0;
    for (const In& in : ins) {
      buf[n][0] = std::uint8_t(std::int8_t(in.mx));
      buf[n][1] = std::uint8_t(std::int8_t(in.my));
      buf[n][2] = in.buttons;
      items[n] = skirmish_input{in.seat, 3, 0, in.seq, buf[n]};
      ++n;
    }
    const skirmish_inputs x{n != 0 ? items : nullptr, n, connected};
    t->step(state(), &x, ++tick);
  }
  View view() {
    std::uint8_t out[ARENA_MAX_VIEW_BYTES];
    const std::uint32_t len = t->view(state(), 0, out, sizeof out);
    View v;
    REQUIRE(len >= ARENA_VIEW_HEADER_BYTES);
    std::memcpy(&v.h, out, sizeof v.h);
    REQUIRE(len == ARENA_VIEW_HEADER_BYTES + (v.h.player_count + v.h.coin_count) * ARENA_ENTITY_BYTES);
    for (std::uint32_t i = 0; i < std::uint32_t(v.h.player_count + v.h.coin_count); ++i) {
      arena_entity e;
      std::memcpy(&e, out + ARENA_VIEW_HEADER_BYTES + i * ARENA_ENTITY_BYTES, sizeof e);
      (i < v.h.player_count ? v.players : v.coins).push_back(e);
    }
    return v;
  }
  skirmish_outcome outcome() {
    skirmish_outcome o{};
    t->outcome(state(), &o);
    return o;
  }
  const skirmish_game_v1_t* t = arena();
  mod::GameParams params;
  std::vector<std::uint8_t> raw;
  std::uint32_t connected = 0xFFFF;
  std::uint32_t tick = 0;
};

std::string refused(const Params& p, std::uint32_t players = 4, std::uint32_t hz = 30) {
  const mod::GameParams gp(p, hz);
  char err[256] = {};
  if (arena()->check_params(gp.view(), players, err, sizeof err) == 0) return "";
  return err;
}

void require_inside(const View& v, std::int32_t w, std::int32_t h) {
  for (const arena_entity& e : v.players) {
    REQUIRE(e.x >= 0);
    REQUIRE(e.x < w);
    REQUIRE(e.y >= 0);
    REQUIRE(e.y < h);
  }
  for (const arena_entity& e : v.coins) {
    if ((e.flags & ARENA_FLAG_ACTIVE) == 0) continue;
    REQUIRE(e.x >= 0);
    REQUIRE(e.x < w);
    REQUIRE(e.y >= 0);
    REQUIRE(e.y < h);
  }
}

// One tick of random inputs: mostly valid moves, sometimes tags, sometimes
// nothing, now and then a stale seq (check_input passes; the rules drop it).
std::vector<In> random_inputs(std::mt19937& rng, std::uint32_t* seq, std::uint32_t players) {
  std::vector<In> v;
  std::uniform_int_distribution<int> move(-100, 100), pct(0, 99);
  for (std::uint32_t i = 0; i < players; ++i) {
    const int roll = pct(rng);
    if (roll < 10) continue;
    In in{std::uint8_t(i), ++seq[i], move(rng), move(rng), std::uint8_t(pct(rng) < 30 ? ARENA_BUTTON_TAG : 0)};
    if (roll < 13) in.seq = seq[i] > 3 ? seq[i] - 3 : 0;
    v.push_back(in);
  }
  return v;
}

}  // namespace

TEST_CASE("arena: the table and the wire layout") {
  const skirmish_game_v1_t* t = arena();
  REQUIRE(std::string(t->name) == "arena");
  REQUIRE(t->max_input_bytes == ARENA_INPUT_BYTES);
  REQUIRE(t->max_view_bytes == ARENA_MAX_VIEW_BYTES);
  REQUIRE(t->max_view_bytes == 12 + 48 * 20);
  REQUIRE(t->state_bytes <= 1024);  // the old MatchState's shm slot
  REQUIRE((t->flags & SKIRMISH_GAME_SHARED_VIEW) != 0);
  REQUIRE(t->min_players == 1);
  REQUIRE(t->max_players == 16);
  REQUIRE(t->bot_input != nullptr);
  REQUIRE(t->public_params != nullptr);
  STATIC_REQUIRE(sizeof(arena_entity) == 20);
  STATIC_REQUIRE(offsetof(arena_entity, x) == 4);
  STATIC_REQUIRE(offsetof(arena_entity, extra) == 16);
  STATIC_REQUIRE(sizeof(arena_view_header) == 12);
}

TEST_CASE("arena params: defaults playable and public, refusals name the key and the range") {
  CHECK(refused({}) == "");
  CHECK(refused(crowded()) == "");
  const mod::GameParams none({}, 30);
  skirmish_param out[32];
  const std::uint32_t n = arena()->public_params(none.view(), out, 32);
  REQUIRE(n == 12);
  auto value = [&](const char* key) {
    for (std::uint32_t i = 0; i < n; ++i)
      if (std::string(out[i].key) == key) return out[i].i;
    FAIL("no public param " << key);
    return std::int64_t{-1};
  };
  CHECK(value("width") == 100000);
  CHECK(value("max_speed") == 6000);
  CHECK(value("coins") == 8);
  CHECK(value("time_limit_s") == 120);
  CHECK(arena()->public_params(none.view(), out, 3) == 3);  // never past cap

  CHECK(refused({kv("widht", 5)}).rfind("unknown key widht (the arena takes width, height", 0) == 0);
  CHECK(refused({kv("coins", 33)}) == "coins = 33 is out of range (allowed: 0..32)");
  CHECK(refused({kv("width", 999)}) == "width = 999 is out of range (allowed: 1000..10000000)");
  CHECK(refused({kv("score_limit", 0)}) == "score_limit = 0 is out of range (allowed: 1..10000)");
  CHECK(refused({kv("time_limit_s", 3601)}) == "time_limit_s = 3601 is out of range (allowed: 5..3600)");
  CHECK(refused({mod::GameParam{"coins", SKIRMISH_PARAM_STRING, 0, 0, "eight"}}) ==
        "coins must be an integer (allowed: 0..32)");
  // max_speed below the tick rate would be 0 units per tick.
  CHECK(refused({kv("max_speed", 7)}).find("max_speed") != std::string::npos);
  CHECK(refused({}, 17).find("players = 17") != std::string::npos);
}

TEST_CASE("arena check_input: length, move range, known buttons") {
  const skirmish_game_v1_t* t = arena();
  auto check = [&](std::vector<std::uint8_t> b) { return t->check_input(b.data(), std::uint32_t(b.size())); };
  CHECK(check({0, 0, 0}) == SKIRMISH_INPUT_OK);
  CHECK(check({100, std::uint8_t(-100), ARENA_BUTTON_TAG}) == SKIRMISH_INPUT_OK);
  CHECK(check({0, 0}) == SKIRMISH_INPUT_MALFORMED);
  CHECK(check({0, 0, 0, 0}) == SKIRMISH_INPUT_MALFORMED);
  CHECK(check({101, 0, 0}) == SKIRMISH_INPUT_OUT_OF_RANGE);
  CHECK(check({0, std::uint8_t(-101), 0}) == SKIRMISH_INPUT_OUT_OF_RANGE);
  CHECK(check({127, 127, 0}) == SKIRMISH_INPUT_OUT_OF_RANGE);
  CHECK(check({std::uint8_t(-128), 0, 0}) == SKIRMISH_INPUT_OUT_OF_RANGE);
  CHECK(check({0, 0, 0x02}) == SKIRMISH_INPUT_OUT_OF_RANGE);
  CHECK(check({0, 0, 0x80}) == SKIRMISH_INPUT_OUT_OF_RANGE);

  // step() drops a seq it has seen (a replay) and applies a newer one.
  Match m(bare(), 2, 1);
  const std::int32_t x0 = m.view().players[0].x;
  m.step({{0, 5, 100, 0}});
  CHECK(m.view().players[0].x == x0 + 200);  // 6000 units/s at 30 Hz
  m.step({{0, 5, 100, 0}});
  m.step({{0, 3, 100, 0}});
  CHECK(m.view().players[0].x == x0 + 200);
  m.step({{0, 6, 100, 0}});
  CHECK(m.view().players[0].x == x0 + 400);
}

TEST_CASE("arena init: spread spawns inside, seeded coins, every byte written") {
  for (std::uint32_t n = 1; n <= 16; ++n) {
    Match m(crowded(), n, 42);
    const View v = m.view();
    REQUIRE(v.h.player_count == n);
    REQUIRE(v.h.coin_count == 32);
    REQUIRE(v.h.tick == 0);
    REQUIRE(v.h.ended == 0);
    require_inside(v, 10000, 8000);
    for (std::uint32_t i = 0; i < n; ++i) {
      REQUIRE(v.players[i].id == i);
      REQUIRE(v.players[i].kind == ARENA_KIND_PLAYER);
      for (std::uint32_t j = i + 1; j < n; ++j)
        REQUIRE((v.players[i].x != v.players[j].x || v.players[i].y != v.players[j].y));
    }
    for (std::uint32_t c = 0; c < 32; ++c) {
      REQUIRE(v.coins[c].id == ARENA_MAX_PLAYERS + c);
      REQUIRE(v.coins[c].kind == ARENA_KIND_COIN);
      REQUIRE((v.coins[c].flags & ARENA_FLAG_ACTIVE) != 0);
      REQUIRE(v.coins[c].score >= 1);
      REQUIRE(v.coins[c].score <= 3);
    }
  }
  // Same seed, same bytes (over different garbage); another seed, other bytes.
  Match a(crowded(), 4, 7), b(crowded(), 4, 7), c(crowded(), 4, 8);
  std::memset(b.state(), 0x00, b.t->state_bytes);
  b.t->init(b.state(), b.params.view(), 4, 7);
  REQUIRE(a.bytes() == b.bytes());
  REQUIRE(a.bytes() != c.bytes());
}

TEST_CASE("arena determinism: 2,000 random input sequences, stepped in place and through copies") {
  std::mt19937 rng(20240601);
  std::uint64_t tagged = 0, scored = 0;
  for (int sequence = 0; sequence < 2000; ++sequence) {
    const std::uint32_t players = 2 + sequence % 15;
    const std::uint64_t seed = rng();
    Match a(crowded(), players, seed), b(crowded(), players, seed);
    std::vector<std::uint8_t> slot = b.bytes();  // b lives in "shared memory" between steps
    std::uint32_t seq[16] = {};
    for (int t = 0; t < 30; ++t) {
      if (rng() % 50 == 0) a.connected = b.connected = 0xFFFFu & ~(1u << (rng() % players));
      const std::vector<In> in = random_inputs(rng, seq, players);
      a.step(in);
      std::memset(b.state(), 0x5A, b.t->state_bytes);
      std::memcpy(b.state(), slot.data(), slot.size());
      b.step(in);
      slot = b.bytes();
      REQUIRE(a.bytes() == slot);
    }
    for (const arena_entity& e : a.view().players) {
      scored += std::uint64_t(e.score);
      tagged += (e.flags & ARENA_FLAG_STUNNED) != 0;
    }
  }
  CHECK(scored > 1000);  // the sequences exercised pickups and tags, not just movement
  CHECK(tagged > 50);

  // A different seed gives a different state after the same inputs.
  Match x(crowded(), 8, 1), y(crowded(), 8, 2);
  std::uint32_t sx[16] = {}, sy[16] = {};
  std::mt19937 r1(5), r2(5);
  for (int t = 0; t < 100; ++t) {
    x.step(random_inputs(r1, sx, 8));
    y.step(random_inputs(r2, sy, 8));
  }
  REQUIRE(x.bytes() != y.bytes());
}

TEST_CASE("arena step, view and outcome allocate nothing") {
  if (!SKIRMISH_COUNT_ALLOCATIONS) {
    WARN("allocation counting is off under AddressSanitizer");
    return;
  }
  Match m(crowded(), 16, 3);
  std::uint8_t bytes[16][3];
  skirmish_input items[16];
  for (std::uint8_t i = 0; i < 16; ++i) {
    bytes[i][0] = 100;
    bytes[i][1] = std::uint8_t(-50);
    bytes[i][2] = ARENA_BUTTON_TAG;
    items[i] = skirmish_input{i, 3, 0, 0, bytes[i]};
  }
  std::uint8_t out[ARENA_MAX_VIEW_BYTES];
  skirmish_outcome o;
  std::uint64_t rng = 9;
  const std::size_t before = g_allocations;
  for (std::uint32_t t = 1; t <= 64; ++t) {
    for (auto& it : items) it.seq = t;
    const skirmish_inputs in{items, 16, 0xFFFF};
    m.t->step(m.state(), &in, t);
    const std::uint32_t len = m.t->view(m.state(), 0, out, sizeof out);
    m.t->outcome(m.state(), &o);
    std::uint8_t bot[3];
    m.t->bot_input(out, len, 0, &rng, bot, 3);
  }
  REQUIRE(g_allocations == before);
  std::vector<int> probe(4);  // the counter does see allocations
  REQUIRE(g_allocations > before);
}

TEST_CASE("arena: a client sending the extremes moves at most max speed per tick") {
  Match m({kv("time_limit_s", 3600), kv("coins", 0)}, 2, 3);
  const std::int64_t limit = 200 + 1;
  std::mt19937 rng(77);
  std::uniform_int_distribution<int> any(-100, 100);
  std::uint32_t seq = 0;
  std::uint64_t moved = 0;
  for (int t = 0; t < 5000; ++t) {
    const int mx = t % 3 == 0 ? 100 : any(rng), my = t % 3 == 0 ? 100 : any(rng);
    // A flood of inputs in one tick: the newest move counts, once.
    std::vector<In> flood;
    for (int k = 0; k < 8; ++k) flood.push_back({0, ++seq, mx, my});
    const arena_entity before = m.view().players[0];
    m.step(flood);
    const arena_entity after = m.view().players[0];
    const std::int64_t dx = after.x - before.x, dy = after.y - before.y;
    REQUIRE(dx * dx + dy * dy <= limit * limit);
    moved += (dx != 0 || dy != 0);
  }
  REQUIRE(moved > 1000);
}

TEST_CASE("arena: no entity ever leaves the arena") {
  SECTION("walks into the walls, 5,000 ticks") {
    Match m(crowded(), 16, 9);
    std::mt19937 rng(123);
    std::uint32_t seq[16] = {};
    int dx[16] = {}, dy[16] = {};
    for (int t = 0; t < 5000; ++t) {
      std::vector<In> in;
      for (std::uint8_t i = 0; i < 16; ++i) {
        if (t % 97 == 0) {
          dx[i] = int(rng() % 3) * 100 - 100;
          dy[i] = int(rng() % 3) * 100 - 100;
        }
        in.push_back({i, ++seq[i], dx[i], dy[i], std::uint8_t(rng() % 4 == 0 ? 1 : 0)});
      }
      m.step(in);
      require_inside(m.view(), 10000, 8000);
    }
  }
  SECTION("a speed larger than the arena") {
    Match m({kv("width", 1000), kv("height", 1000), kv("max_speed", 1000000), kv("coins", 4)}, 16, 1);
    std::mt19937 rng(31);
    std::uint32_t seq[16] = {};
    for (int t = 0; t < 500 && m.outcome().end == SKIRMISH_RUNNING; ++t) {
      m.step(random_inputs(rng, seq, 16));
      require_inside(m.view(), 1000, 1000);
    }
  }
}

TEST_CASE("arena: tagging stuns and scores, with a cooldown, disconnected players stand still") {
  // 1000 x 1000: the two spawns are 750 apart, inside the tag radius 1500.
  Match m({kv("width", 1000), kv("height", 1000), kv("coins", 0), kv("score_limit", 100)}, 2, 1);
  m.step({{0, 1, 0, 0, ARENA_BUTTON_TAG}});
  View v = m.view();
  REQUIRE(v.players[0].score == 1);
  REQUIRE((v.players[1].flags & ARENA_FLAG_STUNNED) != 0);
  REQUIRE(v.players[1].extra == 15);  // stun 500 ms at 30 Hz
  // The stunned player cannot move or tag while stunned.
  const std::int32_t x1 = v.players[1].x;
  std::uint32_t seq1 = 0, seq0 = 1;
  for (int t = 0; t < 15; ++t) {
    m.step({{1, ++seq1, 100, 0, ARENA_BUTTON_TAG}});
    REQUIRE(m.view().players[1].x == x1);
    REQUIRE(m.view().players[1].score == 0);
  }
  REQUIRE((m.view().players[1].flags & ARENA_FLAG_STUNNED) == 0);
  // Player 0 waits out its cooldown (1000 ms = 30 ticks after the hit).
  std::uint32_t waited = 1;
  while (m.view().players[0].score == 1) {
    m.step({{0, ++seq0, 0, 0, ARENA_BUTTON_TAG}});
    ++waited;
    REQUIRE(waited <= 31);
  }
  REQUIRE(waited >= 16);

  // Disconnected: stands still, inputs ignored, flagged in the view.
  Match d(bare(), 2, 1);
  d.connected = 0x1;
  const std::int32_t x = d.view().players[1].x;
  d.step({{1, 1, 100, 0}});
  REQUIRE(d.view().players[1].x == x);
  REQUIRE((d.view().players[1].flags & ARENA_FLAG_DISCONNECTED) != 0);
  d.connected = 0x3;
  d.step({{1, 2, 100, 0}});
  REQUIRE(d.view().players[1].x == x + 200);
  REQUIRE((d.view().players[1].flags & ARENA_FLAG_DISCONNECTED) == 0);
}

TEST_CASE("arena: coins are collected and respawn") {
  // Every coin of a 1000 x 1000 arena lies within pickup radius 1500 of a
  // player: all are collected in the first step, then respawn after 2 s.
  Match m({kv("width", 1000), kv("height", 1000), kv("coins", 4), kv("pickup_radius", 1500),
           kv("score_limit", 10000), kv("coin_respawn_ms", 1000)},
          2, 11);
  std::int32_t value = 0;
  for (const arena_entity& c : m.view().coins) value += c.score;
  m.step({});
  View v = m.view();
  REQUIRE(v.players[0].score + v.players[1].score == value);
  REQUIRE(v.players[0].score > 0);  // the lower index picks first, within reach of all
  for (const arena_entity& c : v.coins) {
    REQUIRE((c.flags & ARENA_FLAG_ACTIVE) == 0);
    REQUIRE(c.extra == 1 + 30);  // respawn tick
  }
  while (m.view().h.tick + 1 < 31) m.step({});
  m.step({});
  v = m.view();
  for (const arena_entity& c : v.coins) {
    // Reappeared and collected again in the same step: respawn is before pickup.
    REQUIRE(c.extra == 31 + 30);
  }
  REQUIRE(v.players[0].score + v.players[1].score > value);
}

TEST_CASE("arena: a match ends by score or time, then stands still, outcome places") {
  SECTION("score limit") {
    Match m({kv("width", 1000), kv("height", 1000), kv("coins", 0), kv("score_limit", 2), kv("tag_cooldown_ms", 0)}, 2,
            1);
    std::uint32_t seq = 0;
    for (int t = 0; t < 200 && m.outcome().end == SKIRMISH_RUNNING; ++t)
      m.step({{0, ++seq, 0, 0, ARENA_BUTTON_TAG}});
    const skirmish_outcome o = m.outcome();
    REQUIRE(o.end == SKIRMISH_END_SCORE_LIMIT);
    REQUIRE(m.view().h.ended == SKIRMISH_END_SCORE_LIMIT);
    REQUIRE(o.seats[0].score == 2);
    REQUIRE(o.seats[0].place == 1);
    REQUIRE(o.seats[1].place == 2);
    const std::vector<std::uint8_t> done = m.bytes();
    m.step({{0, ++seq, 100, 100, ARENA_BUTTON_TAG}});
    REQUIRE(m.bytes() == done);
  }
  SECTION("time limit") {
    Match m({kv("coins", 0), kv("time_limit_s", 5)}, 3, 1);
    for (std::uint32_t t = 1; t < 150; ++t) {
      m.step({});
      REQUIRE(m.outcome().end == SKIRMISH_RUNNING);
    }
    REQUIRE(m.view().h.time_left_ms == 33);  // 1000 / 30
    m.step({});
    REQUIRE(m.outcome().end == SKIRMISH_END_TIME_LIMIT);
    REQUIRE(m.view().h.tick == 150);
    REQUIRE(m.view().h.time_left_ms == 0);
    for (std::uint32_t s = 0; s < 3; ++s) REQUIRE(m.outcome().seats[s].place == 1);  // all 0: a tie
  }
}

TEST_CASE("arena bot_input: always a valid input, from the view alone") {
  Match m(crowded(), 4, 5);
  std::uint64_t rng[4] = {1, 2, 3, 4};
  std::uint32_t seq[4] = {};
  std::uint8_t out[ARENA_MAX_VIEW_BYTES];
  for (int t = 0; t < 2000 && m.outcome().end == SKIRMISH_RUNNING; ++t) {
    const std::uint32_t len = m.t->view(m.state(), 0, out, sizeof out);
    std::vector<In> ins;
    for (std::uint8_t s = 0; s < 4; ++s) {
      std::uint8_t b[8];
      REQUIRE(m.t->bot_input(out, len, s, &rng[s], b, sizeof b) == ARENA_INPUT_BYTES);
      REQUIRE(m.t->check_input(b, 3) == SKIRMISH_INPUT_OK);
      ins.push_back({s, ++seq[s], std::int8_t(b[0]), std::int8_t(b[1]), b[2]});
    }
    m.step(ins);
  }
  std::int64_t total = 0;
  for (const arena_entity& e : m.view().players) total += e.score;
  CHECK(total > 20);  // bots that find coins
  std::uint8_t b[3];
  CHECK(m.t->bot_input(out, 5, 0, &rng[0], b, 3) == 0);  // a short view: nothing, no overread
  CHECK(m.t->bot_input(out, ARENA_MAX_VIEW_BYTES, 0, &rng[0], b, 2) == 0);
}
