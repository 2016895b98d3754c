// slow_step: a module whose step() spins for `spin_us` (param, default
// 5000 us) on the monotonic clock, past any sane [game] step_budget_us.
// (A real module must never read a clock: this one is broken on purpose.)
#include <chrono>

#include "base_game.h"

namespace {
void slow_step(void* state, const skirmish_inputs* in, std::uint32_t tick) {
  base::State s;
  std::memcpy(&s, state, sizeof s);
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(s.spin_us);
  while (std::chrono::steady_clock::now() < until) {
  }
  base::step(state, in, tick);
}
skirmish_game_v1_t make() {
  skirmish_game_v1_t t = base::table("slow_step");
  t.step = slow_step;
  return t;
}
}  // namespace

BASE_EXPORT_TABLE(make())
