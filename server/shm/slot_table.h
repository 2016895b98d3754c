// A fixed-capacity table of rows in shared memory, addressed by Handle.
//
// Contract
// - In the segment a table is three regions (see layout.h): a
//   SlotTableControl (lock, counters, free-list cursor), a free ring of u32
//   slot indices, and `capacity` rows. SlotTable<Row> is a process-local view
//   (three pointers) over them; copy it freely, it owns nothing.
// - Every row carries `uint32_t gen` and `uint32_t used` and a
//   `reset_payload()` member that clears everything else the table may clear
//   (MatchRow keeps its own mutex and state buffers).
// - alloc() takes a free slot, bumps its generation (handle.h), runs the
//   optional initialiser on the row, then sets `used` with a release store:
//   a process that scans used rows (for_each_used) never sees a half-filled
//   row. release() rejects a stale handle. Both hold the table lock for a few
//   stores only. get() takes no lock: it checks `used` and `gen` (acquire
//   loads) and returns the row or nullptr. A row's payload belongs to its
//   owner (the process that allocated it, or whoever the design hands it to);
//   fields others read while the owner writes go through atomic_field.h.
// - Free slots are reused FIFO, not LIFO, so a slot is reallocated as late as
//   possible and a stale wire id aliases (gen wraps after 4095 reuses of the
//   same slot) as late as possible.
// - Repair (a process died holding the table lock): the free ring, its
//   cursor and `count` are rebuilt from the `used` flags, which are the single
//   source of truth. Every step of alloc/release leaves the flags meaningful,
//   so a death at any point leaves a consistent table; at worst a slot whose
//   allocator died before handing the handle out stays used, and the
//   supervisor's cleanup of that process's rows frees it.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "shm/atomic_field.h"
#include "shm/handle.h"
#include "shm/robust_mutex.h"

namespace skirmish::shm {

struct alignas(64) SlotTableControl {
  RobustMutex lock;
  std::uint32_t capacity;
  std::uint32_t count;       // rows in use (shared_load for metrics)
  std::uint32_t free_head;   // ring index of the next slot alloc() hands out
  std::uint32_t free_count;  // entries in the ring
  std::uint32_t high_water;  // most rows ever in use at once
  std::uint32_t reserved0;
  std::uint64_t allocs;          // successful alloc() calls
  std::uint64_t alloc_failures;  // alloc() while full
  std::uint64_t recoveries;      // EOWNERDEAD repairs of this table
};
static_assert(std::is_trivially_copyable_v<SlotTableControl>);
static_assert(std::is_standard_layout_v<SlotTableControl>);
static_assert(sizeof(SlotTableControl) == 128);

template <class Row>
concept SlotRow =
    std::is_trivially_copyable_v<Row> && std::is_standard_layout_v<Row> &&
    std::same_as<decltype(Row::gen), std::uint32_t> &&
    std::same_as<decltype(Row::used), std::uint32_t> &&
    requires(Row& r) { r.reset_payload(); };

template <SlotRow Row>
class SlotTable {
 public:
  SlotTable() = default;
  SlotTable(SlotTableControl* control, std::uint32_t* free_ring, Row* rows,
            std::uint32_t* corrupt_flag, const char* name)
      : ctl_(control),
        ring_(free_ring),
        rows_(rows),
        corrupt_(corrupt_flag),
        name_(name) {}

  // Formats a table in fresh (zeroed) memory. Returns 0 or an errno value.
  // Row-specific setup (MatchRow's mutex) is the caller's.
  static int format(SlotTableControl& control, std::uint32_t* free_ring,
                    Row* rows, std::uint32_t capacity) {
    int rc = init_robust_mutex(control.lock);
    if (rc != 0) return rc;
    control.capacity = capacity;
    control.count = 0;
    control.free_head = 0;
    control.free_count = capacity;
    control.high_water = 0;
    control.allocs = 0;
    control.alloc_failures = 0;
    control.recoveries = 0;
    for (std::uint32_t i = 0; i < capacity; ++i) {
      free_ring[i] = i;
      rows[i].gen = 0;
      rows[i].used = 0;
    }
    return 0;
  }

