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

#include "config/config.h"
#include "core/log.h"
#include "core/process.h"
#include "master/master.h"
#include "module/module.h"

using namespace skirmish;

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
  master::Master m(opts.config, *game);
  return m.run();
}
