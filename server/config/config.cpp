// skirmish::config: TOML + flags -> validated Config. See config.h for the
// contract. The whole schema is the table kKeys below: one row per key with
// its TOML table, type and range. The loader, validate(), known_keys() and
// the flags all read that one table, so a key cannot be documented in one
// place and checked differently in another.
#include "config/config.h"
#include "config/config_text.h"

#include <arpa/inet.h>
#include <sched.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <memory>
#include <system_error>

#ifndef SKIRMISH_VERSION
#define SKIRMISH_VERSION "dev"
#endif

namespace skirmish::config {
namespace {

using detail::one_line;
using detail::quote;
using detail::show;
using detail::type_name;
using detail::apply_game_params;
using detail::close_enough;

constexpr std::int64_t kMaxWorkers = 64;
constexpr std::size_t kMaxShmNameChars = 200;
// A config file is a few kilobytes; anything far larger is a wrong path
// (a log, a core file), not a config, and is refused before parsing.
constexpr std::size_t kMaxFileBytes = 1 << 20;
// Without --config: a checkout's file first (make run starts in the
// repository), then the installed one. Relative to the working directory, as
// a user who types the command there expects.
constexpr const char* kDefaultConfigPaths[] = {"configs/skirmish.toml", "/etc/skirmish/skirmish.toml"};

// ---------------------------------------------------------------------------
// The schema.

enum class Kind { Integer, Workers, Host, ShmName, LogLevel, Module, Dir, Path, Text, EnvName, Bool, RedisUrl, KeyPrefix };

struct Key {
  std::string_view table;
  std::string_view name;
  Kind kind;
  std::int64_t min = 0;  // Integer and Workers
  std::int64_t max = 0;
  std::uint16_t Config::*u16 = nullptr;  // Integer: exactly one of u16/u32
  std::uint32_t Config::*u32 = nullptr;
  std::string Config::*text = nullptr;  // Host, ShmName, LogLevel, Module, Dir, Path, Text, EnvName
  bool Config::*flag = nullptr;         // Bool
};

constexpr Key int_key(std::string_view table, std::string_view name,
                      std::int64_t min, std::int64_t max,
                      std::uint32_t Config::*field) {
  return Key{table, name, Kind::Integer, min, max, nullptr, field, nullptr};
}
constexpr Key port_key(std::string_view table, std::string_view name,
                       std::uint16_t Config::*field) {
  return Key{table, name, Kind::Integer, 0, 65535, field, nullptr, nullptr};
}
constexpr Key string_key(std::string_view table, std::string_view name,
                         Kind kind, std::string Config::*field) {
  return Key{table, name, kind, 0, 0, nullptr, nullptr, field};
}

constexpr Key bool_key(std::string_view table, std::string_view name, bool Config::*field) {
  return Key{table, name, Kind::Bool, 0, 0, nullptr, nullptr, nullptr, field};
}

constexpr std::string_view kTables[] = {"server", "limits", "timeouts", "game",
                                        "matchmaking", "agones", "auth", "store", "fleet"};

// In the order of configs/skirmish.toml. Ranges are the documented ones.
constexpr Key kKeys[] = {
    string_key("server", "listen_host", Kind::Host, &Config::listen_host),
    port_key("server", "listen_port", &Config::listen_port),
    string_key("server", "admin_host", Kind::Host, &Config::admin_host),
    port_key("server", "admin_port", &Config::admin_port),
    Key{"server", "workers", Kind::Workers, 1, kMaxWorkers},
    string_key("server", "shm_name", Kind::ShmName, &Config::shm_name),
    string_key("server", "log_level", Kind::LogLevel, &Config::log_level),
    int_key("server", "io_quantum_ms", 0, 100, &Config::io_quantum_ms),

    int_key("limits", "max_players", 1, 1000000, &Config::max_players),
    int_key("limits", "max_matches", 1, 65535, &Config::max_matches),
    int_key("limits", "max_connections", 1, 1000000, &Config::max_connections),
    int_key("limits", "max_connections_per_ip", 1, 1000000,
            &Config::max_connections_per_ip),
    int_key("limits", "max_frame_bytes_handshake", 64, 65536,
            &Config::max_frame_bytes_handshake),
    int_key("limits", "max_frame_bytes", 256, 16777216,
            &Config::max_frame_bytes),
    int_key("limits", "write_queue_bytes", 4096, 1073741824,
            &Config::write_queue_bytes),
    int_key("limits", "socket_send_buffer_bytes", 0, 16777216,
            &Config::socket_send_buffer_bytes),
    int_key("limits", "messages_per_second", 1, 100000,
            &Config::messages_per_second),
    int_key("limits", "message_burst", 1, 1000000, &Config::message_burst),
    int_key("limits", "mailbox_depth", 16, 1048576, &Config::mailbox_depth),
    int_key("limits", "reserved_fds", 4, 1024, &Config::reserved_fds),
    int_key("limits", "max_inputs_queued", 1, 8, &Config::max_inputs_queued),

    int_key("timeouts", "handshake_timeout_ms", 100, 600000,
            &Config::handshake_timeout_ms),
    int_key("timeouts", "idle_timeout_ms", 1000, 3600000,
            &Config::idle_timeout_ms),
    int_key("timeouts", "resume_grace_ms", 0, 3600000,
            &Config::resume_grace_ms),
    int_key("timeouts", "drain_timeout_ms", 0, 600000,
            &Config::drain_timeout_ms),
    int_key("timeouts", "upgrade_timeout_ms", 1000, 600000,
            &Config::upgrade_timeout_ms),
    int_key("timeouts", "heartbeat_timeout_ms", 500, 600000,
            &Config::heartbeat_timeout_ms),
    int_key("timeouts", "respawn_backoff_max_ms", 10, 600000,
            &Config::respawn_backoff_max_ms),

    string_key("game", "module", Kind::Module, &Config::game_module),
    int_key("game", "tick_rate_hz", 1, 240, &Config::tick_rate_hz),
    int_key("game", "match_size", 2, 16, &Config::match_size),
    int_key("game", "max_state_bytes", 64, 1048576, &Config::max_state_bytes),
    int_key("game", "step_budget_us", 1, 1000000, &Config::step_budget_us),
    string_key("game", "record_dir", Kind::Dir, &Config::record_dir),
    int_key("game", "record_max_bytes", 65536, 4294967295, &Config::record_max_bytes),
    int_key("game", "record_hash_every", 1, 100000, &Config::record_hash_every),
    int_key("game", "record_ring_bytes", 16384, 16777216, &Config::record_ring_bytes),

    int_key("matchmaking", "window_initial", 0, 5000, &Config::window_initial),
    int_key("matchmaking", "window_widen_per_s", 0, 5000,
            &Config::window_widen_per_s),
    int_key("matchmaking", "max_wait_ms", 0, 3600000, &Config::max_wait_ms),
    int_key("matchmaking", "interval_ms", 10, 10000, &Config::interval_ms),
    int_key("matchmaking", "rating_initial", 0, 10000, &Config::rating_initial),

    // Agones marks a GameServer Unhealthy after failureThreshold health
    // periods without a ping (5 s and 3 by default): 2 s sends two or more
    // in each period, so one lost or timed-out ping costs nothing.
    int_key("agones", "health_interval_ms", 100, 60000, &Config::agones_health_interval_ms),
    int_key("agones", "request_timeout_ms", 50, 60000, &Config::agones_request_timeout_ms),

    bool_key("auth", "required", &Config::auth_required),
    string_key("auth", "issuer", Kind::Text, &Config::auth_issuer),
    string_key("auth", "audience", Kind::Text, &Config::auth_audience),
    string_key("auth", "hs256_secret_env", Kind::EnvName, &Config::auth_hs256_secret_env),
    string_key("auth", "hs256_secret_file", Kind::Path, &Config::auth_hs256_secret_file),
    string_key("auth", "rs256_public_key_file", Kind::Path, &Config::auth_rs256_public_key_file),
    int_key("auth", "leeway_s", 0, 3600, &Config::auth_leeway_s),
    int_key("auth", "max_token_bytes", 256, 16384, &Config::auth_max_token_bytes),

    string_key("store", "path", Kind::Path, &Config::store_path),
    int_key("store", "busy_timeout_ms", 1, 60000, &Config::store_busy_timeout_ms),

    string_key("fleet", "redis", Kind::RedisUrl, &Config::fleet_redis),
    string_key("fleet", "redis_password_env", Kind::EnvName, &Config::fleet_redis_password_env),
    string_key("fleet", "redis_password_file", Kind::Path, &Config::fleet_redis_password_file),
    string_key("fleet", "key_prefix", Kind::KeyPrefix, &Config::fleet_key_prefix),
    int_key("fleet", "redis_timeout_ms", 10, 60000, &Config::fleet_redis_timeout_ms),
};

// Every range must fit the field that stores it, or a valid value would be
// truncated on assignment.
constexpr bool ranges_fit_fields() {
  for (const Key& k : kKeys) {
    if (k.kind != Kind::Integer) continue;
    const std::int64_t top = k.u16 ? 0xFFFF : 0xFFFFFFFF;
    if (k.min < 0 || k.max > top || k.min > k.max) return false;
    if ((k.u16 == nullptr) == (k.u32 == nullptr)) return false;
  }
  return true;
}
static_assert(ranges_fit_fields());

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};

const Key* find_key(std::string_view table, std::string_view name) {
  for (const Key& k : kKeys)
    if (k.table == table && k.name == name) return &k;
  return nullptr;
}

bool known_table(std::string_view name) {
  return std::find(std::begin(kTables), std::end(kTables), name) !=
         std::end(kTables);
}

std::string full_name(const Key& k) {
  return std::string(k.table) + "." + std::string(k.name);
}

std::string allowed(const Key& k) {
  switch (k.kind) {
    case Kind::Integer:
      return std::to_string(k.min) + ".." + std::to_string(k.max);
    case Kind::Workers:
      return std::to_string(k.min) + ".." + std::to_string(k.max) +
             " or \"auto\"";
    case Kind::Host:
      return "an IPv4 or IPv6 address literal, e.g. 127.0.0.1 or ::1";
    case Kind::ShmName:
      return "1..200 characters of A-Z a-z 0-9 . _ -, not \".\" or \"..\"";
    case Kind::LogLevel: {
      std::string s;
      for (std::string_view l : kLogLevels)
        s += (s.empty() ? "" : "|") + std::string(l);
      return s;
    }
    case Kind::Module:
      return "a bundled game's name (arena, battleship) or a path to a game module .so";
    case Kind::Dir:
      return "\"\" (off) or the path of a directory the server may write";
    case Kind::Path:
      return "\"\" (off) or a file path";
    case Kind::Text:
      return "\"\" (not checked) or up to 256 bytes on one line";
    case Kind::EnvName:
      return "\"\" (off) or an environment variable's name, [A-Za-z_][A-Za-z0-9_]*";
    case Kind::Bool:
      return "true or false";
    case Kind::RedisUrl:
      return "\"\" (alone) or redis://host[:port][/db], no password in it";
    case Kind::KeyPrefix:
      return "1..64 characters of A-Z a-z 0-9 : _ - .";
  }
  return "";
}

std::string expected_type(const Key& k) {
  switch (k.kind) {
    case Kind::Integer:
      return "an integer";
    case Kind::Workers:
      return "an integer or \"auto\"";
    case Kind::Bool:
      return "a boolean";
    default:
      return "a string";
  }
}

// `who` is "table.key" for the file and "--flag" for the command line.
std::string out_of_range(std::string_view who, std::string_view shown,
                         const Key& k) {
  return "config: " + std::string(who) + " = " + std::string(shown) +
         " is out of range (allowed: " + allowed(k) + ")";
}
std::string not_allowed(std::string_view who, std::string_view shown,
                        const Key& k) {
  return "config: " + std::string(who) + " = " + std::string(shown) +
         " is not allowed (allowed: " + allowed(k) + ")";
}

// `table` is empty for a key at the top level of the file.
std::string unknown_key(std::string_view table, std::string_view name) {
  const std::string who = table.empty()
                              ? std::string(name)
                              : std::string(table) + "." + std::string(name);
  std::string out = "config: unknown key " + one_line(who);
  // A known key placed in the wrong table is the likeliest mistake.
  for (const Key& k : kKeys)
    if (k.name == name) return out + " (did you mean " + full_name(k) + "?)";
  for (const Key& k : kKeys)
    if ((table.empty() || k.table == table) && close_enough(name, k.name))
      return out + " (did you mean " + full_name(k) + "?)";
  if (table.empty())
    return out +
           " (allowed at the top level: the tables server, limits, "
           "timeouts, game, matchmaking, agones, auth, store, fleet)";
  std::string names;
  for (const Key& k : kKeys)
    if (k.table == table)
      names += (names.empty() ? "" : ", ") + std::string(k.name);
  return out + " (allowed in [" + std::string(table) + "]: " + names + ")";
}

std::string unknown_table(std::string_view name) {
  std::string out = "config: unknown table [" + one_line(name) + "]";
  for (std::string_view t : kTables)
    if (close_enough(name, t))
      return out + " (did you mean [" + std::string(t) + "]?)";
  return out + " (allowed: server, limits, timeouts, game, matchmaking, agones, auth, store, fleet)";
}

// ---------------------------------------------------------------------------
// Checking and storing one value. The file and the flags share these.

bool valid_text(Kind kind, std::string_view s) {
  switch (kind) {
    case Kind::Host: {
      // A literal only: the master binds with uv_ip4_addr/uv_ip6_addr, and a
      // name here would mean a DNS lookup at start-up. Checking now turns a
      // late bind failure into an error that names the key.
      if (s.empty() || s.size() > 64) return false;
      const std::string z(s);
      unsigned char buf[16];
      return inet_pton(AF_INET, z.c_str(), buf) == 1 ||
             inet_pton(AF_INET6, z.c_str(), buf) == 1;
    }
    case Kind::ShmName:
      // shm_open wants "/name" with no further slash; "." and ".." would
      // name directories under /dev/shm.
      if (s.empty() || s.size() > kMaxShmNameChars || s == "." || s == "..")
        return false;
      return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
               c == '_' || c == '-';
      });
    case Kind::LogLevel:
      return std::find(std::begin(kLogLevels), std::end(kLogLevels), s) !=
             std::end(kLogLevels);
    case Kind::Module:
      // Whether it loads is the master's check (module::load, exit 2); here
      // only what can never be a file name.
      return !s.empty() && s.size() <= 4096 &&
             std::none_of(s.begin(), s.end(), [](char ch) { return ch == '\0' || ch == '\n' || ch == '\r'; });
    case Kind::Text:
      return s.size() <= 256 && std::none_of(s.begin(), s.end(), [](char ch) {
               return ch == '\0' || ch == '\n' || ch == '\r';
             });
    case Kind::EnvName:
      return s.empty() || (s.size() <= 128 && !std::isdigit(static_cast<unsigned char>(s[0])) &&
                           std::all_of(s.begin(), s.end(), [](char ch) {
                             return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
                           }));
    case Kind::RedisUrl:
      // The full parse is store::parse_redis_url's (main.cpp, exit 2); here
      // the shape, and no password: that comes from the environment or a file.
      return s.empty() || (s.size() <= 512 && s.rfind("redis://", 0) == 0 && s.find('@') == std::string_view::npos &&
                           std::none_of(s.begin(), s.end(), [](char ch) { return ch <= ' ' || ch == 0x7F; }));
    case Kind::KeyPrefix:
      return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == ':' || ch == '_' || ch == '-' || ch == '.';
      });
    case Kind::Dir:
    case Kind::Path:
      // Whether it is a writable directory, or a readable file, is the
      // master's check at start (main.cpp).
      return s.size() <= 4096 &&
             std::none_of(s.begin(), s.end(), [](char ch) { return ch == '\0' || ch == '\n' || ch == '\r'; });
    default:
      return false;
  }
}

