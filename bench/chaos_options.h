// chaos_options.h: skirmish-bench-chaos's options and the config it runs the
// server with (bench/README.md).
//
// Opts is what the command line sets (bench_chaos.cpp); resolve_game loads
// the module the server will host to settle the match size; write_config
// derives the server's config from configs/loadtest.toml for that game.
#pragma once

#include <string>
#include <vector>

#include "module/module.h"

#ifndef SKIRMISH_SOURCE_DIR
#define SKIRMISH_SOURCE_DIR "."
#endif

namespace bench_chaos {

struct Opts {
  std::string server;
  std::string base_config = std::string(SKIRMISH_SOURCE_DIR) + "/configs/loadtest.toml";
  std::string server_log;  // optional: copy of the server's log
  int bots = 1000;
  int ramp = 500;  // bots connected per second
  double warmup_s = 10;
  double kill_every_s = 10;
  double duration_s = 60;
  double drain_s = 20;
  int workers = 2;
  int time_limit_s = 15;  // the arena's game.params.time_limit_s; for any game the longest a match may last
  double margin_s = 3;
  std::string game = "arena";           // [game] module
  int match_size = 0;                   // 0: 4, clamped to the module's range
  std::vector<std::string> params;      // --param key=value: [game.params] overrides
  // Resolved at start (resolve_game).
  const skirmish_game_v1_t* table = nullptr;
};

// Loads the module the server will host, to learn its name, player range
// and bot, and settles the match size. False with one line in `error`.
bool resolve_game(Opts& o, std::string& error);

bool is_arena(const Opts& o);
// The directory of this program's binary ("." if unknown).
std::string exe_dir();
// `s` quoted for a shell when it needs to be.
std::string shell_quote(const std::string& s);

// configs/loadtest.toml with `key = value` lines replaced (as the tests'
// GameConfig does) and the body of [game.params] rewritten for the game.
// Empty string and `error` set on failure.
std::string write_config(const Opts& o, const std::string& path, std::string& error);

}  // namespace bench_chaos
