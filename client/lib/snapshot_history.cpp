#include "client/lib/snapshot_history.h"

#include <algorithm>
#include <utility>

#include "protocol/view_delta.h"

namespace skirmish::client {

namespace {
constexpr uint32_t kMaxDepth = 1024;
}  // namespace

SnapshotHistory::SnapshotHistory(uint32_t depth, uint32_t max_view_bytes)
    : depth_(std::clamp<uint32_t>(depth, 1, kMaxDepth)), max_view_(max_view_bytes) {}

const World* SnapshotHistory::find(uint32_t match_id, uint32_t tick) const {
  if (ring_.empty()) return nullptr;
  const Slot& s = ring_[tick % depth_];
  return s.valid && s.world.tick == tick && s.world.match_id == match_id ? &s.world : nullptr;
}

ApplyResult SnapshotHistory::apply(const proto::Snapshot& s) {
  if (ring_.empty()) ring_.resize(depth_);
  const uint32_t tick = s.tick();
  if (const World* n = newest(); n != nullptr && n->match_id == s.match_id() && tick <= n->tick)
    return ApplyResult::Stale;

  World& out = scratch_;
  const uint8_t* bytes = s.view() != nullptr ? s.view()->data() : nullptr;
  const size_t len = s.view() != nullptr ? s.view()->size() : 0;
  const bool full = s.base_tick() == 0;
  if (full) {
    if (len > max_view_) return ApplyResult::BadDelta;
    out.view.assign(bytes, bytes + len);
  } else {
    const World* base = find(s.match_id(), s.base_tick());
    if (base == nullptr) return ApplyResult::MissingBase;
    // Decoded into one per-thread buffer shared by every history (a load
    // tester holds thousands), then copied at its decoded length.
    thread_local std::vector<uint8_t> decoded(kDefaultMaxView);
    size_t n = 0;
    const size_t cap = std::min<size_t>(max_view_, decoded.size());
    if (proto::apply_delta(base->view.data(), base->view.size(), bytes, len, decoded.data(), cap, &n) !=
        proto::DeltaError::None)
      return ApplyResult::BadDelta;
    out.view.assign(decoded.data(), decoded.data() + n);
  }
  out.match_id = s.match_id();
  out.tick = tick;
  out.last_input_seq = s.last_input_seq();

  // The base may live in the very slot this tick lands in (tick - base a
  // multiple of depth): it was read above, before the swap overwrites it.
  const size_t idx = tick % depth_;
  std::swap(ring_[idx].world, scratch_);
  ring_[idx].valid = true;
  newest_ = int(idx);
  return full ? ApplyResult::Full : ApplyResult::Delta;
}

void SnapshotHistory::reset() {
  for (Slot& s : ring_) s.valid = false;
  newest_ = -1;
}

}  // namespace skirmish::client
