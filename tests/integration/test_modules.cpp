// Game modules end to end: the real skirmish-server loading real .so files
// (the bundled games and the deliberately broken ones of tests/modules/).
//
// - A module or params the server cannot host stop the start with exit
//   code 2 and one line naming what is wrong, before anything is bound.
// - A module that crashes in step() (SIGSEGV) kills the worker stepping it
//   once; the adopter's crash on the same match quarantines it (MatchEnd
//   GameError to every player) and no worker dies for it again.
// - A step() slower than [game] step_budget_us is counted and logged.
// - The second bundled game, battleship (2 players, turns, hidden views),
//   is played to its end by bots over real sockets on the same binary.
#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "client/games/battleship_view.h"
#include "client/lib/skirmish_client.h"
#include "tests/support/bots.h"
#include "tests/support/server_process.h"
#include "tests/support/test_client.h"
#include "tests/support/uv_loop.h"

using namespace skirmish;
using namespace skirmish::test;
using client::Client;
using client::Options;

namespace {

const bool g_sigpipe_ignored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

std::string broken(const std::string& name) { return std::string(SKIRMISH_TEST_MODULES_DIR) + "/" + name + ".so"; }

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    static int n = 0;
    path = "/tmp/skirmish-modules-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".toml";
    std::ofstream(path) << text;
  }
  ~TempFile() { unlink(path.c_str()); }
};

// Starting with `config` fails with exit 2 and one line holding `needle`.
void refused(const std::string& config, const std::string& needle) {
  TempFile cfg(config);
  auto r = run_server({"--config", cfg.path, "--port", "0", "--admin-port", "0"});
  INFO(config << "\n--- output:\n" << r.output);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.output.find(needle) != std::string::npos);
  REQUIRE(r.output.find("listening") == std::string::npos);
  REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

// The sum of every sample of a metric family (any labels), or -1.
long metric_total(uint16_t admin_port, const std::string& name) {
  const std::string body = http_get(admin_port, "/metrics");
  long sum = -1;
  size_t at = 0;
  while ((at = body.find("\n" + name, at)) != std::string::npos) {
    at += 1 + name.size();
    if (at < body.size() && (body[at] == ' ' || body[at] == '{')) {
      const size_t sp = body.find(' ', at);
      sum = (sum < 0 ? 0 : sum) + std::stol(body.substr(sp + 1));
    }
  }
  return sum;
}

}  // namespace

TEST_CASE("a module or params the server cannot host stop the start with one line and exit code 2") {
  refused("[game]\nmodule = \"" + broken("bad_abi") + "\"\n", "abi_version");
  refused("[game]\nmodule = \"" + broken("no_symbol") + "\"\n", "skirmish_game_v1");
  refused("[game]\nmodule = \"" + broken("bad_sizes") + "\"\n", "state_bytes");
  refused("[game]\nmodule = \"" + broken("huge_state") + "\"\n", "max_state_bytes");
  refused("[game]\nmodule = \"/nonexistent/dir/game.so\"\n", "/nonexistent/dir/game.so");
  refused("[game]\nmodule = \"no-such-game\"\n", "no-such-game");
  // The arena's own refusals, through its check_params.
  refused("[game.params]\nwidth = 5\n", "width");
  refused("[game.params]\nwidht = 50000\n", "widht");
  refused("[game.params]\ncoins = \"many\"\n", "coins");
  // Battleship seats two: a match of four is refused by the server's check.
  refused("[game]\nmodule = \"battleship\"\nmatch_size = 4\n", "match_size");
  refused("[game]\nmodule = \"battleship\"\nmatch_size = 2\n[game.params]\nboard = 20\n", "board");
  // --check-config loads and checks the module too.
  {
    TempFile bad("[game.params]\nwidth = 5\n");
    auto r = run_server({"--config", bad.path, "--check-config"});
    REQUIRE(r.exit_code == 2);
    REQUIRE(r.output.find("width") != std::string::npos);
    r = run_server({"--config", config_path("skirmish.toml"), "--check-config"});
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.output.find("game ok: arena") != std::string::npos);
  }
  // A tick rate outside the module's range.
  refused("[game]\nmodule = \"battleship\"\nmatch_size = 2\ntick_rate_hz = 240\n", "tick_rate_hz");
}

