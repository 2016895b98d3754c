// A log-linear latency histogram: fixed memory, O(1) record, mergeable.
// Used by skirmish-loadtest (one per metric per thread, merged once a
// second) and by the benchmarks.
//
// Values are nanoseconds (any u64). Below 128 every value has its own bucket;
// above, each power of two is split into 64 equal buckets, so a reported
// percentile is within 1/64 (1.6 %) of the true sample: plenty for figures
// printed with three significant digits. 3,776 buckets cover the whole u64
// range, about 30 KiB, however long the run. (HdrHistogram does the same
// with a configurable precision; Debian does not package it.)
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace skirmish::loadtest {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 6;                 // 64 buckets per power of two
  static constexpr uint64_t kSub = uint64_t(1) << kSubBits;
  static constexpr size_t kBuckets = (64 - kSubBits) * kSub + 2 * kSub;

  void record(uint64_t v) {
    ++counts_[index_of(v)];
    ++total_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (total_ == 1 || v < min_) min_ = v;
  }

  // Adds every sample of `o` (same bucket layout: exact).
  void merge(const Histogram& o) {
    if (o.total_ == 0) return;
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    if (total_ == 0 || o.min_ < min_) min_ = o.min_;
    if (o.max_ > max_) max_ = o.max_;
    total_ += o.total_;
    sum_ += o.sum_;
  }
  void reset() { *this = Histogram(); }

  uint64_t count() const { return total_; }
  double mean() const { return total_ == 0 ? 0.0 : double(sum_) / double(total_); }
  uint64_t max() const { return max_; }
  uint64_t min() const { return min_; }

  // The value at quantile q (0 < q <= 1): the midpoint of the bucket that
  // holds the ceil(q * count)-th smallest sample, clamped to [min, max].
  // 0 when empty.
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = uint64_t(q * double(total_));
    if (double(rank) < q * double(total_)) ++rank;  // ceil
    if (rank < 1) rank = 1;
    if (rank > total_) rank = total_;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        uint64_t mid = lower_of(i) + (width_of(i) - 1) / 2;
        if (mid < min_) mid = min_;
        if (mid > max_) mid = max_;
        return mid;
      }
    }
    return max_;
  }

  static size_t index_of(uint64_t v) {
    if (v < 2 * kSub) return size_t(v);
    unsigned msb = 63u - unsigned(std::countl_zero(v));  // >= kSubBits + 1
    unsigned shift = msb - kSubBits;                     // v >> shift in [kSub, 2*kSub)
    return size_t(shift) * kSub + size_t(v >> shift);
  }
  static uint64_t lower_of(size_t i) {
    if (i < 2 * kSub) return i;
    uint64_t shift = i / kSub - 1;
    return (uint64_t(i) - shift * kSub) << shift;
  }
  static uint64_t width_of(size_t i) {
    if (i < 2 * kSub) return 1;
    return uint64_t(1) << (i / kSub - 1);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = 0;
  uint64_t sum_ = 0;  // wraps only past 584 years of nanoseconds
};

}  // namespace skirmish::loadtest
