// Unit tests of server/matchmaking/matchmaker: the window, the rules of a
// match (size, modes, parties, spread), a simulated coordinator loop over a
// thousand tickets, and the cost of one call over ten thousand.
//
// Time is simulated: form_matches takes now_ms, so nothing here sleeps.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "matchmaking/matchmaker.h"

using namespace skirmish::matchmaking;

namespace {

constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();

Params default_params() { return Params{4, 100, 50, 30000}; }

Ticket solo(std::uint32_t id, float rating, std::int64_t joined_ms = 0,
            std::uint8_t mode = 0) {
  return Ticket{id, rating, joined_ms, 0, 1, mode};
}

Ticket member(std::uint32_t id, float rating, std::uint32_t key,
              std::uint8_t size, std::int64_t joined_ms = 0,
              std::uint8_t mode = 0) {
  return Ticket{id, rating, joined_ms, key, size, mode};
}

// Checks every rule of the contract for the matches of one call over
// `pool`; returns the matched ids. `strict_spread_checked` counts the
// matches whose oldest unit was within max wait (the spread rule applies).
std::set<std::uint32_t> check_matches(
    const Params& params, const std::vector<Ticket>& pool,
    const std::vector<Match>& matches, std::int64_t now_ms,
    std::size_t* strict_spread_checked = nullptr) {
  std::map<std::uint32_t, const Ticket*> by_id;
  std::map<std::uint32_t, std::size_t> party_present;
  for (const Ticket& t : pool) {
    by_id.emplace(t.id, &t);
    if (t.party_key != 0) ++party_present[t.party_key];
  }
  std::set<std::uint32_t> matched;
  for (const Match& m : matches) {
    REQUIRE(m.tickets.size() == params.match_size);
    std::map<std::uint32_t, std::vector<const Ticket*>>
        units;                             // key -> members
    std::uint32_t solo_key = 0x80000000u;  // keys for solos
    std::set<std::uint8_t> modes;
    for (const std::uint32_t id : m.tickets) {
      REQUIRE(by_id.count(id) == 1);       // only tickets given
      REQUIRE(matched.insert(id).second);  // at most once per call
      const Ticket& t = *by_id[id];
      modes.insert(t.mode);
      units[t.party_key != 0 ? t.party_key : solo_key++].push_back(&t);
    }
    REQUIRE(modes.size() == 1);  // modes never mix
    double lo = 1e30, hi = -1e30;
    std::uint32_t min_window = kUnbounded;
    std::int64_t oldest_age = std::numeric_limits<std::int64_t>::min();
    for (const auto& [key, members] : units) {
      if (key < 0x80000000u) {
        // A party: complete (every member present and in this match).
        REQUIRE(members.size() == members.front()->party_size);
        REQUIRE(party_present[key] == members.size());
      }
      double sum = 0;
      std::int64_t joined = std::numeric_limits<std::int64_t>::max();
      for (const Ticket* t : members) {
        sum += t->rating;
        joined = std::min(joined, t->joined_ms);
      }
      const double rating = sum / static_cast<double>(members.size());
      lo = std::min(lo, rating);
      hi = std::max(hi, rating);
      const std::int64_t age = now_ms - joined;
      oldest_age = std::max(oldest_age, age);
      min_window = std::min(min_window, window_at(params, age));
    }
    CHECK(m.rating_spread == Approx(hi - lo).margin(1e-3));
    if (oldest_age < static_cast<std::int64_t>(params.max_wait_ms)) {
      CHECK(hi - lo <= static_cast<double>(min_window));
      if (strict_spread_checked != nullptr) ++*strict_spread_checked;
    }
  }
  return matched;
}

}  // namespace

TEST_CASE("window_at widens with the wait and is unbounded at max wait") {
  const Params p = default_params();
  CHECK(window_at(p, 0) == 100);
  CHECK(window_at(p, -5000) == 100);  // joined "in the future": no widening
  CHECK(window_at(p, 999) == 149);    // 50 * 999 / 1000 = 49.95, rounded down
  CHECK(window_at(p, 1000) == 150);
  CHECK(window_at(p, 10000) == 600);
  CHECK(window_at(p, 29999) == 1599);
  CHECK(window_at(p, 30000) == kUnbounded);
  CHECK(window_at(p, std::numeric_limits<std::int64_t>::max()) == kUnbounded);

  // Saturation below max wait.
  const Params big{4, kUnbounded - 10, 1000, kUnbounded};
  CHECK(window_at(big, 0) == kUnbounded - 10);
  CHECK(window_at(big, 5) == kUnbounded - 5);
  CHECK(window_at(big, 1000) == kUnbounded);
  const Params fast{4, 0, kUnbounded, kUnbounded};
  CHECK(window_at(fast, static_cast<std::int64_t>(kUnbounded) - 1) ==
        kUnbounded);
  // max_wait_ms = 0: unbounded from the start.
  CHECK(window_at(Params{4, 100, 50, 0}, 0) == kUnbounded);
}

