// The battleship module: a small two-player Battleship behind the public
// game ABI (sdk/include/skirmish/game.h), built against that header alone.
// Clients read battleship.h; README.md beside this file has the rules.
//
// Contract
// - Turn-based, exactly 2 players, hidden information: view() of seat N
//   shows seat N's own ships and, of the other board, only the shots and
//   the ships already hit; a spectator sees no unhit ship on either board.
// - The move timer: each turn lasts turn_ticks = max(1, turn_ms *
//   tick_rate_hz / 1000) steps. A player who does not fire in time loses
//   the turn (a "stall"); max_stalls stalls in a row forfeit the match.
//   A valid shot resets the seat's stall count. A disconnected player
//   simply stalls: the timer runs for everyone alike.
// - Each step applies at most one shot: the first input of the seat whose
//   turn it is that names a cell on the board not yet fired at. Inputs of
//   the other seat, and shots at cells already fired at, are ignored
//   (counted in the state). A hit fires again; a miss passes the turn.
// - The fleets are placed by init() from the seed alone (xorshift64* in
//   the state); the fleet depends on the board size (kFleets). The first
//   player is drawn from the same rng.
// - The match ends when a fleet is sunk (COMPLETED, detail FLEET_SUNK), a
//   player forfeits (COMPLETED, detail FORFEIT) or after max_turns turns
//   (a turn: a shot or a stall; TIME_LIMIT, detail TURN_LIMIT: more hits
//   win, equal hits draw).
// - State: BsState, plain bytes without padding (memcmp of two states is
//   meaningful), no pointers, integers only. Every loop is bounded by the
//   board (at most 10 x 10) or the fleet (at most 5 ships); step() and
//   view() check the sizes they index with, so even bytes that init() did
//   not write cannot make them read or write out of bounds.
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "battleship.h"
#include "skirmish/game.h"

