// The arena's rules: a small real-time 2D arena, as a pure function of state.
// Internal to the arena module (module.cpp is its ABI); clients read
// arena.h.
//
// Contract
// - No I/O, no clock, no logging, no allocation, no floating point. State
//   in, inputs in, state out: `step` is a deterministic function of
//   (MatchState bytes, Params, inputs), so two processes stepping the same
//   state with the same inputs produce the same bytes (memcmp-equal). All
//   randomness comes from the rng stored in the state, seeded by `init`.
// - MatchState is one trivially copyable, standard-layout struct of
//   fixed-width integers with explicit reserved fields and no implicit
//   padding (has_unique_object_representations), at most kMatchStateBytes.
//   It is copied byte for byte into shared memory (shm::MatchRow) and may be
//   stepped by whichever worker adopts the match.
// - Params come from config and are fixed for a match. `check_params` says
//   whether a Params is playable; init/step assume it passed. With a Params
//   that did not pass they still never divide by zero, index out of bounds
//   or overflow (derived values are clamped), but the game is not meaningful.
// - Inputs are untrusted. `check_input` classifies them; `step` applies only
//   Ok inputs, at most one per player per tick, and counts the others. A
//   client that sends move values beyond 100, or many inputs per tick, never
//   moves faster than max_speed: the combined move vector is clamped to
//   speed_per_tick (see velocity()).
// - Units: positions in arena units (1 unit = 1 mm), the arena is
//   [0,width) x [0,height); times in ticks unless a name says _ms / _s.
//
// One step, in this order (all loops by ascending player / coin index):
//   1. timers: a player with stun_ticks > 0 is frozen for this step (cannot
//      move, tag, collect, or be tagged) and stun_ticks is decremented;
//      tag cooldowns are decremented. Flag bit0 (stunned) == stun_ticks > 0
//      after every step, i.e. "frozen during the next step".
//   2. inputs: for each connected player with has_input, check_input against
//      its last_seq; Ok -> last_seq = seq, and unless frozen, move by
//      velocity() and clamp into the arena. Non-Ok -> counted, ignored.
//      Disconnected players (flag bit1) stand still; their inputs are ignored
//      and not counted. No input this tick -> the player stands still.
//   3. tags: a player with an Ok input carrying kButtonTag, not frozen, whose
//      tag cooldown is 0, makes an attempt. Target: the nearest other player
//      within tag_radius that is connected, not frozen and not stunned (ties:
//      lower index). Hit -> target stunned for stun_ticks(p), tagger +1 and
//      cooldown tag_cooldown_ticks(p). Miss -> cooldown tag_miss_cooldown_
//      ticks(p), so holding the button is not a free tag every tick.
//      Sequential by index: a player stunned by a lower index in this step
//      cannot tag in it (a same-tick mutual tag goes to the lower index).
//   4. coin respawns: an inactive coin whose respawn_at_tick <= now
//      (now = tick + 1, the tick being simulated) reappears at an rng
//      position with an rng value 1..3, and respawn_at_tick keeps that
//      spawn tick.
//   5. pickups: each connected, non-frozen player collects every active coin
//      within pickup_radius (lower player index first): score += value, the
//      coin goes inactive with respawn_at_tick = now + coin_respawn_ticks(p).
//   6. tick = now; the match ends if any score >= score_limit (ScoreLimit,
//      checked first) or tick >= time_limit_ticks(p) (TimeLimit).
// `step` on an ended state does nothing (not even the tick advances).
//
// The module (module.cpp) wraps these rules in the game ABI: the state it
// hands the server is ArenaState (the MatchState and its Params), and the
// view is arena.h's fixed-slot layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace arena {

inline constexpr std::uint8_t kMaxPlayers = 16;
inline constexpr std::uint8_t kMinPlayers = 2;  // matchmaking's rule; init accepts 1
inline constexpr std::uint8_t kMaxCoins = 32;
inline constexpr std::size_t kMaxEntities = kMaxPlayers + kMaxCoins;  // 48
inline constexpr std::uint16_t kFirstCoinId = kMaxPlayers;             // 16

inline constexpr std::int32_t kMaxMove = 100;       // |move_x|, |move_y| <= 100
inline constexpr std::uint8_t kButtonTag = 0x01;    // buttons bit 0
inline constexpr std::uint8_t kKnownButtons = kButtonTag;