TEST_CASE("form_matches groups close ratings and leaves far ones waiting") {
  const Params p = default_params();
  const std::vector<Ticket> pool{solo(1, 1500), solo(2, 1520), solo(3, 1480),
                                 solo(4, 1550), solo(5, 2400), solo(6, 900)};
  const auto matches = form_matches(p, pool, 0);
  REQUIRE(matches.size() == 1);
  check_matches(p, pool, matches, 0);
  CHECK(std::set<std::uint32_t>(matches[0].tickets.begin(),
                                matches[0].tickets.end()) ==
        std::set<std::uint32_t>{1, 2, 3, 4});
  CHECK(matches[0].rating_spread == Approx(70));

  // Too wide for a fresh window (spread 160 > 100); fine after 2 s (200).
  const std::vector<Ticket> wide{solo(1, 1500), solo(2, 1560), solo(3, 1600),
                                 solo(4, 1660)};
  CHECK(form_matches(p, wide, 0).empty());
  CHECK(form_matches(p, wide, 1000).empty());  // 150 < 160
  const auto later = form_matches(p, wide, 2000);
  REQUIRE(later.size() == 1);
  check_matches(p, wide, later, 2000);
}

TEST_CASE("the spread must fit the window of every unit, not only the oldest") {
  const Params p = default_params();
  // Ticket 1 has waited 20 s (window 1100); the others are fresh (100).
  const std::vector<Ticket> pool{solo(1, 1500, -20000), solo(2, 1560),
                                 solo(3, 1620), solo(4, 1700)};
  CHECK(form_matches(p, pool, 0).empty());  // spread 200 > 100
  // Past max wait, the oldest takes the nearest players regardless.
  const std::vector<Ticket> overdue{solo(1, 1500, -30000), solo(2, 1560),
                                    solo(3, 1620), solo(4, 1700),
                                    solo(5, 2600)};
  const auto matches = form_matches(p, overdue, 0);
  REQUIRE(matches.size() == 1);
  CHECK(matches[0].tickets.front() == 1);
  CHECK(std::set<std::uint32_t>(matches[0].tickets.begin(),
                                matches[0].tickets.end()) ==
        std::set<std::uint32_t>{1, 2, 3, 4});
  check_matches(p, overdue, matches, 0);
}

TEST_CASE("modes never mix") {
  const Params p = default_params();
  std::vector<Ticket> pool;
  for (std::uint32_t i = 0; i < 6; ++i) pool.push_back(solo(i + 1, 1500, 0, 0));
  for (std::uint32_t i = 6; i < 12; ++i)
    pool.push_back(solo(i + 1, 1500, 0, 1));
  const auto matches = form_matches(p, pool, 0);
  CHECK(matches.size() == 2);
  check_matches(p, pool, matches, 0);
  // Even past max wait.
  const auto late = form_matches(p, pool, 60000);
  CHECK(late.size() == 2);
  check_matches(p, pool, late, 60000);
}

