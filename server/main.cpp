// skirmish-server: parse the configuration, then become the master, which
// forks the coordinator and the workers.
//
// Exit codes: 0 clean stop, 1 a start-up failure (port in use, segment owned
// by a live server, ...), 2 a bad config or flag (so a supervisor does not
// respawn it in a loop).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "auth/jwt.h"
#include "config/config.h"
#include "core/log.h"
#include "core/process.h"
#include "master/master.h"
#include "module/module.h"
#include "store/redis_store.h"
#include "store/sqlite_store.h"

using namespace skirmish;

namespace {

// A whole small file (a secret, a PEM key): false and `why` if it cannot be
// read or is larger than `cap` (a wrong path, not a key).
bool read_small_file(const std::string& path, size_t cap, std::string& out, std::string& why) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    why = std::strerror(errno);
    return false;
  }
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() <= cap) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) why = "read error";
  else if (out.size() > cap) why = "larger than " + std::to_string(cap) + " bytes";
  return why.empty();
}

// [auth]: the verifier, from the secret (environment or file) and the PEM
// key, read once here, before anything forks. Null when auth is off, and
// on an error (then `error` names the key; exit code 2).
std::unique_ptr<auth::JwtVerifier> make_verifier(const config::Config& c, std::string& error) {
  if (!c.auth_enabled()) return nullptr;
  auth::JwtConfig jc;
  jc.issuer = c.auth_issuer;
  jc.audience = c.auth_audience;
  jc.leeway_s = c.auth_leeway_s;
  jc.max_token_bytes = c.auth_max_token_bytes;
  std::string why;
  if (!c.auth_hs256_secret_env.empty()) {
    const char* v = std::getenv(c.auth_hs256_secret_env.c_str());
    if (v == nullptr || *v == '\0') {
      error = "config: auth.hs256_secret_env = \"" + c.auth_hs256_secret_env +
              "\": the variable is not set or empty (allowed: a variable holding the secret)";
      return nullptr;
    }
    jc.hs256_secret = v;
  } else if (!c.auth_hs256_secret_file.empty()) {
    if (!read_small_file(c.auth_hs256_secret_file, 4096, jc.hs256_secret, why)) {
      error = "config: auth.hs256_secret_file = \"" + c.auth_hs256_secret_file + "\": " + why;
      return nullptr;
    }
    if (!jc.hs256_secret.empty() && jc.hs256_secret.back() == '\n') jc.hs256_secret.pop_back();
    if (!jc.hs256_secret.empty() && jc.hs256_secret.back() == '\r') jc.hs256_secret.pop_back();
    if (jc.hs256_secret.empty()) {
      error = "config: auth.hs256_secret_file = \"" + c.auth_hs256_secret_file + "\": empty (allowed: a file holding the secret)";
      return nullptr;
    }
  }
  // RFC 7518 3.2: an HS256 key at least as long as the hash.
  if (!jc.hs256_secret.empty() && jc.hs256_secret.size() < 32) {
    error = std::string("config: auth.") + (c.auth_hs256_secret_env.empty() ? "hs256_secret_file" : "hs256_secret_env") +
            ": the secret is " + std::to_string(jc.hs256_secret.size()) + " bytes (allowed: 32 bytes or more, RFC 7518)";
    return nullptr;
  }
  if (!c.auth_rs256_public_key_file.empty() &&
      !read_small_file(c.auth_rs256_public_key_file, 65536, jc.rs256_public_key_pem, why)) {
    error = "config: auth.rs256_public_key_file = \"" + c.auth_rs256_public_key_file + "\": " + why;
    return nullptr;
  }
  auto v = auth::JwtVerifier::create(jc, &why);
  if (!v) error = "config: auth: " + why;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  core::init_process_title(argc, argv);
  config::Options opts = config::parse_command_line(argc, argv);
  if (opts.status == config::ParseStatus::Exit) {
    std::fputs(opts.message.c_str(), stdout);
    return opts.exit_code;
  }
  if (opts.status == config::ParseStatus::Error) {
    std::fprintf(stderr, "%s\n", opts.message.c_str());
    return opts.exit_code;
  }
  // The game module: loaded and checked (ABI, sizes, players, tick rate,
  // params) before anything is logged, bound or forked; any refusal is one
  // line and exit code 2, like a bad config.
  module::Limits limits;
  limits.max_state_bytes = opts.config.max_state_bytes;
  std::string error;
  auto game = module::load_game(opts.config.game_module, limits, opts.config.game_params, opts.config.tick_rate_hz,
                                opts.config.match_size, error);
  if (!game) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  // Replays: the directory must be there and writable now, not at the
  // first match's end. Made absolute: the record names the module path
  // and skirmish-replay may run elsewhere.
  if (!opts.config.record_dir.empty()) {
    struct stat st {};
    char real[PATH_MAX];
    const char* why = nullptr;
    if (stat(opts.config.record_dir.c_str(), &st) != 0) why = std::strerror(errno);
    else if (!S_ISDIR(st.st_mode)) why = "not a directory";
    else if (access(opts.config.record_dir.c_str(), W_OK | X_OK) != 0) why = std::strerror(errno);
    else if (realpath(opts.config.record_dir.c_str(), real) == nullptr) why = std::strerror(errno);
    if (why != nullptr) {
      std::fprintf(stderr,
                   "config: game.record_dir = \"%s\": %s (allowed: \"\" (off) or the path of a directory the server "
                   "may write)\n",
                   opts.config.record_dir.c_str(), why);
      return 2;
    }
    opts.config.record_dir = real;
  }
  // [auth] and [store]: checked (and the store's file created) now, so a
  // wrong key, path or file is one line and exit code 2 before anything
  // runs. Each worker opens its own connection to the store after the fork.
  std::unique_ptr<auth::JwtVerifier> jwt = make_verifier(opts.config, error);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  if (!opts.config.fleet_redis.empty()) {
    // The URL parsed now (exit 2), the password read now: Redis itself may
    // be down at start; the store connects when first used.
    store::RedisAddress addr;
    if (!store::parse_redis_url(opts.config.fleet_redis, &addr, &error)) {
      std::fprintf(stderr, "config: fleet.redis = \"%s\": %s\n", opts.config.fleet_redis.c_str(), error.c_str());
      return 2;
    }
    std::string why;
    if (!opts.config.fleet_redis_password_env.empty()) {
      const char* v = std::getenv(opts.config.fleet_redis_password_env.c_str());
      if (v == nullptr || *v == '\0') {
        std::fprintf(stderr, "config: fleet.redis_password_env = \"%s\": the variable is not set or empty\n",
                     opts.config.fleet_redis_password_env.c_str());
        return 2;
      }
      opts.config.fleet_redis_password = v;
    } else if (!opts.config.fleet_redis_password_file.empty()) {
      if (!read_small_file(opts.config.fleet_redis_password_file, 4096, opts.config.fleet_redis_password, why)) {
        std::fprintf(stderr, "config: fleet.redis_password_file = \"%s\": %s\n",
                     opts.config.fleet_redis_password_file.c_str(), why.c_str());
        return 2;
      }
      std::string& pw = opts.config.fleet_redis_password;
      if (!pw.empty() && pw.back() == '\n') pw.pop_back();
      if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    }
  } else if (!opts.config.store_path.empty()) {
    if (!store::SqliteStore::open(opts.config.store_path, opts.config.store_busy_timeout_ms, &error)) {
      std::fprintf(stderr, "config: store.path = \"%s\": %s (allowed: \"\" (off) or a SQLite file the server may write)\n",
                   opts.config.store_path.c_str(), error.c_str());
      return 2;
    }
  }
  if (opts.check_only) {
    std::printf("%sgame ok: %s %s from %s\n", opts.message.c_str(), game->table()->name, game->table()->version,
                game->module.path.c_str());
    return 0;
  }
  log::init_logging("master", *log::parse_level(opts.config.log_level));
  if (opts.config_defaulted) {
    const auto paths = config::default_config_paths();
    char cwd[4096];
    spdlog::info("no --config given: using {} (the first that exists of {}, {}; working directory {})",
                 opts.config.source, paths[0], paths[1], getcwd(cwd, sizeof cwd) != nullptr ? cwd : "unknown");
  }
  spdlog::info("skirmish-server {} starting: {}", SKIRMISH_VERSION, config::describe(opts.config));
  spdlog::info("game {} {} from {}: {} bytes of state per match, inputs up to {} bytes, views up to {} bytes",
               game->table()->name, game->table()->version, game->module.path, game->table()->state_bytes,
               game->table()->max_input_bytes, game->table()->max_view_bytes);
  if (!opts.config.record_dir.empty())
    spdlog::info("recording every match into {} (up to {} bytes a file, a state hash every {} ticks, a {}-byte "
                 "ring per match in shared memory)",
                 opts.config.record_dir, opts.config.record_max_bytes, opts.config.record_hash_every,
                 opts.config.record_ring_bytes);
  if (jwt) {
    const config::Config& c = opts.config;
    const bool hs = !c.auth_hs256_secret_env.empty() || !c.auth_hs256_secret_file.empty();
    const bool rs = !c.auth_rs256_public_key_file.empty();
    spdlog::info("auth: a JWT ({}) in Hello.auth_token, {}", hs && rs ? "HS256, RS256" : hs ? "HS256" : "RS256",
                 c.auth_required ? "required" : "optional (a Hello without one is anonymous)");
  }
  if (!opts.config.fleet_redis.empty())
    spdlog::info("players store: Redis at {} (keys {}player:<account>), shared by the fleet{}", opts.config.fleet_redis,
                 opts.config.fleet_key_prefix, opts.config.store_path.empty() ? "" : "; store.path is not used");
  else if (!opts.config.store_path.empty())
    spdlog::info("players store: {} (SQLite, WAL); accounts' ratings are kept across restarts", opts.config.store_path);
  master::Master m(opts.config, *game, jwt.get());
  return m.run();
}
