// Snapshot reconstruction: full and delta Snapshots in, whole worlds out.
//
// The server sends one Snapshot per tick. base_tick == 0 means full (the
// entities are the whole world); base_tick == B means a delta against the
// world the client held at tick B (listed entities replace or insert by id,
// ids in `removed` are erased). The client acknowledges the newest tick it
// holds in every Input (ack_tick), and the server deltas against that.
//
// SnapshotHistory keeps the last `depth` reconstructed worlds in a ring
// indexed by tick % depth, so a delta may name any recent base, not only
// the newest (the ack the server saw is one round trip old). A delta whose
// base is not in the ring (too old, another match, never received) is
// refused as MissingBase and the caller counts it: the server sends a full
// snapshot once the acks stop matching what it sent.
//
// No I/O, no clock, no allocation once warm: the ring's entity vectors and
// one scratch world are reused, and a result is built in the scratch world
// and swapped into its slot. Nothing the server sends is asserted on:
// duplicate ids keep the last one, unknown removed ids are ignored, absent
// vectors read as empty.
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/skirmish_generated.h"

namespace skirmish::client {

// One reconstructed state of a match.
struct World {
  uint32_t match_id = 0;
  uint32_t tick = 0;
  uint32_t last_input_seq = 0;  // newest Input.seq of this client applied
  uint32_t time_left_ms = 0;
  std::vector<proto::Entity> entities;  // sorted by id, ids unique

  // Binary search by entity id; nullptr when absent.
  const proto::Entity* find(uint16_t id) const;
};

enum class ApplyResult : uint8_t {
  Full,         // base_tick 0: the world is the snapshot's entities
  Delta,        // applied on top of the world at base_tick
  MissingBase,  // delta whose base world is not held; skipped
  Stale,        // tick not newer than the newest world of the same match; skipped
};

class SnapshotHistory {
 public:
  static constexpr uint32_t kDefaultDepth = 32;

  // depth: worlds kept (1..1024; out of range is clamped). The ring is
  // allocated on the first snapshot, so a client that never plays pays
  // nothing for it.
  explicit SnapshotHistory(uint32_t depth = kDefaultDepth);

  // Applies one verified Snapshot. On Full or Delta the result is newest().
  ApplyResult apply(const proto::Snapshot& s);

  // The newest world applied, or nullptr before the first one (and after
  // reset()).
  const World* newest() const { return newest_ < 0 ? nullptr : &ring_[size_t(newest_)].world; }
  // The tick to acknowledge: the newest world's tick, 0 when none.
  uint32_t ack_tick() const { return newest_ < 0 ? 0 : ring_[size_t(newest_)].world.tick; }
  // The world held for (match_id, tick), or nullptr.
  const World* find(uint32_t match_id, uint32_t tick) const;

  // Forgets every world (a new match, a new connection). Keeps the memory.
  void reset();

  uint32_t depth() const { return depth_; }

 private:
  struct Slot {
    World world;
    bool valid = false;
  };

  // Inserts or replaces `e` in the sorted vector `v`.
  static void upsert(std::vector<proto::Entity>& v, const proto::Entity& e);

  uint32_t depth_;
  std::vector<Slot> ring_;  // empty until the first snapshot
  World scratch_;           // the next world is built here, then swapped in
  int newest_ = -1;         // ring index of the newest world, -1 none
};

}  // namespace skirmish::client