TEST_CASE("parties: matched whole and only once complete, never split") {
  const Params p = default_params();
  // A party of 3 with two members present, plus solos, all long overdue.
  std::vector<Ticket> pool{member(1, 1500, 77, 3, -60000),
                           member(2, 1510, 77, 3, -60000),
                           solo(10, 1500, -60000), solo(11, 1505, -60000)};
  CHECK(
      form_matches(p, pool, 0).empty());  // 2 solos + an incomplete party: no 4
  pool.push_back(solo(12, 1490, -60000));
  pool.push_back(solo(13, 1495, -60000));
  auto matches = form_matches(p, pool, 0);
  REQUIRE(matches.size() == 1);  // the four solos; the party still waits
  for (const std::uint32_t id : matches[0].tickets) CHECK(id >= 10);
  check_matches(p, pool, matches, 0);

  // The third member arrives: the party of 3 takes one solo.
  pool = {member(1, 1500, 77, 3, -60000), member(2, 1510, 77, 3, -60000),
          member(3, 1490, 77, 3, 0), solo(10, 1500, 0), solo(11, 1900, 0)};
  matches = form_matches(p, pool, 0);
  REQUIRE(matches.size() == 1);
  CHECK(std::set<std::uint32_t>(matches[0].tickets.begin(),
                                matches[0].tickets.end()) ==
        std::set<std::uint32_t>{1, 2, 3, 10});
  check_matches(p, pool, matches, 0);

  // A party of 3 skips a nearer party of 2 to fill its one seat.
  pool = {member(1, 1500, 5, 3), member(2, 1500, 5, 3), member(3, 1500, 5, 3),
          member(4, 1501, 6, 2), member(5, 1501, 6, 2), solo(6, 1540)};
  matches = form_matches(p, pool, 0);
  REQUIRE(matches.size() == 1);
  CHECK(std::set<std::uint32_t>(matches[0].tickets.begin(),
                                matches[0].tickets.end()) ==
        std::set<std::uint32_t>{1, 2, 3, 6});
  check_matches(p, pool, matches, 0);

  // A party of match_size is a match on its own; two parties of 2 make one.
  pool = {member(1, 1000, 8, 4),  member(2, 2000, 8, 4), member(3, 1500, 8, 4),
          member(4, 1500, 8, 4),  member(5, 1500, 9, 2), member(6, 1500, 9, 2),
          member(7, 1550, 10, 2), member(8, 1530, 10, 2)};
  matches = form_matches(p, pool, 0);
  REQUIRE(matches.size() == 2);
  check_matches(p, pool, matches, 0);
  // A party's rating is the mean of its members: 1500 here, spread 0.
  CHECK(matches[0].rating_spread == 0);
}

TEST_CASE("invalid parties are reported and never matched") {
  const Params p = default_params();
  std::vector<Ticket> pool{
      member(1, 1500, 40, 5),
      member(2, 1500, 40, 5),  // larger than match_size
      member(3, 1500, 41, 2),
      member(4, 1500, 41, 3),  // party_size disagrees
      member(5, 1500, 42, 2, 0, 0),
      member(6, 1500, 42, 2, 0, 1),  // modes disagree
      member(7, 1500, 43, 2),
      member(8, 1500, 43, 2),
      member(9, 1500, 43, 2),   // too many
      member(10, 1500, 44, 0),  // party_size 0
      member(11, 1500, 45, 3),
      member(12, 1500, 45, 3),  // incomplete: waits
  };
  for (std::uint32_t i = 0; i < 8; ++i)
    pool.push_back(solo(100 + i, 1500, -60000));
  std::vector<std::uint32_t> invalid{999};  // cleared by the call
  const auto matches = form_matches(p, pool, 0, &invalid);
  CHECK(invalid == std::vector<std::uint32_t>{40, 41, 42, 43, 44});
  REQUIRE(matches.size() == 2);
  for (const Match& m : matches) {
    for (const std::uint32_t id : m.tickets) CHECK(id >= 100);
  }
  check_matches(p, pool, matches, 0);
}

TEST_CASE("odd inputs: duplicate ids, non-finite ratings, bad match_size") {
  const Params p = default_params();
  const std::vector<Ticket> dup{solo(1, 1500), solo(1, 1500), solo(1, 1500),
                                solo(1, 1500), solo(2, 1500), solo(3, 1500)};
  CHECK(form_matches(p, dup, 0).empty());  // only 3 distinct tickets
  const std::vector<Ticket> nan{solo(1, NAN), solo(2, 1500), solo(3, 1500),
                                solo(4, 1500), solo(5, INFINITY)};
  CHECK(form_matches(p, nan, 60000).empty());
  const std::vector<Ticket> four{solo(1, 1500), solo(2, 1500), solo(3, 1500),
                                 solo(4, 1500)};
  CHECK(form_matches(Params{1, 100, 50, 30000}, four, 0).empty());
  CHECK(form_matches(Params{17, 100, 50, 30000}, four, 0).empty());
  CHECK(form_matches(Params{2, 100, 50, 30000}, four, 0).size() == 2);
  CHECK(form_matches(p, std::vector<Ticket>{}, 0).empty());
  // Extreme times do not overflow.
  const std::vector<Ticket> old{
      solo(1, 1500, std::numeric_limits<std::int64_t>::min()), solo(2, 1500),
      solo(3, 1500), solo(4, 3000)};
  CHECK(form_matches(p, old, std::numeric_limits<std::int64_t>::max()).size() ==
        1);
}