inline constexpr std::uint8_t kFlagStunned = 0x01;       // PlayerState::flags
inline constexpr std::uint8_t kFlagDisconnected = 0x02;

inline constexpr std::int32_t kMaxArenaUnits = 10'000'000;  // 10 km
inline constexpr std::uint16_t kMinCoinValue = 1;
inline constexpr std::uint16_t kMaxCoinValue = 3;

// Fixed for a match. The first seven come from config [game]; the rest are
// tuning with documented defaults (ms values become ticks by floor(ms * hz /
// 1000), at least 1 tick).
struct Params {
  std::int32_t arena_width = 100000;   // units, 1..kMaxArenaUnits
  std::int32_t arena_height = 100000;  // units, 1..kMaxArenaUnits
  std::int32_t max_speed = 6000;       // units per second, >= tick_rate_hz
  std::uint32_t tick_rate_hz = 30;     // 1..1000
  std::uint32_t score_limit = 20;      // >= 1
  std::uint32_t time_limit_s = 120;    // >= 1; time_limit_s * hz < 2^32
  std::uint32_t coins = 8;             // 0..kMaxCoins
  std::int32_t tag_radius = 1500;      // units, 0..kMaxArenaUnits
  std::int32_t pickup_radius = 1000;   // units, 0..kMaxArenaUnits
  std::uint32_t stun_ms = 500;             // a tagged player is frozen this long
  std::uint32_t tag_cooldown_ms = 1000;    // after a hit (> stun: the victim can flee)
  std::uint32_t tag_miss_cooldown_ms = 250;  // after a miss
  std::uint32_t coin_respawn_ms = 2000;    // a collected coin reappears after
};

// nullptr when `p` is playable, else a static one-line reason.
const char* check_params(const Params& p);

// Derived per-tick values (integer math, documented rounding).
// speed_per_tick = floor(max_speed / tick_rate_hz): never faster than
// configured; check_params rejects a Params where this is 0.
std::int32_t speed_per_tick(const Params& p);
std::uint32_t ms_to_ticks(const Params& p, std::uint32_t ms);  // floor, >= 1
inline std::uint32_t stun_ticks(const Params& p) { return ms_to_ticks(p, p.stun_ms); }
inline std::uint32_t tag_cooldown_ticks(const Params& p) { return ms_to_ticks(p, p.tag_cooldown_ms); }
inline std::uint32_t tag_miss_cooldown_ticks(const Params& p) { return ms_to_ticks(p, p.tag_miss_cooldown_ms); }
inline std::uint32_t coin_respawn_ticks(const Params& p) { return ms_to_ticks(p, p.coin_respawn_ms); }
// time_limit_s * tick_rate_hz, saturated at UINT32_MAX.
std::uint32_t time_limit_ticks(const Params& p);

// ---------------------------------------------------------------- inputs

struct PlayerInput {
  std::uint32_t seq;    // strictly increasing per player, starts at 1
  std::int8_t move_x;   // -100..100, percent of max speed on this axis
  std::int8_t move_y;   // -100..100
  std::uint8_t buttons; // bit 0: tag; other bits must be 0
  std::uint8_t pad;     // ignored
};
static_assert(std::is_trivially_copyable_v<PlayerInput>);
static_assert(std::is_standard_layout_v<PlayerInput>);
static_assert(sizeof(PlayerInput) == 8);

enum class InputVerdict : std::uint8_t {
  Ok = 0,
  Stale,       // seq <= last applied seq (a replay or a reordered resend)
  OutOfRange,  // |move_x| or |move_y| > 100, or unknown button bits
};

// Stale is checked first.
InputVerdict check_input(std::uint32_t last_seq, const PlayerInput& in);

struct Velocity {
  std::int32_t x;
  std::int32_t y;
};

// Units per tick for a move of (move_x, move_y), each clamped to -100..100.
// The vector is scaled by speed_per_tick / max(100, ceil(|move|)) and each
// component truncated toward zero, so |velocity| <= speed_per_tick exactly
// (a diagonal is not faster) and velocity(-x,-y) == -velocity(x,y).
// Exposed for client-side prediction.
Velocity velocity(const Params& p, std::int32_t move_x, std::int32_t move_y);

