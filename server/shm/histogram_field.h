// Recording into a process-local copy of shm::ShmHistogram, published into
// the process row with shared stores (as the counters are). No lock: one
// writer per row.
#pragma once

#include <cstdint>

#include "shm/atomic_field.h"
#include "shm/tables.h"

namespace skirmish::shm {

inline void hist_record(ShmHistogram& h, const std::uint64_t (&bounds)[kHistBuckets - 1], std::uint64_t v) {
  std::uint32_t i = 0;
  while (i < kHistBuckets - 1 && v > bounds[i]) ++i;
  ++h.buckets[i];
  h.sum += v;
  ++h.count;
}

inline void hist_publish(ShmHistogram& to, const ShmHistogram& from) {
  for (std::uint32_t i = 0; i < kHistBuckets; ++i) shared_store(to.buckets[i], from.buckets[i]);
  shared_store(to.sum, from.sum);
  shared_store(to.count, from.count);
}

}  // namespace skirmish::shm
