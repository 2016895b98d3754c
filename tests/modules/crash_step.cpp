// crash_step: a module whose step() dies of SIGSEGV on tick `crash_after`
// (param, default 10): a write through a null pointer the compiler cannot
// see is null (it is read from the state). For the containment tests: a
// worker that steps it dies once; the adopter dies on the same match.
#include "base_game.h"

namespace {
void crash_step(void* state, const skirmish_inputs* in, std::uint32_t tick) {
  base::State s;
  std::memcpy(&s, state, sizeof s);
  if (s.crash_after != 0 && s.tick + 1 >= s.crash_after) {
    volatile int* p = reinterpret_cast<volatile int*>(static_cast<std::uintptr_t>(s.null_addr));
    *p = 1;
  }
  base::step(state, in, tick);
}
skirmish_game_v1_t make() {
  skirmish_game_v1_t t = base::table("crash_step");
  t.step = crash_step;
  return t;
}
}  // namespace

BASE_EXPORT_TABLE(make())