TEST_CASE("a module that crashes in step() quarantines its match, workers stop dying") {
  // ASan would catch the SIGSEGV and report it; the test wants the crash.
  setenv("ASAN_OPTIONS", "handle_segv=0:detect_leaks=0", 1);
  TempFile cfg("[game]\nmodule = \"" + broken("crash_step") +
               "\"\nmatch_size = 2\n[game.params]\ncrash_after = 20\nticks = 100000\n"
               "[timeouts]\nresume_grace_ms = 20000\n");
  ServerProcess srv({"--workers", "2"}, cfg.path);
  unsetenv("ASAN_OPTIONS");
  REQUIRE(srv.wait_ready());
  Loop loop;
  struct Player {
    std::unique_ptr<Client> c;
    uint32_t match_id = 0;
    int ends = 0;
    proto::EndReason reason = proto::EndReason::ScoreLimit;
  };
  std::vector<Player> ps(2);
  for (size_t i = 0; i < ps.size(); ++i) {
    Options o{.name = "p" + std::to_string(i)};
    o.reconnect.enabled = true;
    ps[i].c = std::make_unique<Client>(loop.get(), o);
    Player& p = ps[i];
    p.c->callbacks().on_welcome = [&p](const proto::Welcome& w) {
      if (!w.resumed()) p.c->queue_join();
    };
    p.c->callbacks().on_match_found = [&p](const proto::MatchFound& m) { p.match_id = m.match_id(); };
    p.c->callbacks().on_match_end = [&p](const proto::MatchEnd& m) {
      ++p.ends;
      p.reason = m.reason();
    };
    REQUIRE(p.c->connect("127.0.0.1", srv.port()) == 0);
  }
  REQUIRE(loop.run_until([&] { return ps[0].ends == 1 && ps[1].ends == 1; }, 60s));
  REQUIRE(ps[0].match_id == ps[1].match_id);
  REQUIRE(ps[0].reason == proto::EndReason::GameError);
  REQUIRE(ps[1].reason == proto::EndReason::GameError);
  // The third worker to step it found the second crash and ended it.
  REQUIRE(wait_until([&] { return metric_total(srv.admin_port(), "skirmish_matches_quarantined_total") == 1; }, 10s));
  REQUIRE(srv.log().find("quarantined, ended with GameError") != std::string::npos);
  const long respawns = metric_total(srv.admin_port(), "skirmish_process_respawns_total");
  REQUIRE(respawns == 2);  // the owner, then the adopter: each died once
  // Nothing steps the quarantined match again, so no worker dies for it:
  // an absence, so it is watched for a fixed second (not a wait for a
  // condition), while a new player still gets a Welcome.
  bool welcomed = false;
  Client late(loop.get(), Options{.name = "late"});
  late.callbacks().on_welcome = [&](const proto::Welcome&) { welcomed = true; };
  REQUIRE(late.connect("127.0.0.1", srv.port()) == 0);
  loop.run_for(1000);
  REQUIRE(welcomed);
  REQUIRE(metric_total(srv.admin_port(), "skirmish_process_respawns_total") == respawns);
  REQUIRE(srv.running());
}

TEST_CASE("a step() past game.step_budget_us is counted and logged") {
  TempFile cfg("[game]\nmodule = \"" + broken("slow_step") +
               "\"\nmatch_size = 2\nstep_budget_us = 1000\n[game.params]\nspin_us = 3000\nticks = 60\n");
  ServerProcess srv({"--workers", "1"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  int ends = 0;
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 2; ++i) {
    cs.push_back(std::make_unique<Client>(loop.get(), Options{.name = "slow" + std::to_string(i)}));
    Client* c = cs.back().get();
    c->callbacks().on_welcome = [c](const proto::Welcome&) { c->queue_join(); };
    c->callbacks().on_match_end = [&ends](const proto::MatchEnd& m) {
      CHECK(m.reason() == proto::EndReason::TimeLimit);
      ++ends;
    };
    REQUIRE(c->connect("127.0.0.1", srv.port()) == 0);
  }
  REQUIRE(loop.run_until([&] { return ends == 2; }, 60s));
  // Every one of the 60 steps took 3 ms against a 1 ms budget (the figure
  // reaches /metrics with the worker's next counter copy).
  REQUIRE(wait_until([&] { return metric_total(srv.admin_port(), "skirmish_game_steps_over_budget_total") >= 60; },
                     10s));
  REQUIRE(srv.wait_log("budget game.step_budget_us = 1000"));
}

TEST_CASE("battleship on the same binary: 8 bots play 4 matches to their end, each seat seeing only its own fleet") {
  GameConfig cfg({{"module", "\"battleship\""}, {"match_size", "2"}},
                 GameConfig::Params{"board = 6\nturn_ms = 1000\nmax_stalls = 3\nmax_turns = 400\n"});
  ServerProcess srv({"--workers", "2"}, cfg.path);
  REQUIRE(srv.wait_ready());
  Loop loop;
  Round r;
  connect_bots(loop, r, srv.port(), 8);
  // Hidden information, as each seat receives it: its own board shows its
  // ships, the other board shows a ship only where it was hit.
  int views = 0, hidden_ok = 0;
  for (auto& b : r.bots) {
    Bot* bot = b.get();
    auto play = bot->c->callbacks().on_snapshot;
    bot->c->callbacks().on_snapshot = [bot, play, &views, &hidden_ok](const client::World& w) {
      auto v = client::battleship::parse(w);
      REQUIRE(v.has_value());
      ++views;
      bool own_ships = false, hidden = true;
      for (uint32_t y = 0; y < v->board(); ++y)
        for (uint32_t x = 0; x < v->board(); ++x) {
          own_ships = own_ships || (v->own_cell(x, y) & BATTLESHIP_CELL_SHIP) != 0;
          const uint8_t o = v->other_cell(x, y);
          if ((o & BATTLESHIP_CELL_SHIP) != 0 && (o & BATTLESHIP_CELL_SHOT) == 0) hidden = false;
        }
      if (own_ships && hidden) ++hidden_ok;
      REQUIRE(v->header.you == bot->slot);
      play(w);
    };
  }
  REQUIRE(loop.run_until([&] { return all(r, [](const Bot& b) { return b.match_ends >= 1; }); }, 120s));
  std::map<uint32_t, int> seats;
  for (auto& b : r.bots) {
    INFO("bot " << b->c->player_id());
    REQUIRE(b->errors.empty());
    REQUIRE(b->game == "battleship");
    REQUIRE(b->results.size() == 2);
    REQUIRE(b->reason == proto::EndReason::Completed);
    ++seats[b->end_match_id];
    // A winner and a loser, or a draw.
    const auto& res = b->results;
    REQUIRE(((res[0].place == 1 && res[1].place == 2) || (res[0].place == 2 && res[1].place == 1) ||
             (res[0].place == 1 && res[1].place == 1)));
  }
  REQUIRE(seats.size() == 4);
  for (auto& [id, n] : seats) REQUIRE(n == 2);
  REQUIRE(views > 0);
  REQUIRE(hidden_ok == views);
}