namespace {

constexpr std::uint32_t kCells = BATTLESHIP_MAX_BOARD * BATTLESHIP_MAX_BOARD;
constexpr std::uint32_t kMaxShips = 5;
constexpr std::uint8_t kNobody = 0xFF;

// Fleets by board size (index board - 6), longest ship first. Every fleet
// fits one ship per row, so placement always succeeds (see place()).
struct Fleet {
  std::uint8_t count;
  std::uint8_t sizes[kMaxShips];
  const char* text;  // public_params "fleet"
};
constexpr Fleet kFleets[5] = {
    {3, {3, 3, 2, 0, 0}, "3,3,2"},          // 6 x 6
    {4, {4, 3, 2, 2, 0}, "4,3,2,2"},        // 7 x 7
    {4, {4, 3, 3, 2, 0}, "4,3,3,2"},        // 8 x 8
    {5, {5, 4, 3, 3, 2}, "5,4,3,3,2"},      // 9 x 9
    {5, {5, 4, 3, 3, 2}, "5,4,3,3,2"},      // 10 x 10
};

struct Params {
  std::int64_t board = 10;
  std::int64_t turn_ms = 10000;
  std::int64_t max_stalls = 3;
  std::int64_t max_turns = 200;
  std::uint32_t tick_rate_hz = 30;
};

struct Key {
  const char* name;
  std::int64_t min, max;
  std::int64_t Params::*field;
};
const Key kKeys[] = {
    {"board", 6, 10, &Params::board},
    {"turn_ms", 100, 60000, &Params::turn_ms},
    {"max_stalls", 1, 100, &Params::max_stalls},
    {"max_turns", 2, 60000, &Params::max_turns},
};

struct BsState {
  std::uint32_t tick;
  std::uint32_t turn_ticks;       // steps per turn
  std::uint16_t turn_ticks_left;  // steps before the turn passes
  std::uint16_t turn_number;      // shots + stalls so far
  std::uint16_t max_turns;
  std::uint16_t hits[2];          // cells of the other fleet hit by seat i
  std::uint8_t board;             // side, 6..10
  std::uint8_t turn;              // seat to fire
  std::uint8_t ended;             // skirmish_end
  std::uint8_t detail;            // BATTLESHIP_DETAIL_*
  std::uint8_t winner;            // seat or kNobody
  std::uint8_t max_stalls;
  std::uint8_t stalls[2];         // consecutive missed turns
  std::uint8_t ships_left[2];
  std::uint8_t fleet_count;
  std::uint8_t fleet[kMaxShips];
  std::uint8_t reserved[2];
  std::uint32_t ignored_inputs;   // out of turn, off the board, or already shot
  std::uint64_t rng;              // xorshift64*, never 0
  std::uint8_t cells[2][kCells];  // board of seat i: BATTLESHIP_CELL_* bits
  std::uint8_t ship_of[2][kCells];  // 0, or ship index + 1
  std::uint8_t ship_hits[2][kMaxShips];
  std::uint8_t reserved2[6];
};
static_assert(std::is_trivially_copyable_v<BsState>);
static_assert(std::is_standard_layout_v<BsState>);
static_assert(std::has_unique_object_representations_v<BsState>, "no padding");
static_assert(sizeof(battleship_view_header) == BATTLESHIP_VIEW_HEADER_BYTES);
static_assert(sizeof(battleship_input) == BATTLESHIP_INPUT_BYTES);

// A refusal line into err (fmt is always a literal at the call sites).
[[gnu::format(printf, 3, 4)]] void say(char* err, std::uint32_t cap, const char* fmt, ...) {
  if (err == nullptr || cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

bool parse(const skirmish_params* in, Params& p, char* err, std::uint32_t cap) {
  p = Params{};
  p.tick_rate_hz = in != nullptr ? in->tick_rate_hz : 30;
  for (std::uint32_t i = 0; in != nullptr && i < in->count; ++i) {
    const skirmish_param& v = in->items[i];
    const Key* k = nullptr;
    for (const Key& c : kKeys)
      if (v.key != nullptr && std::string_view(v.key) == c.name) k = &c;
    if (k == nullptr) {
      say(err, cap, "unknown key %s (battleship takes board, turn_ms, max_stalls, max_turns)",
          v.key != nullptr ? v.key : "(null)");
      return false;
    }
    if (v.type != SKIRMISH_PARAM_INT) {
      say(err, cap, "%s must be an integer (allowed: %lld..%lld)", k->name, (long long)k->min, (long long)k->max);
      return false;
    }
    if (v.i < k->min || v.i > k->max) {
      say(err, cap, "%s = %lld is out of range (allowed: %lld..%lld)", k->name, (long long)v.i, (long long)k->min,
          (long long)k->max);
      return false;
    }
    p.*(k->field) = v.i;
  }
  if (p.tick_rate_hz < 1) {
    say(err, cap, "tick_rate_hz = 0 is out of range (allowed: 1..60)");
    return false;
  }
  return true;
}

// turn_ms in ticks: floor, at least 1; turn_ms <= 60000 and hz <= 60
// (the table's max tick rate) keep it below 2^16
// (battleship_view_header.turn_ticks_left); clamped there regardless.
std::uint32_t turn_ticks(const Params& p) {
  const std::uint64_t t = std::uint64_t(p.turn_ms) * p.tick_rate_hz / 1000;
  if (t < 1) return 1;
  return t > 0xFFFF ? 0xFFFF : std::uint32_t(t);
}

std::uint64_t next(std::uint64_t& x) {
  if (x == 0) x = 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 0x2545F4914F6CDD1Dull;
}

bool fits(const BsState& s, std::uint32_t seat, std::uint32_t x, std::uint32_t y, bool vertical, std::uint32_t len) {
  const std::uint32_t n = s.board;
  if ((vertical ? y : x) + len > n) return false;
  for (std::uint32_t k = 0; k < len; ++k) {
    const std::uint32_t cx = vertical ? x : x + k, cy = vertical ? y + k : y;
    if (s.ship_of[seat][cy * n + cx] != 0) return false;
  }
  return true;
}

void put(BsState& s, std::uint32_t seat, std::uint32_t ship, std::uint32_t x, std::uint32_t y, bool vertical,
         std::uint32_t len) {
  const std::uint32_t n = s.board;
  for (std::uint32_t k = 0; k < len; ++k) {
    const std::uint32_t cx = vertical ? x : x + k, cy = vertical ? y + k : y;
    s.ship_of[seat][cy * n + cx] = std::uint8_t(ship + 1);
    s.cells[seat][cy * n + cx] = BATTLESHIP_CELL_SHIP;
  }
}

// A seat's fleet, longest ship first: up to 64 random tries per ship, then
// the first free slot scanning rows, horizontal then vertical. The scan
// always finds one: blocking every length-L slot of a row of n cells takes
// at least floor(n / L) ship cells in it, and the ships placed before
// (at most 15 cells) cannot do that to all n rows of any board of kFleets.
void place(BsState& s, std::uint32_t seat) {
  const std::uint32_t n = s.board;
  for (std::uint32_t ship = 0; ship < s.fleet_count; ++ship) {
    const std::uint32_t len = s.fleet[ship];
    bool done = false;
    for (int attempt = 0; attempt < 64 && !done; ++attempt) {
      const std::uint64_t r = next(s.rng);
      const bool vertical = (r & 1) != 0;
      const std::uint32_t x = std::uint32_t((r >> 8) % n), y = std::uint32_t((r >> 24) % n);
      if (fits(s, seat, x, y, vertical, len)) {
        put(s, seat, ship, x, y, vertical, len);
        done = true;
      }
    }
    for (int vertical = 0; vertical < 2 && !done; ++vertical)
      for (std::uint32_t y = 0; y < n && !done; ++y)
        for (std::uint32_t x = 0; x < n && !done; ++x)
          if (fits(s, seat, x, y, vertical != 0, len)) {
            put(s, seat, ship, x, y, vertical != 0, len);
            done = true;
          }
  }
}

int check_params(const skirmish_params* params, std::uint32_t players, char* err, std::uint32_t cap) {
  Params p;
  if (!parse(params, p, err, cap)) return 1;
  if (players != 2) {
    say(err, cap, "players = %u is out of range (battleship is for exactly 2)", players);
    return 1;
  }
  return 0;
}

void init(void* state, const skirmish_params* params, std::uint32_t /*players*/, std::uint64_t seed) {
  Params p;
  if (!parse(params, p, nullptr, 0)) p = Params{};  // checked before; never half-parsed
  BsState s{};
  s.board = std::uint8_t(p.board);
  s.turn_ticks = turn_ticks(p);
  s.turn_ticks_left = std::uint16_t(s.turn_ticks);
  s.max_turns = std::uint16_t(p.max_turns);
  s.max_stalls = std::uint8_t(p.max_stalls);
  s.winner = kNobody;
  const Fleet& f = kFleets[s.board - 6];
  s.fleet_count = f.count;
  std::memcpy(s.fleet, f.sizes, sizeof s.fleet);
  s.ships_left[0] = s.ships_left[1] = f.count;
  s.rng = seed != 0 ? seed : 0x9E3779B97F4A7C15ull;
  next(s.rng);
  place(s, 0);
  place(s, 1);
  s.turn = std::uint8_t(next(s.rng) >> 63);
  std::memcpy(state, &s, sizeof s);
}

void end(BsState& s, std::uint8_t reason, std::uint8_t detail, std::uint8_t winner) {
  s.ended = reason;
  s.detail = detail;
  s.winner = winner;
}

void pass_turn(BsState& s) {
  s.turn ^= 1u;
  s.turn_ticks_left = std::uint16_t(s.turn_ticks);
}

// Fires seat `s.turn` at (x, y) of the other board (checked: on the board,
// not yet shot).
void fire(BsState& s, std::uint32_t x, std::uint32_t y) {
  const std::uint32_t me = s.turn, them = me ^ 1u, n = s.board, c = y * n + x;
  s.stalls[me] = 0;
  s.cells[them][c] |= BATTLESHIP_CELL_SHOT;
  const std::uint32_t ship = s.ship_of[them][c];
  if (ship == 0 || ship > s.fleet_count) {
    pass_turn(s);
    return;
  }
  ++s.hits[me];
  if (++s.ship_hits[them][ship - 1] == s.fleet[ship - 1]) {
    for (std::uint32_t k = 0; k < n * n; ++k)
      if (s.ship_of[them][k] == ship) s.cells[them][k] |= BATTLESHIP_CELL_SUNK;
    if (--s.ships_left[them] == 0) {
      end(s, SKIRMISH_END_COMPLETED, BATTLESHIP_DETAIL_FLEET_SUNK, std::uint8_t(me));
      return;
    }
  }
  s.turn_ticks_left = std::uint16_t(s.turn_ticks);  // a hit fires again, with a fresh timer
}

void step(void* state, const skirmish_inputs* in, std::uint32_t /*tick*/) {
  BsState s;
  std::memcpy(&s, state, sizeof s);
  // Only init() writes a state, but a state is bytes in shared memory:
  // one that is not a battleship state is left alone, never indexed with.
  if (s.ended != 0 || s.board < 6 || s.board > BATTLESHIP_MAX_BOARD || s.turn > 1 || s.fleet_count > kMaxShips ||
      s.turn_ticks == 0)
    return;
  ++s.tick;
  bool shot = false;
  for (std::uint32_t i = 0; in != nullptr && i < in->count; ++i) {
    const skirmish_input& v = in->items[i];
    if (shot || v.seat != s.turn || v.len != BATTLESHIP_INPUT_BYTES || v.bytes == nullptr) {
      ++s.ignored_inputs;
      continue;
    }
    const std::uint32_t x = v.bytes[0], y = v.bytes[1];
    if (x >= s.board || y >= s.board || (s.cells[s.turn ^ 1u][y * s.board + x] & BATTLESHIP_CELL_SHOT) != 0) {
      ++s.ignored_inputs;
      continue;
    }
    fire(s, x, y);
    shot = true;
  }
  bool stalled = false;
  if (s.ended == 0 && !shot && --s.turn_ticks_left == 0) {  // the move timer ran out: a stall
    const std::uint8_t me = s.turn;
    stalled = true;
    if (++s.stalls[me] >= s.max_stalls) {
      end(s, SKIRMISH_END_COMPLETED, BATTLESHIP_DETAIL_FORFEIT, std::uint8_t(me ^ 1u));
    } else {
      pass_turn(s);
    }
  }
  if (shot || stalled) ++s.turn_number;  // a shot or a stall is a turn
  if (s.ended == 0 && s.turn_number >= s.max_turns) {
    const std::uint8_t w = s.hits[0] == s.hits[1] ? kNobody : (s.hits[0] > s.hits[1] ? 0 : 1);
    end(s, SKIRMISH_END_TIME_LIMIT, BATTLESHIP_DETAIL_TURN_LIMIT, w);
  }
  std::memcpy(state, &s, sizeof s);
}

std::uint32_t check_input(const std::uint8_t* bytes, std::uint32_t len) {
  if (len != BATTLESHIP_INPUT_BYTES || bytes == nullptr) return SKIRMISH_INPUT_MALFORMED;
  if (bytes[0] >= BATTLESHIP_MAX_BOARD || bytes[1] >= BATTLESHIP_MAX_BOARD) return SKIRMISH_INPUT_OUT_OF_RANGE;
  return SKIRMISH_INPUT_OK;
}

// Board `owner` as `seat` may see it: its own ships whole, the other's (and
// a spectator's both) only where shot.
void board_view(const BsState& s, std::uint32_t owner, std::uint32_t seat, std::uint8_t* out) {
  const std::uint32_t n = std::uint32_t(s.board) * s.board;
  const bool mine = owner == seat;
  for (std::uint32_t k = 0; k < n; ++k) {
    std::uint8_t c = s.cells[owner][k];
    if (!mine && (c & BATTLESHIP_CELL_SHOT) == 0) c &= std::uint8_t(~BATTLESHIP_CELL_SHIP);
    out[k] = c;
  }
}

std::uint32_t view(const void* state, std::uint32_t seat, std::uint8_t* out, std::uint32_t cap) {
  BsState s;
  std::memcpy(&s, state, sizeof s);
  if (s.board < 6 || s.board > BATTLESHIP_MAX_BOARD) return 0;
  const std::uint32_t n = std::uint32_t(s.board) * s.board;
  const std::uint32_t len = BATTLESHIP_VIEW_HEADER_BYTES + 2 * n;
  if (len > cap) return 0;
  const bool player = seat < 2;
  battleship_view_header h{};
  h.tick = s.tick;
  h.board = s.board;
  h.you = player ? std::uint8_t(seat) : std::uint8_t(SKIRMISH_SPECTATOR);
  h.turn = s.turn;
  h.ended = s.ended;
  h.winner = s.winner;
  h.ships_left[0] = s.ships_left[0];
  h.ships_left[1] = s.ships_left[1];
  h.turn_ticks_left = s.turn_ticks_left;
  h.turn_number = s.turn_number;
  std::memcpy(out, &h, sizeof h);
  const std::uint32_t first = player ? seat : 0;
  board_view(s, first, player ? seat : SKIRMISH_SPECTATOR, out + BATTLESHIP_VIEW_HEADER_BYTES);
  board_view(s, first ^ 1u, player ? seat : SKIRMISH_SPECTATOR, out + BATTLESHIP_VIEW_HEADER_BYTES + n);
  return len;
}

void outcome(const void* state, skirmish_outcome* out) {
  // The server asks after every step: read the header fields only, not the boards.
  BsState s;
  std::memcpy(static_cast<void*>(&s), state, offsetof(BsState, cells));
  *out = skirmish_outcome{};
  out->end = s.ended;
  out->detail = s.detail;
  for (std::uint32_t i = 0; i < 2; ++i) out->seats[i].score = s.hits[i];
  if (s.ended != 0 && s.winner < 2) {
    out->seats[s.winner].place = 1;
    out->seats[s.winner ^ 1u].place = 2;
  } else if (s.ended == 0 && s.hits[0] != s.hits[1]) {  // standings so far
    out->seats[0].place = s.hits[0] > s.hits[1] ? 1 : 2;
    out->seats[1].place = s.hits[1] > s.hits[0] ? 1 : 2;
  } else {
    out->seats[0].place = out->seats[1].place = 1;  // a draw
  }
}

// The bot: on its turn, a cell next to a hit of a ship not yet sunk when
// there is one, else any cell not yet shot (chequerboard first: every ship
// is at least 2 long). Reads nothing but its view.
std::uint32_t bot_input(const std::uint8_t* v, std::uint32_t len, std::uint32_t seat, std::uint64_t* rng,
                        std::uint8_t* out, std::uint32_t cap) {
  if (cap < BATTLESHIP_INPUT_BYTES || len < BATTLESHIP_VIEW_HEADER_BYTES || rng == nullptr) return 0;
  battleship_view_header h;
  std::memcpy(&h, v, sizeof h);
  const std::uint32_t n = h.board;
  if (n < 6 || n > BATTLESHIP_MAX_BOARD || len < BATTLESHIP_VIEW_HEADER_BYTES + 2 * n * n) return 0;
  if (h.ended != 0 || h.you != seat || h.turn != seat) return 0;
  const std::uint8_t* theirs = v + BATTLESHIP_VIEW_HEADER_BYTES + n * n;
  auto open = [&](std::int32_t x, std::int32_t y) {
    return x >= 0 && y >= 0 && x < std::int32_t(n) && y < std::int32_t(n) &&
           (theirs[std::uint32_t(y) * n + std::uint32_t(x)] & BATTLESHIP_CELL_SHOT) == 0;
  };
  std::uint8_t cand[kCells];
  std::uint32_t count = 0;
  for (int pass = 0; pass < 3 && count == 0; ++pass) {
    for (std::uint32_t y = 0; y < n; ++y)
      for (std::uint32_t x = 0; x < n; ++x) {
        const std::int32_t ix = std::int32_t(x), iy = std::int32_t(y);
        if (!open(ix, iy)) continue;
        bool take = pass == 2 || (pass == 1 && (x + y) % 2 == 0);
        if (pass == 0) {
          const std::int32_t d[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
          for (const auto& dd : d) {
            const std::int32_t nx = ix + dd[0], ny = iy + dd[1];
            if (nx < 0 || ny < 0 || nx >= std::int32_t(n) || ny >= std::int32_t(n)) continue;
            const std::uint8_t c = theirs[std::uint32_t(ny) * n + std::uint32_t(nx)];
            if ((c & BATTLESHIP_CELL_SHIP) != 0 && (c & BATTLESHIP_CELL_SUNK) == 0) take = true;
          }
        }
        if (take) cand[count++] = std::uint8_t(y * n + x);
      }
  }
  if (count == 0) return 0;
  const std::uint8_t c = cand[next(*rng) % count];
  out[0] = std::uint8_t(c % n);
  out[1] = std::uint8_t(c / n);
  return BATTLESHIP_INPUT_BYTES;
}

std::uint32_t public_params(const skirmish_params* params, skirmish_param* out, std::uint32_t cap) {
  Params p;
  if (!parse(params, p, nullptr, 0)) p = Params{};
  std::uint32_t n = 0;
  for (const Key& k : kKeys) {
    if (n >= cap) return n;
    out[n++] = skirmish_param{k.name, SKIRMISH_PARAM_INT, 0, p.*(k.field), 0.0, nullptr};
  }
  if (n < cap) out[n++] = skirmish_param{"turn_ticks", SKIRMISH_PARAM_INT, 0, turn_ticks(p), 0.0, nullptr};
  if (n < cap) out[n++] = skirmish_param{"fleet", SKIRMISH_PARAM_STRING, 0, 0, 0.0, kFleets[p.board - 6].text};
  return n;
}

const skirmish_game_v1_t kTable = {
    SKIRMISH_GAME_ABI_VERSION,
    sizeof(skirmish_game_v1_t),
    "battleship",
    "1.0.0",
    sizeof(BsState),
    BATTLESHIP_INPUT_BYTES,
    BATTLESHIP_MAX_VIEW_BYTES,
    0,  // views differ per seat
    2,
    2,
    0,
    1,
    60,  // turn-based: a faster tick buys nothing but CPU
    check_params,
    init,
    step,
    check_input,
    view,
    outcome,
    bot_input,
    public_params,
};

}  // namespace

extern "C" SKIRMISH_GAME_EXPORT const skirmish_game_v1_t* skirmish_game_v1(void) { return &kTable; }
