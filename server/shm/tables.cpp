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
  state_len[0] = 0;
  state_len[1] = 0;
  std::memset(players, 0, sizeof players);
}

void repair_match(void* ctx) {
  auto* row = static_cast<MatchRow*>(ctx);
  // A dead writer either flipped `published` (one store) or did not: either
  // way the buffer it names was complete. Clamp what a wild write could have
  // left out of range so readers never index past the buffers.
  if (row->published > 1) shared_store(row->published, std::uint32_t{0});
  for (auto& len : row->state_len) {
    if (len > kMatchStateBytes) len = 0;
  }
  if (row->seat_count > kMaxMatchPlayers) row->seat_count = kMaxMatchPlayers;
  shared_add(row->recoveries, std::uint32_t{1});
}

}  // namespace skirmish::shm
