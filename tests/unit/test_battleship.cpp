// Unit tests of the battleship module (games/battleship), driven through
// its skirmish_game_v1 table as the server drives it (loaded by
// server/module's load() by name; inputs as bytes; observed through view()
// and outcome() only): the rules (hits fire again, misses pass, sinking,
// the end), hidden information (a seat's view never shows the other's
// unhit ships; a spectator sees none), the move timer (a stall passes the
// turn, max_stalls in a row forfeit), the turn limit, determinism, params
// refusals, check_input and the bot.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "games/battleship/battleship.h"
#include "module/module.h"

namespace mod = skirmish::module;

namespace {

const skirmish_game_v1_t* game() {
  static const skirmish_game_v1_t* t = [] {
    std::string error;
    auto m = mod::load("battleship", mod::Limits{}, error);
    if (!m) FAIL(error);
    return m->game;
  }();
  return t;
}

using Params = std::vector<mod::GameParam>;
mod::GameParam kv(const char* key, std::int64_t v) { return mod::GameParam{key, SKIRMISH_PARAM_INT, v, 0, ""}; }

struct View {
  battleship_view_header h{};
  std::vector<std::uint8_t> mine, theirs;  // the viewer's own board, then the other (spectator: seat 0, seat 1)
  std::uint8_t at(const std::vector<std::uint8_t>& b, std::uint32_t x, std::uint32_t y) const {
    return b[y * h.board + x];
  }
};

struct Shot {
  std::uint8_t seat, x, y;
};

struct Match {
  explicit Match(const Params& p = {}, std::uint64_t seed = 1, std::uint32_t hz = 30)
      : params(p, hz), raw(game()->state_bytes + 16) {
    std::memset(raw.data(), 0xA5, raw.size());
    t->init(state(), params.view(), 2, seed);
  }
  std::uint8_t* state() {
    const auto a = reinterpret_cast<std::uintptr_t>(raw.data());
    return raw.data() + ((16 - (a & 15)) & 15);
  }
  std::vector<std::uint8_t> bytes() { return {state(), state() + t->state_bytes}; }
  void step(const std::vector<Shot>& shots = {}) {
    std::uint8_t buf[16][2];
    skirmish_input items[16];
    std::uint32_t n = 0;
    for (const Shot& s : shots) {
      buf[n][0] = s.x;
      buf[n][1] = s.y;
      items[n] = skirmish_input{s.seat, 2, 0, ++seq, buf[n]};
      ++n;
    }
    const skirmish_inputs in{n != 0 ? items : nullptr, n, 0x3};
    t->step(state(), &in, ++tick);
  }
  std::vector<std::uint8_t> raw_view(std::uint32_t seat) {
    std::vector<std::uint8_t> out(BATTLESHIP_MAX_VIEW_BYTES + 8, 0xEE);
    const std::uint32_t len = t->view(state(), seat, out.data(), BATTLESHIP_MAX_VIEW_BYTES);
    REQUIRE(len <= BATTLESHIP_MAX_VIEW_BYTES);
    REQUIRE(out[BATTLESHIP_MAX_VIEW_BYTES] == 0xEE);
    out.resize(len);
    return out;
  }
  View view(std::uint32_t seat) {
    const std::vector<std::uint8_t> b = raw_view(seat);
    View v;
    REQUIRE(b.size() >= BATTLESHIP_VIEW_HEADER_BYTES);
    std::memcpy(&v.h, b.data(), sizeof v.h);
    const std::size_t n = std::size_t(v.h.board) * v.h.board;
    REQUIRE(b.size() == BATTLESHIP_VIEW_HEADER_BYTES + 2 * n);
    v.mine.assign(b.begin() + BATTLESHIP_VIEW_HEADER_BYTES, b.begin() + BATTLESHIP_VIEW_HEADER_BYTES + n);
    v.theirs.assign(b.begin() + BATTLESHIP_VIEW_HEADER_BYTES + n, b.end());
    return v;
  }
  skirmish_outcome outcome() {
    skirmish_outcome o{};
    t->outcome(state(), &o);
    return o;
  }
  // A cell of `seat`'s own board holding (ship) or not holding (water) a ship.
  std::pair<std::uint8_t, std::uint8_t> find(std::uint32_t seat, bool ship, std::uint32_t skip = 0) {
    const View v = view(seat);
    for (std::uint32_t y = 0; y < v.h.board; ++y)
      for (std::uint32_t x = 0; x < v.h.board; ++x) {
        const std::uint8_t c = v.at(v.mine, x, y);
        if (((c & BATTLESHIP_CELL_SHIP) != 0) == ship && (c & BATTLESHIP_CELL_SHOT) == 0 && skip-- == 0)
          return {std::uint8_t(x), std::uint8_t(y)};
      }
    FAIL("no such cell");
    return {0, 0};
  }
  const skirmish_game_v1_t* t = game();
  mod::GameParams params;
  std::vector<std::uint8_t> raw;
  std::uint32_t seq = 0, tick = 0;
};

std::string refused(const Params& p, std::uint32_t players = 2, std::uint32_t hz = 30) {
  const mod::GameParams gp(p, hz);
  char err[256] = {};
  if (game()->check_params(gp.view(), players, err, sizeof err) == 0) return "";
  return err;
}

std::uint32_t count(const std::vector<std::uint8_t>& b, std::uint8_t bits) {
  std::uint32_t n = 0;
  for (std::uint8_t c : b) n += (c & bits) == bits;
  return n;
}

// No view of seat `seat` (or the spectator) shows a ship of the other
// board that was not shot; its own board shows its whole fleet.
void require_hidden(Match& m, std::uint32_t fleet_cells) {
  for (std::uint32_t seat : {0u, 1u}) {
    const View v = m.view(seat);
    REQUIRE(v.h.you == seat);
    REQUIRE(count(v.mine, BATTLESHIP_CELL_SHIP) == fleet_cells);
    for (std::uint8_t c : v.theirs)
      if ((c & BATTLESHIP_CELL_SHIP) != 0) REQUIRE((c & BATTLESHIP_CELL_SHOT) != 0);
    // What seat sees of the other board is exactly the other's own board, less its unhit ships.
    const View o = m.view(seat ^ 1u);
    for (std::size_t k = 0; k < v.theirs.size(); ++k) {
      const std::uint8_t real = o.mine[k];
      const std::uint8_t want = (real & BATTLESHIP_CELL_SHOT) != 0 ? real : std::uint8_t(real & ~BATTLESHIP_CELL_SHIP);
      REQUIRE(v.theirs[k] == want);
    }
  }
  const View s = m.view(SKIRMISH_SPECTATOR);
  REQUIRE(s.h.you == SKIRMISH_SPECTATOR);
  for (const auto* b : {&s.mine, &s.theirs})
    for (std::uint8_t c : *b)
      if ((c & BATTLESHIP_CELL_SHIP) != 0) REQUIRE((c & BATTLESHIP_CELL_SHOT) != 0);
}

}  // namespace

