// Unit tests for skirmish::config: the shipped files load, defaults match
// the documentation, every class of bad input gives one line that names the
// key and what is allowed, and flags override the file.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"

#ifndef SKIRMISH_VERSION
#define SKIRMISH_VERSION "dev"
#endif

namespace cfg = skirmish::config;

namespace {

// The shipped configs, by the source tree's absolute path (set by CMake), so
// the test runs from any working directory (__FILE__ may be relative: a
// compiler launcher such as ccache with a base directory makes it so).
std::string configs_dir() { return std::string(SKIRMISH_SOURCE_DIR) + "/configs/"; }

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

cfg::Config load_ok(const std::string& toml) {
  std::string error;
  auto c = cfg::load_string(toml, error);
  INFO(error);
  REQUIRE(c);
  return *c;
}

// Every failure must be one line starting with "config: ".
std::string load_error(const std::string& toml) {
  std::string error;
  auto c = cfg::load_string(toml, error);
  INFO(toml);
  REQUIRE_FALSE(c);
  CHECK(error.rfind("config: ", 0) == 0);
  CHECK(error.find('\n') == std::string::npos);
  return error;
}

cfg::Options run(std::vector<std::string> args) {
  args.insert(args.begin(), "skirmish-server");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  return cfg::parse_command_line(static_cast<int>(args.size()), argv.data());
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A file that removes itself, for load_file tests.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/skirmish_test_config_XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) ==
            static_cast<ssize_t>(text.size()));
    close(fd);
    path = name;
  }
  ~TempFile() { unlink(path.c_str()); }
};

// The documented ranges, written out independently of config.cpp so the two
// must agree: table, key, min, max.
struct Range {
  const char* table;
  const char* key;
  long long min;
  long long max;
};
const Range kRanges[] = {
    {"server", "listen_port", 0, 65535},
    {"server", "admin_port", 0, 65535},
    {"limits", "max_players", 1, 1000000},
    {"limits", "max_matches", 1, 65535},
    {"limits", "max_connections", 1, 1000000},
    {"limits", "max_connections_per_ip", 1, 1000000},
    {"limits", "max_frame_bytes_handshake", 64, 65536},
    {"limits", "max_frame_bytes", 256, 16777216},
    {"limits", "write_queue_bytes", 4096, 1073741824},
    {"limits", "socket_send_buffer_bytes", 0, 16777216},
    {"limits", "messages_per_second", 1, 100000},
    {"limits", "message_burst", 1, 1000000},
    {"limits", "mailbox_depth", 16, 1048576},
    {"limits", "reserved_fds", 4, 1024},
    {"limits", "max_inputs_queued", 1, 8},
    {"timeouts", "handshake_timeout_ms", 100, 600000},
    {"timeouts", "idle_timeout_ms", 1000, 3600000},
    {"timeouts", "resume_grace_ms", 0, 3600000},
    {"timeouts", "drain_timeout_ms", 0, 600000},
    {"timeouts", "upgrade_timeout_ms", 1000, 600000},
    {"timeouts", "heartbeat_timeout_ms", 500, 600000},
    {"timeouts", "respawn_backoff_max_ms", 10, 600000},
    {"game", "tick_rate_hz", 1, 240},
    {"game", "match_size", 2, 16},
    {"game", "max_state_bytes", 64, 1048576},
    {"game", "step_budget_us", 1, 1000000},
    {"matchmaking", "window_initial", 0, 5000},
    {"matchmaking", "window_widen_per_s", 0, 5000},
    {"matchmaking", "max_wait_ms", 0, 3600000},
    {"matchmaking", "interval_ms", 10, 10000},
    {"matchmaking", "rating_initial", 0, 10000},
    {"auth", "leeway_s", 0, 3600},
    {"auth", "max_token_bytes", 256, 16384},
    {"store", "busy_timeout_ms", 1, 60000},
    {"fleet", "redis_timeout_ms", 10, 60000},
};

std::string one_key(const std::string& table, const std::string& key,
                    const std::string& value) {
  // The handshake cap may not exceed max_frame_bytes: lift that so the
  // handshake key's own range is what gets tested.
  const std::string lift =
      key == "max_frame_bytes_handshake" ? "max_frame_bytes = 16777216\n" : "";
  return "[" + table + "]\n" + lift + key + " = " + value + "\n";
}

}  // namespace

