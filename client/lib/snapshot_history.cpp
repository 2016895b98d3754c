#include "client/lib/snapshot_history.h"

#include <algorithm>
#include <utility>

namespace skirmish::client {

namespace {

constexpr uint32_t kMaxDepth = 1024;

auto lower_bound_id(std::vector<proto::Entity>& v, uint16_t id) {
  return std::lower_bound(v.begin(), v.end(), id,
                          [](const proto::Entity& e, uint16_t want) { return e.id() < want; });
}

}  // namespace

const proto::Entity* World::find(uint16_t id) const {
  auto it = std::lower_bound(entities.begin(), entities.end(), id,
                             [](const proto::Entity& e, uint16_t want) { return e.id() < want; });
  return it != entities.end() && it->id() == id ? &*it : nullptr;
}

SnapshotHistory::SnapshotHistory(uint32_t depth) : depth_(std::clamp<uint32_t>(depth, 1, kMaxDepth)) {}

void SnapshotHistory::upsert(std::vector<proto::Entity>& v, const proto::Entity& e) {
  // The server sends entities in id order, so the common case appends.
  if (v.empty() || v.back().id() < e.id()) {
    v.push_back(e);
    return;
  }
  auto it = lower_bound_id(v, e.id());
  if (it != v.end() && it->id() == e.id())
    *it = e;  // a duplicate id in one message: the last one wins
  else
    v.insert(it, e);
}

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
  const bool full = s.base_tick() == 0;
  if (full) {
    out.entities.clear();
  } else {
    const World* base = find(s.match_id(), s.base_tick());
    if (base == nullptr) return ApplyResult::MissingBase;
    out.entities.assign(base->entities.begin(), base->entities.end());
  }
  if (const auto* es = s.entities())
    for (const proto::Entity* e : *es) upsert(out.entities, *e);
  if (!full) {
    if (const auto* removed = s.removed()) {
      for (uint16_t id : *removed) {
        auto it = lower_bound_id(out.entities, id);
        if (it != out.entities.end() && it->id() == id) out.entities.erase(it);
      }
    }
  }
  out.match_id = s.match_id();
  out.tick = tick;
  out.last_input_seq = s.last_input_seq();
  out.time_left_ms = s.time_left_ms();

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