TEST_CASE("battleship: the table") {
  const skirmish_game_v1_t* t = game();
  REQUIRE(std::string(t->name) == "battleship");
  REQUIRE(t->min_players == 2);
  REQUIRE(t->max_players == 2);
  REQUIRE(t->max_input_bytes == 2);
  REQUIRE(t->max_view_bytes == 16 + 2 * 100);
  REQUIRE((t->flags & SKIRMISH_GAME_SHARED_VIEW) == 0);  // each seat sees other bytes
  REQUIRE(t->state_bytes <= 1024);
  REQUIRE(t->bot_input != nullptr);
  REQUIRE(t->min_tick_rate_hz == 1);
  REQUIRE(t->max_tick_rate_hz == 60);
}

TEST_CASE("battleship params: defaults, public params, refusals name the key and the range") {
  CHECK(refused({}) == "");
  CHECK(refused({kv("board", 6), kv("turn_ms", 100), kv("max_stalls", 1), kv("max_turns", 2)}) == "");
  CHECK(refused({kv("board", 5)}) == "board = 5 is out of range (allowed: 6..10)");
  CHECK(refused({kv("board", 11)}) == "board = 11 is out of range (allowed: 6..10)");
  CHECK(refused({kv("turn_ms", 99)}) == "turn_ms = 99 is out of range (allowed: 100..60000)");
  CHECK(refused({kv("turn_ms", 60001)}) == "turn_ms = 60001 is out of range (allowed: 100..60000)");
  CHECK(refused({kv("max_stalls", 0)}) == "max_stalls = 0 is out of range (allowed: 1..100)");
  CHECK(refused({kv("max_turns", 1)}) == "max_turns = 1 is out of range (allowed: 2..60000)");
  CHECK(refused({kv("fleet", 3)}) == "unknown key fleet (battleship takes board, turn_ms, max_stalls, max_turns)");
  CHECK(refused({mod::GameParam{"board", SKIRMISH_PARAM_BOOL, 1, 0, ""}}) ==
        "board must be an integer (allowed: 6..10)");
  CHECK(refused({}, 3) == "players = 3 is out of range (battleship is for exactly 2)");

  const mod::GameParams gp({kv("board", 8), kv("turn_ms", 2000)}, 60);
  skirmish_param out[16];
  const std::uint32_t n = game()->public_params(gp.view(), out, 16);
  REQUIRE(n == 6);
  std::string all;
  for (std::uint32_t i = 0; i < n; ++i) all += std::string(out[i].key) + "=" + mod::param_text(out[i]) + " ";
  CHECK(all == "board=8 turn_ms=2000 max_stalls=3 max_turns=200 turn_ticks=120 fleet=4,3,3,2 ");
  CHECK(game()->public_params(gp.view(), out, 2) == 2);
}