// ceil(sqrt(v)), exact.
std::uint64_t isqrt_ceil(std::uint64_t v);

// ---------------------------------------------------------------- state

enum class EndReason : std::uint8_t {
  None = 0,
  ScoreLimit = 1,
  TimeLimit = 2,
  Abandoned = 3,  // set by the caller through abandon()
};
// Note: proto::EndReason numbers these ScoreLimit = 0, TimeLimit, Abandoned;
// the server maps (reason - 1).

struct PlayerState {
  std::int32_t x;               // units, 0..arena_width-1
  std::int32_t y;               // units, 0..arena_height-1
  std::int32_t score;
  std::uint32_t last_seq;       // newest applied PlayerInput::seq (0 = none)
  std::uint16_t stun_ticks;     // steps this player stays frozen
  std::uint16_t tag_cooldown;   // steps until it may attempt a tag again
  std::uint8_t flags;           // kFlagStunned | kFlagDisconnected
  std::uint8_t reserved[3];
};
static_assert(sizeof(PlayerState) == 24);

struct CoinState {
  std::int32_t x;
  std::int32_t y;
  std::uint32_t respawn_at_tick;  // inactive: tick it reappears; active: tick it appeared
  std::uint16_t value;            // 1..3
  std::uint8_t active;            // 0 or 1
  std::uint8_t reserved;
};
static_assert(sizeof(CoinState) == 16);

struct MatchState {
  std::uint32_t tick;          // steps taken since init
  std::uint8_t player_count;   // 1..kMaxPlayers
  std::uint8_t coin_count;     // 0..kMaxCoins
  std::uint8_t ended;          // 0 or 1
  std::uint8_t end_reason;     // EndReason
  std::uint64_t rng;           // xorshift64* state, never 0
  // Counters (for metrics; wrap at 2^32).
  std::uint32_t inputs_stale;         // non-Ok inputs step() saw and ignored
  std::uint32_t inputs_out_of_range;
  std::uint32_t tags;                 // successful tags
  std::uint32_t coins_collected;
  PlayerState players[kMaxPlayers];   // [player_count..) are zero
  CoinState coins[kMaxCoins];         // [coin_count..) are zero
};
static_assert(std::is_trivially_copyable_v<MatchState>);
static_assert(std::is_standard_layout_v<MatchState>);
static_assert(std::has_unique_object_representations_v<MatchState>,
              "no padding: memcmp of two states must be meaningful");

// A fresh match: players on a circle around the centre (deterministic, the
// same for every seed), `p.coins` coins at rng positions. `players` is
// clamped into 1..kMaxPlayers. Every byte not named is zero.
MatchState init(const Params& p, std::uint8_t players, std::uint32_t seed);

// One fixed timestep (see the order above). `inputs` and `has_input` have
// s.player_count entries, indexed by slot; has_input[i] false means no input
// from slot i this tick. Either pointer null means no inputs at all.
void step(MatchState& s, const Params& p, const PlayerInput* inputs,
          const bool* has_input);

// Marks a slot disconnected (stands still, cannot be tagged) or back.
// Slots >= player_count are ignored. Inline: the module calls it for every
// seat on every step.
inline void set_connected(MatchState& s, std::uint8_t slot, bool connected) {
  if (slot >= s.player_count || slot >= kMaxPlayers) return;
  if (connected)
    s.players[slot].flags &= static_cast<std::uint8_t>(~kFlagDisconnected);
  else
    s.players[slot].flags |= kFlagDisconnected;
}

// Ends a running match with EndReason::Abandoned; no-op once ended.
void abandon(MatchState& s);

// ms left until the time limit (0 once ended or past it).
std::uint32_t time_left_ms(const MatchState& s, const Params& p);

// A slot's place: 1 = best, equal scores share a place ("1224"), i.e. 1 +
// the number of players with a higher score. Inline and without a sort: the
// module answers it for every seat after every step.
inline std::uint8_t place_of(const MatchState& s, std::uint8_t slot) {
  const std::uint8_t n = s.player_count < kMaxPlayers ? s.player_count : kMaxPlayers;
  const std::int32_t score = s.players[slot].score;
  std::uint32_t place = 1;
  for (std::uint8_t j = 0; j < n; ++j) place += s.players[j].score > score;
  return static_cast<std::uint8_t>(place);
}

}  // namespace arena
