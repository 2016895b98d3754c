// The GameUi factory (game_ui.h): the games this client can play.
#include "client/terminal/game_ui.h"

namespace skirmish::terminal {

std::unique_ptr<GameUi> make_game_ui(std::string_view game) {
  if (game == "arena") return make_arena_ui();
  if (game == "battleship") return make_battleship_ui();
  return nullptr;
}

const char* known_games() { return "arena, battleship"; }

}  // namespace skirmish::terminal
