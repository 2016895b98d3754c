// bad_sizes: a module with state_bytes 0 (refused at load). Built a second
// time with BAD_SIZES_HUGE as huge_state: state_bytes 1 GiB, over any
// [game] max_state_bytes.
#include "base_game.h"

namespace {
skirmish_game_v1_t make() {
#ifdef BAD_SIZES_HUGE
  skirmish_game_v1_t t = base::table("huge_state");
  t.state_bytes = 1u << 30;
#else
  skirmish_game_v1_t t = base::table("bad_sizes");
  t.state_bytes = 0;
#endif
  return t;
}
}  // namespace

BASE_EXPORT_TABLE(make())
