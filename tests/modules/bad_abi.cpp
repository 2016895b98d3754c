// bad_abi: a module that claims ABI version 2 (refused at load).
#include "base_game.h"

namespace {
skirmish_game_v1_t make() {
  skirmish_game_v1_t t = base::table("bad_abi");
  t.abi_version = 2;
  return t;
}
}  // namespace

BASE_EXPORT_TABLE(make())
