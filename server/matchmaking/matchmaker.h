// skirmish::matchmaking: which waiting tickets play together.
//
// Contract
//   - Pure math: the tickets, the parameters and the time come in as
//     arguments, the matches go out as a value. No clock, no I/O, no logging,
//     no global state, no allocation that outlives the call. The coordinator
//     owns the tickets (in shared memory) and removes the matched ones; it
//     calls form_matches again on its eventfd wake and on its timer, which is
//     what lets the windows widen.
//   - Deterministic: the same tickets (in any order, ids unique) at the same
//     now_ms give the same matches. Every tie is broken by ticket id.
//   - Units. A solo ticket (party_key == 0) is a unit of one player; its
//     party_size is not read. Tickets that share a non-zero party_key are one
//     unit of party_size players, matched only once all party_size members
//     are in the call, and never split. Until then the party waits (it is
//     not reported: a party forming is normal). A unit's rating is the mean
//     of its members' ratings and its age counts from its EARLIEST member's
//     joined_ms, so a party does not lose the time its first member waited.
//   - Each ticket is one player, so a Match holds exactly Params::match_size
//     ticket ids. Every ticket id appears in at most one match per call (an
//     id given twice is read once, at its first occurrence).
//   - Modes never mix: a match is all one mode.
//   - The window. A unit that has waited age_ms accepts a group whose rating
//     spread (max - min over the group's UNIT ratings) is at most
//     window_at(params, age_ms). A group is acceptable when its spread is at
//     most the window of EVERY unit in it (the minimum over its units).
//   - The one exception, past max wait: a unit that has waited
//     >= max_wait_ms (its window is unbounded), when its turn comes (units
//     pick oldest first), takes the nearest-rated players still available in
//     its mode, whatever THEIR windows say. This is what guarantees that
//     every ticket is matched within max_wait_ms of joining (plus one
//     coordinator period) whenever players of its mode are waiting whose
//     party sizes can fill its seats.
//     So "spread <= every member's window" holds for every match whose oldest
//     unit has waited < max_wait_ms; a match whose oldest unit is past max
//     wait is only as close as the players available.
//   - Not matchable, ever, as given: tickets whose rating is not finite
//     (skipped), and invalid parties: party_size 0 or > match_size, members
//     that disagree on party_size or mode, or more members than party_size.
//     Their party_keys go to *invalid_parties (sorted, unique) so the caller
//     can refuse them instead of letting them wait forever.
//   - Params outside the documented ranges (match_size not in 2..16) form no
//     matches. Config validation is the place to reject them.
//
// The algorithm (greedy: O(n log n), plus a scan per seed that is bounded
// within max wait; 10,000 tickets take a few ms)
//   Per call: build units, sort them by (mode, rating), link them in a list
//   that skips taken units, then visit units oldest first. The oldest unit is
//   the seed: it looks outward in rating order for the nearest units that
//   fill its remaining seats exactly (a small 0/1 subset sum over party
//   sizes, so a party of 3 finds a solo even when a party of 2 is nearer),
//   keeping only partial groups whose spread fits every window in them. A
//   seed within max wait stops looking beyond its own window or after a
//   bounded number of candidates; a seed that finds nothing stays available
//   to the seeds after it. A party of match_size is a match on its own.
//   Greedy, not optimal: a match formed now can use the solo that a party of
//   match_size - 1 would need later; that party then waits (past max wait
//   too) until a player who fits joins. The pre-check only knows what is
//   waiting now.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace skirmish::matchmaking {

struct Params {
  std::uint32_t match_size = 4;           // players per match, 2..16
  std::uint32_t window_initial = 100;     // rating points accepted at once
  std::uint32_t window_widen_per_s = 50;  // rating points added per second
  std::uint32_t max_wait_ms = 30000;      // then the window is unbounded
};

struct Ticket {
  std::uint32_t id;         // opaque to this module (a shm wire id)
  float rating;             // e.g. Glicko-2 r
  std::int64_t joined_ms;   // same clock as now_ms
  std::uint32_t party_key;  // 0 = solo
  std::uint8_t party_size;  // 1..match_size; read only when party_key != 0
  std::uint8_t mode;
};

struct Match {
  // Exactly match_size ticket ids: the seed unit first, then the other units
  // in the order they were picked (nearest rating first); a party's members
  // are adjacent, by ascending id.
  std::vector<std::uint32_t> tickets;
  float rating_spread;  // max - min of the unit ratings in the match
};

// The rating window of a unit that has waited age_ms (negative = 0):
// window_initial + window_widen_per_s * age_ms / 1000, saturating at
// UINT32_MAX, and UINT32_MAX ("unbounded") once age_ms >= max_wait_ms.
std::uint32_t window_at(const Params& params, std::int64_t age_ms);

// Groups the tickets into matches (see the contract above). The caller
// removes the returned tickets before the next call. If invalid_parties is
// given it is cleared, then receives the party_key of every invalid party.
std::vector<Match> form_matches(
    const Params& params, std::span<const Ticket> tickets, std::int64_t now_ms,
    std::vector<std::uint32_t>* invalid_parties = nullptr);

}  // namespace skirmish::matchmaking
