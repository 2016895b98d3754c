// loadtest/histogram.h against exact percentiles of random data.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "loadtest/histogram.h"

using skirmish::loadtest::Histogram;

namespace {

// The exact q-quantile as the histogram defines it: the ceil(q*n)-th smallest.
uint64_t exact(const std::vector<uint64_t>& sorted, double q) {
  size_t rank = size_t(std::ceil(q * double(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void check_close(uint64_t got, uint64_t want) {
  // Within one bucket: 1/64 of the value above 128, exact below.
  const double tol = want < 128 ? 0.0 : double(want) / 64.0 + 1.0;
  INFO("got " << got << ", exact " << want);
  REQUIRE(std::fabs(double(got) - double(want)) <= tol);
}

}  // namespace

TEST_CASE("histogram percentiles match exact ones within the bucket error") {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> lat(std::log(2e6), 1.0);  // ~2 ms median, long tail
  std::uniform_int_distribution<uint64_t> small(0, 300);
  for (int trial = 0; trial < 20; ++trial) {
    Histogram h;
    std::vector<uint64_t> v;
    const int n = 1000 + trial * 5000;
    for (int i = 0; i < n; ++i) {
      const uint64_t x = trial % 4 == 3 ? small(rng) : uint64_t(lat(rng));
      v.push_back(x);
      h.record(x);
    }
    std::sort(v.begin(), v.end());
    REQUIRE(h.count() == v.size());
    REQUIRE(h.min() == v.front());
    REQUIRE(h.max() == v.back());
    for (double q : {0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0}) check_close(h.quantile(q), exact(v, q));
    double sum = 0;
    for (uint64_t x : v) sum += double(x);
    REQUIRE(h.mean() == Approx(sum / double(v.size())).epsilon(1e-9));
  }
}

TEST_CASE("histogram buckets tile the whole u64 range") {
  for (uint64_t v : {uint64_t(0), uint64_t(1), uint64_t(127), uint64_t(128), uint64_t(129), uint64_t(1) << 40,
                     (uint64_t(1) << 40) + 12345, ~uint64_t(0)}) {
    const size_t i = Histogram::index_of(v);
    REQUIRE(i < Histogram::kBuckets);
    REQUIRE(v >= Histogram::lower_of(i));
    REQUIRE(v - Histogram::lower_of(i) < Histogram::width_of(i));
  }
  for (size_t i = 1; i < Histogram::kBuckets; ++i)
    REQUIRE(Histogram::lower_of(i) == Histogram::lower_of(i - 1) + Histogram::width_of(i - 1));
}

TEST_CASE("merging histograms equals recording every sample in one") {
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> e(1e-6);
  Histogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    const uint64_t x = uint64_t(e(rng));
    (i % 3 == 0 ? a : b).record(x);
    all.record(x);
  }
  a.merge(b);
  REQUIRE(a.count() == all.count());
  REQUIRE(a.min() == all.min());
  REQUIRE(a.max() == all.max());
  for (double q : {0.5, 0.9, 0.99, 0.9999}) REQUIRE(a.quantile(q) == all.quantile(q));
  Histogram empty;
  REQUIRE(empty.quantile(0.99) == 0);
  a.reset();
  REQUIRE(a.count() == 0);
}
