// nondet_step: a module whose step() mixes a static counter into the state
// (global mutable state, forbidden by game.h): two steps of the same bytes
// differ. Loads fine; skirmish-game-check / game_check.h must catch it.
#include "base_game.h"

namespace {
std::uint32_t g_calls = 0;
void nondet_step(void* state, const skirmish_inputs* in, std::uint32_t tick) {
  base::step(state, in, tick);
  base::State s;
  std::memcpy(&s, state, sizeof s);
  s.score[0] += std::int32_t(++g_calls % 7);
  std::memcpy(state, &s, sizeof s);
}
skirmish_game_v1_t make() {
  skirmish_game_v1_t t = base::table("nondet_step");
  t.step = nondet_step;
  return t;
}
}  // namespace

BASE_EXPORT_TABLE(make())