TEST_CASE("battleship check_input: exactly 2 bytes, each below 10") {
  const std::uint8_t b[3] = {9, 9, 0};
  const std::uint8_t x10[2] = {10, 0}, y10[2] = {0, 10};
  CHECK(game()->check_input(b, 2) == SKIRMISH_INPUT_OK);
  CHECK(game()->check_input(b, 1) == SKIRMISH_INPUT_MALFORMED);
  CHECK(game()->check_input(b, 3) == SKIRMISH_INPUT_MALFORMED);
  CHECK(game()->check_input(x10, 2) == SKIRMISH_INPUT_OUT_OF_RANGE);
  CHECK(game()->check_input(y10, 2) == SKIRMISH_INPUT_OUT_OF_RANGE);
}

TEST_CASE("battleship init: fleets from the seed, every byte written, the view layout") {
  for (std::int64_t board = 6; board <= 10; ++board) {
    CAPTURE(board);
    Match m({kv("board", board)}, std::uint64_t(board) * 77);
    const std::uint32_t fleet = board == 6 ? 8 : board == 7 ? 11 : board == 8 ? 12 : 17;
    const View v = m.view(0);
    REQUIRE(v.h.board == board);
    REQUIRE(v.h.tick == 0);
    REQUIRE(v.h.ended == 0);
    REQUIRE(v.h.winner == 0xFF);
    REQUIRE(v.h.turn < 2);
    REQUIRE(v.h.turn_ticks_left == 300);  // 10 s at 30 Hz
    REQUIRE(v.h.ships_left[0] == (board == 6 ? 3 : board <= 8 ? 4 : 5));
    REQUIRE(m.raw_view(0).size() == std::size_t(16 + 2 * board * board));
    require_hidden(m, fleet);
    REQUIRE(count(v.theirs, BATTLESHIP_CELL_SHIP) == 0);
  }
  Match a({}, 5), b({}, 5), c({}, 6);
  std::memset(b.state(), 0, b.t->state_bytes);
  b.t->init(b.state(), b.params.view(), 2, 5);
  REQUIRE(a.bytes() == b.bytes());
  REQUIRE(a.view(0).mine != c.view(0).mine);  // another seed, another fleet
}

TEST_CASE("battleship rules: a hit fires again, a miss passes, sinking, the fleet sunk ends it") {
  Match m({kv("board", 6)}, 3);
  const std::uint8_t me = m.view(0).h.turn, them = me ^ 1u;
  // The other seat fires out of turn: ignored.
  const auto [ox, oy] = m.find(me, true);
  m.step({{them, ox, oy}});
  REQUIRE(m.view(me).h.turn == me);
  REQUIRE((m.view(me).at(m.view(me).mine, ox, oy) & BATTLESHIP_CELL_SHOT) == 0);
  // A miss passes the turn.
  const auto [wx, wy] = m.find(them, false);
  m.step({{me, wx, wy}});
  View v = m.view(me);
  REQUIRE(v.h.turn == them);
  REQUIRE(v.h.turn_number == 1);
  REQUIRE(v.at(v.theirs, wx, wy) == BATTLESHIP_CELL_SHOT);
  // Now `them` hits: fires again with a fresh timer.
  const auto [hx, hy] = m.find(me, true);
  m.step({});
  m.step({{them, hx, hy}});
  v = m.view(them);
  REQUIRE(v.h.turn == them);
  REQUIRE(v.h.turn_ticks_left == 300);
  REQUIRE(v.at(v.theirs, hx, hy) == (BATTLESHIP_CELL_SHIP | BATTLESHIP_CELL_SHOT));
  // A shot at a cell already shot, and one off a 6 x 6 board: ignored, the turn stays.
  m.step({{them, hx, hy}});
  m.step({{them, 7, 1}});
  REQUIRE(m.view(them).h.turn == them);
  REQUIRE(m.view(them).h.turn_number == 2);
  // `them` sinks the whole fleet of `me`, one ship cell per step (a hit keeps the turn).
  std::uint32_t steps = 0;
  while (m.outcome().end == SKIRMISH_RUNNING && steps++ < 40) {
    const auto [x, y] = m.find(me, true);
    m.step({{them, x, y}});
  }
  const skirmish_outcome o = m.outcome();
  REQUIRE(o.end == SKIRMISH_END_COMPLETED);
  REQUIRE(o.detail == BATTLESHIP_DETAIL_FLEET_SUNK);
  REQUIRE(o.seats[them].place == 1);
  REQUIRE(o.seats[me].place == 2);
  REQUIRE(o.seats[them].score == 8);  // 3 + 3 + 2 cells
  v = m.view(SKIRMISH_SPECTATOR);
  REQUIRE(v.h.ended == SKIRMISH_END_COMPLETED);
  REQUIRE(v.h.winner == them);
  REQUIRE(v.h.ships_left[me] == 0);
  REQUIRE(count(me == 0 ? v.mine : v.theirs, BATTLESHIP_CELL_SUNK) == 8);
  const std::vector<std::uint8_t> done = m.bytes();
  m.step({{me, 0, 0}});
  REQUIRE(m.bytes() == done);  // an ended match stands still
}