bool in_range(const Key& k, std::int64_t v) { return v >= k.min && v <= k.max; }

// Stores an integer already checked against the key's range.
void store_integer(const Key& k, std::int64_t v, Config& c) {
  if (k.kind == Kind::Workers) {
    c.workers = static_cast<std::uint32_t>(v);
    c.workers_auto = false;
  } else if (k.u16) {
    c.*k.u16 = static_cast<std::uint16_t>(v);
  } else {
    c.*k.u32 = static_cast<std::uint32_t>(v);
  }
}

std::int64_t read_integer(const Key& k, const Config& c) {
  if (k.kind == Kind::Workers) return c.workers;
  return k.u16 ? c.*k.u16 : c.*k.u32;
}

// One value from the TOML file.
bool apply_node(const Key& k, const toml::node& n, Config& c,
                std::string& error) {
  const std::string who = full_name(k);
  const bool numeric = k.kind == Kind::Integer || k.kind == Kind::Workers;
  if (const auto* b = n.as_boolean(); b && k.kind == Kind::Bool) {
    c.*k.flag = b->get();
    return true;
  }
  if (const auto* i = n.as_integer(); i && numeric) {
    if (!in_range(k, i->get())) {
      error = out_of_range(who, show(n), k);
      return false;
    }
    store_integer(k, i->get(), c);
    return true;
  }
  if (const auto* s = n.as_string(); s && k.kind != Kind::Integer && k.kind != Kind::Bool) {
    const std::string& v = s->get();
    if (k.kind == Kind::Workers) {
      if (v != "auto") {
        error = not_allowed(who, show(n), k);
        return false;
      }
      c.workers_auto = true;
      return true;
    }
    if (!valid_text(k.kind, v)) {
      error = not_allowed(who, show(n), k);
      return false;
    }
    c.*k.text = v;
    return true;
  }
  error = "config: " + who + " must be " + expected_type(k) + ", got " +
          std::string(type_name(n)) + " " + show(n) +
          " (allowed: " + allowed(k) + ")";
  return false;
}