TEST_CASE("defaults equal the documented values", "[config]") {
  const cfg::Config c = load_ok("");
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 7777);
  CHECK(c.admin_host == "127.0.0.1");
  CHECK(c.admin_port == 7778);
  CHECK(c.workers_auto);
  CHECK(c.workers >= 1);
  CHECK(c.workers <= 64);
  CHECK(c.shm_name == "skirmish");
  CHECK(c.log_level == "info");

  CHECK(c.max_players == 10000);
  CHECK(c.max_matches == 4096);
  CHECK(c.max_connections == 100000);
  CHECK(c.max_connections_per_ip == 64);
  CHECK(c.max_frame_bytes_handshake == 256);
  CHECK(c.max_frame_bytes == 4096);
  CHECK(c.write_queue_bytes == 262144);
  CHECK(c.messages_per_second == 120);
  CHECK(c.message_burst == 240);
  CHECK(c.mailbox_depth == 4096);
  CHECK(c.reserved_fds == 32);
  CHECK(c.max_inputs_queued == 4);

  CHECK(c.handshake_timeout_ms == 5000);
  CHECK(c.idle_timeout_ms == 30000);
  CHECK(c.resume_grace_ms == 30000);
  CHECK(c.drain_timeout_ms == 30000);
  CHECK(c.heartbeat_timeout_ms == 3000);
  CHECK(c.respawn_backoff_max_ms == 5000);

  CHECK(c.tick_rate_hz == 30);
  CHECK(c.match_size == 4);
  CHECK(c.game_module == "arena");
  CHECK(c.max_state_bytes == 65536);
  CHECK(c.step_budget_us == 2000);

  CHECK(c.window_initial == 100);
  CHECK(c.window_widen_per_s == 50);
  CHECK(c.max_wait_ms == 30000);
  CHECK(c.interval_ms == 100);
  CHECK(c.rating_initial == 1500);

  CHECK(c.agones_health_interval_ms == 2000);
  CHECK(c.agones_request_timeout_ms == 1000);

  CHECK(c.source == "<string>");

  // Config{} holds the same values apart from the unresolved worker count.
  cfg::Config plain;
  plain.workers = c.workers;
  plain.source = c.source;
  CHECK(plain == c);
  std::string error;
  CHECK(cfg::validate(cfg::Config{}, error));
}

TEST_CASE("shipped skirmish.toml loads and holds the defaults", "[config]") {
  const std::string path = configs_dir() + "skirmish.toml";
  std::string error;
  auto c = cfg::load_file(path, error);
  INFO(error);
  REQUIRE(c);
  CHECK(c->source == path);
  CHECK(c->listen_host == "127.0.0.1");  // `make run` must stay on loopback

  // Every key at its default; [game.params] is the arena's, written out
  // with its own defaults (the module owns those).
  CHECK(c->game_params.size() == 6);
  cfg::Config defaults = load_ok("");
  defaults.source = path;
  defaults.game_params = c->game_params;
  CHECK(*c == defaults);
}

TEST_CASE("shipped skirmish.toml writes out every key", "[config]") {
  const std::string text = read_text(configs_dir() + "skirmish.toml");
  REQUIRE_FALSE(text.empty());
  const auto keys = cfg::known_keys();
  CHECK(keys.size() == 8 + 13 + 7 + 9 + 5 + 2 + 8 + 2 + 5);
  for (const std::string& full : keys) {
    const std::string table = full.substr(0, full.find('.'));
    const std::string key = full.substr(full.find('.') + 1);
    const auto start = text.find("\n[" + table + "]\n");
    INFO(full);
    REQUIRE(start != std::string::npos);
    const auto end = text.find("\n[", start + 1);
    const auto at = text.find("\n" + key + " =", start);
    CHECK(at != std::string::npos);
    CHECK(at < end);
    // Each key carries a comment on its line.
    const auto eol = text.find('\n', at + 1);
    CHECK(text.substr(at, eol - at).find('#') != std::string::npos);
  }
}