TEST_CASE("battleship move timer: a stall passes the turn, max_stalls in a row forfeit") {
  Match m({kv("turn_ms", 1000), kv("max_stalls", 2)}, 9);  // 30 ticks a turn
  const std::uint8_t first = m.view(0).h.turn;
  for (int t = 1; t < 30; ++t) {
    m.step();
    REQUIRE(m.view(0).h.turn == first);
    REQUIRE(m.view(0).h.turn_ticks_left == 30 - t);
  }
  m.step();
  REQUIRE(m.view(0).h.turn == (first ^ 1u));
  REQUIRE(m.view(0).h.turn_ticks_left == 30);
  REQUIRE(m.view(0).h.turn_number == 1);
  // The second player fires in time: its stall count stays 0.
  const auto [x, y] = m.find(first, false);
  for (int t = 0; t < 29; ++t) m.step();
  m.step({{std::uint8_t(first ^ 1u), x, y}});
  REQUIRE(m.view(0).h.turn == first);
  // The first stalls a second time in a row: forfeit, the other wins.
  for (int t = 0; t < 29; ++t) m.step();
  REQUIRE(m.outcome().end == SKIRMISH_RUNNING);
  m.step();
  const skirmish_outcome o = m.outcome();
  REQUIRE(o.end == SKIRMISH_END_COMPLETED);
  REQUIRE(o.detail == BATTLESHIP_DETAIL_FORFEIT);
  REQUIRE(o.seats[first ^ 1u].place == 1);
  REQUIRE(o.seats[first].place == 2);
  REQUIRE(m.view(1).h.winner == (first ^ 1u));

  // Nobody plays: the first forfeits after max_stalls turns of its own.
  Match idle({kv("turn_ms", 100), kv("max_stalls", 3)}, 4);  // 3 ticks a turn
  const std::uint8_t f = idle.view(0).h.turn;
  std::uint32_t ticks = 0;
  while (idle.outcome().end == SKIRMISH_RUNNING && ticks < 1000) {
    idle.step();
    ++ticks;
  }
  REQUIRE(ticks == 5 * 3);  // f, other, f, other, f: the fifth turn forfeits
  REQUIRE(idle.outcome().seats[f].place == 2);
  // The timer scales with the tick rate.
  Match fast({kv("turn_ms", 1000)}, 4, 60);
  REQUIRE(fast.view(0).h.turn_ticks_left == 60);
}