// One value from a flag. Flags arrive as text; integers must be written in
// plain decimal, as in TOML.
bool apply_flag(const Key& k, std::string_view flag, std::string_view value,
                Config& c, std::string& error) {
  if (k.kind == Kind::Workers && value == "auto") {
    c.workers_auto = true;
    return true;
  }
  if (k.kind == Kind::Integer || k.kind == Kind::Workers) {
    std::int64_t v = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, v);
    if (ec == std::errc::result_out_of_range && ptr == end) {
      error = out_of_range(flag, one_line(value), k);
      return false;
    }
    if (ec != std::errc() || ptr != end || value.empty()) {
      error = k.kind == Kind::Workers
                  ? not_allowed(flag, quote(value), k)
                  : "config: " + std::string(flag) + " = " + quote(value) +
                        " is not an integer (allowed: " + allowed(k) + ")";
      return false;
    }
    if (!in_range(k, v)) {
      error = out_of_range(flag, std::to_string(v), k);
      return false;
    }
    store_integer(k, v, c);
    return true;
  }
  if (!valid_text(k.kind, value)) {
    error = not_allowed(flag, quote(value), k);
    return false;
  }
  c.*k.text = std::string(value);
  return true;
}

// Walks the parsed document: only known tables, only known keys.
bool apply_document(const toml::table& root, Config& c, std::string& error) {
  for (auto&& [tkey, tnode] : root) {
    const std::string_view tname = tkey.str();
    if (!known_table(tname)) {
      error = tnode.is_table() ? unknown_table(tname) : unknown_key("", tname);
      return false;
    }
    const toml::table* table = tnode.as_table();
    if (table == nullptr) {
      error = "config: " + std::string(tname) + " must be a table, got " +
              std::string(type_name(tnode)) + " (allowed: a [" +
              std::string(tname) + "] table of keys)";
      return false;
    }
    for (auto&& [key, node] : *table) {
      if (tname == "game" && key.str() == "params") {
        if (!apply_game_params(node, c, error)) return false;
        continue;
      }
      const Key* k = find_key(tname, key.str());
      if (k == nullptr) {
        error = unknown_key(tname, key.str());
        return false;
      }
      if (!apply_node(*k, node, c, error)) return false;
    }
  }
  return true;
}

