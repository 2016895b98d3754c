// Fixed-bucket histograms in shared memory (ShmHistogram, in a process's
// row: shm/counters.h), recorded into a process-local copy and published
// into the row with shared stores, as the counters are. No lock: one writer
// per row.
#pragma once

#include <cstdint>

#include "shm/atomic_field.h"

namespace skirmish::shm {

inline constexpr std::uint32_t kHistBuckets = 12;  // 11 bounds + +Inf
inline constexpr std::uint64_t kHistBoundsUs[kHistBuckets - 1] = {50,    100,   250,   500,    1000,  2500,
                                                                  5000,  10000, 25000, 50000, 100000};
inline constexpr std::uint64_t kWaitBoundsMs[kHistBuckets - 1] = {100,  250,   500,   1000,  2000, 5000,
                                                                  10000, 20000, 30000, 60000, 120000};

// Counts per bucket (not cumulative; the last is +Inf), the sum and the
// count, in the units of its bounds.
struct ShmHistogram {
  std::uint64_t buckets[kHistBuckets];
  std::uint64_t sum;
  std::uint64_t count;
};
static_assert(sizeof(ShmHistogram) == 112);

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
