// Matchmaking math; the contract and the algorithm are in matchmaker.h.
#include "matchmaking/matchmaker.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

namespace skirmish::matchmaking {

namespace {

constexpr std::uint32_t kMinMatchSize = 2;
constexpr std::uint32_t kMaxMatchSize = 16;
constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();
// A seed within max wait gives up after this many candidates per seat: the
// nearest ones are the ones it wants, and the bound keeps one call linear in
// the tickets even when most neighbours are too young to accept it. Past max
// wait there is no bound (the subset-sum pre-check keeps that scan useful).
constexpr std::uint32_t kCandidatesPerSeat = 32;
constexpr std::int32_t kNone = -1;

struct Unit {
  std::uint32_t first;     // into member_ids
  std::uint32_t size;      // players (tickets) in the unit
  std::uint32_t min_id;    // tie-breaker
  std::int64_t joined_ms;  // earliest member
  double rating;           // mean of the members
  double window;           // window_at(age), kUnbounded when overdue
  std::uint8_t mode;
  bool overdue;
  bool taken;
};

// A partial group in the subset sum: `seats` filled by the chain ending at
// `node`, with its rating range and the smallest window in it.
struct State {
  bool set;
  std::int32_t node;  // into nodes; kNone = the seed alone
  double lo, hi, min_window;
};

struct Node {
  std::int32_t unit;
  std::int32_t prev;  // kNone ends the chain
};

// Can `need` seats be filled exactly from the available sizes of one mode?
// counts[k] = available units of k players. Bounded knapsack over <= 16
// seats as a bitmask of reachable sums.
bool fillable(const std::array<std::uint32_t, kMaxMatchSize + 1>& counts,
              std::uint32_t need) {
  std::uint32_t reach = 1;  // bit t: t seats reachable
  const std::uint32_t mask = (need >= 31) ? ~0u : ((1u << (need + 1)) - 1);
  for (std::uint32_t k = 1; k <= need; ++k) {
    const std::uint32_t copies = std::min(counts[k], need / k);
    for (std::uint32_t c = 0; c < copies; ++c)
      reach = (reach | (reach << k)) & mask;
  }
  return (reach >> need) & 1u;
}

// now_ms - joined_ms without overflow (hostile or corrupt times saturate).
std::int64_t saturating_age(std::int64_t now_ms, std::int64_t joined_ms) {
  std::int64_t age;
  if (__builtin_sub_overflow(now_ms, joined_ms, &age)) {
    return joined_ms < 0 ? std::numeric_limits<std::int64_t>::max()
                         : std::numeric_limits<std::int64_t>::min();
  }
  return age;
}

}  // namespace

std::uint32_t window_at(const Params& params, std::int64_t age_ms) {
  if (age_ms < 0) age_ms = 0;
  if (age_ms >= static_cast<std::int64_t>(params.max_wait_ms))
    return kUnbounded;
  // age_ms < max_wait_ms <= UINT32_MAX, so the product fits in 64 bits.
  const std::uint64_t widen =
      static_cast<std::uint64_t>(params.window_widen_per_s) *
      static_cast<std::uint64_t>(age_ms) / 1000;
  const std::uint64_t window = params.window_initial + widen;
  return window >= kUnbounded ? kUnbounded : static_cast<std::uint32_t>(window);
}

std::vector<Match> form_matches(const Params& params,
                                std::span<const Ticket> tickets,
                                std::int64_t now_ms,
                                std::vector<std::uint32_t>* invalid_parties) {
  std::vector<Match> matches;
  if (invalid_parties != nullptr) invalid_parties->clear();
  const std::uint32_t match_size = params.match_size;
  if (match_size < kMinMatchSize || match_size > kMaxMatchSize) return matches;

  // 1. The tickets we read: finite ratings, each id once (first occurrence).
  std::vector<std::uint32_t> order;
  order.reserve(tickets.size());
  for (std::uint32_t i = 0; i < tickets.size(); ++i) {
    if (std::isfinite(tickets[i].rating)) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) {
                     return tickets[a].id < tickets[b].id;
                   });
  order.erase(std::unique(order.begin(), order.end(),
                          [&](std::uint32_t a, std::uint32_t b) {
                            return tickets[a].id == tickets[b].id;
                          }),
              order.end());

