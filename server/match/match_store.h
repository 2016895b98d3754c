// skirmish::match: a match as it lives in shared memory (shm::MatchRow),
// seen through the game rules. The glue between the pure rules
// (game/rules.h), the pure matchmaking math and the segment; no sockets, no
// libuv, no logging, so the unit tests drive it over a real segment.
//
// Contract
// - Functions named *_locked expect the caller to hold the match's lock
//   (shm::lock_match) and to have re-checked its handle after taking it.
// - The state ring: the state at tick t sits at state_bytes[t % kStateRing]
//   while it is among the last kStateRing ticks; `published` names the
//   newest. step_locked writes the next state beside the current one and
//   publishes it with one store of `published` (and `tick`), so a process
//   killed in the middle leaves the previous state published and whole.
// - Inputs: each seat has a small queue in the row (shm::SeatInputs),
//   filled by whichever worker holds the player's session and drained by
//   the owner at each tick: the newest queued input is applied (one per
//   seat per tick), older ones are dropped and counted in
//   SeatInputs::dropped (their buttons are kept). Seqs must increase; a
//   stale or over-the-cap input is refused and counted there too.
#pragma once

#include <cstdint>

#include "config/config.h"
#include "game/rules.h"
#include "matchmaking/matchmaker.h"
#include "shm/tables.h"

namespace skirmish::match {

static_assert(game::kMatchStateBytes == shm::kMatchStateBytes);
static_assert(game::kMaxPlayers == shm::kMaxMatchPlayers);
static_assert(sizeof(game::PlayerInput) == sizeof(shm::InputSlot));

game::Params game_params(const config::Config& c);
matchmaking::Params matchmaking_params(const config::Config& c);

// The published state. False when the row holds none (torn or never set).
bool load_published_locked(const shm::MatchRow& row, game::MatchState& out);
// The state at `tick` if it is still in the ring.
bool load_tick_locked(const shm::MatchRow& row, std::uint32_t tick, game::MatchState& out);

// A fresh match: rules init with `seed`, published at tick 0. The caller
// fills players/player_ids/seat_count/owner_worker.
void start_locked(shm::MatchRow& row, const game::Params& p, std::uint8_t players,
                  std::uint32_t seed);

enum class QueueResult : std::uint8_t { Queued, Stale, Full };
QueueResult queue_input_locked(shm::MatchRow& row, std::uint8_t seat,
                               const game::PlayerInput& in, std::uint32_t max_queued);

struct StepOutcome {
  std::uint32_t tick;  // tick now published
  bool ended;          // the rules ended the match at this tick
  bool ok;             // false: no valid published state (nothing done)
};
// Marks each seat connected or not (bit i of connected_mask = seat i has a
// session somewhere), pops at most one queued input per seat, steps once,
// publishes. `abandon`: every seat has left for good (no session and past
// the resume grace); the stepped state ends with EndReason::Abandoned unless
// the rules ended it at this very tick.
StepOutcome step_locked(shm::MatchRow& row, const game::Params& p, std::uint32_t connected_mask,
                        bool abandon = false);

}  // namespace skirmish::match
