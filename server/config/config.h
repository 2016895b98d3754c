// skirmish::config: the server's configuration, from a TOML file and flags.
//
// Contract
//   - Config holds every tunable of one server instance, with the documented
//     defaults as member initialisers. Units are in the names (_ms, _bytes,
//     _hz, _s). The TOML table a field lives in is given in the comments;
//     configs/skirmish.toml documents each key where it stands.
//   - load_file / load_string parse TOML, check every key for its TOML type
//     and its range, reject unknown tables and keys, check the cross-key
//     rules, and resolve workers = "auto". Missing keys keep their defaults.
//   - Nothing here throws, prints or exits. A failure is a value: nullopt
//     plus one line of text (no '\n') that names the key as table.key, the
//     value given and what is allowed, ready for a log or stderr.
//   - parse_command_line applies flags over the file named by --config. A
//     config error maps to exit code 2 (nginx's convention), so a supervisor
//     sees "bad config" and does not respawn the process in a loop.
//   - No sockets, no logging, no global state: safe to call before fork and
//     again on SIGHUP (a failed reload keeps the old Config serving).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "module/module.h"
#include <string_view>
#include <vector>

namespace skirmish::config {

struct Config {
  // [server]
  std::string listen_host = "127.0.0.1";  // IPv4/IPv6 literal; no DNS
  std::uint16_t listen_port = 7777;       // 0 = the OS picks
  std::string admin_host = "127.0.0.1";   // /metrics and /status
  std::uint16_t admin_port = 7778;        // 0 = the OS picks
  // Worker processes. The file says 1..64 or "auto"; the loaders resolve
  // "auto" to the CPUs this process may run on (capped at 64), so workers is
  // always the real count after load. Config{} alone holds 1 until loaded.
  std::uint32_t workers = 1;
  bool workers_auto = true;
  std::string shm_name = "skirmish";  // [A-Za-z0-9._-]{1,200}; shm adds '/'
  std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
  // A worker with sessions sleeps between loop passes at most this long
  // (from the start of the last pass) and serves what became ready
  // meanwhile (core/child_loop.h run_on_quantum); 0 = every wake-up at
  // once. Inputs wait for the tick anyway; a ping waits at most this.
  // Measured (README "I/O quantum"): 4 ms saves 6-12 % CPU on the server
  // and the load tester at 1,000-2,000 bots at the same p99.
  std::uint32_t io_quantum_ms = 4;

  // [limits]
  std::uint32_t max_players = 10000;
  std::uint32_t max_matches = 4096;
  std::uint32_t max_connections = 100000;
  std::uint32_t max_connections_per_ip = 64;
  std::uint32_t max_frame_bytes_handshake = 256;  // before Welcome
  std::uint32_t max_frame_bytes = 4096;           // >= the handshake cap
  std::uint32_t write_queue_bytes = 262144;       // per client
  std::uint32_t socket_send_buffer_bytes = 65536; // SO_SNDBUF per client; 0 = kernel autotuning
  std::uint32_t messages_per_second = 120;        // per client, sustained
  std::uint32_t message_burst = 240;              // per client, bucket size
  std::uint32_t mailbox_depth = 4096;             // events per process ring
  std::uint32_t reserved_fds = 32;                // kept free below RLIMIT
  std::uint32_t max_inputs_queued = 4;            // per player, ahead of tick

  // [timeouts]
  std::uint32_t handshake_timeout_ms = 5000;  // whole handshake
  std::uint32_t idle_timeout_ms = 30000;      // no frame at all
  std::uint32_t resume_grace_ms = 30000;      // seat kept after a drop
  std::uint32_t drain_timeout_ms = 30000;     // SIGTERM to hard stop
  std::uint32_t upgrade_timeout_ms = 30000;   // USR2: new master ready, or killed
  std::uint32_t heartbeat_timeout_ms = 3000;  // silent child is replaced
  std::uint32_t respawn_backoff_max_ms = 5000;

  // [game] The server hosts one game module; what the game's rules are is
  // the module's ([game.params] is handed to it as typed pairs).
  std::string game_module = "arena";  // a bundled module's name, or a path to a .so
  std::uint32_t tick_rate_hz = 30;
  std::uint32_t match_size = 4;  // players per match
  std::uint32_t max_state_bytes = 65536;  // largest state_bytes a module may ask for
  std::uint32_t step_budget_us = 2000;    // a step() slower than this is counted and logged
  // Replays: every match's seed, params and per-tick inputs, through a
  // ring in shared memory, into one file per match in record_dir.
  std::string record_dir;                  // "" = off
  std::uint32_t record_max_bytes = 16777216;  // per file; past it the record stops (counted)
  std::uint32_t record_hash_every = 30;    // a state hash every this many ticks
  std::uint32_t record_ring_bytes = 65536;    // per match, in shared memory (only when on)
  std::vector<module::GameParam> game_params;  // [game.params], in key order (toml++ keeps a table sorted)