  std::optional<Handle> alloc() const {
    return alloc([](Row&) {});
  }

  // `init(Row&)` runs under the table lock before the row is marked used:
  // plain field stores only, nothing that blocks or takes another lock.
  template <class Init>
  std::optional<Handle> alloc(Init&& init) const {
    Guard guard(ctl_->lock, &repair_thunk, const_cast<SlotTable*>(this));
    if (!guard.ok()) {
      mark_corrupt_and_report(corrupt_, name_, guard.error());
      return std::nullopt;
    }
    const std::uint32_t cap = ctl_->capacity;
    if (ctl_->free_count == 0) {
      shared_add(ctl_->alloc_failures, std::uint64_t{1});
      return std::nullopt;
    }
    std::uint32_t slot = ring_[ctl_->free_head];
    if (slot >= cap || shared_load(rows_[slot].used) != 0) {
      // Only memory corruption gets here; the used flags are the truth.
      repair_locked();
      if (ctl_->free_count == 0) {
        shared_add(ctl_->alloc_failures, std::uint64_t{1});
        return std::nullopt;
      }
      slot = ring_[ctl_->free_head];
    }
    Row& row = rows_[slot];
    const std::uint32_t gen = next_gen(row.gen);
    row.reset_payload();
    init(row);
    shared_store(row.gen, gen);
    shared_store(row.used, std::uint32_t{1});
    ctl_->free_head = (ctl_->free_head + 1) % cap;
    ctl_->free_count -= 1;
    const std::uint32_t count = ctl_->count + 1;
    shared_store(ctl_->count, count, std::memory_order_relaxed);
    shared_max(ctl_->high_water, count);
    shared_add(ctl_->allocs, std::uint64_t{1});
    return Handle{slot, gen};
  }

  // False when `h` is stale, out of range, or the lock failed.
  bool release(Handle h) const {
    if (h.slot >= capacity()) return false;
    Guard guard(ctl_->lock, &repair_thunk, const_cast<SlotTable*>(this));
    if (!guard.ok()) {
      mark_corrupt_and_report(corrupt_, name_, guard.error());
      return false;
    }
    Row& row = rows_[h.slot];
    if (shared_load(row.used) == 0 || shared_load(row.gen) != h.gen) {
      return false;
    }
    shared_store(row.used, std::uint32_t{0});
    const std::uint32_t cap = ctl_->capacity;
    ring_[(ctl_->free_head + ctl_->free_count) % cap] = h.slot;
    ctl_->free_count += 1;
    shared_store(ctl_->count, ctl_->count - 1, std::memory_order_relaxed);
    return true;
  }

  // The row, or nullptr when `h` is stale or out of range. No lock.
  Row* get(Handle h) const {
    if (h.slot >= capacity()) return nullptr;
    Row& row = rows_[h.slot];
    if (shared_load(row.used) == 0 || shared_load(row.gen) != h.gen) {
      return nullptr;
    }
    return &row;
  }

  Row* get_wire(std::uint32_t wire_id) const {
    auto h = from_wire(wire_id);
    return h ? get(*h) : nullptr;
  }

  // Calls f(Handle, Row&) for every row in use at the time it is visited.
  template <class F>
  void for_each_used(F&& f) const {
    const std::uint32_t cap = capacity();
    for (std::uint32_t slot = 0; slot < cap; ++slot) {
      Row& row = rows_[slot];
      if (shared_load(row.used) != 0) f(Handle{slot, shared_load(row.gen)}, row);
    }
  }

  // Takes the table lock (with repair), for tests and tools that inspect the
  // raw regions. Guaranteed copy elision lets the guard be returned.
  Guard lock() const {
    return Guard(ctl_->lock, &repair_thunk, const_cast<SlotTable*>(this));
  }
  Guard lock(std::chrono::milliseconds timeout) const {
    return Guard(ctl_->lock, timeout, &repair_thunk,
                 const_cast<SlotTable*>(this));
  }

