// skirmish-replay FILE [--module NAME_OR_PATH]: re-simulates a match record
// (record/replay.h) and says whether the module still plays it the same.
// Exit: 0 the same to the end; 1 diverged (the line names the tick); 2 a
// bad command line, file or module (one line); 3 an incomplete record,
// verified as far as it goes.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "module/module.h"
#include "record/replay.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: skirmish-replay FILE [--module NAME_OR_PATH]\n"
               "  re-simulates a match record of [game] record_dir with its game module\n"
               "  (the one the server loaded, or --module) and checks its state hashes\n"
               "  exit: 0 same, 1 diverged at a tick, 2 bad file/module/usage, 3 incomplete record\n");
  return 2;
}

int fail(const std::string& line) {
  std::fprintf(stderr, "skirmish-replay: %s\n", line.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string file, module;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (a == "--module" && i + 1 < argc) module = argv[++i];
    else if (!a.empty() && a[0] != '-' && file.empty()) file = a;
    else return usage();
  }
  if (file.empty()) return usage();

  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("cannot read " + file + ": " + std::strerror(errno));
  const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  skirmish::record::Parsed rec;
  std::string error;
  if (!skirmish::record::parse(data.data(), data.size(), rec, error)) return fail(file + ": " + error);
  const skirmish::record::FileHeader& h = rec.header;

  if (module.empty()) module = h.module;
  skirmish::module::Limits limits;
  limits.max_state_bytes = h.state_bytes > limits.max_state_bytes ? h.state_bytes : limits.max_state_bytes;
  std::optional<skirmish::module::Module> m = skirmish::module::load(module, limits, error);
  if (!m) return fail(error);
  const skirmish_game_v1_t* g = m->game;
  if (h.game_name != g->name || h.game_version != g->version || h.state_bytes != g->state_bytes)
    return fail("game module " + m->path + " is " + g->name + " " + g->version + " with " +
                std::to_string(g->state_bytes) + "-byte states; the record is of " + h.game_name + " " +
                h.game_version + " with " + std::to_string(h.state_bytes) + " (pass --module)");
  if (!skirmish::module::check_match(*m, skirmish::module::GameParams(h.params, h.tick_rate_hz), h.players, error))
    return fail(error);

  std::printf("replaying %s: %s %s, match %#x, %u players, seed %u, %zu ticks recorded\n", file.c_str(),
              h.game_name.c_str(), h.game_version.c_str(), h.match, h.players, h.seed, rec.ticks.size());
  std::fflush(stdout);
  const skirmish::record::ReplayResult r = skirmish::record::replay(rec, g, [](const std::string& line) {
    std::printf("note: %s\n", line.c_str());
    std::fflush(stdout);
  });
  std::printf("%s\n", r.message.c_str());
  return int(r.verdict);
}