TEST_CASE("battleship turn limit: more hits win, equal hits draw") {
  Match m({kv("max_turns", 2)}, 12);
  const std::uint8_t a = m.view(0).h.turn, b = a ^ 1u;
  const auto [wx, wy] = m.find(b, false);
  m.step({{a, wx, wy}});
  const auto [vx, vy] = m.find(a, false);
  m.step({{b, vx, vy}});
  skirmish_outcome o = m.outcome();
  REQUIRE(o.end == SKIRMISH_END_TIME_LIMIT);
  REQUIRE(o.detail == BATTLESHIP_DETAIL_TURN_LIMIT);
  REQUIRE(o.seats[0].place == 1);
  REQUIRE(o.seats[1].place == 1);
  REQUIRE(m.view(0).h.winner == 0xFF);

  Match w({kv("max_turns", 2)}, 12);
  const auto [hx, hy] = w.find(b, true);
  w.step({{a, hx, hy}});  // a hit: turn 1, a fires again
  const auto [h2x, h2y] = w.find(b, false);
  w.step({{a, h2x, h2y}});  // a miss: turn 2, the limit
  o = w.outcome();
  REQUIRE(o.end == SKIRMISH_END_TIME_LIMIT);
  REQUIRE(o.seats[a].place == 1);
  REQUIRE(o.seats[b].place == 2);
  REQUIRE(o.seats[a].score == 1);
}

TEST_CASE("battleship: bots play whole games, hidden information holds at every tick") {
  std::uint32_t sunk = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const std::int64_t board = 6 + std::int64_t(seed % 5);
    Match m({kv("board", board)}, seed);
    const std::uint32_t fleet = count(m.view(0).mine, BATTLESHIP_CELL_SHIP);
    std::uint64_t rng[2] = {seed * 2 + 1, seed * 2 + 2};
    for (int t = 0; t < 2000 && m.outcome().end == SKIRMISH_RUNNING; ++t) {
      std::vector<Shot> shots;
      for (std::uint8_t s = 0; s < 2; ++s) {
        const std::vector<std::uint8_t> v = m.raw_view(s);
        std::uint8_t out[8];
        const std::uint32_t n = m.t->bot_input(v.data(), std::uint32_t(v.size()), s, &rng[s], out, sizeof out);
        const View pv = m.view(s);
        if (pv.h.turn != s) {
          REQUIRE(n == 0);  // not its turn: nothing
          continue;
        }
        REQUIRE(n == 2);
        REQUIRE(m.t->check_input(out, 2) == SKIRMISH_INPUT_OK);
        REQUIRE(out[0] < board);
        REQUIRE(out[1] < board);
        REQUIRE((pv.at(pv.theirs, out[0], out[1]) & BATTLESHIP_CELL_SHOT) == 0);  // a cell not yet shot
        shots.push_back({s, out[0], out[1]});
      }
      m.step(shots);
      require_hidden(m, fleet);
    }
    const skirmish_outcome o = m.outcome();
    REQUIRE(o.end == SKIRMISH_END_COMPLETED);
    REQUIRE(o.detail == BATTLESHIP_DETAIL_FLEET_SUNK);
    sunk += std::uint32_t(o.seats[0].score + o.seats[1].score);
  }
  CHECK(sunk > 40 * 8);
  std::uint8_t out[2];
  std::uint64_t r = 1;
  const std::uint8_t junk[16] = {};
  CHECK(game()->bot_input(junk, 16, 0, &r, out, 2) == 0);  // board 0: not a view
  CHECK(game()->bot_input(junk, 3, 0, &r, out, 2) == 0);
}

TEST_CASE("battleship determinism: two runs, the same bytes and views, adoption mid-match") {
  auto run = [](std::uint64_t seed, bool adopt) {
    Match m({kv("turn_ms", 200)}, seed);
    std::mt19937 rng{std::uint32_t(seed)};
    std::vector<std::uint8_t> trace;
    for (int t = 0; t < 600 && m.outcome().end == SKIRMISH_RUNNING; ++t) {
      std::vector<Shot> shots;
      if (rng() % 3 != 0) shots.push_back({std::uint8_t(rng() % 2), std::uint8_t(rng() % 10), std::uint8_t(rng() % 10)});
      if (adopt && t % 50 == 25) {  // another buffer, as an adopting worker would step it
        Match other({kv("turn_ms", 200)}, seed + 1000);
        std::memcpy(other.state(), m.state(), m.t->state_bytes);
        std::memcpy(m.state(), other.state(), m.t->state_bytes);
      }
      m.step(shots);
      const std::vector<std::uint8_t> s = m.bytes();
      trace.insert(trace.end(), s.begin(), s.end());
      for (std::uint32_t seat : {0u, 1u, std::uint32_t(SKIRMISH_SPECTATOR)}) {
        const std::vector<std::uint8_t> v = m.raw_view(seat);
        trace.insert(trace.end(), v.begin(), v.end());
      }
    }
    return trace;
  };
  const std::vector<std::uint8_t> a = run(77, false), b = run(77, true), c = run(78, false);
  REQUIRE(a.size() > 10000);
  REQUIRE(a == b);
  REQUIRE(a != c);
}
