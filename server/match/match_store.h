// skirmish::match: a match as it lives in shared memory (shm::MatchRow and
// its state ring), stepped through the game module's table
// (sdk/include/skirmish/game.h). The glue between the module, the pure
// matchmaking math and the segment; no sockets, no libuv, no logging, so
// the unit tests drive it over a real segment. It knows no game.
//
// Contract
// - Functions named *_locked expect the caller to hold the match's lock
//   (shm::lock_match) and to have re-checked its handle after taking it.
// - The state ring (Ring): kStateRing buffers of the module's state_bytes;
//   the state at tick t sits in buffer t % kStateRing while it is among the
//   last kStateRing ticks; `published` names the newest. step_locked writes
//   the next state beside the current one and publishes it with one store
//   of `published` (and `tick`), so a process killed in the middle (or a
//   module that crashes in step) leaves the previous state published and
//   whole: the module steps a copy in the spare buffer, never the
//   published bytes.
// - Inputs: each seat has a small queue in the row (shm::SeatInputs) of the
//   game's input bytes, filled by whichever worker holds the player's
//   session (after the module's check_input) and drained by the owner at
//   each tick: every queued input goes to step(), grouped by seat in seq
//   order, and the game decides what to apply. Seqs must increase; a stale
//   or over-the-cap input is refused and counted in SeatInputs::dropped.
// - Containment: row.stepping is 1 exactly while the module's step() runs
//   on this row, so a worker that dies inside it leaves the mark for the
//   adopter (note_crash_locked).
#pragma once

#include <cstdint>

#include "config/config.h"
#include "matchmaking/matchmaker.h"
#include "record/record.h"
#include "shm/segment.h"
#include "shm/tables.h"
#include "skirmish/game.h"

namespace skirmish::match {

static_assert(SKIRMISH_MAX_SEATS == shm::kMaxMatchPlayers);
static_assert(SKIRMISH_MAX_INPUT_BYTES == shm::kMaxInputBytes);
static_assert(SKIRMISH_MAX_QUEUED_INPUTS == shm::kMaxQueuedInputs);

matchmaking::Params matchmaking_params(const config::Config& c);

// One match's state ring (shm::Segment::match_ring) and the module that
// reads it.
struct Ring {
  std::uint8_t* base = nullptr;  // kStateRing buffers
  std::uint64_t stride = 0;      // bytes between buffers (>= game->state_bytes)
  const skirmish_game_v1_t* game = nullptr;
  record::Ring rec{};  // the match's record ring; empty when recording is off
  std::uint8_t* buffer(std::uint32_t i) const { return base + std::uint64_t(i % shm::kStateRing) * stride; }
};

// The rings of the match in `row` (a row of seg.matches()).
Ring ring_of(const shm::Segment& seg, const shm::MatchRow& row, const skirmish_game_v1_t* game);

// The published state, or nullptr when the row holds none (torn or never set).
const std::uint8_t* published_locked(const shm::MatchRow& row, const Ring& ring);
// The state at `tick` if it is still in the ring, else nullptr.
const std::uint8_t* tick_locked(const shm::MatchRow& row, const Ring& ring, std::uint32_t tick);

// A fresh match: the module's init with `seed`, published at tick 0. The
// caller fills players/player_ids/seat_count/owner_worker.
void start_locked(shm::MatchRow& row, const Ring& ring, const skirmish_params* params, std::uint8_t players,
                  std::uint32_t seed);

enum class QueueResult : std::uint8_t { Queued, Stale, Full };
// `len` 1..kMaxInputBytes (the caller checked it and check_input).
QueueResult queue_input_locked(shm::MatchRow& row, std::uint8_t seat, std::uint32_t seq, const std::uint8_t* bytes,
                               std::uint32_t len, std::uint32_t max_queued);

struct StepOutcome {
  std::uint32_t tick;  // tick now published
  bool ended;          // the module ended the match at this tick
  bool ok;             // false: no valid published state (nothing done)
  bool record_lost = false;  // this step filled the record ring (count it, log it)
};
// Gathers every queued input, steps the module once on a copy of the
// published state with `connected_mask` (bit i = seat i has a session
// somewhere), publishes, pops the inputs. Never called on an ended state.
// With a record ring: appends TICK before step() (a crashing tick is
// recorded) and HASH after the publish every hash_every ticks.
StepOutcome step_locked(shm::MatchRow& row, const Ring& ring, std::uint32_t connected_mask);

// The module's outcome of the published state; false when there is none.
bool outcome_locked(const shm::MatchRow& row, const Ring& ring, skirmish_outcome& out);

// The newest Input.seq of `seat` handed to step() (Snapshot.last_input_seq).
inline std::uint32_t applied_seq_locked(const shm::MatchRow& row, std::uint8_t seat) {
  return row.applied_seq[seat % shm::kMaxMatchPlayers];
}

}  // namespace skirmish::match
