// no_symbol: a module that exports its table under the wrong name (no
// skirmish_game_v1): refused at load.
#include "base_game.h"

extern "C" SKIRMISH_GAME_EXPORT const skirmish_game_v1_t* skirmish_game_v0(void) {
  static const skirmish_game_v1_t t = base::table("no_symbol");
  return &t;
}