TEST_CASE("shipped loadtest.toml lifts only the per-address caps", "[config]") {
  const std::string path = configs_dir() + "loadtest.toml";
  std::string error;
  auto c = cfg::load_file(path, error);
  INFO(error);
  REQUIRE(c);
  CHECK(c->max_connections_per_ip == 100000);
  CHECK(c->max_players == 100000);
  CHECK(c->listen_port == 7777);
  CHECK(c->admin_port == 7778);

  cfg::Config defaults = load_ok("");
  defaults.source = path;
  defaults.max_connections_per_ip = 100000;
  defaults.max_players = 100000;
  defaults.game_params = c->game_params;  // the arena's, at its defaults
  CHECK(*c == defaults);
}

TEST_CASE("shipped container.toml only listens on every interface", "[config]") {
  const std::string path = configs_dir() + "container.toml";
  std::string error;
  auto c = cfg::load_file(path, error);
  INFO(error);
  REQUIRE(c);
  cfg::Config defaults = load_ok("");
  defaults.source = path;
  defaults.listen_host = "0.0.0.0";
  defaults.admin_host = "0.0.0.0";
  defaults.game_params = c->game_params;  // the arena's, at its defaults
  CHECK(*c == defaults);
}

TEST_CASE("every integer key accepts its range and refuses beyond it",
          "[config]") {
  for (const Range& r : kRanges) {
    const std::string who = std::string(r.table) + "." + r.key;
    INFO(who);
    load_ok(one_key(r.table, r.key, std::to_string(r.min)));
    load_ok(one_key(r.table, r.key, std::to_string(r.max)));

    const std::string low =
        load_error(one_key(r.table, r.key, std::to_string(r.min - 1)));
    const std::string high =
        load_error(one_key(r.table, r.key, std::to_string(r.max + 1)));
    const std::string allowed = "(allowed: " + std::to_string(r.min) + ".." +
                                std::to_string(r.max) + ")";
    CHECK(low == "config: " + who + " = " + std::to_string(r.min - 1) +
                     " is out of range " + allowed);
    CHECK(high == "config: " + who + " = " + std::to_string(r.max + 1) +
                      " is out of range " + allowed);
  }
}

TEST_CASE("out of range gives the documented line", "[config]") {
  CHECK(load_error("[limits]\nmax_frame_bytes = 10\n") ==
        "config: limits.max_frame_bytes = 10 is out of range "
        "(allowed: 256..16777216)");
  CHECK(load_error("[server]\nlisten_port = 70000\n") ==
        "config: server.listen_port = 70000 is out of range "
        "(allowed: 0..65535)");
  CHECK(contains(load_error("[game]\nmatch_size = -9223372036854775808\n"),
                 "game.match_size = -9223372036854775808 is out of range"));
}

TEST_CASE("[game.params] is handed to the module as typed pairs, other shapes are refused", "[config]") {
  std::string error;
  auto c = skirmish::config::load_string(
      "[game]\nmodule = \"battleship\"\n[game.params]\nboard = 8\nratio = 0.5\nfog = true\nfleet = \"4,3\"\n", error);
  INFO(error);
  REQUIRE(c);
  CHECK(c->game_module == "battleship");
  REQUIRE(c->game_params.size() == 4);
  // In key order: toml++ keeps a table's keys sorted.
  CHECK(c->game_params[0].key == "board");
  CHECK(c->game_params[0].type == SKIRMISH_PARAM_INT);
  CHECK(c->game_params[0].i == 8);
  CHECK(c->game_params[1].key == "fleet");
  CHECK(c->game_params[1].type == SKIRMISH_PARAM_STRING);
  CHECK(c->game_params[1].s == "4,3");
  CHECK(c->game_params[2].key == "fog");
  CHECK(c->game_params[2].type == SKIRMISH_PARAM_BOOL);
  CHECK(c->game_params[2].i == 1);
  CHECK(c->game_params[3].key == "ratio");
  CHECK(c->game_params[3].type == SKIRMISH_PARAM_FLOAT);
  CHECK(c->game_params[3].f == 0.5);
  CHECK(contains(load_error("[game.params]\nboard = [1, 2]\n"),
                 "game.params.board must be an integer, float, boolean or string"));
  CHECK(contains(load_error("[game]\nparams = 3\n"), "game.params must be a table"));
  CHECK(contains(load_error("[game]\nmodule = \"\"\n"), "game.module"));
}

