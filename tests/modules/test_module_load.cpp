// Unit tests of server/module's load() and check_table() against the
// deliberately broken modules of tests/modules/: each is refused with its
// one line (the line the server prints before exiting with code 2), the
// bundled games load, the modules that load but misbehave do misbehave
// (crash_step really dies of SIGSEGV, nondet_step is caught by the SDK's
// determinism harness, slow_step really is slow), and check_table refuses
// a bad table held in memory.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "module/module.h"
#include "skirmish/game_check.h"

namespace mod = skirmish::module;
namespace gc = skirmish::game_check;

namespace {

std::string broken(const char* name) { return std::string(SKIRMISH_TEST_MODULES_DIR) + "/" + name + ".so"; }
std::string bundled(const char* name) { return std::string(SKIRMISH_GAMES_BUILD_DIR) + "/" + name + ".so"; }

// load() must fail; returns its one line.
std::string refusal(const std::string& path, const mod::Limits& limits = {}) {
  std::string error;
  const auto m = mod::load(path, limits, error);
  REQUIRE_FALSE(m.has_value());
  REQUIRE_FALSE(error.empty());
  REQUIRE(error.find('\n') == std::string::npos);
  REQUIRE(error.find(path) != std::string::npos);  // the line names the file
  return error;
}

mod::Module loaded(const std::string& path) {
  std::string error;
  auto m = mod::load(path, mod::Limits{}, error);
  INFO(error);
  REQUIRE(m.has_value());
  REQUIRE(m->game != nullptr);
  return *m;
}

}  // namespace

TEST_CASE("load refuses a module of another ABI version") {
  const std::string e = refusal(broken("bad_abi"));
  CHECK(e.find("abi_version 2 is not supported (this server speaks 1)") != std::string::npos);
}

TEST_CASE("load refuses state_bytes 0 and state_bytes above max_state_bytes") {
  CHECK(refusal(broken("bad_sizes")).find("state_bytes 0 is out of range (allowed: 1..65536, [game] max_state_bytes)") !=
        std::string::npos);
  CHECK(refusal(broken("huge_state")).find("state_bytes 1073741824 is out of range (allowed: 1..65536") !=
        std::string::npos);
  // The limit is the configured one: the arena's state (under 1 KiB) is
  // refused by a server that allows only 64 bytes.
  mod::Limits tiny;
  tiny.max_state_bytes = 64;
  CHECK(refusal(bundled("arena"), tiny).find("(allowed: 1..64, [game] max_state_bytes)") != std::string::npos);
}

TEST_CASE("load refuses a module without the skirmish_game_v1 symbol") {
  CHECK(refusal(broken("no_symbol")).find("no symbol skirmish_game_v1") != std::string::npos);
}

TEST_CASE("load refuses a file that is missing or not a shared object") {
  CHECK(refusal(broken("does_not_exist")).find("cannot load") != std::string::npos);
  CHECK(refusal(std::string(SKIRMISH_TEST_MODULES_DIR) + "/../modules/CMakeFiles").find("cannot load") !=
        std::string::npos);
}

TEST_CASE("load accepts arena and battleship, by path and check_match takes their defaults") {
  for (const char* name : {"arena", "battleship"}) {
    CAPTURE(name);
    const mod::Module m = loaded(bundled(name));
    CHECK(std::string(m.game->name) == name);
    std::string error;
    const mod::GameParams none({}, 30);
    CHECK(mod::check_match(m, none, 2, error));
    CHECK(error.empty());
    // Each game refuses an unknown key with one line naming it.
    const mod::GameParams typo({mod::GameParam{"bored", SKIRMISH_PARAM_INT, 8, 0, ""}}, 30);
    CHECK_FALSE(mod::check_match(m, typo, 2, error));
    CHECK(error.rfind("game.params: unknown key bored", 0) == 0);
  }
  std::string error;
  const mod::Module b = loaded(bundled("battleship"));
  CHECK_FALSE(mod::check_match(b, mod::GameParams({}, 30), 3, error));
  CHECK(error == "game.match_size = 3 is out of range for game battleship (allowed: 2..2)");
}

TEST_CASE("the misbehaving modules load: their tables are valid") {
  for (const char* name : {"crash_step", "slow_step", "nondet_step"}) {
    CAPTURE(name);
    loaded(broken(name));
  }
}

