// Glicko-2; the contract is in rating.h. Step numbers follow Glickman's
// "Example of the Glicko-2 system" (2012).
#include "matchmaking/rating.h"

#include <algorithm>
#include <cmath>
#include <compare>
#include <numbers>

namespace skirmish::matchmaking {

namespace {

constexpr double kScale = 173.7178;  // Glicko <-> Glicko-2
constexpr double kEpsilon = 0.000001;
constexpr int kMaxIterations = 100;  // the Illinois loop converges in ~10

double usable_r(float r) { return std::isfinite(r) ? r : 1500.0; }
double usable_rd(float rd) {
  if (!std::isfinite(rd)) return kRdMax;
  return std::clamp(static_cast<double>(rd), static_cast<double>(kRdMin),
                    static_cast<double>(kRdMax));
}
double usable_vol(float vol) {
  return (std::isfinite(vol) && vol > 0) ? vol : 0.06;
}

double g(double phi) {
  return 1.0 / std::sqrt(1.0 + 3.0 * phi * phi /
                                   (std::numbers::pi * std::numbers::pi));
}

double expected(double mu, double mu_j, double g_j) {
  return 1.0 / (1.0 + std::exp(-g_j * (mu - mu_j)));
}

Rating finish(double mu, double phi, double vol) {
  Rating out;
  out.r = static_cast<float>(kScale * mu + 1500.0);
  out.rd = std::clamp(static_cast<float>(kScale * phi), kRdMin, kRdMax);
  out.vol = static_cast<float>(vol);
  return out;
}

// Step 5: the new volatility, by the Illinois algorithm.
double new_volatility(double delta, double phi, double v, double sigma,
                      double tau) {
  const double a = std::log(sigma * sigma);
  const auto f = [&](double x) {
    const double ex = std::exp(x);
    const double d = phi * phi + v + ex;
    return ex * (delta * delta - phi * phi - v - ex) / (2.0 * d * d) -
           (x - a) / (tau * tau);
  };
  double big_a = a;
  double big_b;
  if (delta * delta > phi * phi + v) {
    big_b = std::log(delta * delta - phi * phi - v);
  } else {
    int k = 1;
    while (f(a - k * tau) < 0 && k < kMaxIterations) ++k;
    big_b = a - k * tau;
  }
  double f_a = f(big_a);
  double f_b = f(big_b);
  for (int i = 0; i < kMaxIterations && std::fabs(big_b - big_a) > kEpsilon;
       ++i) {
    const double big_c = big_a + (big_a - big_b) * f_a / (f_b - f_a);
    const double f_c = f(big_c);
    if (f_c * f_b <= 0) {
      big_a = big_b;
      f_a = f_b;
    } else {
      f_a /= 2.0;
    }
    big_b = big_c;
    f_b = f_c;
  }
  return std::exp(big_a / 2.0);
}

}  // namespace

Rating update_one(const Rating& me, std::span<const Rating> opponents,
                  std::span<const double> scores, double tau) {
  if (!std::isfinite(tau) || tau <= 0) tau = kDefaultTau;
  // Step 2: to the Glicko-2 scale.
  const double mu = (usable_r(me.r) - 1500.0) / kScale;
  const double phi = usable_rd(me.rd) / kScale;
  const double sigma = usable_vol(me.vol);
  if (opponents.empty() || opponents.size() != scores.size()) {
    // Step 6 only, for a player who did not compete (or a malformed call).
    const double phi_star =
        opponents.empty() ? std::sqrt(phi * phi + sigma * sigma) : phi;
    return finish(mu, phi_star, sigma);
  }
  // Steps 3 and 4: the estimated variance and the improvement.
  double inv_v = 0;
  double sum = 0;
  for (std::size_t j = 0; j < opponents.size(); ++j) {
    const double mu_j = (usable_r(opponents[j].r) - 1500.0) / kScale;
    const double g_j = g(usable_rd(opponents[j].rd) / kScale);
    const double e = expected(mu, mu_j, g_j);
    inv_v += g_j * g_j * e * (1.0 - e);
    sum += g_j * (std::clamp(scores[j], 0.0, 1.0) - e);
  }
  const double v = 1.0 / inv_v;
  const double delta = v * sum;
  // Steps 5 to 7.
  const double sigma_new = new_volatility(delta, phi, v, sigma, tau);
  const double phi_star = std::sqrt(phi * phi + sigma_new * sigma_new);
  const double phi_new = 1.0 / std::sqrt(1.0 / (phi_star * phi_star) + 1.0 / v);
  const double mu_new = mu + phi_new * phi_new * sum;
  // Step 8: back to the Glicko scale.
  return finish(mu_new, phi_new, sigma_new);
}

std::vector<Rating> update_ffa(std::span<const Rating> players,
                               std::span<const std::uint8_t> places,
                               float tau) {
  std::vector<Rating> out;
  if (players.size() != places.size()) return out;
  out.reserve(players.size());
  // Each player's opponents are summed in one canonical order (by their
  // sanitised rating, then score), so a permutation of the players gives the
  // same floating-point sums: the results permute bit for bit.
  struct Opponent {
    double r, rd, vol, score;
    auto operator<=>(const Opponent&) const = default;
  };
  std::vector<Opponent> sorted;
  std::vector<Rating> opponents;
  std::vector<double> scores;
  sorted.reserve(players.size());
  opponents.reserve(players.size());
  scores.reserve(players.size());
  for (std::size_t i = 0; i < players.size(); ++i) {
    sorted.clear();
    for (std::size_t j = 0; j < players.size(); ++j) {
      if (j == i) continue;
      const double score = places[i] < places[j]    ? 1.0
                           : places[i] == places[j] ? 0.5
                                                    : 0.0;
      sorted.push_back(Opponent{usable_r(players[j].r),
                                usable_rd(players[j].rd),
                                usable_vol(players[j].vol), score});
    }
    std::sort(sorted.begin(), sorted.end());
    opponents.clear();
    scores.clear();
    for (const Opponent& o : sorted) {
      opponents.push_back(Rating{static_cast<float>(o.r),
                                 static_cast<float>(o.rd),
                                 static_cast<float>(o.vol)});
      scores.push_back(o.score);
    }
    out.push_back(update_one(players[i], opponents, scores, tau));
  }
  return out;
}

}  // namespace skirmish::matchmaking