// CPUs this process may run on, which under taskset or a container cpuset is
// fewer than the machine has online; online CPUs as the fallback.
std::uint32_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return static_cast<std::uint32_t>(CPU_COUNT(&set));
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<std::uint32_t>(online) : 1;
}

// The last step of every load: "auto" becomes a count, then the whole Config
// is checked once more, including the rules that span keys.
bool finish(Config& c, std::string& error) {
  if (c.workers_auto)
    c.workers = std::clamp<std::uint32_t>(usable_cpus(), 1, kMaxWorkers);
  return validate(c, error);
}

std::optional<Config> load_text(std::string_view text,
                                const std::string& source, std::string& error) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    error = "config: " + one_line(source) + ":" + std::to_string(at.line) +
            ":" + std::to_string(at.column) + ": " + one_line(e.description());
    return std::nullopt;
  } catch (const std::exception& e) {  // e.g. bad_alloc: still a value
    error = "config: " + one_line(source) + ": " + one_line(e.what());
    return std::nullopt;
  }
  Config c;
  c.source = source;
  std::string why;
  if (!apply_document(root, c, why) || !finish(c, why)) {
    error = one_line(why);
    return std::nullopt;
  }
  return c;
}

// ---------------------------------------------------------------------------
// Flags.

struct Flag {
  const char* name;  // as typed, also what an error names
  const char* key;   // "table.key" it overrides
  const char* type_name;
  const char* help;
};