  // 2. Units: every solo, and every complete, valid party. Grouping by
  // (party_key, id) keeps a party's members adjacent and by ascending id.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::uint32_t a, std::uint32_t b) {
                     return tickets[a].party_key < tickets[b].party_key;
                   });
  std::vector<Unit> units;
  std::vector<std::uint32_t> member_ids;
  units.reserve(order.size());
  member_ids.reserve(order.size());
  auto add_unit = [&](std::size_t begin, std::size_t end) {
    Unit unit{};
    unit.first = static_cast<std::uint32_t>(member_ids.size());
    unit.size = static_cast<std::uint32_t>(end - begin);
    unit.min_id = tickets[order[begin]].id;
    unit.joined_ms = std::numeric_limits<std::int64_t>::max();
    unit.mode = tickets[order[begin]].mode;
    double sum = 0;
    for (std::size_t i = begin; i < end; ++i) {
      const Ticket& t = tickets[order[i]];
      member_ids.push_back(t.id);
      sum += t.rating;
      unit.joined_ms = std::min(unit.joined_ms, t.joined_ms);
    }
    unit.rating = sum / static_cast<double>(unit.size);
    const std::int64_t age = saturating_age(now_ms, unit.joined_ms);
    unit.overdue = age >= static_cast<std::int64_t>(params.max_wait_ms);
    unit.window = static_cast<double>(window_at(params, age));
    units.push_back(unit);
  };
  for (std::size_t i = 0; i < order.size();) {
    const Ticket& head = tickets[order[i]];
    if (head.party_key == 0) {
      add_unit(i, i + 1);
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    bool valid = head.party_size >= 1 && head.party_size <= match_size;
    while (end < order.size() &&
           tickets[order[end]].party_key == head.party_key) {
      const Ticket& t = tickets[order[end]];
      if (t.party_size != head.party_size || t.mode != head.mode) valid = false;
      ++end;
    }
    const std::size_t present = end - i;
    if (present > head.party_size) valid = false;
    if (!valid) {
      if (invalid_parties != nullptr)
        invalid_parties->push_back(head.party_key);
    } else if (present == head.party_size) {
      add_unit(i, end);
    }  // else: incomplete, it waits
    i = end;
  }
  // invalid_parties is sorted and unique already: keys were visited in order.

  // 3. Rating order (per mode), as a doubly linked list that skips taken
  // units; and the available sizes per mode for the subset-sum pre-check.
  const std::int32_t n = static_cast<std::int32_t>(units.size());
  std::vector<std::int32_t> by_rating(units.size());
  std::iota(by_rating.begin(), by_rating.end(), 0);
  std::sort(by_rating.begin(), by_rating.end(),
            [&](std::int32_t a, std::int32_t b) {
              const Unit& ua = units[a];
              const Unit& ub = units[b];
              if (ua.mode != ub.mode) return ua.mode < ub.mode;
              if (ua.rating != ub.rating) return ua.rating < ub.rating;
              return ua.min_id < ub.min_id;
            });
  std::vector<std::int32_t> prev(units.size(), kNone),
      next(units.size(), kNone);
  for (std::int32_t i = 0; i < n; ++i) {
    const std::int32_t u = by_rating[i];
    if (i > 0 && units[by_rating[i - 1]].mode == units[u].mode)
      prev[u] = by_rating[i - 1];
    if (i + 1 < n && units[by_rating[i + 1]].mode == units[u].mode)
      next[u] = by_rating[i + 1];
  }
  std::vector<std::array<std::uint32_t, kMaxMatchSize + 1>> counts(256);
  for (const Unit& u : units) ++counts[u.mode][u.size];

  auto take = [&](std::int32_t u) {
    units[u].taken = true;
    --counts[units[u].mode][units[u].size];
    if (prev[u] != kNone) next[prev[u]] = next[u];
    if (next[u] != kNone) prev[next[u]] = prev[u];
  };

  // 4. Seeds, oldest first.
  std::vector<std::int32_t> by_age(units.size());
  std::iota(by_age.begin(), by_age.end(), 0);
  std::sort(by_age.begin(), by_age.end(), [&](std::int32_t a, std::int32_t b) {
    if (units[a].joined_ms != units[b].joined_ms)
      return units[a].joined_ms < units[b].joined_ms;
    return units[a].min_id < units[b].min_id;
  });

  std::array<State, kMaxMatchSize + 1> states{};
  std::vector<Node> nodes;
  for (const std::int32_t s : by_age) {
    const Unit& seed = units[s];
    if (seed.taken) continue;
    const std::uint32_t need = match_size - seed.size;  // size <= match_size
    auto& mode_counts = counts[seed.mode];
    --mode_counts[seed.size];  // the seed is not its own candidate
    const bool possible = need == 0 || fillable(mode_counts, need);
    ++mode_counts[seed.size];
    if (!possible) continue;

    states.fill(State{});
    states[0] = State{true, kNone, seed.rating, seed.rating, seed.window};
    nodes.clear();
    std::uint32_t budget = seed.overdue
                               ? std::numeric_limits<std::uint32_t>::max()
                               : kCandidatesPerSeat * match_size;
    std::int32_t left = prev[s];
    std::int32_t right = next[s];
    while (!states[need].set && budget > 0) {
      // The nearer of the two neighbours (ties: the lower rating).
      std::int32_t c;
      const double dl = left != kNone ? seed.rating - units[left].rating
                                      : std::numeric_limits<double>::infinity();
      const double dr = right != kNone
                            ? units[right].rating - seed.rating
                            : std::numeric_limits<double>::infinity();
      if (left == kNone && right == kNone) break;
      if (dl <= dr) {
        c = left;
        left = prev[left];
      } else {
        c = right;
        right = next[right];
      }
      // Every member is within the spread of the seed, and the spread is
      // within the seed's window: nothing farther can join.
      if (!seed.overdue && std::min(dl, dr) > seed.window) break;
      --budget;
      const Unit& cand = units[c];
      if (cand.size > need) continue;
      for (std::int32_t t = static_cast<std::int32_t>(need - cand.size); t >= 0;
           --t) {
        const State& from = states[t];
        State& to = states[t + cand.size];
        if (!from.set || to.set) continue;
        const double lo = std::min(from.lo, cand.rating);
        const double hi = std::max(from.hi, cand.rating);
        const double min_window = std::min(from.min_window, cand.window);
        if (!seed.overdue && hi - lo > min_window) continue;
        nodes.push_back(Node{c, from.node});
        to = State{true, static_cast<std::int32_t>(nodes.size() - 1), lo, hi,
                   min_window};
      }
    }
    if (!states[need].set) continue;

    // The group: the seed, then the chain reversed (nearest first).
    std::vector<std::int32_t> group{s};
    for (std::int32_t k = states[need].node; k != kNone; k = nodes[k].prev) {
      group.push_back(nodes[k].unit);
    }
    std::reverse(group.begin() + 1, group.end());
    Match match;
    match.tickets.reserve(match_size);
    for (const std::int32_t u : group) {
      const Unit& unit = units[u];
      match.tickets.insert(match.tickets.end(), member_ids.begin() + unit.first,
                           member_ids.begin() + unit.first + unit.size);
      take(u);
    }
    match.rating_spread = static_cast<float>(states[need].hi - states[need].lo);
    matches.push_back(std::move(match));
  }
  return matches;
}

}  // namespace skirmish::matchmaking