  // [matchmaking]
  std::uint32_t window_initial = 100;     // rating points
  std::uint32_t window_widen_per_s = 50;  // rating points per second waited
  std::uint32_t max_wait_ms = 30000;      // then match whoever is there
  std::uint32_t interval_ms = 100;        // coordinator timer
  std::uint32_t rating_initial = 1500;

  // [agones] Only used when AGONES_SDK_HTTP_PORT is set (Agones sets it in
  // the pod): the master then talks to the SDK sidecar's REST API.
  std::uint32_t agones_health_interval_ms = 2000;  // POST /health every this often
  std::uint32_t agones_request_timeout_ms = 1000;  // per call, <= the health interval

  // [auth] Identity from the studio's own backend: a JWT in Hello.auth_token,
  // verified with OpenSSL (auth/jwt.h); its `sub` is the player's account,
  // under which the rating is kept ([store]). The secret and the key are
  // read from an environment variable or a file, never from this file.
  // Any key set turns verification on; `required` refuses a Hello without one.
  bool auth_required = false;
  std::string auth_issuer;                 // "iss" must equal it; "" = not checked
  std::string auth_audience;               // "aud" must hold it; "" = not checked
  std::string auth_hs256_secret_env;       // name of the variable holding the HS256 secret
  std::string auth_hs256_secret_file;      // or a file holding it (trailing newline dropped)
  std::string auth_rs256_public_key_file;  // PEM public key for RS256
  std::uint32_t auth_leeway_s = 30;        // clock skew allowed on exp and nbf
  std::uint32_t auth_max_token_bytes = 2048;

  // [store] Players and ratings kept across restarts in a local SQLite file
  // (store/sqlite_store.h), read at Hello and written at a match's end in
  // libuv's threadpool, never on the tick. Only accounts ([auth]) are kept.
  std::string store_path;                 // "" = off
  std::uint32_t store_busy_timeout_ms = 2000;

  // [fleet] Many instances sharing state through Redis (issue 15). Today:
  // with `redis` set, players and ratings are kept in Redis (a hash per
  // account, store/redis_store.h) instead of [store]'s SQLite file, so every
  // instance of the fleet sees the same rating. The password comes from an
  // environment variable or a file, never from this file.
  std::string fleet_redis;                // "redis://host:port/db"; "" = alone
  std::string fleet_redis_password_env;   // name of the variable holding it
  std::string fleet_redis_password_file;  // or a file holding it
  std::string fleet_key_prefix = "skirmish:";  // every key the fleet writes starts with it
  std::uint32_t fleet_redis_timeout_ms = 500;  // connect and each command
  // Not a key: the password, read by main() from the variable or the file
  // before anything forks (every child gets it with this Config).
  std::string fleet_redis_password;

  bool auth_enabled() const {
    return !auth_hs256_secret_env.empty() || !auth_hs256_secret_file.empty() || !auth_rs256_public_key_file.empty();
  }

  // Where this Config came from ("<string>" for load_string); for logs only.
  std::string source;

  bool operator==(const Config&) const = default;
};

// Loads and validates. On failure returns nullopt and sets `error` to one
// line, e.g. "config: limits.max_frame_bytes = 10 is out of range
// (allowed: 256..16777216)". `error` is left alone on success.
std::optional<Config> load_file(const std::string& path, std::string& error);
std::optional<Config> load_string(std::string_view toml_text,
                                  std::string& error);

// Re-checks every field's range and the cross-key rules of a Config built or
// changed in code. Returns true, or false with `error` set as above.
bool validate(const Config& config, std::string& error);

// Every key the loader accepts, as "table.key", in the documented order.
std::vector<std::string> known_keys();

// One line for the start-up log: source, ports, workers, shm, tick, match.
std::string describe(const Config& config);

enum class ParseStatus { Ok, Exit, Error };

struct Options {
  Config config;  // valid when status == Ok
  ParseStatus status = ParseStatus::Error;
  int exit_code = 2;    // 0 for Ok and Exit, 2 for Error
  std::string message;  // Exit: text for stdout. Error: one line.
  bool config_defaulted = false;  // no --config: config.source is the default found
  // --check-config: the caller loads the game module too (its params are
  // the module's to check), prints `message` and exits 0.
  bool check_only = false;
};

// Where --config looks when it is not given, in order: the working
// directory's configs/skirmish.toml (a checkout: make run), then
// /etc/skirmish/skirmish.toml (an installed server). The first that exists
// is loaded and Config::source names it.
std::vector<std::string> default_config_paths();

// Flags: --config PATH (default: the first of default_config_paths() that
// exists; an error naming them all when none does), --port N,
// --admin-port N, --workers N|auto, --log-level L, --shm-name NAME, --help,
// --version, --check-config (load and check everything, then Exit with the
// describe() line: nginx -t; tests/deploy runs the container's command line
// through it). The file is loaded first, then flags override it; a flag value
// obeys the same range as its key and an error names the flag.
Options parse_command_line(int argc, const char* const* argv);

}  // namespace skirmish::config
