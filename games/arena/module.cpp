// The arena as a game module: the rules (rules.h) behind the public ABI
// (sdk/include/skirmish/game.h), and nothing else. Built against the SDK
// header alone; the server holds no arena code.
//
// - State: ArenaState, the rules' MatchState and the match's Params (step
//   gets no params, so they travel in the state), plain bytes with no
//   padding, so a memcmp of two states is meaningful (determinism tests).
// - Inputs: arena.h's 3 bytes. Of a seat's inputs in one tick the newest
//   move counts and every button press is kept (OR), so a tap between two
//   ticks is not lost; the rules drop a seq they have seen.
// - View: arena.h's fixed-slot layout, the same for every seat
//   (SKIRMISH_GAME_SHARED_VIEW): every player and coin keeps its slot, so
//   consecutive views line up byte for byte and a byte delta is small.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string_view>

#include "arena.h"
#include "rules.h"
#include "skirmish/game.h"

namespace {

struct ArenaState {
  arena::MatchState s;
  arena::Params p;
  std::uint32_t reserved;
};
static_assert(alignof(ArenaState) <= 16, "the server aligns state to 16 bytes (game.h)");
static_assert(std::is_trivially_copyable_v<ArenaState>);
static_assert(std::has_unique_object_representations_v<ArenaState>, "no padding");
static_assert(sizeof(arena_view_header) == ARENA_VIEW_HEADER_BYTES);
static_assert(sizeof(arena_entity) == ARENA_ENTITY_BYTES);
static_assert(sizeof(arena_input) == ARENA_INPUT_BYTES);

// [game.params]: name, field, range. Every key is optional (defaults in
// rules.h's Params); unknown keys are refused, so a typo stops the start.
struct Key {
  const char* name;
  std::int64_t min, max;
  bool is_signed;
  void* (*field)(arena::Params&);
};
#define ARENA_FIELD(f) [](arena::Params& p) -> void* { return &p.f; }
constexpr std::int64_t kUnits = arena::kMaxArenaUnits;
const Key kKeys[] = {
    {"width", 1000, kUnits, true, ARENA_FIELD(arena_width)},
    {"height", 1000, kUnits, true, ARENA_FIELD(arena_height)},
    {"max_speed", 1, kUnits, true, ARENA_FIELD(max_speed)},
    {"score_limit", 1, 10000, false, ARENA_FIELD(score_limit)},
    {"time_limit_s", 5, 3600, false, ARENA_FIELD(time_limit_s)},
    {"coins", 0, arena::kMaxCoins, false, ARENA_FIELD(coins)},
    {"tag_radius", 0, kUnits, true, ARENA_FIELD(tag_radius)},
    {"pickup_radius", 0, kUnits, true, ARENA_FIELD(pickup_radius)},
    {"stun_ms", 0, 600000, false, ARENA_FIELD(stun_ms)},
    {"tag_cooldown_ms", 0, 600000, false, ARENA_FIELD(tag_cooldown_ms)},
    {"tag_miss_cooldown_ms", 0, 600000, false, ARENA_FIELD(tag_miss_cooldown_ms)},
    {"coin_respawn_ms", 0, 600000, false, ARENA_FIELD(coin_respawn_ms)},
};
#undef ARENA_FIELD

void say(char* err, std::uint32_t cap, const char* fmt, auto... args) {
  if (err != nullptr && cap > 0) std::snprintf(err, cap, fmt, args...);
}

// Params from the typed pairs; false with a line in err.
bool parse(const skirmish_params* in, arena::Params& p, char* err, std::uint32_t cap) {
  p = arena::Params{};
  p.tick_rate_hz = in != nullptr ? in->tick_rate_hz : 30;
  for (std::uint32_t i = 0; in != nullptr && i < in->count; ++i) {
    const skirmish_param& v = in->items[i];
    const Key* k = nullptr;
    for (const Key& c : kKeys)
      if (v.key != nullptr && std::string_view(v.key) == c.name) k = &c;
    if (k == nullptr) {
      say(err, cap, "unknown key %s (the arena takes width, height, max_speed, score_limit, time_limit_s, coins, "
                    "tag_radius, pickup_radius, stun_ms, tag_cooldown_ms, tag_miss_cooldown_ms, coin_respawn_ms)",
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
    void* f = k->field(p);
    if (k->is_signed) *static_cast<std::int32_t*>(f) = std::int32_t(v.i);
    else *static_cast<std::uint32_t*>(f) = std::uint32_t(v.i);
  }
  if (const char* why = arena::check_params(p)) {
    say(err, cap, "%s", why);
    return false;
  }
  return true;
}

int check_params(const skirmish_params* params, std::uint32_t players, char* err, std::uint32_t cap) {
  arena::Params p;
  if (!parse(params, p, err, cap)) return 1;
  if (players < 1 || players > arena::kMaxPlayers) {
    say(err, cap, "players = %u is out of range (allowed: 1..16)", players);
    return 1;
  }
  return 0;
}

void init(void* state, const skirmish_params* params, std::uint32_t players, std::uint64_t seed) {
  ArenaState a{};
  if (!parse(params, a.p, nullptr, 0)) a.p = arena::Params{};  // checked before; never half-parsed
  a.s = arena::init(a.p, std::uint8_t(players), std::uint32_t(seed ^ (seed >> 32)));
  std::memcpy(state, &a, sizeof a);
}

void step(void* state, const skirmish_inputs* in, std::uint32_t /*tick*/) {
  // Stepped in place: the server hands 16-byte aligned state bytes of a
  // trivially copyable type (game.h), and a copy in and out of ~1 KB per
  // tick cost a third of the step. The rules read inputs[i] only where
  // has[i], so only `has` is cleared.
  ArenaState& a = *static_cast<ArenaState*>(state);
  arena::PlayerInput inputs[arena::kMaxPlayers];
  bool has[arena::kMaxPlayers] = {};
  const std::uint32_t np = a.s.player_count <= arena::kMaxPlayers ? a.s.player_count : arena::kMaxPlayers;
  for (std::uint32_t i = 0; i < in->count; ++i) {
    const skirmish_input& x = in->items[i];
    if (x.seat >= np || x.len != ARENA_INPUT_BYTES) continue;
    arena_input v;
    std::memcpy(&v, x.bytes, sizeof v);
    // Newest move wins (inputs of a seat come in seq order); every button
    // press of the tick is kept.
    const std::uint8_t buttons = std::uint8_t(v.buttons | (has[x.seat] ? inputs[x.seat].buttons : 0u));
    inputs[x.seat] = arena::PlayerInput{x.seq, v.move_x, v.move_y, buttons, 0};
    has[x.seat] = true;
  }
  for (std::uint32_t i = 0; i < np; ++i) arena::set_connected(a.s, std::uint8_t(i), (in->connected >> i) & 1u);
  arena::step(a.s, a.p, inputs, has);
}

std::uint32_t check_input(const std::uint8_t* bytes, std::uint32_t len) {
  if (len != ARENA_INPUT_BYTES) return SKIRMISH_INPUT_MALFORMED;
  arena_input v;
  std::memcpy(&v, bytes, sizeof v);
  if (v.move_x < -ARENA_MAX_MOVE || v.move_x > ARENA_MAX_MOVE || v.move_y < -ARENA_MAX_MOVE ||
      v.move_y > ARENA_MAX_MOVE || (v.buttons & ~ARENA_KNOWN_BUTTONS) != 0)
    return SKIRMISH_INPUT_OUT_OF_RANGE;
  return SKIRMISH_INPUT_OK;
}

std::uint32_t view(const void* state, std::uint32_t /*seat*/, std::uint8_t* out, std::uint32_t cap) {
  const ArenaState& a = *static_cast<const ArenaState*>(state);
  const std::uint32_t np = a.s.player_count <= arena::kMaxPlayers ? a.s.player_count : arena::kMaxPlayers;
  const std::uint32_t nc = a.s.coin_count <= arena::kMaxCoins ? a.s.coin_count : arena::kMaxCoins;
  const std::uint32_t len = ARENA_VIEW_HEADER_BYTES + (np + nc) * ARENA_ENTITY_BYTES;
  if (len > cap) return 0;
  arena_view_header h{a.s.tick, arena::time_left_ms(a.s, a.p), std::uint8_t(np), std::uint8_t(nc), 0, 0};
  if (a.s.ended) h.ended = a.s.end_reason == std::uint8_t(arena::EndReason::ScoreLimit) ? SKIRMISH_END_SCORE_LIMIT
                                                                                        : SKIRMISH_END_TIME_LIMIT;
  std::memcpy(out, &h, sizeof h);
  std::uint8_t* at = out + ARENA_VIEW_HEADER_BYTES;
  for (std::uint32_t i = 0; i < np; ++i, at += ARENA_ENTITY_BYTES) {
    const arena::PlayerState& p = a.s.players[i];
    const arena_entity e{std::uint16_t(i), ARENA_KIND_PLAYER, p.flags, p.x, p.y, p.score, p.stun_ticks};
    std::memcpy(at, &e, sizeof e);
  }
  for (std::uint32_t i = 0; i < nc; ++i, at += ARENA_ENTITY_BYTES) {
    const arena::CoinState& c = a.s.coins[i];
    const arena_entity e{std::uint16_t(ARENA_MAX_PLAYERS + i), ARENA_KIND_COIN,
                         std::uint8_t(c.active ? ARENA_FLAG_ACTIVE : 0), c.x, c.y, c.value,
                         std::int32_t(c.respawn_at_tick)};
    std::memcpy(at, &e, sizeof e);
  }
  return len;
}

// Asked after every step (has the match ended?), so it is kept cheap: no
// sort (a place is 1 + the number of higher scores) and only the seats the
// match has ([0, players), game.h; the server zeroes the rest). Seats are
// filled while running too: a match cut short (abandoned, a shutdown
// deadline) is rated by them.
void outcome(const void* state, skirmish_outcome* out) {
  const arena::MatchState& s = static_cast<const ArenaState*>(state)->s;
  out->end = SKIRMISH_RUNNING;
  if (s.ended) {
    out->end = s.end_reason == std::uint8_t(arena::EndReason::ScoreLimit) ? SKIRMISH_END_SCORE_LIMIT
                                                                          : SKIRMISH_END_TIME_LIMIT;
  }
  out->detail = 0;
  const std::uint32_t np = s.player_count <= arena::kMaxPlayers ? s.player_count : arena::kMaxPlayers;
  for (std::uint32_t i = 0; i < np; ++i) {
    out->seats[i] = skirmish_seat_result{arena::place_of(s, std::uint8_t(i)), {0, 0, 0}, s.players[i].score};
  }
}

std::uint64_t next(std::uint64_t* rng) {
  std::uint64_t x = *rng != 0 ? *rng : 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// The bot: steer to the nearest active coin, tag anyone close, wander a
// little so bots do not stack.
std::uint32_t bot_input(const std::uint8_t* view_bytes, std::uint32_t len, std::uint32_t seat, std::uint64_t* rng,
                        std::uint8_t* out, std::uint32_t cap) {
  if (cap < ARENA_INPUT_BYTES || len < ARENA_VIEW_HEADER_BYTES) return 0;
  arena_view_header h;
  std::memcpy(&h, view_bytes, sizeof h);
  const std::uint32_t n = h.player_count + h.coin_count;
  if (len < ARENA_VIEW_HEADER_BYTES + n * ARENA_ENTITY_BYTES || seat >= h.player_count) return 0;
  auto entity = [&](std::uint32_t i) {
    arena_entity e;
    std::memcpy(&e, view_bytes + ARENA_VIEW_HEADER_BYTES + i * ARENA_ENTITY_BYTES, sizeof e);
    return e;
  };
  const arena_entity me = entity(seat);
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  std::int32_t tx = me.x, ty = me.y;
  bool near_player = false;
  for (std::uint32_t i = 0; i < n; ++i) {
    const arena_entity e = entity(i);
    const std::int64_t dx = std::int64_t(e.x) - me.x, dy = std::int64_t(e.y) - me.y;
    const std::int64_t d2 = dx * dx + dy * dy;
    if (e.kind == ARENA_KIND_PLAYER && i != seat && d2 < 1500ll * 1500) near_player = true;
    if (e.kind == ARENA_KIND_COIN && (e.flags & ARENA_FLAG_ACTIVE) != 0 && d2 < best) {
      best = d2;
      tx = e.x;
      ty = e.y;
    }
  }
  arena_input in{};
  const std::int64_t dx = std::int64_t(tx) - me.x, dy = std::int64_t(ty) - me.y;
  const std::int64_t m = std::max<std::int64_t>({dx < 0 ? -dx : dx, dy < 0 ? -dy : dy, 1});
  in.move_x = std::int8_t(dx * ARENA_MAX_MOVE / m);
  in.move_y = std::int8_t(dy * ARENA_MAX_MOVE / m);
  const std::uint64_t r = next(rng);
  if (best == std::numeric_limits<std::int64_t>::max() || (r & 7) == 0) {  // no coin, or one tick in 8: wander
    in.move_x = std::int8_t(std::int64_t((r >> 8) % 201) - 100);
    in.move_y = std::int8_t(std::int64_t((r >> 16) % 201) - 100);
  }
  if (near_player && ((r >> 24) & 3) == 0) in.buttons = ARENA_BUTTON_TAG;
  std::memcpy(out, &in, sizeof in);
  return ARENA_INPUT_BYTES;
}

std::uint32_t public_params(const skirmish_params* params, skirmish_param* out, std::uint32_t cap) {
  arena::Params p;
  if (!parse(params, p, nullptr, 0)) p = arena::Params{};
  std::uint32_t n = 0;
  for (const Key& k : kKeys) {
    if (n >= cap) break;
    void* f = k.field(p);
    const std::int64_t v = k.is_signed ? std::int64_t(*static_cast<std::int32_t*>(f))
                                       : std::int64_t(*static_cast<std::uint32_t*>(f));
    out[n++] = skirmish_param{k.name, SKIRMISH_PARAM_INT, 0, v, 0.0, nullptr};
  }
  return n;
}

const skirmish_game_v1_t kTable = {
    SKIRMISH_GAME_ABI_VERSION,
    sizeof(skirmish_game_v1_t),
    "arena",
    "1.0.0",
    sizeof(ArenaState),
    ARENA_INPUT_BYTES,
    ARENA_MAX_VIEW_BYTES,
    SKIRMISH_GAME_SHARED_VIEW,
    1,
    arena::kMaxPlayers,
    0,
    1,
    240,
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
