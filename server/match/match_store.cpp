#include "match/match_store.h"

#include <cstring>

#include "shm/atomic_field.h"

namespace skirmish::match {

// Test-only fault points (tests/unit/test_match_faults.cpp compiles this
// file with SKIRMISH_FAULT_POINTS and dies at each one); nothing in release.
#ifdef SKIRMISH_FAULT_POINTS
void (*fault_point)(int point) = nullptr;
#define SKIRMISH_FAULT(n)                  \
  do {                                     \
    if (fault_point != nullptr) fault_point(n); \
  } while (0)
#else
#define SKIRMISH_FAULT(n) \
  do {                    \
  } while (0)
#endif

game::Params game_params(const config::Config& c) {
  game::Params p;
  p.arena_width = std::int32_t(c.arena_width);
  p.arena_height = std::int32_t(c.arena_height);
  p.max_speed = std::int32_t(c.max_speed);
  p.tick_rate_hz = c.tick_rate_hz;
  p.score_limit = c.score_limit;
  p.time_limit_s = c.time_limit_s;
  p.coins = c.coins;
  return p;
}

matchmaking::Params matchmaking_params(const config::Config& c) {
  matchmaking::Params p;
  p.match_size = c.match_size;
  p.window_initial = c.window_initial;
  p.window_widen_per_s = c.window_widen_per_s;
  p.max_wait_ms = c.max_wait_ms;
  return p;
}

namespace {

bool load_index(const shm::MatchRow& row, std::uint32_t idx, game::MatchState& out) {
  if (idx >= shm::kStateRing || row.state_len[idx] != sizeof(game::MatchState)) return false;
  std::memcpy(&out, row.state_bytes[idx], sizeof out);
  return true;
}

}  // namespace

bool load_published_locked(const shm::MatchRow& row, game::MatchState& out) {
  return load_index(row, row.published, out);
}

bool load_tick_locked(const shm::MatchRow& row, std::uint32_t tick, game::MatchState& out) {
  if (tick > row.tick || row.tick - tick >= shm::kStateRing) return false;
  return load_index(row, tick % shm::kStateRing, out) && out.tick == tick;
}

void start_locked(shm::MatchRow& row, const game::Params& p, std::uint8_t players,
                  std::uint32_t seed) {
  const game::MatchState s = game::init(p, players, seed);
  std::memcpy(row.state_bytes[0], &s, sizeof s);
  row.state_len[0] = sizeof s;
  row.seed = seed;
  row.tick = 0;
  shm::shared_store(row.published, std::uint32_t{0});
}

QueueResult queue_input_locked(shm::MatchRow& row, std::uint8_t seat, const game::PlayerInput& in,
                               std::uint32_t max_queued) {
  shm::SeatInputs& q = row.inputs[seat % shm::kMaxMatchPlayers];
  const std::uint32_t cap = max_queued < shm::kMaxQueuedInputs ? max_queued : shm::kMaxQueuedInputs;
  if (in.seq <= q.last_seq) {
    ++q.dropped;
    return QueueResult::Stale;
  }
  if (q.count >= cap) {
    ++q.dropped;
    return QueueResult::Full;
  }
  shm::InputSlot slot;
  std::memcpy(&slot, &in, sizeof slot);
  q.q[(q.head + q.count) % shm::kMaxQueuedInputs] = slot;
  SKIRMISH_FAULT(8);
  q.last_seq = in.seq;
  SKIRMISH_FAULT(9);
  ++q.count;  // one store publishes the slot: a death before it loses only this input
  return QueueResult::Queued;
}

StepOutcome step_locked(shm::MatchRow& row, const game::Params& p, std::uint32_t connected_mask, bool abandon) {
  // Order matters for a death at any point (the lock's repair step only
  // clamps indices): the new state is written beside the published one,
  // published is flipped, then tick follows, and the inputs are popped
  // last. Dying before the flip leaves the old state and every input in
  // place; after it, at worst an input stays queued and the rules drop it
  // as stale next tick. row.tick never runs ahead of the published state.
  game::MatchState s;
  if (!load_published_locked(row, s)) return {std::uint32_t(row.tick), false, false};
  SKIRMISH_FAULT(1);
  for (std::uint8_t i = 0; i < s.player_count; ++i) game::set_connected(s, i, (connected_mask >> i) & 1u);
  // One input per seat per tick: the newest queued. Older ones arrived
  // late (network jitter) and are dropped, their buttons OR-ed into the
  // applied one so no press is lost. Applying the oldest instead would
  // keep a backlog of one forever once a single input came late: every
  // later input would then wait two ticks.
  game::PlayerInput inputs[game::kMaxPlayers];
  bool has[game::kMaxPlayers] = {};
  for (std::uint8_t i = 0; i < s.player_count; ++i) {
    const shm::SeatInputs& q = row.inputs[i];
    const std::uint32_t n = q.count < shm::kMaxQueuedInputs ? q.count : shm::kMaxQueuedInputs;
    if (n == 0) continue;
    std::memcpy(&inputs[i], &q.q[(q.head + n - 1) % shm::kMaxQueuedInputs], sizeof inputs[i]);
    for (std::uint32_t k = 0; k + 1 < n; ++k) inputs[i].buttons |= q.q[(q.head + k) % shm::kMaxQueuedInputs].buttons;
    has[i] = true;
  }
  game::step(s, p, inputs, has);
  if (abandon) game::abandon(s);  // a no-op if the step ended it
  SKIRMISH_FAULT(2);
  const std::uint32_t idx = s.tick % shm::kStateRing;
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(&s);
  std::memcpy(row.state_bytes[idx], bytes, sizeof s / 2);
  SKIRMISH_FAULT(3);
  std::memcpy(row.state_bytes[idx] + sizeof s / 2, bytes + sizeof s / 2, sizeof s - sizeof s / 2);
  row.state_len[idx] = sizeof s;
  SKIRMISH_FAULT(4);
  shm::shared_store(row.published, idx);  // the flip
  SKIRMISH_FAULT(5);
  shm::shared_store(row.tick, std::uint64_t(s.tick));
  SKIRMISH_FAULT(6);
  for (std::uint8_t i = 0; i < s.player_count; ++i) {
    shm::SeatInputs& q = row.inputs[i];
    if (!has[i]) continue;
    const std::uint32_t n = q.count < shm::kMaxQueuedInputs ? q.count : shm::kMaxQueuedInputs;
    q.dropped += n - 1;
    q.head = (q.head + n) % shm::kMaxQueuedInputs;
    q.count = 0;
  }
  SKIRMISH_FAULT(7);
  return {s.tick, s.ended != 0, true};
}

}  // namespace skirmish::match