constexpr Flag kFlags[] = {
    {"--port", "server.listen_port", "N",
     "listen port, 0 = the OS picks (overrides server.listen_port)"},
    {"--admin-port", "server.admin_port", "N",
     "admin (/metrics, /status) port, 0 = the OS picks"},
    {"--workers", "server.workers", "N|auto",
     "worker processes, 1..64 or auto (one per usable CPU)"},
    {"--log-level", "server.log_level", "LEVEL",
     "trace|debug|info|warn|error|critical|off"},
    {"--shm-name", "server.shm_name", "NAME",
     "shared-memory segment name, [A-Za-z0-9._-]{1,200}"},
};

const Key& key_for(const Flag& f) {
  const std::string_view full = f.key;
  const std::size_t dot = full.find('.');
  return *find_key(full.substr(0, dot), full.substr(dot + 1));
}

Options exit_with(std::string text) {
  Options o;
  o.status = ParseStatus::Exit;
  o.exit_code = 0;
  o.message = std::move(text);
  return o;
}

// Exit code 2, as nginx: the supervisor reads it as "fix the config" and does
// not respawn in a loop.
Options fail_with(std::string line) {
  Options o;
  o.status = ParseStatus::Error;
  o.exit_code = 2;
  o.message = one_line(line);
  return o;
}