  // True when the free ring and the used flags agree: every ring entry in
  // range, free and unique, free_count + count == capacity, count equal to
  // the number of used rows. Takes the lock (gives up after 5 s).
  bool check_consistent(std::string* why = nullptr) const {
    Guard guard = lock(std::chrono::milliseconds(5000));
    if (!guard.ok()) return fail(why, "could not lock the table");
    const std::uint32_t cap = ctl_->capacity;
    if (ctl_->free_count > cap) return fail(why, "free_count > capacity");
    if (ctl_->free_head >= cap) return fail(why, "free_head out of range");
    std::uint32_t used = 0;
    for (std::uint32_t i = 0; i < cap; ++i) {
      const std::uint32_t u = shared_load(rows_[i].used);
      if (u > 1) return fail(why, "used flag not 0/1");
      if (u == 1 && rows_[i].gen == 0) return fail(why, "used row with gen 0");
      used += u;
    }
    if (used != ctl_->count) return fail(why, "count != used rows");
    if (ctl_->free_count + ctl_->count != cap) {
      return fail(why, "free_count + count != capacity");
    }
    std::vector<bool> seen(cap, false);
    for (std::uint32_t k = 0; k < ctl_->free_count; ++k) {
      const std::uint32_t slot = ring_[(ctl_->free_head + k) % cap];
      if (slot >= cap) return fail(why, "free ring entry out of range");
      if (seen[slot]) return fail(why, "duplicate slot in free ring");
      if (rows_[slot].used != 0) return fail(why, "used slot in free ring");
      seen[slot] = true;
    }
    return true;
  }

  std::uint32_t capacity() const { return ctl_->capacity; }
  std::uint32_t size() const {
    return shared_load(ctl_->count, std::memory_order_relaxed);
  }
  std::uint32_t high_water() const {
    return shared_load(ctl_->high_water, std::memory_order_relaxed);
  }
  std::uint64_t allocs() const {
    return shared_load(ctl_->allocs, std::memory_order_relaxed);
  }
  std::uint64_t alloc_failures() const {
    return shared_load(ctl_->alloc_failures, std::memory_order_relaxed);
  }
  std::uint64_t recoveries() const {
    return shared_load(ctl_->recoveries, std::memory_order_relaxed);
  }

  // Raw regions, for tests and tools (construct torn states, dump tables).
  SlotTableControl& control() const { return *ctl_; }
  std::uint32_t* free_ring() const { return ring_; }
  Row& row_at(std::uint32_t slot) const { return rows_[slot]; }

 private:
  static bool fail(std::string* why, const char* what) {
    if (why != nullptr) *why = what;
    return false;
  }

  static void repair_thunk(void* self) {
    static_cast<const SlotTable*>(self)->repair_locked();
  }

  // Under the lock: rebuild ring, cursor and count from the used flags.
  void repair_locked() const {
    const std::uint32_t cap = ctl_->capacity;
    std::uint32_t used = 0;
    std::uint32_t free = 0;
    for (std::uint32_t slot = 0; slot < cap; ++slot) {
      Row& row = rows_[slot];
      if (shared_load(row.used) != 0) {
        if (row.used != 1) shared_store(row.used, std::uint32_t{1});
        if (row.gen == 0) shared_store(row.gen, next_gen(0));
        ++used;
      } else {
        ring_[free++] = slot;
      }
    }
    ctl_->free_head = 0;
    ctl_->free_count = free;
    shared_store(ctl_->count, used, std::memory_order_relaxed);
    shared_max(ctl_->high_water, used);
    shared_add(ctl_->recoveries, std::uint64_t{1});
  }

  SlotTableControl* ctl_ = nullptr;
  std::uint32_t* ring_ = nullptr;
  Row* rows_ = nullptr;
  std::uint32_t* corrupt_ = nullptr;
  const char* name_ = "slot table";
};

}  // namespace skirmish::shm
