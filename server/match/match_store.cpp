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

matchmaking::Params matchmaking_params(const config::Config& c) {
  matchmaking::Params p;
  p.match_size = c.match_size;
  p.window_initial = c.window_initial;
  p.window_widen_per_s = c.window_widen_per_s;
  p.max_wait_ms = c.max_wait_ms;
  return p;
}

Ring ring_of(const shm::Segment& seg, const shm::MatchRow& row, const skirmish_game_v1_t* game) {
  Ring r{seg.match_ring(row), seg.state_stride(), game};
  if (shm::RecordRing* h = seg.match_record(row)) r.rec = record::Ring{h, reinterpret_cast<std::uint8_t*>(h + 1), seg.record_bytes()};
  return r;
}

namespace {

const std::uint8_t* at_index(const shm::MatchRow& row, const Ring& ring, std::uint32_t idx) {
  if (idx >= shm::kStateRing || row.state_len[idx] != ring.game->state_bytes) return nullptr;
  return ring.buffer(idx);
}

}  // namespace

const std::uint8_t* published_locked(const shm::MatchRow& row, const Ring& ring) {
  return at_index(row, ring, row.published);
}

const std::uint8_t* tick_locked(const shm::MatchRow& row, const Ring& ring, std::uint32_t tick) {
  if (tick > row.tick || row.tick - tick >= shm::kStateRing) return nullptr;
  const std::uint32_t idx = tick % shm::kStateRing;
  // The buffer holds tick `tick` only if nothing newer overwrote it: with
  // row.tick - tick < kStateRing and one buffer per tick, it does.
  return at_index(row, ring, idx);
}

void start_locked(shm::MatchRow& row, const Ring& ring, const skirmish_params* params, std::uint8_t players,
                  std::uint32_t seed) {
  for (std::uint32_t i = 0; i < shm::kStateRing; ++i) row.state_len[i] = 0;
  ring.game->init(ring.buffer(0), params, players, seed);
  row.state_len[0] = ring.game->state_bytes;
  row.seed = seed;
  row.tick = 0;
  shm::shared_store(row.published, std::uint32_t{0});
}

QueueResult queue_input_locked(shm::MatchRow& row, std::uint8_t seat, std::uint32_t seq, const std::uint8_t* bytes,
                               std::uint32_t len, std::uint32_t max_queued) {
  shm::SeatInputs& q = row.inputs[seat % shm::kMaxMatchPlayers];
  const std::uint32_t cap = max_queued < shm::kMaxQueuedInputs ? max_queued : shm::kMaxQueuedInputs;
  if (seq <= q.last_seq) {
    ++q.dropped;
    return QueueResult::Stale;
  }
  if (q.count >= cap) {
    ++q.dropped;
    return QueueResult::Full;
  }
  shm::InputSlot& slot = q.q[(q.head + q.count) % shm::kMaxQueuedInputs];
  slot.seq = seq;
  slot.len = std::uint8_t(len > shm::kMaxInputBytes ? shm::kMaxInputBytes : len);
  std::memcpy(slot.bytes, bytes, slot.len);
  SKIRMISH_FAULT(8);
  q.last_seq = seq;
  SKIRMISH_FAULT(9);
  ++q.count;  // one store publishes the slot: a death before it loses only this input
  return QueueResult::Queued;
}

StepOutcome step_locked(shm::MatchRow& row, const Ring& ring, std::uint32_t connected_mask) {
  // Order matters for a death at any point (the lock's repair step only
  // clamps indices): the module steps a copy in the spare buffer, published
  // is flipped, then tick follows, and the inputs are popped last. Dying
  // before the flip leaves the old state and every input in place; after
  // it, inputs stay queued and applied_seq (stored right after the flip,
  // before the pop) keeps them from reaching step() again; only a death
  // between the flip and that store hands them to the next step once more.
  const std::uint8_t* cur = published_locked(row, ring);
  if (cur == nullptr) return {std::uint32_t(row.tick), false, false};
  SKIRMISH_FAULT(1);
  const std::uint32_t seats = row.seat_count < shm::kMaxMatchPlayers ? row.seat_count : shm::kMaxMatchPlayers;
  skirmish_input items[shm::kMaxMatchPlayers * shm::kMaxQueuedInputs];
  std::uint32_t n = 0;
  std::uint32_t popped[shm::kMaxMatchPlayers] = {};
  for (std::uint32_t i = 0; i < seats; ++i) {
    const shm::SeatInputs& q = row.inputs[i];
    const std::uint32_t count = q.count < shm::kMaxQueuedInputs ? q.count : shm::kMaxQueuedInputs;
    for (std::uint32_t k = 0; k < count; ++k) {
      const shm::InputSlot& s = q.q[(q.head + k) % shm::kMaxQueuedInputs];
      if (s.len == 0 || s.len > shm::kMaxInputBytes || s.seq <= row.applied_seq[i]) continue;
      items[n++] = skirmish_input{std::uint8_t(i), s.len, 0, s.seq, s.bytes};
    }
    popped[i] = count;
  }
  const skirmish_inputs inputs{items, n, connected_mask};
  const std::uint32_t next_tick = std::uint32_t(row.tick) + 1;
  const std::uint32_t idx = next_tick % shm::kStateRing;
  std::uint8_t* out = ring.buffer(idx);
  row.state_len[idx] = 0;  // the spare is not a valid state while it is written
  std::memcpy(out, cur, ring.game->state_bytes / 2);
  SKIRMISH_FAULT(2);
  std::memcpy(out + ring.game->state_bytes / 2, cur + ring.game->state_bytes / 2,
              ring.game->state_bytes - ring.game->state_bytes / 2);
  SKIRMISH_FAULT(3);
  bool lost = false;
  if (ring.rec) lost = !record::append_tick_locked(ring.rec, next_tick, connected_mask, items, n);
  shm::shared_store(row.stepping, std::uint32_t{1});
  ring.game->step(out, &inputs, next_tick);
  shm::shared_store(row.stepping, std::uint32_t{0});
  row.state_len[idx] = ring.game->state_bytes;
  SKIRMISH_FAULT(4);
  shm::shared_store(row.published, idx);  // the flip
  SKIRMISH_FAULT(5);
  shm::shared_store(row.tick, std::uint64_t(next_tick));
  SKIRMISH_FAULT(6);
  for (std::uint32_t k = 0; k < n; ++k)
    if (items[k].seq > row.applied_seq[items[k].seat]) row.applied_seq[items[k].seat] = items[k].seq;
  SKIRMISH_FAULT(10);
  for (std::uint32_t i = 0; i < seats; ++i) {
    shm::SeatInputs& q = row.inputs[i];
    if (popped[i] == 0) continue;
    q.head = (q.head + popped[i]) % shm::kMaxQueuedInputs;
    q.count -= popped[i] <= q.count ? popped[i] : q.count;
  }
  SKIRMISH_FAULT(7);
  if (ring.rec) lost |= !record::append_hash_locked(ring.rec, next_tick, out, ring.game->state_bytes);
  skirmish_outcome o{};
  ring.game->outcome(out, &o);
  return {next_tick, o.end != SKIRMISH_RUNNING, true, lost};
}

bool outcome_locked(const shm::MatchRow& row, const Ring& ring, skirmish_outcome& out) {
  const std::uint8_t* cur = published_locked(row, ring);
  if (cur == nullptr) return false;
  out = skirmish_outcome{};
  ring.game->outcome(cur, &out);
  return true;
}

}  // namespace skirmish::match