// [auth]: one secret source for HS256; `required` needs a key; a Hello
// carrying a token must fit the handshake frame cap (the cap bounds what an
// unauthenticated peer can make us buffer, so it is raised on purpose, here).
bool validate_auth(const Config& c, std::string& error) {
  if (!c.auth_hs256_secret_env.empty() && !c.auth_hs256_secret_file.empty()) {
    error = "config: auth.hs256_secret_env and auth.hs256_secret_file are both set (allowed: one of them)";
    return false;
  }
  if (!c.fleet_redis_password_env.empty() && !c.fleet_redis_password_file.empty()) {
    error = "config: fleet.redis_password_env and fleet.redis_password_file are both set (allowed: one of them)";
    return false;
  }
  if (c.auth_required && !c.auth_enabled()) {
    error = "config: auth.required = true but no key is set (allowed: set auth.hs256_secret_env, "
            "auth.hs256_secret_file or auth.rs256_public_key_file)";
    return false;
  }
  const std::uint64_t need = std::uint64_t(c.auth_max_token_bytes) + 128;
  if (c.auth_enabled() && c.max_frame_bytes_handshake < need) {
    error = "config: limits.max_frame_bytes_handshake = " + std::to_string(c.max_frame_bytes_handshake) +
            " is less than auth.max_token_bytes + 128 = " + std::to_string(need) +
            " (allowed: a handshake cap that fits a Hello carrying a token)";
    return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API.

std::optional<Config> load_string(std::string_view toml_text,
                                  std::string& error) {
  return load_text(toml_text, "<string>", error);
}

std::optional<Config> load_file(const std::string& path, std::string& error) {
  const auto cannot_read = [&](int err) {
    error = "config: cannot read " + one_line(path) + ": " +
            std::error_code(err, std::generic_category()).message();
    return std::nullopt;
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(
      std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return cannot_read(errno);
  std::string text;
  char buf[8192];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    text.append(buf, n);
    if (text.size() > kMaxFileBytes) {
      error = "config: cannot read " + one_line(path) + ": larger than " +
              std::to_string(kMaxFileBytes) + " bytes, not a config file";
      return std::nullopt;
    }
    if (n < sizeof buf) break;
  }
  // errno is only meaningful when the stream says it failed (EISDIR, EIO).
  if (std::ferror(f.get())) return cannot_read(errno);
  return load_text(text, path, error);
}

bool validate(const Config& c, std::string& error) {
  for (const Key& k : kKeys) {
    if (k.kind == Kind::Integer || k.kind == Kind::Workers) {
      const std::int64_t v = read_integer(k, c);
      if (!in_range(k, v)) {
        error = out_of_range(full_name(k), std::to_string(v), k);
        return false;
      }
    } else if (k.kind == Kind::Bool) {
      continue;
    } else if (!valid_text(k.kind, c.*k.text)) {
      error = not_allowed(full_name(k), quote(c.*k.text), k);
      return false;
    }
  }
  // After the handshake a peer may send more, never less: the handshake cap
  // is the small one that bounds what an unauthenticated peer can make us
  // buffer.
  if (c.max_frame_bytes < c.max_frame_bytes_handshake) {
    error = "config: limits.max_frame_bytes = " +
            std::to_string(c.max_frame_bytes) +
            " is less than limits.max_frame_bytes_handshake = " +
            std::to_string(c.max_frame_bytes_handshake) +
            " (allowed: max_frame_bytes >= max_frame_bytes_handshake)";
    return false;
  }
  // One call in flight at a time: a call may not outlast the interval, or
  // a slow sidecar would space the health pings out past it.
  if (c.agones_request_timeout_ms > c.agones_health_interval_ms) {
    error = "config: agones.request_timeout_ms = " + std::to_string(c.agones_request_timeout_ms) +
            " is more than agones.health_interval_ms = " + std::to_string(c.agones_health_interval_ms) +
            " (allowed: request_timeout_ms <= health_interval_ms)";
    return false;
  }
  return validate_auth(c, error);
}

std::vector<std::string> default_config_paths() {
  return {std::begin(kDefaultConfigPaths), std::end(kDefaultConfigPaths)};
}

std::vector<std::string> known_keys() {
  std::vector<std::string> out;
  for (const Key& k : kKeys) out.push_back(full_name(k));
  return out;
}

std::string describe(const Config& c) {
  // IPv6 literals are bracketed so the port reads unambiguously.
  const auto endpoint = [](const std::string& host, std::uint16_t p) {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(p);
  };
  return "config " + (c.source.empty() ? std::string("<defaults>") : c.source) +
         ": listen " + endpoint(c.listen_host, c.listen_port) + ", admin " +
         endpoint(c.admin_host, c.admin_port) + ", workers " +
         std::to_string(c.workers) + (c.workers_auto ? " (auto)" : "") +
         ", shm " + c.shm_name + ", tick " + std::to_string(c.tick_rate_hz) +
         " Hz, game " + c.game_module + ", match size " + std::to_string(c.match_size) + ", log " +
         c.log_level;
}

Options parse_command_line(int argc, const char* const* argv) {
  // CLI11 reads argv[0]; an exec with an empty argv must not crash us.
  static const char* const kNoArgs[] = {"skirmish-server", nullptr};
  if (argc < 1 || argv == nullptr) {
    argc = 1;
    argv = kNoArgs;
  }

  CLI::App app{"Skirmish: a multiprocess TCP game server.", "skirmish-server"};
  std::string config_path;
  app.add_option("-c,--config", config_path,
                 "TOML file to load (default: configs/skirmish.toml if it exists, else /etc/skirmish/skirmish.toml)")
      ->type_name("PATH");
  // Flags are taken as text and checked by the same code as the file, so a
  // flag and its key accept exactly the same values and errors read alike.
  std::array<std::string, std::size(kFlags)> values;
  std::array<CLI::Option*, std::size(kFlags)> given{};
  for (std::size_t i = 0; i < std::size(kFlags); ++i)
    given[i] = app.add_option(kFlags[i].name, values[i], kFlags[i].help)
                   ->type_name(kFlags[i].type_name);
  bool check_only = false;
  app.add_flag("--check-config", check_only,
               "load and check the config and flags, print what would run, exit (0: valid, 2: not)");
  app.set_version_flag("--version", "skirmish-server " SKIRMISH_VERSION);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return exit_with(app.help());
  } catch (const CLI::CallForAllHelp&) {
    return exit_with(app.help("", CLI::AppFormatMode::All));
  } catch (const CLI::CallForVersion& e) {
    return exit_with(std::string(e.what()) + "\n");
  } catch (const CLI::Error& e) {
    return fail_with("config: " + std::string(e.what()) + " (run with --help)");
  }

  const bool defaulted = config_path.empty();
  if (defaulted) {
    for (const std::string& p : default_config_paths())
      if (access(p.c_str(), F_OK) == 0) {
        config_path = p;
        break;
      }
    if (config_path.empty())
      return fail_with("config: no --config given and neither " + std::string(kDefaultConfigPaths[0]) +
                       " (in the working directory) nor " + kDefaultConfigPaths[1] +
                       " exists (pass --config PATH)");
  }
  std::string error;
  std::optional<Config> loaded = load_file(config_path, error);
  if (!loaded) return fail_with(error);
  Config c = std::move(*loaded);
  for (std::size_t i = 0; i < std::size(kFlags); ++i) {
    if (given[i]->count() == 0) continue;
    if (!apply_flag(key_for(kFlags[i]), kFlags[i].name, values[i], c, error))
      return fail_with(error);
  }
  if (!finish(c, error)) return fail_with(error);
  Options o;
  if (check_only) {
    o.check_only = true;
    o.message = "config ok: " + describe(c) + "\n";
  }
  o.config = std::move(c);
  o.config_defaulted = defaulted;
  o.status = ParseStatus::Ok;
  o.exit_code = 0;
  return o;
}

}  // namespace skirmish::config
