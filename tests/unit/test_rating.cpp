// Unit tests of server/matchmaking/rating: Glicko-2 against the worked
// example of Glickman's paper, and the free-for-all update built on it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "matchmaking/rating.h"

using namespace skirmish::matchmaking;

TEST_CASE("update_one reproduces the worked example of the Glicko-2 paper") {
  // Glickman, "Example of the Glicko-2 system", 2012: tau = 0.5. The paper
  // rounds its intermediate values and prints r' = 1464.06; unrounded
  // arithmetic gives 1464.0507, RD' 151.5165, sigma' 0.0599960.
  const Rating me{1500, 200, 0.06f};
  const std::vector<Rating> opponents{
      {1400, 30, 0.06f}, {1550, 100, 0.06f}, {1700, 300, 0.06f}};
  const std::vector<double> scores{1, 0, 0};
  const Rating out = update_one(me, opponents, scores, 0.5);
  CHECK(out.r == Approx(1464.06).margin(0.02));
  CHECK(out.rd == Approx(151.52).margin(0.01));
  CHECK(out.vol == Approx(0.05999).margin(0.00001));
  CHECK(out.vol < 0.06f);
}

TEST_CASE("update_one without games only widens rd, within the clamp") {
  const Rating me{1600, 100, 0.06f};
  const Rating out = update_one(me, {}, {}, 0.5);
  CHECK(out.r == me.r);
  CHECK(out.vol == me.vol);
  CHECK(out.rd == Approx(std::sqrt(100.0 * 100.0 +
                                   (0.06 * 173.7178) * (0.06 * 173.7178))));
  CHECK(update_one(Rating{1500, 350, 0.06f}, {}, {}, 0.5).rd == kRdMax);
}

TEST_CASE("update_one replaces unusable inputs instead of propagating them") {
  const std::vector<Rating> opponents{{NAN, INFINITY, -1}, {1500, 0, 0}};
  const std::vector<double> scores{1, 0.5};
  const Rating out = update_one(Rating{NAN, NAN, NAN}, opponents, scores, -1);
  CHECK(std::isfinite(out.r));
  CHECK(out.rd >= kRdMin);
  CHECK(out.rd <= kRdMax);
  CHECK(std::isfinite(out.vol));
  CHECK(out.vol > 0);
}

TEST_CASE("update_ffa: the winner gains, the last loses, rd shrinks") {
  const std::vector<Rating> players(4, Rating{1500, 200, 0.06f});
  const std::vector<std::uint8_t> places{1, 2, 3, 4};
  const std::vector<Rating> out = update_ffa(players, places);
  REQUIRE(out.size() == 4);
  CHECK(out[0].r > 1500);
  CHECK(out[3].r < 1500);
  CHECK(out[0].r > out[1].r);
  CHECK(out[1].r > out[2].r);
  CHECK(out[2].r > out[3].r);
  for (const Rating& r : out) CHECK(r.rd < 200);
  // Symmetric places around the middle move symmetrically.
  CHECK(out[0].r - 1500 == Approx(1500 - out[3].r).margin(1e-3));
}

TEST_CASE("update_ffa: equal places between equal ratings leave r unchanged") {
  const std::vector<Rating> players(3, Rating{1720, 120, 0.06f});
  const std::vector<std::uint8_t> places{2, 2, 2};
  const std::vector<Rating> out = update_ffa(players, places);
  REQUIRE(out.size() == 3);
  for (const Rating& r : out) {
    CHECK(r.r == Approx(1720).margin(1e-3));
    CHECK(r.rd < 120);
  }
  // A two-way tie for first among four: the tied pair moves together.
  const std::vector<Rating> four(4, Rating{1500, 200, 0.06f});
  const std::vector<Rating> tied =
      update_ffa(four, std::vector<std::uint8_t>{1, 1, 3, 4});
  CHECK(tied[0].r == tied[1].r);
  CHECK(tied[0].r > 1500);
}

TEST_CASE("update_ffa: the sum of rating changes is about zero for equal RDs") {
  // Equal ratings and RDs: exactly symmetric, so zero up to rounding.
  const std::vector<Rating> same(8, Rating{1500, 200, 0.06f});
  const std::vector<Rating> moved_same =
      update_ffa(same, std::vector<std::uint8_t>{3, 1, 4, 1, 5, 2, 6, 5});
  double total = 0;
  for (const Rating& r : moved_same) total += r.r - 1500;
  CHECK(std::fabs(total) < 0.01);

  // Spread ratings, random places: each player's own phi' differs, so the
  // sum is only roughly zero (a few percent of the total movement).
  std::mt19937 rng(7);
  std::normal_distribution<float> rating(1500, 100);
  for (int trial = 0; trial < 50; ++trial) {
    const std::size_t n = 2 + trial % 15;
    std::vector<Rating> players(n);
    for (Rating& p : players) p = Rating{rating(rng), 200, 0.06f};
    std::vector<std::uint8_t> places(n);
    std::iota(places.begin(), places.end(), std::uint8_t{1});
    std::shuffle(places.begin(), places.end(), rng);
    const std::vector<Rating> out = update_ffa(players, places);
    REQUIRE(out.size() == n);
    double sum = 0;
    double moved = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += out[i].r - players[i].r;
      moved += std::fabs(out[i].r - players[i].r);
      CHECK(out[i].rd < players[i].rd);  // a match is information
    }
    CHECK(std::fabs(sum) <= 0.1 * moved + 0.01);
  }
}

TEST_CASE("update_ffa is order independent") {
  std::mt19937 rng(11);
  std::normal_distribution<float> rating(1500, 300);
  std::uniform_real_distribution<float> rd(30, 350);
  for (int trial = 0; trial < 20; ++trial) {
    const std::size_t n = 2 + trial % 15;
    std::vector<Rating> players(n);
    for (Rating& p : players) p = Rating{rating(rng), rd(rng), 0.06f};
    std::vector<std::uint8_t> places(n);
    for (auto& p : places)
      p = static_cast<std::uint8_t>(1 + rng() % n);  // ties too
    const std::vector<Rating> out = update_ffa(players, places);

    std::vector<std::size_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<Rating> p2(n);
    std::vector<std::uint8_t> pl2(n);
    for (std::size_t i = 0; i < n; ++i) {
      p2[i] = players[perm[i]];
      pl2[i] = places[perm[i]];
    }
    const std::vector<Rating> out2 = update_ffa(p2, pl2);
    REQUIRE(out2.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(out2[i].r == out[perm[i]].r);
      CHECK(out2[i].rd == out[perm[i]].rd);
      CHECK(out2[i].vol == out[perm[i]].vol);
    }
  }
}

TEST_CASE("update_ffa keeps rd within the clamp and refuses mismatched spans") {
  const std::vector<Rating> players{{1500, 30, 0.06f}, {1500, 30, 0.06f}};
  const std::vector<Rating> out =
      update_ffa(players, std::vector<std::uint8_t>{1, 2});
  REQUIRE(out.size() == 2);
  for (const Rating& r : out) CHECK(r.rd >= kRdMin);
  CHECK(update_ffa(players, std::vector<std::uint8_t>{1}).empty());
  CHECK(update_ffa({}, {}).empty());
}
