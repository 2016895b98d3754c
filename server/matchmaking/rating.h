// skirmish::matchmaking ratings: Glicko-2 for free-for-all matches.
//
// Contract
//   - Glicko-2 as in Glickman, "Example of the Glicko-2 system" (2012):
//     steps 1-8, the Illinois algorithm for the volatility with
//     epsilon = 1e-6, scale 173.7178. Double precision inside, floats out.
//   - A free-for-all match is one rating period in which every player has
//     played every other once: a better place (lower number) is a win (1),
//     an equal place a draw (0.5), a worse place a loss (0). Each player is
//     updated against the PRE-match ratings of all the others, so the result
//     does not depend on the order of the players (permuting the players
//     permutes the results, bit for bit).
//   - Treating N-1 pairwise results as independent games counts a big match
//     as much evidence; with 16 players the moves are larger than a 1v1's.
//     That is intended: placing first among 15 is strong evidence.
//   - rd is clamped to [30, 350] on the way in and on the way out (30 keeps
//     a veteran's rating movable; 350 is a new player's). An input that is
//     not usable (r not finite, vol not finite or <= 0, tau not finite or
//     <= 0) is replaced by the default (1500, 0.06, 0.5), never propagated.
//   - Pure and deterministic: no clock, no I/O, no global state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace skirmish::matchmaking {

struct Rating {
  float r = 1500;     // rating
  float rd = 350;     // rating deviation, [30, 350]
  float vol = 0.06f;  // volatility
};

constexpr float kRdMin = 30;
constexpr float kRdMax = 350;
constexpr float kDefaultTau = 0.5f;

// One player's Glicko-2 update for one rating period: scores[i] (1 win,
// 0.5 draw, 0 loss) against opponents[i]. With no opponents only rd grows
// (step 6 of the paper). opponents and scores must be the same length;
// otherwise the player is returned unchanged (clamped).
Rating update_one(const Rating& me, std::span<const Rating> opponents,
                  std::span<const double> scores, double tau = kDefaultTau);

// Every player's rating after one free-for-all match. places[i] is player
// i's finishing place: 1 = best, equal places = a draw between them. The
// result is in the players' order. Empty if the two spans differ in length.
std::vector<Rating> update_ffa(std::span<const Rating> players,
                               std::span<const std::uint8_t> places,
                               float tau = kDefaultTau);

}  // namespace skirmish::matchmaking
