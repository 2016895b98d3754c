// skirmish::module: loading a game module and checking its table. The one
// place that dlopen()s a game (sdk/include/skirmish/game.h); the server's
// master, the load tester, skirmish-replay, the tests and the benchmarks
// all load through it. It holds no game code: every game is a .so.
//
// Contract
// - load() resolves a name or a path, dlopen()s it (RTLD_NOW | RTLD_LOCAL:
//   an unresolved symbol fails here, not in the middle of a match), looks
//   up `skirmish_game_v1`, calls it once and checks the table against the
//   ABI and the given limits before the caller binds anything. Any failure
//   is one line in `error` naming what is wrong and what is allowed.
// - A bare name ("arena", "battleship": [a-z0-9_-]) is looked for as
//   <name>.so in, in order: $SKIRMISH_GAMES_DIR, <exe dir>/../games (a
//   build tree), <exe dir>/../lib/skirmish/games (an install). Anything
//   with a '/' or ending in ".so" is a path.
// - A Module is never unloaded (dlclose would leave dangling pointers in
//   a live table); it is meant to be loaded once per process, before fork.
// - GameParams owns the typed [game.params] pairs and hands the module a
//   skirmish_params view of them; the view stays valid while the
//   GameParams lives and is not changed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "skirmish/game.h"

namespace skirmish::module {

struct GameParam {
  std::string key;
  skirmish_param_type type = SKIRMISH_PARAM_INT;
  std::int64_t i = 0;  // INT, BOOL (0/1)
  double f = 0;        // FLOAT
  std::string s;       // STRING
  bool operator==(const GameParam&) const = default;
};

// The value as sent in MatchFound.params and shown in logs: decimal, %.17g
// float, true/false, or the string itself.
std::string param_text(const skirmish_param& p);

class GameParams {
 public:
  GameParams() = default;
  explicit GameParams(std::vector<GameParam> items, std::uint32_t tick_rate_hz);
  GameParams(const GameParams& o) : GameParams(o.items_, o.view_.tick_rate_hz) {}
  GameParams& operator=(const GameParams& o);

  const skirmish_params* view() const { return &view_; }
  const std::vector<GameParam>& items() const { return items_; }

 private:
  void rebuild();
  std::vector<GameParam> items_;
  std::vector<skirmish_param> c_items_;
  skirmish_params view_{nullptr, 0, 30};
};

struct Limits {
  std::uint32_t max_state_bytes = 64 * 1024;  // [game] max_state_bytes
};

struct Module {
  const skirmish_game_v1_t* game = nullptr;  // checked; never null in a loaded Module
  std::string path;                           // the file loaded
  void* handle = nullptr;
};

// Where `name_or_path` would be loaded from (the first existing candidate,
// or the path as given); for messages and tests.
std::string resolve(const std::string& name_or_path);

// Loads and checks the table (not the params). nullopt with one line in
// `error` on any failure, e.g. "game module build/games/x.so: abi_version 2
// is not supported (this server speaks 1)".
std::optional<Module> load(const std::string& name_or_path, const Limits& limits, std::string& error);

// Checks a table already in memory (load() calls it; tests feed it bad
// tables). nullptr-safe. False with one line in `error`.
bool check_table(const skirmish_game_v1_t* t, const Limits& limits, std::string& error);

// Checks a match configuration against a loaded module: players within
// [min_players, max_players], tick rate within the module's range, then
// the module's own check_params. False with one line in `error`, e.g.
// "game.params: board = 20 is out of range (allowed: 6..10)".
bool check_match(const Module& m, const GameParams& params, std::uint32_t players, std::string& error);

// The params sent in MatchFound: the module's public_params when it has
// one, else the configured ones. The pointers in `out` live as long as
// `params` and the module.
std::vector<skirmish_param> public_params(const Module& m, const GameParams& params);

// The game a server hosts: the module, its [game.params], and what every
// MatchFound carries. Built once in the master before any fork (load_game);
// workers and the coordinator inherit it.
struct Game {
  Module module;
  GameParams params;
  std::vector<skirmish_param> public_params;  // points into params / the module
  const skirmish_game_v1_t* table() const { return module.game; }

  Game() = default;
  // A copy points its public_params into its own params, never the
  // original's (which may be gone: a returned optional<Game> is one).
  Game(const Game& o) : module(o.module), params(o.params) { rebind(); }
  Game& operator=(const Game& o) {
    module = o.module;
    params = o.params;
    rebind();
    return *this;
  }

  void rebind();  // recomputes public_params from this Game's own params
};

// load() + check_match() + public_params(); nullopt with one line in `error`.
std::optional<Game> load_game(const std::string& name_or_path, const Limits& limits, std::vector<GameParam> params,
                              std::uint32_t tick_rate_hz, std::uint32_t players, std::string& error);

}  // namespace skirmish::module
