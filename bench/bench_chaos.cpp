// skirmish-bench-chaos: "Survive failure" in figures (bench/README.md).
//
// Figures, not a test: it prints what survived, it never passes or fails on
// a number, and it is not registered with ctest.
//
// One run, of one game (--game: a bundled module's name or a path to a
// module; the server hosts it by config, the bots play it through its own
// bot_input, loaded here with server/module as the server loads it):
//   1. Writes a config derived from configs/loadtest.toml ([game] module =
//      --game, match_size = --match-size or 4 clamped to the module's
//      player range, max_wait_ms = 2000; [game.params]: for the arena
//      time_limit_s = --time-limit in a 20000 x 20000 arena, for any other
//      game the module's defaults; --param key=value on top) and starts the
//      real skirmish-server (fork/exec, --port 0 --admin-port 0 --workers 2
//      --shm-name bench-chaos-PID), its stdout+stderr into a pipe that the
//      loop reads for the whole run; the game port comes from its
//      "listening on 127.0.0.1:PORT" line (deadline 15 s).
//   2. --bots bots on one libuv loop in this process, each a
//      skirmish::client::Client with automatic resume, connect at --ramp per
//      second, queue on Welcome, answer every Snapshot with the module's
//      bot_input for their seat (at most one Input each; none when it has
//      nothing to send, e.g. not its turn), queue again after MatchEnd.
//   3. After --warmup s, every --kill-every s for --duration s: SIGKILL the
//      worker that owns the most Running matches (read from the live
//      shared-memory segment), recording the matches it owned.
//   4. --drain s more without kills, so matches in flight can end; then the
//      bots are destroyed, the server gets SIGTERM (SIGKILL after 10 s), is
//      reaped, and its segment is unlinked if it was left behind.
//   5. The report (see print_report).
//
// Every wait is a uv timer on the one loop; every loop is bounded by the
// bot count or by a deadline. Only processes this program started are
// signalled, by pid: the server, and workers whose parent is that server.
//
// This file is the command line (main). The rest: chaos_options.{h,cpp}
// (Opts, the game, the config), chaos_util.h (helpers), chaos_bench.h (the
// run's state), chaos_server.cpp (1, and the server's end in 4),
// chaos_run.cpp (the phases 2-4), chaos_bots.cpp (the bots), and
// chaos_report.cpp (5).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "bench/chaos_bench.h"
#include "bench/chaos_options.h"

using namespace bench_chaos;

int main(int argc, char** argv) {
  Opts o;
  o.server = exe_dir() + "/../server/skirmish-server";
  CLI::App app{"skirmish-bench-chaos: bots play matches of a game module while a worker is killed with -9 every few "
               "seconds; prints what survived"};
  app.add_option("--server", o.server, "skirmish-server binary")->capture_default_str();
  app.add_option("--config", o.base_config, "base config (keys are overridden)")->capture_default_str();
  app.add_option("--bots", o.bots, "bots on one loop")->check(CLI::Range(4, 50000))->capture_default_str();
  app.add_option("--ramp", o.ramp, "bots connected per second")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds before the first kill")->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--kill-every", o.kill_every_s, "seconds between kills")->check(CLI::Range(0.5, 600.0))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "seconds of kills")->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--drain", o.drain_s, "seconds after the kills for matches in flight to end")
      ->check(CLI::Range(0.0, 600.0))->capture_default_str();
  app.add_option("--workers", o.workers, "server worker processes")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--time-limit", o.time_limit_s,
                 "the arena's game.params.time_limit_s; for another game, the longest a match may last (which "
                 "matches had time to end)")
      ->check(CLI::Range(5, 3600))
      ->capture_default_str();
  app.add_option("--game", o.game, "game module the server hosts: a bundled name (arena, battleship) or a path")
      ->capture_default_str();
  app.add_option("--match-size", o.match_size, "players per match (default 4 within the module's range)")
      ->check(CLI::Range(1, 16));
  app.add_option("--param", o.params, "KEY=VALUE of [game.params] (repeatable)");
  app.add_option("--margin", o.margin_s, "seconds of slack when deciding which matches had time to end")
      ->check(CLI::Range(0.0, 600.0))->capture_default_str();
  app.add_option("--server-log", o.server_log, "also write the server's log to this file");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  if (!resolve_game(o, error)) {
    std::fprintf(stderr, "bench-chaos: %s\n", error.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + shell_quote(argv[i]);
  Bench bench(o);
  return bench.run(cmd);
}