TEST_CASE("check_table refuses bad tables held in memory, one line each") {
  const mod::Module m = loaded(bundled("battleship"));
  const mod::Limits limits;
  std::string error;
  CHECK_FALSE(mod::check_table(nullptr, limits, error));
  CHECK(error == "skirmish_game_v1() returned NULL");

  struct Case {
    void (*breaks)(skirmish_game_v1_t&);
    const char* says;
  };
  const Case cases[] = {
      {[](skirmish_game_v1_t& t) { t.abi_version = 2; }, "abi_version 2 is not supported"},
      {[](skirmish_game_v1_t& t) { t.table_bytes = 8; }, "table_bytes 8 is smaller than the v1 table"},
      {[](skirmish_game_v1_t& t) { t.name = "Bad Name"; }, "name must be 1..32 characters of [a-z0-9_-]"},
      {[](skirmish_game_v1_t& t) { t.version = ""; }, "version must be 1..32 bytes"},
      {[](skirmish_game_v1_t& t) { t.state_bytes = 0; }, "state_bytes 0 is out of range"},
      {[](skirmish_game_v1_t& t) { t.max_input_bytes = 57; }, "max_input_bytes 57 is out of range (allowed: 1..56)"},
      {[](skirmish_game_v1_t& t) { t.max_view_bytes = 0; }, "max_view_bytes 0 is out of range"},
      {[](skirmish_game_v1_t& t) { t.min_players = 3; }, "players 3..2 is not allowed"},
      {[](skirmish_game_v1_t& t) { t.max_players = 17; }, "players 2..17 is not allowed"},
      {[](skirmish_game_v1_t& t) { t.min_tick_rate_hz = 0; }, "tick rates 0..60 Hz are not allowed"},
      {[](skirmish_game_v1_t& t) { t.step = nullptr; }, "must all be set"},
      {[](skirmish_game_v1_t& t) { t.view = nullptr; }, "must all be set"},
  };
  for (const Case& c : cases) {
    skirmish_game_v1_t t = *m.game;
    c.breaks(t);
    error.clear();
    CAPTURE(c.says);
    CHECK_FALSE(mod::check_table(&t, limits, error));
    CHECK(error.find(c.says) != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
  }
  // Optional callbacks may be NULL.
  skirmish_game_v1_t t = *m.game;
  t.bot_input = nullptr;
  t.public_params = nullptr;
  CHECK(mod::check_table(&t, limits, error));
}

TEST_CASE("crash_step really dies of SIGSEGV in step, on its tick") {
  const mod::Module m = loaded(broken("crash_step"));
  const skirmish_game_v1_t* t = m.game;
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    alignas(16) std::uint8_t state[256];
    const skirmish_param p{"crash_after", SKIRMISH_PARAM_INT, 0, 5, 0.0, nullptr};
    const skirmish_params params{&p, 1, 30};
    t->init(state, &params, 2, 1);
    const skirmish_inputs none{nullptr, 0, 3};
    for (std::uint32_t tick = 1; tick < 5; ++tick) t->step(state, &none, tick);  // ticks 1..4 survive
    ::_exit(7);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 7);

  const pid_t pid2 = ::fork();
  REQUIRE(pid2 >= 0);
  if (pid2 == 0) {
    std::signal(SIGSEGV, SIG_DFL);  // Catch's handler would report it and exit otherwise
    alignas(16) std::uint8_t state[256];
    const skirmish_param p{"crash_after", SKIRMISH_PARAM_INT, 0, 5, 0.0, nullptr};
    const skirmish_params params{&p, 1, 30};
    t->init(state, &params, 2, 1);
    const skirmish_inputs none{nullptr, 0, 3};
    for (std::uint32_t tick = 1; tick <= 5; ++tick) t->step(state, &none, tick);
    ::_exit(0);  // not reached
  }
  REQUIRE(::waitpid(pid2, &status, 0) == pid2);
  // Under SKIRMISH_SANITIZE too: crash_step is built without UBSan's null
  // check (so the store really faults) and ASan honours our SIG_DFL
  // (allow_user_segv_handler is on by default), so the child dies of it.
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGSEGV);
}

TEST_CASE("slow_step takes at least spin_us per step") {
  const mod::Module m = loaded(broken("slow_step"));
  alignas(16) std::uint8_t state[256];
  const skirmish_param p{"spin_us", SKIRMISH_PARAM_INT, 0, 3000, 0.0, nullptr};
  const skirmish_params params{&p, 1, 30};
  m.game->init(state, &params, 1, 1);
  const skirmish_inputs none{nullptr, 0, 1};
  const auto t0 = std::chrono::steady_clock::now();
  m.game->step(state, &none, 1);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(us >= 3000);
}

TEST_CASE("game_check: the bundled games pass, nondet_step diverges on its first tick") {
  for (const char* name : {"arena", "battleship"}) {
    CAPTURE(name);
    const mod::Module m = loaded(bundled(name));
    gc::Options o;
    o.ticks = 3000;
    o.seed = 11;
    o.players = 2;
    o.tick_rate_hz = 30;
    const gc::Result r = gc::run(m.game, o);
    INFO(r.message);
    CHECK(r.status == gc::Status::Ok);
    CHECK(r.steps == 3000);
    CHECK(r.inputs_ok > 1000);
    CHECK(r.inputs_refused > 100);
    CHECK(r.views >= 3000);
  }
  const mod::Module m = loaded(broken("nondet_step"));
  const gc::Result r = gc::run(m.game, gc::Options{});
  CHECK(r.status == gc::Status::Divergence);
  CHECK(r.tick == 1);
  CHECK(r.message.find("tick 1 ") == 0);

  // A module refusing its params is a bad module for the harness, not a pass.
  const mod::Module b = loaded(bundled("battleship"));
  const skirmish_param p{"board", SKIRMISH_PARAM_INT, 0, 20, 0.0, nullptr};
  const skirmish_params params{&p, 1, 30};
  gc::Options o;
  o.params = &params;
  o.players = 2;
  const gc::Result bad = gc::run(b.game, o);
  CHECK(bad.status == gc::Status::BadModule);
  CHECK(bad.message == "check_params refused: board = 20 is out of range (allowed: 6..10)");
}