TEST_CASE("form_matches is deterministic whatever the order of the tickets") {
  const Params p = default_params();
  std::mt19937 rng(3);
  std::normal_distribution<float> rating(1500, 300);
  std::uniform_int_distribution<std::int64_t> joined(0, 40000);
  std::vector<Ticket> pool;
  for (std::uint32_t i = 0; i < 400; ++i) {
    pool.push_back(solo(i + 1, rating(rng), joined(rng),
                        static_cast<std::uint8_t>(i % 2)));
  }
  for (std::uint32_t k = 0; k < 20; ++k) {
    const auto size = static_cast<std::uint8_t>(2 + k % 2);
    for (std::uint8_t m = 0; m < size; ++m) {
      pool.push_back(
          member(1000 + k * 4 + m, rating(rng), joined(rng), k + 1, size));
    }
  }
  const auto a = form_matches(p, pool, 40000);
  std::shuffle(pool.begin(), pool.end(), rng);
  const auto b = form_matches(p, pool, 40000);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(a[i].tickets == b[i].tickets);
  check_matches(p, pool, a, 40000);
}

TEST_CASE("randomised pools never break a rule") {
  std::mt19937 rng(5);
  std::normal_distribution<float> rating(1500, 400);
  for (int round = 0; round < 300; ++round) {
    const Params p{static_cast<std::uint32_t>(2 + rng() % 15),
                   static_cast<std::uint32_t>(rng() % 300),
                   static_cast<std::uint32_t>(rng() % 200),
                   static_cast<std::uint32_t>(rng() % 40000)};
    std::vector<Ticket> pool;
    std::map<std::uint32_t, bool> expect_invalid;  // key -> invalid
    std::uint32_t id = 1;
    const std::uint32_t units = rng() % 200;
    for (std::uint32_t u = 0; u < units; ++u) {
      const auto mode = static_cast<std::uint8_t>(rng() % 3);
      const std::int64_t joined = static_cast<std::int64_t>(rng() % 60000);
      if (rng() % 3 != 0) {
        pool.push_back(solo(id++, rating(rng), joined, mode));
        continue;
      }
      const std::uint32_t key = u + 1;
      const auto size =
          static_cast<std::uint8_t>(rng() % (p.match_size + 2));  // 0..ms+1
      std::uint32_t present = size;
      const std::uint32_t flaw =
          rng() % 8;  // 0: incomplete, 1: extra, 2: size, 3: mode
      if (flaw == 0 && present > 0)
        present = static_cast<std::uint32_t>(rng() % present);
      if (flaw == 1) ++present;
      bool invalid = size == 0 || size > p.match_size || present > size;
      for (std::uint32_t m = 0; m < present; ++m) {
        Ticket t =
            member(id++, rating(rng), key, size,
                   joined + static_cast<std::int64_t>(rng() % 3000), mode);
        if (m == 1 && flaw == 2) {
          t.party_size = static_cast<std::uint8_t>(size + 1);
          invalid = true;
        }
        if (m == 1 && flaw == 3) {
          t.mode = static_cast<std::uint8_t>(mode + 1);
          invalid = true;
        }
        pool.push_back(t);
      }
      if (present > 0) expect_invalid[key] = invalid;
    }
    std::shuffle(pool.begin(), pool.end(), rng);
    const std::int64_t now = static_cast<std::int64_t>(rng() % 100000);
    std::vector<std::uint32_t> invalid;
    const auto matches = form_matches(p, pool, now, &invalid);
    std::vector<std::uint32_t> expected;
    for (const auto& [key, bad] : expect_invalid) {
      if (bad) expected.push_back(key);
    }
    CHECK(invalid == expected);
    check_matches(p, pool, matches, now);
    for (const Match& m : matches) {
      for (const std::uint32_t t : m.tickets) {
        const auto it =
            std::find_if(pool.begin(), pool.end(),
                         [&](const Ticket& x) { return x.id == t; });
        REQUIRE(it != pool.end());
        CHECK((it->party_key == 0 || !expect_invalid[it->party_key]));
      }
    }
  }
}