TEST_CASE("a value of the wrong TOML type is refused", "[config]") {
  CHECK(load_error("[timeouts]\nidle_timeout_ms = \"30s\"\n") ==
        "config: timeouts.idle_timeout_ms must be an integer, got string "
        "\"30s\" (allowed: 1000..3600000)");
  CHECK(contains(load_error("[game]\ntick_rate_hz = 30.0\n"),
                 "game.tick_rate_hz must be an integer, got float"));
  CHECK(contains(load_error("[game]\ntick_rate_hz = true\n"), "got boolean"));
  CHECK(contains(load_error("[game]\ntick_rate_hz = [30]\n"), "got array"));
  const std::string host = load_error("[server]\nlisten_host = 127\n");
  CHECK(contains(host, "server.listen_host must be a string, got integer"));
  CHECK(contains(host, "allowed: an IPv4 or IPv6 address literal"));
  CHECK(contains(load_error("[server]\nlog_level = 3\n"),
                 "server.log_level must be a string"));
  CHECK(contains(load_error("server = 5\n"),
                 "config: server must be a table, got integer"));
  CHECK(contains(load_error("[[game]]\ntick_rate_hz = 5\n"),
                 "config: game must be a table, got array"));
}

TEST_CASE("unknown keys and tables are refused", "[config]") {
  CHECK(load_error("[game]\ntickrate = 30\n") ==
        "config: unknown key game.tickrate (did you mean game.tick_rate_hz?)");
  // A real key in the wrong table points to the right one.
  CHECK(load_error("[server]\ntick_rate_hz = 30\n") ==
        "config: unknown key server.tick_rate_hz "
        "(did you mean game.tick_rate_hz?)");
  CHECK(contains(load_error("listen_port = 1\n"),
                 "unknown key listen_port (did you mean server.listen_port?)"));
  const std::string far = load_error("[game]\nzzzzzzzzzz = 1\n");
  CHECK(contains(far, "unknown key game.zzzzzzzzzz"));
  CHECK(contains(far, "allowed in [game]: module, tick_rate_hz, match_size"));
  CHECK(contains(load_error("[server.extra]\nx = 1\n"),
                 "unknown key server.extra"));

  CHECK(load_error("[gmae]\ntick_rate_hz = 30\n") ==
        "config: unknown table [gmae] (did you mean [game]?)");
  CHECK(load_error("[database]\nurl = \"x\"\n") ==
        "config: unknown table [database] "
        "(allowed: server, limits, timeouts, game, matchmaking, agones, auth, store, fleet)");
}

TEST_CASE("[auth] and [store]: types, one secret source, a key for required, a handshake cap that fits", "[config]") {
  const cfg::Config d = load_ok("");
  CHECK_FALSE(d.auth_enabled());
  CHECK_FALSE(d.auth_required);
  CHECK(d.store_path.empty());
  const std::string big = "[limits]\nmax_frame_bytes_handshake = 4096\n";
  const cfg::Config a = load_ok(big + "[auth]\nrequired = true\nhs256_secret_env = \"SKM_SECRET\"\n"
                                      "issuer = \"studio\"\naudience = \"skirmish\"\n"
                                      "[store]\npath = \"/tmp/x.db\"\n");
  CHECK(a.auth_enabled());
  CHECK(a.auth_required);
  CHECK(a.auth_hs256_secret_env == "SKM_SECRET");
  CHECK(a.auth_issuer == "studio");
  CHECK(a.store_path == "/tmp/x.db");
  CHECK(load_error("[auth]\nrequired = 1\n") ==
        "config: auth.required must be a boolean, got integer 1 (allowed: true or false)");
  CHECK(contains(load_error("[auth]\nhs256_secret_env = \"9LIVES\"\n"), "auth.hs256_secret_env"));
  CHECK(contains(load_error(big + "[auth]\nhs256_secret_env = \"A\"\nhs256_secret_file = \"/f\"\n"),
                 "auth.hs256_secret_env and auth.hs256_secret_file are both set"));
  CHECK(contains(load_error("[auth]\nrequired = true\n"), "auth.required = true but no key is set"));
  CHECK(load_error("[auth]\nrs256_public_key_file = \"/k.pem\"\n") ==
        "config: limits.max_frame_bytes_handshake = 256 is less than auth.max_token_bytes + 128 = 2176 "
        "(allowed: a handshake cap that fits a Hello carrying a token)");
  CHECK(contains(load_error("[auth]\nissuer = \"a\\nb\"\n"), "auth.issuer"));
  // [fleet]: a URL without a password in it, one password source.
  CHECK(load_ok("[fleet]\nredis = \"redis://127.0.0.1:6379/2\"\n").fleet_redis == "redis://127.0.0.1:6379/2");
  CHECK(contains(load_error("[fleet]\nredis = \"redis://:pw@127.0.0.1\"\n"), "no password in it"));
  CHECK(contains(load_error("[fleet]\nredis = \"http://x\"\n"), "fleet.redis"));
  CHECK(contains(load_error("[fleet]\nkey_prefix = \"a b\"\n"), "fleet.key_prefix"));
  CHECK(contains(load_error("[fleet]\nredis_password_env = \"A\"\nredis_password_file = \"/f\"\n"),
                 "both set"));
}

