// Snapshot reconstruction: full and delta Snapshots in, whole views out.
//
// The server sends one Snapshot per tick carrying the bytes this seat may
// see (the game module's view; the library never interprets them).
// base_tick == 0 means full (`view` is the view); base_tick == B means a
// generic byte delta against the view the client held at tick B
// (protocol/view_delta.h, PROTOCOL.md "View deltas"). The client
// acknowledges the newest tick it holds in every Input (ack_tick), and the
// server deltas against that.
//
// SnapshotHistory keeps the last `depth` reconstructed views in a ring
// indexed by tick % depth, so a delta may name any recent base, not only
// the newest (the ack the server saw is one round trip old). A delta whose
// base is not in the ring (too old, another match, never received) is
// refused as MissingBase, a delta that does not decode as BadDelta; the
// caller counts both, and the server sends a full view once the acks stop
// matching what it sent.
//
// No I/O, no clock, no allocation once warm: the ring's byte vectors and
// one scratch world are reused (each grows to the largest view seen, at
// most max_view_bytes), and a result is built in the scratch world and
// swapped into its slot. Nothing the server sends is asserted on.
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/skirmish_generated.h"

namespace skirmish::client {

// One reconstructed view of a match.
struct World {
  uint32_t match_id = 0;
  uint32_t tick = 0;
  uint32_t last_input_seq = 0;  // newest Input.seq of this client the game has seen
  std::vector<uint8_t> view;    // the game's bytes; decode with the game's own header

  const uint8_t* data() const { return view.data(); }
  uint32_t size() const { return uint32_t(view.size()); }
};

enum class ApplyResult : uint8_t {
  Full,         // base_tick 0: the world is the snapshot's view
  Delta,        // applied on top of the world at base_tick
  MissingBase,  // delta whose base world is not held; skipped
  BadDelta,     // the delta does not decode (or is longer than max_view_bytes); skipped
  Stale,        // tick not newer than the newest world of the same match; skipped
};

class SnapshotHistory {
 public:
  static constexpr uint32_t kDefaultDepth = 32;
  static constexpr uint32_t kDefaultMaxView = 65536;  // SKIRMISH_MAX_VIEW_BYTES

  // depth: worlds kept (1..1024; out of range is clamped). The ring is
  // allocated on the first snapshot, so a client that never plays pays
  // nothing for it. A view longer than max_view_bytes is refused.
  explicit SnapshotHistory(uint32_t depth = kDefaultDepth, uint32_t max_view_bytes = kDefaultMaxView);

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

  uint32_t depth_;
  uint32_t max_view_;
  std::vector<Slot> ring_;  // empty until the first snapshot
  World scratch_;           // the next world is built here, then swapped in
  int newest_ = -1;         // ring index of the newest world, -1 none
};

}  // namespace skirmish::client
