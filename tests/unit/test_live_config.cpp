// core/live_config.h: the key table SIGHUP reports from covers every key the
// loader accepts, and marks live exactly the keys take_live_keys copies.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/live_config.h"

using namespace skirmish;

TEST_CASE("live config: key_fields names every config key, in order") {
  std::vector<std::string> names;
  for (const core::KeyField& f : core::key_fields())
    if (f.key != std::string_view("game.params")) names.emplace_back(f.key);  // the module's table, not a key
  CHECK(names == config::known_keys());
}

TEST_CASE("live config: the live keys are the ones take_live_keys copies") {
  std::set<std::string> live;
  for (const core::KeyField& f : core::key_fields())
    if (f.live) live.insert(f.key);
  CHECK(live == std::set<std::string>{"server.log_level", "limits.messages_per_second", "limits.message_burst",
                                      "limits.max_inputs_queued", "timeouts.handshake_timeout_ms",
                                      "timeouts.idle_timeout_ms", "timeouts.resume_grace_ms",
                                      "timeouts.drain_timeout_ms", "timeouts.upgrade_timeout_ms"});
  // And each of them does change through take_live_keys; no other does.
  std::string error;
  auto a = config::load_string("", error);
  auto b = config::load_string(
      "[server]\nlog_level = \"debug\"\nworkers = 3\n[limits]\nmessages_per_second = 7\nmessage_burst = 9\n"
      "max_inputs_queued = 2\nmax_connections = 5\n[timeouts]\nhandshake_timeout_ms = 1000\nidle_timeout_ms = 2000\n"
      "resume_grace_ms = 3000\ndrain_timeout_ms = 4000\nupgrade_timeout_ms = 5000\n[game]\nmatch_size = 2\n",
      error);
  REQUIRE(a);
  REQUIRE(b);
  config::Config c = *a;
  core::take_live_keys(c, *b);
  for (const core::KeyField& f : core::key_fields()) {
    INFO(f.key);
    if (f.live)
      CHECK(f.text(c) == f.text(*b));
    else
      CHECK(f.text(c) == f.text(*a));
  }
  CHECK(core::key_fields()[4].text(*b) == "3");  // server.workers, not "auto"
}