namespace {

// 1000 tickets (two modes; 375 solos, 25 parties of 2 and 25 of 3 in each)
// joining over 10 s with ratings N(1500, 300).
std::vector<Ticket> make_population(std::mt19937& rng,
                                    std::uint32_t solos_per_mode,
                                    std::uint32_t parties_per_size_per_mode,
                                    std::int64_t join_span_ms) {
  std::normal_distribution<float> rating(1500, 300);
  std::uniform_int_distribution<std::int64_t> join(0, join_span_ms);
  std::uniform_int_distribution<std::int64_t> party_start(
      0, join_span_ms * 8 / 10);
  std::uniform_int_distribution<std::int64_t> party_spread(
      0, join_span_ms * 2 / 10);
  std::vector<Ticket> out;
  std::uint32_t id = 1;
  std::uint32_t key = 1;
  for (std::uint8_t mode = 0; mode < 2; ++mode) {
    for (std::uint32_t i = 0; i < solos_per_mode; ++i) {
      out.push_back(solo(id++, rating(rng), join(rng), mode));
    }
    for (std::uint8_t size = 2; size <= 3; ++size) {
      for (std::uint32_t i = 0; i < parties_per_size_per_mode; ++i) {
        const std::int64_t start = party_start(rng);
        for (std::uint8_t m = 0; m < size; ++m) {
          out.push_back(member(id++, rating(rng), key, size,
                               start + party_spread(rng), mode));
        }
        ++key;
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a simulated coordinator matches 1,000 tickets within the max wait") {
  const Params p = default_params();
  std::mt19937 rng(2024);
  const std::vector<Ticket> all = make_population(rng, 375, 25, 10000);
  REQUIRE(all.size() == 1000);

  std::map<std::uint32_t, std::int64_t> matched_at;
  std::map<std::uint32_t, std::uint32_t> party_match;  // key -> match number
  std::size_t strict = 0;
  std::size_t match_count = 0;
  double spread_sum = 0;
  std::int64_t longest_wait = 0;
  for (std::int64_t now = 0; now <= 60000 && matched_at.size() < all.size();
       now += 100) {
    std::vector<Ticket> pool;
    for (const Ticket& t : all) {
      if (t.joined_ms <= now && matched_at.count(t.id) == 0) pool.push_back(t);
    }
    std::vector<std::uint32_t> invalid;
    const auto matches = form_matches(p, pool, now, &invalid);
    CHECK(invalid.empty());
    check_matches(p, pool, matches, now, &strict);
    for (const Match& m : matches) {
      ++match_count;
      spread_sum += m.rating_spread;
      for (const std::uint32_t id : m.tickets) {
        REQUIRE(matched_at.emplace(id, now).second);  // never matched twice
        const Ticket& t = all[id - 1];
        REQUIRE(t.id == id);
        longest_wait = std::max(longest_wait, now - t.joined_ms);
        if (t.party_key != 0) {
          // All members of a key in one match.
          const auto [it, fresh] =
              party_match.emplace(t.party_key, match_count);
          CHECK(it->second == match_count);
          (void)fresh;
        }
      }
    }
  }
  // 1000 players in matches of 4 (500 per mode): every one is matched, each
  // within max wait plus one coordinator period.
  CHECK(matched_at.size() == all.size());
  for (const Ticket& t : all) {
    const auto it = matched_at.find(t.id);
    if (it == matched_at.end()) continue;
    CHECK(it->second <=
          t.joined_ms + static_cast<std::int64_t>(p.max_wait_ms) + 100);
  }
  CHECK(party_match.size() == 100);
  std::printf(
      "simulation: %zu matches (%zu within max wait, spread checked), mean "
      "spread %.1f, "
      "longest wait %lld ms\n",
      match_count, strict,
      match_count ? spread_sum / static_cast<double>(match_count) : 0.0,
      static_cast<long long>(longest_wait));
}

TEST_CASE("form_matches over 10,000 tickets is fast") {
  const Params p = default_params();
  std::mt19937 rng(99);
  // 10,000 tickets: 2 x (3750 solos + 250 parties of 2 + 250 parties of 3).
  const std::vector<Ticket> pool = make_population(rng, 3750, 250, 10000);
  REQUIRE(pool.size() == 10000);
  struct Case {
    const char* name;
    std::int64_t now_ms;
  };
  for (const Case c : {Case{"joined over 10 s", 10000}, Case{"all fresh", 0},
                       Case{"all past max wait", 45000}}) {
    std::vector<Ticket> present;
    for (const Ticket& t : pool) {
      if (c.now_ms == 0 || t.joined_ms <= c.now_ms) present.push_back(t);
    }
    std::vector<Ticket> fresh = present;
    if (c.now_ms == 0) {
      for (Ticket& t : fresh) t.joined_ms = 0;
    }
    const auto start = std::chrono::steady_clock::now();
    const auto matches = form_matches(p, fresh, c.now_ms);
    const auto elapsed = std::chrono::duration<double, std::milli>(
        std::chrono::steady_clock::now() - start);
    std::printf("formed %zu matches from %zu tickets in %.2f ms (%s)\n",
                matches.size(), fresh.size(), elapsed.count(), c.name);
    CHECK(elapsed.count() < 2000.0);
    check_matches(p, fresh, matches, c.now_ms);
  }
}
