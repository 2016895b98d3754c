#include "shm/tables.h"

#include <cstring>

#include "shm/atomic_field.h"

namespace skirmish::shm {

void PlayerRow::reset_payload() {
  state = PlayerState::Free;
  player_id = 0;
  std::memset(token, 0, sizeof token);
  connection_gen = 0;
  disconnected_at_ms = 0;
  rating = 0.0f;
  rd = 0.0f;
  volatility = 0.0f;
  worker = kNoWorker;
  match = 0;
  ticket = 0;
  seat = 0;
  std::memset(reserved0, 0, sizeof reserved0);
  std::memset(name, 0, sizeof name);
  matches_played = 0;
  std::memset(account, 0, sizeof account);
  std::memset(reserved1, 0, sizeof reserved1);
}

void TicketRow::reset_payload() {
  state = TicketState::Free;
  player = 0;
  rating = 0.0f;
  mode = 0;
  party_size = 0;
  worker = kNoWorker;
  party_key = 0;
  joined_at_ms = 0;
  match = 0;
  std::memset(reserved0, 0, sizeof reserved0);
}

void MatchRow::reset_payload() {
  // A process holding a stale handle may be inside the match lock right now
  // (it re-checks gen after locking), so the lock itself is never touched.
  shared_store(state, MatchState::Forming);
  owner_worker = kNoWorker;
  seat_count = 0;
  mode = 0;
  shared_store(tick, std::uint64_t{0});
  created_at_ms = 0;
  last_tick_ms = 0;
  shared_store(published, std::uint32_t{0});
  std::memset(state_len, 0, sizeof state_len);
  recoveries = 0;
  seed = 0;
  end_reason = 0;
  end_detail = 0;
  ended_at_ms = 0;
  ticks_late = 0;
  adoptions = 0;
  stepping = 0;
  step_crashes = 0;
  std::memset(players, 0, sizeof players);
  std::memset(player_ids, 0, sizeof player_ids);
  std::memset(results, 0, sizeof results);
  std::memset(inputs, 0, sizeof inputs);
  std::memset(applied_seq, 0, sizeof applied_seq);
}

void repair_match(void* ctx) {
  auto* row = static_cast<MatchRow*>(ctx);
  // A dead writer either flipped `published` (one store) or did not: either
  // way the buffer it names was complete. Clamp what a wild write could have
  // left out of range so readers never index past the buffers.
  if (row->published >= kStateRing) shared_store(row->published, std::uint32_t{0});
  // The flip landed but the tick store after it did not: the published
  // state is tick + 1. Without this, the buffer of tick + 1 - kStateRing
  // (the one just overwritten) would still be handed out as that old tick.
  if (row->published == (row->tick + 1) % kStateRing) shared_store(row->tick, row->tick + 1);
  // The spare buffer (the next tick's) may hold a finished step that was
  // never published: it is no longer the old tick it held. Forget it (at
  // worst one old delta base is lost, and a full snapshot goes out).
  if (const std::uint64_t spare = (row->tick + 1) % kStateRing; spare != row->published) row->state_len[spare] = 0;
  for (auto& len : row->state_len) {
    if (len > kMaxStateBytes) len = 0;
  }
  if (row->seat_count > kMaxMatchPlayers) row->seat_count = kMaxMatchPlayers;
  // An input queue half-pushed or half-popped: clamp it to a valid ring; at
  // worst one input is lost or replayed, and the rules drop stale seqs.
  for (auto& in : row->inputs) {
    if (in.head >= kMaxQueuedInputs) in.head = 0;
    if (in.count > kMaxQueuedInputs) in.count = 0;
  }
  shared_add(row->recoveries, std::uint32_t{1});
}

}  // namespace skirmish::shm