TEST_CASE("log_level accepts exactly the spdlog names", "[config]") {
  for (const char* level :
       {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    CHECK(load_ok(
              one_key("server", "log_level", std::string("\"") + level + "\""))
              .log_level == level);
  }
  CHECK(load_error("[server]\nlog_level = \"loud\"\n") ==
        "config: server.log_level = \"loud\" is not allowed "
        "(allowed: trace|debug|info|warn|error|critical|off)");
  CHECK(
      contains(load_error("[server]\nlog_level = \"INFO\"\n"), "not allowed"));
}

TEST_CASE("workers is 1..64 or \"auto\"", "[config]") {
  CHECK(load_error("[server]\nworkers = \"lots\"\n") ==
        "config: server.workers = \"lots\" is not allowed "
        "(allowed: 1..64 or \"auto\")");
  CHECK(load_error("[server]\nworkers = 0\n") ==
        "config: server.workers = 0 is out of range "
        "(allowed: 1..64 or \"auto\")");
  CHECK(contains(load_error("[server]\nworkers = 65\n"), "1..64 or \"auto\""));
  CHECK(contains(load_error("[server]\nworkers = 2.5\n"),
                 "server.workers must be an integer or \"auto\", got float"));

  const cfg::Config fixed = load_ok("[server]\nworkers = 8\n");
  CHECK(fixed.workers == 8);
  CHECK_FALSE(fixed.workers_auto);

  const cfg::Config automatic = load_ok("[server]\nworkers = \"auto\"\n");
  CHECK(automatic.workers_auto);
  CHECK(automatic.workers >= 1);
  CHECK(automatic.workers <= 64);
}

TEST_CASE("string keys are checked", "[config]") {
  CHECK(load_ok("[server]\nlisten_host = \"::1\"\n").listen_host == "::1");
  CHECK(load_ok("[server]\nadmin_host = \"0.0.0.0\"\n").admin_host ==
        "0.0.0.0");
  CHECK(contains(load_error("[server]\nlisten_host = \"localhost\"\n"),
                 "server.listen_host = \"localhost\" is not allowed"));
  CHECK(contains(load_error("[server]\nadmin_host = \"\"\n"),
                 "server.admin_host"));

  CHECK(load_ok("[server]\nshm_name = \"sk-1.test_A\"\n").shm_name ==
        "sk-1.test_A");
  const std::string longest(200, 'a');
  CHECK(
      load_ok(one_key("server", "shm_name", "\"" + longest + "\"")).shm_name ==
      longest);
  const std::vector<std::string> bad_names = {
      "\"a/b\"", "\"\"", "\"..\"", "\"sp ace\"",
      "\"" + std::string(201, 'a') + "\""};
  for (const std::string& bad : bad_names) {
    const std::string e = load_error(one_key("server", "shm_name", bad));
    CHECK(contains(e, "server.shm_name = "));
    CHECK(contains(e, "(allowed: 1..200 characters of A-Z a-z 0-9 . _ -"));
  }
  // A value holding a newline is echoed escaped: the error stays one line.
  CHECK(contains(load_error("[server]\nshm_name = \"a\\nb\"\n"),
                 "\"a\\u000ab\""));
}

TEST_CASE("max_frame_bytes must not be below the handshake cap", "[config]") {
  CHECK(load_error("[limits]\nmax_frame_bytes_handshake = 1024\n"
                   "max_frame_bytes = 512\n") ==
        "config: limits.max_frame_bytes = 512 is less than "
        "limits.max_frame_bytes_handshake = 1024 "
        "(allowed: max_frame_bytes >= max_frame_bytes_handshake)");
  load_ok(
      "[limits]\nmax_frame_bytes_handshake = 1024\nmax_frame_bytes = 1024\n");
  // Not a rule: a burst smaller than the sustained rate is allowed.
  load_ok("[limits]\nmessages_per_second = 100\nmessage_burst = 10\n");
}

TEST_CASE("a TOML syntax error names file, line and column", "[config]") {
  const std::string e = load_error("[server]\nlisten_port = \n");
  CHECK(e.rfind("config: <string>:2:", 0) == 0);

  TempFile file("# comment\n[game]\ntick_rate_hz = 30\nmatch_size = = 4\n");
  std::string error;
  CHECK_FALSE(cfg::load_file(file.path, error));
  CHECK(error.rfind("config: " + file.path + ":4:", 0) == 0);
  CHECK(error.find('\n') == std::string::npos);

  CHECK(contains(load_error("[server]\n[server]\n"), "<string>:2:"));
}

TEST_CASE("a file that cannot be read is one line with the reason",
          "[config]") {
  std::string error;
  CHECK_FALSE(cfg::load_file("/nonexistent/skirmish.toml", error));
  CHECK(error ==
        "config: cannot read /nonexistent/skirmish.toml: "
        "No such file or directory");

  error.clear();
  CHECK_FALSE(cfg::load_file("/", error));
  CHECK(error.rfind("config: cannot read /: ", 0) == 0);

  TempFile file("[game]\nmatch_size = 6\n");
  auto c = cfg::load_file(file.path, error);
  REQUIRE(c);
  CHECK(c->match_size == 6);
  CHECK(c->source == file.path);
}

TEST_CASE("validate checks a Config built in code", "[config]") {
  cfg::Config c = load_ok("");
  std::string error;
  CHECK(cfg::validate(c, error));
  c.max_frame_bytes = 10;
  CHECK_FALSE(cfg::validate(c, error));
  CHECK(error ==
        "config: limits.max_frame_bytes = 10 is out of range "
        "(allowed: 256..16777216)");
  c = load_ok("");
  c.shm_name = "a/b";
  CHECK_FALSE(cfg::validate(c, error));
  CHECK(contains(error, "server.shm_name"));
}

TEST_CASE("describe is one line with the essentials", "[config]") {
  cfg::Config c = load_ok("[server]\nworkers = 3\nlisten_host = \"::1\"\n");
  const std::string line = cfg::describe(c);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(contains(line, "[::1]:7777"));
  CHECK(contains(line, "127.0.0.1:7778"));
  CHECK(contains(line, "workers 3"));
  CHECK(contains(line, "shm skirmish"));
  CHECK(contains(line, "tick 30 Hz"));
  CHECK(contains(line, "match size 4"));
}

TEST_CASE("flags override the file", "[config][flags]") {
  const std::string path = configs_dir() + "skirmish.toml";
  const cfg::Options o =
      run({"--config", path, "--port", "0", "--admin-port=0", "--workers", "2",
           "--log-level", "debug", "--shm-name", "x"});
  INFO(o.message);
  REQUIRE(o.status == cfg::ParseStatus::Ok);
  CHECK(o.exit_code == 0);
  CHECK(o.config.listen_port == 0);
  CHECK(o.config.admin_port == 0);
  CHECK(o.config.workers == 2);
  CHECK_FALSE(o.config.workers_auto);
  CHECK(o.config.log_level == "debug");
  CHECK(o.config.shm_name == "x");
  CHECK(o.config.source == path);
  CHECK(o.config.tick_rate_hz == 30);  // untouched keys keep the file's value

  const cfg::Options automatic = run({"--config", path, "--workers", "auto"});
  REQUIRE(automatic.status == cfg::ParseStatus::Ok);
  CHECK(automatic.config.workers_auto);
  CHECK(automatic.config.workers >= 1);

  // A flag wins over an explicit file value, and the file alone is as loaded.
  TempFile file("[server]\nworkers = 5\nlisten_port = 9000\n");
  const cfg::Options plain = run({"--config", file.path});
  REQUIRE(plain.status == cfg::ParseStatus::Ok);
  CHECK(plain.config.listen_port == 9000);
  CHECK(plain.config.workers == 5);
  const cfg::Options over = run({"-c", file.path, "--workers", "auto"});
  REQUIRE(over.status == cfg::ParseStatus::Ok);
  CHECK(over.config.workers_auto);
}

TEST_CASE("a bad flag value is an error naming the flag", "[config][flags]") {
  const std::string path = configs_dir() + "skirmish.toml";
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const Case cases[] = {
      {{"--port", "70000"},
       "config: --port = 70000 is out of range (allowed: 0..65535)"},
      {{"--port", "abc"},
       "config: --port = \"abc\" is not an integer (allowed: 0..65535)"},
      {{"--port", "99999999999999999999999"}, "--port = 9999"},
      {{"--admin-port", "65536"}, "--admin-port = 65536 is out of range"},
      {{"--workers", "lots"},
       "config: --workers = \"lots\" is not allowed (allowed: 1..64 or "
       "\"auto\")"},
      {{"--workers", "0"}, "--workers = 0 is out of range"},
      {{"--log-level", "loud"}, "--log-level = \"loud\" is not allowed"},
      {{"--shm-name", "a/b"}, "--shm-name = \"a/b\" is not allowed"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--config", path};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const cfg::Options o = run(args);
    INFO(c.expect);
    INFO(o.message);
    CHECK(o.status == cfg::ParseStatus::Error);
    CHECK(o.exit_code == 2);
    CHECK(contains(o.message, c.expect));
    CHECK(o.message.find('\n') == std::string::npos);
  }
}

TEST_CASE("a bad config file through the flags exits 2", "[config][flags]") {
  cfg::Options o = run({"--config", "/nonexistent/skirmish.toml"});
  CHECK(o.status == cfg::ParseStatus::Error);
  CHECK(o.exit_code == 2);
  CHECK(contains(o.message, "cannot read /nonexistent/skirmish.toml"));

  TempFile file("[limits]\nmax_frame_bytes = 10\n");
  o = run({"--config", file.path, "--port", "0"});
  CHECK(o.status == cfg::ParseStatus::Error);
  CHECK(o.exit_code == 2);
  CHECK(contains(o.message, "limits.max_frame_bytes = 10"));
}

namespace {
// Runs the test in a fresh empty working directory, and goes back after.
struct InTempDir {
  std::string old, dir;
  InTempDir() {
    char buf[4096];
    REQUIRE(getcwd(buf, sizeof buf) != nullptr);
    old = buf;
    char name[] = "/tmp/skirmish_test_cwd_XXXXXX";
    REQUIRE(mkdtemp(name) != nullptr);
    dir = name;
    REQUIRE(chdir(dir.c_str()) == 0);
  }
  ~InTempDir() {
    (void)chdir(old.c_str());
    std::filesystem::remove_all(dir);
  }
};
}  // namespace

// Fails before this fix: without --config the server read only
// configs/skirmish.toml relative to where it was started, and the error
// named that one path.
TEST_CASE("without --config: ./configs/skirmish.toml, else /etc/skirmish/skirmish.toml", "[config][flags]") {
  CHECK(cfg::default_config_paths() ==
        std::vector<std::string>{"configs/skirmish.toml", "/etc/skirmish/skirmish.toml"});
  InTempDir tmp;
  const bool etc_exists = access("/etc/skirmish/skirmish.toml", F_OK) == 0;
  if (!etc_exists) {
    // Neither: one line naming both, exit 2.
    const cfg::Options o = run({"--port", "0"});
    CHECK(o.status == cfg::ParseStatus::Error);
    CHECK(o.exit_code == 2);
    CHECK(contains(o.message, "configs/skirmish.toml"));
    CHECK(contains(o.message, "/etc/skirmish/skirmish.toml"));
    CHECK(contains(o.message, "--config"));
    CHECK(o.message.find('\n') == std::string::npos);
  } else {
    const cfg::Options o = run({});
    CHECK(o.status == cfg::ParseStatus::Ok);
    CHECK(o.config.source == "/etc/skirmish/skirmish.toml");
    CHECK(o.config_defaulted);
  }
  // The working directory's file wins, and says where it came from.
  std::filesystem::create_directory("configs");
  std::ofstream("configs/skirmish.toml") << "[game]\nmatch_size = 3\n";
  const cfg::Options o = run({"--port", "0"});
  INFO(o.message);
  REQUIRE(o.status == cfg::ParseStatus::Ok);
  CHECK(o.config_defaulted);
  CHECK(o.config.source == "configs/skirmish.toml");
  CHECK(o.config.match_size == 3);
  // --config is taken as given, and is not "defaulted".
  const cfg::Options given = run({"--config", "configs/skirmish.toml"});
  REQUIRE(given.status == cfg::ParseStatus::Ok);
  CHECK_FALSE(given.config_defaulted);
}

TEST_CASE("flags: --check-config loads, checks and exits, and a flag given twice is refused", "[config][flags]") {
  const std::string path = configs_dir() + "container.toml";
  const cfg::Options ok = run({"--config", path, "--port", "7777", "--check-config"});
  // Ok with check_only: main() loads the game module too, then exits 0.
  CHECK(ok.status == cfg::ParseStatus::Ok);
  CHECK(ok.check_only);
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.message, "config ok: config " + path));
  CHECK(contains(ok.message, "listen 0.0.0.0:7777"));
  TempFile bad("[limits]\nmax_frame_bytes = 10\n");
  const cfg::Options no = run({"--config", bad.path, "--check-config"});
  CHECK(no.status == cfg::ParseStatus::Error);
  CHECK(no.exit_code == 2);
  // What the Agones Fleet did on top of the image's ENTRYPOINT.
  const cfg::Options twice = run({"--config", path, "--config", path, "--check-config"});
  CHECK(twice.status == cfg::ParseStatus::Error);
  CHECK(twice.exit_code == 2);
}

TEST_CASE("agones keys: ranges and the timeout within the interval", "[config]") {
  std::string error;
  CHECK_FALSE(cfg::load_string("[agones]\nhealth_interval_ms = 50\n", error));
  CHECK(contains(error, "agones.health_interval_ms = 50"));
  CHECK_FALSE(cfg::load_string("[agones]\nhealth_interval_ms = 500\nrequest_timeout_ms = 600\n", error));
  CHECK(contains(error, "agones.request_timeout_ms = 600 is more than agones.health_interval_ms = 500"));
  auto c = cfg::load_string("[agones]\nhealth_interval_ms = 200\nrequest_timeout_ms = 150\n", error);
  REQUIRE(c);
  CHECK(c->agones_health_interval_ms == 200);
  CHECK(c->agones_request_timeout_ms == 150);
}

TEST_CASE("--help and --version exit 0 with text for stdout",
          "[config][flags]") {
  const cfg::Options help = run({"--help"});
  CHECK(help.status == cfg::ParseStatus::Exit);
  CHECK(help.exit_code == 0);
  for (const char* flag : {"--config", "--port", "--admin-port", "--workers",
                           "--log-level", "--shm-name", "--version"})
    CHECK(contains(help.message, flag));

  const cfg::Options version = run({"--version"});
  CHECK(version.status == cfg::ParseStatus::Exit);
  CHECK(version.exit_code == 0);
  CHECK(version.message ==
        std::string("skirmish-server ") + SKIRMISH_VERSION + "\n");

  // Help wins even with a config that could not be loaded.
  CHECK(run({"--config", "/nonexistent", "-h"}).status ==
        cfg::ParseStatus::Exit);
}

TEST_CASE("unknown flags and stray arguments are errors", "[config][flags]") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--bogus"}, {"--port"}, {"stray"}}) {
    const cfg::Options o = run(args);
    INFO(o.message);
    CHECK(o.status == cfg::ParseStatus::Error);
    CHECK(o.exit_code == 2);
    CHECK(o.message.rfind("config: ", 0) == 0);
    CHECK(o.message.find('\n') == std::string::npos);
  }
  CHECK(contains(run({"--bogus"}).message, "--bogus"));

  // An empty argv (exec with argc 0) must not crash.
  const cfg::Options none = cfg::parse_command_line(0, nullptr);
  CHECK(none.status != cfg::ParseStatus::Exit);
}
